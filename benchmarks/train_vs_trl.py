"""Training throughput, memory and held-out accuracy: rewardlab against TRL's RewardTrainer.

    .venv/bin/pip install -e '.[bench]'                       # TRL, only for this script
    .venv/bin/python benchmarks/train_vs_trl.py               # 1,600 HH train pairs, MiniLM, 256 tokens
    .venv/bin/python benchmarks/train_vs_trl.py --quick       # 160 pairs, about a minute per config
    .venv/bin/python benchmarks/train_vs_trl.py --backbone smollm2 --pairs 100 --test-pairs 100
    .venv/bin/python benchmarks/train_vs_trl.py --seeds 5 --only rewardlab --rewardlab-set layer_decay=0.8

Every configuration runs in its own child process, one after the other (so peak RSS is its own):
TRL fp32, TRL's defaults (bf16 + gradient checkpointing), TRL bf16 without checkpointing, and
rewardlab (its defaults: length-grouped batches, left truncation, precision chosen for the device).
On a CPU without native bf16 matmuls (no avx512_bf16/AMX: bf16 runs ~100x slower than fp32 there) the
two bf16 TRL configurations are skipped with that reason unless --force-bf16; the measured fp32 and
bf16 matmul rates (the roofline) are printed either way, with each configuration's useful FLOP/s:
6 x non-embedding parameters x real (unpadded) tokens, plus attention, over its training time.
Same backbone, data, max length (256), batch (8 pairs), learning rate (1e-4) and epochs (1).
TRL gets the pairs pre-tokenised and cut to 256 tokens (its `max_length` drops over-long pairs and
its text path fails on a tokenizer without EOS); its accuracy is measured on the test pairs
tokenised the same way. Falls back to the demo task when ../shared/data is absent. The last line
is JSON with pairs/s, wall time, peak RSS and accuracy per configuration, and `ratio` = rewardlab's
pairs/s over TRL's fastest configuration. `--rewardlab-set KEY=VALUE` runs rewardlab with a TrainConfig
override (a candidate recipe from benchmarks/recipe_study.py), recorded in the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recipe_study import parse_set

from rewardlab.config import TrainConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/hh-rlhf-harmless"
TRL_CONFIGS = {
    "trl_fp32": {"bf16": False, "gradient_checkpointing": False},
    "trl_defaults_bf16_ckpt": {"bf16": True, "gradient_checkpointing": True},
    "trl_bf16": {"bf16": True, "gradient_checkpointing": False},
}


def write_subset(n_pairs: int, n_test: int, workdir: Path) -> tuple[str, str, str]:
    """Train/test JSONL files for both tools (HH transcripts, or the demo task as pairs)."""
    if (SHARED / "train.jsonl").exists():
        train_rows = (SHARED / "train.jsonl").read_text().splitlines()[:n_pairs]
        test_rows = (SHARED / "test.jsonl").read_text().splitlines()[:n_test]
        source = str(SHARED)
    else:
        from rewardlab.demo.task import demo_splits

        def rows(groups):
            return [
                json.dumps(
                    {"chosen": g.prompt + " " + g.responses[w], "rejected": g.prompt + " " + g.responses[lo]}
                )
                for g in groups
                for w, lo in g.pairs
            ]

        splits = demo_splits()
        train_rows, test_rows = rows(splits["train"])[:n_pairs], rows(splits["test"])[:n_test]
        source = "built-in demo task"
    (workdir / "train.jsonl").write_text("\n".join(train_rows) + "\n")
    (workdir / "test.jsonl").write_text("\n".join(test_rows) + "\n")
    return str(workdir / "train.jsonl"), str(workdir / "test.jsonl"), source


def useful_train_flops(args: argparse.Namespace, train_file: str) -> float:
    """Forward+backward FLOPs of one epoch on the real tokens only (padding excluded).

    6 x non-embedding parameters per token (2 forward, 4 backward) plus attention scores and
    values, 12 x layers x hidden x length^2 per sequence; the usual dense-transformer estimate.
    """
    from transformers import AutoConfig, AutoTokenizer

    from rewardlab.model.build import resolve_backbone

    path, gguf = resolve_backbone(args.backbone)
    kw = {"gguf_file": gguf} if gguf else {}
    tok = AutoTokenizer.from_pretrained(path, **kw)
    config = AutoConfig.from_pretrained(path, **kw)
    d, layers = config.hidden_size, config.num_hidden_layers
    ffn = getattr(config, "intermediate_size", 4 * d)
    kv = d * getattr(config, "num_key_value_heads", config.num_attention_heads) // config.num_attention_heads
    gated = 3 if getattr(config, "hidden_act", "") == "silu" else 2
    params = layers * (2 * d * d + 2 * d * kv + gated * d * ffn)
    rows = [json.loads(line) for line in Path(train_file).read_text().splitlines()]
    lengths = [
        min(len(tok(r[k])["input_ids"]), args.max_length) for r in rows for k in ("chosen", "rejected")
    ]
    return float(sum(6 * params * n + 12 * layers * d * n * n for n in lengths))


def run_trl(name: str, args: argparse.Namespace, train_file: str, test_file: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rewardlab.model.build import resolve_backbone

    path, gguf = resolve_backbone(args.backbone)
    kw = {"gguf_file": gguf} if gguf else {}
    tok = AutoTokenizer.from_pretrained(path, **kw)
    tok.truncation_side = args.trl_truncation  # a TRL user's one-line choice; left keeps the last turn
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    torch.manual_seed(args.seed)  # the fresh head's initialisation, as Trainer's seed does for the rest
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **kw)
    model.config.pad_token_id = tok.pad_token_id
    if gguf:  # de-quantized fp32 weights, but the GGUF "quantizer" stays attached and Trainer refuses them
        from rewardlab.model.build import forget_gguf_quantizer

        forget_gguf_quantizer(model)

    def tokenized(file: str) -> Dataset:
        rows = [json.loads(line) for line in Path(file).read_text().splitlines()]
        ids = {
            key: [tok(r[key], truncation=True, max_length=args.max_length)["input_ids"] for r in rows]
            for key in ("chosen", "rejected")
        }
        return Dataset.from_dict({"chosen_ids": ids["chosen"], "rejected_ids": ids["rejected"]})

    train_ds, test_ds = tokenized(train_file), tokenized(test_file)
    cfg = RewardConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-"),
        num_train_epochs=1,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        seed=args.seed,
        report_to=[],
        save_strategy="no",
        logging_steps=10**9,
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),  # else TRL refuses bf16 on CPU: "doesn't support bf16/gpu"
        **TRL_CONFIGS[name],
    )
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=train_ds, processing_class=tok)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model = trainer.model.eval().float()
    correct = 0.0
    with torch.inference_mode():
        for c, r in zip(test_ds["chosen_ids"], test_ds["rejected_ids"], strict=True):
            rc = model(torch.tensor([c], device=model.device)).logits[0, 0].item()
            rr = model(torch.tensor([r], device=model.device)).logits[0, 0].item()
            correct += 1.0 if rc > rr else 0.5 if rc == rr else 0.0
    return {
        "seconds": seconds,
        "pairs_per_s": len(train_ds) / seconds,
        "test_accuracy": correct / len(test_ds),
    }


def run_rewardlab(
    args: argparse.Namespace, train_file: str, test_file: str, matched_settings: bool = False
) -> dict:
    from rewardlab.training.run import train

    # rewardlab's own defaults (the recipe docs/recipes.md chose); --rewardlab-matched pins the
    # optimisation settings to TRL's instead, for a like-for-like speed comparison.
    matched = {"batch_size": args.batch_size, "lr": args.lr, "epochs": 1, "eval_fraction": 0.0}
    cfg = TrainConfig(
        data=train_file,
        test_data=test_file,
        backbone=args.backbone,
        output_dir=tempfile.mkdtemp(prefix="rl-"),
        max_length=args.max_length,
        seed=args.seed,
        **(matched if matched_settings else {}),
        **parse_set(args.rewardlab_set),
    )
    result = train(cfg)
    return {
        "seconds": result.train_pairs / result.pairs_per_s,
        "pairs_per_s": result.pairs_per_s,
        "test_accuracy": result.test.accuracy if result.test else None,
    }


def child(name: str, args: argparse.Namespace, train_file: str, test_file: str) -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    if name.startswith("rewardlab"):
        out = run_rewardlab(args, train_file, test_file, matched_settings=name == "rewardlab_matched")
    else:
        out = run_trl(name, args, train_file, test_file)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import torch

    if torch.cuda.is_available():
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(out))


def run_child(cmd: list[str]) -> dict:
    """Run one measured configuration in its own process: the JSON of its ``RESULT`` line, or
    ``{"error": <the end of its stderr>}`` when it printed none."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"error": proc.stderr[-3000:]}
    return json.loads(line[len("RESULT ") :])


