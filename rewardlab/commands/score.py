"""`rewardlab eval` and `rewardlab score`: a saved reward model over preference data or over rows.

rewardlab eval runs/rewardlab test.jsonl
rewardlab score runs/rewardlab rows.jsonl -o scored.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from rewardlab.commands.common import add_device_flags, quiet_libraries

VERBS = {
    "eval": "Pairwise accuracy of a saved reward model on preference data.",
    "score": "Score prompt/response rows (or chat messages) to JSONL.",
}
EXTRA = None


def add_parser(sub: Any) -> None:
    from rewardlab.config import add_dataclass_flags
    from rewardlab.data.thinking import ThinkingFlags

    p = sub.add_parser("eval", help=VERBS["eval"])
    p.add_argument("model", help="Folder written by `rewardlab train`.")
    p.add_argument("data", help="Preference data in any supported format (docs/formats.md).")
    p.add_argument("--format", default=None, help="Data format override (default: detect).")
    p.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples for the 95%% interval.")
    p.add_argument("--json", action="store_true", help="Print the result as JSON.")
    add_device_flags(p, quantize=True)
    add_dataclass_flags(p, ThinkingFlags)
    p.set_defaults(func=run_eval)

    p = sub.add_parser("score", help=VERBS["score"])
    p.add_argument("model", help="Folder written by `rewardlab train`.")
    p.add_argument("input", help="JSONL with prompt+response, text, or messages per row.")
    p.add_argument("-o", "--output", default=None, help="Output JSONL (default: stdout).")
    p.add_argument(
        "--chunk-rows", type=int, default=4096, help="Rows read, scored and written at a time (memory bound)."
    )
    add_device_flags(p, quantize=True)
    add_dataclass_flags(p, ThinkingFlags)
    p.set_defaults(func=run_score)


def run_eval(args: argparse.Namespace) -> int:
    from rewardlab.config import config_from_args
    from rewardlab.data import load_preferences
    from rewardlab.data.thinking import ThinkingFlags, use_thinking
    from rewardlab.progress import RichReporter
    from rewardlab.scoring.evaluate import check_bootstrap, evaluate
    from rewardlab.scoring.scorer import Scorer

    check_bootstrap(args.bootstrap)  # before the model loads
    quiet_libraries()
    reporter = RichReporter()
    groups, summary = load_preferences(args.data, args.format)
    for line in summary.lines():
        reporter.message(line)
    scorer = Scorer.from_pretrained(args.model, device=args.device, bf16=args.bf16, quantize=args.quantize)
    stripper = use_thinking(scorer, config_from_args(ThinkingFlags, args))
    reporter.start("scoring", sum(len(g.responses) for g in groups))
    if scorer.attributes:  # a regression / multi-attribute model: judged against the ratings too
        from rewardlab.scoring.attributes import evaluate_attribute_groups, rank_by_combination, targets_of

        card = scorer.card
        for g in groups:
            rank_by_combination(g, targets_of(g, card.attributes), card.attribute_weights)
        result = evaluate_attribute_groups(scorer, groups, n_boot=args.bootstrap)
    else:
        result = evaluate(scorer, groups, reporter.advance, n_boot=args.bootstrap)
    reporter.finish()
    if stripper is not None:
        reporter.message(stripper.line())
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))  # noqa: T201
        return 0
    reporter.message(result.line())
    reporter.message(
        f"mean margin {result.mean_margin:.3f}; rewards mean {result.reward_mean:.3f} "
        f"std {result.reward_std:.3f}"
    )
    for name, s in result.per_subset.items():
        reporter.message(f"  {name}: {100 * s['accuracy']:.1f}% on {int(s['pairs'])} pairs")
    for name, m in getattr(result, "attributes", {}).items():
        reporter.message(f"  {name}: Pearson {m['pearson']}, Spearman {m['spearman']}, MSE {m['mse']:.4g}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from rewardlab.config import config_from_args
    from rewardlab.data.thinking import ThinkingFlags, use_thinking
    from rewardlab.progress import Reporter, RichReporter
    from rewardlab.scoring import score_file as sf
    from rewardlab.scoring.scorer import Scorer

    quiet_libraries()
    procs = sf.init_processes(args.device)  # several under torchrun / accelerate launch: each scores a share
    if args.output:
        sf.check_output(args.output)  # a folder or a missing parent is refused before the model loads
    total = sf.check_score_file(args.input, procs)
    scorer = Scorer.from_pretrained(args.model, device=procs.device, bf16=args.bf16, quantize=args.quantize)
    stripper = use_thinking(scorer, config_from_args(ThinkingFlags, args))
    reporter = RichReporter() if procs.is_main else Reporter()
    reporter.start("scoring", total)
    with sf.open_output(args.output, sys.stdout) if procs.is_main else contextlib.nullcontext() as out:
        result = sf.score_file(scorer, args.input, out, procs, args.chunk_rows, reporter)
    reporter.finish()
    sf.close_processes(procs)
    if procs.is_main:
        reporter.message(
            f"scored {result.rows} rows on {result.processes} process(es), {result.rows_per_s:.1f} rows/s"
            + (f" → {args.output}" if args.output else "")
        )
        if stripper is not None:
            reporter.message(stripper.line())
    return 0
