"""The training loop: plain PyTorch driven through accelerate, readable top to bottom.

`rewardlab train` → `train(cfg)` → `run_epoch` → `compute_loss` → `losses.grouped_bt` (Bradley-Terry).
Process and outcome reward models (``--objective steps/outcome``, rewardlab.prm) run through the same
loop: only the data, the collate step, the forward's read-out and `compute_loss` dispatch on it.
The same code runs on one CPU or many GPUs (``accelerate launch -m rewardlab train``): each process
takes every world_size-th batch, only the main process writes.

Gradient accumulation is explicit (the loss of each micro-batch is divided by the number of
micro-batches in its optimizer step), so batch 4 x accumulation 1 equals batch 1 x accumulation 4.
Checkpoints hold model, optimizer, scheduler and RNG state plus the position in the data, and are
written to a temporary folder and renamed, so a crash never leaves a half-written one behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rewardlab.config import TrainConfig, save_config
from rewardlab.data.batching import EncodedGroup, collate_groups, encode_groups
from rewardlab.data.packing import collate_shared_prefix
from rewardlab.data.step_encoding import (
    collate_steps,
    encode_step_examples,
    evaluate_steps,
    outcome_bce,
    step_bce,
)
from rewardlab.data.types import PreferenceGroup
from rewardlab.losses import centering, grouped_bt, pairwise_accuracy, plackett_luce
from rewardlab.model.reward_model import shared_prefix_rewards, shared_prefix_support
from rewardlab.progress import Reporter
from rewardlab.scoring.evaluate import EvalResult, evaluate_rewards
from rewardlab.training.cpu_memory import release_free_heap, trim_available

STATE_FILE = "trainer_state.json"


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


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class TrainResult:
    """What a training run produced, for the CLI summary and for scripts (`--json`)."""

    output_dir: str
    steps: int
    epochs: float
    wall_time_s: float
    train_pairs: int
    pairs_per_s: float
    best_step: int
    eval: EvalResult | None
    test: EvalResult | None = None
    data_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Datasets:
    train: list[PreferenceGroup]
    eval: list[PreferenceGroup]
    test: list[PreferenceGroup]
    lines: list[str]
    noise_ceiling: dict[str, float] = field(default_factory=dict)


def load_datasets(cfg: TrainConfig) -> Datasets:
    """Training, model-selection and test groups, with the loading summary and leakage warnings."""
    from rewardlab.data import find_leakage, load_preferences

    if cfg.objective not in ("pairs", "steps", "outcome"):
        raise ValueError(f"--objective must be pairs, steps or outcome, got {cfg.objective!r}")
    if cfg.objective == "steps" and cfg.lora_r:
        raise ValueError("--lora-r is not supported with --objective steps yet; use --freeze-layers instead")
    if cfg.stream and (cfg.objective != "pairs" or cfg.data is None):
        raise ValueError("--stream reads --data of preferences (--objective pairs); drop --stream otherwise")
    load: Any = load_preferences
    if cfg.objective != "pairs":
        from rewardlab.data.steps import load_steps

        if cfg.data is None:
            raise ValueError(
                f"--objective {cfg.objective} needs --data with step-labelled solutions (docs/prm.md); "
                "build some from GSM8K with `rewardlab prm build-gsm8k`"
            )

        def load(path: str, fmt: str | None) -> tuple[list, Any]:
            return load_steps(path, fmt, cfg.prm800k_neutral)

    if cfg.data is None:
        from rewardlab.demo import task as demo

        splits = demo.demo_splits(seed=cfg.seed)
        train = splits["train"][: cfg.demo_prompts] if cfg.demo_prompts else splits["train"]
        ds = Datasets(train, splits["eval"], splits["test"], ["data: built-in demo task (docs/demo.md)"])
        ds.noise_ceiling = {k: demo.noise_ceiling(v) for k, v in (("eval", ds.eval), ("test", ds.test))}
        return ds
    lines: list[str] = []
    train: list = []
    if not cfg.stream:  # --stream reads --data later, into the token cache (open_stream)
        train, summary = load(cfg.data, cfg.format)
        lines += summary.lines()
    if cfg.eval_data:
        eval_groups, s = load(cfg.eval_data, cfg.format)
        lines += s.lines()
    elif cfg.stream:
        eval_groups = []  # held out while --data is streamed
    else:
        train, eval_groups = split_by_prompt(train, cfg.eval_fraction, cfg.seed)
        lines.append(f"held out {len(eval_groups)} prompts of --data for model selection")
    test: list[PreferenceGroup] = []
    if cfg.test_data:
        test, s = load(cfg.test_data, cfg.format)
        lines += s.lines()
    for name, other in (("eval", eval_groups), ("test", test)):
        leaked = find_leakage(train, other) if other else []
        if leaked:
            lines.append(f"warning: {len(leaked)} prompts occur in both train and {name} data (leakage)")
    return Datasets(train, eval_groups, test, lines)


def split_by_prompt(
    groups: list[PreferenceGroup], fraction: float, seed: int
) -> tuple[list[PreferenceGroup], list[PreferenceGroup]]:
    """Hold out a fraction of prompts; every group of one prompt lands on the same side."""
    if fraction <= 0:
        return groups, []
    train, held = [], []
    for g in groups:
        (held if held_out(g, fraction, seed) else train).append(g)
    return train, held


def held_out(group: PreferenceGroup, fraction: float, seed: int) -> bool:
    """Whether `split_by_prompt` holds `group` out: a hash of (seed, normalised prompt) below `fraction`."""
    import hashlib

    from rewardlab.data.loading import normalize_prompt

    key = f"{seed}:{normalize_prompt(group.prompt)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < fraction


def open_stream(cfg: TrainConfig, encoder: Any, data: Datasets, reporter: Reporter) -> Any:
    """--stream: the token cache of --data (built or reused); held-out prompts become data.eval."""
    from rewardlab.data.token_cache import open_token_cache

    split = not cfg.eval_data and cfg.eval_fraction > 0
    cache = open_token_cache(
        cfg.data,
        encoder,
        format=cfg.format,
        holdout=(lambda g: held_out(g, cfg.eval_fraction, cfg.seed)) if split else None,
        holdout_key=f"split_by_prompt fraction={cfg.eval_fraction} seed={cfg.seed}" if split else "",
        reporter=reporter,
    )
    lines = [*cache.summary.lines(), cache.line()]
    if not cfg.eval_data:
        data.eval = cache.heldout
        lines.append(f"held out {len(data.eval)} prompts of --data for model selection")
    for name, other in (("eval", data.eval), ("test", data.test)):
        leaked = cache.shared_prompts(other) if other else []
        if leaked:
            lines.append(f"warning: {len(leaked)} prompts occur in both train and {name} data (leakage)")
    data.lines += lines
    return cache


def build_batch_order(
    groups: list[EncodedGroup], cfg: TrainConfig, epoch: int, rank: int, world: int
) -> list[list[int]]:
    from rewardlab.data.batching import batch_indices

    if cfg.stream:  # the same batches, as arrays over the cache's lengths column
        from rewardlab.data.batch_plan import plan_batches

        grouped = cfg.length_grouped
        plan = plan_batches(groups.lengths, cfg.batch_size, cfg.seed, epoch, length_grouped=grouped)
        return plan.shard(rank, world)
    lengths = [g.num_tokens for g in groups]
    batches = batch_indices(lengths, cfg.batch_size, cfg.seed, epoch, length_grouped=cfg.length_grouped)
    per_rank = len(batches) // world if world > 1 else len(batches)
    return batches[rank::world][:per_rank]


def compute_loss(
    rewards: torch.Tensor, batch: dict[str, torch.Tensor], cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reward-model objective for one micro-batch, and its accuracy (pairwise, per step or per solution).

    For ``steps`` the rewards are per-token logits (batch, seq), read at the step markers.
    """
    if cfg.objective == "steps":
        return step_bce(rewards, batch)
    if cfg.objective == "outcome":
        return outcome_bce(rewards, batch)
    pairs = batch["pairs"]
    margins = batch["margins"] if cfg.use_margins else None
    r_w, r_l = rewards[pairs[:, 0]], rewards[pairs[:, 1]]
    if cfg.loss == "plackett_luce" and "rank_order" in batch:
        loss = plackett_luce(rewards, batch["rank_order"])
    else:
        loss = grouped_bt(rewards, batch["pair_group"], pairs, margins, eps=cfg.label_smoothing)
    if cfg.centering:
        loss = loss + centering(r_w, r_l, cfg.centering)
    return loss, pairwise_accuracy(r_w.detach(), r_l.detach())


