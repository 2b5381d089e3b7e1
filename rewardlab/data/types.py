"""The in-memory shapes every data format is normalised into.

A reader turns one raw row (TRL pairs, HH transcripts, chat messages, K-way rankings, ratings) into
one `PreferenceGroup`: a prompt, its K responses, and the ordered pairs among them. Keeping the
C(K,2) pairs of one prompt together lets training put them in the same batch and encode each
response once (InstructGPT, section 3.5). Step-labelled solutions (rewardlab.data.steps and the readers
it dispatches to) become one `StepExample` each.
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


@dataclass
class StepExample:
    """One solution: the prompt, its steps, a label per step (None: unlabelled), and the outcome."""

    prompt: str
    steps: list[str]
    labels: list[float | None]
    outcome: float | None = None
    """1.0 if the final answer is right, 0.0 if wrong, None if unknown (for outcome reward models)."""
    source: str = ""
    """Where the row came from, as "path:line"."""
    meta: dict = field(default_factory=dict)

    @property
    def first_error(self) -> int | None:
        """Index of the first step labelled < 0.5, or None when no labelled step is wrong."""
        return next((i for i, y in enumerate(self.labels) if y is not None and y < 0.5), None)

    def outcome_or_steps(self) -> float | None:
        """The outcome label; failing that, 1.0 when every labelled step is right, else 0.0."""
        if self.outcome is not None:
            return self.outcome
        if not any(y is not None for y in self.labels):
            return None
        return 0.0 if self.first_error is not None else 1.0


class DataError(ValueError):
    """Bad input data; the message names the file, line and field at fault and how to fix it."""
