"""The prepared GPU check: the demo on the accelerator, MiniLM on HH against TRL, and scoring against
the transformers pipeline, ending in one JSON line. Started by scripts/gpu_check.sh (which installs the
carried wheels first); `--dry-run` runs the same steps at toy sizes on whatever device is there.

    python scripts/gpu_check.py                      # on the GPU machine (after gpu_check.sh's install)
    python scripts/gpu_check.py --dry-run --backbone PATH   # anywhere: toy sizes (tests/test_gpu_check.py)

Each step runs the project's own benchmark script as a child process and keeps its final JSON line,
so the figures are the ones `benchmarks/` would print on that machine. A step that fails is reported
with the end of its output and the others still run; the exit code is 1 if any step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def last_json(cmd: list[str], timeout: float) -> dict:
    """Run one step; the JSON object on its last stdout line, or {"error": ...}."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "seconds": timeout}
    out = trailing_json(proc.stdout)
    if proc.returncode != 0 or out is None:
        return {"error": (proc.stdout + proc.stderr)[-2000:], "returncode": proc.returncode}
    out["step_seconds"] = round(time.perf_counter() - start, 1)
    return out


def trailing_json(stdout: str) -> dict | None:
    """The last JSON object a step printed: one line (benchmarks) or indented (`rewardlab train --json`)."""
    lines = stdout.splitlines()
    for i in reversed([i for i, line in enumerate(lines) if line.startswith("{")]):
        try:
            return json.loads("\n".join(lines[i:]))
        except json.JSONDecodeError:
            continue
    return None


def demo_step(args: argparse.Namespace) -> list[str]:
    """`rewardlab train` on its embedded default (the demo task), as the README's first command runs it."""
    cmd = [sys.executable, "-m", "rewardlab", "train", "--json", "--output-dir", args.workdir + "/demo"]
    if args.dry_run:
        cmd += ["--demo-prompts", "24", "--max-steps", "4", "--max-length", "64"]
    if args.backbone:
        cmd += ["--backbone", args.backbone]
    return cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="Toy sizes on any device, to test the script.")
    ap.add_argument("--backbone", default=None, help="Backbone for every step (default: MiniLM).")
    ap.add_argument("--workdir", default="/tmp/rewardlab-gpu-check")
    ap.add_argument("--budget-s", type=float, default=480, help="Time for all steps together (8 min).")
    ap.add_argument("--copy-minilm", default=None, help=argparse.SUPPRESS)  # gpu_check.sh's carry step
    ap.add_argument("--from", dest="source", default="minilm", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.copy_minilm:
        copy_backbone(args.source, args.copy_minilm, args.dtype)
        return 0
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    backbone = ["--backbone", args.backbone] if args.backbone else []
    size = ["--pairs", "16", "--test-pairs", "8", "--max-length", "64"] if args.dry_run else []
    texts = ["--texts", "24", "--max-length", "64"] if args.dry_run else []
    steps = {
        "demo": demo_step(args),
        # TRL's fastest configuration is bf16 without gradient checkpointing where bf16 is native (its
        # default turns checkpointing on), fp32 elsewhere; train_vs_trl skips bf16 there with the reason
        "train_vs_trl": [
            sys.executable, str(BENCH / "train_vs_trl.py"), "--only", "trl_fp32,trl_bf16,rewardlab",
            *size, *backbone,
        ],
        "score_vs_pipeline": [sys.executable, str(BENCH / "score_vs_pipeline.py"), *texts, *backbone],
    }  # fmt: skip
    started = time.perf_counter()
    report: dict = {"check": "gpu_check", "dry_run": args.dry_run, "steps": {}}
    for name, cmd in steps.items():
        left = args.budget_s - (time.perf_counter() - started)
        report["steps"][name] = last_json(cmd, timeout=max(left, 30))
    report.update(summary(report["steps"]))
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["device"] = device_line()
    print(json.dumps(report))
    return 1 if any("error" in s for s in report["steps"].values()) else 0


def copy_backbone(source: str, target: str, dtype: str) -> None:
    """Write a backbone folder in another dtype: bf16 to carry MiniLM under the device's size limit,
    fp32 on the GPU side so every tool trains fp32 master weights from the same values."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from rewardlab.model.build import resolve_backbone

    path, _ = resolve_backbone(source)
    AutoModel.from_pretrained(path, dtype=getattr(torch, dtype)).save_pretrained(target)
    AutoTokenizer.from_pretrained(path).save_pretrained(target)


def summary(steps: dict) -> dict:
    """The few figures the docs table takes, pulled out of the steps' own JSON."""
    demo, trl, score = steps["demo"], steps["train_vs_trl"], steps["score_vs_pipeline"]
    test = (demo.get("test") or {}) if "error" not in demo else {}
    results = trl.get("results", {})
    return {
        "demo_pairs_per_s": demo.get("pairs_per_s"),
        "demo_test_accuracy": test.get("accuracy"),
        "demo_gold_agreement": test.get("gold_agreement"),
        "hh_rewardlab_pairs_per_s": results.get("rewardlab", {}).get("pairs_per_s"),
        "hh_trl_pairs_per_s": {k: v.get("pairs_per_s") for k, v in results.items() if k.startswith("trl")},
        "hh_rewardlab_accuracy": results.get("rewardlab", {}).get("test_accuracy"),
        "hh_trl_accuracy": {k: v.get("test_accuracy") for k, v in results.items() if k.startswith("trl")},
        "hh_peak_gpu_mb": {k: v.get("peak_gpu_mb") for k, v in results.items()},
        "train_ratio": trl.get("ratio"),
        "score_texts_per_s": {k: v.get("texts_per_s") for k, v in score.get("results", {}).items()},
        "score_ratio": score.get("ratio"),
    }


def device_line() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"cpu ({torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores; no GPU)"


if __name__ == "__main__":
    raise SystemExit(main())