ITEM_KEY = {"pairs": "pairs", "steps": "step_labels", "outcome": "outcomes"}
"""The batch entry counted as 'pairs' in logs and pairs_per_s: pairs, labelled steps, or solutions."""


def _encode(items: list, encoder: Any, cfg: TrainConfig, on_progress: Any) -> tuple[list, Any]:
    if cfg.objective == "pairs":
        return encode_groups(items, encoder, on_progress)
    return encode_step_examples(items, encoder, cfg.objective, on_progress)


def _collate(items: list, pad_id: int, cfg: TrainConfig, shared: bool = False) -> dict[str, torch.Tensor]:
    if cfg.objective != "pairs":
        return collate_steps(items, pad_id)
    batch = collate_shared_prefix(items, pad_id) if shared else collate_groups(items, pad_id)
    order_t = _rank_order(items) if cfg.loss == "plackett_luce" else None
    if order_t is not None:
        batch["rank_order"] = order_t
    return batch


def _count_items(encoded: Any, cfg: TrainConfig) -> int:
    if cfg.stream:
        return encoded.num_pairs
    if cfg.objective == "pairs":
        return sum(len(g.pairs) for g in encoded)
    if cfg.objective == "steps":
        return sum(y is not None for e in encoded for y in e.labels)
    return sum(e.outcome is not None for e in encoded)


