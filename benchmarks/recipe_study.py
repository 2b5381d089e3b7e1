"""Choose rewardlab's training recipe by cross-validation on training data, never on the test file.

    .venv/bin/python benchmarks/recipe_study.py cv --configs default,no_holdout,mean   # HH, 3 folds
    .venv/bin/python benchmarks/recipe_study.py cv --testbed demo --configs default,mean
    .venv/bin/python benchmarks/recipe_study.py summary --baseline default             # the table

`cv` splits the training file into k folds **by prompt** (a prompt's pairs stay together), and for every
configuration, fold and seed trains on the other folds and scores the held-out fold: the held-out fold
plays the test file, the study never reads the real one. Every configuration sees the same folds and
seeds, so differences are paired. Each run is its own child process, taken one at a time under
``flock $REWARDLAB_LOCK`` (default /tmp/rewardlab-heavy.lock) so a study shares the machine with other
heavy jobs politely; results are appended to ``--results`` (JSONL) as they finish, and runs already
there are skipped, so an interrupted study resumes where it stopped.

The demo testbed (``--testbed demo``) runs the same k-fold split over the built-in demo task's training
prompts (written as ranking rows with their gold rewards; its eval and test prompts stay unread); it
reports gold agreement, the share of pairs the model orders as the known gold reward does, beside
label accuracy.

`summary` prints, per configuration, mean ± sd of held-out accuracy over (fold, seed) and the paired
difference against ``--baseline`` with its 95% t-interval. Configurations are TrainConfig overrides
(`CONFIGS` below); ``--set key=value`` adds an ad-hoc one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/hh-rlhf-harmless"
LOCK = os.environ.get("REWARDLAB_LOCK", "/tmp/rewardlab-heavy.lock")
"""Empty: run without the lock (accuracy-only studies beside other jobs; timings are then shared)."""

# The recipe before this study (rewardlab 0.x defaults): cls pooling for encoders, 10% of --data held
# out, lr 1e-4, batch 4, 1 epoch, cosine schedule, length-grouped batches, left truncation.
BEFORE = {
    "pooling": "auto",
    "eval_fraction": 0.1,
    "lr": 1e-4,
    "batch_size": 4,
    "epochs": 1.0,
    "length_grouped": True,
}
CONFIGS: dict[str, dict] = {
    "default": BEFORE,
    "no_holdout": {**BEFORE, "eval_fraction": 0.0},
    "holdout_20": {**BEFORE, "eval_fraction": 0.2, "eval_every": 20},
    "refit": {**BEFORE, "eval_fraction": 0.1, "eval_every": 20, "refit": True},
    "mean": {**BEFORE, "eval_fraction": 0.0, "pooling": "mean"},
    "mean_all": {**BEFORE, "eval_fraction": 0.0, "pooling": "mean_all"},
    "cls_nh": {**BEFORE, "eval_fraction": 0.0, "pooling": "cls"},
    "lr5e-5": {**BEFORE, "eval_fraction": 0.0, "lr": 5e-5},
    "lr2e-4": {**BEFORE, "eval_fraction": 0.0, "lr": 2e-4},
    "bs8": {**BEFORE, "eval_fraction": 0.0, "batch_size": 8},
    "bs16": {**BEFORE, "eval_fraction": 0.0, "batch_size": 16},
    "epochs2": {**BEFORE, "eval_fraction": 0.0, "epochs": 2.0},
    "epochs3": {**BEFORE, "eval_fraction": 0.0, "epochs": 3.0},
    "random_batches": {**BEFORE, "eval_fraction": 0.0, "length_grouped": False},
    "right_trunc": {**BEFORE, "eval_fraction": 0.0, "truncation": "right"},
    "linear": {**BEFORE, "eval_fraction": 0.0, "lr_schedule": "linear"},
    "wd0.01": {**BEFORE, "eval_fraction": 0.0, "weight_decay": 0.01},
    "warmup0.1": {**BEFORE, "eval_fraction": 0.0, "warmup_ratio": 0.1},
    "center": {**BEFORE, "eval_fraction": 0.0, "centering": 0.01},
    "smooth0.1": {**BEFORE, "eval_fraction": 0.0, "label_smoothing": 0.1},
    "fp32": {**BEFORE, "eval_fraction": 0.0, "mixed_precision": "no"},
    "ema0.99": {**BEFORE, "eval_fraction": 0.0, "ema_decay": 0.99},
    "freeze2": {**BEFORE, "eval_fraction": 0.0, "freeze_layers": 2},
    "dropout": {**BEFORE, "eval_fraction": 0.0, "dropout": True},
    "mean_all_fp32": {**BEFORE, "eval_fraction": 0.0, "pooling": "mean_all", "mixed_precision": "no"},
    # The demo's annotators draw Plackett-Luce rankings (demo/task.py: sample_ranks), so the PL likelihood
    # is their exact model, where all-pairs BT treats a ranking's 6 pairs as independent. HH: pairs = BT.
    "plackett_luce": {**BEFORE, "eval_fraction": 0.0, "loss": "plackett_luce"},
    # "More optimisation helps" on the demo (epochs2, lr2e-4 each ~+2 gold): are the two additive?
    "lr2e-4_e2": {**BEFORE, "eval_fraction": 0.0, "lr": 2e-4, "epochs": 2.0},
    "head10": {**BEFORE, "eval_fraction": 0.0, "head_lr": 10.0},
    "head100": {**BEFORE, "eval_fraction": 0.0, "head_lr": 100.0},
    "llrd0.8": {**BEFORE, "eval_fraction": 0.0, "layer_decay": 0.8},
    "llrd0.8_lr2e-4": {**BEFORE, "eval_fraction": 0.0, "layer_decay": 0.8, "lr": 2e-4},
    # LP-FT: one epoch of the head alone (every backbone layer frozen; BERT's pooler and the scalar
    # head train) at 10x the lr, then the usual fine-tune starting from that head.
    "lpft": {**BEFORE, "eval_fraction": 0.0, "probe": {"freeze_layers": 6, "lr": 1e-3}},
}


def prompt_key(row: dict) -> str:
    """The prompt a pair belongs to (HH transcripts share everything before the last assistant turn)."""
    from rewardlab.data.formats import split_transcript

    split = split_transcript(row["chosen"], row["rejected"]) if "chosen" in row else None
    prompt = split[0] if split else json.dumps(row.get("prompt", row), sort_keys=True)
    return " ".join(prompt.split())


def write_folds(data: str, k: int, fold_seed: int, workdir: Path) -> list[tuple[str, str]]:
    """k (train, held-out) file pairs; a prompt's rows land in one fold, chosen by a seeded hash."""
    lines = [x for x in Path(data).read_text().splitlines() if x.strip()]
    folds: list[list[str]] = [[] for _ in range(k)]
    for line in lines:
        digest = hashlib.sha256(f"{fold_seed}:{prompt_key(json.loads(line))}".encode()).digest()
        folds[int.from_bytes(digest[:8], "big") % k].append(line)
    files = []
    for i in range(k):
        train = workdir / f"fold{i}_train.jsonl"
        held = workdir / f"fold{i}_heldout.jsonl"
        train.write_text("\n".join(x for j, f in enumerate(folds) if j != i for x in f) + "\n")
        held.write_text("\n".join(folds[i]) + "\n")
        files.append((str(train), str(held)))
    return files


