"""The one training loop: plain PyTorch driven through accelerate, over any `Objective`.

`fit` knows the optimizer step, gradient accumulation, logging, periodic evaluation and checkpoints; what
a batch holds and what the loss is belongs to the objective (rewardlab.training.objectives), so the
loop never knows PRMs, the demo task or a loss formula. The same code runs on one CPU or many GPUs
(``accelerate launch -m rewardlab train``): each process takes every world_size-th batch.

Gradient accumulation is explicit (the loss of each micro-batch is divided by the number of
micro-batches in its optimizer step), so batch 4 x accumulation 1 equals batch 1 x accumulation 4.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardlab.config import TrainConfig
from rewardlab.progress import Reporter
from rewardlab.training.checkpoint import save_checkpoint
from rewardlab.training.collapse import CollapseWatch, reward_spread
from rewardlab.training.cpu_memory import release_free_heap, trim_available
from rewardlab.training.data import optimizer_steps
from rewardlab.training.objectives import Objective

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(RuntimeError):
    """SIGTERM/SIGINT arrived: a checkpoint was saved at the end of the current step."""

    def __init__(self, signum: int, checkpoint: Path) -> None:
        self.signum, self.checkpoint = signum, checkpoint
        name = signal.Signals(signum).name
        super().__init__(f"{name}: checkpoint saved to {checkpoint}; continue with --resume latest")


@contextlib.contextmanager
def stop_on_signals() -> Any:
    """Record SIGTERM/SIGINT instead of dying mid-step; the loop checks `received` after each step."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    old = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@dataclass
class Loop:
    """The prepared pieces `fit` drives (built by rewardlab.training.run.train)."""

    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    params: list
    """The trainable parameters after ``accelerator.prepare`` (FSDP2 swaps in sharded ones): clipped."""
    objective: Objective
    items: Any
    """Encoded training items with ``take(indices)`` and ``lengths`` (EncodedItems or a TokenCache)."""
    pad_id: int
    total_steps: int
    out: Path
    run: str = ""
    """The run id (rewardlab.training.checkpoint.run_id) written into each checkpoint's run.json."""
    after_step: Callable[[], None] | None = None
    """Called after every optimizer step (the weight average's update, rewardlab.training.averaging)."""


def fit(
    loop: Loop,
    cfg: TrainConfig,
    state: dict,
    evaluate: Callable[[], None],
    log: Callable[[dict], None],
    reporter: Reporter,
) -> tuple[int, float]:
    """Train until `loop.total_steps` optimizer steps or `cfg.epochs`, from `state` (step, epoch, batch; a
    resumed run continues mid-epoch); `evaluate` runs every ``--eval-every`` steps (default: each epoch).
    Returns (training units seen, seconds in the loop)."""
    accelerator = loop.accelerator
    rank, world = accelerator.process_index, accelerator.num_processes
    trim = cfg.trim_memory and accelerator.device.type == "cpu" and trim_available()
    if cfg.trim_memory and not trim:
        reporter.message("--trim-memory: not on a CPU with glibc, nothing to trim")
    units_done, t_loop = 0, time.perf_counter()
    collapse = CollapseWatch(lr=cfg.lr, warmup_steps=int(cfg.warmup_ratio * loop.total_steps))
    reporter.start("training", loop.total_steps)
    reporter.advance(state["step"])
    loop.model.train()
    stop = False
    with stop_on_signals() as signals:
        while not stop and state["epoch"] < math.ceil(cfg.epochs):
            steps = optimizer_steps(loop.items, cfg, state["epoch"], rank, world)
            for step_in_epoch in range(state["batch"], len(steps)):
                # --- one optimizer step -------------------------------------------------------------
                loss, acc_sum, n_units, spread = train_step(loop, steps[step_in_epoch], cfg.max_grad_norm)
                if loop.after_step:
                    loop.after_step()
                if trim:
                    release_free_heap()
                state["step"] += 1
                state["batch"] = step_in_epoch + 1
                # --- log, evaluate, checkpoint --------------------------------------------------------
                units_done += n_units
                speed = units_done / (time.perf_counter() - t_loop)
                record = {
                    "step": state["step"],
                    "epoch": state["epoch"],
                    "loss": loss,
                    "accuracy": acc_sum / max(1, n_units),
                    "lr": loop.scheduler.get_last_lr()[0],
                    "pairs_per_s": speed,
                    "reward_sd": None if math.isnan(spread) else spread,
                }
                log(record)
                if warning := collapse.update(state["step"], spread):
                    reporter.message(warning)
                reporter.advance(1, loss=loss, acc=record["accuracy"], pairs_s=speed)
                if cfg.eval_every and state["step"] % cfg.eval_every == 0:
                    evaluate()
                if cfg.save_every and state["step"] % cfg.save_every == 0:
                    save_checkpoint(accelerator, loop.scheduler, state, loop.out, run=loop.run)
                if signals:
                    reporter.finish()
                    ckpt = save_checkpoint(accelerator, loop.scheduler, state, loop.out, run=loop.run)
                    raise TrainingInterrupted(signals[0], ckpt)
                if state["step"] >= loop.total_steps:
                    stop = True
                    break
            # --- end of epoch -----------------------------------------------------------------------
            if not stop or state["batch"] >= len(steps):
                state["epoch"] += 1
                state["batch"] = 0
            if not cfg.eval_every or stop:
                evaluate()
            if not cfg.save_every:
                save_checkpoint(accelerator, loop.scheduler, state, loop.out, run=loop.run)
    reporter.finish()
    return units_done, time.perf_counter() - t_loop


def train_step(
    loop: Loop, micro_batches: Sequence[Sequence[int]], max_grad_norm: float
) -> tuple[float, float, int, float]:
    """Forward and backward over the step's micro-batches (gradients synchronised on the last), then one
    optimizer and scheduler step. Returns (mean loss, accuracy x units, units), summed over processes,
    and the spread of this process's rewards (the largest micro-batch standard deviation)."""
    accelerator, model, objective = loop.accelerator, loop.model, loop.objective
    loss_sum, acc_sum, n_units, spread = 0.0, 0.0, 0, math.nan
    for j, idx in enumerate(micro_batches):
        batch = objective.collate(loop.items.take(idx), loop.pad_id)
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        sync = j == len(micro_batches) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(model):
            rewards = objective.rewards(model, batch)
            loss, acc = objective.loss(rewards, batch)
            accelerator.backward(loss / len(micro_batches))
        spread = max((x for x in (spread, reward_spread(rewards)) if not math.isnan(x)), default=math.nan)
        loss_sum += loss.item() / len(micro_batches)
        n = objective.batch_count(batch)
        acc_sum += acc.item() * n
        n_units += n
    if max_grad_norm:
        accelerator.clip_grad_norm_(loop.params, max_grad_norm)
    loop.optimizer.step()
    loop.scheduler.step()
    loop.optimizer.zero_grad(set_to_none=True)
    world = accelerator.num_processes
    if world > 1:  # every process's share of the step, so the log describes the global batch
        totals = torch.tensor([loss_sum, acc_sum, n_units], device=accelerator.device, dtype=torch.float64)
        loss_sum, acc_sum, n_units = accelerator.reduce(totals, "sum").tolist()
        loss_sum /= world
    return loss_sum, acc_sum, n_units, spread
