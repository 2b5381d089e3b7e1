"""Inputs for the SmolLM2 overoptimization experiment (docs/overoptimization.md): arithmetic prompts with
verifiable answers, and noisy preference pairs built from the policy's own samples.

    python examples/arithmetic_overopt.py prompts runs/arith                 # train.jsonl, test.jsonl
    python examples/arithmetic_overopt.py pairs runs/arith/train-samples.jsonl runs/arith/pairs.jsonl

Prompts are GSM8K-shaped rows ({"question", "answer": "#### N"}) so `rewardlab bon --gold gsm8k` checks
the final number of every sample. Pairs come from `rewardlab bon` output on the train prompts: for each
prompt, a correct sample against an incorrect one (gold 1 vs 0), with a fraction of the labels flipped
(annotator noise), so the proxy reward model learns from the limited, noisy labels a real one would get.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def arithmetic_question(rng: random.Random) -> tuple[str, int]:
    """One question and its answer, small enough that a 135M chat model gets some of them right."""
    kind = rng.choice(["add", "sub", "mul"])
    a, b = rng.randint(2, 20), rng.randint(2, 9)
    if kind == "add":
        return f"What is {a} + {b}?", a + b
    if kind == "sub":
        return f"What is {a + b} - {b}?", a
    return f"What is {a % 10 or 2} times {b}?", (a % 10 or 2) * b


def write_prompts(out: Path, n_train: int, n_test: int, seed: int) -> None:
    rng = random.Random(seed)
    seen: set[str] = set()
    rows = []
    while len(rows) < n_train + n_test:
        question, answer = arithmetic_question(rng)
        if question in seen:
            continue
        seen.add(question)
        question += " Give the final answer as a number."
        rows.append({"question": question, "answer": f"#### {answer}"})
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", rows[:n_train]), ("test", rows[n_train:])):
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in part)


def noisy_pairs(samples: Path, out: Path, per_prompt: int, noise: float, seed: int) -> dict[str, int]:
    """Correct-vs-incorrect pairs from `rewardlab bon` rows (with gold), a `noise` fraction flipped."""
    rng = random.Random(seed)
    counts = {"prompts": 0, "prompts_with_pairs": 0, "pairs": 0, "flipped": 0}
    with open(samples, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
        for line in f:
            row = json.loads(line)
            counts["prompts"] += 1
            if row.get("gold") is None:
                raise SystemExit(f"{samples}: rows need 'gold' (run rewardlab bon with --gold gsm8k)")
            good = sorted({r for r, g in zip(row["responses"], row["gold"], strict=True) if g >= 1})
            bad = sorted({r for r, g in zip(row["responses"], row["gold"], strict=True) if g < 1})
            combos = [(c, r) for c in good for r in bad]
            rng.shuffle(combos)
            if combos:
                counts["prompts_with_pairs"] += 1
            for chosen, rejected in combos[:per_prompt]:
                if rng.random() < noise:
                    chosen, rejected = rejected, chosen
                    counts["flipped"] += 1
                w.write(json.dumps({"prompt": row["prompt"], "chosen": chosen, "rejected": rejected}) + "\n")
                counts["pairs"] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prompts", help="Write train.jsonl and test.jsonl arithmetic prompts.")
    p.add_argument("out", type=Path)
    p.add_argument("--train", type=int, default=160)
    p.add_argument("--test", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    q = sub.add_parser("pairs", help="Noisy correct-vs-incorrect pairs from rewardlab bon output.")
    q.add_argument("samples", type=Path)
    q.add_argument("out", type=Path)
    q.add_argument("--per-prompt", type=int, default=4)
    q.add_argument("--noise", type=float, default=0.2)
    q.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.cmd == "prompts":
        write_prompts(args.out, args.train, args.test, args.seed)
    else:
        print(json.dumps(noisy_pairs(args.samples, args.out, args.per_prompt, args.noise, args.seed)))  # noqa: T201


if __name__ == "__main__":
    main()
