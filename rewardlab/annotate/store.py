"""The annotation store: every read and write the app and the CLI make, each in one transaction.

`Store(db)` opens (and migrates) the database. Annotators claim tasks one at a time
(`next_assignment`), skip them, and `submit` rankings; admins add users and tasks and read labels
and progress. Guarantees the tests check:

- a claim takes one of the task's `overlap` slots under a unique constraint, so concurrent claims
  never hand a task to more annotators than the overlap;
- a submit writes the label and marks the assignment done in one transaction, and a label is unique
  per assignment, so a double submit or a refresh updates (or leaves) the one row, and a process
  killed mid-submit leaves the assignment open with no label;
- an annotator only ever reads their own assignments (`assignment` checks the owner).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rewardlab.annotate.aggregate import competition_ranks
from rewardlab.annotate.auth import hash_password, new_token, verify_password
from rewardlab.annotate.db import WRITE, create_db_engine, upgrade
from rewardlab.annotate.models import Assignment, Label, Setting, Task, User, utcnow
from rewardlab.annotate.records import (
    AssignmentView,
    ImportResult,
    LabelRecord,
    Progress,
    ProjectSettings,
    TaskInput,
    UserInfo,
    UserProgress,
)
from rewardlab.data.types import Text

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MAX_OVERLAP = 1000
"""Most annotators per task: far above any real project, far below what the databases can bind."""
_RETRIES = 20
log = logging.getLogger(__name__)


@cache
def _dummy_hash() -> str:
    """A hash to check unknown names against, so a login takes as long whether or not the name exists."""
    return hash_password("not a real password")


def content_hash(prompt: Text, responses: list[Text]) -> str:
    blob = json.dumps([prompt, responses], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _check_setting(key: str, value: object) -> None:
    """Raise ValueError naming the setting (and its `annotate config` flag) when `value` cannot be used."""
    if key == "overlap" and not (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_OVERLAP
    ):
        raise ValueError(f"overlap must be an integer >= 1 and <= {MAX_OVERLAP} (--overlap), got {value!r}")
    if key == "allow_ties" and not isinstance(value, bool):
        raise ValueError(f"allow_ties (--ties/--no-ties) must be true or false, got {value!r}")
    if key in ("title", "instructions") and not isinstance(value, str):
        raise ValueError(f"{key} (--{key}) must be text, got {value!r}")


class _SlotTaken(Exception):
    """Every overlap slot of the chosen task was claimed concurrently; the claim is retried."""


class Store:
    """Handle on one annotation database (a SQLAlchemy URL or a SQLite file path)."""

    def __init__(self, db: str, *, migrate: bool = True) -> None:
        self.engine = create_db_engine(db)
        if migrate:
            upgrade(self.engine)
        self._secret: bytes | None = None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            s.connection(execution_options=WRITE if write else {})
            yield s
            s.commit()

    # -- settings ---------------------------------------------------------------------------------

    def settings(self) -> ProjectSettings:
        """The stored settings; a stored value this version would refuse is replaced by its default
        (with a warning), so one bad row cannot take every page down."""
        with self._session() as s:
            stored = {row.key: row.value for row in s.scalars(select(Setting))}
        values = {}
        for key in ProjectSettings.__dataclass_fields__:
            if key not in stored:
                continue
            try:
                values[key] = json.loads(stored[key])
                _check_setting(key, values[key])
            except ValueError as e:
                values.pop(key, None)
                log.warning("ignoring the stored setting %s (%s); set it again with annotate config", key, e)
        return ProjectSettings(**values)

    def update_settings(self, **changes: object) -> ProjectSettings:
        """Change settings by name, e.g. `update_settings(overlap=3)`; unknown names or bad values raise."""
        known = ProjectSettings.__dataclass_fields__
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}: use one of {', '.join(known)}")
            _check_setting(key, value)
        with self._session(write=True) as s:
            for key, value in changes.items():
                s.merge(Setting(key=key, value=json.dumps(value)))
        return self.settings()

    def secret_key(self) -> bytes:
        """The cookie-signing secret, created on first use and kept in the database."""
        for _ in range(_RETRIES):
            if self._secret is not None:
                break
            try:
                with self._session(write=True) as s:
                    row = s.get(Setting, "secret_key")
                    if row is None:
                        row = Setting(key="secret_key", value=json.dumps(new_token() + new_token()))
                        s.add(row)
                self._secret = json.loads(row.value).encode("ascii")
            except IntegrityError:
                continue  # another process created it at the same moment: read theirs
        if self._secret is None:
            raise RuntimeError(f"could not create the secret key after {_RETRIES} tries")
        return self._secret

    # -- users ------------------------------------------------------------------------------------

    @staticmethod
    def _info(u: User) -> UserInfo:
        return UserInfo(u.id, u.name, u.is_admin, u.active, u.session_epoch)

    def add_user(self, name: str, password: str, admin: bool = False) -> UserInfo:
        if not USER_NAME.match(name):
            raise ValueError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        hashed = hash_password(password)  # before taking the write lock: scrypt is slow on purpose
        try:
            with self._session(write=True) as s:
                user = User(name=name, password_hash=hashed, is_admin=admin)
                s.add(user)
                s.flush()
                return self._info(user)
        except IntegrityError:
            raise ValueError(f"user {name!r} already exists: use set-password to change it") from None

    def _change_user(self, name: str, **values: object) -> UserInfo:
        with self._session(write=True) as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise ValueError(f"no user named {name!r}: add it with add-user")
            for key, value in values.items():
                setattr(user, key, value)
            user.session_epoch += 1  # signs out every browser holding an old cookie
            return self._info(user)

    def set_password(self, name: str, password: str) -> UserInfo:
        return self._change_user(name, password_hash=hash_password(password))

    def set_active(self, name: str, active: bool) -> UserInfo:
        return self._change_user(name, active=active)

    def sign_out(self, user_id: int) -> None:
        """Revoke every session cookie of this user (signing out in one browser signs out all)."""
        with self._session(write=True) as s:
            user = s.get(User, user_id)
            if user is not None:
                user.session_epoch += 1

    def authenticate(self, name: str, password: str) -> UserInfo | None:
        """The active user with this name and password, else None (same work either way)."""
        with self._session() as s:
            user = s.scalar(select(User).where(User.name == name))
        ok = verify_password(password, user.password_hash if user else _dummy_hash())
        return self._info(user) if ok and user is not None and user.active else None

    def user(self, user_id: int) -> UserInfo | None:
        with self._session() as s:
            user = s.get(User, user_id)
            return self._info(user) if user else None

    def users(self) -> list[UserInfo]:
        with self._session() as s:
            return [self._info(u) for u in s.scalars(select(User).order_by(User.name))]

    # -- tasks ------------------------------------------------------------------------------------

    def add_tasks(self, tasks: Iterable[TaskInput]) -> ImportResult:
        """Import tasks in one transaction; rows already present (same id and content) are skipped."""
        result = ImportResult()
        with self._session(write=True) as s:
            for t in tasks:
                digest = content_hash(t.prompt, t.responses)
                ext = t.external_id or f"t-{digest[:16]}"
                existing = s.scalar(select(Task).where(Task.external_id == ext))
                if existing is None:
                    s.add(
                        Task(
                            external_id=ext,
                            content_hash=digest,
                            prompt=t.prompt,
                            responses=t.responses,
                            meta=t.meta,
                        )
                    )
                    s.flush()
                    result.added += 1
                elif existing.content_hash == digest:
                    result.duplicates += 1
                else:
                    result.conflicts.append(f"{t.source}: id {ext!r}")
        return result

    # -- assignments ------------------------------------------------------------------------------

    def _view(self, s: Session, a: Assignment) -> AssignmentView:
        task = s.get(Task, a.task_id)
        label = s.scalar(select(Label).where(Label.assignment_id == a.id))
        order = list(a.display_order)
        return AssignmentView(
            id=a.id,
            task_external_id=task.external_id,
            prompt=task.prompt,
            responses=[task.responses[i] for i in order],
            display_order=order,
            status=a.status,
            ranks=[label.ranking[i] for i in order] if label else None,
            confidence=label.confidence if label else None,
            note=label.note if label else None,
            revision=label.revision if label else 0,
        )

    def next_assignment(self, user_id: int) -> AssignmentView | None:
        """This annotator's open task, else a newly claimed one, else a skipped one; None when done."""
        overlap = self.settings().overlap
        for _ in range(_RETRIES):
            try:
                with self._session(write=True) as s:
                    mine = select(Assignment).where(Assignment.user_id == user_id)
                    a = s.scalar(mine.where(Assignment.status == "open").order_by(Assignment.id))
                    if a is None:
                        a = self._claim(s, user_id, overlap)
                    if a is None:
                        a = s.scalar(
                            mine.where(Assignment.status == "skipped").order_by(Assignment.updated_at)
                        )
                        if a is not None:
                            a.status, a.updated_at = "open", utcnow()
                    return self._view(s, a) if a is not None else None
            except (IntegrityError, _SlotTaken):
                continue  # another annotator took the same slot first (PostgreSQL): claim again
        raise RuntimeError(f"could not claim a task after {_RETRIES} tries: the store is too contended")

    @staticmethod
    def _claimable(user_id: int, overlap: int) -> tuple[Any, Any]:
        """(assignment count per task, the ids of tasks this user may still claim) as SQL expressions."""
        n = select(func.count(Assignment.id)).where(Assignment.task_id == Task.id).scalar_subquery()
        taken = select(Assignment.task_id).where(Assignment.user_id == user_id)
        return n, select(Task.id).where(n < overlap, Task.id.not_in(taken))

    def _claim(self, s: Session, user_id: int, overlap: int) -> Assignment | None:
        n, claimable = self._claimable(user_id, overlap)
        # Tasks other annotators already started come first, so overlapping sets complete early.
        task_id = s.scalar(claimable.order_by(n.desc(), Task.id).limit(1))
        if task_id is None:
            return None
        used = set(s.scalars(select(Assignment.slot).where(Assignment.task_id == task_id)))
        free = set(range(overlap)) - used
        if not free:  # PostgreSQL (read committed): others filled the task since the query above
            raise _SlotTaken
        slot = min(free)
        k = len(s.get(Task, task_id).responses)
        order = list(range(k))
        random.Random().shuffle(order)  # fresh OS-seeded shuffle per annotator, stored for refreshes
        a = Assignment(task_id=task_id, user_id=user_id, slot=slot, display_order=order)
        s.add(a)
        s.flush()  # raises IntegrityError if the slot was taken concurrently
        return a

    def assignment(self, user_id: int, assignment_id: int) -> AssignmentView | None:
        """The assignment if it belongs to `user_id`; None otherwise (never another's labels)."""
        with self._session() as s:
            a = s.get(Assignment, assignment_id)
            return self._view(s, a) if a is not None and a.user_id == user_id else None

    def assignments(self, user_id: int) -> list[AssignmentView]:
        with self._session() as s:
            rows = s.scalars(select(Assignment).where(Assignment.user_id == user_id).order_by(Assignment.id))
            return [self._view(s, a) for a in rows]

    def skip(self, user_id: int, assignment_id: int) -> bool:
        """Put an open assignment aside (it comes back when nothing new is left); False if not theirs."""
        with self._session(write=True) as s:
            a = s.get(Assignment, assignment_id)
            if a is None or a.user_id != user_id:
                return False
            if a.status == "open":
                a.status, a.updated_at = "skipped", utcnow()
            return True

    def submit(
        self,
        user_id: int,
        assignment_id: int,
        display_ranks: list[int],
        confidence: int | None = None,
        note: str | None = None,
    ) -> AssignmentView:
        """Record a ranking given in display order; raises LookupError if not theirs, ValueError if bad.

        Ranks are normalised to competition ranks (ranks [1, 1, 2] are stored as [1, 1, 3]).
        Submitting the same ranking again changes nothing; a different one updates the label.
        """
        if confidence is not None and not 1 <= confidence <= 5:
            raise ValueError(f"confidence must be 1-5, got {confidence}")
        allow_ties = self.settings().allow_ties
        for _ in range(_RETRIES):
            try:
                with self._session(write=True) as s:
                    a = s.get(Assignment, assignment_id)
                    if a is None or a.user_id != user_id:
                        raise LookupError(f"assignment {assignment_id} is not yours")
                    order = list(a.display_order)
                    if len(display_ranks) != len(order) or not all(
                        1 <= r <= len(order) for r in display_ranks
                    ):
                        raise ValueError(
                            f"give every one of the {len(order)} responses a rank from 1 to {len(order)}"
                        )
                    ranks = competition_ranks(display_ranks)
                    if not allow_ties and len(set(ranks)) != len(ranks):
                        raise ValueError("this project does not allow ties: give each response its own rank")
                    ranking = [0] * len(order)
                    for d, i in enumerate(order):
                        ranking[i] = ranks[d]
                    label = s.scalar(select(Label).where(Label.assignment_id == a.id))
                    now = utcnow()
                    if label is None:
                        s.add(
                            Label(
                                assignment_id=a.id,
                                ranking=ranking,
                                confidence=confidence,
                                note=note,
                                submitted_at=now,
                                updated_at=now,
                            )
                        )
                    elif (label.ranking, label.confidence, label.note) != (ranking, confidence, note):
                        label.ranking, label.confidence, label.note = ranking, confidence, note
                        label.revision, label.updated_at = label.revision + 1, now
                    a.status, a.updated_at = "done", now
                    s.flush()
                    return self._view(s, a)
            except IntegrityError:
                continue  # a concurrent identical submit inserted the label first: retry as an update
        raise RuntimeError(f"could not record the ranking after {_RETRIES} tries")

    # -- reading results --------------------------------------------------------------------------

    def labels(self) -> list[LabelRecord]:
        """Every submitted ranking, ordered by task then annotator name."""
        q = (
            select(Label, Assignment, Task, User)
            .join(Assignment, Label.assignment_id == Assignment.id)
            .join(Task, Assignment.task_id == Task.id)
            .join(User, Assignment.user_id == User.id)
            .order_by(Task.id, User.name)
        )
        with self._session() as s:
            return [
                LabelRecord(
                    t.external_id,
                    t.prompt,
                    list(t.responses),
                    u.name,
                    list(lab.ranking),
                    lab.confidence,
                    lab.note,
                    lab.revision,
                    lab.submitted_at,
                    dict(t.meta or {}),
                )
                for lab, _a, t, u in s.execute(q)
            ]

    def _user_progress(self, s: Session, u: User, overlap: int) -> UserProgress:
        p = UserProgress(u.name, u.is_admin, u.active)
        counts = select(Assignment.status, func.count()).where(Assignment.user_id == u.id)
        for status, count in s.execute(counts.group_by(Assignment.status)):
            setattr(p, status, count)
        _, claimable = self._claimable(u.id, overlap)
        p.available = s.scalar(select(func.count()).select_from(claimable.subquery()))
        return p

    def user_progress(self, user_id: int) -> UserProgress:
        overlap = self.settings().overlap
        with self._session() as s:
            return self._user_progress(s, s.get(User, user_id), overlap)

    def progress(self) -> Progress:
        overlap = self.settings().overlap
        with self._session() as s:
            per_task = (
                select(Assignment.task_id, func.count(Label.id).label("n"))
                .join(Label, Label.assignment_id == Assignment.id)
                .group_by(Assignment.task_id)
                .subquery()
            )
            complete = s.scalar(select(func.count()).select_from(per_task).where(per_task.c.n >= overlap))
            users = [self._user_progress(s, u, overlap) for u in s.scalars(select(User).order_by(User.name))]
            return Progress(
                tasks=s.scalar(select(func.count(Task.id))),
                labels=s.scalar(select(func.count(Label.id))),
                tasks_complete=complete,
                overlap=overlap,
                users=users,
            )
