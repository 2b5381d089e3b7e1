"""Evaluation of a regression / multi-attribute reward model: per-attribute correlation with the ratings,
next to the pairwise accuracy of its combined reward (scoring/evaluate.py, with its bootstrap interval
over prompts and, where the groups carry a gold reward, gold agreement).

Ratings data's groups (rewardlab.data.formats ``ratings``) carry the targets in ``meta``: ``scores`` (one
per completion) or ``attribute_scores`` (one {attribute: rating} per completion). `targets_of` reads
them for the attributes a model was trained on, and `rank_by_combination` re-derives a group's pairs from
the combined rating Σ w_a · y_a, so the pairwise accuracy judges the scalar the model is trained to give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rewardlab.data.types import DataError, PreferenceGroup
from rewardlab.scoring.evaluate import EvalResult, evaluate_rewards
from rewardlab.scoring.metrics import pearson, spearman


def targets_of(group: PreferenceGroup, attributes: Sequence[str]) -> list[list[float]]:
    """The (K, A) ratings of a group's completions for `attributes` (``["score"]``: the plain score);
    DataError naming the row and the missing field otherwise."""
    per_completion = group.meta.get("attribute_scores")
    if list(attributes) == ["score"] and (per_completion is None or "score" not in per_completion[0]):
        scores = group.meta.get("scores")
        if scores is None:
            raise DataError(
                f"{group.source}: no ratings (this is not ratings data: 'completions' with 'score')"
            )
        return [[float(s)] for s in scores]
    if per_completion is None:
        raise DataError(
            f"{group.source}: --attributes {','.join(attributes)} needs per-attribute 'scores' in each "
            "completion"
        )
    out = []
    for i, ratings in enumerate(per_completion):
        missing = [a for a in attributes if a not in ratings]
        if missing:
            raise DataError(
                f"{group.source}: field 'completions[{i}].scores' has no {', '.join(map(repr, missing))} "
                f"(it has {', '.join(map(repr, ratings))}); --attributes names what to train"
            )
        out.append([float(ratings[a]) for a in attributes])
    return out


def rank_by_combination(
    group: PreferenceGroup, targets: list[list[float]], weights: Sequence[float]
) -> PreferenceGroup:
    """`group` with its pairs (and their margins: the rating gaps) re-derived from the combined ratings,
    and the targets kept in ``meta["targets"]``; ties give no pair."""
    combined = [sum(w * y for w, y in zip(weights, row, strict=True)) for row in targets]
    pairs = [
        (i, j)
        for i in range(len(combined))
        for j in range(len(combined))
        if combined[i] > combined[j] and group.responses[i] != group.responses[j]
    ]
    group.pairs = pairs
    group.margins = [combined[i] - combined[j] for i, j in pairs]
    group.ranks = None
    group.meta["targets"] = targets
    return group


@dataclass
class AttributeEvalResult(EvalResult):
    """`EvalResult` (pairwise accuracy of the combined reward) plus per-attribute agreement."""

    attributes: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """name -> {pearson, spearman, mse} of the predicted attribute against its rating, over responses."""
    combined_pearson: float | None = None
    """Pearson r of the reward against the combined rating Σ w_a · y_a."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        parts = [
            f"{name} r={_num(m['pearson'])} ρ={_num(m['spearman'])}" for name, m in self.attributes.items()
        ]
        return super().line() + "; " + ", ".join(parts)


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def evaluate_attributes(
    groups: Sequence[PreferenceGroup],
    rewards: Sequence[Sequence[float]],
    values: Sequence[Sequence[Sequence[float]]],
    attributes: Sequence[str],
    weights: Sequence[float],
    n_boot: int = 1000,
) -> AttributeEvalResult:
    """The figures of a multi-attribute model: `rewards` [group][response], `values` [group][response][a]
    (the model's attributes), against ``meta["targets"]`` (`rank_by_combination`)."""
    base = evaluate_rewards(groups, rewards, n_boot=n_boot)
    flat_pred = [v for g in values for v in g]
    flat_true = [t for g in groups for t in g.meta["targets"]]
    per: dict[str, dict[str, float | None]] = {}
    for a, name in enumerate(attributes):
        x, y = [p[a] for p in flat_pred], [t[a] for t in flat_true]
        mse = sum((p - t) ** 2 for p, t in zip(x, y, strict=True)) / max(1, len(x))
        per[name] = {"pearson": pearson(x, y), "spearman": spearman(x, y), "mse": mse}
    combined_true = [sum(w * t for w, t in zip(weights, row, strict=True)) for row in flat_true]
    flat_rewards = [r for g in rewards for r in g]
    result = AttributeEvalResult(**asdict(base), attributes=per)
    result.combined_pearson = pearson(flat_rewards, combined_true)
    return result


def evaluate_attribute_groups(
    scorer: Any, groups: Sequence[PreferenceGroup], encoded: Sequence[Any] | None = None, n_boot: int = 1000
) -> AttributeEvalResult:
    """Score `groups` (each group's prompt cut once, as in training) with a multi-attribute `Scorer` and
    evaluate them; `encoded` (training's `encode_groups` output) skips the tokenising."""
    if encoded is None:
        enc = scorer.encoder.encode_groups([(g.prompt, g.responses) for g in groups])
    else:
        enc = [g.responses for g in encoded]
    flat = [e for g in enc for e in g]
    rewards, values = scorer.score_encoded_attributes(flat)
    sizes = [len(g) for g in enc]
    card = scorer.card
    return evaluate_attributes(
        groups, _split(rewards, sizes), _split(values, sizes), card.attributes, card.attribute_weights, n_boot
    )


def _split(flat: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    out, i = [], 0
    for n in sizes:
        out.append(list(flat[i : i + n]))
        i += n
    return out