def child(spec: dict) -> None:
    """One run: train with the spec's overrides, print its held-out figures as a RESULT line."""
    import transformers

    from rewardlab.config import TrainConfig
    from rewardlab.training.run import train

    transformers.logging.set_verbosity_error()
    overrides = dict(spec["overrides"])
    refit = overrides.pop("refit", False)
    probe = overrides.pop("probe", None)
    common = {
        "data": spec.get("train"),
        "test_data": spec.get("heldout"),
        "seed": spec["seed"],
        "max_length": spec["max_length"],
        "backbone": spec["backbone"],
    }
    start = time.perf_counter()
    selected_step = probe_accuracy = None
    # Only the figures are kept: each model (~600 MB with checkpoints) goes with its temporary folder.
    scratch = tempfile.TemporaryDirectory(prefix="recipe-")
    if probe:  # LP-FT (Kumar et al. 2022): fit the head on a frozen backbone, then fine-tune from there
        first = train(TrainConfig(output_dir=f"{scratch.name}/probe", **common, **{**overrides, **probe}))
        common["backbone"], probe_accuracy = first.output_dir, first.test.accuracy
    if refit:  # select the step count on a held-out share, then retrain on everything for that long
        first = train(TrainConfig(output_dir=f"{scratch.name}/select", **common, **overrides))
        selected_step = first.best_step
        overrides.update(eval_fraction=0.0, eval_every=0, max_steps=max(1, first.best_step))
    cfg = TrainConfig(output_dir=f"{scratch.name}/model", **common, **overrides)
    result = train(cfg)
    held = result.test
    print(
        "RESULT "
        + json.dumps(
            {
                "accuracy": held.accuracy,
                "gold_agreement": getattr(held, "gold_agreement", None),
                "train_pairs": result.train_pairs,
                "steps": result.steps,
                "seconds": time.perf_counter() - start,
                "pairs_per_s": result.pairs_per_s,
                "selected_step": selected_step,
                "probe_accuracy": probe_accuracy,
            }
        )
    )
    scratch.cleanup()


