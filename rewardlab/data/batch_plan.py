"""Length-grouped training batches over a numpy lengths column, for data that is not a Python list.

`plan_batches` is the one batch sampler (shuffle, length-sorted windows, shuffled batch order);
`batching.batch_indices` returns its batches as lists for in-memory data. It holds them as two int64
arrays instead of a list of lists: 1M groups cost 16 MB, not ~100 MB of Python
objects. `rewardlab train --stream` uses it over `TokenCache.lengths`, so a streamed run and an
in-memory run with the same seed train on the same batches.
"""

from __future__ import annotations

import array
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class BatchPlan(Sequence):
    """Batches of item indices: batch k is ``order[b * size : (b + 1) * size]`` with ``b = batch_ids[k]``."""

    order: np.ndarray
    """Every item index once, batch by batch (length-sorted inside each window)."""
    batch_ids: np.ndarray
    """Which batch comes k-th (after the shuffle of batches, and the per-process share)."""
    size: int

    def __len__(self) -> int:
        return len(self.batch_ids)

    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            return BatchPlan(self.order, self.batch_ids[k], self.size)
        b = int(self.batch_ids[k])
        return self.order[b * self.size : (b + 1) * self.size]

    def shard(self, rank: int, world: int) -> BatchPlan:
        """This process's batches, as training deals them: every world-th, equal counts."""
        if world <= 1:
            return self
        per_rank = len(self) // world
        return BatchPlan(self.order, self.batch_ids[rank::world][:per_rank], self.size)

    def steps(self, grad_accum: int) -> Steps:
        """The batches cut into optimizer steps of `grad_accum` micro-batches (the last may be shorter)."""
        return Steps(self, grad_accum)


@dataclass
class Steps(Sequence):
    """Step k: the micro-batches ``plan[k * n : (k + 1) * n]``, made when asked for."""

    plan: BatchPlan
    n: int

    def __len__(self) -> int:
        return -(-len(self.plan) // self.n)

    def __getitem__(self, k: int) -> list[np.ndarray]:  # type: ignore[override]
        if not 0 <= k < len(self):
            raise IndexError(k)
        return [self.plan[j] for j in range(k * self.n, min(len(self.plan), (k + 1) * self.n))]


def plan_batches(
    lengths: np.ndarray | Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int = 0,
    shuffle: bool = True,
    length_grouped: bool = True,
    window: int = 50,
) -> BatchPlan:
    """Shuffled batches of item indices, length-grouped within windows of `window` batches (the module
    docstring says why arrays); the order depends only on (seed, epoch)."""
    lengths = np.asarray(lengths)
    n = len(lengths)
    rng = random.Random(seed * 1_000_003 + epoch)
    order = np.arange(n, dtype=np.int64)
    if shuffle:
        order = _shuffled(n, rng)
    if length_grouped:
        span = batch_size * window
        for start in range(0, n, span):
            part = order[start : start + span]
            order[start : start + span] = part[np.argsort(lengths[part], kind="stable")]  # sorted() is stable
    num_batches = -(-n // batch_size)
    batch_ids = np.arange(num_batches, dtype=np.int64)
    if shuffle and length_grouped:
        batch_ids = _shuffled(num_batches, rng)
    return BatchPlan(order, batch_ids, batch_size)


def _shuffled(n: int, rng: random.Random) -> np.ndarray:
    """``rng.shuffle(list(range(n)))`` as an int64 array, without n Python ints alive at once.

    random.shuffle's swaps depend only on the length and the generator state, so shuffling this
    compact array draws the same permutation (and advances `rng` the same) as shuffling a list would.
    """
    items = array.array("q", range(n))
    rng.shuffle(items)
    return np.frombuffer(items, dtype=np.int64).copy()
