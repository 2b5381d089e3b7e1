"""The `rewardlab` command: thin verbs that parse flags, build a config and call one library function.

    rewardlab train                      # the built-in demo task on MiniLM, a few minutes on 2 CPU cores
    rewardlab train --data prefs.jsonl --test-data test.jsonl --backbone smollm2
    rewardlab eval runs/rewardlab test.jsonl
    rewardlab score runs/rewardlab rows.jsonl -o scored.jsonl

Heavy imports (torch, transformers) happen inside the verbs, so `rewardlab --help` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any


def _quiet_libraries() -> None:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def cmd_train(args: argparse.Namespace) -> int:
    from rewardlab.config import TrainConfig, from_namespace
    from rewardlab.progress import Reporter, RichReporter
    from rewardlab.train import TrainingInterrupted, train

    _quiet_libraries()
    cfg = from_namespace(TrainConfig, args)
    main_process = os.environ.get("RANK", "0") == "0"  # torchrun / accelerate launch: one process talks
    reporter = RichReporter() if main_process else Reporter()
    try:
        result = train(cfg, reporter)
    except TrainingInterrupted as stopped:
        reporter.message(f"[bold]stopped[/bold] by {stopped}")
        return 128 + stopped.signum
    if not main_process:
        return 0
    say = reporter.message
    say("")
    say(
        f"[bold]trained[/bold] {result.steps} steps in {result.wall_time_s:.0f} s wall time "
        f"({result.pairs_per_s:.1f} pairs/s); model saved to {result.output_dir}"
    )
    if result.eval:
        say(f"held-out (model selection, step {result.best_step}): {result.eval.line()}")
    if result.test:
        say(f"[bold]test[/bold]: {result.test.line()}")
        if result.test.gold_agreement is not None:
            say(f"      agreement with the gold reward's ordering: {100 * result.test.gold_agreement:.1f}%")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))  # noqa: T201
    return 0


def _load_groups(path: str, fmt: str | None) -> tuple[list, list[str]]:
    from rewardlab.data import load_preferences

    groups, summary = load_preferences(path, fmt)
    return groups, summary.lines()


def cmd_eval(args: argparse.Namespace) -> int:
    from rewardlab.evaluate import evaluate
    from rewardlab.progress import RichReporter
    from rewardlab.scoring import Scorer

    _quiet_libraries()
    reporter = RichReporter()
    groups, lines = _load_groups(args.data, args.format)
    for line in lines:
        reporter.message(line)
    scorer = Scorer.from_pretrained(args.model, device=args.device, bf16=args.bf16, quantize=args.quantize)
    reporter.start("scoring", sum(len(g.responses) for g in groups))
    result = evaluate(scorer, groups, reporter.advance, n_boot=args.bootstrap)
    reporter.finish()
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
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from rewardlab import score_file as sf
    from rewardlab.progress import Reporter, RichReporter
    from rewardlab.scoring import Scorer

    _quiet_libraries()
    procs = sf.init_processes(args.device)  # several under torchrun / accelerate launch: each scores a share
    total = sf.check_score_file(args.input, procs)
    scorer = Scorer.from_pretrained(args.model, device=procs.device, bf16=args.bf16, quantize=args.quantize)
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
    return 0


# Modules that add their own verbs: each defines `register(subparsers)`. A module whose optional
# dependencies (an extra such as [serve] or [annotate]) are missing is skipped, its verb absent.
VERB_MODULES = [
    "rewardlab.annotate.cli",
    "rewardlab.serve_cli",
    "rewardlab.diagnose_cli",
    "rewardlab.bon_cli",
    "rewardlab.prm_cli",
    "rewardlab.drift_cli",
    "rewardlab.integrations.export_cli",
]


def _register_verbs(sub: Any, module: str) -> None:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        logging.getLogger(__name__).debug("verbs of %s unavailable: %s", module, e)
        return
    mod.register(sub)


def build_parser() -> argparse.ArgumentParser:
    from rewardlab import __version__
    from rewardlab.config import TrainConfig, add_dataclass_arguments

    parser = argparse.ArgumentParser(prog="rewardlab", description="Reward modeling for RLHF.")
    parser.add_argument("--version", action="version", version=f"rewardlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="Train a Bradley-Terry reward model (no arguments: the demo task).")
    add_dataclass_arguments(p, TrainConfig)
    p.add_argument("--json", action="store_true", help="Print the run's figures as JSON at the end.")
    p.set_defaults(func=cmd_train)

    common: dict[str, Any] = {"device": None, "bf16": False}
    p = sub.add_parser("eval", help="Pairwise accuracy of a saved reward model on preference data.")
    p.add_argument("model", help="Folder written by `rewardlab train`.")
    p.add_argument("data", help="Preference data in any supported format (docs/formats.md).")
    p.add_argument("--format", default=None, help="Data format override (default: detect).")
    p.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples for the 95%% interval.")
    p.add_argument("--json", action="store_true", help="Print the result as JSON.")
    _add_device_flags(p, common)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("score", help="Score prompt/response rows (or chat messages) to JSONL.")
    p.add_argument("model", help="Folder written by `rewardlab train`.")
    p.add_argument("input", help="JSONL with prompt+response, text, or messages per row.")
    p.add_argument("-o", "--output", default=None, help="Output JSONL (default: stdout).")
    p.add_argument(
        "--chunk-rows", type=int, default=4096, help="Rows read, scored and written at a time (memory bound)."
    )
    _add_device_flags(p, common)
    p.set_defaults(func=cmd_score)

    for module in VERB_MODULES:
        _register_verbs(sub, module)
    return parser


def _add_device_flags(p: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    p.add_argument(
        "--device", default=defaults["device"], help="cpu, cuda, cuda:1, mps (default: best available)."
    )
    p.add_argument(
        "--bf16", action="store_true", help="Score under bf16 autocast (faster; tiny accuracy cost)."
    )
    p.add_argument(
        "--quantize", choices=["int8"], help="CPU only: int8 dynamic quantisation of Linear layers."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:  # DataError is a ValueError: show it, not a traceback
        if args.verbose:
            raise
        print(f"rewardlab {args.command}: error: {e}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
