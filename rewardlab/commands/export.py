"""`rewardlab export MODEL --target T -o OUT`: the thin command over rewardlab/integrations/export.py.

    rewardlab export runs/rm --target vllm -o runs/rm-vllm
    vllm serve runs/rm-vllm --runner pooling          # POST /classify: the raw reward

Exits 2 with the reason, and writes nothing, where the target cannot reproduce the reward.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

VERBS = {
    "export": "Copy a reward model for vLLM, SGLang, OpenRLHF, TRL or reward-bench (same reward, or refuse).",
}
EXTRA = None


def cmd_export(args: argparse.Namespace) -> int:
    import sys

    from rewardlab.integrations.export import export_model

    result = export_model(args.model, args.target, args.output)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))  # noqa: T201
        return 0
    changed = ", ".join(f"{k}={v}" for k, v in result.config_changes.items())
    print(f"exported for {result.target} -> {result.output_dir} (config.json: {changed})", file=sys.stderr)  # noqa: T201
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)  # noqa: T201
    return 0


def add_parser(subparsers: Any) -> None:
    """Add the `export` verb to the main CLI's sub-parsers."""
    from rewardlab.integrations.export import TARGETS

    p = subparsers.add_parser(
        "export",
        help=VERBS["export"],
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("model", help="Folder written by `rewardlab train`.")
    p.add_argument("--target", required=True, choices=TARGETS, help="The engine that will load the folder.")
    p.add_argument("-o", "--output", required=True, help="Output folder (must not exist, or be empty).")
    p.add_argument("--json", action="store_true", help="Print what was written as JSON.")
    p.set_defaults(func=cmd_export)
