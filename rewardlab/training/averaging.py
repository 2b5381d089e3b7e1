"""Weight averaging: an exponential moving average (EMA) of the trainable weights, evaluated and saved
in place of the last weights.

A reward model trained for one epoch ends on whatever its last few hundred noisy pair-gradients left;
the EMA is the average of the recent trajectory, which the recipe study (docs/recipes.md) measures
against the last weights. The average lives beside the optimizer (fp32, one copy of the trainable
parameters), is registered with accelerate so checkpoints carry it and ``--resume`` continues it, and
is swapped into the model only while the model is evaluated or saved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch


class WeightAverage:
    """EMA of `params`: after each optimizer step ``avg ← decay·avg + (1 - decay)·w``."""

    def __init__(self, params: Sequence[torch.nn.Parameter], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"--ema-decay must be in (0, 1), got {decay}")
        self.params = list(params)
        self.decay = decay
        self.average = [p.detach().float().clone() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        # early on the average would be dominated by the initial weights: use decay min(d, (1+n)/(10+n))
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for avg, p in zip(self.average, self.params, strict=True):
            avg.lerp_(p.detach().float(), 1.0 - decay)

    @contextlib.contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own weights again after it."""
        backup = [p.detach().clone() for p in self.params]
        for p, avg in zip(self.params, self.average, strict=True):
            p.copy_(avg.to(p.dtype))
        try:
            yield
        finally:
            for p, b in zip(self.params, backup, strict=True):
                p.copy_(b)

    def state_dict(self) -> dict:
        return {"average": self.average, "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.average = [a.to(p.device) for a, p in zip(state["average"], self.params, strict=True)]
        self.updates = int(state["updates"])
