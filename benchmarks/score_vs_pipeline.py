"""Scoring throughput: rewardlab's Scorer against `transformers.pipeline("text-classification")`.

    .venv/bin/python benchmarks/score_vs_pipeline.py            # 600 HH test texts, MiniLM, max 256 tokens
    .venv/bin/python benchmarks/score_vs_pipeline.py --quick    # 120 texts, about a minute

Same model, same texts, same truncation (right, 256 tokens, as the pipeline does), one process, run
one after the other. Prints texts/s for each configuration, the largest absolute score difference to
the pipeline in fp32, the machine's measured fp32/bf16 matmul rate, and a final JSON line whose
`ratio` is the Scorer's texts/s over the pipeline's fastest configuration.

The Scorer with int8 dynamic quantisation (``quantize="int8"``, CPU only) is timed too; its accuracy
cost is the max |score difference| to the fp32 pipeline and the pairwise-order agreement: the share of
consecutive text pairs (chosen, rejected on HH) that int8 orders as the fp32 pipeline does. With the
default untrained head the scores barely differ between texts, so pass a trained `--model` for an
agreement figure that means something.
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


def matmul_gflops(dtype_name: str, size: int = 1024, reps: int = 10) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * size**3 * reps / (time.perf_counter() - start) / 1e9


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="120 texts instead of 600.")
    parser.add_argument("--model", default=None, help="A saved rewardlab model (default: MiniLM, new head).")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--bf16", action="store_true", help="Also time the Scorer under bf16 autocast.")
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import pipeline

    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.scorer import Scorer

    transformers.logging.set_verbosity_error()
    texts, source = load_texts(120 if args.quick else 600)
    model_dir = args.model
    if model_dir is None:
        model_dir = tempfile.mkdtemp(prefix="rl-bench-")
        torch.manual_seed(0)
        save_reward_model(*build_reward_model("minilm", max_length=args.max_length), model_dir)

    results: dict[str, dict] = {}
    pipe = pipeline("text-classification", model=model_dir, function_to_apply="none", device="cpu")
    reference = None
    for bs in (1, 16):
        out, secs = timed(
            lambda bs=bs: [
                o["score"] for o in pipe(texts, batch_size=bs, truncation=True, max_length=args.max_length)
            ]
        )
        reference = reference or out
        results[f"pipeline_bs{bs}"] = {"texts_per_s": len(texts) / secs, "seconds": secs}
        print(f"pipeline batch {bs:>2}: {len(texts) / secs:7.1f} texts/s")

    scorer = Scorer.from_pretrained(model_dir, device="cpu")
    scorer.encoder.truncation = "right"  # the pipeline's truncation, so the scores are comparable
    int8 = Scorer.from_pretrained(model_dir, device="cpu", quantize="int8")
    int8.encoder.truncation = "right"
    modes = [("scorer_fp32", scorer, False)] + ([("scorer_bf16", scorer, True)] if args.bf16 else [])
    for name, run, bf16 in [*modes, ("scorer_int8", int8, False)]:
        run.bf16 = bf16
        run.score_texts(texts[:8])  # warm-up
        out, secs = timed(lambda run=run: run.score_texts(texts))
        diff = max(abs(a - b) for a, b in zip(out, reference, strict=True))
        agree = order_agreement(out, reference)
        results[name] = {
            "texts_per_s": len(texts) / secs,
            "seconds": secs,
            "max_abs_diff_vs_pipeline": diff,
            "pair_order_agreement_vs_pipeline": agree,
        }
        print(
            f"{name}: {len(texts) / secs:7.1f} texts/s, max |diff| vs pipeline {diff:.2e}, order {agree:.3f}"
        )

    best_pipe = max(v["texts_per_s"] for k, v in results.items() if k.startswith("pipeline"))
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "matmul_gflops_fp32": round(matmul_gflops("float32"), 1),
        "matmul_gflops_bf16": round(matmul_gflops("bfloat16", reps=2), 1),
    }
    summary = {
        "benchmark": "score_vs_pipeline",
        "texts": len(texts),
        "source": source,
        "max_length": args.max_length,
        "results": results,
        "ratio": results["scorer_fp32"]["texts_per_s"] / best_pipe,
        "ratio_int8": results["scorer_int8"]["texts_per_s"] / best_pipe,
        "machine": machine,
    }
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
