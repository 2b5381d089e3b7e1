"""Held-out pairwise accuracy, honestly reported: ties count half, and a bootstrap interval over prompts.

Pairs of one prompt are correlated, so the bootstrap resamples prompts (groups), not pairs. Scores
come from `Scorer`, the same model path serving and diagnostics use; a group's prompt is cut once, as
in training.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rewardlab.data.types import PreferenceGroup


@dataclass
class EvalResult:
    """Pairwise accuracy and reward statistics of a model on preference groups."""

    accuracy: float
    ci_low: float
    ci_high: float
    pairs: int
    groups: int
    mean_margin: float
    """Mean r_w - r_l over pairs (the scale is arbitrary; compare between runs of one model only)."""
    reward_mean: float
    reward_std: float
    per_subset: dict[str, dict[str, float]] = field(default_factory=dict)
    gold_agreement: float | None = None
    """Demo task only: accuracy of the model's ordering against the gold reward's ordering."""
    noise_ceiling: float | None = None
    """Demo task only (set by the caller): expected accuracy of the gold reward against the noisy labels."""
    expected_accuracy: float | None = None
    """Demo task only: this model's accuracy averaged over annotator noise (compare with the ceiling)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        text = (
            f"accuracy {100 * self.accuracy:.1f}% (95% CI {100 * self.ci_low:.1f}-{100 * self.ci_high:.1f}) "
            f"on {self.pairs} pairs / {self.groups} prompts"
        )
        if self.noise_ceiling is not None:
            text += f"; noise ceiling {100 * self.noise_ceiling:.1f}%"
        if self.expected_accuracy is not None:
            text += f" (expected accuracy over annotator noise {100 * self.expected_accuracy:.1f}%)"
        return text


def score_groups(scorer: Any, groups: Sequence[PreferenceGroup], on_progress: Callable | None = None) -> list:
    """Rewards of every response of every group, each response scored once.

    Each group's prompt is cut once, as in training (`TextEncoder.encode_groups`), so chosen and
    rejected are compared on the same context and the accuracy equals the one `train` reports; a
    decoder encodes that shared prompt once per group (`Scorer.score_encoded_groups`). Scorers without
    that method (an `EnsembleScorer`, a remote client) score each (prompt, response) with `.score`.
    """
    if hasattr(scorer, "score_encoded_groups"):
        encoded = scorer.encoder.encode_groups([(g.prompt, g.responses) for g in groups])
        return scorer.score_encoded_groups(encoded, on_progress)
    prompts = [g.prompt for g in groups for _ in g.responses]
    flat = scorer.score(prompts, [r for g in groups for r in g.responses], on_progress)
    out, i = [], 0
    for g in groups:
        out.append(flat[i : i + len(g.responses)])
        i += len(g.responses)
    return out


def pair_correct(rw: float, rl: float) -> float:
    """One pair ordered as labelled: 1, a tie 0.5 (the one protocol for every accuracy here), else 0."""
    return 1.0 if rw > rl else 0.5 if rw == rl else 0.0


def bootstrap_ci(
    per_group: Sequence[tuple[float, int]], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of pooled accuracy, resampling groups: per_group = (correct, pairs)."""
    check_bootstrap(n_boot)
    if not per_group:
        return math.nan, math.nan
    rng = random.Random(seed)
    n = len(per_group)
    stats = []
    for _ in range(n_boot):
        sample = [per_group[rng.randrange(n)] for _ in range(n)]
        total = sum(p for _, p in sample)
        stats.append(sum(c for c, _ in sample) / total if total else math.nan)
    stats.sort()
    lo = stats[int((1 - level) / 2 * n_boot)]
    hi = stats[min(n_boot - 1, int((1 + level) / 2 * n_boot))]
    return lo, hi


def evaluate_rewards(
    groups: Sequence[PreferenceGroup], rewards: Sequence[Sequence[float]], n_boot: int = 1000, seed: int = 0
) -> EvalResult:
    per_group, margins, subset = [], [], {}
    gold_hits, gold_pairs = 0.0, 0
    for g, r in zip(groups, rewards, strict=True):
        correct = sum(pair_correct(r[w], r[lo]) for w, lo in g.pairs)
        per_group.append((correct, len(g.pairs)))
        margins.extend(r[w] - r[lo] for w, lo in g.pairs)
        if g.subset is not None:
            c, n = subset.get(g.subset, (0.0, 0))
            subset[g.subset] = (c + correct, n + len(g.pairs))
        gold = g.meta.get("gold")
        if gold is not None:
            for i in range(len(r)):
                for j in range(i + 1, len(r)):
                    if gold[i] != gold[j]:
                        hi, lo_ = (i, j) if gold[i] > gold[j] else (j, i)
                        gold_hits += pair_correct(r[hi], r[lo_])
                        gold_pairs += 1
    n_pairs = sum(n for _, n in per_group)
    if n_pairs == 0:
        raise ValueError("no preference pairs to evaluate (all responses tied or the data is empty)")
    flat = [x for r in rewards for x in r]
    mean = sum(flat) / len(flat)
    std = math.sqrt(sum((x - mean) ** 2 for x in flat) / max(1, len(flat) - 1))
    lo, hi = bootstrap_ci(per_group, n_boot, seed)
    return EvalResult(
        accuracy=sum(c for c, _ in per_group) / n_pairs,
        ci_low=lo,
        ci_high=hi,
        pairs=n_pairs,
        groups=len(per_group),
        mean_margin=sum(margins) / len(margins),
        reward_mean=mean,
        reward_std=std,
        per_subset={k: {"accuracy": c / n, "pairs": n} for k, (c, n) in sorted(subset.items()) if n},
        gold_agreement=gold_hits / gold_pairs if gold_pairs else None,
    )


def check_bootstrap(n_boot: int) -> None:
    """Refuse a resample count the percentile interval cannot use (it indexes the sorted resamples)."""
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"--bootstrap must be at least 1 (resamples for the 95% interval), got {n_boot!r}")


def evaluate(
    scorer: Any, groups: Sequence[PreferenceGroup], on_progress: Callable | None = None, n_boot: int = 1000
) -> EvalResult:
    """Score `groups` with `scorer` and report their accuracy; `n_boot` is checked before any scoring."""
    check_bootstrap(n_boot)
    return evaluate_rewards(groups, score_groups(scorer, groups, on_progress), n_boot=n_boot)


def evaluate_encoded(
    scorer: Any, groups: Sequence[PreferenceGroup], encoded: Sequence[Any], ceiling: float | None = None
) -> EvalResult:
    """`evaluate_rewards` of groups already encoded as training encodes them (`encode_groups`: each
    group's prompt cut once). `ceiling`, when the groups carry a gold reward (the demo task), is set as
    the noise ceiling and the model's noise-free expected accuracy is added next to it."""
    rewards = scorer.score_encoded_groups([g.responses for g in encoded])
    result = evaluate_rewards(groups, rewards)
    if ceiling is not None:
        from rewardlab.data.gold import expected_accuracy

        result.noise_ceiling = ceiling
        result.expected_accuracy = expected_accuracy(groups, rewards)
    return result
