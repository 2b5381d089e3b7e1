"""`train(cfg)`: set up a training run and read it top to bottom: precision, data, model, objective,
then the loop (rewardlab.training.loop.fit), model selection and the test.

    rewardlab train → commands.train.run → train(cfg) → loop.fit → objective.loss → losses.grouped_bt

Process and outcome reward models (``--objective steps/outcome``, rewardlab.prm.objective) run through the
same code: `make_objective` is the one place that looks at ``--objective``. Only the main process writes;
checkpoints hold everything needed to resume (rewardlab.training.checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from rewardlab.config import TrainConfig, save_config
from rewardlab.progress import Reporter
from rewardlab.scoring.evaluate import EvalResult
from rewardlab.strict_json import finite_json, json_line
from rewardlab.training.averaging import WeightAverage
from rewardlab.training.checkpoint import load_checkpoint, prepare_output, run_id, write_run_file
from rewardlab.training.data import Datasets, EncodedItems, load_datasets, open_stream, optimizer_steps
from rewardlab.training.loop import Loop, fit
from rewardlab.training.objectives import Objective, PairwiseObjective

PRECISION_ENV = "REWARDLAB_MIXED_PRECISION"


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


def make_objective(cfg: TrainConfig) -> Objective:
    """The objective ``--objective`` names; it checks the flags it cannot train with."""
    if cfg.objective == "pairs":
        return PairwiseObjective(cfg)
    if cfg.objective == "regression":
        from rewardlab.training.regression import RegressionObjective

        return RegressionObjective(cfg)
    from rewardlab.prm.objective import OutcomeObjective, StepObjective

    if cfg.objective == "steps":
        return StepObjective(cfg)
    if cfg.objective == "outcome":
        return OutcomeObjective(cfg)
    raise ValueError(f"--objective must be pairs, steps, outcome or regression, got {cfg.objective!r}")


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Train a reward model as configured; returns the run's figures, writes the model to output_dir."""
    from accelerate.utils import set_seed

    from rewardlab.model.build import build_reward_model
    from rewardlab.scoring.scorer import Scorer, pick_device, use_attention
    from rewardlab.training.memory import memory_check

    reporter = reporter or Reporter()
    t_start = time.perf_counter()
    objective = make_objective(cfg)

    # --- processes and precision ------------------------------------------------------------------
    precision, why = resolve_mixed_precision(cfg, pick_device())
    accelerator = make_accelerator(precision, pick_device())
    sharded = check_sharding(accelerator, cfg)
    reporter.message(
        f"device {accelerator.device}, {accelerator.num_processes} process(es), precision {precision} ({why})"
    )
    out = Path(cfg.output_dir)

    # --- data ---------------------------------------------------------------------------------------
    data = load_datasets(cfg, objective.load)
    for line in data.lines:
        reporter.message(line)

    # --- model and tokenised data -------------------------------------------------------------------
    set_seed(cfg.seed)
    model, encoder, card = build_reward_model(
        cfg.backbone,
        pooling=cfg.pooling,
        max_length=cfg.max_length,
        truncation=cfg.truncation,
        layout=cfg.layout,
        freeze_layers=cfg.freeze_layers,
        lora_r=cfg.lora_r,
        gradient_checkpointing=cfg.gradient_checkpointing,
        extra_tokens=objective.extra_tokens,
        dropout=cfg.dropout,
        thinking=(cfg.think_open, cfg.think_close) if cfg.strip_thinking else None,
    )
    train_items, eval_enc, test_enc, trunc_lines = encode_datasets(
        cfg, objective, encoder, card, data, accelerator, reporter
    )
    for line in memory_check(model, train_items, cfg, accelerator.device):
        reporter.message(line)  # the estimate, and a warning naming flags when it exceeds what is free
    run = run_id(cfg, card.data_hash)
    if not cfg.resume and accelerator.is_main_process:
        prepare_output(out, run, cfg.overwrite)  # refuses another run's folder before any step
    accelerator.wait_for_everyone()
    forward = objective.prepare(model)
    if forward:
        reporter.message(forward)

    # --- optimizer, schedule, resume ----------------------------------------------------------------
    reporter.message(use_attention(model, accelerator.device, precision == "bf16", training=True))
    # fused AdamW: one kernel per step instead of ~500 small ones (CPU: 17 ms vs 100 ms per MiniLM step)
    fused = accelerator.device.type in ("cpu", "cuda") and not sharded
    groups = param_groups(model, cfg)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    rank, world = accelerator.process_index, accelerator.num_processes
    total_steps = math.ceil(len(optimizer_steps(train_items, cfg, 0, rank, world)) * cfg.epochs)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = make_scheduler(optimizer, cfg, total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    params = [p for p in model.parameters() if p.requires_grad]  # FSDP2 swaps in sharded parameters
    state = {"step": 0, "epoch": 0, "batch": 0, "best_accuracy": -1.0, "best_step": 0}
    average = WeightAverage(params, cfg.ema_decay) if cfg.ema_decay else None
    if average:
        accelerator.register_for_checkpointing(average)  # checkpoints carry it; --resume continues it
    if cfg.resume:
        state, ckpt = load_checkpoint(
            cfg.resume, accelerator, scheduler, out, run, cfg.force, reporter.message
        )
        reporter.message(f"resumed from {ckpt} at step {state['step']}")
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "train_config.json")
        write_run_file(out, run, cfg)

    # --- the loop, with model selection on the held-out data ----------------------------------------
    unwrapped = accelerator.unwrap_model(model)
    scorer = Scorer(unwrapped, encoder, card, device=accelerator.device, bf16=precision == "bf16")
    selection = ModelSelection(cfg, objective, accelerator, model, encoder, card, sharded, state, reporter)
    pad_id = encoder.tokenizer.pad_token_id
    loop = Loop(
        accelerator,
        model,
        optimizer,
        scheduler,
        params,
        objective,
        train_items,
        pad_id,
        total_steps,
        out,
        run,
        after_step=average.update if average else None,
    )
    evaluate = partial(selection.evaluate, scorer, data.eval, eval_enc, data.noise_ceiling.get("eval"))
    if average:  # the averaged weights are what is evaluated, selected and saved
        evaluate = with_average(average, evaluate)
    units, train_time = fit(loop, cfg, state, evaluate, selection.log, reporter)
    if not eval_enc:  # no held-out data: keep the last weights (or their average)
        with average.applied() if average else contextlib.nullcontext():
            selection.save()
    accelerator.wait_for_everyone()

    # --- the test, on the selected model ------------------------------------------------------------
    test_result = None
    if test_enc:
        test_result = test_selected(cfg, objective, data, test_enc, accelerator.device)
        selection.log({"step": state["step"], "test_accuracy": test_result.accuracy})
    result = TrainResult(
        output_dir=str(out),
        steps=state["step"],
        epochs=cfg.epochs,
        wall_time_s=time.perf_counter() - t_start,
        train_pairs=objective.count(train_items),
        pairs_per_s=units / train_time if train_time else 0.0,
        best_step=state["best_step"],
        eval=selection.best,
        test=test_result,
        data_lines=data.lines + trunc_lines,
    )
    if accelerator.is_main_process:
        (out / "train_result.json").write_text(json.dumps(finite_json(result.to_dict()), indent=2) + "\n")
    return result


