"""The annotation store on SQLite (always) and PostgreSQL (when $REWARDLAB_TEST_POSTGRES_URL names a server).

Each PostgreSQL test runs in a schema of its own, dropped afterwards, so the URL may name any database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from sqlalchemy import create_engine, text  # noqa: E402

from rewardlab.annotate.db import current_revision, normalize_url  # noqa: E402
from rewardlab.annotate.records import TaskInput  # noqa: E402
from rewardlab.annotate.store import Store  # noqa: E402

PG_ENV = "REWARDLAB_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield str(tmp_path / "labels.db")
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"set {PG_ENV}=postgresql://user@host:port/db to run this on PostgreSQL")
    pytest.importorskip("psycopg")
    schema = f"rl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(base))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardlab.annotate import auth

    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)  # fast to create; verification reads n from the hash


@pytest.fixture
def store(db_url: str):
    s = Store(db_url)
    yield s
    s.close()


def tasks(n: int, k: int = 3) -> list[TaskInput]:
    return [TaskInput(f"prompt {i}", [f"response {i}.{j}" for j in range(k)], f"q{i}") for i in range(n)]


def test_schema_is_migrated_and_matches_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from rewardlab.annotate.models import Base

    assert current_revision(store.engine) == "0001"
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models.py and migrations/versions disagree; add a migration: {diff}"
    Store(str(store.engine.url.render_as_string(hide_password=False))).close()  # reopening is a no-op


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "x.db"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url(str(tmp_path / "y.db")) == f"sqlite:///{tmp_path / 'y.db'}"
    with pytest.raises(ValueError, match="in-memory"):
        Store("sqlite://")


def test_users_and_passwords(store: Store) -> None:
    alice = store.add_user("alice", "pw-alice")
    assert store.authenticate("alice", "pw-alice") == alice
    assert store.authenticate("alice", "wrong") is None
    assert store.authenticate("nobody", "pw-alice") is None
    with pytest.raises(ValueError, match="already exists"):
        store.add_user("alice", "x")
    with pytest.raises(ValueError, match="user name"):
        store.add_user("bad name!", "x")
    changed = store.set_password("alice", "new")
    assert changed.session_epoch == alice.session_epoch + 1  # old cookies stop working
    assert store.authenticate("alice", "pw-alice") is None and store.authenticate("alice", "new")
    store.set_active("alice", False)
    assert store.authenticate("alice", "new") is None
    with pytest.raises(ValueError, match="no user named"):
        store.set_password("bob", "x")


def test_import_is_idempotent_and_reports_conflicts(store: Store) -> None:
    assert store.add_tasks(tasks(3)).added == 3
    again = store.add_tasks(tasks(3))
    assert (again.added, again.duplicates) == (0, 3)
    changed = TaskInput("prompt 0", ["other", "text"], "q0", source="new.jsonl:1")
    assert store.add_tasks([changed]).conflicts == ["new.jsonl:1: id 'q0'"]
    unnamed = TaskInput("p", ["a", "b"])
    assert store.add_tasks([unnamed, unnamed]).added == 1  # identified by a content hash
    assert store.progress().tasks == 4


def test_overlap_limits_annotators_per_task(store: Store) -> None:
    """Overlap 2, three annotators, two tasks: the first two share both tasks, the third gets none."""
    store.update_settings(overlap=2)
    store.add_tasks(tasks(2))
    ids = [store.add_user(n, "pw").id for n in ("a", "b", "c")]
    seen = {}
    for uid in ids:
        got = []
        while (view := store.next_assignment(uid)) is not None:
            got.append(view.task_external_id)
            store.submit(uid, view.id, list(range(1, 4)))
        seen[uid] = got
    assert sorted(seen[ids[0]]) == sorted(seen[ids[1]]) == ["q0", "q1"]
    assert seen[ids[2]] == []
    p = store.progress()
    assert (p.labels, p.tasks_complete) == (4, 2)
    assert [u.available for u in p.users] == [0, 0, 0]


def test_started_tasks_are_offered_first(store: Store) -> None:
    store.update_settings(overlap=2)
    store.add_tasks(tasks(3))
    a, b = store.add_user("a", "pw").id, store.add_user("b", "pw").id
    first = store.next_assignment(a)
    store.submit(a, first.id, [1, 2, 3])
    assert store.next_assignment(b).task_external_id == first.task_external_id


def test_refresh_returns_the_same_task_in_the_same_order(store: Store) -> None:
    store.add_tasks(tasks(2, k=6))
    uid = store.add_user("a", "pw").id
    view = store.next_assignment(uid)
    assert sorted(view.display_order) == list(range(6))
    again = store.next_assignment(uid)
    assert (again.id, again.display_order) == (view.id, view.display_order)
    assert view.responses == [f"response 0.{i}" for i in view.display_order]


def test_submit_maps_display_order_back_and_is_idempotent(store: Store) -> None:
    store.add_tasks(tasks(1, k=3))
    uid = store.add_user("a", "pw").id
    view = store.next_assignment(uid)
    # Display position d shows response view.display_order[d]; rank the shown order 3, 1, 2.
    done = store.submit(uid, view.id, [3, 1, 2], confidence=4, note="close call")
    expected = [0, 0, 0]
    for d, i in enumerate(view.display_order):
        expected[i] = [3, 1, 2][d]
    (label,) = store.labels()
    assert label.ranking == expected and label.annotator == "a" and label.task_external_id == "q0"
    assert (label.confidence, label.note, label.revision) == (4, "close call", 1)
    assert done.status == "done" and done.ranks == [3, 1, 2]
    store.submit(uid, view.id, [3, 1, 2], confidence=4, note="close call")  # double submit
    assert [lab.revision for lab in store.labels()] == [1]
    store.submit(uid, view.id, [1, 2, 3])  # a changed mind updates the one label
    (label,) = store.labels()
    assert label.revision == 2 and label.confidence is None
    assert store.next_assignment(uid) is None


def test_ties_normalise_and_can_be_forbidden(store: Store) -> None:
    store.add_tasks(tasks(2, k=3))
    uid = store.add_user("a", "pw").id
    view = store.next_assignment(uid)
    assert store.submit(uid, view.id, [1, 1, 2]).ranks == [1, 1, 3]
    store.update_settings(allow_ties=False)
    view = store.next_assignment(uid)
    with pytest.raises(ValueError, match="does not allow ties"):
        store.submit(uid, view.id, [1, 1, 3])
    with pytest.raises(ValueError, match="rank from 1 to 3"):
        store.submit(uid, view.id, [1, 2, 4])
    with pytest.raises(ValueError, match="confidence"):
        store.submit(uid, view.id, [1, 2, 3], confidence=9)
    assert store.assignment(uid, view.id).status == "open"


def test_annotators_only_reach_their_own_assignments(store: Store) -> None:
    store.add_tasks(tasks(1))
    a, b = store.add_user("a", "pw").id, store.add_user("b", "pw").id
    view = store.next_assignment(a)
    store.submit(a, view.id, [1, 2, 3])
    assert store.assignment(b, view.id) is None
    assert store.assignments(b) == []
    with pytest.raises(LookupError):
        store.submit(b, view.id, [3, 2, 1])
    assert store.skip(b, view.id) is False
    assert [lab.ranking for lab in store.labels()] == [store.labels()[0].ranking]
    assert store.labels()[0].annotator == "a"


def test_skip_and_come_back(store: Store) -> None:
    store.add_tasks(tasks(2))
    uid = store.add_user("a", "pw").id
    first = store.next_assignment(uid)
    assert store.skip(uid, first.id)
    second = store.next_assignment(uid)
    assert second.task_external_id != first.task_external_id
    store.submit(uid, second.id, [1, 2, 3])
    back = store.next_assignment(uid)  # nothing new left: the skipped one returns
    assert (back.id, back.status) == (first.id, "open")
    assert store.user_progress(uid).done == 1


def test_concurrent_annotators_never_exceed_overlap(store: Store) -> None:
    store.update_settings(overlap=2)
    store.add_tasks(tasks(6))
    ids = [store.add_user(f"u{i}", "pw").id for i in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(ids))

    def annotate(uid: int) -> None:
        try:
            start.wait()
            while (view := store.next_assignment(uid)) is not None:
                store.submit(uid, view.id, [1, 2, 3])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=annotate, args=(uid,)) for uid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    labels = store.labels()
    per_task: dict[str, list[str]] = {}
    for lab in labels:
        per_task.setdefault(lab.task_external_id, []).append(lab.annotator)
    assert len(labels) == 12
    assert all(len(names) == len(set(names)) == 2 for names in per_task.values())


def test_concurrent_double_submit_keeps_one_label(store: Store) -> None:
    store.add_tasks(tasks(1))
    uid = store.add_user("a", "pw").id
    view = store.next_assignment(uid)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            start.wait()
            store.submit(uid, view.id, [2, 1, 3])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert [lab.revision for lab in store.labels()] == [1]


KILL_MID_SUBMIT = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.orm import Session
from rewardlab.annotate.models import Label
from rewardlab.annotate.store import Store

store = Store(sys.argv[1])
uid, aid = int(sys.argv[2]), int(sys.argv[3])

@event.listens_for(Session, "after_flush")
def die(session, _ctx):
    # The label row is written inside the open transaction; die before the commit.
    if any(isinstance(obj, Label) for obj in session.new):
        os.kill(os.getpid(), signal.SIGKILL)

store.submit(uid, aid, [1, 2, 3])
print("not reached")
"""


def test_process_killed_mid_submit_leaves_store_consistent(store: Store, db_url: str, tmp_path: Path) -> None:
    store.add_tasks(tasks(1))
    uid = store.add_user("a", "pw").id
    view = store.next_assignment(uid)
    script = tmp_path / "kill.py"
    script.write_text(textwrap.dedent(KILL_MID_SUBMIT))
    proc = subprocess.run(
        [sys.executable, str(script), db_url, str(uid), str(view.id)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    assert "not reached" not in proc.stdout
    fresh = Store(db_url)
    assert fresh.labels() == []
    assert fresh.assignment(uid, view.id).status == "open"
    if fresh.engine.dialect.name == "sqlite":
        with fresh.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    fresh.submit(uid, view.id, [1, 2, 3])  # the annotator simply submits again
    assert len(fresh.labels()) == 1
    fresh.close()
