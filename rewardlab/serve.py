"""The reward server: score texts over HTTP for RL loops, a drop-in for OpenRLHF's ``serve_rm.py``.

    rewardlab serve runs/rewardlab                      # http://127.0.0.1:8000, no auth
    REWARDLAB_SERVE_TOKEN=s3cret rewardlab serve runs/rewardlab --normalize --port 5000

Endpoints (docs/serving.md has the request and response bodies):
- ``POST /score``: ``texts``, or ``pairs`` of prompt/response (plain or chat messages), or chat
  ``messages`` ending with the assistant's turn; rewards in input order plus the model id.
- ``POST /get_reward``: OpenRLHF's ``{"query": [...]}`` → ``{"rewards", "scores", "extra_logs"}``.
- ``POST /score_steps``: per-step scores of a process reward model (PRM) and their aggregate; 501 for
  an outcome reward model.
- ``GET /health`` (liveness and readiness), ``GET /metrics`` (Prometheus text).

Unlike ``serve_rm.py`` it binds 127.0.0.1 by default, never logs payloads, keeps the model off the
event loop (tokenising in one worker thread, scoring in another, via `MicroBatcher`), answers bad input
with 400/413/422 rather than 500, can require a bearer token, and drains in-flight requests on
shutdown. `Scorer` stays the only inference path.

(No ``from __future__ import annotations``: FastAPI reads the route annotations, which name models
built inside `create_app`.)

`Backend` is the one place that knows what is served: a `Scorer` (texts tokenised once, in the encode
thread, then `Scorer.score_encoded`), or an `EnsembleScorer` (`EnsembleScorer.score`, its mean/min/uwo
rule chosen with ``--ensemble-rule``). A PRM (a model whose rewardlab.json names a step marker) also
answers /score_steps through `Scorer.score_steps`.
"""

import asyncio
import hmac
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.config import doc
from rewardlab.serve_batching import Metrics, MicroBatcher

log = logging.getLogger("rewardlab.serve")

TOKEN_ENV = "REWARDLAB_SERVE_TOKEN"
OPEN_PATHS = ("/health",)
ENDPOINTS = (
    "/score", "/get_reward", "/score_steps", "/v1/score/evaluation", "/health", "/metrics", "/openapi.json",
    "/docs",
)  # fmt: skip


@dataclass
class ServeSettings:
    """How `rewardlab serve` runs; each field is a flag of the same name (``max_texts`` → ``--max-texts``)."""

    host: str = doc(
        "Address to bind. 127.0.0.1 serves this machine only; 0.0.0.0 exposes the server to the network "
        "(set a token first).",
        "127.0.0.1",
    )
    port: int = doc("TCP port.", 8000)
    model_id: str = doc("Name returned as `model` in responses (empty: the model folder's name).", "")
    token_env: str = doc(
        "Environment variable holding the bearer token. When it is set and non-empty, every endpoint but "
        "/health needs `Authorization: Bearer <token>` (401 otherwise).",
        TOKEN_ENV,
    )
    max_texts: int = doc("Most texts (pairs, conversations, queries, messages) a request; more → 422.", 1024)
    max_chars: int = doc("Most characters in one text or message; longer → 422.", 100_000)
    max_body_bytes: int = doc("Largest request body in bytes; larger → 413.", 16 * 1024 * 1024)
    max_batch_tokens: int = doc(
        "Micro-batching: cut a model call once the queued requests hold this many tokens.", 16_384
    )
    max_wait_ms: float = doc(
        "Micro-batching: longest a request waits for others to share its model call (0: never wait).", 5.0
    )
    normalize: bool = doc(
        "Return (reward - reward_mean) / reward_std with the statistics saved in rewardlab.json (an "
        "ensemble standardises its members itself, as its ensemble.json says).",
        False,
    )
    clip: float | None = doc(
        "Clip returned rewards to [-CLIP, CLIP], after normalisation (empty: off).", None
    )
    ensemble_rule: str | None = doc(
        "Ensembles only: mean, min (worst case) or uwo (mean - λ·variance) (empty: ensemble.json's rule).",
        None,
    )
    ensemble_lam: float | None = doc("Ensembles only: λ of the uwo rule (empty: ensemble.json's).", None)
    shutdown_timeout_s: float = doc("On SIGTERM/SIGINT, wait this long for in-flight requests.", 30.0)
    access_log: bool = doc("Log one line per request (method, path, status; never bodies).", False)
    device: str | None = doc("cpu, cuda, cuda:1, mps (empty: best available).", None)
    bf16: bool = doc("Score under bf16 autocast (faster on GPUs; tiny accuracy cost).", False)


