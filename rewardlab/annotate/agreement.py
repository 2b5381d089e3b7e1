"""Inter-annotator agreement over rankings: how noisy the labels are, and who disagrees with the rest.

Only tasks ranked by two or more annotators count. Definitions (docs/annotate.md repeats them):

- **pairwise agreement**: over every task, every pair of its annotators and every pair of its
  responses that both annotators ordered strictly (no tie from either), the fraction where they
  agree on which response is better. Pairs where either annotator tied are counted apart
  (`tied_comparisons`). This is the accuracy one annotator would score at predicting another's
  training pairs, so it is the noise ceiling for a reward model's pairwise accuracy on such labels
  (InstructGPT reports ~73% between labelers; Anthropic's HH data 60-77%).
- **Krippendorff's alpha**: each (task, response) is a unit, each annotator a coder, the rank the
  value; `ordinal` and `interval` metrics (and `nominal`, for completeness). 1 = perfect
  agreement, 0 = chance level, below 0 = systematic disagreement; None when undefined (fewer than
  two pairable values or no variation at all). Computed from the coincidence matrix as in
  Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability".
- **per annotator**: each annotator's pairwise agreement with all the others on shared tasks. An
  annotator is flagged as an outlier when they have at least `min_comparisons` comparisons and
  their agreement is more than `outlier_gap` below the median agreement of the annotators that
  have enough comparisons.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations

METRICS = ("nominal", "ordinal", "interval")


@dataclass
class Judgement:
    """One annotator's ranking of one task (ranking[i] = rank of response i, 1 = best)."""

    task: str
    annotator: str
    ranking: list[int]


@dataclass
class AnnotatorAgreement:
    annotator: str
    labels: int
    overlapping_tasks: int
    """Tasks this annotator ranked that someone else ranked too."""
    comparisons: int
    """Response pairs both this annotator and another one ordered strictly, over shared tasks."""
    agreement: float | None
    """Fraction of those comparisons where the two agreed; None without comparisons."""
    outlier: bool = False


@dataclass
class AgreementReport:
    labels: int
    annotators: int
    tasks: int
    overlapping_tasks: int
    pairwise_agreement: float | None
    comparisons: int
    tied_comparisons: int
    alpha_ordinal: float | None
    alpha_interval: float | None
    per_annotator: list[AnnotatorAgreement] = field(default_factory=list)
    outlier_gap: float = 0.15
    min_comparisons: int = 10

    @property
    def outliers(self) -> list[str]:
        return [a.annotator for a in self.per_annotator if a.outlier]

    def to_dict(self) -> dict:
        """JSON-ready form; `noise_ceiling` repeats `pairwise_agreement` under the name diagnostics read."""
        out = asdict(self)
        out["noise_ceiling"] = self.pairwise_agreement
        out["outliers"] = self.outliers
        return out


