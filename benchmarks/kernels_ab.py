"""In-process A/B of the kernels a MiniLM training step and a scoring pass choose between.

    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/kernels_ab.py            # bf16 and fp32
    flock /tmp/rewardlab-heavy.lock .venv/bin/python benchmarks/kernels_ab.py --precision bf16 --reps 4

Whole-run timings on a shared 2-core machine moved by ±20% between identical runs, which hides a 10%
effect; so this times the alternatives inside one process, alternating their order every repetition,
on the same batches (8 length-grouped batches of 8 HH pairs, widths 32-256 tokens), and reports medians
and ratios:
- attention: sdpa vs eager, forward + backward of the training loss, and forward only (scoring);
- AdamW: foreach (torch's default) vs fused, 8 optimizer steps over MiniLM's parameters.
These ratios pick `scoring.attention_for` and the fused optimizer in the training loop. The last line is
JSON; say which CPU (avx512_bf16 or AVX2) a figure came from.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HH_TRAIN = Path(__file__).resolve().parents[1].parent / "shared/data/hh-rlhf-harmless/train.jsonl"
INPUTS = ("input_ids", "attention_mask", "token_type_ids", "response_mask")


def hh_batches(encoder, n_batches: int = 8, pairs: int = 8) -> list[dict]:
    """Length-grouped training batches from the HH pairs (the demo task when they are absent)."""
    from rewardlab.data.batching import collate_groups, encode_groups

    if HH_TRAIN.exists():
        from rewardlab.data.loading import load_preferences

        groups, _ = load_preferences(str(HH_TRAIN))
    else:
        from rewardlab.demo.task import demo_splits

        groups = demo_splits()["train"]
    encoded = sorted(
        encode_groups(groups[:400], encoder)[0], key=lambda g: max(len(r.input_ids) for r in g.responses)
    )
    step = len(encoded) // n_batches
    pad = encoder.tokenizer.pad_token_id
    return [collate_groups(encoded[i : i + pairs], pad) for i in range(0, step * n_batches, step)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", choices=["bf16", "fp32", "both"], default="both")
    ap.add_argument("--reps", type=int, default=5, help="Repetitions (the first is a warm-up).")
    args = ap.parse_args()

    import torch
    import transformers

    from rewardlab.model.build import build_reward_model
    from rewardlab.scoring.scorer import bf16_supported

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    model, encoder, _ = build_reward_model("minilm", max_length=256)
    batches = hh_batches(encoder)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizers = {
        "foreach": torch.optim.AdamW(params, lr=1e-7, foreach=True),
        "fused": torch.optim.AdamW(params, lr=1e-7, fused=True),
    }

    def train_pass(bf16: bool) -> None:
        model.train()
        for b in batches:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                r = model(**{k: b[k] for k in INPUTS if k in b})
            p = b["pairs"]
            (-torch.nn.functional.logsigmoid(r[p[:, 0]] - r[p[:, 1]]).mean()).backward()

    def score_pass(bf16: bool) -> None:
        model.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for b in batches:
                model(**{k: b[k] for k in INPUTS if k in b})

    report: dict = {
        "benchmark": "kernels_ab",
        "bf16_native": bf16_supported(torch.device("cpu")),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "batch_widths": [b["input_ids"].shape[1] for b in batches],
    }
    for precision in ("bf16", "fp32") if args.precision == "both" else (args.precision,):
        bf16 = precision == "bf16"
        times: dict[str, list[float]] = {}
        for rep in range(args.reps):
            order = ("sdpa", "eager") if rep % 2 == 0 else ("eager", "sdpa")
            for attn in order:
                model.hf_model.set_attn_implementation(attn)
                for phase, run in (("train", train_pass), ("score", score_pass)):
                    start = time.perf_counter()
                    run(bf16)
                    times.setdefault(f"{phase}_{attn}", []).append(time.perf_counter() - start)
            for name in ("foreach", "fused") if rep % 2 == 0 else ("fused", "foreach"):
                start = time.perf_counter()
                for _ in range(8):
                    optimizers[name].step()
                times.setdefault(f"adamw_{name}", []).append(time.perf_counter() - start)
            model.zero_grad(set_to_none=True)
        med = {k: round(statistics.median(v[1:] or v), 4) for k, v in times.items()}
        report[precision] = {
            "median_s": med,
            "train_eager_over_sdpa": round(med["train_eager"] / med["train_sdpa"], 3),
            "score_eager_over_sdpa": round(med["score_eager"] / med["score_sdpa"], 3),
            "adamw_fused_over_foreach": round(med["adamw_fused"] / med["adamw_foreach"], 3),
        }
        r = report[precision]
        print(
            f"{precision}: attention eager/sdpa train {r['train_eager_over_sdpa']}, score "
            f"{r['score_eager_over_sdpa']}; AdamW fused/foreach {r['adamw_fused_over_foreach']}"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