def encode_datasets(
    cfg: TrainConfig,
    objective: Objective,
    encoder: Any,
    card: Any,
    data: Datasets,
    accelerator: Any,
    reporter: Reporter,
) -> tuple[Any, list, list, list[str]]:
    """Tokenise the three sets (``--stream``: the training set from its token cache) and fill the card's
    objective and data hash. Returns (training items, eval items, test items, truncation lines)."""
    cache = None
    if cfg.stream:
        shown = len(data.lines)
        with accelerator.main_process_first():  # one process builds the cache, the others reuse it
            cache = open_stream(cfg, encoder, data, reporter)
        for line in data.lines[shown:]:
            reporter.message(line)
        card.data_hash = cache.data_hash
    else:
        card.data_hash = objective.data_hash(data.train)
    objective.describe(card)
    reporter.start("tokenising", len(data.train) + len(data.eval) + len(data.test))
    train_enc, trunc = objective.encode(data.train, encoder, reporter.advance)
    eval_enc, _ = objective.encode(data.eval, encoder, reporter.advance)
    test_enc, _ = objective.encode(data.test, encoder, reporter.advance)
    reporter.finish()
    items: Any = EncodedItems(train_enc)
    if cache is not None:
        items, trunc = cache, cache.truncation
    lines = trunc.lines(cfg.truncation, cfg.max_length)
    if encoder.thinking is not None:
        lines.append(encoder.thinking.line())
    for line in lines:
        reporter.message(line)
    if not items:
        raise ValueError("no training pairs left after loading; see the summary above")
    return items, eval_enc, test_enc, lines


