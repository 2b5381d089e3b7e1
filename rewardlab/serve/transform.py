"""The served reward's normalisation: clip((r - shift) / scale), with shift and scale from the model card
when --normalize is on (checked when the app is built, so a model without statistics fails at start)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardlab.serve.settings import ServeSettings


def reward_transform(card: Any, settings: ServeSettings) -> tuple[float, float, float | None]:
    """(shift, scale, clip) applied as clip((r - shift) / scale); checks that --normalize can work."""
    if not settings.normalize:
        return 0.0, 1.0, settings.clip
    if hasattr(card, "members"):
        raise ValueError(
            "--normalize does not apply to an ensemble: its members are standardised before they are "
            "combined when its ensemble.json has normalize: true; drop --normalize"
        )
    stats_from = getattr(card, "reward_stats_from", "")
    std = float(getattr(card, "reward_std", 0.0) or 0.0)
    if not stats_from or not std > 0:
        raise ValueError(
            "--normalize needs reward_mean/reward_std in the model's rewardlab.json, but this model has "
            f"none (reward_stats_from={stats_from!r}, reward_std={std}); train with `rewardlab train` "
            "(it records them) or drop --normalize"
        )
    return float(card.reward_mean), std, settings.clip


def transform_rewards(raw: Sequence[float], shift: float, scale: float, clip: float | None) -> list[float]:
    out = [(r - shift) / scale for r in raw]
    return [max(-clip, min(clip, r)) for r in out] if clip is not None else out
