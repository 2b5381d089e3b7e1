"""No acknowledged ranking is lost when the annotation server is killed (-9) in the middle of many
concurrent submits, and the store stays consistent: the guarantee docs/reliability.md states.

Four annotators submit as fast as they can against a real `rewardlab annotate serve` on loopback
(SQLite); once 20 submits have been acknowledged (303) the server gets SIGKILL while others are in
flight. Then: every acknowledged ranking is in the database exactly as sent, an assignment is done
if and only if it has a label, SQLite's integrity check passes; and after a restart the annotators
finish every task with exactly one label per (task, annotator).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from rewardlab.annotate import auth  # noqa: E402
from rewardlab.annotate.models import Assignment, Label  # noqa: E402
from rewardlab.annotate.records import TaskInput  # noqa: E402
from rewardlab.annotate.store import Store  # noqa: E402

NAMES = [f"ann{i}" for i in range(4)]
TASKS, OVERLAP = 30, 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`rewardlab annotate serve` in a child process on a free loopback port, once it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "rewardlab.annotate", "serve", "--db", db, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def signed_in(base: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30)
    form = {"name": name, "password": f"{name}-pw", "csrf": csrf_of(c.get("/login").text)}
    assert c.post("/login", data=form).status_code == 303
    return c


def ranks_for(aid: int) -> list[int]:
    return [[1, 2, 3], [2, 3, 1], [3, 1, 2]][aid % 3]


def annotate(base: str, name: str, acked: list, stop_after: int | None, done: threading.Event) -> None:
    """Claim and submit until there is nothing left or the server is gone; record each 303."""
    try:
        c = signed_in(base, name)
        while not done.is_set():
            r = c.get("/task/next")
            if r.status_code != 303:  # all done
                return
            aid = int(r.headers["location"].rsplit("/", 1)[1])
            token = csrf_of(c.get(f"/task/{aid}").text)
            data = {"csrf": token, **{f"rank_{d}": str(x) for d, x in enumerate(ranks_for(aid))}}
            if c.post(f"/task/{aid}/submit", data=data).status_code == 303:
                acked.append((name, aid))
                if stop_after is not None and len(acked) >= stop_after:
                    done.set()
    except httpx.TransportError:
        return  # the server was killed under this client


def run_annotators(
    base: str, acked: list, stop_after: int | None = None
) -> tuple[threading.Event, list[threading.Thread]]:
    done = threading.Event()
    threads = [threading.Thread(target=annotate, args=(base, n, acked, stop_after, done)) for n in NAMES]
    for t in threads:
        t.start()
    return done, threads


def test_kill_9_during_concurrent_submits_loses_no_acknowledged_label(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)
    db = str(tmp_path / "kill.db")
    store = Store(db)
    store.update_settings(overlap=OVERLAP)
    store.add_tasks([TaskInput(f"prompt {i}", ["a", "b", "c"], f"q{i}") for i in range(TASKS)])
    for name in NAMES:
        store.add_user(name, f"{name}-pw")
    proc, base = serve(db, tmp_path / "server.log")
    acked: list[tuple[str, int]] = []
    try:
        done, threads = run_annotators(base, acked, stop_after=20)
        assert done.wait(timeout=120), f"only {len(acked)} submits acknowledged"
        proc.send_signal(signal.SIGKILL)  # the other annotators' requests are in flight
        assert proc.wait(timeout=10) == -signal.SIGKILL
        for t in threads:
            t.join(timeout=30)
    finally:
        stop(proc)
    users = {u.name: u.id for u in store.users()}
    for name, aid in set(acked):
        view = store.assignment(users[name], aid)
        assert view is not None and view.status == "done", (name, aid)
        assert view.ranks == ranks_for(aid), (name, aid)
    with Session(store.engine) as s:
        labelled = set(s.scalars(select(Label.assignment_id)))
        done_ids = set(s.scalars(select(Assignment.id).where(Assignment.status == "done")))
    assert labelled == done_ids  # no label without its done assignment, nor the reverse
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"

    proc, base = serve(db, tmp_path / "server2.log")  # restarted, the annotators finish the project
    try:
        _, threads = run_annotators(base, [])
        for t in threads:
            t.join(timeout=120)
    finally:
        stop(proc)
    labels = store.labels()
    pairs = [(lab.task_external_id, lab.annotator) for lab in labels]
    assert len(pairs) == len(set(pairs)) == TASKS * OVERLAP
    sys.stdout.write(
        f"\nkill -9: {len(set(acked))} acknowledged before the kill, all kept; {len(labels)} labels\n"
    )
