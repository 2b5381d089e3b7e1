"""The Scorer an adapter runs in process: loaded once per model folder and process, shared by adapters.

RL frameworks import a reward file and call one function per batch or per item (verl, OpenRLHF), often
from several threads; loading the model on every call would dominate the step. `scorer_for` keeps one
`Scorer` per (folder, device) and a lock per Scorer, since a torch module is not safe to call from two
threads at once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

MODEL_ENV = "REWARDLAB_MODEL"
"""Environment variable naming the model folder, for engines that import a file and pass no arguments."""

_cache: dict[tuple[str, str | None], tuple[Any, threading.Lock]] = {}
_cache_lock = threading.Lock()


def model_from_env(model: str | Path | None) -> str:
    """`model`, else $REWARDLAB_MODEL; an error that names both when neither is set."""
    chosen = str(model) if model else os.environ.get(MODEL_ENV, "")
    if not chosen:
        raise ValueError(
            f"no reward model given: pass model=FOLDER or set ${MODEL_ENV} to a folder written by "
            "`rewardlab train`"
        )
    return chosen


def scorer_for(model: str | Path | None = None, device: str | None = None) -> tuple[Any, threading.Lock]:
    """(Scorer, lock) for `model` (or $REWARDLAB_MODEL), loaded on first use."""
    from rewardlab.scoring.scorer import Scorer

    key = (str(Path(model_from_env(model)).resolve()), device)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = (Scorer.from_pretrained(key[0], device=device), threading.Lock())
        return _cache[key]


def normalized(rewards: list[float], card: Any, normalize: bool) -> list[float]:
    """(r - reward_mean) / reward_std with the card's statistics when `normalize` (the server's rule)."""
    if not normalize:
        return rewards
    std = float(getattr(card, "reward_std", 0.0) or 0.0)
    if not getattr(card, "reward_stats_from", "") or not std > 0:
        raise ValueError(
            "normalize=True needs reward_mean/reward_std in the model's rewardlab.json and this model has "
            "none; train with `rewardlab train` (it records them) or drop normalize"
        )
    return [(r - card.reward_mean) / std for r in rewards]
