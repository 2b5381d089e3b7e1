"""How close the pre-flight memory estimate (rewardlab/training/memory.py) comes to a run's real peak.

    .venv/bin/python benchmarks/train_memory.py                  # MiniLM and SmolLM2, a few shapes
    .venv/bin/python benchmarks/train_memory.py --only minilm

Each configuration trains 3 optimizer steps in its own child process on pairs long enough that every
response fills --max-length (so every micro-batch is the largest), and reports the process's peak
resident memory above what it held before training, beside the estimate `rewardlab train` prints.
The ratio estimate / measured is the figure: above 1 the warning errs on the safe side. CPU only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONFIGS = {
    "minilm_b4_l256": {"backbone": "minilm", "batch_size": 4, "max_length": 256},
    "minilm_b8_l512": {"backbone": "minilm", "batch_size": 8, "max_length": 512},
    "minilm_b8_l512_fp32": {
        "backbone": "minilm",
        "batch_size": 8,
        "max_length": 512,
        "mixed_precision": "no",
    },
    "minilm_b8_l512_freeze2": {"backbone": "minilm", "batch_size": 8, "max_length": 512, "freeze_layers": 2},
    "smollm2_b2_l384": {"backbone": "smollm2", "batch_size": 2, "max_length": 384},
    "smollm2_b4_l384": {"backbone": "smollm2", "batch_size": 4, "max_length": 384},
}


def long_pairs(path: Path, n: int = 64) -> str:
    """Pairs whose every response is longer than 512 tokens (left truncation cuts each to the limit)."""
    words = (
        "the ducks lay sixteen eggs a day and she sells the rest at the market for two dollars each ".split()
    )
    with path.open("w") as f:
        for i in range(n):
            prompt = " ".join(words[(i + j) % len(words)] for j in range(700))
            f.write(json.dumps({"prompt": prompt, "chosen": f" yes {i}", "rejected": f" no {i}"}) + "\n")
    return str(path)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(name: str, data: str) -> None:
    import torch  # noqa: F401  (imported before the baseline, as train() would find it)
    import transformers

    from rewardlab.config import TrainConfig
    from rewardlab.model.build import build_reward_model
    from rewardlab.training.memory import estimate_training_memory
    from rewardlab.training.run import train

    transformers.logging.set_verbosity_error()
    spec = CONFIGS[name]
    base = rss_bytes()
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(
            data=data, output_dir=out, max_steps=3, eval_fraction=0.0, shared_prefix=False, **spec
        )
        train(cfg)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model, _, _ = build_reward_model(cfg.backbone, max_length=cfg.max_length, freeze_layers=cfg.freeze_layers)
    tokens = cfg.batch_size * 2 * cfg.max_length
    est = estimate_training_memory(model, tokens, cfg.gradient_checkpointing)
    print("RESULT " + json.dumps({"measured": peak - base, "estimate": est.total, "parts": est.__dict__}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="Comma-separated configurations, or a prefix (minilm).")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    names = [n for n in CONFIGS if not args.only or any(n.startswith(o) for o in args.only.split(","))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = long_pairs(Path(tmp) / "long.jsonl")
        for name in names:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", name, "--data", data], capture_output=True, text=True
            )
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{name}: failed\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(line[len("RESULT ") :])
            r["ratio"] = r["estimate"] / r["measured"]
            rows.append({"config": name, **r})
            gib = {k: r[k] / 2**30 for k in ("measured", "estimate")}
            print(
                f"{name:>24}: measured {gib['measured']:5.2f} GiB  estimate {gib['estimate']:5.2f} GiB"
                f"  ratio {r['ratio']:.2f}  (activations {r['parts']['activations'] / 2**30:.2f} GiB)",
                flush=True,
            )
    print(json.dumps({"benchmark": "train_memory", "rows": rows}))


if __name__ == "__main__":
    main()
