"""Where a rewardlab training step spends its time: torch.profiler over a few steps on HH-RLHF pairs.

    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/profile_train.py            # MiniLM, 12 steps
    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/profile_train.py --backbone smollm2 --steps 4

Runs the real `rewardlab.train.train` (so data encoding, batching, the optimizer and checkpointing are
all inside the profile) on the first pairs of ../shared/data/hh-rlhf-harmless/train.jsonl (the demo task
when absent), and prints the top operators by self CPU time, the share of matmul-class operators, and
the time outside torch operators (Python, tokenisation, I/O). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from train_vs_trl import write_subset  # noqa: E402  (the same pairs as the TRL comparison)

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="minilm")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    import torch
    import transformers
    from torch.profiler import ProfilerActivity, profile

    from rewardlab.config import TrainConfig
    from rewardlab.training.run import train

    transformers.logging.set_verbosity_error()
    workdir = Path(tempfile.mkdtemp(prefix="profile-"))
    train_file, _, source = write_subset(args.steps * args.batch_size, 1, workdir)
    cfg = TrainConfig(
        data=train_file,
        eval_fraction=0.0,
        backbone=args.backbone,
        output_dir=str(workdir / "run"),
        max_length=args.max_length,
        batch_size=args.batch_size,
        epochs=1,
    )
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = train(cfg)
    wall = time.perf_counter() - started
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events) / 1e6
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS) / 1e6
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top))
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]
    summary = {
        "benchmark": "profile_train",
        "source": source,
        "backbone": args.backbone,
        "steps": result.steps,
        "wall_s": round(wall, 2),
        "train_loop_s": round(result.wall_time_s, 2),
        "torch_op_self_s": round(total_self, 2),
        "matmul_share_of_ops": round(matmul / total_self, 3) if total_self else None,
        "top_ops": {e.key: round(e.self_cpu_time_total / 1e6, 3) for e in top},
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
