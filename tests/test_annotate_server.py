"""The annotation app as a real uvicorn server on loopback: concurrent submits, and a kill mid-request."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from rewardlab.annotate import auth  # noqa: E402
from rewardlab.annotate.records import TaskInput  # noqa: E402
from rewardlab.annotate.store import Store  # noqa: E402


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)  # fast to create; verification reads n from the hash


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
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


def serve(db: str, port: int, log: Path) -> subprocess.Popen:
    return start(
        [sys.executable, "-m", "rewardlab.annotate", "serve", "--db", db, "--port", str(port)], port, log
    )


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def signed_in(base: str, name: str, password: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30)
    r = c.post("/login", data={"name": name, "password": password, "csrf": csrf_of(c.get("/login").text)})
    assert r.status_code == 303, r.text
    return c


def next_form(c: httpx.Client) -> tuple[int, str]:
    r = c.get("/task/next")
    assert r.status_code == 303, r.text
    aid = int(r.headers["location"].rsplit("/", 1)[1])
    return aid, csrf_of(c.get(f"/task/{aid}").text)


@pytest.fixture
def project(tmp_path: Path) -> tuple[str, Store]:
    db = str(tmp_path / "served.db")
    store = Store(db)
    store.update_settings(overlap=2)
    store.add_tasks([TaskInput(f"prompt {i}", ["a", "b", "c"], f"q{i}") for i in range(4)])
    for name in ("alice", "bob"):
        store.add_user(name, f"{name}-pw")
    return db, store


def test_two_annotators_submitting_at_once_over_http(project: tuple[str, Store], tmp_path: Path) -> None:
    db, store = project
    port = free_port()
    proc = serve(db, port, tmp_path / "server.log")
    try:
        base = f"http://127.0.0.1:{port}"
        clients = {name: signed_in(base, name, f"{name}-pw") for name in ("alice", "bob")}
        errors: list[str] = []
        barrier = threading.Barrier(2)

        def annotate(name: str) -> None:
            c = clients[name]
            for _ in range(4):
                aid, token = next_form(c)
                barrier.wait(timeout=30)  # both submit at the same moment, every round
                data = {"csrf": token, "rank_0": "1", "rank_1": "2", "rank_2": "3"}
                r = c.post(f"/task/{aid}/submit", data=data)
                if r.status_code != 303:
                    errors.append(f"{name}: {r.status_code} {r.text[:200]}")
                c.post(f"/task/{aid}/submit", data=data)  # and a double submit
                if c.get(f"/task/{aid}").status_code != 200:  # and a refresh
                    errors.append(f"{name}: refresh failed")

        threads = [threading.Thread(target=annotate, args=(n,)) for n in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        labels = store.labels()
        assert len(labels) == 8 and all(lab.revision == 1 for lab in labels)
        assert sorted((lab.task_external_id, lab.annotator) for lab in labels) == sorted(
            (f"q{i}", n) for i in range(4) for n in ("alice", "bob")
        )
        assert "all-done" in clients["alice"].get("/task/next", follow_redirects=True).text
        served_log = (tmp_path / "server.log").read_text()
        assert "rank_0" not in served_log and "alice-pw" not in served_log  # no payloads in the log
    finally:
        stop(proc)


KILLING_SERVER = """
import os, signal, sys
import uvicorn
from sqlalchemy import event
from sqlalchemy.orm import Session
from rewardlab.annotate.app import create_app
from rewardlab.annotate.models import Label
from rewardlab.annotate.store import Store

@event.listens_for(Session, "after_flush")
def die(session, _ctx):
    # The label row is written inside the open transaction: the server dies before the commit.
    if any(isinstance(obj, Label) for obj in session.new):
        os.kill(os.getpid(), signal.SIGKILL)

uvicorn.run(create_app(Store(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def test_server_killed_mid_request_leaves_the_store_consistent(
    project: tuple[str, Store], tmp_path: Path
) -> None:
    db, store = project
    script = tmp_path / "killing_server.py"
    script.write_text(textwrap.dedent(KILLING_SERVER))
    port = free_port()
    proc = start([sys.executable, str(script), db, str(port)], port, tmp_path / "killing.log")
    try:
        c = signed_in(f"http://127.0.0.1:{port}", "alice", "alice-pw")
        aid, token = next_form(c)
        with pytest.raises(httpx.TransportError):
            c.post(f"/task/{aid}/submit", data={"csrf": token, "rank_0": "1", "rank_1": "2", "rank_2": "3"})
        assert proc.wait(timeout=10) == -9
    finally:
        stop(proc)
    assert store.labels() == []
    alice = next(u for u in store.users() if u.name == "alice")
    assert store.assignment(alice.id, aid).status == "open"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    # Restarted, the same browser session carries on: the task is still there to submit.
    port = free_port()
    proc = serve(db, port, tmp_path / "server.log")
    try:
        c.base_url = f"http://127.0.0.1:{port}"
        again, token = next_form(c)
        assert again == aid
        r = c.post(f"/task/{aid}/submit", data={"csrf": token, "rank_0": "3", "rank_1": "1", "rank_2": "2"})
        assert r.status_code == 303
    finally:
        stop(proc)
    (label,) = store.labels()
    assert label.annotator == "alice" and sorted(label.ranking) == [1, 2, 3]
