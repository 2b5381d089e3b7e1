"""`Flag`: one finding about one row (file:line, reason, score), what every curation check returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Flag:
    """Row `location` ("path:line", as the readers name it) was flagged for `reason`.

    `score` is the check's own number (P(label wrong), a Jaccard similarity, an agreement share), so the
    flags of one reason sort by it; `detail` says what was found in words (the row it duplicates, ...).
    `dropped` is decided by `run.curate` from ``--drop``, not by the check.
    """

    location: str
    reason: str
    score: float
    detail: str = ""
    dropped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
