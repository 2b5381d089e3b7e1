"""Does training cost grow linearly with the data? Time per pair at 400, 1,600 and 6,400 pairs.

    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/train_scaling.py          # 400, 1,600, 6,400
    .venv/bin/python benchmarks/train_scaling.py --quick                                  # 100, 400
    .venv/bin/python benchmarks/train_scaling.py --sizes 400 1600 --backbone minilm

The data is the built-in demo task as plain pairs (the shared HH file has only 1,600): for seed 0, 1,
2, ... every demo prompt gets two fresh policy responses labelled by the simulated annotators, so any
size up to 864 pairs per seed is available with the same length distribution. Each size trains in its
own child process with `rewardlab train`'s defaults (1 epoch, batch 8, max length 256, no held-out
evaluation), so every run pays the same start-up. Reported per size: training-loop seconds and
microseconds per pair (what should stay flat), the whole run's wall time (start-up, tokenising and
saving included) and peak RSS. The last line is JSON with `flatness` = the largest loop time per pair
over the smallest (1.0 = perfectly linear), and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def write_demo_pairs(path: Path, n_pairs: int) -> int:
    """`n_pairs` demo pairs (k=2 groups) over as many seeds as needed; returns the rows written."""
    from rewardlab.demo.task import demo_prompts, make_demo_groups, write_demo_jsonl

    groups, seed, per_seed = [], 0, len(demo_prompts())
    while len(groups) < n_pairs:
        groups += make_demo_groups(min(per_seed, n_pairs - len(groups)), k=2, seed=seed, as_rankings=False)
        seed += 1
    return write_demo_jsonl(path, groups)


def child(data: str, args: argparse.Namespace) -> dict:
    from rewardlab.config import TrainConfig
    from rewardlab.training.run import train

    start = time.perf_counter()
    cfg = TrainConfig(
        data=data,
        eval_fraction=0.0,
        backbone=args.backbone,
        output_dir=tempfile.mkdtemp(prefix="rl-scale-"),
        max_length=args.max_length,
        batch_size=args.batch_size,
        epochs=1,
    )
    result = train(cfg)
    loop_s = result.train_pairs / result.pairs_per_s
    return {
        "pairs": result.train_pairs,
        "steps": result.steps,
        "loop_s": loop_s,
        "us_per_pair": 1e6 * loop_s / result.train_pairs,
        "pairs_per_s": result.pairs_per_s,
        "run_s": time.perf_counter() - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 400 pairs")
    parser.add_argument("--sizes", type=int, nargs="+", help="pair counts (default 400 1600 6400)")
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args)))
        return
    import torch
    from train_vs_trl import run_child

    sizes = args.sizes or ([100, 400] if args.quick else [400, 1600, 6400])
    workdir = Path(tempfile.mkdtemp(prefix="rewardlab-train-scaling-"))
    print(
        f"{'pairs':>6} {'steps':>6} {'loop s':>8} {'us/pair':>9} {'pairs/s':>8} {'run s':>7} {'peak MB':>8}"
    )
    results = []
    for n in sizes:
        data = workdir / f"pairs-{n}.jsonl"
        write_demo_pairs(data, n)
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(data),
            "--backbone",
            args.backbone,
            "--max-length",
            str(args.max_length),
            "--batch-size",
            str(args.batch_size),
        ]
        r = run_child(cmd)
        if "error" in r:
            sys.exit(f"{n} pairs: the training child failed\n{r['error']}")
        results.append(r)
        print(
            f"{r['pairs']:>6} {r['steps']:>6} {r['loop_s']:>8.1f} {r['us_per_pair']:>9.0f} "
            f"{r['pairs_per_s']:>8.2f} {r['run_s']:>7.1f} {r['peak_rss_mb']:>8.0f}",
            flush=True,
        )
    per_pair = [r["us_per_pair"] for r in results]
    summary = {
        "benchmark": "train_scaling",
        "data": "built-in demo task, k=2 pairs",
        "backbone": args.backbone,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "results": results,
        "flatness": max(per_pair) / min(per_pair),
        "machine": {
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