def run_one(spec: dict) -> dict:
    cmd = [sys.executable, __file__, "child", json.dumps(spec)]
    cmd = ["flock", LOCK, *cmd] if LOCK else cmd
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"error": proc.stderr[-3000:]}
    return json.loads(line[len("RESULT ") :])


def parse_set(values: list[str]) -> dict:
    """``--set lr=3e-5 --set pooling=mean`` → overrides, values parsed as JSON where they parse."""
    out = {}
    for item in values:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cv(args: argparse.Namespace) -> None:
    configs = dict(CONFIGS)
    if args.set:
        configs[args.name or "custom"] = {**BEFORE, **parse_set(args.set)}
    names = (
        args.configs.split(",") if args.configs else ([args.name or "custom"] if args.set else ["default"])
    )
    unknown = [n for n in names if n not in configs]
    if unknown:
        raise SystemExit(f"--configs: unknown {unknown}; known: {', '.join(configs)}")
    results = Path(args.results)
    done = set()
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            if "error" not in r:
                done.add((r["testbed"], r["config"], r["fold"], r["seed"], r["max_length"], r["backbone"]))
    scratch = tempfile.TemporaryDirectory(prefix="recipe-folds-")  # removed when cv returns
    workdir = Path(scratch.name)
    data = args.data
    if args.testbed == "demo":  # the demo's training prompts as ranking rows, gold rewards included
        from rewardlab.demo.task import demo_splits, write_demo_jsonl

        data = str(workdir / "demo_train.jsonl")
        write_demo_jsonl(data, demo_splits(seed=0)["train"])
    elif not Path(data).exists():
        raise SystemExit(f"--data {data}: not found (the HH file lives in ../shared/data)")
    folds = write_folds(data, args.folds, args.fold_seed, workdir)[: args.use_folds or args.folds]
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in names:
        for fold, (train_file, held_file) in enumerate(folds):
            for seed in seeds:
                seed_used = seed + 100 * fold  # a different data order per fold, the same across configs
                key = (args.testbed, name, fold, seed_used, args.max_length, args.backbone)
                if key in done:
                    continue
                spec = {
                    "train": train_file,
                    "heldout": held_file,
                    "seed": seed_used,
                    "max_length": args.max_length,
                    "backbone": args.backbone,
                    "overrides": configs[name],
                }
                r = run_one(spec)
                record = dict(
                    zip(("testbed", "config", "fold", "seed", "max_length", "backbone"), key, strict=True)
                )
                record.update(r, overrides=configs[name])
                with results.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                shown = r.get("error", "")[-400:] or (
                    f"acc {r['accuracy']:.4f}"
                    + (f" gold {r['gold_agreement']:.4f}" if r.get("gold_agreement") is not None else "")
                    + f" {r['seconds']:.0f}s"
                )
                print(f"{name:>16} fold {fold} seed {seed_used}: {shown}", flush=True)