def krippendorff_alpha(units: Iterable[Sequence[float]], metric: str = "interval") -> float | None:
    """Krippendorff's alpha for reliability data given as one list of values per unit.

    Each unit lists the values its coders gave (missing coders simply left out); units with fewer
    than two values are not pairable and are ignored. Returns None when alpha is undefined.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown alpha metric {metric!r}: use one of {', '.join(METRICS)}")
    pairable = [list(u) for u in units if len(u) >= 2]
    values = sorted({v for u in pairable for v in u})
    index = {v: i for i, v in enumerate(values)}
    size = len(values)
    coincidence = [[0.0] * size for _ in range(size)]
    for unit in pairable:
        weight = 1.0 / (len(unit) - 1)
        for a, b in combinations(range(len(unit)), 2):
            c, k = index[unit[a]], index[unit[b]]
            coincidence[c][k] += weight
            coincidence[k][c] += weight
    n_c = [sum(row) for row in coincidence]
    n = sum(n_c)
    if n < 2:
        return None

    def delta2(c: int, k: int) -> float:
        if metric == "nominal":
            return 0.0 if c == k else 1.0
        if metric == "interval":
            return float(values[c] - values[k]) ** 2
        lo, hi = min(c, k), max(c, k)  # ordinal: ranks of the values' cumulative frequencies
        return (sum(n_c[lo : hi + 1]) - (n_c[c] + n_c[k]) / 2.0) ** 2

    observed = sum(coincidence[c][k] * delta2(c, k) for c in range(size) for k in range(size)) / n
    expected = sum(n_c[c] * n_c[k] * delta2(c, k) for c in range(size) for k in range(size)) / (n * (n - 1))
    if expected == 0:
        return None
    return 1.0 - observed / expected


def _by_task(judgements: Iterable[Judgement]) -> dict[str, list[Judgement]]:
    tasks: dict[str, list[Judgement]] = defaultdict(list)
    for j in judgements:
        tasks[j.task].append(j)
    for task, js in tasks.items():
        if len({len(j.ranking) for j in js}) != 1:
            raise ValueError(f"task {task!r}: annotators' rankings have different lengths")
        if len({j.annotator for j in js}) != len(js):
            raise ValueError(f"task {task!r}: an annotator appears twice; give one ranking per annotator")
    return tasks


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def ranking_alpha(judgements: Iterable[Judgement], metric: str = "ordinal") -> float | None:
    """Krippendorff's alpha with units = (task, response), coders = annotators, values = ranks."""
    units = []
    for js in _by_task(judgements).values():
        for i in range(len(js[0].ranking)):
            units.append([j.ranking[i] for j in js])
    return krippendorff_alpha(units, metric)


def agreement_report(
    judgements: Iterable[Judgement], outlier_gap: float = 0.15, min_comparisons: int = 10
) -> AgreementReport:
    """Pairwise agreement, alpha and per-annotator agreement with outlier flags (module docstring)."""
    judgements = list(judgements)
    tasks = _by_task(judgements)
    agree = total = ties = 0
    per_agree: dict[str, int] = defaultdict(int)
    per_total: dict[str, int] = defaultdict(int)
    per_labels: dict[str, int] = defaultdict(int)
    per_overlap: dict[str, int] = defaultdict(int)
    for js in tasks.values():
        for j in js:
            per_labels[j.annotator] += 1
            per_overlap[j.annotator] += len(js) > 1
        k = len(js[0].ranking)
        for a, b in combinations(js, 2):
            for i, m in combinations(range(k), 2):
                sa = _sign(a.ranking[i] - a.ranking[m])
                sb = _sign(b.ranking[i] - b.ranking[m])
                if sa == 0 or sb == 0:
                    ties += 1
                    continue
                same = int(sa == sb)
                agree, total = agree + same, total + 1
                for who in (a.annotator, b.annotator):
                    per_agree[who] += same
                    per_total[who] += 1
    per = [
        AnnotatorAgreement(
            annotator=name,
            labels=per_labels[name],
            overlapping_tasks=per_overlap[name],
            comparisons=per_total[name],
            agreement=per_agree[name] / per_total[name] if per_total[name] else None,
        )
        for name in sorted(per_labels)
    ]
    eligible = [p for p in per if p.comparisons >= min_comparisons and p.agreement is not None]
    if len(eligible) >= 2:
        median = statistics.median(p.agreement for p in eligible)
        for p in eligible:
            p.outlier = p.agreement < median - outlier_gap
    return AgreementReport(
        labels=len(judgements),
        annotators=len(per_labels),
        tasks=len(tasks),
        overlapping_tasks=sum(len(js) > 1 for js in tasks.values()),
        pairwise_agreement=agree / total if total else None,
        comparisons=total,
        tied_comparisons=ties,
        alpha_ordinal=ranking_alpha(judgements, "ordinal"),
        alpha_interval=ranking_alpha(judgements, "interval"),
        per_annotator=per,
        outlier_gap=outlier_gap,
        min_comparisons=min_comparisons,
    )
