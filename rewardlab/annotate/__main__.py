"""`python -m rewardlab.annotate COMMAND ...`: the annotate commands without the main CLI."""

from __future__ import annotations

import argparse
import logging
import sys

from rewardlab.annotate.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewardlab.annotate")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["annotate", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
