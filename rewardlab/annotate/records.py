"""The plain values the annotation store hands out and takes in (no database objects escape it).

Kept apart from `store.py` so the app, the CLI and the export read one small file to learn them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rewardlab.data.types import Text


@dataclass
class ProjectSettings:
    """Settings of the one project a database holds (`rewardlab annotate config` changes them)."""

    title: str = "Rank the responses"
    overlap: int = 1
    """How many annotators see each task (2+ gives the overlap that agreement statistics need)."""
    allow_ties: bool = True
    """Whether an annotator may give two responses the same rank."""
    instructions: str = "Order the responses from best (rank 1) to worst."


@dataclass
class UserInfo:
    id: int
    name: str
    is_admin: bool
    active: bool
    session_epoch: int


@dataclass
class TaskInput:
    """One task to import: a prompt (text or chat messages) and its K >= 2 responses."""

    prompt: Text
    responses: list[Text]
    external_id: str | None = None
    meta: dict = field(default_factory=dict)
    source: str = ""
    """"path:line" it was read from, for messages."""


@dataclass
class ImportResult:
    added: int = 0
    duplicates: int = 0
    """Rows already in the store with the same id and content (re-importing a file is a no-op)."""
    conflicts: list[str] = field(default_factory=list)
    """"source: id" of rows whose id exists with different content; not imported."""


@dataclass
class AssignmentView:
    """What the ranking page shows: the task with its responses in this annotator's order."""

    id: int
    task_external_id: str
    prompt: Text
    responses: list[Text]
    """In display order: responses[d] = task response display_order[d]."""
    display_order: list[int]
    status: str
    ranks: list[int] | None
    """The submitted ranking in display order (None before a submit)."""
    confidence: int | None = None
    note: str | None = None
    revision: int = 0


@dataclass
class LabelRecord:
    """One submitted ranking, in the task's original response order."""

    task_external_id: str
    prompt: Text
    responses: list[Text]
    annotator: str
    ranking: list[int]
    confidence: int | None
    note: str | None
    revision: int
    submitted_at: datetime
    meta: dict = field(default_factory=dict)


@dataclass
class UserProgress:
    name: str
    is_admin: bool
    active: bool
    done: int = 0
    open: int = 0
    skipped: int = 0
    available: int = 0
    """Tasks this annotator could still claim (fewer than `overlap` annotators, not theirs yet)."""


@dataclass
class Progress:
    tasks: int
    labels: int
    tasks_complete: int
    """Tasks with at least `overlap` labels."""
    overlap: int
    users: list[UserProgress]
