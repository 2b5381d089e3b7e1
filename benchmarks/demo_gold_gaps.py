"""Where a demo reward model disagrees with the gold reward: gold agreement by the size of the gold gap.

The demo's annotators prefer a over b with probability σ((g_a - g_b) / τ) (τ = 2), so a pair whose gold
rewards differ by 0.3 is labelled the gold way 54% of the time: a model learns such pairs' order only
through the weights it fits on wider gaps. This splits a model's gold agreement on the demo test split
by the gap, beside how often the labels themselves follow gold there (docs/recipes.md, the demo section).

    python benchmarks/demo_gold_gaps.py runs/rewardlab [runs/demo-ens5 ...]   # model or ensemble folders
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

BINS = ((0.0, 0.3), (0.3, 0.7), (0.7, 1.2), (1.2, 2.0), (2.0, math.inf))


def gap_table(groups: list, rewards: list[list[float]]) -> list[dict]:
    """One row per gap bin (and "all"): pairs, the model's gold agreement, the labels' expected agreement.

    Every pair of a group's responses counts once (gold ties excluded); a tied model reward counts half.
    """
    from rewardlab.data.gold import preference_probability

    cells: dict[str, list[tuple[float, float]]] = {}
    for group, scores in zip(groups, rewards, strict=True):
        gold, tau = group.meta["gold"], group.meta["tau"]
        for a, b in itertools.combinations(range(len(gold)), 2):
            if gold[a] == gold[b]:
                continue
            hi, lo = (a, b) if gold[a] > gold[b] else (b, a)
            hit = 1.0 if scores[hi] > scores[lo] else 0.5 if scores[hi] == scores[lo] else 0.0
            label = preference_probability(gold[hi], gold[lo], tau)
            gap = gold[hi] - gold[lo]
            name = next(f"{lo_:g}-{hi_:g}" for lo_, hi_ in BINS if lo_ <= gap < hi_)
            cells.setdefault(name, []).append((hit, label))
            cells.setdefault("all", []).append((hit, label))
    order = [f"{lo:g}-{hi:g}" for lo, hi in BINS] + ["all"]
    return [
        {
            "gold_gap": name,
            "pairs": len(cells[name]),
            "gold_agreement": sum(h for h, _ in cells[name]) / len(cells[name]),
            "labels_follow_gold": sum(p for _, p in cells[name]) / len(cells[name]),
        }
        for name in order
        if name in cells
    ]


def main() -> None:
    from rewardlab.demo.task import demo_splits
    from rewardlab.scoring.ensemble import load_scorer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="reward model or ensemble folders")
    ap.add_argument("--seed", type=int, default=0, help="the demo split's seed (the models' --seed)")
    args = ap.parse_args()
    groups = demo_splits(args.seed)["test"]
    prompts = [g.prompt for g in groups for _ in g.responses]
    responses = [r for g in groups for r in g.responses]
    for path in args.models:
        flat = load_scorer(path).score(prompts, responses)
        rewards, start = [], 0
        for g in groups:
            rewards.append(flat[start : start + len(g.responses)])
            start += len(g.responses)
        print(f"## {path}")  # noqa: T201
        print("| gold gap | pairs | model's gold agreement | labels that follow gold |")  # noqa: T201
        print("|---|---|---|---|")  # noqa: T201
        rows = gap_table(groups, rewards)
        for row in rows:
            print(  # noqa: T201
                f"| {row['gold_gap']} | {row['pairs']} | {100 * row['gold_agreement']:.1f}% "
                f"| {100 * row['labels_follow_gold']:.1f}% |"
            )
        print(json.dumps({"model": str(path), "rows": rows}))  # noqa: T201


if __name__ == "__main__":
    main()
