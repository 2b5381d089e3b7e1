"""Step scores to solution scores (`aggregate`) and how well they match step labels and outcomes.

product: P(every step correct) if steps were independent (Lightman et al.); min: the weakest step;
last: the final step alone; mean: the average step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rewardlab.data.step_encoding import join_plain
from rewardlab.data.steps import StepExample
from rewardlab.scoring.metrics import auroc

AGGREGATIONS = ("product", "min", "last", "mean")


def aggregate(step_probs: Sequence[float], how: str = "product") -> float:
    """One solution score from per-step probabilities (NaN steps, lost to truncation, are skipped).

    product: P(every step correct) if steps were independent (Lightman et al.); min: the weakest
    step; last: the final step alone; mean: the average step.
    """
    ps = [p for p in step_probs if not math.isnan(p)]
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    if not ps:
        return math.nan
    if how == "product":
        return math.prod(ps)
    if how == "min":
        return min(ps)
    if how == "last":
        return ps[-1]
    return sum(ps) / len(ps)


@dataclass
class StepEvalResult:
    """How well step scores and solution scores match step labels and outcomes."""

    solutions: int
    labelled_steps: int
    step_accuracy: float | None
    """Share of labelled steps where (score >= 0.5) agrees with (label >= 0.5)."""
    step_auroc: float | None
    first_error_accuracy: float | None
    """Solutions with a wrong step: share whose lowest-scoring step is the first wrong one."""
    first_below_half_accuracy: float | None
    """Solutions with a wrong step: share whose first step scored < 0.5 is the first wrong one."""
    outcome_auroc: float | None
    outcome_accuracy: float | None
    solution_score: str
    """What scored whole solutions: the PRM's aggregation, or 'reward' for an ORM."""
    reward_mean: float = 0.0
    reward_std: float = 1.0

    @property
    def accuracy(self) -> float:
        """The figure model selection maximises: step AUROC when steps were scored, else outcome AUROC."""
        value = self.step_auroc if self.step_auroc is not None else self.outcome_auroc
        return -1.0 if value is None else value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        def num(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        return (
            f"step AUROC {num(self.step_auroc)}, step accuracy {pct(self.step_accuracy)}, first-error "
            f"accuracy {pct(self.first_error_accuracy)}; outcome AUROC {num(self.outcome_auroc)} "
            f"({self.solution_score}) on {self.solutions} solutions / {self.labelled_steps} labelled steps"
        )


def evaluate_step_scores(
    examples: Sequence[StepExample],
    step_scores: Sequence[Sequence[float]] | None,
    solution_scores: Sequence[float],
    solution_score: str = "product",
) -> StepEvalResult:
    """Step and outcome metrics from probabilities per step (or None) and one score per solution."""
    acc = auc = first = first_half = None
    labelled = sum(y is not None for ex in examples for y in ex.labels)
    if step_scores is not None:
        pairs = [
            (p, y)
            for ex, ps in zip(examples, step_scores, strict=True)
            for p, y in zip(ps, ex.labels, strict=True)
            if y is not None and not math.isnan(p)
        ]
        if pairs:
            acc = sum((p >= 0.5) == (y >= 0.5) for p, y in pairs) / len(pairs)
            auc = auroc([p for p, _ in pairs], [y >= 0.5 for _, y in pairs])
        hits = hits_half = n = 0
        for ex, ps in zip(examples, step_scores, strict=True):
            k = ex.first_error
            if k is None:
                continue
            valid = [i for i, p in enumerate(ps) if not math.isnan(p)]
            if not valid:
                continue
            n += 1
            hits += min(valid, key=lambda i: ps[i]) == k
            hits_half += next((i for i in valid if ps[i] < 0.5), None) == k
        first, first_half = (hits / n, hits_half / n) if n else (None, None)
    outcomes = [(s, ex.outcome_or_steps()) for ex, s in zip(examples, solution_scores, strict=True)]
    outcomes = [(s, y) for s, y in outcomes if y is not None and not math.isnan(s)]
    o_auc = auroc([s for s, _ in outcomes], [y >= 0.5 for _, y in outcomes]) if outcomes else None
    o_acc = sum((s >= 0.5) == (y >= 0.5) for s, y in outcomes) / len(outcomes) if outcomes else None
    finite = [s for s in solution_scores if not math.isnan(s)]
    mean = sum(finite) / len(finite) if finite else 0.0
    std = math.sqrt(sum((s - mean) ** 2 for s in finite) / len(finite)) if finite else 1.0
    return StepEvalResult(
        len(examples), labelled, acc, auc, first, first_half, o_auc, o_acc, solution_score, mean, std or 1.0
    )


def evaluate_steps(
    scorer: Any,
    examples: Sequence[StepExample],
    aggregation: str = "product",
    score_steps: bool | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> StepEvalResult:
    """Score held-out solutions with `scorer` (PRM or ORM) and compute `StepEvalResult`.

    A PRM scores every step in one pass and its solution score is `aggregation` of them. An ORM scores
    the whole solution (sigmoid of the reward); with ``score_steps`` (default: only for PRMs) it also
    scores every prefix, which costs one pass per step.
    """
    is_prm = bool(scorer.card and scorer.card.step_marker)
    score_steps = is_prm if score_steps is None else score_steps
    prompts = [ex.prompt for ex in examples]
    steps = [ex.steps for ex in examples]
    per_step = scorer.score_steps(prompts, steps, on_progress) if score_steps else None
    if is_prm:
        assert per_step is not None
        solution = [aggregate(ps, aggregation) for ps in per_step]
        name = aggregation
    else:
        rewards = scorer.score(prompts, [join_plain(s) for s in steps])
        solution = [1 / (1 + math.exp(-r)) for r in rewards]
        name = "reward"
    return evaluate_step_scores(examples, per_step, solution, name)
