"""The annotation web app in-process: sign-in, ranking, CSRF, escaping, and who may see what."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("jinja2")

from fastapi.testclient import TestClient  # noqa: E402

from rewardlab.annotate import auth  # noqa: E402
from rewardlab.annotate.app import COOKIE, create_app  # noqa: E402
from rewardlab.annotate.records import TaskInput  # noqa: E402
from rewardlab.annotate.store import Store  # noqa: E402

XSS = "<script>alert('pwned')</script>"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)  # fast to create; verification reads n from the hash
    s = Store(str(tmp_path / "app.db"))
    s.add_user("admin", "admin-pw", admin=True)
    s.add_user("alice", "alice-pw")
    s.add_user("bob", "bob-pw")
    s.add_tasks(
        [
            TaskInput("Which is right?", ["four", "five", XSS], "q0"),
            TaskInput([{"role": "user", "content": "Say hi"}], ["hi", "hello"], "q1"),
        ]
    )
    yield s
    s.close()


def client(store: Store) -> TestClient:
    return TestClient(create_app(store), follow_redirects=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(c: TestClient, name: str, password: str) -> None:
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"name": name, "password": password, "csrf": token})
    assert r.status_code == 303, r.text


def open_task(c: TestClient) -> tuple[int, str]:
    r = c.get("/task/next")
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert page.status_code == 200
    return int(r.headers["location"].rsplit("/", 1)[1]), page.text


def test_sign_in_rank_and_submit(store: Store) -> None:
    c = client(store)
    assert c.get("/task/next").headers["location"] == "/login"
    login(c, "alice", "alice-pw")
    aid, html = open_task(c)
    assert "Response A" in html and 'name="rank_2"' in html and "/static/rank.js" in html
    r = c.post(
        f"/task/{aid}/submit",
        data={
            "csrf": csrf_of(html),
            "rank_0": "2",
            "rank_1": "1",
            "rank_2": "3",
            "confidence": "4",
            "note": " sure ",
        },
    )
    assert (r.status_code, r.headers["location"]) == (303, "/task/next")
    (label,) = store.labels()
    alice_id = next(u.id for u in store.users() if u.name == "alice")
    view = store.assignment(alice_id, aid)
    assert view.ranks == [2, 1, 3]  # stored in original order, shown back in this annotator's order
    assert (label.annotator, label.confidence, label.note) == ("alice", 4, "sure")
    # A re-post of the same form (double click, back-and-resubmit) leaves one label, unchanged.
    c.post(
        f"/task/{aid}/submit",
        data={
            "csrf": csrf_of(html),
            "rank_0": "2",
            "rank_1": "1",
            "rank_2": "3",
            "confidence": "4",
            "note": "sure",
        },
    )
    assert [lab.revision for lab in store.labels()] == [1]
    # The page shows progress and the next task; "My tasks" lists the done one.
    _, html2 = open_task(c)
    assert re.search(r"Done <b>1</b>", html2)
    assert "done" in c.get("/tasks").text


def test_skip_and_come_back(store: Store) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    first, html = open_task(c)
    r = c.post(f"/task/{first}/skip", data={"csrf": csrf_of(html), "rank_0": ""})  # the form's skip button
    assert (r.status_code, r.headers["location"]) == (303, "/task/next")
    second, html = open_task(c)
    assert second != first and "skipped 1" in html
    c.post(f"/task/{second}/submit", data={"csrf": csrf_of(html), "rank_0": "1", "rank_1": "2"})
    assert open_task(c)[0] == first  # nothing new left: the skipped task comes back


def test_incomplete_or_invalid_ranking_is_refused_with_a_message(store: Store) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    aid, html = open_task(c)
    r = c.post(f"/task/{aid}/submit", data={"csrf": csrf_of(html), "rank_0": "1", "rank_1": ""})
    assert r.status_code == 400 and "Give every response a rank" in r.text
    r = c.post(
        f"/task/{aid}/submit", data={"csrf": csrf_of(html), "rank_0": "1", "rank_1": "9", "rank_2": "2"}
    )
    assert r.status_code == 400 and "rank from 1 to" in r.text
    assert store.labels() == []


def test_response_text_is_escaped(store: Store) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    _, html = open_task(c)  # q0 comes first: the lowest id among untouched tasks
    assert "Which is right?" in html
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert XSS not in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/rank.js">']
    csp = c.get("/login").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_posts_without_the_csrf_token_are_refused(store: Store) -> None:
    c = client(store)
    c.get("/login")
    assert c.post("/login", data={"name": "alice", "password": "alice-pw"}).status_code == 403
    assert (
        c.post("/login", data={"name": "alice", "password": "alice-pw", "csrf": "forged"}).status_code == 403
    )
    login(c, "alice", "alice-pw")
    aid, html = open_task(c)
    r = c.post(f"/task/{aid}/submit", data={"rank_0": "1", "rank_1": "2", "rank_2": "3"})
    assert r.status_code == 403 and store.labels() == []
    # A token from another session does not work either.
    other = client(store)
    login(other, "bob", "bob-pw")
    _, bob_html = open_task(other)
    r = c.post(
        f"/task/{aid}/submit", data={"csrf": csrf_of(bob_html), "rank_0": "1", "rank_1": "2", "rank_2": "3"}
    )
    assert r.status_code == 403 and store.labels() == []


def test_wrong_password_and_forged_cookie(store: Store) -> None:
    c = client(store)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"name": "alice", "password": "nope", "csrf": token})
    assert r.status_code == 401 and "Wrong name or password" in r.text
    login(c, "alice", "alice-pw")
    cookie = c.cookies[COOKIE]
    body, mac = cookie.split(".")
    c.cookies.clear()
    c.cookies.set(COOKIE, body + "." + mac[::-1])
    assert c.get("/task/next").headers["location"] == "/login"
    c.cookies.clear()
    c.cookies.set(COOKIE, cookie)  # the genuine cookie still works
    assert c.get("/task/next").headers["location"].startswith("/task/")


def test_password_change_signs_old_sessions_out(store: Store) -> None:
    c = client(store)
    login(c, "alice", "alice-pw")
    assert c.get("/task/next").status_code == 303 and c.get("/tasks").status_code == 200
    store.set_password("alice", "new-pw")
    assert c.get("/tasks").headers["location"] == "/login"


def test_annotators_cannot_read_others_labels_or_admin_pages(store: Store) -> None:
    alice, bob = client(store), client(store)
    login(alice, "alice", "alice-pw")
    login(bob, "bob", "bob-pw")
    aid, html = open_task(alice)
    alice.post(
        f"/task/{aid}/submit", data={"csrf": csrf_of(html), "rank_0": "1", "rank_1": "2", "rank_2": "3"}
    )
    _, bob_html = open_task(bob)
    r = bob.get(f"/task/{aid}")
    assert r.status_code == 404 and "Response A" not in r.text
    r = bob.post(
        f"/task/{aid}/submit", data={"csrf": csrf_of(bob_html), "rank_0": "3", "rank_1": "2", "rank_2": "1"}
    )
    assert r.status_code == 404
    assert [lab.annotator for lab in store.labels()] == ["alice"]
    assert bob.get("/admin").status_code == 403
    assert bob.get("/admin/export.jsonl").status_code == 403
    r = bob.post("/admin/settings", data={"csrf": csrf_of(bob_html), "overlap": "5"})
    assert r.status_code == 403 and store.settings().overlap == 1
    assert client(store).get("/admin").headers["location"] == "/login"


def test_admin_sees_progress_changes_settings_and_downloads(store: Store) -> None:
    alice = client(store)
    login(alice, "alice", "alice-pw")
    aid, html = open_task(alice)
    alice.post(
        f"/task/{aid}/submit", data={"csrf": csrf_of(html), "rank_0": "1", "rank_1": "2", "rank_2": "3"}
    )
    admin = client(store)
    login(admin, "admin", "admin-pw")
    page = admin.get("/admin")
    assert page.status_code == 200 and "2 tasks · 1 rankings" in page.text
    r = admin.post("/admin/settings", data={"csrf": csrf_of(page.text), "overlap": "3"})
    assert r.status_code == 303
    assert (store.settings().overlap, store.settings().allow_ties) == (3, False)
    rows = admin.get("/admin/export.jsonl").text.splitlines()
    assert len(rows) == 1 and '"annotator": "alice"' in rows[0]
    assert admin.get("/admin/export.jsonl?aggregate=mean").status_code == 400
