"""Reward-model diagnostics: what held-out accuracy alone hides, computed from one scoring pass.

    diag = diagnose(Scorer.from_pretrained("runs/hh-minilm"), groups, reporter)
    # two models: rewardlab.compare.compare(diag_a, diag_b, groups)
    write_report(diag, "runs/hh-minilm/diagnosis")                             # rewardlab.diagnose.report

Sections (docs/diagnostics.md explains each and how to read it): accuracy with a bootstrap interval
per subset and by annotated margin; the noise ceiling (inter-annotator agreement when the data has
several annotators per item, the gold reward's expected accuracy on the demo task, otherwise the
literature range); calibration of σ(Δr) with a temperature fitted on half the prompts and checked on
the other half; length bias; reward-hacking probes (diagnose/probes.py); the score distribution.

Every reward comes from `Scorer` via `rewardlab.scoring.evaluate.score_groups`; the sections are pure
functions of (groups, rewards, lengths) so they are tested on hand-made numbers.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rewardlab.data.types import PreferenceGroup
from rewardlab.diagnose.position import PositionSection, position_probe
from rewardlab.diagnose.probes import ProbeResult, probe_items, probe_results, select_probes
from rewardlab.progress import Reporter
from rewardlab.scoring import metrics
from rewardlab.scoring.evaluate import EvalResult, bootstrap_ci, evaluate_rewards, score_groups

LITERATURE_CEILING = (0.60, 0.77)
"""Published inter-annotator agreement on pairwise preference data (InstructGPT reports 72.6 ± 1.5%
between its training labelers); shown when the data cannot measure its own ceiling."""


@dataclass
class SubsetRow:
    name: str
    prompts: int
    pairs: int
    accuracy: float
    ci_low: float
    ci_high: float


@dataclass
class AccuracySection:
    overall: EvalResult
    subsets: list[SubsetRow] = field(default_factory=list)
    subset_weighted: float | None = None
    """Subset accuracies averaged with weights = prompts per subset (RewardBench-style section score)."""
    margin_buckets: list[tuple[str, int, float]] = field(default_factory=list)
    """(margin value or range, pairs, accuracy) when the data has margins; small margins = near-ties."""


@dataclass
class NoiseSection:
    source: str
    """"annotators" (measured agreement), "gold" (demo task: known gold reward) or "none"."""
    text: str
    model_accuracy: float
    ceiling: float | None = None
    pairwise_agreement: float | None = None
    alpha_ordinal: float | None = None
    alpha_interval: float | None = None
    annotators: int = 0
    overlapping_tasks: int = 0
    comparisons: int = 0
    labels_vs_gold: float | None = None
    """Demo: how often the drawn labels agree with the gold ordering."""
    model_vs_gold: float | None = None
    """Demo: how often the model's ordering agrees with the gold ordering."""


@dataclass
class CalibrationSection:
    ece: float
    """ECE of σ(Δ) on all pairs, temperature 1."""
    bins: list[metrics.ReliabilityBin]
    temperature: float
    """Fitted on `fit_pairs` (half of the prompts); checked on `check_pairs` (the other half)."""
    fit_pairs: int
    check_pairs: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    bins_after: list[metrics.ReliabilityBin]
    """All pairs at the fitted temperature."""


@dataclass
class LengthSection:
    spearman: float | None
    """Spearman ρ between each response's reward and its length in tokens."""
    longer_wins: float
    shorter_wins: float
    split: metrics.LengthSplit
    mean_tokens_chosen: float
    mean_tokens_rejected: float


@dataclass
class DistributionSection:
    mean: float
    std: float
    min: float
    max: float
    per_subset: list[tuple[str, int, float, float]]
    """(subset, responses, mean, std)."""
    card_mean: float | None = None
    card_std: float | None = None
    card_from: str = ""


@dataclass
class Raw:
    """Per-response numbers kept for plots and comparisons (not written to the JSON)."""

    rewards: list[list[float]]
    lengths: list[list[int]]
    deltas: list[float]
    subsets: list[str]
    """Each group's subset ("all" when it has none)."""


@dataclass
class Diagnosis:
    model: str
    data: str
    data_lines: list[str]
    groups: int
    pairs: int
    accuracy: AccuracySection
    noise: NoiseSection
    calibration: CalibrationSection
    length: LengthSection
    probes: list[ProbeResult]
    distribution: DistributionSection
    seconds: float
    raw: Raw = field(repr=False, compare=False)
    position: PositionSection | None = None
    """Pairwise judges only (scorers with `compare`): the A/B-swap probe (rewardlab.diagnose.position)."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("raw")
        return finite(out)


def finite(x: Any) -> Any:
    """NaN/inf become None so the JSON is standard."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite(v) for v in x]
    return x


# --- sections: pure functions of groups, rewards and lengths ---------------------------------------------


