"""`rewardlab curate`: find mislabelled, duplicated, contaminated and low-agreement rows (a thin layer).

    rewardlab curate train.jsonl -o runs/curated                      # 5-fold out-of-fold models
    rewardlab curate train.jsonl --against test.jsonl --folds 2 -o runs/curated
    rewardlab curate train.jsonl --model runs/hh-minilm --dry-run -o runs/curated

Flags come from `rewardlab.curate.config.CurateConfig`; the work is `rewardlab.curate.run.curate`;
docs/curation.md explains every reason and the threshold.
"""

from __future__ import annotations

import argparse
from typing import Any

VERBS = {
    "curate": "Find mislabelled, duplicated, contaminated and low-agreement pairs; write a cleaned file "
    "and a report (docs/curation.md).",
}
EXTRA = None


def add_parser(sub: Any) -> None:
    from rewardlab.config import add_dataclass_flags
    from rewardlab.curate.config import CurateConfig

    p = sub.add_parser("curate", help=VERBS["curate"], description=VERBS["curate"])
    add_dataclass_flags(p, CurateConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rewardlab.commands.common import quiet_libraries
    from rewardlab.config import config_from_args
    from rewardlab.curate.config import CurateConfig
    from rewardlab.curate.run import curate
    from rewardlab.progress import RichReporter

    cfg = config_from_args(CurateConfig, args)
    quiet_libraries()
    reporter = RichReporter()
    result = curate(cfg, reporter)
    say = reporter.message
    s = result.summary()
    say(
        f"[bold]curated[/bold] {s['rows_read']} rows: {s['rows_flagged']} flagged, "
        f"{s['rows_dropped']} dropped, {s['rows_kept']} kept"
    )
    for reason, c in s["reasons"].items():
        say(f"  {reason}: {c['flagged']} flagged, {c['dropped']} dropped")
    for name, path in result.files.items():
        say(f"{name}: {path}")
    return 0
