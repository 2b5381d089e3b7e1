"""Gold-aware metrics for any preference groups that carry a known gold reward (``meta["gold"]``: one per
response, and optionally the annotators' temperature ``meta["tau"]``), as the demo task's groups and demo
JSONL do: the Bradley-Terry annotator's preference probability, the noise ceiling it implies, the gold
ordering's agreement with the labels, and a model's accuracy averaged over annotator noise.

Pure Python on groups, so training, evaluation and diagnostics use them without importing the demo task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rewardlab.data.types import PreferenceGroup

DEFAULT_TAU = 2.0
"""Annotator temperature assumed when a group's meta gives none: the demo task's (rewardlab.demo.task.TAU)."""


def preference_probability(gold_a: float, gold_b: float, tau: float = DEFAULT_TAU) -> float:
    """P(a preferred to b) = σ((gold_a - gold_b) / tau), the Bradley-Terry annotator."""
    x = (gold_a - gold_b) / tau
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _gold_of(group: PreferenceGroup) -> tuple[list[float], float]:
    gold = group.meta.get("gold")
    if not isinstance(gold, list) or len(gold) != len(group.responses):
        raise ValueError(
            f"{group.source or 'group'}: meta['gold'] must hold one gold reward per response; "
            "groups from make_demo_groups/demo_splits (or demo JSONL with its 'gold' field) have it"
        )
    return [float(g) for g in gold], float(group.meta.get("tau", DEFAULT_TAU))


def noise_ceiling(groups: Sequence[PreferenceGroup]) -> float:
    """Expected pairwise accuracy of the gold reward itself against the annotators' labels.

    Mean over labelled pairs of max(p, 1-p), p = σ((g_a - g_b) / tau): the Bayes-optimal accuracy, so no
    reward model can expect to beat it on these pairs (ties in gold give 0.5).
    """
    values = []
    for group in groups:
        gold, tau = _gold_of(group)
        for a, b in group.pairs:
            p = preference_probability(gold[a], gold[b], tau)
            values.append(max(p, 1.0 - p))
    if not values:
        raise ValueError("noise_ceiling needs at least one labelled pair")
    return sum(values) / len(values)


def gold_agreement(groups: Sequence[PreferenceGroup]) -> float:
    """Fraction of labelled pairs whose winner has the higher gold reward (gold ties count half): the
    gold ordering's accuracy against the labels actually drawn; close to `noise_ceiling` on many pairs."""
    hits = []
    for group in groups:
        gold, _ = _gold_of(group)
        hits += [1.0 if gold[w] > gold[r] else 0.5 if gold[w] == gold[r] else 0.0 for w, r in group.pairs]
    if not hits:
        raise ValueError("gold_agreement needs at least one labelled pair")
    return sum(hits) / len(hits)


def expected_accuracy(groups: Sequence[PreferenceGroup], rewards: Sequence[Sequence[float]]) -> float:
    """A model's pairwise accuracy averaged over the annotators' noise instead of over one draw of labels.

    `rewards[i][j]` is the model's reward for groups[i].responses[j]. For each labelled pair the model
    orders a above b, it agrees with the annotator with probability σ((g_a - g_b) / tau) (1/2 on a tied
    reward). Gold rewards score exactly `noise_ceiling`, so the two compare directly, without the test
    labels' sampling noise (about ±1.3 points on the 1,260 test pairs).
    """
    if len(rewards) != len(groups):
        raise ValueError(f"{len(rewards)} reward lists for {len(groups)} groups; give one list per group")
    values = []
    for group, scores in zip(groups, rewards, strict=True):
        gold, tau = _gold_of(group)
        if len(scores) != len(gold):
            raise ValueError(f"{group.source or 'group'}: {len(scores)} rewards for {len(gold)} responses")
        for a, b in group.pairs:
            p = preference_probability(gold[a], gold[b], tau)
            values.append(0.5 if scores[a] == scores[b] else p if scores[a] > scores[b] else 1.0 - p)
    if not values:
        raise ValueError("expected_accuracy needs at least one labelled pair")
    return sum(values) / len(values)
