"""The in-memory shapes every data format is normalised into.

A reader turns one raw row (TRL pairs, HH transcripts, chat messages, K-way rankings, ratings) into
one `PreferenceGroup`: a prompt, its K responses, and the ordered pairs among them. Keeping the
C(K,2) pairs of one prompt together lets training put them in the same batch and encode each
response once (InstructGPT, section 3.5).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

Message = dict[str, str]
"""A chat message: {"role": "user" | "assistant" | "system", "content": str}."""

Text = str | list[Message]
"""A prompt or response: plain text, or a list of chat messages rendered later by the tokenizer."""


@dataclass
class PreferenceGroup:
    """One prompt, K >= 2 responses, and which response beat which."""

    prompt: Text
    responses: list[Text]
    pairs: list[tuple[int, int]]
    """Ordered pairs (winner index, loser index) into `responses`; ties produce no pair."""
    margins: list[float] | None = None
    """Optional per-pair margin m >= 0 for the loss -log sigmoid(r_w - r_l - m); same length as `pairs`."""
    ranks: list[float] | None = None
    """Rank of each response (1 = best, equal = tie) when the row was a full ranking; for Plackett-Luce."""
    subset: str | None = None
    """The row's `subset` field, for per-subset accuracy."""
    source: str = ""
    """Where the row came from, as "path:line", for error messages and reports."""
    meta: dict = field(default_factory=dict)
    """Extra fields carried through untouched (annotator, votes, id, ...)."""

    @property
    def num_pairs(self) -> int:
        return len(self.pairs)


@dataclass
class DataSummary:
    """What loading a file did: rows read, kept and dropped (with reasons), formats seen."""

    path: str
    format: str
    rows_read: int = 0
    groups: int = 0
    pairs: int = 0
    dropped: Counter = field(default_factory=Counter)
    """Reason -> number of rows (or pairs) dropped, e.g. {"chosen identical to rejected": 3}."""
    dropped_examples: dict[str, list[str]] = field(default_factory=dict)
    """Reason -> up to 5 "path:line" locations, so a user can look at them."""

    def drop(self, reason: str, source: str) -> None:
        self.dropped[reason] += 1
        examples = self.dropped_examples.setdefault(reason, [])
        if len(examples) < 5:
            examples.append(source)

    def lines(self) -> list[str]:
        """Human-readable summary lines (the CLI prints them; reports embed them)."""
        out = [
            f"{self.path}: {self.rows_read} rows read as '{self.format}', "
            f"{self.groups} groups, {self.pairs} pairs kept"
        ]
        for reason, n in self.dropped.most_common():
            where = ", ".join(self.dropped_examples.get(reason, []))
            out.append(f"  dropped {n}: {reason} (e.g. {where})")
        return out


class DataError(ValueError):
    """Bad input data; the message names the file, line and field at fault and how to fix it."""