def reward_transform(card: Any, settings: ServeSettings) -> tuple[float, float, float | None]:
    """(shift, scale, clip) applied as clip((r - shift) / scale); checks that --normalize can work."""
    if not settings.normalize:
        return 0.0, 1.0, settings.clip
    if hasattr(card, "members"):
        raise ValueError(
            "--normalize does not apply to an ensemble: its members are standardised before they are "
            "combined when its ensemble.json has normalize: true; drop --normalize"
        )
    stats_from = getattr(card, "reward_stats_from", "")
    std = float(getattr(card, "reward_std", 0.0) or 0.0)
    if not stats_from or not std > 0:
        raise ValueError(
            "--normalize needs reward_mean/reward_std in the model's rewardlab.json, but this model has "
            f"none (reward_stats_from={stats_from!r}, reward_std={std}); train with `rewardlab train` "
            "(it records them) or drop --normalize"
        )
    return float(card.reward_mean), std, settings.clip


def _transform(raw: Sequence[float], shift: float, scale: float, clip: float | None) -> list[float]:
    out = [(r - shift) / scale for r in raw]
    return [max(-clip, min(clip, r)) for r in out] if clip is not None else out


def strip_special(text: str, tokens: Sequence[str | None]) -> str:
    """Remove pad/EOS token strings from both ends of an OpenRLHF query (the encoder adds EOS itself).

    OpenRLHF's own server calls ``str.strip(pad_token)``, which strips *characters* of the token
    string (so ``"</s>"`` also eats a trailing ``"s"``); this removes whole tokens only.
    """
    tokens = [t for t in tokens if t]
    changed = True
    while changed:
        changed = False
        for t in tokens:
            if text.endswith(t):
                text, changed = text[: -len(t)], True
            if text.startswith(t):
                text, changed = text[len(t) :], True
    return text


@dataclass
class Backend:
    """What is served, seen from the server: how to prepare one input, its token cost, how to score."""

    prepare: Callable[[Any, Any], Any]
    """(prompt, response) → an item; runs in the encode thread and raises on input the model cannot take."""
    cost: Callable[[Any], int]
    """An item's share of the micro-batch token budget."""
    score: Callable[[list[Any]], list[float]]
    """Rewards of many items in one call; runs in the model thread."""
    tokenizer: Any
    card: Any
    kind: str


def backend_for(scorer: Any, settings: ServeSettings) -> Backend:
    """The `Backend` of a `Scorer` or an `EnsembleScorer` (the ensemble rule may be overridden)."""
    if hasattr(scorer, "scorers"):  # EnsembleScorer: its own score() standardises and combines members
        if settings.ensemble_rule or settings.ensemble_lam is not None:
            scorer = scorer.with_rule(settings.ensemble_rule or scorer.card.rule, settings.ensemble_lam)
        first = scorer.scorers[0].encoder

        def prepare(prompt: Any, response: Any) -> tuple[Any, Any, int, bool]:
            encoded = first.encode(prompt, response)
            return prompt, response, len(encoded.input_ids), encoded.truncated

        def score(items: list[tuple[Any, Any, int]]) -> list[float]:
            return scorer.score([i[0] for i in items], [i[1] for i in items])

        kind = f"ensemble of {len(scorer.scorers)} ({scorer.card.rule})"
        return Backend(prepare, lambda i: i[2], score, first.tokenizer, scorer.card, kind)
    if settings.ensemble_rule or settings.ensemble_lam is not None:
        raise ValueError("--ensemble-rule/--ensemble-lam apply to ensembles only; this is a single model")
    card = getattr(scorer, "card", None)
    kind = "process reward model" if getattr(card, "step_marker", "") else "reward model"
    return Backend(
        scorer.encoder.encode, lambda e: len(e.input_ids), scorer.score_encoded, scorer.encoder.tokenizer,
        card, kind,
    )  # fmt: skip


