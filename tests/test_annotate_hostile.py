"""Hostile input to the annotation app, store, import and CLI (issue 20: 3, 4, 13, 16, 17 and the 404
on skipping another's task, the BOM): each is refused with a clear 4xx or message, never a 500 or a
traceback, and the app stays up."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("jinja2")

from fastapi.testclient import TestClient  # noqa: E402

from rewardlab.annotate import auth  # noqa: E402
from rewardlab.annotate.__main__ import main  # noqa: E402
from rewardlab.annotate.app import COOKIE, LoginThrottle, create_app  # noqa: E402
from rewardlab.annotate.imports import read_tasks  # noqa: E402
from rewardlab.annotate.models import Setting  # noqa: E402
from rewardlab.annotate.records import TaskInput  # noqa: E402
from rewardlab.annotate.store import MAX_OVERLAP, Store  # noqa: E402
from rewardlab.data.types import DataError  # noqa: E402

HUGE = "9" * 30


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)
    s = Store(str(tmp_path / "hostile.db"))
    s.add_user("admin", "admin-pw", admin=True)
    s.add_user("alice", "alice-pw")
    s.add_user("bob", "bob-pw")
    s.add_tasks([TaskInput(f"prompt {i}", ["one", "two", "three"], f"q{i}") for i in range(3)])
    yield s
    s.close()


def client(store: Store, **kw) -> TestClient:
    return TestClient(create_app(store, **kw), follow_redirects=False)  # server errors raise here


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(c: TestClient, name: str, password: str, status: int = 303):
    r = c.post("/login", data={"name": name, "password": password, "csrf": csrf_of(c.get("/login").text)})
    assert r.status_code == status, r.text
    return r


def open_task(c: TestClient) -> tuple[int, str]:
    aid = int(c.get("/task/next").headers["location"].rsplit("/", 1)[1])
    return aid, c.get(f"/task/{aid}").text


# -- 3: an overlap the database cannot bind ---------------------------------------------------------------


def test_a_huge_overlap_is_refused_by_the_cli_and_the_admin_form(store: Store, tmp_path, capsys) -> None:
    db = str(tmp_path / "hostile.db")
    assert main(["config", "--overlap", HUGE, "--db", db]) == 2
    assert f"<= {MAX_OVERLAP} (--overlap)" in capsys.readouterr().err
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"prompt": "p", "responses": ["a", "b"]}\n')
    assert main(["import", str(tasks), "--overlap", HUGE, "--db", db]) == 2
    admin = client(store)
    login(admin, "admin", "admin-pw")
    token = csrf_of(admin.get("/admin").text)
    for bad in (HUGE, "0", "-1", "²", "1e3", str(MAX_OVERLAP + 1)):
        r = admin.post("/admin/settings", data={"csrf": token, "overlap": bad})
        assert r.status_code == 400 and f"from 1 to {MAX_OVERLAP}" in r.text, bad
    assert store.settings().overlap == 1
    assert main(["progress", "--db", db]) == 0 and admin.get("/admin").status_code == 200


def test_a_bad_stored_overlap_does_not_take_the_app_down(store: Store) -> None:
    with store._session(write=True) as s:  # what an older version let through
        s.merge(Setting(key="overlap", value=HUGE))
    assert store.settings().overlap == 1 and store.progress().overlap == 1
    alice = client(store)
    login(alice, "alice", "alice-pw")
    assert open_task(alice)[0] > 0
    admin = client(store)
    login(admin, "admin", "admin-pw")
    page = admin.get("/admin")
    assert page.status_code == 200
    assert admin.post("/admin/settings", data={"csrf": csrf_of(page.text), "overlap": "2"}).status_code == 303
    assert store.settings().overlap == 2


# -- 4: input that used to reach int() or the database unchecked ---------------------------------------------


@pytest.mark.parametrize("bad", ["²", "٣", "9" * 5000, "-1", " 1", "1.0"])
def test_odd_ranks_and_confidence_are_400_or_ignored(store: Store, bad: str) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    aid, html = open_task(c)
    token = csrf_of(html)
    r = c.post(f"/task/{aid}/submit", data={"csrf": token, "rank_0": bad, "rank_1": "1", "rank_2": "2"})
    assert r.status_code == 400 and "Give every response a rank" in r.text
    good = {"csrf": token, "rank_0": "1", "rank_1": "2", "rank_2": "3", "confidence": bad}
    assert c.post(f"/task/{aid}/submit", data=good).status_code == 303
    assert store.labels()[0].confidence is None


@pytest.mark.parametrize("aid", [2**63, 2**63 - 1, 10**30, 0])
def test_task_ids_beyond_the_database_are_404(store: Store, aid: int) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    _, html = open_task(c)
    token = csrf_of(html)
    assert c.get(f"/task/{aid}").status_code == 404
    data = {"csrf": token, "rank_0": "1", "rank_1": "2", "rank_2": "3"}
    assert c.post(f"/task/{aid}/submit", data=data).status_code == 404
    assert c.post(f"/task/{aid}/skip", data={"csrf": token}).status_code == 404


@pytest.mark.parametrize("cookie", ["é.x", "\u2603.\u2603", "a.b.c", "%%%.%%%", "eyJ1aWQiOiJ4In0.AAAA", "."])
def test_any_session_cookie_before_login_is_ignored(store: Store, cookie: str) -> None:
    c = client(store)
    headers = {"Cookie": f"{COOKIE}={cookie}".encode()}
    assert c.get("/login", headers=headers).status_code == 200
    assert c.get("/task/next", headers=headers).headers["location"] == "/login"
    r = c.post("/login", headers=headers, data={"name": "alice", "password": "alice-pw", "csrf": "é"})
    assert r.status_code == 403


def test_a_non_ascii_csrf_token_is_refused_not_a_crash(store: Store) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    aid, _ = open_task(c)
    r = c.post(f"/task/{aid}/submit", data={"csrf": "é", "rank_0": "1", "rank_1": "2", "rank_2": "3"})
    assert r.status_code == 403


# -- 13: throttled sign-in, sign-out revokes ---------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_sign_ins_are_throttled_per_name_then_released(store: Store) -> None:
    clock = FakeClock()
    c = client(store, throttle=LoginThrottle(free=3, free_per_address=100, base_s=10, clock=clock))
    for _ in range(3):
        login(c, "alice", "wrong", status=401)
    r = login(c, "alice", "alice-pw", status=429)  # locked: even the right password waits
    assert "Too many failed sign-ins" in r.text and int(r.headers["retry-after"]) >= 10
    login(c, "bob", "bob-pw")  # another name is not locked
    clock.now += 11
    login(c, "alice", "wrong", status=401)  # one more failure doubles the wait
    clock.now += 11
    assert login(c, "alice", "alice-pw", status=429).headers["retry-after"] == "10"
    clock.now += 10
    login(c, "alice", "alice-pw")
    login(client(store, throttle=LoginThrottle(clock=clock)), "alice", "wrong", status=401)


def test_failed_sign_ins_are_throttled_per_address_across_names(store: Store) -> None:
    c = client(store, throttle=LoginThrottle(free=100, free_per_address=4, clock=FakeClock()))
    for name in ("a1", "a2", "a3", "a4"):
        login(c, name, "guess", status=401)
    login(c, "alice", "alice-pw", status=429)


def test_the_throttle_forgets_the_oldest_names_beyond_its_capacity() -> None:
    t = LoginThrottle(free=1, capacity=10, clock=FakeClock())
    for i in range(1000):
        t.failed(f"user{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(t._failures) == 10


def test_sign_out_revokes_a_copied_cookie(store: Store) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    _, html = open_task(c)
    copied = c.cookies[COOKIE]
    thief = client(store)
    thief.cookies.set(COOKIE, copied)
    assert thief.get("/tasks").status_code == 200
    assert c.post("/logout", data={"csrf": csrf_of(html)}).headers["location"] == "/login"
    assert thief.get("/tasks").headers["location"] == "/login"
    login(c, "alice", "alice-pw")  # signing in again works
    assert c.get("/tasks").status_code == 200


# -- also noticed: skipping another annotator's task ------------------------------------------------------


def test_skipping_another_annotators_task_is_404(store: Store) -> None:
    alice, bob = client(store), client(store)
    login(alice, "alice", "alice-pw")
    login(bob, "bob", "bob-pw")
    aid, _ = open_task(alice)
    _, bob_html = open_task(bob)
    r = bob.post(f"/task/{aid}/skip", data={"csrf": csrf_of(bob_html)})
    assert r.status_code == 404 and "no such task" in r.text
    alice_id = next(u.id for u in store.users() if u.name == "alice")
    assert store.assignment(alice_id, aid).status == "open"


# -- 16 and the BOM: import ---------------------------------------------------------------------------------


SAME = "'responses'[0] and 'responses'[2] are identical"
EMPTY_ROLE = "'prompt'[0] has an empty 'role'"
CHAT = [{"role": "assistant", "content": "a"}]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ({"prompt": "p", "responses": ["same", "other", "same"]}, SAME),
        ({"prompt": "p", "candidates": [{"text": "x"}] * 2}, "'candidates'[0] and 'candidates'[1]"),
        ({"prompt": [{"role": "", "content": "hi"}], "responses": ["a", "b"]}, EMPTY_ROLE),
        ({"prompt": [{"role": "user", "content": " "}], "responses": ["a", "b"]}, "an empty 'content'"),
        ({"prompt": "p", "responses": ["a", [{"role": "assistant", "content": ""}]]}, "'responses'[1][0]"),
        ({"prompt": "p", "responses": [CHAT, CHAT]}, "'responses'[0] and 'responses'[1] are identical"),
    ],
)
def test_import_refuses_degenerate_tasks_naming_file_and_line(tmp_path: Path, row: dict, says: str) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"prompt": "fine", "responses": ["a", "b"]}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as err:
        read_tasks(path)
    assert str(err.value).startswith(f"{path}:2: ") and says in str(err.value)


def test_import_accepts_a_utf8_bom_like_training(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "p", "responses": ["a", "b"]}).encode() + b"\n")
    (task,) = read_tasks(path)
    assert task.prompt == "p" and task.responses == ["a", "b"]


# -- 17: a closed pipe ---------------------------------------------------------------------------------------


def test_progress_into_a_closed_pipe_prints_no_traceback(store: Store, tmp_path: Path) -> None:
    for i in range(300):  # enough lines that the output does not fit in what `head -1` reads
        store.add_user(f"annotator{i:03d}", "pw")
    cmd = [sys.executable, "-m", "rewardlab.annotate", "progress", "--db", str(tmp_path / "hostile.db")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that has already exited
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