def pair_deltas(groups: Sequence[PreferenceGroup], rewards: Sequence[Sequence[float]]) -> list[float]:
    """r_winner - r_loser for every labelled pair, in group order."""
    return [r[w] - r[lo] for g, r in zip(groups, rewards, strict=True) for w, lo in g.pairs]


def accuracy_section(
    groups: Sequence[PreferenceGroup], rewards: Sequence[Sequence[float]], n_boot: int = 1000, seed: int = 0
) -> AccuracySection:
    overall = evaluate_rewards(groups, rewards, n_boot=n_boot, seed=seed)
    by_subset: dict[str, list[tuple[float, int]]] = {}
    keys, deltas = [], []
    for g, r in zip(groups, rewards, strict=True):
        d = [r[w] - r[lo] for w, lo in g.pairs]
        if g.subset is not None and d:
            by_subset.setdefault(g.subset, []).append((sum(map(metrics.pair_outcome, d)), len(d)))
        if g.margins is not None:
            keys += g.margins
            deltas += d
    rows = []
    for name, per_group in sorted(by_subset.items()):
        lo, hi = bootstrap_ci(per_group, n_boot, seed)
        pairs = sum(n for _, n in per_group)
        rows.append(SubsetRow(name, len(per_group), pairs, sum(c for c, _ in per_group) / pairs, lo, hi))
    weighted = None
    if rows:
        weighted = sum(r.accuracy * r.prompts for r in rows) / sum(r.prompts for r in rows)
    return AccuracySection(overall, rows, weighted, metrics.bucket_accuracy(keys, deltas))


def noise_section(groups: Sequence[PreferenceGroup], accuracy: EvalResult) -> NoiseSection:
    agreement = metrics.annotator_agreement(groups)
    if agreement is not None and agreement.pairwise_agreement is not None:
        return NoiseSection(
            "annotators",
            f"{agreement.annotators} annotators, {agreement.overlapping_tasks} items labelled by two or "
            "more. Pairwise agreement between annotators is the accuracy one annotator scores at "
            "predicting another's labels: a model matching the consensus cannot expect more against "
            "single labels.",
            accuracy.accuracy,
            ceiling=agreement.pairwise_agreement,
            pairwise_agreement=agreement.pairwise_agreement,
            alpha_ordinal=agreement.alpha_ordinal,
            alpha_interval=agreement.alpha_interval,
            annotators=agreement.annotators,
            overlapping_tasks=agreement.overlapping_tasks,
            comparisons=agreement.comparisons,
        )
    if groups and all(isinstance(g.meta.get("gold"), list) for g in groups):
        from rewardlab.data.gold import gold_agreement, noise_ceiling

        return NoiseSection(
            "gold",
            "Demo task: the gold reward is known and the labels were drawn from it with annotator noise, "
            "so the ceiling is the gold reward's own expected accuracy against these labels.",
            accuracy.accuracy,
            ceiling=noise_ceiling(groups),
            labels_vs_gold=gold_agreement(groups),
            model_vs_gold=accuracy.gold_agreement,
        )
    lo, hi = LITERATURE_CEILING
    why = "one label per comparison (no `annotator` field with repeated items)"
    if any("votes" in g.meta for g in groups):
        why = (
            "labels aggregated over annotators (`votes`); export one row per annotator "
            "(`rewardlab annotate export` without aggregation) to measure agreement"
        )
    return NoiseSection(
        "none",
        f"This data has {why}, so its noise "
        f"ceiling cannot be measured here. Published inter-annotator agreement on comparable preference "
        f"data is {100 * lo:.0f}-{100 * hi:.0f}% (InstructGPT: 72.6 ± 1.5% between training labelers); "
        "a held-out accuracy in that range may already be at the ceiling.",
        accuracy.accuracy,
    )


def calibration_section(
    groups: Sequence[PreferenceGroup], deltas: Sequence[float], seed: int = 0
) -> CalibrationSection:
    """ECE at T=1; a temperature fitted on a random half of the prompts and checked on the other half."""
    order = list(range(len(groups)))
    random.Random(f"rewardlab-calibration:{seed}").shuffle(order)
    fit_groups = set(order[: (len(order) + 1) // 2])
    fit, check, i = [], [], 0
    for gi, g in enumerate(groups):
        for _ in g.pairs:
            (fit if gi in fit_groups else check).append(deltas[i])
            i += 1
    if not check:  # a single prompt: fit and check on the same pairs rather than on nothing
        check = fit
    t = metrics.fit_temperature(fit)
    return CalibrationSection(
        ece=metrics.expected_calibration_error(deltas),
        bins=metrics.reliability_bins(deltas),
        temperature=t,
        fit_pairs=len(fit),
        check_pairs=len(check),
        ece_before=metrics.expected_calibration_error(check),
        ece_after=metrics.expected_calibration_error(check, t),
        nll_before=metrics.pair_nll(check),
        nll_after=metrics.pair_nll(check, t),
        bins_after=metrics.reliability_bins(deltas, t),
    )


def length_section(
    groups: Sequence[PreferenceGroup], rewards: Sequence[Sequence[float]], lengths: Sequence[Sequence[int]]
) -> LengthSection:
    flat_r = [x for r in rewards for x in r]
    flat_n = [float(n) for ns in lengths for n in ns]
    len_w, len_l, deltas = [], [], []
    for g, r, n in zip(groups, rewards, lengths, strict=True):
        for w, lo in g.pairs:
            len_w.append(n[w])
            len_l.append(n[lo])
            deltas.append(r[w] - r[lo])
    longer, shorter = metrics.length_rule_accuracy(len_w, len_l)
    return LengthSection(
        spearman=metrics.spearman(flat_r, flat_n),
        longer_wins=longer,
        shorter_wins=shorter,
        split=metrics.length_split_accuracy(len_w, len_l, deltas),
        mean_tokens_chosen=sum(len_w) / max(1, len(len_w)),
        mean_tokens_rejected=sum(len_l) / max(1, len(len_l)),
    )


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1))


