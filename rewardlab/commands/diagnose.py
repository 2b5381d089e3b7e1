"""`rewardlab diagnose`: the reward-model diagnosis report from the command line (a thin layer).

    rewardlab diagnose runs/hh-minilm ../shared/data/hh-rlhf-harmless/test.jsonl
    rewardlab diagnose runs/demo demo                       # the demo task's test split, gold reward known
    rewardlab diagnose runs/a test.jsonl --compare runs/b -o runs/a-vs-b

Writes report.md, report.html and report.json (default: MODEL/diagnosis). The work is in
rewardlab.diagnose.diagnosis (computation) and rewardlab.diagnose.report (rendering);
docs/diagnostics.md explains it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rewardlab.commands.common import add_device_flags, quiet_libraries

VERBS = {
    "diagnose": "Diagnosis report of a reward model: accuracy, noise ceiling, calibration, length bias, "
    "hacking probes (docs/diagnostics.md).",
}
EXTRA = None

DEMO = "demo"


def _load(spec: str, fmt: str | None, limit: int) -> tuple[list, list[str], Any]:
    """Groups, summary lines and the gold reward (demo only) for DATA."""
    if spec == DEMO or spec.startswith(DEMO + ":"):
        from rewardlab.demo import task as demo
        from rewardlab.demo.gold import gold_reward

        split = spec.partition(":")[2] or "test"
        prompts = demo.demo_split_prompts()
        if split not in demo.SPLIT_KEYS:
            raise ValueError(
                f"DATA '{spec}': the demo task has splits {', '.join(demo.SPLIT_KEYS)} (e.g. demo:test)"
            )
        groups = demo.make_demo_groups(len(prompts[split]), prompts=prompts[split])  # = demo_splits()[split]
        lines = [f"built-in demo task, '{split}' split (docs/demo.md): {len(groups)} prompts, K = 4"]
        gold: Any = gold_reward
    else:
        from rewardlab.data import load_preferences

        groups, summary = load_preferences(spec, fmt)
        lines, gold = summary.lines(), None
    if limit:
        lines.append(f"first {limit} of {len(groups)} prompts (--limit)")
        groups = groups[:limit]
    return groups, lines, gold


def cmd_diagnose(args: argparse.Namespace) -> int:
    from rewardlab.diagnose.compare import compare
    from rewardlab.diagnose.diagnosis import diagnose
    from rewardlab.diagnose.report import write_report
    from rewardlab.progress import RichReporter
    from rewardlab.scoring.ensemble import load_scorer

    quiet_libraries()
    reporter = RichReporter()
    groups, lines, gold = _load(args.data, args.format, args.limit)
    for line in lines:
        reporter.message(line)
    probes = [p.strip() for p in args.probes.split(",") if p.strip()] if args.probes else None
    results = []
    for model in [args.model] + ([args.compare] if args.compare else []):
        reporter.message(f"[bold]diagnosing[/bold] {model}")
        scorer = load_scorer(model, device=args.device, bf16=args.bf16)  # a judge config too (docs/judge.md)
        results.append(
            diagnose(
                scorer,
                groups,
                reporter,
                model=model,
                data=args.data,
                data_lines=lines,
                probes=probes,
                probe_prompts=args.probe_prompts,
                n_boot=args.bootstrap,
                seed=args.seed,
                gold=gold,
                position_pairs=args.position_pairs,
            )
        )
        del scorer
    if args.compare:
        result: Any = compare(results[0], results[1], groups)
        default = _folder(args.model) / f"compare-{Path(args.compare).name}"
    else:
        result = results[0]
        default = _folder(args.model) / "diagnosis"
    reporter.start("writing the report", None)
    files = write_report(result, args.output or default)
    reporter.finish()
    for d in results:
        reporter.message(f"{d.model}: {d.accuracy.overall.line()}")
        for p in d.probes:
            if p.flagged:
                reporter.message(
                    f"  [red]flag[/red]: probe '{p.name}' raises the reward for "
                    f"{100 * p.frac_rises:.0f}% of responses"
                )
    reporter.message(f"report: {files.html}  (also {files.markdown.name}, {files.json.name})")
    return 0


def _folder(model: str) -> Path:
    """Where MODEL's reports go by default: the folder itself, or the folder of a judge.json file."""
    p = Path(model)
    return p.parent if p.is_file() else p


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diagnose",
        help=VERBS["diagnose"],
    )
    p.add_argument(
        "model", help="Folder written by `rewardlab train`, or a judge config (judge.json or its folder)."
    )
    p.add_argument(
        "data",
        help="Held-out preference data (docs/formats.md), or 'demo' / 'demo:eval' for the "
        "built-in demo task, whose gold reward is known.",
    )
    p.add_argument(
        "--compare",
        metavar="MODEL2",
        default=None,
        help="A second model folder: both side by side, plus the pairs where they disagree most.",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default=None,
        help="Report folder (default: MODEL/diagnosis, or MODEL/compare-NAME with --compare).",
    )
    p.add_argument("--format", default=None, help="Data format override (default: detect).")
    p.add_argument("--limit", type=int, default=0, help="Use only the first N prompts (0: all).")
    p.add_argument(
        "--probes", default=None, help="Comma-separated probe names (default: all; see docs/diagnostics.md)."
    )
    p.add_argument(
        "--probe-prompts",
        type=int,
        default=100,
        help="Prompts whose responses each probe edits (default: 100).",
    )
    p.add_argument(
        "--position-pairs",
        type=int,
        default=100,
        help="Pairwise judges: pairs judged in both orders for the position-bias probe (0: skip).",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples for the 95%% intervals.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the probe sample and the calibration split.")
    add_device_flags(p)
    p.set_defaults(func=cmd_diagnose)
