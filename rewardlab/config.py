"""Training configuration: each field documented once, here; the CLI's --help is generated from it.

`add_dataclass_flags` turns any config dataclass into argparse flags (``max_length`` →
``--max-length``, bools → ``--flag/--no-flag``, ``Literal[...]`` fields → ``choices=``, a nested
dataclass field → its own fields' flags), and `config_from_args` builds the config back from the
parsed namespace, so the help text can never disagree with the code. Every config checks itself in
`__post_init__` (`check_choices`, `ConfigError`): a bad value or combination fails when the config is
built, naming the flag and the valid values, before any model or accelerator is set up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rewardlab.flag_rules import regression_problem, stray_regression_flag, thinking_problem
from rewardlab.strict_json import finite_json


class ConfigError(ValueError):
    """A config value or combination that cannot work; the message names the flag and what it accepts."""


def doc(
    text: str,
    default: Any = dataclasses.MISSING,
    *,
    flag: str | None = None,
    short: str | None = None,
    positional: bool = False,
    sep: str | None = None,
    **kw: Any,
) -> Any:
    """A dataclass field documented once: `text` is its --help.

    `flag` overrides the generated ``--field-name`` (kept for flags older than their field's name),
    `short` adds an alias such as ``-o``, `positional` makes it a positional argument, and `sep` reads
    a list field from one string split at `sep` (``--fit bon,rl``); other list fields are repeatable
    flags (``--proxy a --proxy b``), or ``nargs="+"`` when positional.
    """
    meta = {"help": text, "flag": flag, "short": short, "positional": positional, "sep": sep}
    if default is dataclasses.MISSING:
        return field(metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


PAIR_FORMATS = ("pairs", "transcript", "conversational", "ranking", "ratings")
"""--format values for --objective pairs (rewardlab.data.formats.FORMATS)."""
STEP_FORMATS = ("stepwise", "prm800k", "math_shepherd", "gsm8k_solutions")
"""--format values for --objective steps/outcome (rewardlab.data.steps.STEP_FORMATS)."""
DataFormat = Literal[
    "pairs",
    "transcript",
    "conversational",
    "ranking",
    "ratings",
    "stepwise",
    "prm800k",
    "math_shepherd",
    "gsm8k_solutions",
]


@dataclass
class TrainConfig:
    """Everything `rewardlab train` needs; the defaults train the built-in demo task on MiniLM."""

    data: str | None = doc(
        "Training preferences: JSONL/JSON/parquet/CSV file, a saved `datasets` folder or a cached HF dataset "
        "name. Empty: the built-in demo task (docs/demo.md).",
        None,
    )
    eval_data: str | None = doc(
        "Held-out preferences for model selection. Empty: hold out --eval-fraction of --data (by prompt).",
        None,
    )
    test_data: str | None = doc("Test preferences, scored once at the end (never used to select).", None)
    format: DataFormat | None = doc(
        "Data format override: pairs, transcript, conversational, ranking, ratings; for --objective "
        "steps/outcome: stepwise, prm800k, math_shepherd, gsm8k_solutions (docs/prm.md). Empty: detect.",
        None,
    )
    objective: Literal["pairs", "steps", "outcome", "regression"] = doc(
        "pairs: Bradley-Terry on preferences. steps: a process reward model, per-step BCE read at the step "
        "marker. outcome: an outcome reward model, BCE of the solution reward on its outcome label. "
        "regression: ratings data, a head of one output per --attributes trained with MSE (optionally "
        "+ --bt-weight scaled Bradley-Terry), combined by --attribute-weights (docs/reward_kinds.md).",
        "pairs",
    )
    attributes: list[str] = doc(
        "--objective regression: the rated attributes, each completion's scores.NAME (helpfulness,...). "
        "Empty: one attribute, each completion's score.", default_factory=list, sep=",",
    )  # fmt: skip
    attribute_weights: list[float] = doc(
        "--objective regression: w of reward = Σ w_a · attribute_a, one per --attributes (rewardlab.json, "
        "folded into the saved head). Empty: 1/attributes each.", default_factory=list, sep=",",
    )  # fmt: skip
    bt_weight: float = doc(
        "--objective regression: weight of scaled Bradley-Terry on the combined reward, pairs weighted by "
        "their rating gap (Nemotron, arXiv 2410.01257); 0: MSE only.", 0.0,
    )  # fmt: skip
    prm800k_neutral: Literal["positive", "negative", "drop"] = doc(
        "PRM800K's neutral (0) rating becomes: positive (Lightman et al.), negative, or drop (no label).",
        "positive",
    )
    eval_fraction: float = doc(
        "Fraction of --data prompts held out for a held-out figure and model selection (with 1 epoch and "
        "--eval-every 0 it selects nothing; selecting every 20 steps on 20% was worse on HH-RLHF, and "
        "train-on-all was no better: docs/recipes.md).",
        0.1,
    )
    output_dir: str = doc("Where the reward model (HF folder + rewardlab.json) is written.", "runs/rewardlab")
    backbone: str = doc(
        "Backbone: a local folder, a cached hub name, a .gguf file, or a packaged short name "
        "(minilm = all-MiniLM-L6-v2, smollm2 = SmolLM2-135M-Instruct GGUF).",
        "minilm",
    )
    pooling: Literal["auto", "last", "cls", "mean", "mean_all"] = doc(
        "auto (cls for encoders, last for decoders), last, cls, mean (over response tokens) or mean_all "
        "(over every token). The mean poolings are rewardlab-only: export refuses them.",
        "auto",
    )
    max_length: int = doc("Token budget per (prompt, response), special tokens included.", 256)
    truncation: Literal["left", "right"] = doc(
        "left: cut the prompt from the left, keep the response; right: cut the end (HH: -6 pts, recipes.md).",
        "left",
    )
    layout: Literal["rewardlab", "chat_template"] = doc(
        "How (prompt, response) becomes ids. rewardlab: [BOS] prompt response [EOS] (text pairs for "
        "encoders). chat_template (decoders with a chat template): exactly the template's text, reward read "
        "at its last token, as vLLM, verl, TRL and OpenRLHF tokenise it (docs/integrations.md).",
        "rewardlab",
    )
    epochs: float = doc(
        "Passes over the training data (reward models overfit after 1-2; a second epoch gained nothing "
        "measurable on HH-RLHF or the demo task, docs/recipes.md).",
        1.0,
    )
    max_steps: int = doc("Stop after this many optimizer steps (0: no limit).", 0)
    batch_size: int = doc("Prompts (groups) per micro-batch; for pair data, pairs per micro-batch.", 4)
    grad_accum: int = doc("Micro-batches per optimizer step.", 1)
    lr: float = doc(
        "Peak learning rate of AdamW (MiniLM on HH-RLHF: 2e-4 and 5e-5 both worse, docs/recipes.md; "
        "1B+ backbones want ~1e-5).",
        1e-4,
    )
    weight_decay: float = doc("AdamW weight decay.", 0.0)
    head_lr: float = doc("The freshly initialised reward head's learning rate, as a multiple of --lr.", 1.0)
    layer_decay: float = doc("Layer-wise lr decay: block i of L at --lr x D^(L-i), embeddings D^(L+1).", 1.0)
    warmup_ratio: float = doc("Fraction of steps with linear warmup before the decay.", 0.05)
    lr_schedule: Literal["cosine", "linear", "constant"] = doc(
        "Learning-rate decay after the warmup: cosine or linear to 0, or constant.", "cosine"
    )
    max_grad_norm: float = doc("Gradient clipping norm (0: off).", 1.0)
    loss: Literal["bt", "plackett_luce"] = doc(
        "bt: Bradley-Terry averaged over each prompt's pairs (K-wise). plackett_luce: full-ranking "
        "likelihood for ranking rows without ties (other rows fall back to bt).",
        "bt",
    )
    use_margins: bool = doc("Use per-pair margins from the data in -log σ(Δ - m).", True)
    centering: float = doc(
        "c·mean((r_w + r_l)²) keeps rewards near 0 (0: off; 0.01 cost 3 points on HH, docs/recipes.md).", 0.0
    )
    label_smoothing: float = doc("ε of -(1-ε) log σ(Δ) - ε log σ(-Δ) for noisy labels (0: off).", 0.0)
    ema_decay: float = doc(
        "Evaluate and save an exponential moving average of the weights with this decay (0: off, the last "
        "weights; 0.99 averages about the last 100 steps; docs/recipes.md measures it).",
        0.0,
    )
    eval_every: int = doc("Evaluate on held-out data every N optimizer steps (0: at each epoch's end).", 0)
    save_every: int = doc("Write a resumable checkpoint every N optimizer steps (0: only at epoch ends).", 0)
    resume: str | None = doc(
        "Resume from a checkpoint folder, or 'latest' under --output-dir (the newest intact checkpoint of "
        "this run: same config and data, checksums verified; docs/reliability.md).",
        None,
    )
    force: bool = doc(
        "With --resume: accept another run's checkpoint (other config or data) or an unverifiable one "
        "written by an older rewardlab (no run.json).",
        False,
    )
    overwrite: bool = doc(
        "A new run into an --output-dir that holds another run's checkpoints or model: remove the old "
        "checkpoints folder and replace them (without it such a run refuses to start).",
        False,
    )
    seed: int = doc("Seed for data order, initialisation and the train/eval split.", 0)
    mixed_precision: Literal["auto", "bf16", "fp16", "no"] = doc(
        "auto (bf16 where the device runs it fast), bf16, fp16 or no.", "auto"
    )
    freeze_layers: int = doc("Freeze the embeddings and the bottom N transformer layers.", 0)
    lora_r: int = doc("LoRA rank (0: full fine-tuning). The scalar head is always trained in full.", 0)
    gradient_checkpointing: bool = doc("Recompute activations in backward to save memory.", False)
    dropout: bool = doc(
        "Keep the backbone's dropout while training (off by default, as in TRL: it adds noise to the "
        "chosen-rejected difference and costs about a sixth of a CPU step).",
        False,
    )
    length_grouped: bool = doc("Group batches by length (shuffled windows) to waste less on padding.", True)
    trim_memory: bool = doc(
        "CPU with glibc: return the heap pages malloc keeps to the OS after every step, so resident memory "
        "stays near one step's need instead of creeping up as batch shapes vary (rewardlab/cpu_memory.py).",
        False,
    )
    demo_prompts: int = doc("Demo task only: number of training prompts (empty --data).", 0)
    shared_prefix: bool = doc(
        "Decoders: run each prompt's shared tokens once per group instead of once per response (one packed "
        "row, block attention mask; rewardlab/shared_prefix.py). Used where the backbone supports it, with "
        "the reason logged otherwise.",
        True,
    )
    stream: bool = doc(
        "Tokenise --data once into an on-disk Arrow cache ($REWARDLAB_TOKEN_CACHE) and train from it "
        "memory-mapped, for files that do not fit in RAM; same batches as without (docs/training.md).",
        False,
    )
    strip_thinking: bool = doc(
        "Remove reasoning traces (--think-open...--think-close) from responses, in training and (recorded in "
        "rewardlab.json) every later scoring; unterminated: dropped from the tag on (docs/reward_kinds.md).",
        False,
    )
    think_open: str = doc("Tag that opens a reasoning trace (--strip-thinking).", "<think>")
    think_close: str = doc("Tag that closes a reasoning trace (--strip-thinking).", "</think>")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("max_length", "batch_size", "grad_accum"):
            check_range(self, name, low=1)
        check_range(self, "epochs", low=0, low_open=True)
        check_range(self, "lr", low=0)  # 0 is a no-op run, which tests use to keep a model as it is
        for name in ("max_steps", "eval_every", "save_every", "freeze_layers", "lora_r", "demo_prompts"):
            check_range(self, name, low=0)
        for name in ("weight_decay", "max_grad_norm", "centering"):
            check_range(self, name, low=0)
        check_range(self, "eval_fraction", low=0, high=1)
        check_range(self, "warmup_ratio", low=0, high=1)
        check_range(self, "label_smoothing", low=0, high=0.5)
        check_range(self, "ema_decay", low=0, high=1)
        check_range(self, "head_lr", low=0, low_open=True)
        check_range(self, "layer_decay", low=0, high=1, low_open=True, high_closed=True)
        problem = (regression_problem if self.objective == "regression" else stray_regression_flag)(self) or (
            self.strip_thinking and thinking_problem(self.think_open, self.think_close)
        )
        if problem:
            raise ConfigError(problem)
        formats = {"pairs": PAIR_FORMATS, "regression": ("ratings",)}.get(self.objective, STEP_FORMATS)
        if self.format is not None and self.format not in formats:
            raise ConfigError(
                f"--format {self.format} is not a format of --objective {self.objective}; "
                f"it takes one of {', '.join(formats)}"
            )
        if self.objective != "pairs" and self.data is None:
            raise ConfigError(
                f"--objective {self.objective} needs --data with step-labelled solutions (docs/prm.md); "
                "build some from GSM8K with `rewardlab prm build-gsm8k`"
            )
        if self.objective == "steps" and self.lora_r:
            raise ConfigError(
                "--lora-r is not supported with --objective steps yet; use --freeze-layers instead"
            )
        if self.layout == "chat_template" and self.objective == "steps":
            raise ConfigError("--layout chat_template is not supported with --objective steps; use rewardlab")
        if self.overwrite and self.resume:
            raise ConfigError("--overwrite starts a new run, --resume continues one; pass only one of them")
        if self.stream and (self.objective != "pairs" or self.data is None):
            raise ConfigError(
                "--stream reads --data of preferences (--objective pairs); drop --stream otherwise"
            )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


# --- checks every config's __post_init__ uses ----------------------------------------------------------


def flag_name(f: dataclasses.Field) -> str:
    """The command-line flag of a field: its `doc(flag=...)`, else ``--field-name``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _field(obj: Any, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(obj) if f.name == name)


def _choices(tp: Any) -> tuple | None:
    """The values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation; None for other types."""
    tp = _base_type(tp)
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def check_choices(obj: Any) -> None:
    """Raise ConfigError for the first `Literal` field of a config whose value is not one of its choices."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        choices = _choices(hints[f.name])
        value = getattr(obj, f.name)
        if choices is None or value in choices or (value is None and _optional(hints[f.name])):
            continue
        raise ConfigError(f"{flag_name(f)} must be one of {', '.join(map(str, choices))}; got {value!r}")


def check_range(
    obj: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_closed: bool = False,
) -> None:
    """Raise ConfigError unless ``low <= value < high`` (``low < value`` with `low_open`, ``value <= high``
    with `high_closed`); None passes."""
    value = getattr(obj, name)
    if value is None:
        return
    flag = flag_name(_field(obj, name))
    if isinstance(value, float) and math.isnan(value):
        raise ConfigError(f"{flag} must be a number, got nan")
    if low is not None and (value <= low if low_open else value < low):
        need = f"greater than {low:g}" if low_open else f"at least {low:g}"
        raise ConfigError(f"{flag} must be {need}, got {value}")
    if high is not None and (value > high if high_closed else value >= high):
        raise ConfigError(f"{flag} must be {'at most' if high_closed else 'below'} {high:g}, got {value}")


# --- flags from fields ---------------------------------------------------------------------------------


def _optional(tp: Any) -> bool:
    is_union = isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union
    return is_union and type(None) in typing.get_args(tp)


def _base_type(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per field of the config dataclass `cls` (recursing into dataclass-typed fields).

    The field's `doc` text is the help; bools get ``--flag/--no-flag``; ``Literal[...]`` fields get
    ``choices=`` (argparse then refuses a bad value itself, exit code 2, listing the choices); fields
    without a default are required. `config_from_args` reads the namespace back.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = _base_type(hints[f.name])
        if dataclasses.is_dataclass(tp):
            add_dataclass_flags(parser, tp, skip)
            continue
        parser.add_argument(*_names(f), **_argument(f, tp, _choices(hints[f.name])))


def _names(f: dataclasses.Field) -> list[str]:
    if f.metadata.get("positional"):
        return [f.name]
    short = f.metadata.get("short")
    return [short, flag_name(f)] if short else [flag_name(f)]


def _argument(f: dataclasses.Field, tp: Any, choices: tuple | None) -> dict[str, Any]:
    help_text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
    default = _default(f)
    kw: dict[str, Any] = {"help": help_text}
    if not f.metadata.get("positional"):
        kw["dest"] = f.name
        if default is dataclasses.MISSING:
            kw["required"] = True
    if tp is bool:
        return {**kw, "action": argparse.BooleanOptionalAction, "default": default}
    if typing.get_origin(tp) is list:
        item = typing.get_args(tp)[0] if typing.get_args(tp) else str
        sep = f.metadata.get("sep")
        if sep:  # one string, split: the default is shown as it would be typed
            shown = sep.join(map(str, default)) if isinstance(default, list) else default
            kw["help"] = help_text + f" (default: {shown})"
            return {**kw, "type": _split(sep, item), "default": default, "metavar": f.name.upper()}
        if f.metadata.get("positional"):
            return {**kw, "nargs": "+", "type": item}
        shown = f" (repeatable; default: {', '.join(map(str, default))})" if default else " (repeatable)"
        return {**kw, "help": help_text + shown, "action": "append", "type": item, "default": None}
    if default is not dataclasses.MISSING:
        kw["default"] = default
        if default not in (None, ""):
            kw["help"] = help_text + f" (default: {default})"
    if choices is not None:
        return {**kw, "type": type(choices[0]), "choices": choices, "metavar": "{" + ",".join(choices) + "}"}
    if f.metadata.get("positional"):
        return {**kw, "type": tp}
    return {**kw, "type": tp, "metavar": f.name.upper()}


def _split(sep: str, item: type) -> Any:
    def parse(text: str) -> list:
        return [item(part) for part in text.split(sep) if part]

    parse.__name__ = f"{item.__name__} list"  # argparse names the type in "invalid ... value"
    return parse


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """Build the config `cls` from flags added by `add_dataclass_flags` (its __post_init__ checks them).

    A repeatable list flag given no times takes the field's default.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = _base_type(hints[f.name])
        if dataclasses.is_dataclass(tp):
            values[f.name] = config_from_args(tp, args)
            continue
        if not hasattr(args, f.name):
            continue  # a field the parser skipped keeps its default
        value = getattr(args, f.name)
        if value is None and typing.get_origin(tp) is list and _default(f) is not dataclasses.MISSING:
            value = _default(f)
        values[f.name] = value
    return cls(**values)


add_dataclass_arguments = add_dataclass_flags
"""The former name of `add_dataclass_flags`, kept for callers."""
from_namespace = config_from_args
"""The former name of `config_from_args`, kept for callers."""


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(finite_json(dataclasses.asdict(cfg)), indent=2, allow_nan=False) + "\n")
