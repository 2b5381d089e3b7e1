"""The reward server's resource bounds and refusals (issue 20: 6, 8, 9, 11, 14), on a real uvicorn server
on loopback where it matters: silent, slow and numerous clients are dropped within a bounded time, a
request still running at the shutdown timeout gets a 503, bad flags fail before the model loads, the
schema and docs need the token, and /get_reward refuses `prompts` that do not match `query`."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from rewardlab.serve.app import ServeSettings, create_app  # noqa: E402
from rewardlab.serve.limits import uvicorn_config  # noqa: E402


@pytest.fixture(scope="module")
def scorer(tiny_backbone, tmp_path_factory):
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.scorer import Scorer

    model, encoder, card = build_reward_model(tiny_backbone("qwen2"), max_length=64)
    path = tmp_path_factory.mktemp("limits") / "tiny-rm"
    save_reward_model(model, encoder, card, path)
    return Scorer.from_pretrained(str(path), device="cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """create_app under the uvicorn config `rewardlab serve` uses (uvicorn_config), in a thread."""

    def __init__(self, scorer, **settings) -> None:
        self.settings = ServeSettings(model_id="tiny", port=free_port(), **settings)
        self.server = uvicorn.Server(
            uvicorn_config(create_app(scorer, self.settings), self.settings, "warning")
        )
        self.url = f"http://127.0.0.1:{self.settings.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.settings.port), timeout=15)


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def test_silent_slow_and_idle_clients_are_dropped_in_bounded_time(scorer) -> None:
    """A connection that sends nothing, half a request head, or a body too slowly, or that idles after
    a response, is closed within the client timeout (1 s here) plus slack, never held for ever; an
    oversized request head is refused."""
    with Served(scorer, client_timeout_s=1.0, keep_alive_s=1.0, max_header_bytes=2048) as s:
        big = s.connect()
        big.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4096)  # and more to come
        assert read_until_closed(big)[0].startswith(b"HTTP/1.1 400")
        big.close()
        silent, partial_head, slow_body, idle = (s.connect() for _ in range(4))
        partial_head.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        slow_body.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 40\r\n\r\n{"texts": '
        )
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(read_until_closed, (silent, partial_head, slow_body, idle)))
        for sock in (silent, partial_head, slow_body, idle):
            sock.close()
        (_, t_silent), (_, t_head), (body_answer, t_body), (idle_answer, t_idle) = results
        assert max(t_silent, t_head, t_body, t_idle) < 6
        assert body_answer.startswith(b"HTTP/1.1 408") and b"--client-timeout-s" in body_answer
        assert idle_answer.startswith(b"HTTP/1.1 200")
        # The server is still healthy and serves normally afterwards.
        assert httpx.post(s.url + "/score", json={"texts": ["a"]}, timeout=10).status_code == 200


def test_connections_beyond_the_cap_get_503_until_the_silent_ones_are_dropped(scorer) -> None:
    with Served(scorer, client_timeout_s=1.0, max_connections=4) as s:
        hogs = [s.connect() for _ in range(4)]
        time.sleep(0.2)  # let the server accept them
        r = httpx.post(s.url + "/score", json={"texts": ["a"]}, timeout=10)
        assert r.status_code == 503
        for h in hogs:
            read_until_closed(h)  # dropped by the client timeout
            h.close()
        assert httpx.post(s.url + "/score", json={"texts": ["a"]}, timeout=10).status_code == 200


def test_a_request_still_running_at_the_shutdown_timeout_gets_503(scorer) -> None:
    """The request waits 30 s in the micro-batcher; the shutdown timeout is 1 s: a clean 503."""
    s = Served(scorer, max_wait_ms=30_000, shutdown_timeout_s=1).__enter__()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, s.url + "/score", json={"texts": ["wait"]}, timeout=60)
        deadline = time.monotonic() + 10
        while "rewardlab_queue_texts 1" not in httpx.get(s.url + "/metrics", timeout=5).text:
            assert time.monotonic() < deadline, "the request never reached the batcher"
            time.sleep(0.02)
        started = time.monotonic()
        s.server.should_exit = True
        r = pending.result(timeout=30)
    s.thread.join(timeout=30)
    assert r.status_code == 503 and "shutting down" in r.json()["detail"]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--clip", "nan"], "--clip"),
        (["--clip", "-1"], "--clip"),
        (["--clip", "inf"], "--clip"),
        (["--max-texts", "-1"], "--max-texts"),
        (["--max-chars", "0"], "--max-chars"),
        (["--max-wait-ms", "nan"], "--max-wait-ms"),
        (["--port", "70000"], "--port"),
        (["--ensemble-rule", "max"], "--ensemble-rule"),
        (["--client-timeout-s", "0"], "--client-timeout-s"),
        (["--max-connections", "0"], "--max-connections"),
    ],
)
def test_bad_flags_fail_at_once_naming_the_flag(flags, named, monkeypatch, capsys) -> None:
    import rewardlab.serve.app as serve
    from rewardlab.cli import main

    def must_not_load(*args, **kw):
        raise AssertionError("the model was loaded before the flags were checked")

    monkeypatch.setattr(serve, "load_scorer", must_not_load)
    assert main(["serve", "no-such-model", *flags]) == 2
    err = capsys.readouterr().err
    assert f"{named} " in err and "must be" in err, err


def test_get_reward_refuses_prompts_of_another_length(scorer) -> None:
    with TestClient(create_app(scorer, ServeSettings())) as c:
        r = c.post("/get_reward", json={"query": ["a b", "c d"], "prompts": ["a"]})
        assert r.status_code == 422
        assert "prompts has 1 items but query has 2" in str(r.json()["detail"])
        ok = c.post("/get_reward", json={"query": ["a b", "c d"], "prompts": ["a", "c"]})
        assert ok.status_code == 200 and len(ok.json()["rewards"]) == 2
        assert c.post("/get_reward", json={"query": ["a b"]}).status_code == 200


def test_schema_and_docs_need_the_token_when_one_is_set(scorer, monkeypatch) -> None:
    monkeypatch.setenv("RL_DOCS_TOKEN", "s3cret")
    with TestClient(create_app(scorer, ServeSettings(token_env="RL_DOCS_TOKEN"))) as c:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
            assert c.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
        assert c.get("/health").status_code == 200
        schema = c.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
        assert "/score" in schema["paths"] and "/openapi.json" not in schema["paths"]
    monkeypatch.delenv("RL_DOCS_TOKEN")
    with TestClient(create_app(scorer, ServeSettings(token_env="RL_DOCS_TOKEN"))) as c:
        assert c.get("/openapi.json").status_code == 200 and c.get("/docs").status_code == 200
