"""`rewardlab annotate ...`: the annotation web app's commands, defined in rewardlab.annotate.cli (which
`python -m rewardlab.annotate` runs on their own); listed here so the main CLI wires every verb alike."""

from __future__ import annotations

from typing import Any

VERBS = {"annotate": "collect rankings from annotators in a web app"}
EXTRA = "annotate"


def add_parser(sub: Any) -> None:
    from rewardlab.annotate.cli import register

    register(sub)
