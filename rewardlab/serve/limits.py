"""What bounds the reward server's resources (rewardlab/serve.py): per connection, per request, overall.

A reward server reachable from a network (``--host 0.0.0.0``) must not let a slow or silent client
hold a connection for ever, nor let many of them exhaust the process. uvicorn bounds idle keep-alive
connections and the number of connections plus requests (``limit_concurrency``), but it waits for ever
for a request head that never comes. So:

- `timed_h11_protocol` is uvicorn's h11 protocol with one more timer: a connection must deliver a
  complete request head within ``--client-timeout-s`` of connecting (or of starting its next request),
  else it is closed;
- `BodyLimitAndMetrics` (ASGI middleware) reads the body against the same deadline (408 when it is
  too slow) and ``--max-body-bytes`` (413), times and counts every request for /metrics, and answers
  a request still running when the shutdown timeout cancels it with a 503, not uvicorn's 500;
- `uvicorn_config` passes the rest to uvicorn: ``--keep-alive-s`` (timeout_keep_alive),
  ``--max-connections`` (limit_concurrency: beyond it a request is answered 503 at once) and
  ``--max-header-bytes`` (h11_max_incomplete_event_size).

Tests: tests/test_serve_limits.py, against a real uvicorn server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from rewardlab.serve.batching import Metrics

ENDPOINTS = (
    "/score", "/get_reward", "/score_steps", "/v1/score/evaluation", "/health", "/metrics", "/openapi.json",
    "/docs", "/redoc",
)  # fmt: skip
"""Paths counted by name in /metrics; every other path is counted as "other"."""


def timed_h11_protocol(head_timeout_s: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request head is not complete in time."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        """The deadline runs while the connection waits for a request head; a running request (the
        app then bounds its body) and an idle keep-alive connection (uvicorn's own timer) stop it."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._between_requests():
                self._arm()
            super().data_received(data)
            if not self._between_requests():
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expire(self) -> None:
            self._head_timer = None
            if self._between_requests() and not self.transport.is_closing():
                try:
                    self.conn.send(h11.ConnectionClosed())
                except h11.LocalProtocolError:
                    pass
                self.transport.close()

    return TimedH11Protocol


def uvicorn_config(app: Any, settings: Any, log_level: str = "info") -> Any:
    """The uvicorn.Config `rewardlab serve` runs `app` with, every resource bound taken from `settings`."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=timed_h11_protocol(settings.client_timeout_s),
        access_log=settings.access_log,
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]  # any number of seconds
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=int(math.ceil(settings.shutdown_timeout_s)),
        log_level=log_level,
    )


class BodyLimitAndMetrics:
    """ASGI middleware: refuse bodies over the limit (413) or too slow (408), time and count every
    request, and answer a request cancelled by the shutdown timeout with 503."""

    def __init__(
        self, app: Any, max_body: int, metrics: Metrics, body_timeout_s: float | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        status, responded = 500, False
        self.metrics.in_flight += 1

        async def send_and_record(message: dict) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
            await send(message)

        try:
            await self._handle(scope, receive, send_and_record)
        except asyncio.CancelledError:
            if responded:  # the response had started: nothing clean can be sent any more
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            detail = "the server is shutting down and this request ran past --shutdown-timeout-s; retry"
            await _send_json(send_and_record, 503, {"detail": detail}, [(b"retry-after", b"1")])
        finally:
            self.metrics.in_flight -= 1
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)

    async def _handle(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            body = await asyncio.wait_for(self._read_body(scope, receive), self.body_timeout_s)
        except asyncio.TimeoutError:
            detail = (
                f"the request body did not arrive within {self.body_timeout_s:g} s "
                "(rewardlab serve --client-timeout-s)"
            )
            return await _send_json(send, 408, {"detail": detail}, [(b"connection", b"close")])
        if body is None:
            detail = (
                f"request body is larger than {self.max_body} bytes, this server's limit "
                "(rewardlab serve --max-body-bytes); split the request"
            )
            return await _send_json(send, 413, {"detail": detail})
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, scope: dict, receive: Any) -> bytes | None:
        """The whole body, or None once it exceeds the limit (checked on Content-Length first)."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _send_json(send: Any, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": data})
