"""Notice when training has collapsed: every item gets the same reward, so the loss sits at chance.

A fine-tune at too high a learning rate can fall into a state where the network maps every input to
one output (measured here: MiniLM on 22k injected-error GSM8K solutions, lr 1e-4, bf16, collapsed
between steps 100 and 200 of 2,780 and sat at loss 0.693 from then on). Nothing fails: the loss is
merely flat, so a long run spends its hours learning nothing. The loop logs the spread of each step's
rewards (``reward_sd`` in metrics.jsonl) and `CollapseWatch` says once, with the flag to change, when
that spread has stayed near zero for a window of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

COLLAPSE_SD = 1e-3
"""Below this standard deviation of a step's rewards (logit units) every item scores alike. Measured on
a tiny random BERT (tests/test_collapse.py): a healthy run's spread rises from ~0 at its first steps to
0.02 by step 7 and 2.7 at the end; at lr 0.5 it is exactly 0 from the first step on."""
COLLAPSE_WINDOW = 50
"""Consecutive steps below `COLLAPSE_SD` before the warning: one near-constant batch is not a collapse,
and a fresh model needs a few steps at full lr to spread its rewards."""


def reward_spread(rewards: torch.Tensor) -> float:
    """The standard deviation of a forward's finite rewards (per-token outputs included: a collapsed
    network outputs one value at every position)."""
    values = rewards.detach().float().flatten()
    values = values[torch.isfinite(values)]
    return float(values.std()) if values.numel() > 1 else float("nan")


@dataclass
class CollapseWatch:
    """Counts consecutive steps after the warmup whose reward spread is below `threshold` (a step with
    no spread to measure, NaN, breaks the run); `update` returns the warning the first time the count
    reaches `window`, and None otherwise (it warns once per run)."""

    lr: float
    warmup_steps: int = 0
    threshold: float = COLLAPSE_SD
    window: int = COLLAPSE_WINDOW
    run_length: int = 0
    warned: bool = False

    def update(self, step: int, spread: float) -> str | None:
        if step <= self.warmup_steps:  # the lr is still rising: a fresh head may not have moved yet
            return None
        self.run_length = self.run_length + 1 if spread < self.threshold else 0
        if self.warned or self.run_length < self.window:
            return None
        self.warned = True
        return (
            f"training has collapsed: for the {self.window} steps up to step {step} every item got the "
            f"same reward (spread {spread:.1e} < {self.threshold:g}; the loss sits at a constant "
            "predictor's), so the model is not learning (reward_sd in metrics.jsonl shows when it "
            f"began). Rerun with a lower --lr (now {self.lr:g}) or a longer --warmup-ratio."
        )
