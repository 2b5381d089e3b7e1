"""Regression heads vs Bradley-Terry on the same ratings: the demo task rated by noisy simulated annotators.

    python benchmarks/regression_vs_bt.py data --out runs/rvb                  # write the ratings files
    flock /tmp/rewardlab-heavy.lock python benchmarks/regression_vs_bt.py run --out runs/rvb --how bt
    flock /tmp/rewardlab-heavy.lock python benchmarks/regression_vs_bt.py run --out runs/rvb --how mse
    python benchmarks/regression_vs_bt.py summary --out runs/rvb    # mean ± sd per setting (Markdown)

Data (rewardlab.demo.ratings): the demo's train / eval / test prompts and K = 4 policy responses each,
every response rated gold + N(0, 2.26²) (`RATING_NOISE`, matched to the ranking annotators: noisy ratings
order 75% of train pairs as gold does). ``attributes`` files rate four parts of the gold reward
(helpfulness, politeness, correctness, verbosity; noise sd 1.13 each) whose weight-1 sum is gold. The test
split is rated with no noise, so its pairwise accuracy IS agreement with the gold ordering.

Settings, one training run each (`--how`), all on the same rows and seeds:

- ``bt``:     --objective pairs on the ratings file: Bradley-Terry on the pairs the scores imply, no margins
- ``mse``:    --objective regression: a one-attribute head, MSE on the score
- ``mse_bt``: --objective regression --bt-weight 1: MSE plus scaled BT (pairs weighted by the rating gap)
- ``attrs``:  --objective regression on the per-attribute file, 4 attributes, weights 1,1,1,1

Each run: MiniLM (packaged ``minilm``), max length 128, batch 4 prompts, lr 1e-4, 1 epoch, fp32, model
selection on the eval split; the selected model is scored on the test split. Figures per run (one JSON
line appended to OUT/results.jsonl): test pairwise accuracy (= gold agreement), Pearson and Spearman of
the reward with the gold reward over test responses, and for regression runs the per-attribute Pearson.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HOWS = ("bt", "mse", "mse_bt", "attrs")
ATTRS = ("helpfulness", "politeness", "correctness", "verbosity")


def write_data(out: Path) -> None:
    from rewardlab.demo.ratings import demo_ratings_rows, write_demo_ratings

    for kind, attributes in (("score", False), ("attributes", True)):
        for split in ("train", "eval"):
            n = write_demo_ratings(
                out / f"{kind}-{split}.jsonl", demo_ratings_rows(split, attributes=attributes)
            )
            print(f"{out}/{kind}-{split}.jsonl: {n} prompts")  # noqa: T201
        rows = demo_ratings_rows("test", noise=0.0, attributes=attributes)
        write_demo_ratings(out / f"{kind}-test.jsonl", rows)


def run_one(out: Path, how: str, seed: int, max_length: int, epochs: float, backbone: str = "minilm") -> dict:
    from rewardlab.config import TrainConfig
    from rewardlab.data import load_preferences
    from rewardlab.scoring.attributes import evaluate_attributes, rank_by_combination, targets_of
    from rewardlab.scoring.evaluate import evaluate_rewards, score_groups
    from rewardlab.scoring.metrics import pearson, spearman
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.training.run import train

    kind = "attributes" if how == "attrs" else "score"
    common = dict(
        data=str(out / f"{kind}-train.jsonl"),
        eval_data=str(out / f"{kind}-eval.jsonl"),
        output_dir=str(out / f"model-{how}-{seed}"),
        overwrite=True,
        backbone=backbone,
        max_length=max_length,
        batch_size=4,
        lr=1e-4,
        epochs=epochs,
        seed=seed,
        mixed_precision="no",
    )
    if how == "bt":
        cfg = TrainConfig(**common, use_margins=False)
    elif how == "attrs":
        cfg = TrainConfig(
            **common, objective="regression", attributes=list(ATTRS), attribute_weights=[1.0] * 4
        )
    else:
        cfg = TrainConfig(**common, objective="regression", bt_weight=1.0 if how == "mse_bt" else 0.0)
    t0 = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - t0
    # the test split, scored once by the selected model as `rewardlab eval` scores it (prompt cut per group)
    groups, _ = load_preferences(str(out / f"{kind}-test.jsonl"), "ratings")
    scorer = Scorer.from_pretrained(cfg.output_dir, device="cpu")
    test: Any
    if scorer.attributes:
        names, weights = scorer.card.attributes, scorer.card.attribute_weights
        for g in groups:
            rank_by_combination(g, targets_of(g, names), weights)
        enc = scorer.encoder.encode_groups([(g.prompt, g.responses) for g in groups])
        flat, values = scorer.score_encoded_attributes([e for es in enc for e in es])
        sizes = [len(es) for es in enc]
        test = evaluate_attributes(groups, _split(flat, sizes), _split(values, sizes), names, weights)
        rewards = flat
    else:
        per_group = score_groups(scorer, groups)
        test = evaluate_rewards(groups, per_group)
        rewards = [r for rs in per_group for r in rs]
    gold = [x for g in groups for x in g.meta["gold"]]
    record = {
        "how": how,
        "seed": seed,
        "test_accuracy": test.accuracy,
        "test_pairs": test.pairs,
        "gold_pearson": pearson(rewards, gold),
        "gold_spearman": spearman(rewards, gold),
        "wall_s": round(wall, 1),
        "steps": result.steps,
        "max_length": max_length,
        "epochs": epochs,
        "backbone": backbone,
    }
    if hasattr(test, "attributes"):
        record["attribute_pearson"] = {k: v["pearson"] for k, v in test.attributes.items()}
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def _split(flat: list, sizes: list[int]) -> list[list]:
    out, i = [], 0
    for n in sizes:
        out.append(flat[i : i + n])
        i += n
    return out


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def summary(out: Path) -> str:
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    lines = [
        "| setting | seeds | test pairwise accuracy (= gold agreement) | Pearson r, gold | Spearman ρ, gold"
        " |",
        "|---|---|---|---|---|",
    ]
    for how in HOWS:
        mine = [r for r in rows if r["how"] == how]
        if not mine:
            continue
        seeds = ",".join(str(r["seed"]) for r in mine)
        lines.append(
            f"| {how} | {seeds} | {_mean_sd([r['test_accuracy'] for r in mine])} | "
            f"{_mean_sd([r['gold_pearson'] for r in mine])} | "
            f"{_mean_sd([r['gold_spearman'] for r in mine])} |"
        )
    attrs = [r for r in rows if r["how"] == "attrs"]
    if attrs:
        lines += ["", "| attribute | Pearson r with its noise-free rating (test) |", "|---|---|"]
        for name in ATTRS:
            lines.append(f"| {name} | {_mean_sd([r['attribute_pearson'][name] for r in attrs])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=["data", "run", "summary"])
    p.add_argument("--out", default="runs/regression_vs_bt")
    p.add_argument("--how", choices=HOWS, default="bt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--backbone", default="minilm", help="Smoke runs: a tiny folder (the figures use minilm).")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.step == "data":
        write_data(out)
    elif args.step == "run":
        print(json.dumps(run_one(out, args.how, args.seed, args.max_length, args.epochs, args.backbone)))  # noqa: T201
    else:
        print(summary(out))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
