"""`rewardlab train`: flags generated from `TrainConfig`, then `training.run.train(cfg)` and a summary.

rewardlab train                      # the built-in demo task on MiniLM, a few minutes on 2 CPU cores
rewardlab train --data prefs.jsonl --test-data test.jsonl --backbone smollm2
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

VERBS = {"train": "Train a Bradley-Terry reward model (no arguments: the demo task)."}
EXTRA = None


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help=VERBS["train"])
    add_train_flags(p)
    p.set_defaults(func=run)


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """Every `TrainConfig` field as a flag, and ``--json`` (`rewardlab prm train` uses the same)."""
    from rewardlab.config import TrainConfig, add_dataclass_arguments

    add_dataclass_arguments(p, TrainConfig)
    p.add_argument("--json", action="store_true", help="Print the run's figures as JSON at the end.")


def run(args: argparse.Namespace) -> int:
    from rewardlab.commands.common import quiet_libraries
    from rewardlab.config import TrainConfig, from_namespace
    from rewardlab.progress import Reporter, RichReporter
    from rewardlab.training.loop import TrainingInterrupted
    from rewardlab.training.run import train

    quiet_libraries()
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
