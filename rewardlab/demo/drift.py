"""The drift experiment on the built-in demo task: files for `rewardlab drift` / `rewardlab retrain`, and
the demo's simulated annotators standing in for the annotation app (docs/drift.md runs it end to end).

    python -m rewardlab.demo.drift prepare runs/drift-demo --style verbose
    python -m rewardlab.demo.drift label runs/drift-demo/shifted/select.jsonl runs/drift-demo/labelled.jsonl

`prepare` shuffles the demo's training prompts and halves them: the reference is the default policy on
the first half (what the reward model was trained on), "fresh" the default policy again on the second
half (no drift: the null), "shifted" a `--style` policy on the same second half (drift). It also writes
the old training and test splits and a test set in the shifted style, for retraining with replay.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def _samples(prompts: list[str], per: int, style: str, seed: str) -> list[dict]:
    from rewardlab.demo.policy import sample_response

    rows = []
    for p in prompts:
        rng = random.Random(f"rewardlab-drift-demo:{seed}:{p}")
        responses: list[str] = []
        for _ in range(50 * per):
            r = sample_response(p, rng, style)
            if r not in responses:
                responses.append(r)
            if len(responses) == per:
                break
        rows.append({"prompt": p, "responses": responses})
    return rows


def prepare(
    out_dir: str | Path, style: str = "verbose", ref_per: int = 2, cur_per: int = 4, seed: int = 0
) -> dict:
    """Write reference/fresh/shifted samples and old_train/old_test/new_test preference files; returns
    {name: rows written}."""
    from rewardlab.demo import task as demo

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = demo.demo_split_prompts(seed)
    train = list(splits["train"])
    random.Random(f"rewardlab-drift-demo-halves:{seed}").shuffle(train)
    half = len(train) // 2
    counts = {}
    sets = {
        "reference": _samples(train[:half], ref_per, "default", f"{seed}:ref"),
        "fresh": _samples(train[half:], cur_per, "default", f"{seed}:cur"),
        "shifted": _samples(train[half:], cur_per, style, f"{seed}:cur"),
    }
    for name, rows in sets.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        counts[name] = sum(len(r["responses"]) for r in rows)
    old = demo.demo_splits(seed)
    counts["old_train"] = demo.write_demo_jsonl(out / "old_train.jsonl", old["train"])
    counts["old_test"] = demo.write_demo_jsonl(out / "old_test.jsonl", old["test"])
    new_test = demo.make_demo_groups(len(splits["test"]), seed=seed, prompts=splits["test"], style=style)
    counts["new_test"] = demo.write_demo_jsonl(out / "new_test.jsonl", new_test)
    return counts


def label(select_path: str | Path, out_path: str | Path, seed: int = 0) -> int:
    """Rank each selected row's responses with one simulated annotator (Plackett-Luce on the gold
    reward, the demo's tau); write ranking rows {"prompt", "responses", "ranking"}; returns rows."""
    from rewardlab.demo.task import annotate_ranking

    rows = []
    for line in Path(select_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        rng = random.Random(f"rewardlab-drift-demo-label:{seed}:{row['prompt']}")
        rank = annotate_ranking(row["prompt"], row["responses"], rng)
        rows.append({"prompt": row["prompt"], "responses": row["responses"], "ranking": rank})
    Path(out_path).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rewardlab.demo.drift", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="Write the experiment's sample and preference files.")
    p.add_argument("out_dir")
    p.add_argument("--style", default="verbose", help="Demo policy style of the shifted policy.")
    p.add_argument("--seed", type=int, default=0)
    lab = sub.add_parser("label", help="Simulated annotators rank `rewardlab drift --select` output.")
    lab.add_argument("select")
    lab.add_argument("output")
    lab.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        counts = prepare(args.out_dir, args.style, seed=args.seed)
        print(json.dumps(counts))  # noqa: T201 (a script's result)
    else:
        print(label(args.select, args.output, args.seed), "rows labelled")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
