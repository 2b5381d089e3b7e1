"""Training configuration: each field documented once, here; the CLI's --help is generated from it.

`add_dataclass_arguments` turns a dataclass into argparse flags (``max_length`` → ``--max-length``,
bools → ``--flag/--no-flag``), so the help text can never disagree with the code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def doc(text: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    return field(default=default, metadata={"help": text}, **kw)


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
    test_data: str | None = doc(
        "Final test preferences, scored once at the end with the selected model (never used to select).", None
    )
    format: str | None = doc(
        "Data format override: pairs, transcript, conversational, ranking, ratings; for --objective "
        "steps/outcome: stepwise, prm800k, math_shepherd (docs/prm.md). Empty: detect.",
        None,
    )
    objective: str = doc(
        "pairs: Bradley-Terry on preferences. steps: a process reward model, per-step BCE read at the step "
        "marker. outcome: an outcome reward model, BCE of the solution reward on its outcome label.",
        "pairs",
    )
    prm800k_neutral: str = doc(
        "PRM800K's neutral (0) rating becomes: positive (Lightman et al.), negative, or drop (no label).",
        "positive",
    )
    eval_fraction: float = doc("Fraction of --data prompts held out for model selection.", 0.1)
    output_dir: str = doc(
        "Where the trained reward model (HF folder + rewardlab.json) is written.", "runs/rewardlab"
    )
    backbone: str = doc(
        "Backbone: a local folder, a cached hub name, a .gguf file, or a packaged short name "
        "(minilm = all-MiniLM-L6-v2, smollm2 = SmolLM2-135M-Instruct GGUF).",
        "minilm",
    )
    pooling: str = doc(
        "auto (cls for encoders, last for decoders), last, cls or mean (over response tokens).", "auto"
    )
    max_length: int = doc("Token budget per (prompt, response), special tokens included.", 256)
    truncation: str = doc(
        "left: keep the response, cut the prompt from the left (default). right: cut the end of the text.",
        "left",
    )
    epochs: float = doc("Passes over the training data (reward models overfit after 1-2).", 1.0)
    max_steps: int = doc("Stop after this many optimizer steps (0: no limit).", 0)
    batch_size: int = doc("Prompts (groups) per micro-batch; for pair data, pairs per micro-batch.", 4)
    grad_accum: int = doc("Micro-batches per optimizer step.", 1)
    lr: float = doc("Peak learning rate of AdamW (suits MiniLM-size backbones; 1B+ want ~1e-5).", 1e-4)
    weight_decay: float = doc("AdamW weight decay.", 0.0)
    warmup_ratio: float = doc("Fraction of steps with linear warmup before the cosine decay.", 0.05)
    max_grad_norm: float = doc("Gradient clipping norm (0: off).", 1.0)
    loss: str = doc(
        "bt: Bradley-Terry averaged over each prompt's pairs (K-wise). plackett_luce: full-ranking "
        "likelihood for ranking rows without ties (other rows fall back to bt).",
        "bt",
    )
    use_margins: bool = doc("Use per-pair margins from the data in -log σ(Δ - m).", True)
    centering: float = doc(
        "Coefficient of the centering term c·mean((r_w + r_l)²) (0: off; 0.01 typical).", 0.0
    )
    label_smoothing: float = doc("ε of -(1-ε) log σ(Δ) - ε log σ(-Δ) for noisy labels (0: off).", 0.0)
    eval_every: int = doc(
        "Evaluate on held-out data every N optimizer steps (0: at the end of each epoch).", 0
    )
    save_every: int = doc("Write a resumable checkpoint every N optimizer steps (0: only at epoch ends).", 0)
    resume: str | None = doc("Resume from a checkpoint folder, or 'latest' under --output-dir.", None)
    seed: int = doc("Seed for data order, initialisation and the train/eval split.", 0)
    mixed_precision: str = doc("auto (bf16 where the device runs it fast), bf16, fp16 or no.", "auto")
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

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def _base_type(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one flag per dataclass field, with the field's documentation as help."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        tp = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        if tp is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text
            )
        else:
            default = f.default
            shown = f" (default: {default})" if default not in (None, "") else ""
            parser.add_argument(
                flag, type=tp, default=default, help=help_text + shown, metavar=f.name.upper()
            )


def from_namespace(cls: type, ns: argparse.Namespace) -> Any:
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)})


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
