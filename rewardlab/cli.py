"""The `rewardlab` command: an explicit list of command modules, each adding its verbs.

    rewardlab train                      # the built-in demo task on MiniLM, a few minutes on 2 CPU cores
    rewardlab train --data prefs.jsonl --test-data test.jsonl --backbone smollm2
    rewardlab eval runs/rewardlab test.jsonl
    rewardlab score runs/rewardlab rows.jsonl -o scored.jsonl

Every module in `COMMANDS` (rewardlab/commands/) has ``VERBS`` (verb -> one-line help), ``EXTRA`` (the
optional extra it needs, or None) and ``add_parser(sub)``, which adds its verbs; each verb's parser sets
``func``, the function that runs it (thin: flags -> config -> one library call). A command whose extra is
not installed stays in ``--help`` and, when run, prints the pip install line (accelerate's
``commands/accelerate_cli.py`` wires its commands the same way, explicitly). Heavy imports (torch,
transformers, fastapi) happen inside the verbs, so `rewardlab --help` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rewardlab.commands import annotate, bon, curate, diagnose, drift, export, judge, prm, score, serve, train
from rewardlab.commands.common import add_needs_extra, missing_modules

COMMANDS = [train, score, annotate, serve, diagnose, bon, prm, drift, export, curate, judge]
"""Every command module, in the order `rewardlab --help` lists their verbs."""


def build_parser() -> argparse.ArgumentParser:
    from rewardlab import __version__

    parser = argparse.ArgumentParser(prog="rewardlab", description="Reward modeling for RLHF.")
    parser.add_argument("--version", action="version", version=f"rewardlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        if command.EXTRA and missing_modules(command.EXTRA):
            add_needs_extra(sub, command.VERBS, command.EXTRA)
        else:
            command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_any", False):  # only a needs-extra stub takes any arguments
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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
