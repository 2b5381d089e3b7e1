"""schemathesis over the annotation app (in-process, on SQLite): no generated request gets a 500.

The app serves no OpenAPI schema (its pages are HTML forms read by hand, so a bad CSRF token is a 403
page rather than FastAPI's 422), so the schema below describes its routes, forms, query and cookie by
hand. Each generated request goes out as one of four callers: anonymous (with whatever session cookie
was generated), signed in as an annotator or as the admin with their valid cookie and CSRF token, or
signed in with a generated CSRF token; schemathesis generates valid and invalid values (positive and
negative modes). The default run has a small budget; the slow-marked run a long one
(REWARDLAB_ANNOTATE_FUZZ_EXAMPLES). docs/reliability.md reports the counts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from rewardlab.annotate import auth  # noqa: E402
from rewardlab.annotate.app import COOKIE, create_app  # noqa: E402
from rewardlab.annotate.records import TaskInput  # noqa: E402
from rewardlab.annotate.store import Store  # noqa: E402

TEXT = {"type": "string"}


def _form(*fields: str) -> dict:
    props = {f: TEXT for f in fields}
    return {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": props}}},
    }


def _op(body: dict | None = None, path_id: bool = False, query: tuple[str, ...] = ()) -> dict:
    params = [{"name": COOKIE, "in": "cookie", "schema": TEXT}]
    params += [{"name": q, "in": "query", "schema": TEXT} for q in query]
    if path_id:
        params.append(
            {"name": "assignment_id", "in": "path", "required": True, "schema": {"type": "integer"}}
        )
    op = {"parameters": params, "responses": {"default": {"description": "any page"}}}
    if body:
        op["requestBody"] = body
    return op


RANKING = _form("csrf", "rank_0", "rank_1", "rank_2", "rank_3", "confidence", "note")
SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "rewardlab annotate (hand-written for fuzzing)", "version": "1"},
    "paths": {
        "/healthz": {"get": _op()},
        "/": {"get": _op()},
        "/login": {"get": _op(), "post": _op(_form("csrf", "name", "password"))},
        "/logout": {"post": _op(_form("csrf"))},
        "/task/next": {"get": _op()},
        "/task/{assignment_id}": {"get": _op(path_id=True)},
        "/task/{assignment_id}/submit": {"post": _op(RANKING, path_id=True)},
        "/task/{assignment_id}/skip": {"post": _op(_form("csrf"), path_id=True)},
        "/tasks": {"get": _op()},
        "/admin": {"get": _op()},
        "/admin/settings": {"post": _op(_form("csrf", "overlap", "allow_ties"))},
        "/admin/export.jsonl": {"get": _op(query=("aggregate",))},
    },
}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)
    store = Store(str(tmp_path / "fuzz.db"))
    store.add_user("admin", "admin-pw", admin=True)
    store.add_user("alice", "alice-pw")
    store.add_tasks([TaskInput(f"prompt {i}", ["a", "b", "c"], f"q{i}") for i in range(5)])
    app = create_app(store)
    callers = {"anonymous": None}
    for name in ("alice", "admin"):
        c = TestClient(app, follow_redirects=False)
        form = {"name": name, "password": f"{name}-pw", "csrf": csrf_of(c.get("/login").text)}
        assert c.post("/login", data=form).status_code == 303
        callers[name] = (c.cookies[COOKIE], csrf_of(c.get("/tasks").text))
        callers[name + " with a generated token"] = (c.cookies[COOKIE], None)
    yield app, callers
    store.close()


def fuzz(app, callers: dict, examples: int) -> int:
    """Every operation, positive and negative data, each request as each kind of caller; returns the
    number of requests sent. A 5xx, or an exception out of the app, fails the test."""
    schema = schemathesis.openapi.from_dict(SCHEMA)
    schema.app = app
    sent = 0
    for result in schema.get_all_operations():
        op = result.ok()
        cases = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))

        @settings(
            max_examples=examples, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(case=cases, who=st.sampled_from(sorted(callers)))
        def check(case, who: str) -> None:
            nonlocal sent
            if callers[who] is not None:
                cookie, csrf = callers[who]
                case.cookies = {**(case.cookies or {}), COOKIE: cookie}
                if csrf is not None and isinstance(case.body, dict):
                    case.body = {**case.body, "csrf": csrf}
            response = case.call()
            sent += 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} as {who}: {response.text}"
            )

        check()
    return sent


def test_annotation_app_fuzz_quick(project, capsys) -> None:
    app, callers = project
    examples = int(os.environ.get("REWARDLAB_ANNOTATE_FUZZ_QUICK_EXAMPLES", "25"))
    sent = fuzz(app, callers, examples)
    assert sent >= 12 * min(examples, 5)
    with capsys.disabled():
        print(f"\nannotation app fuzz (quick): {sent} requests, no 5xx")  # noqa: T201


@pytest.mark.slow
def test_annotation_app_fuzz_finds_no_server_errors(project, capsys) -> None:
    app, callers = project
    sent = fuzz(app, callers, int(os.environ.get("REWARDLAB_ANNOTATE_FUZZ_EXAMPLES", "300")))
    with capsys.disabled():
        print(f"\nannotation app fuzz: {sent} requests, no 5xx")  # noqa: T201
