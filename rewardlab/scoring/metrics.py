"""The small statistics a reward-model diagnosis is built from, as pure functions over floats.

Calibration treats each preference pair as one binary prediction: the model says P(chosen ≻ rejected)
= σ(Δ / T), Δ = r_chosen - r_rejected. Bradley-Terry rewards are shift-invariant but their scale is
learnt, so a temperature T fitted on held-out pairs can fix over- or under-confidence without
changing a single ranking. Reliability is measured on the top label (confidence σ(|Δ| / T) >= 0.5
against whether the model's preferred response was the chosen one), so bins span [0.5, 1].

Also here: Spearman rank correlation (reward vs length), the accuracy of "longer wins" and "shorter
wins" rules, accuracy split by whether the chosen response is the longer one, and inter-annotator
agreement of multiply-annotated data (it reuses Krippendorff's alpha and pairwise agreement from
`rewardlab.annotate.agreement`, the annotation app's statistics, instead of a second implementation).
The bootstrap interval is `rewardlab.scoring.evaluate.bootstrap_ci`, shared with `rewardlab eval`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rewardlab.data.types import PreferenceGroup

if TYPE_CHECKING:
    from rewardlab.annotate.agreement import AgreementReport, Judgement


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def pair_outcome(delta: float) -> float:
    """1 when the chosen response scored higher, 0.5 on a tie, 0 when the rejected one did."""
    return 1.0 if delta > 0 else 0.5 if delta == 0 else 0.0


# --- calibration ---------------------------------------------------------------------------------------


@dataclass
class ReliabilityBin:
    """Pairs whose top-label confidence fell in [lo, hi): their mean confidence and observed accuracy."""

    lo: float
    hi: float
    count: int
    confidence: float
    accuracy: float


def reliability_bins(
    deltas: Sequence[float], temperature: float = 1.0, n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins over [0.5, 1] of confidence σ(|Δ|/T); empty bins have count 0 and NaN means."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    width = 0.5 / n_bins
    sums = [[0, 0.0, 0.0] for _ in range(n_bins)]
    for d in deltas:
        conf = sigmoid(abs(d) / temperature)
        b = min(n_bins - 1, int((conf - 0.5) / width))
        sums[b][0] += 1
        sums[b][1] += conf
        sums[b][2] += pair_outcome(d)  # the model's preferred response was the chosen one
    out = []
    for b, (n, conf, acc) in enumerate(sums):
        out.append(
            ReliabilityBin(
                lo=0.5 + b * width,
                hi=0.5 + (b + 1) * width,
                count=n,
                confidence=conf / n if n else math.nan,
                accuracy=acc / n if n else math.nan,
            )
        )
    return out


def expected_calibration_error(deltas: Sequence[float], temperature: float = 1.0, n_bins: int = 10) -> float:
    """Σ_b (n_b / N) |accuracy_b - confidence_b| over the reliability bins (Guo et al., 2017)."""
    bins = reliability_bins(deltas, temperature, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return math.nan
    return sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins if b.count)


def pair_nll(deltas: Sequence[float], temperature: float = 1.0) -> float:
    """Mean -log σ(Δ/T): the Bradley-Terry loss of the labels under temperature T."""
    if not deltas:
        return math.nan
    return sum(-math.log(max(sigmoid(d / temperature), 1e-300)) for d in deltas) / len(deltas)


def fit_temperature(deltas: Sequence[float], span: float = 1e4) -> float:
    """The T minimising `pair_nll`, by golden-section search on log(1/T) (the loss is convex in 1/T).

    The search covers T within a factor `span` of the root-mean-square Δ either way, so the rewards'
    scale does not matter. When every pair is ranked right the optimum is at the lower bound. When the
    mean Δ is <= 0 the loss only falls as 1/T → 0 (its slope at 1/T = 0 is -mean(Δ)/2 and it is convex),
    so the answer is T = inf: the rewards carry no usable confidence and every probability becomes 0.5.
    """
    if not deltas:
        raise ValueError("fit_temperature needs at least one pair")
    scale = math.sqrt(sum(d * d for d in deltas) / len(deltas))
    if scale == 0:
        return 1.0  # every pair tied: any temperature gives the same loss
    if sum(deltas) <= 0:
        return math.inf
    lo, hi = scale / span, scale * span
    a, b = math.log(1 / hi), math.log(1 / lo)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_beta: float) -> float:
        return pair_nll(deltas, 1.0 / math.exp(log_beta))

    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(100):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return 1.0 / math.exp((a + b) / 2)


# --- rank correlation and length -----------------------------------------------------------------------


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counted half.

    Mann-Whitney via average ranks; None when either class is empty.
    """
    n_pos = sum(bool(p) for p in positives)
    n_neg = len(positives) - n_pos
    if not n_pos or not n_neg:
        return None
    rank_sum = sum(r for r, p in zip(average_ranks(scores), positives, strict=True) if p)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) != len(y):
        raise ValueError(f"pearson: {len(x)} x values but {len(y)} y values")
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson correlation of average ranks); None when either side is constant."""
    return pearson(average_ranks(x), average_ranks(y))


def length_rule_accuracy(chosen_len: Sequence[int], rejected_len: Sequence[int]) -> tuple[float, float]:
    """Pairwise accuracy of the "longer wins" and "shorter wins" rules (equal lengths count half each)."""
    if not chosen_len:
        return math.nan, math.nan
    pairs = zip(chosen_len, rejected_len, strict=True)
    longer = sum(pair_outcome(w - lo) for w, lo in pairs) / len(chosen_len)
    return longer, 1.0 - longer


@dataclass
class LengthSplit:
    """The model's accuracy when the chosen response is the longer, the shorter, or equally long."""

    chosen_longer: float | None
    chosen_longer_pairs: int
    chosen_shorter: float | None
    chosen_shorter_pairs: int
    equal: float | None
    equal_pairs: int
    length_controlled: float | None
    """Mean of the longer and shorter cases, so both count equally whatever their share of the data."""


