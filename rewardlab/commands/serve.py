"""`rewardlab serve MODEL`: the thin command over rewardlab/serve/app.py (flags come from `ServeSettings`).

    rewardlab serve runs/rewardlab                           # http://127.0.0.1:8000
    REWARDLAB_SERVE_TOKEN=s3cret rewardlab serve runs/rewardlab --port 5000 --normalize

Needs the [serve] extra (fastapi, uvicorn); without it the verb stays in `rewardlab --help` and prints
the install line when run (rewardlab.commands.common.EXTRAS).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

VERBS = {"serve": "Serve a reward model over HTTP (POST /score, OpenRLHF's /get_reward; docs/serving.md)."}
EXTRA = "serve"


def run(args: argparse.Namespace) -> int:
    from rewardlab.config import from_namespace
    from rewardlab.serve.app import ServeSettings, run

    logging.getLogger("rewardlab").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    settings = from_namespace(ServeSettings, args)
    run(args.model, settings)
    return 0


def add_parser(subparsers: Any) -> None:
    """Add the `serve` verb to the main CLI's sub-parsers."""
    from rewardlab.config import add_dataclass_arguments
    from rewardlab.serve.app import ServeSettings

    p = subparsers.add_parser(
        "serve",
        help=VERBS["serve"],
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("model", help="Folder written by `rewardlab train` (ensembles: not yet).")
    add_dataclass_arguments(p, ServeSettings)
    p.set_defaults(func=run)