def _evaluate(scorer: Any, items: list, encoded: list, ceiling: float | None, cfg: TrainConfig) -> Any:
    if cfg.objective == "pairs":
        return _evaluate_encoded(scorer, items, encoded, ceiling)[0]
    return evaluate_steps(scorer, items)


def _eval_extras(result: Any, cfg: TrainConfig) -> dict[str, Any]:
    if cfg.objective == "pairs":
        return {"eval_margin": result.mean_margin}
    return {f"eval_{k}": v for k, v in result.to_dict().items() if isinstance(v, float)}


def _rank_order(groups: list[EncodedGroup]) -> torch.Tensor | None:
    """Best-first response indices of groups given as strict rankings (Plackett-Luce), else None."""
    orders, base = [], 0
    for g in groups:
        if g.ranks is None or len(set(g.ranks)) != len(g.ranks):
            return None
        orders.append([base + i for i in sorted(range(len(g.ranks)), key=lambda i: g.ranks[i])])
        base += len(g.responses)
    width = max(len(o) for o in orders)
    return torch.tensor([o + [-1] * (width - len(o)) for o in orders])


PRECISION_ENV = "REWARDLAB_MIXED_PRECISION"


def resolve_mixed_precision(cfg: TrainConfig, device: torch.device) -> tuple[str, str]:
    """The precision `--mixed-precision auto` stands for here, and why (logged).

    $REWARDLAB_MIXED_PRECISION pins what auto means (the test suite forces bf16 with it on CPUs
    that lack native bf16, so an AVX2 machine catches what a bf16 machine would).
    """
    from rewardlab.scoring.scorer import bf16_supported

    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision, f"--mixed-precision {cfg.mixed_precision}"
    pinned = os.environ.get(PRECISION_ENV, "").strip()
    if pinned:
        if pinned not in ("no", "bf16", "fp16"):
            raise ValueError(f"${PRECISION_ENV}={pinned!r}: expected no, bf16 or fp16")
        return pinned, f"${PRECISION_ENV}={pinned}"
    ok, why = bf16_supported(device)
    return ("bf16" if ok else "no"), why