def seed_list(text: str) -> list[int]:
    """``--seeds 5`` → seeds 0-4; ``--seeds 1,3`` → those seeds."""
    if "," in text:
        return [int(x) for x in text.split(",")]
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"--seeds must be at least 1, got {text}")
    return list(range(int(text)))


def summarize(runs: list[dict]) -> dict:
    """Mean (and sd over seeds) of a configuration's speed, memory and accuracy."""
    import statistics

    acc = [r["test_accuracy"] for r in runs]
    return {
        "pairs_per_s": statistics.fmean(r["pairs_per_s"] for r in runs),
        "seconds": statistics.fmean(r["seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "test_accuracy": statistics.fmean(acc),
        "test_accuracy_sd": statistics.stdev(acc) if len(acc) > 1 else None,
    }


def paired_interval(a: list[float], b: list[float]) -> tuple[float, float | None, float | None]:
    """Mean of a - b over matched seeds and its 95% Student-t interval (None with one seed)."""
    import statistics

    from recipe_study import t95

    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(d)
    if len(d) < 2:
        return mean, None, None
    half = t95(len(d)) * statistics.stdev(d) / len(d) ** 0.5
    return mean, mean - half, mean + half


def accuracy_comparison(results: dict[str, dict]) -> dict:
    """rewardlab's default recipe against TRL's most accurate configuration, paired by seed."""
    lines = []
    for name, r in results.items():
        if "test_accuracy" in r:
            sd = r["test_accuracy_sd"]
            lines.append(
                f"{name:>24}: test accuracy {100 * r['test_accuracy']:.2f}"
                + (f" ± {100 * sd:.2f}" if sd is not None else "")
                + f" over {len(r['runs'])} seed(s)"
            )
    trl = [k for k, v in results.items() if k.startswith("trl") and "test_accuracy" in v]
    ours = results.get("rewardlab", {})
    if not trl or "runs" not in ours:
        return {"lines": lines}
    best = max(trl, key=lambda k: results[k]["test_accuracy"])
    mine = {r["seed"]: r["test_accuracy"] for r in ours["runs"]}
    theirs = {r["seed"]: r["test_accuracy"] for r in results[best]["runs"]}
    seeds = sorted(set(mine) & set(theirs))
    d, lo, hi = paired_interval([mine[s] for s in seeds], [theirs[s] for s in seeds])
    ci = f" [{100 * lo:+.2f}, {100 * hi:+.2f}]" if lo is not None else " (one seed: no interval)"
    lines.append(
        f"rewardlab - {best} (TRL's most accurate): {100 * d:+.2f} points{ci}, paired over {len(seeds)} seeds"
    )
    return {"lines": lines, "trl_best": best, "difference": d, "ci95": [lo, hi], "paired_seeds": len(seeds)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="160 train and 100 test pairs.")
    parser.add_argument("--pairs", type=int, default=1600, help="Training pairs (the shared file has 1,600).")
    parser.add_argument(
        "--test-pairs", type=int, default=300, help="Held-out pairs (the shared file has 300)."
    )
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument(
        "--only",
        default=None,
        help="Comma-separated configurations to run, of: "
        + ", ".join([*TRL_CONFIGS, "rewardlab", "rewardlab_matched"]),
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default=[0],
        help="N: run every configuration with seeds 0..N-1; or a comma-separated list of seeds (1,2,3).",
    )
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--lock",
        default=None,
        help="Run each configuration under `flock LOCK` (share the machine with other heavy jobs one "
        "run at a time, e.g. /tmp/rewardlab-heavy.lock).",
    )
    parser.add_argument(
        "--trl-truncation",
        choices=("left", "right"),
        default="left",
        help="TRL tokenizer's truncation_side (left keeps the final turn, as rewardlab does by default).",
    )
    parser.add_argument("--force-bf16", action="store_true", help="Run TRL's bf16 configs on any CPU.")
    parser.add_argument(
        "--rewardlab-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A TrainConfig override for the rewardlab runs (repeatable: --rewardlab-set freeze_layers=2), "
        "to test a recipe the cross-validation chose before it becomes the default.",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(parse_set(args.rewardlab_set)) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        parser.error(f"--rewardlab-set: {', '.join(sorted(unknown))} is not a TrainConfig field")
    if args.child:
        child(args.child, args, *args.files)
        return

    import torch
    from score_vs_pipeline import matmul_gflops

    from rewardlab.scoring.scorer import bf16_supported

    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    n_pairs, n_test = (160, 100) if args.quick else (args.pairs, args.test_pairs)
    train_file, test_file, source = write_subset(n_pairs, n_test, workdir)
    names = args.only.split(",") if args.only else [*TRL_CONFIGS, "rewardlab", "rewardlab_matched"]
    roofline = {d: round(matmul_gflops(d), 1) for d in ("float32", "bfloat16")}
    bf16_ok, bf16_why = bf16_supported(torch.device("cpu"))
    print(f"matmul roofline (GFLOP/s): fp32 {roofline['float32']}, bf16 {roofline['bfloat16']} ({bf16_why})")
    flops = useful_train_flops(args, train_file)
    results: dict[str, dict] = {}
    for seed in args.seeds:
        for name in names:
            if TRL_CONFIGS.get(name, {}).get("bf16") and not (bf16_ok or args.force_bf16):
                results[name] = {"skipped": f"{bf16_why}; bf16 runs at {roofline['bfloat16']} GFLOP/s here"}
                if seed == args.seeds[0]:
                    print(f"{name:>24}: skipped ({results[name]['skipped']})")
                continue
            cmd = [
                sys.executable,
                __file__,
                "--child",
                name,
                "--files",
                train_file,
                test_file,
                "--seed",
                str(seed),
            ]
            for flag in ("backbone", "max_length", "batch_size", "lr", "trl_truncation"):
                cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
            for item in args.rewardlab_set:
                cmd += ["--rewardlab-set", item]
            r = run_child(["flock", args.lock, *cmd] if args.lock else cmd)
            if "error" in r:
                print(f"{name} seed {seed}: failed\n{r['error']}")
                results.setdefault(name, {}).setdefault("errors", []).append(r["error"][-500:])
                continue
            r["useful_gflop_per_s"] = round(flops / r["seconds"] / 1e9, 1)
            r["share_of_fp32_roofline"] = round(r["useful_gflop_per_s"] / roofline["float32"], 3)
            results.setdefault(name, {}).setdefault("runs", []).append({"seed": seed, **r})
            print(
                f"{name:>24} seed {seed}: {r['pairs_per_s']:6.2f} pairs/s  {r['seconds']:7.1f} s  "
                f"peak RSS {r['peak_rss_mb']:6.0f} MB  test accuracy {r['test_accuracy']:.3f}  "
                f"{r['useful_gflop_per_s']} useful GFLOP/s "
                f"({100 * r['share_of_fp32_roofline']:.0f}% of fp32 matmul)",
                flush=True,
            )
    for r in results.values():
        runs = r.get("runs", [])
        if runs:
            r.update(summarize(runs))
    accuracy = accuracy_comparison(results)
    for line in accuracy["lines"]:
        print(line)
    trl_speeds = [v["pairs_per_s"] for k, v in results.items() if k.startswith("trl") and "pairs_per_s" in v]
    ours = results.get("rewardlab_matched", results.get("rewardlab", {})).get("pairs_per_s", 0)
    ratio = ours / max(trl_speeds) if trl_speeds else None
    print(
        json.dumps(
            {
                "benchmark": "train_vs_trl",
                "source": source,
                "backbone": args.backbone,
                "train_pairs": n_pairs,
                "test_pairs": n_test,
                "seeds": args.seeds,
                "trl_truncation": args.trl_truncation,
                "rewardlab_overrides": parse_set(args.rewardlab_set),
                "results": results,
                "ratio": ratio,
                "accuracy": {k: v for k, v in accuracy.items() if k != "lines"},
                "useful_train_tflop": round(flops / 1e12, 2),
                "matmul_gflop_per_s": roofline,
                "machine": {
                    "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