class ModelSelection:
    """Evaluate on the held-out set, keep the best model on disk (its card says why), log metrics.jsonl."""

    def __init__(
        self,
        cfg: TrainConfig,
        objective: Objective,
        accelerator: Any,
        model: Any,
        encoder: Any,
        card: Any,
        sharded: bool,
        state: dict,
        reporter: Reporter,
    ) -> None:
        self.cfg, self.objective, self.accelerator = cfg, objective, accelerator
        self.model, self.encoder, self.card = model, encoder, card
        self.sharded, self.state, self.reporter = sharded, state, reporter
        self.out = Path(cfg.output_dir)
        self.best: Any = None

    def save(self) -> None:
        """Every process calls it: sharded weights are gathered collectively."""
        from rewardlab.model.saved import save_reward_model

        full = self.accelerator.get_state_dict(self.model) if self.sharded else None
        if self.accelerator.is_main_process:
            unwrapped = self.accelerator.unwrap_model(self.model)
            save_reward_model(unwrapped, self.encoder, self.card, self.out, state_dict=full)

    def log(self, record: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            with (self.out / "metrics.jsonl").open("a") as f:
                f.write(json_line(record) + "\n")  # strict JSON: no Infinity/NaN tokens

    def evaluate(self, scorer: Any, items: list, encoded: list, ceiling: float | None) -> None:
        from accelerate.utils import broadcast_object_list

        if not encoded:
            return
        state, cfg, card = self.state, self.cfg, self.card
        result = self.objective.evaluate(scorer, items, encoded, ceiling)
        self.log(
            {"step": state["step"], "eval_accuracy": result.accuracy, **self.objective.eval_record(result)}
        )
        self.reporter.message(f"step {state['step']}: eval {result.line()}")
        better = [result.accuracy > state["best_accuracy"]]
        if self.sharded:  # all processes must agree before they gather the weights together
            broadcast_object_list(better)
        if better[0]:
            state["best_accuracy"], state["best_step"] = result.accuracy, state["step"]
            self.best = result
            card.reward_mean, card.reward_std = result.reward_mean, result.reward_std
            card.reward_stats_from = f"{cfg.eval_data or 'held-out part of ' + str(cfg.data or 'demo')}"
            card.train_metrics = {"eval_accuracy": result.accuracy, "step": state["step"]}
            card.train_metrics.update(self.objective.card_metrics(result))
            self.save()


def test_selected(cfg: TrainConfig, objective: Objective, data: Datasets, encoded: list, device: Any) -> Any:
    """The test result of the model selection kept, reloaded from output_dir and scored in fp32 as
    `rewardlab eval` and plain transformers score it: the reported figure is the one a user reproduces,
    whatever precision trained the model (bf16 scoring moved the mean margin by 6e-4)."""
    from rewardlab.model.saved import load_reward_model
    from rewardlab.scoring.scorer import Scorer

    model, encoder, card = load_reward_model(cfg.output_dir, device=device)
    scorer = Scorer(model, encoder, card)
    return objective.evaluate(scorer, data.test, encoded, data.noise_ceiling.get("test"))


def with_average(average: WeightAverage, evaluate: Callable[[], None]) -> Callable[[], None]:
    """`evaluate` run with the averaged weights swapped into the model."""

    def run() -> None:
        with average.applied():
            evaluate()

    return run


def param_groups(model: Any, cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW's groups, one per learning-rate multiple: the reward head at ``--lr x --head-lr``; with
    ``--layer-decay D`` < 1, transformer block i of L (0 at the bottom) at ``--lr x D^(L-i)``, what
    comes before the blocks (embeddings) at ``D^(L+1)``, what comes after (final norm, pooler) at
    ``--lr``. One group when both are 1, so the default run's optimizer state is as before."""
    from rewardlab.model.build import transformer_layers
    from rewardlab.model.reward_model import head_parameters, inner_hf

    params = [p for p in model.parameters() if p.requires_grad]
    scale: dict[int, float] = {}
    if cfg.layer_decay != 1.0:
        hf = inner_hf(model)
        base = getattr(hf, hf.base_model_prefix)
        blocks = transformer_layers(base)
        depth = {id(p): i for i, block in enumerate(blocks) for p in block.parameters()}
        below = True  # parameters are registered in forward order: embeddings, blocks, final layers
        for p in base.parameters():
            if id(p) in depth:
                below = False
                scale[id(p)] = cfg.layer_decay ** (len(blocks) - depth[id(p)])
            elif below:
                scale[id(p)] = cfg.layer_decay ** (len(blocks) + 1)
    if cfg.head_lr != 1.0:
        scale.update({id(p): cfg.head_lr for p in head_parameters(model)})
    groups: dict[float, list[Any]] = {}
    for p in params:
        groups.setdefault(scale.get(id(p), 1.0), []).append(p)
    if list(groups) == [1.0]:
        return [{"params": params}]
    return [{"params": ps, "lr": cfg.lr * s} for s, ps in groups.items()]


def make_scheduler(optimizer: Any, cfg: TrainConfig, total_steps: int) -> Any:
    """Linear warmup over ``--warmup-ratio`` of the steps, then ``--lr-schedule`` (cosine or linear decay
    to 0, or constant)."""
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    warmup = int(cfg.warmup_ratio * total_steps)
    if cfg.lr_schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    make = get_linear_schedule_with_warmup if cfg.lr_schedule == "linear" else get_cosine_schedule_with_warmup
    return make(optimizer, warmup, total_steps)


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