def make_accelerator(precision: str, device: torch.device) -> Any:
    """An Accelerator for this run, whatever precision an earlier run in this process used.

    accelerate keeps one AcceleratorState per process and refuses a second Accelerator with another
    mixed precision ("AcceleratorState has already been initialized"); a notebook, `retrain` after an
    fp32 run or an ensemble whose members differ hit that. The per-process part (PartialState: device,
    process group) is kept; only the precision-bearing state is rebuilt.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") != precision:
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
    return Accelerator(mixed_precision=precision, cpu=device.type == "cpu")


def check_sharding(accelerator: Any, cfg: TrainConfig) -> bool:
    """Whether the weights are sharded (FSDP, DeepSpeed), so saving must gather them on every process.

    DeepSpeed steps the optimizer inside each backward and reads the micro-batch size from a dataloader,
    which this loop does not have: --grad-accum must stay 1, and the batch size is filled in here.
    Not run on GPUs yet (docs/scaling.md).
    """
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        if cfg.grad_accum != 1:
            raise ValueError(
                f"--grad-accum {cfg.grad_accum} under DeepSpeed: DeepSpeed steps the optimizer at every "
                "backward here; use --grad-accum 1 with a larger --batch-size or more GPUs (docs/scaling.md)"
            )
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        if ds.get("train_micro_batch_size_per_gpu", "auto") == "auto":
            ds["train_micro_batch_size_per_gpu"] = cfg.batch_size
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Train a reward model as configured; returns the run's figures, writes the model to output_dir."""
    from accelerate.utils import broadcast_object_list, set_seed
    from transformers import get_cosine_schedule_with_warmup

    from rewardlab.data.loading import data_hash
    from rewardlab.data.step_encoding import STEP_MARKER, STEP_SCORES_HOWTO
    from rewardlab.data.steps import steps_hash
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.scorer import Scorer, pick_device

    reporter = reporter or Reporter()
    t_start = time.perf_counter()
    precision, why = resolve_mixed_precision(cfg, pick_device())
    accelerator = make_accelerator(precision, pick_device())
    sharded = check_sharding(accelerator, cfg)
    reporter.message(
        f"device {accelerator.device}, {accelerator.num_processes} process(es), precision {precision} ({why})"
    )
    out = Path(cfg.output_dir)
    data = load_datasets(cfg)
    for line in data.lines:
        reporter.message(line)

    set_seed(cfg.seed)
    model, encoder, card = build_reward_model(
        cfg.backbone,
        pooling=cfg.pooling,
        max_length=cfg.max_length,
        truncation=cfg.truncation,
        freeze_layers=cfg.freeze_layers,
        lora_r=cfg.lora_r,
        gradient_checkpointing=cfg.gradient_checkpointing,
        extra_tokens=[STEP_MARKER] if cfg.objective == "steps" else (),
        dropout=cfg.dropout,
    )
    if cfg.stream:
        shown = len(data.lines)
        with accelerator.main_process_first():  # one process builds the cache, the others reuse it
            cache = open_stream(cfg, encoder, data, reporter)
        for line in data.lines[shown:]:
            reporter.message(line)
        card.data_hash = cache.data_hash
    else:
        card.data_hash = data_hash(data.train) if cfg.objective == "pairs" else steps_hash(data.train)
    card.objective = cfg.objective
    if cfg.objective == "steps":
        card.step_marker = STEP_MARKER
        card.step_scores = STEP_SCORES_HOWTO
    reporter.start("tokenising", len(data.train) + len(data.eval) + len(data.test))
    train_enc, trunc = _encode(data.train, encoder, cfg, reporter.advance)
    eval_enc, _ = _encode(data.eval, encoder, cfg, reporter.advance)
    test_enc, _ = _encode(data.test, encoder, cfg, reporter.advance)
    reporter.finish()
    if cfg.stream:
        train_enc, trunc = cache, cache.truncation
    for line in trunc.lines(cfg.truncation, cfg.max_length):
        reporter.message(line)
    if not train_enc:
        raise ValueError("no training pairs left after loading; see the summary above")

    shared = False
    if cfg.objective == "pairs" and cfg.shared_prefix and not model.is_encoder:
        shared, why = shared_prefix_support(model)
        reporter.message(f"shared-prefix forward: {'on' if shared else 'off'} ({why})")

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rank, world = accelerator.process_index, accelerator.num_processes
    batches_per_epoch = len(build_batch_order(train_enc, cfg, 0, rank, world))
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
    total_steps = math.ceil(steps_per_epoch * cfg.epochs)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    params = [p for p in model.parameters() if p.requires_grad]  # FSDP2 swaps in sharded parameters

    state = {"step": 0, "epoch": 0, "batch": 0, "best_accuracy": -1.0, "best_step": 0}
    if cfg.resume:
        ckpt = latest_checkpoint(out) if cfg.resume == "latest" else Path(cfg.resume)
        if ckpt is None:
            raise FileNotFoundError(f"--resume latest: no complete checkpoint under {out / 'checkpoints'}")
        accelerator.load_state(str(ckpt))
        scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
        state = json.loads((ckpt / STATE_FILE).read_text())
        reporter.message(f"resumed from {ckpt} at step {state['step']}")

    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "train_config.json")
    metrics_file = out / "metrics.jsonl"
    unwrapped = accelerator.unwrap_model(model)
    scorer = Scorer(unwrapped, encoder, card, device=accelerator.device, bf16=precision == "bf16")
    best_eval: EvalResult | None = None

    def save_model() -> None:  # every process calls it: sharded weights are gathered collectively
        full = accelerator.get_state_dict(model) if sharded else None
        if accelerator.is_main_process:
            save_reward_model(unwrapped, encoder, card, out, state_dict=full)

    def log(record: dict[str, Any]) -> None:
        if accelerator.is_main_process:
            with metrics_file.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def evaluate_now() -> None:
        nonlocal best_eval
        if not eval_enc:
            return
        result = _evaluate(scorer, data.eval, eval_enc, data.noise_ceiling.get("eval"), cfg)
        log({"step": state["step"], "eval_accuracy": result.accuracy, **_eval_extras(result, cfg)})
        reporter.message(f"step {state['step']}: eval {result.line()}")
        better = [result.accuracy > state["best_accuracy"]]
        if sharded:  # all processes must agree before they gather the weights together
            broadcast_object_list(better)
        if better[0]:
            state["best_accuracy"], state["best_step"] = result.accuracy, state["step"]
            best_eval = result
            card.reward_mean, card.reward_std = result.reward_mean, result.reward_std
            card.reward_stats_from = f"{cfg.eval_data or 'held-out part of ' + str(cfg.data or 'demo')}"
            card.train_metrics = {"eval_accuracy": result.accuracy, "step": state["step"]}
            if cfg.objective != "pairs":
                card.train_metrics.update(result.to_dict())
            save_model()

    trim = cfg.trim_memory and accelerator.device.type == "cpu" and trim_available()
    if cfg.trim_memory and not trim:
        reporter.message("--trim-memory: not on a CPU with glibc, nothing to trim")
    pairs_done, t_loop = 0, time.perf_counter()
    reporter.start("training", total_steps)
    reporter.advance(state["step"])
    model.train()
    stop = False
    with stop_on_signals() as signals:
        while not stop and state["epoch"] < math.ceil(cfg.epochs):
            order = build_batch_order(train_enc, cfg, state["epoch"], rank, world)
            if cfg.stream:
                micro = order.steps(cfg.grad_accum)
            else:
                micro = [order[i : i + cfg.grad_accum] for i in range(0, len(order), cfg.grad_accum)]
            for step_in_epoch in range(state["batch"], len(micro)):
                loss_sum, acc_sum, n_pairs = 0.0, 0.0, 0
                for j, idx in enumerate(micro[step_in_epoch]):
                    items = train_enc.take(idx) if cfg.stream else [train_enc[i] for i in idx]
                    batch = _collate(items, encoder.tokenizer.pad_token_id, cfg, shared)
                    batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                    sync = j == len(micro[step_in_epoch]) - 1
                    with contextlib.nullcontext() if sync else accelerator.no_sync(model):
                        if shared:
                            rewards = shared_prefix_rewards(model, batch).float()
                        else:
                            rewards = model(
                                batch["input_ids"],
                                batch["attention_mask"],
                                batch.get("token_type_ids"),
                                batch["response_mask"],
                                per_token=cfg.objective == "steps",
                            ).float()
                        loss, acc = compute_loss(rewards, batch, cfg)
                        accelerator.backward(loss / len(micro[step_in_epoch]))
                    loss_sum += loss.item() / len(micro[step_in_epoch])
                    n_items = len(batch[ITEM_KEY[cfg.objective]])
                    acc_sum += acc.item() * n_items
                    n_pairs += n_items
                if cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if trim:
                    release_free_heap()
                state["step"] += 1
                state["batch"] = step_in_epoch + 1
                if world > 1:  # every process's share of the step, so the log describes the global batch
                    totals = torch.tensor(
                        [loss_sum, acc_sum, n_pairs], device=accelerator.device, dtype=torch.float64
                    )
                    loss_sum, acc_sum, n_pairs = accelerator.reduce(totals, "sum").tolist()
                    loss_sum /= world
                pairs_done += n_pairs
                speed = pairs_done / (time.perf_counter() - t_loop)
                record = {
                    "step": state["step"],
                    "epoch": state["epoch"],
                    "loss": loss_sum,
                    "accuracy": acc_sum / max(1, n_pairs),
                    "lr": scheduler.get_last_lr()[0],
                    "pairs_per_s": speed,
                }
                log(record)
                reporter.advance(1, loss=loss_sum, acc=record["accuracy"], pairs_s=speed)
                if cfg.eval_every and state["step"] % cfg.eval_every == 0:
                    evaluate_now()
                if cfg.save_every and state["step"] % cfg.save_every == 0:
                    save_checkpoint(accelerator, scheduler, state, out)
                if signals:
                    reporter.finish()
                    raise TrainingInterrupted(signals[0], save_checkpoint(accelerator, scheduler, state, out))
                if state["step"] >= total_steps:
                    stop = True
                    break
            if not stop or state["batch"] >= len(micro):
                state["epoch"] += 1
                state["batch"] = 0
            if not cfg.eval_every or stop:
                evaluate_now()
            if not cfg.save_every:
                save_checkpoint(accelerator, scheduler, state, out)
    reporter.finish()
    train_time = time.perf_counter() - t_loop

    if not eval_enc:  # no held-out data: keep the last weights
        save_model()
    accelerator.wait_for_everyone()
    test_result = None
    if test_enc:
        from rewardlab.model.saved import load_reward_model

        best_model, best_encoder, best_card = load_reward_model(out, device=accelerator.device)
        best_scorer = Scorer(best_model, best_encoder, best_card, bf16=precision == "bf16")
        test_result = _evaluate(best_scorer, data.test, test_enc, data.noise_ceiling.get("test"), cfg)
        log({"step": state["step"], "test_accuracy": test_result.accuracy})
    result = TrainResult(
        output_dir=str(out),
        steps=state["step"],
        epochs=cfg.epochs,
        wall_time_s=time.perf_counter() - t_start,
        train_pairs=_count_items(train_enc, cfg),
        pairs_per_s=pairs_done / train_time if train_time else 0.0,
        best_step=state["best_step"],
        eval=best_eval,
        test=test_result,
        data_lines=data.lines + trunc.lines(cfg.truncation, cfg.max_length),
    )
    if accelerator.is_main_process:
        (out / "train_result.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _evaluate_encoded(
    scorer: Any, groups: list[PreferenceGroup], encoded: list[EncodedGroup], ceiling: float | None
) -> tuple[EvalResult, list[list[float]]]:
    rewards = scorer.score_encoded_groups([g.responses for g in encoded])
    result = evaluate_rewards(groups, rewards)
    if ceiling is not None:  # the demo task: its gold reward gives the ceiling and a noise-free accuracy
        from rewardlab.demo.task import expected_accuracy

        result.noise_ceiling = ceiling
        result.expected_accuracy = expected_accuracy(groups, rewards)
    return result, rewards


def save_checkpoint(accelerator: Any, scheduler: Any, state: dict, out: Path, keep: int = 2) -> Path:
    """Atomically write a resumable checkpoint (temp folder, fsync, rename); keep the newest `keep`."""
    root = out / "checkpoints"
    final = root / f"step-{state['step']:08d}"
    tmp = root / f".tmp-step-{state['step']:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / STATE_FILE).write_text(json.dumps(state))
        for f in tmp.iterdir():
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(root.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(out: Path) -> Path | None:
    """Newest complete checkpoint (one with its state file); partial ones are skipped."""
    for ckpt in sorted((out / "checkpoints").glob("step-*"), reverse=True):
        if (ckpt / STATE_FILE).is_file() and (ckpt / "scheduler.pt").is_file():
            return ckpt
    return None
