"""Scoring throughput: rewardlab's Scorer against `transformers.pipeline("text-classification")`.

    .venv/bin/python benchmarks/score_vs_pipeline.py            # 600 HH test texts, MiniLM, max 256 tokens
    .venv/bin/python benchmarks/score_vs_pipeline.py --quick    # 120 texts, about a minute

Same model, same texts, same truncation (right, 256 tokens, as the pipeline does), one process, run
one after the other. Configurations: the pipeline at batch 1 and 16 in fp32 and at batch 16 with bf16
weights; the Scorer in fp32, under bf16 autocast, and with int8 dynamic quantisation (CPU only). bf16
runs where the device has native bf16 (avx512_bf16/AMX CPUs, CUDA); elsewhere it is skipped with the
reason (it runs ~100x slower there) unless --force-bf16.

Each configuration reports texts/s, its max |score difference| to the fp32 pipeline at batch 1, and its
pair-order agreement with the fp32 Scorer: the share of consecutive text pairs (chosen, rejected on HH)
it orders as fp32 does. `ratio` in the final JSON line is the fastest Scorer configuration over the
fastest pipeline configuration, each side counting only configurations that keep pair order >= 0.99
(int8 has reordered up to 28% of HH pairs: it is reported, with `ratio_int8`, never counted). Without
--model a MiniLM is first trained for 24 steps, since an untrained head scores every text alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HH_TEST = Path(__file__).resolve().parents[1].parent / "shared/data/hh-rlhf-harmless/test.jsonl"


def load_texts(n: int) -> tuple[list[str], str]:
    if HH_TEST.exists():
        rows = [json.loads(line) for line in HH_TEST.read_text().splitlines() if line.strip()]
        texts = [t for r in rows for t in (r["chosen"], r["rejected"])]
        return texts[:n], str(HH_TEST)
    from rewardlab.demo.task import demo_splits

    groups = demo_splits()["test"]
    texts = [g.prompt + " " + r for g in groups for r in g.responses]
    return texts[:n], "built-in demo task (shared HH data absent)"


def matmul_gflops(dtype_name: str, size: int = 1024, reps: int = 10, device: str = "cpu") -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync()
    return 2 * size**3 * reps / (time.perf_counter() - start) / 1e9


ORDER_KEPT = 0.99  # a configuration counts for `ratio` only if it orders >= 99% of pairs as fp32 does


def timed(fn) -> tuple[list[float], float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def order_agreement(scores: list[float], reference: list[float], tie: float = 1e-6) -> float:
    """Share of consecutive pairs (texts 0-1, 2-3, ...) that `scores` order as `reference` does. Pairs the
    reference ties (identical texts once cut to max length) have no order and are left out."""
    pairs = [i for i in range(0, len(scores) - 1, 2) if abs(reference[i] - reference[i + 1]) > tie]
    same = [(scores[i] > scores[i + 1]) == (reference[i] > reference[i + 1]) for i in pairs]
    return sum(same) / max(len(same), 1)


def quick_model(backbone: str, max_length: int, workdir: Path) -> str:
    """A briefly trained reward model (24 steps on HH pairs): an untrained head scores every text alike,
    which makes pair-order agreement meaningless."""
    from train_vs_trl import write_subset

    from rewardlab.config import TrainConfig
    from rewardlab.training.run import train

    train_file, _, _ = write_subset(192, 1, workdir)
    cfg = TrainConfig(
        data=train_file,
        eval_fraction=0.0,
        backbone=backbone,
        output_dir=str(workdir / "model"),
        max_length=max_length,
        batch_size=8,
        max_steps=24,
    )
    train(cfg)
    return cfg.output_dir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="120 texts instead of 600.")
    parser.add_argument("--texts", type=int, default=None, help="How many texts (default 600, --quick 120).")
    parser.add_argument("--model", default=None, help="A saved rewardlab model (default: 24 steps on HH).")
    parser.add_argument("--backbone", default="minilm", help="Backbone of the default model.")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best available).")
    parser.add_argument(
        "--force-bf16", action="store_true", help="Time bf16 even where the device lacks native bf16."
    )
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import pipeline

    from rewardlab.scoring.scorer import Scorer, bf16_supported, pick_device

    transformers.logging.set_verbosity_error()
    device = pick_device(args.device)
    texts, source = load_texts(args.texts or (120 if args.quick else 600))
    workdir = Path(tempfile.mkdtemp(prefix="rl-bench-"))
    model_dir = args.model or quick_model(args.backbone, args.max_length, workdir)
    bf16_ok, bf16_why = bf16_supported(device)
    run_bf16 = bf16_ok or args.force_bf16
    print(f"device {device}; bf16: {bf16_why}{'' if run_bf16 else ' (bf16 skipped; --force-bf16 runs it)'}")

    results: dict[str, dict] = {}
    timings = [("pipeline_bs1", 1, torch.float32), ("pipeline_bs16", 16, torch.float32)]
    if run_bf16:
        timings.append(("pipeline_bs16_bf16", 16, torch.bfloat16))
    pipes = {}
    for name, bs, dtype in timings:
        if dtype not in pipes:
            pipes[dtype] = pipeline(
                "text-classification", model=model_dir, function_to_apply="none", device=device, dtype=dtype
            )
        pipe = pipes[dtype]
        out, secs = timed(
            lambda pipe=pipe, bs=bs: [
                o["score"] for o in pipe(texts, batch_size=bs, truncation=True, max_length=args.max_length)
            ]
        )
        results[name] = {"texts_per_s": len(texts) / secs, "seconds": secs, "scores": out}
        print(f"{name:>20}: {len(texts) / secs:7.1f} texts/s")
    reference = results["pipeline_bs1"]["scores"]  # fp32 batch 1: no padding at all

    modes = [("scorer_fp32", {}, False)]
    if run_bf16:
        modes.append(("scorer_bf16", {}, True))
    if device.type == "cpu":
        modes.append(("scorer_int8", {"quantize": "int8"}, False))
    for name, kw, bf16 in modes:
        run = Scorer.from_pretrained(model_dir, device=str(device), bf16=bf16, **kw)
        run.encoder.truncation = "right"  # the pipeline's truncation, so the scores are comparable
        run.score_texts(texts[:8])  # warm-up
        out, secs = timed(lambda run=run: run.score_texts(texts))
        results[name] = {"texts_per_s": len(texts) / secs, "seconds": secs, "scores": out}
        print(f"{name:>20}: {len(texts) / secs:7.1f} texts/s")

    fp32 = results["scorer_fp32"]["scores"]
    for name, r in results.items():
        scores = r.pop("scores")
        r["max_abs_diff_vs_fp32_pipeline"] = max(abs(a - b) for a, b in zip(scores, reference, strict=True))
        r["pair_order_agreement_vs_fp32"] = order_agreement(scores, fp32)
        r["keeps_pair_order"] = r["pair_order_agreement_vs_fp32"] >= ORDER_KEPT
        flag = (
            "" if r["keeps_pair_order"] else f"  <- reorders pairs (below {ORDER_KEPT}): not used for ratio"
        )
        print(
            f"{name:>20}: max |diff| vs fp32 pipeline {r['max_abs_diff_vs_fp32_pipeline']:.2e}, "
            f"pair order vs fp32 {r['pair_order_agreement_vs_fp32']:.3f}{flag}"
        )

    def fastest(prefix: str) -> tuple[str, float]:
        kept = {
            k: v["texts_per_s"] for k, v in results.items() if k.startswith(prefix) and v["keeps_pair_order"]
        }
        best = max(kept, key=kept.get)
        return best, kept[best]

    best_scorer, scorer_speed = fastest("scorer")
    best_pipe, pipe_speed = fastest("pipeline")
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    machine = {
        "device": str(device),
        "name": dev_name,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": bf16_ok,
        "matmul_gflops_fp32": round(matmul_gflops("float32", device=str(device)), 1),
        "matmul_gflops_bf16": round(matmul_gflops("bfloat16", reps=2, device=str(device)), 1),
    }
    if device.type == "cuda":
        machine["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    summary = {
        "benchmark": "score_vs_pipeline",
        "texts": len(texts),
        "source": source,
        "max_length": args.max_length,
        "results": results,
        "ratio": scorer_speed / pipe_speed,
        "ratio_configs": [best_scorer, best_pipe],
        "ratio_int8": results["scorer_int8"]["texts_per_s"] / pipe_speed
        if "scorer_int8" in results
        else None,
        "machine": machine,
    }
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