def distribution_section(
    groups: Sequence[PreferenceGroup], rewards: Sequence[Sequence[float]], card: Any = None
) -> DistributionSection:
    flat = [x for r in rewards for x in r]
    mean, std = _mean_std(flat)
    by: dict[str, list[float]] = {}
    for g, r in zip(groups, rewards, strict=True):
        if g.subset is not None:
            by.setdefault(g.subset, []).extend(r)
    per = [(name, len(xs), *_mean_std(xs)) for name, xs in sorted(by.items())]
    out = DistributionSection(mean, std, min(flat), max(flat), per)
    if card is not None:
        out.card_mean, out.card_std, out.card_from = card.reward_mean, card.reward_std, card.reward_stats_from
    return out


# --- the scoring pass ------------------------------------------------------------------------------------


def response_lengths(encoder: Any, groups: Sequence[PreferenceGroup]) -> list[list[int]]:
    """Tokens of each response as the model reads it (its rendered text, before truncation)."""
    texts = [encoder.render(g.prompt, r)[1] for g in groups for r in g.responses]
    ids = encoder.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    out, i = [], 0
    for g in groups:
        out.append([len(x) for x in ids[i : i + len(g.responses)]])
        i += len(g.responses)
    return out


def diagnose(
    scorer: Any,
    groups: Sequence[PreferenceGroup],
    reporter: Reporter | None = None,
    *,
    model: str = "",
    data: str = "",
    data_lines: Sequence[str] = (),
    probes: Sequence[str] | None = None,
    probe_prompts: int = 100,
    n_boot: int = 1000,
    seed: int = 0,
    gold: Callable[[Any, Any], float] | None = None,
    position_pairs: int = 100,
) -> Diagnosis:
    """Score `groups` (and the probe edits) once with `scorer` and compute every section.

    `gold(prompt, response)`, when given (the demo task's `gold_reward`), also measures each probe's
    true effect. A scorer that can `compare` two responses (a generative judge) also gets the
    position-bias probe on `position_pairs` sampled pairs. Progress goes to `reporter`.
    """
    reporter = reporter or Reporter()
    if not any(g.pairs for g in groups):
        raise ValueError(f"{data or 'data'}: no preference pairs to diagnose (every group is tied or empty)")
    chosen = select_probes(probes)
    started = time.perf_counter()
    reporter.start("scoring responses", sum(len(g.responses) for g in groups))
    rewards = score_groups(scorer, groups, reporter.advance)
    reporter.finish()
    if hasattr(scorer, "response_lengths"):  # a judge: lengths as it reads them (rewardlab.judge)
        lengths = scorer.response_lengths(groups)
    else:
        lengths = response_lengths(scorer.encoder, groups)
    items = probe_items(groups, rewards, chosen, probe_prompts, seed)
    reporter.start("scoring probes", len(items))
    edited = scorer.score([it.prompt for it in items], [it.edited for it in items], reporter.advance)
    reporter.finish()
    position = None
    if hasattr(scorer, "compare") and position_pairs > 0:
        reporter.start(
            "position-bias probe (A/B swapped)", min(position_pairs, sum(len(g.pairs) for g in groups))
        )
        position = position_probe(scorer, groups, lengths, position_pairs, seed, reporter.advance)
        reporter.finish()
    deltas = pair_deltas(groups, rewards)
    acc = accuracy_section(groups, rewards, n_boot, seed)
    return Diagnosis(
        model=model,
        data=data,
        data_lines=list(data_lines),
        groups=len(groups),
        pairs=len(deltas),
        accuracy=acc,
        noise=noise_section(groups, acc.overall),
        calibration=calibration_section(groups, deltas, seed),
        length=length_section(groups, rewards, lengths),
        probes=probe_results(items, edited, acc.overall.reward_std, gold),
        distribution=distribution_section(groups, rewards, getattr(scorer, "card", None)),
        seconds=time.perf_counter() - started,
        raw=Raw(rewards, lengths, deltas, [g.subset or "all" for g in groups]),
        position=position,
    )
