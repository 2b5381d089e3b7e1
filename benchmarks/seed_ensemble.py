"""The seed ensemble as an upper reference: k models of one recipe (different seeds), each alone and
their mean reward, on one test file, scored by one path (`Scorer.score` through `evaluate`).

    .venv/bin/python benchmarks/seed_ensemble.py --test ../shared/data/hh-rlhf-harmless/test.jsonl \\
        runs/hh-seed0 runs/hh-seed1 runs/hh-seed2 runs/hh-seed3 runs/hh-seed4

Issue 17 asks what one model gives up against k: this prints every member's accuracy, their mean ± sd,
the ensemble's (rule `mean` of members standardised by their own cards, as `rewardlab ensemble` does),
and the paired difference ensemble − mean member over test prompts with a bootstrap interval. No
training here: the members are folders an earlier run saved (e.g. `train_vs_trl.py --seeds 5`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def per_group_correct(groups, rewards) -> list[float]:
    """Share of each group's pairs ordered as labelled (ties half): the unit the bootstrap resamples."""
    from rewardlab.scoring.evaluate import pair_correct

    return [
        sum(pair_correct(r[w], r[lo]) for w, lo in g.pairs) / len(g.pairs)
        for g, r in zip(groups, rewards, strict=True)
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="member folders (rewardlab train outputs)")
    p.add_argument("--test", required=True, help="test file (any format rewardlab reads)")
    p.add_argument("--out", default=None, help="also write the numbers as JSON here")
    a = p.parse_args()

    from rewardlab.data import load_preferences
    from rewardlab.scoring.ensemble import EnsembleCard, EnsembleScorer
    from rewardlab.scoring.evaluate import score_groups
    from rewardlab.scoring.scorer import Scorer

    groups, _ = load_preferences(a.test)
    scorers = [Scorer.from_pretrained(m) for m in a.models]
    members = [score_groups(s, groups) for s in scorers]
    ensemble = EnsembleScorer(scorers, EnsembleCard(members=list(a.models), rule="mean"))
    combined = score_groups(ensemble, groups)

    member_hits = [per_group_correct(groups, r) for r in members]
    ens_hits = per_group_correct(groups, combined)
    n_pairs = sum(len(g.pairs) for g in groups)

    def acc(hits: list[float]) -> float:
        return 100 * sum(h * len(g.pairs) for h, g in zip(hits, groups, strict=True)) / n_pairs

    accs = [acc(h) for h in member_hits]
    mean_member = [statistics.mean(col) for col in zip(*member_hits, strict=True)]
    diffs = [e - m for e, m in zip(ens_hits, mean_member, strict=True)]
    rng = random.Random(0)
    boots = sorted(
        100 * statistics.mean(rng.choices(diffs, k=len(diffs))) for _ in range(2000)
    )  # groups resampled; every HH group is one pair, so this is per pair there
    result = {
        "test": a.test,
        "pairs": n_pairs,
        "members": dict(zip(a.models, accs, strict=True)),
        "member_mean": statistics.mean(accs),
        "member_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "ensemble": acc(ens_hits),
        "ensemble_minus_mean_member": 100 * statistics.mean(diffs),
        "ci95": [boots[49], boots[1949]],
    }
    for m, x in result["members"].items():
        print(f"member {m}: {x:.2f}%")
    print(
        f"members {result['member_mean']:.2f} ± {result['member_sd']:.2f}; ensemble of {len(accs)} (mean): "
        f"{result['ensemble']:.2f}%; ensemble − mean member {result['ensemble_minus_mean_member']:+.2f} "
        f"[{result['ci95'][0]:+.2f}, {result['ci95'][1]:+.2f}]"
    )
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
