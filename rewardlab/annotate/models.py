"""The annotation database schema: users, tasks, per-annotator assignments and their labels.

One database is one annotation project. A task is a prompt with its K responses; an assignment hands
one task to one annotator (at most `overlap` annotators per task, one `slot` each, so two annotators
claiming the last slot at once cannot both get it); a label is the ranking an annotator submitted for
an assignment (one row per assignment, so a double submit updates instead of duplicating).

Types are portable SQLAlchemy types (JSON, Text, Integer, Boolean, DateTime): the same schema runs
on SQLite and PostgreSQL. Any change here needs a migration in `migrations/versions/`; the test
`test_migrations_match_models` fails until the two agree.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so migrations can alter them by name on every backend (SQLite batch mode too).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Setting(Base):
    """Project settings and the cookie-signing secret, as JSON-encoded values by key."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped on a password change or deactivation: cookies signed for an older epoch stop working."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    """The imported row's `id`, or "t-" + a content hash, so re-importing a file adds nothing twice."""
    content_hash: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[object] = mapped_column(JSON)
    responses: Mapped[list] = mapped_column(JSON)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("task_id", "user_id", name="uq_assignments_task_user"),
        UniqueConstraint("task_id", "slot", name="uq_assignments_task_slot"),
        Index("ix_assignments_user_status", "user_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(Integer)
    display_order: Mapped[list] = mapped_column(JSON)
    """display_order[d] = index into task.responses shown at position d (a per-annotator shuffle)."""
    status: Mapped[str] = mapped_column(String(16), default="open")
    """"open", "skipped" or "done"."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Label(Base):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    ranking: Mapped[list] = mapped_column(JSON)
    """ranking[i] = rank of task.responses[i]; 1 = best, equal ranks = tie (competition ranks)."""
    confidence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    """1 for the first submit; +1 each time the annotator changes the ranking afterwards."""
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
