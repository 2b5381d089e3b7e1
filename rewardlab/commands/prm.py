"""`rewardlab prm ...`: build step data from GSM8K, train a PRM or ORM, score steps, best-of-N selection.

    rewardlab prm build-gsm8k ../shared/data/gsm8k/train.jsonl -o runs/prm/train.jsonl --problems 400
    rewardlab prm train --data runs/prm/train.jsonl --output-dir runs/prm/prm            # a PRM
    rewardlab prm train --objective outcome --data runs/prm/train.jsonl --output-dir runs/prm/orm
    rewardlab prm score runs/prm/prm runs/prm/test.jsonl -o runs/prm/scored.jsonl         # JSON metrics
    rewardlab prm bon runs/prm/pools.jsonl --prm runs/prm/prm --orm runs/prm/orm --n 2,4,8,16

docs/prm.md has the formats and the full GSM8K experiment. Every verb prints JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardlab.commands.common import add_device_flags, quiet_libraries

VERBS = {"prm": "Process reward models: build step data, train, score steps, best-of-N."}
EXTRA = None


def _out(obj: Any) -> None:
    print(json.dumps(obj, indent=2))  # noqa: T201


def cmd_build(args: argparse.Namespace) -> int:
    from rewardlab.data.gsm8k import (
        build_candidate_pools,
        build_step_data,
        read_gsm8k,
        to_stepwise_row,
        write_jsonl,
    )

    problems = read_gsm8k(args.input, limit=args.skip + args.problems if args.problems else 0)[args.skip :]
    if args.pools:
        rows = build_candidate_pools(
            problems, args.pools, args.seed, args.alpha, args.beta, p_propagate=args.p_propagate
        )
        write_jsonl(rows, args.output)
        correct = [c["correct"] for r in rows for c in r["candidates"]]
        _out(
            {
                "output": args.output,
                "pools": len(rows),
                "candidates": len(correct),
                "correct_share": sum(correct) / max(1, len(correct)),
            }
        )
        return 0
    examples = build_step_data(problems, args.corruptions, args.seed, p_propagate=args.p_propagate)
    write_jsonl([to_stepwise_row(e) for e in examples], args.output)
    kinds: dict[str, int] = {}
    for e in examples:
        key = e.meta["kind"] + ("" if e.meta.get("propagated", True) else " (not propagated)")
        kinds[key] = kinds.get(key, 0) + 1
    _out(
        {
            "output": args.output,
            "problems": len(problems),
            "solutions": len(examples),
            "kinds": kinds,
            "outcome_correct": sum(e.outcome == 1.0 for e in examples),
        }
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from rewardlab.data.gsm8k import write_jsonl
    from rewardlab.data.step_encoding import join_plain
    from rewardlab.data.steps import load_steps
    from rewardlab.prm.evaluate import aggregate, evaluate_step_scores
    from rewardlab.progress import RichReporter
    from rewardlab.scoring.metrics import sigmoid
    from rewardlab.scoring.scorer import Scorer

    quiet_libraries()
    examples, summary = load_steps(args.data, args.format, args.prm800k_neutral)
    reporter = RichReporter()
    for line in summary.lines():
        reporter.message(line)
    scorer = Scorer.from_pretrained(args.model, device=args.device, bf16=args.bf16, quantize=args.quantize)
    is_prm = bool(scorer.card and scorer.card.step_marker)
    prompts, steps = [e.prompt for e in examples], [e.steps for e in examples]
    per_step = None
    if is_prm or args.steps:
        reporter.start("scoring steps" if is_prm else "scoring prefixes", None)
        per_step = scorer.score_steps(prompts, steps, reporter.advance)
        reporter.finish()
    if is_prm:
        assert per_step is not None
        solution = [aggregate(ps, args.aggregation) for ps in per_step]
    else:
        solution = [sigmoid(r) for r in scorer.score(prompts, [join_plain(s) for s in steps])]
    if args.output:
        rows = []
        for i, e in enumerate(examples):
            row = {"prompt": e.prompt, "completions": e.steps, "labels": e.labels, "score": solution[i]}
            if per_step is not None:
                row["step_scores"] = per_step[i]
            rows.append(row)
        write_jsonl(rows, args.output)
    result = evaluate_step_scores(examples, per_step, solution, args.aggregation if is_prm else "reward")
    reporter.message(result.line())
    _out({"model": args.model, "data": args.data, "prm": is_prm, **result.to_dict()})
    return 0


def cmd_bon(args: argparse.Namespace) -> int:
    from rewardlab.prm.best_of_n import (
        markdown_table,
        plot_bon,
        read_pools,
        score_pools,
        selection_accuracy,
        selections,
        within_problem_auroc,
    )
    from rewardlab.progress import RichReporter
    from rewardlab.scoring.scorer import Scorer

    quiet_libraries()
    if not args.prm and not args.orm:
        raise ValueError("rewardlab prm bon: give --prm and/or --orm (model folders)")
    pools = read_pools(args.pools)
    reporter = RichReporter()
    total = sum(len(p.candidates) for p in pools)
    for flag, folder in (("prm", args.prm), ("orm", args.orm)):
        if folder:
            scorer = Scorer.from_pretrained(
                folder, device=args.device, bf16=args.bf16, quantize=args.quantize
            )
            reporter.start(f"scoring with the {flag.upper()}", total)
            score_pools(pools, **{flag: scorer}, on_progress=reporter.advance)
            reporter.finish()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            for row in selections(pools):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    result: dict[str, Any] = {"pools": len(pools), "candidates": total}
    if all(p.gold is not None for p in pools) and args.n:
        ns = [int(x) for x in args.n.split(",")]
        points = selection_accuracy(pools, ns, args.draws, args.seed)
        result["selection_accuracy"] = [p.__dict__ for p in points]
        result["within_problem_auroc"] = {k: within_problem_auroc(pools, k) for k in pools[0].scores}
        reporter.message(markdown_table(points))
        if args.plot:
            plot_bon(points, args.plot)
            result["plot"] = args.plot
    _out(result)
    return 0


def add_parser(sub: Any) -> None:
    from rewardlab.commands import train

    prm = sub.add_parser("prm", help=VERBS["prm"])
    verbs = prm.add_subparsers(dest="prm_command", required=True)

    p = verbs.add_parser(
        "build-gsm8k", help="Step-labelled solutions (or best-of-N pools) from GSM8K by error injection."
    )
    p.add_argument("input", help="GSM8K JSONL (question, answer), e.g. ../shared/data/gsm8k/train.jsonl.")
    p.add_argument(
        "-o", "--output", required=True, help="Output JSONL (stepwise rows, or pools with --pools)."
    )
    p.add_argument("--problems", type=int, default=0, help="Use this many problems (0: all).")
    p.add_argument("--skip", type=int, default=0, help="Skip the first this many problems.")
    p.add_argument(
        "--corruptions", type=int, default=2, help="Corrupted copies per problem (plus the reference)."
    )
    p.add_argument("--pools", type=int, default=0, help="Write best-of-N pools of this size instead.")
    p.add_argument(
        "--alpha", type=float, default=2.0, help="Pools: per-problem P(correct) ~ Beta(alpha, beta)."
    )
    p.add_argument("--beta", type=float, default=2.0, help="Pools: see --alpha.")
    p.add_argument(
        "--p-propagate", type=float, default=0.75, help="Share of errors carried into later steps."
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of the error injection.")
    p.set_defaults(func=cmd_build)

    p = verbs.add_parser(
        "train", help="Train a PRM (--objective steps, default) or an ORM (--objective outcome)."
    )
    train.add_train_flags(p)
    p.set_defaults(func=train.run, objective="steps", output_dir="runs/prm")

    p = verbs.add_parser("score", help="Score every step of step-labelled solutions; JSON metrics on stdout.")
    p.add_argument(
        "model", help="Folder written by `rewardlab prm train` (a PRM, or an ORM: prefixes scored)."
    )
    p.add_argument(
        "data", help="Step data: stepwise, prm800k, math_shepherd or gsm8k_solutions rows (labels optional)."
    )
    p.add_argument("-o", "--output", default=None, help="Write rows with step_scores and score here (JSONL).")
    p.add_argument("--format", default=None, help="Step format override (default: detect).")
    p.add_argument("--prm800k-neutral", default="positive", help="positive, negative or drop.")
    p.add_argument("--aggregation", default="product", help="PRM solution score: product, min, last or mean.")
    p.add_argument(
        "--steps",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ORM: also score every prefix to get step scores (one pass per step).",
    )
    add_device_flags(p, quantize=True)
    p.set_defaults(func=cmd_score)

    p = verbs.add_parser("bon", help="Best-of-N selection with ORM, PRM (each aggregation), majority vote.")
    p.add_argument(
        "pools", help="JSONL: prompt, candidates (step lists), gold (optional); or gsm8k_solutions rows."
    )
    p.add_argument("--prm", default=None, help="PRM folder.")
    p.add_argument("--orm", default=None, help="ORM folder.")
    p.add_argument("--n", default="2,4,8,16", help="Subset sizes N for selection accuracy (needs gold).")
    p.add_argument("--draws", type=int, default=64, help="Random size-N subsets per pool.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the subset draws and the bootstrap.")
    p.add_argument("-o", "--output", default=None, help="Per-pool picks of every method (JSONL).")
    p.add_argument("--plot", default=None, help="Write a PNG of accuracy against N (needs the [plot] extra).")
    add_device_flags(p, quantize=True)
    p.set_defaults(func=cmd_bon)