def create_app(scorer: Any, settings: ServeSettings | None = None) -> Any:
    """The FastAPI app serving `scorer`: a `Scorer` or an `EnsembleScorer`, already loaded."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from rewardlab.serve_schema import api_models, validation_response

    settings = settings or ServeSettings()
    m = api_models(settings)
    backend = backend_for(scorer, settings)
    shift, scale, clip = reward_transform(backend.card, settings)
    normalized = settings.normalize or bool(getattr(backend.card, "normalize", False))
    token = os.environ.get(settings.token_env, "") if settings.token_env else ""
    model_id = settings.model_id or "rewardlab"
    metrics = Metrics()
    batcher = MicroBatcher(
        backend.score, backend.cost, settings.max_batch_tokens, settings.max_wait_ms / 1000, metrics
    )
    encode_pool = _single_thread("rewardlab-encode")

    async def lifespan(app: Any) -> Any:
        batcher.start()
        loop = asyncio.get_running_loop()
        warm = await loop.run_in_executor(encode_pool, backend.prepare, "", "warm-up")
        await loop.run_in_executor(batcher.executor, backend.score, [warm])
        metrics.ready = True
        log.info(
            "ready: %s %s, auth %s, normalise %s",
            backend.kind, model_id, "on" if token else "off", normalized,
        )  # fmt: skip
        try:
            yield
        finally:
            metrics.ready = False
            await batcher.close()  # uvicorn has already waited for in-flight requests; this empties the queue
            encode_pool.shutdown(wait=True)

    app = FastAPI(
        title="rewardlab reward server",
        version="1",
        lifespan=lifespan,
        description="Rewards for RL loops. POST /get_reward is OpenRLHF-compatible.",
    )
    app.state.metrics = metrics
    app.add_middleware(BodyLimitAndMetrics, max_body=settings.max_body_bytes, metrics=metrics)
    bearer = HTTPBearer(auto_error=False, description=f"Required when ${settings.token_env} is set.")

    def require_token(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if not token:
            return
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(
                401,
                "missing or wrong bearer token (send Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Any, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    async def encode(prompts: Sequence[Any], responses: Sequence[Any]) -> list[Any]:
        def run() -> list[Any]:
            return [backend.prepare(p, r) for p, r in zip(prompts, responses, strict=True)]

        try:
            return await asyncio.get_running_loop().run_in_executor(encode_pool, run)
        except Exception as e:  # e.g. a chat template that rejects the roles' order: the input's fault
            problem = {"loc": ["body"], "msg": f"cannot encode the input: {e}", "type": "value_error"}
            raise HTTPException(422, [problem]) from None

    async def rewards_for(
        prompts: Sequence[Any], responses: Sequence[Any], stats: list | None = None
    ) -> tuple[list[float], list[float]]:
        """(raw, returned) rewards; `stats` collects each item's (truncated, num_tokens) when given."""
        encoded = await encode(prompts, responses)
        if stats is not None:
            stats.extend(_item_stats(e) for e in encoded)
        try:
            raw = await batcher.submit(encoded)
        except RuntimeError as e:
            raise HTTPException(503, str(e)) from None
        return raw, _transform(raw, shift, scale, clip)

    auth = [Depends(require_token)]
    problems = {c: {"model": m.Problem} for c in (400, 401, 413, 503)}

    @app.post("/score", response_model=m.ScoreResponse, dependencies=auth, responses=problems)
    async def score(body: m.ScoreRequest) -> Any:  # type: ignore[name-defined]
        """Rewards for texts, prompt/response pairs or conversations, in input order."""
        prompts, responses = body.inputs()
        _, rewards = await rewards_for(prompts, responses)
        return {"rewards": rewards, "model": model_id, "normalized": normalized}

    @app.post("/get_reward", response_model=m.GetRewardResponse, dependencies=auth, responses=problems)
    async def get_reward(body: m.GetRewardRequest) -> Any:  # type: ignore[name-defined]
        """OpenRLHF's remote reward API: `query` holds prompt + response texts (special tokens allowed)."""
        from rewardlab.integrations.openrlhf import split_queries

        encoder = scorer.encoder if hasattr(scorer, "encoder") else scorer.scorers[0].encoder
        layout = encoder.layout_name
        prompts, queries = split_queries(backend.tokenizer, layout, body.query, body.prompts)
        stats: list[tuple[bool, int]] = []
        raw, rewards = await rewards_for(prompts, queries, stats)
        extra_logs = {
            "raw_reward": raw,
            "truncated": [float(t) for t, _ in stats],  # floats: OpenRLHF averages extra_logs as metrics
            "num_tokens": [float(n) for _, n in stats],
        }
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra_logs}

    from rewardlab.integrations.llamafactory import router as llamafactory_router

    app.include_router(llamafactory_router(rewards_for, model_id, settings, auth))

    @app.post(
        "/score_steps",
        response_model=m.StepsResponse,
        dependencies=auth,
        responses={**problems, 501: {"model": m.Problem}},
        include_in_schema=backend.kind == "process reward model",  # for other models it only answers 501
    )
    async def score_steps(body: m.StepsRequest) -> Any:  # type: ignore[name-defined]
        """Per-step P(correct) of a process reward model (PRM) and their aggregate per solution.

        Probabilities are not normalised or clipped; a step lost to truncation scores null.
        """
        if backend.kind != "process reward model":
            raise HTTPException(
                501,
                f"model {model_id!r} is an outcome {backend.kind}: it scores whole responses (use /score); "
                "/score_steps needs a process reward model (rewardlab.json with a step_marker)",
            )
        from rewardlab.prm import aggregate

        prompts = [item.prompt for item in body.items]
        steps = [item.steps for item in body.items]
        loop = asyncio.get_running_loop()
        per_step = await loop.run_in_executor(batcher.executor, scorer.score_steps, prompts, steps)
        rewards = [_finite(aggregate(s, body.aggregate)) for s in per_step]
        step_rewards = [[_finite(p) for p in s] for s in per_step]
        return {"step_rewards": step_rewards, "rewards": rewards, "model": model_id}

    @app.get("/health", response_model=m.Health, responses={503: {"model": m.Health}})
    async def health() -> Any:
        """Liveness (this answers) and readiness (the model is loaded and warmed up)."""
        ready = metrics.ready
        body = {
            "status": "ok" if ready else "unavailable",
            "ready": ready,
            "model": model_id,
            "kind": backend.kind,
        }
        return body if ready else JSONResponse(body, status_code=503)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        dependencies=auth,
        responses={401: {"model": m.Problem, "content": {"application/json": {}}}},
    )
    async def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests, latency, batch sizes, queue depth."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def _item_stats(item: Any) -> tuple[bool, int]:
    """(truncated, num_tokens) of a prepared item: an `Encoded`, or an ensemble's (p, r, n, truncated)."""
    if hasattr(item, "input_ids"):
        return bool(item.truncated), len(item.input_ids)
    return bool(item[3]), int(item[2])


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def _single_thread(name: str) -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(1, thread_name_prefix=name)