def t95(n: int) -> float:
    """Two-sided 95% Student-t quantile for n - 1 degrees of freedom (n ≤ 31 tabulated)."""
    table = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13]
    df = n - 1
    return table[df - 1] if 1 <= df <= len(table) else 2.04 if df <= 30 else 1.96


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Mean difference a - b over matched runs and its 95% t-interval (lo, hi)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(d)
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = t95(len(d)) * statistics.stdev(d) / math.sqrt(len(d))
    return mean, mean - half, mean + half


def summary(args: argparse.Namespace) -> None:
    rows = [json.loads(x) for x in Path(args.results).read_text().splitlines() if x.strip()]
    rows = [r for r in rows if "error" not in r and r["testbed"] == args.testbed]
    if args.max_length:
        rows = [r for r in rows if r["max_length"] == args.max_length]
    by: dict[str, dict[tuple, dict]] = {}
    for r in rows:
        by.setdefault(r["config"], {})[(r["fold"], r["seed"])] = r
    base = by.get(args.baseline, {})
    metric = args.metric
    print(f"testbed {args.testbed}, metric {metric}, baseline {args.baseline}")
    print(f"{'config':>16} {'n':>3} {'mean':>7} {'sd':>6}   paired Δ vs baseline [95% CI]")
    for name, runs in sorted(by.items(), key=lambda kv: -statistics.fmean(r[metric] for r in kv[1].values())):
        vals = [r[metric] for r in runs.values()]
        sd = statistics.stdev(vals) if len(vals) > 1 else math.nan
        keys = sorted(set(runs) & set(base))
        line = f"{name:>16} {len(vals):>3} {100 * statistics.fmean(vals):7.2f} {100 * sd:6.2f}"
        if name != args.baseline and len(keys) >= 2:
            d, lo, hi = paired([runs[k][metric] for k in keys], [base[k][metric] for k in keys])
            line += f"   {100 * d:+6.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] (n={len(keys)})"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("cv", help="run configurations over folds and seeds")
    p.add_argument("--testbed", choices=("hh", "demo"), default="hh")
    p.add_argument("--data", default=str(SHARED / "train.jsonl"), help="training file split into folds")
    p.add_argument("--configs", default=None, help=f"comma-separated, from: {', '.join(CONFIGS)}")
    p.add_argument("--set", action="append", default=[], help="ad-hoc override key=value (repeatable)")
    p.add_argument("--name", default=None, help="name of the --set configuration")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--use-folds", type=int, default=0, help="run only the first N folds (0: all)")
    p.add_argument("--fold-seed", type=int, default=0)
    p.add_argument("--seeds", default="0", help="comma-separated training seeds, per fold")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--results", default="benchmarks/results/recipe_study.jsonl")
    s = sub.add_parser("summary", help="mean ± sd and paired differences")
    s.add_argument("--testbed", choices=("hh", "demo"), default="hh")
    s.add_argument("--results", default="benchmarks/results/recipe_study.jsonl")
    s.add_argument("--baseline", default="default")
    s.add_argument("--metric", default="accuracy", choices=("accuracy", "gold_agreement"))
    s.add_argument("--max-length", type=int, default=0)
    c = sub.add_parser("child")
    c.add_argument("spec")
    args = parser.parse_args()
    if args.cmd == "child":
        child(json.loads(args.spec))
    elif args.cmd == "cv":
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        cv(args)
    else:
        summary(args)


if __name__ == "__main__":
    main()