def length_split_accuracy(
    chosen_len: Sequence[int], rejected_len: Sequence[int], deltas: Sequence[float]
) -> LengthSplit:
    cases: dict[str, list[float]] = {"longer": [], "shorter": [], "equal": []}
    for w, lo, d in zip(chosen_len, rejected_len, deltas, strict=True):
        cases["longer" if w > lo else "shorter" if w < lo else "equal"].append(pair_outcome(d))

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    longer, shorter = mean(cases["longer"]), mean(cases["shorter"])
    controlled = (longer + shorter) / 2 if longer is not None and shorter is not None else None
    return LengthSplit(
        chosen_longer=longer,
        chosen_longer_pairs=len(cases["longer"]),
        chosen_shorter=shorter,
        chosen_shorter_pairs=len(cases["shorter"]),
        equal=mean(cases["equal"]),
        equal_pairs=len(cases["equal"]),
        length_controlled=controlled,
    )


def bucket_accuracy(
    keys: Sequence[float], deltas: Sequence[float], max_buckets: int = 4
) -> list[tuple[str, int, float]]:
    """Accuracy per value of `keys` (e.g. annotated margins) when there are at most `max_buckets` distinct
    values, else per quantile bucket: [(label, pairs, accuracy)], smallest keys first."""
    if not keys:
        return []
    distinct = sorted(set(keys))
    if len(distinct) <= max_buckets:
        edges = [(v, v) for v in distinct]
    else:
        ordered = sorted(keys)
        cuts = [ordered[min(len(ordered) - 1, (len(ordered) * q) // max_buckets)] for q in range(max_buckets)]
        cuts = sorted(set(cuts)) + [math.inf]
        edges = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1)]
    out = []
    for lo, hi in edges:
        inside = [
            pair_outcome(d)
            for k, d in zip(keys, deltas, strict=True)
            if (k == lo if lo == hi else lo <= k < hi)
        ]
        if inside:
            label = f"{lo:g}" if lo == hi else f"[{lo:g}, {hi:g})"
            out.append((label, len(inside), sum(inside) / len(inside)))
    return out


# --- agreement between annotators (the noise ceiling) ---------------------------------------------------


def _task_key(group: PreferenceGroup) -> tuple[str, list[int]]:
    """Task id for grouping annotators, plus the order that sorts its responses canonically.

    Rows of the same item by different annotators share `id` (the annotation export writes it) or, when
    absent, the same prompt; the response set is part of the key so that pair rows of one prompt that
    compare different responses are different tasks.
    """
    texts = [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in group.responses]
    order = sorted(range(len(texts)), key=lambda i: texts[i])
    base = group.meta.get("id")
    if base is None:
        base = json.dumps(group.prompt, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha1("\x00".join([str(base)] + [texts[i] for i in order]).encode()).hexdigest()[:16]
    return digest, order


def annotator_judgements(groups: Sequence[PreferenceGroup]) -> list[Judgement]:
    """`Judgement`s (rewardlab.annotate.agreement) from groups that carry `meta["annotator"]`.

    The ranking of a task comes from the group's `ranks`, or for pair rows from its pairs (winner rank 1).
    Groups without an annotator are skipped.
    """
    from rewardlab.annotate.agreement import Judgement

    out = []
    for g in groups:
        who = g.meta.get("annotator")
        if who is None:
            continue
        key, order = _task_key(g)
        if g.ranks is not None:
            ranks = list(g.ranks)
        else:
            wins = [0] * len(g.responses)
            for w, _ in g.pairs:
                wins[w] += 1
            ranks = [1 + sum(o > wins[i] for o in wins) for i in range(len(wins))]
        out.append(Judgement(task=key, annotator=str(who), ranking=[int(ranks[i]) for i in order]))
    return out


def annotator_agreement(groups: Sequence[PreferenceGroup]) -> AgreementReport | None:
    """The annotation app's `AgreementReport` over the data's annotators, or None when no task has two
    or more annotators (the noise ceiling cannot be measured from this data)."""
    from rewardlab.annotate.agreement import agreement_report

    judgements = annotator_judgements(groups)
    if not judgements:
        return None
    # one ranking per (task, annotator): a repeated row from the same person is a duplicate, keep the first
    seen, unique = set(), []
    for j in judgements:
        if (j.task, j.annotator) not in seen:
            seen.add((j.task, j.annotator))
            unique.append(j)
    report = agreement_report(unique)
    return report if report.overlapping_tasks > 0 else None