class BodyLimitAndMetrics:
    """ASGI middleware: refuse bodies over the limit with 413, and time and count every request."""

    def __init__(self, app: Any, max_body: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        status = 500
        self.metrics.in_flight += 1

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await _send_json(
                    send_and_record,
                    413,
                    {
                        "detail": f"request body is larger than {self.max_body} bytes, this server's limit "
                        "(rewardlab serve --max-body-bytes); split the request"
                    },
                )
                return
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_and_record)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)

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


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def load_scorer(model: str | Path, settings: ServeSettings) -> Any:
    """A `Scorer` for a reward-model folder, an `EnsembleScorer` for an ensemble folder."""
    from rewardlab.ensemble import load_scorer as load

    return load(model, device=settings.device, bf16=settings.bf16)


def run(model: str | Path, settings: ServeSettings | None = None) -> None:
    """Load the model and serve it with uvicorn until SIGINT/SIGTERM (then drain and exit)."""
    import uvicorn

    settings = settings or ServeSettings()
    if not settings.model_id:
        settings.model_id = Path(model).resolve().name
    scorer = load_scorer(model, settings)
    app = create_app(scorer, settings)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        auth = "a bearer token is required" if os.environ.get(settings.token_env) else "NO token is set"
        log.warning("binding %s: reachable from other machines, and %s", settings.host, auth)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(math.ceil(settings.shutdown_timeout_s)),
        log_level="info",
    )
