"""Retrain a reward model on fresh comparisons of the current policy without forgetting the old ones.

Training continues from a saved reward model (its folder is the backbone, so the trained head is kept)
on the new comparisons plus a replayed random fraction of the old training rows, through the one
training loop (`rewardlab.training.run.train`). The model before and after is evaluated on the old and the new
held-out sets, so forgetting (old accuracy falling) is visible next to the gain on the new distribution.

    rewardlab retrain runs/demo --new labelled.jsonl --old train.jsonl --replay 0.3 \\
        --old-test old_test.jsonl --new-test new_test.jsonl -o runs/demo-retrained
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.progress import Reporter


@dataclass
class RetrainConfig:
    model: str
    """Saved reward-model folder to continue from."""
    new_data: str
    """New comparisons (JSONL; docs/formats.md), e.g. annotations of `rewardlab drift --select` output."""
    old_data: str
    """The data the model was trained on (JSONL in the same format as new_data)."""
    output_dir: str
    replay: float = 0.3
    """Fraction of the old rows mixed in (0: none, 1: all of them)."""
    old_test: str | None = None
    new_test: str | None = None
    epochs: float = 1.0
    lr: float = 5e-5
    batch_size: int = 4
    max_steps: int = 0
    seed: int = 0


@dataclass
class RetrainResult:
    output_dir: str
    mixed_data: str
    new_rows: int
    replayed_rows: int
    before: dict[str, Any] = field(default_factory=dict)
    """Accuracy of the original model on "old" / "new" held-out sets (EvalResult.to_dict())."""
    after: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rows(path: str) -> list[str]:
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no rows")
    return lines


def replay_mix(new_rows: list[str], old_rows: list[str], fraction: float, seed: int = 0) -> list[str]:
    """The new rows plus round(fraction × len(old_rows)) old rows drawn without replacement, shuffled."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"--replay must be in [0, 1], got {fraction}")
    rng = random.Random(f"rewardlab-replay:{seed}")
    mixed = list(new_rows) + rng.sample(list(old_rows), round(fraction * len(old_rows)))
    rng.shuffle(mixed)
    return mixed


def _evaluate(model: str, sets: dict[str, str]) -> dict[str, Any]:
    from rewardlab.data import load_preferences
    from rewardlab.scoring.evaluate import evaluate
    from rewardlab.scoring.scorer import Scorer

    scorer = Scorer.from_pretrained(model)
    out = {}
    for name, path in sets.items():
        groups, _ = load_preferences(path)
        out[name] = evaluate(scorer, groups, n_boot=200).to_dict()
    return out


def retrain(cfg: RetrainConfig, reporter: Reporter | None = None) -> RetrainResult:
    """Continue training `cfg.model` on new + replayed old rows; evaluate before and after."""
    from rewardlab.config import TrainConfig
    from rewardlab.model.saved import ModelCard
    from rewardlab.training.run import train

    reporter = reporter or Reporter()
    card = ModelCard.load(cfg.model)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    new_rows, old_rows = _rows(cfg.new_data), _rows(cfg.old_data)
    mixed = replay_mix(new_rows, old_rows, cfg.replay, cfg.seed)
    mixed_path = out / "replay_mix.jsonl"
    mixed_path.write_text("".join(line + "\n" for line in mixed), encoding="utf-8")
    reporter.message(
        f"{len(new_rows)} new rows + {len(mixed) - len(new_rows)} replayed old rows -> {mixed_path}"
    )
    sets = {k: v for k, v in (("old", cfg.old_test), ("new", cfg.new_test)) if v}
    before = _evaluate(cfg.model, sets) if sets else {}
    train_cfg = TrainConfig(
        data=str(mixed_path),
        backbone=cfg.model,
        pooling=card.pooling,
        max_length=card.max_length,
        truncation=card.truncation,
        layout=card.layout,
        output_dir=str(out),
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
    )
    train(train_cfg, reporter)
    after = _evaluate(str(out), sets) if sets else {}
    result = RetrainResult(
        str(out), str(mixed_path), len(new_rows), len(mixed) - len(new_rows), before, after
    )
    (out / "retrain.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if sets:
        try:
            (out / "retrain.png").write_bytes(plot_retrain({f"replay {cfg.replay:g}": result.to_dict()}))
        except ImportError as e:  # matplotlib is the optional [plot] extra
            reporter.message(f"no retrain.png: {e}")
    return result


def plot_retrain(runs: dict[str, dict[str, Any]]) -> bytes:
    """Held-out accuracy before and after retraining, per set (old, new), one pair of bars per run, with
    the bootstrap 95% intervals: forgetting is the old set's "after" bar below its "before" bar.

    `runs` maps a label to a `retrain.json` dict; several runs (e.g. replay 0 and 0.3) share one "before"
    when they start from the same model, so it is drawn once per set."""
    from rewardlab.page import figure, png

    fig, (ax,) = figure(width=6.0, height=3.6)
    sets = [s for s in ("old", "new") if any(s in r.get("before", {}) for r in runs.values())]
    bars = [("before", next(iter(runs.values())))] + [(f"after, {k}", r) for k, r in runs.items()]
    width = 0.8 / len(bars)
    low = min(100 * r[w][s]["ci_low"] for r in runs.values() for w in ("before", "after") for s in sets)
    floor = max(0.0, low - 5)
    for j, (label, run) in enumerate(bars):
        part = run["before"] if label == "before" else run["after"]
        acc = [100 * part[s]["accuracy"] for s in sets]
        err = [
            [100 * (part[s]["accuracy"] - part[s]["ci_low"]) for s in sets],
            [100 * (part[s]["ci_high"] - part[s]["accuracy"]) for s in sets],
        ]
        xs = [i + (j - (len(bars) - 1) / 2) * width for i in range(len(sets))]
        ax.bar(xs, acc, width, yerr=err, capsize=3, label=label, color="#999999" if j == 0 else None)
        for x, a in zip(xs, acc, strict=True):
            ax.text(x, floor + 0.5, f"{a:.1f}", ha="center", va="bottom", fontsize=7, color="white")
    ax.set_xticks(range(len(sets)), [f"{s} held-out set" for s in sets])
    ax.set_ylabel("pairwise accuracy (%)")
    ax.set_ylim(floor, None)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Retraining on new comparisons: gain on new vs forgetting on old", fontsize=9)
    return png(fig)
