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
with 400/413/422 rather than 500, can require a bearer token (the OpenAPI schema and /docs too), bounds
what slow, silent or numerous clients hold (rewardlab/serve/limits.py), and drains in-flight requests on
shutdown. Its flags are `ServeSettings` (rewardlab/serve/settings.py). `Scorer` stays the only
inference path.

`create_app` builds one `_Service` (the model, the batcher, the worker threads, the reward transform)
and one router per area over it: scoring, PRM steps, status, docs. (No ``from __future__ import
annotations``: FastAPI reads the route annotations, which name models built per app.)

`Backend` is the one place that knows what is served: a `Scorer` (texts tokenised once, in the encode
thread, then `Scorer.score_encoded`), or an `EnsembleScorer` (`EnsembleScorer.score`, its mean/min/uwo
rule chosen with ``--ensemble-rule``). A PRM (a model whose rewardlab.json names a step marker) also
answers /score_steps through `Scorer.score_steps`.
"""

import asyncio
import hmac
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.thinking import use_thinking
from rewardlab.integrations.openrlhf import strip_special
from rewardlab.serve.batching import Metrics, MicroBatcher
from rewardlab.serve.docs import docs_routes
from rewardlab.serve.kinds import apply_rule, attribute_score_fn, rule_values, split_attributes
from rewardlab.serve.limits import BodyLimitAndMetrics, uvicorn_config
from rewardlab.serve.settings import TOKEN_ENV, ServeSettings
from rewardlab.serve.transform import reward_transform, transform_rewards

__all__ = [
    "TOKEN_ENV", "Backend", "ServeSettings", "backend_for", "create_app", "load_scorer", "reward_transform",
    "run", "strip_special",
]  # fmt: skip

log = logging.getLogger("rewardlab.serve")


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
    attributes: tuple[str, ...] = ()  # a multi-attribute model's: `score` gives (reward, values) per item


def backend_for(scorer: Any, settings: ServeSettings) -> Backend:
    """The `Backend` of a `Scorer` or an `EnsembleScorer` (the ensemble rule may be overridden), or the one
    a generative judge describes itself (rewardlab.judge.JudgeScorer.serve_parts)."""
    if hasattr(scorer, "serve_parts"):
        return Backend(*scorer.serve_parts())
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
    names = tuple(getattr(card, "attributes", ()) or ())
    if names:
        return Backend(
            scorer.encoder.encode, lambda e: len(e.input_ids), attribute_score_fn(scorer),
            scorer.encoder.tokenizer, card, f"multi-attribute reward model ({', '.join(names)})", names,
        )  # fmt: skip
    return Backend(
        scorer.encoder.encode, lambda e: len(e.input_ids), scorer.score_encoded, scorer.encoder.tokenizer,
        card, kind,
    )  # fmt: skip


@dataclass
class _Service:
    """One app's state, shared by its routes: what is served, how rewards are transformed, the workers."""

    scorer: Any
    backend: Backend
    settings: ServeSettings
    metrics: Metrics
    batcher: MicroBatcher
    encode_pool: Any
    token: str
    shift: float
    scale: float
    clip: float | None
    normalized: bool
    rule: Any = None  # the --reward-fn hook (rewardlab.scoring.rules.RewardRule), or None
    thinking: Any = None  # the ThinkingStripper in effect (the flag's or the card's), or None

    @property
    def model_id(self) -> str:
        return self.settings.model_id or "rewardlab"

    async def encode(self, prompts: Sequence[Any], responses: Sequence[Any]) -> list[Any]:
        from fastapi import HTTPException

        def run() -> list[Any]:
            return [self.backend.prepare(p, r) for p, r in zip(prompts, responses, strict=True)]

        try:
            return await asyncio.get_running_loop().run_in_executor(self.encode_pool, run)
        except Exception as e:  # e.g. a chat template that rejects the roles' order: the input's fault
            problem = {"loc": ["body"], "msg": f"cannot encode the input: {e}", "type": "value_error"}
            raise HTTPException(422, [problem]) from None

    async def rewards(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        stats: list | None = None,
        extras: dict[str, list] | None = None,
    ) -> tuple[list, list]:
        """(raw rewards, served rewards) of the pairs, micro-batched with concurrent requests; `stats`
        collects each item's (truncated, num_tokens), `extras` the attributes and --reward-fn values
        (rewardlab/serve/kinds.py: the rule combines with the transformed reward; a failing hook is a 422)."""
        from fastapi import HTTPException

        encoded = await self.encode(prompts, responses)
        rule = self.rule and await rule_values(self.rule, self.encode_pool, prompts, responses)
        if stats is not None:
            stats.extend(_item_stats(e) for e in encoded)
        try:
            out = await self.batcher.submit(encoded)
        except RuntimeError as e:
            raise HTTPException(503, str(e)) from None
        raw = split_attributes(out, self.backend.attributes, extras) if self.backend.attributes else out
        failed = [i for i, r in enumerate(raw) if math.isnan(r)]  # a judge's per-item error, logged there
        if failed:
            raise HTTPException(502, f"no reward for item(s) {failed[:20]}: the judge failed on them")
        served = transform_rewards(raw, self.shift, self.scale, self.clip)
        return raw, served if rule is None else apply_rule(self.rule, served, rule, extras)


def _service(scorer: Any, settings: ServeSettings) -> _Service:
    thinking = use_thinking(scorer, settings.thinking)  # before the backend takes the encoder
    backend = backend_for(scorer, settings)
    shift, scale, clip = reward_transform(backend.card, settings)
    metrics = Metrics()
    batcher = MicroBatcher(
        backend.score, backend.cost, settings.max_batch_tokens, settings.max_wait_ms / 1000, metrics
    )
    return _Service(
        scorer=scorer,
        backend=backend,
        settings=settings,
        metrics=metrics,
        batcher=batcher,
        encode_pool=_single_thread("rewardlab-encode"),
        token=os.environ.get(settings.token_env, "") if settings.token_env else "",
        shift=shift,
        scale=scale,
        clip=clip,
        normalized=settings.normalize or bool(getattr(backend.card, "normalize", False)),
        rule=settings.rules.load(),
        thinking=thinking,
    )


def create_app(scorer: Any, settings: ServeSettings | None = None) -> Any:
    """The FastAPI app serving `scorer`: a `Scorer` or an `EnsembleScorer`, already loaded."""
    from fastapi import Depends, FastAPI
    from fastapi.exceptions import RequestValidationError

    from rewardlab.serve.schema import api_models, validation_response

    settings = settings or ServeSettings()
    svc = _service(scorer, settings)
    m = api_models(settings)
    app = FastAPI(
        title="rewardlab reward server",
        version="1",
        lifespan=_lifespan(svc),
        description="Rewards for RL loops. POST /get_reward is OpenRLHF-compatible.",
        docs_url=None,  # served by serve/docs.py, behind the token like every other endpoint
        redoc_url=None,
        openapi_url=None,
    )
    app.state.metrics = svc.metrics
    app.add_middleware(
        BodyLimitAndMetrics,
        max_body=settings.max_body_bytes,
        metrics=svc.metrics,
        body_timeout_s=settings.client_timeout_s,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Any, exc: RequestValidationError) -> Any:
        return validation_response(exc.errors())

    auth = [Depends(_token_check(svc))]
    app.include_router(_scoring_routes(svc, m, auth))
    app.include_router(_steps_route(svc, m, auth))
    app.include_router(_status_routes(svc, m, auth))
    app.include_router(docs_routes(app, auth))
    from rewardlab.integrations.llamafactory import router as llamafactory_router

    app.include_router(llamafactory_router(svc.rewards, svc.model_id, settings, auth))
    return app


def _lifespan(svc: _Service) -> Callable[[Any], Any]:
    """Start the batcher and warm the model up before serving; on shutdown, empty the queue."""

    async def lifespan(app: Any) -> Any:
        svc.batcher.start()
        loop = asyncio.get_running_loop()
        warm = await loop.run_in_executor(svc.encode_pool, svc.backend.prepare, "", "warm-up")
        if svc.thinking is not None:
            svc.thinking.reset()  # the warm-up is not a response to count
        await loop.run_in_executor(svc.batcher.executor, svc.backend.score, [warm])
        svc.metrics.ready = True
        log.info(
            "ready: %s %s, auth %s, normalise %s",
            svc.backend.kind, svc.model_id, "on" if svc.token else "off", svc.normalized,
        )  # fmt: skip
        try:
            yield
        finally:
            svc.metrics.ready = False
            if svc.thinking is not None:
                log.info(svc.thinking.line())
            await (
                svc.batcher.close()
            )  # uvicorn has already waited for in-flight requests; this empties the queue
            svc.encode_pool.shutdown(wait=True)

    return lifespan


def _token_check(svc: _Service) -> Callable[..., None]:
    """The dependency every endpoint but /health carries: 401 unless the bearer token matches."""
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description=f"Required when ${svc.settings.token_env} is set.")

    def require_token(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if not svc.token:
            return
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), svc.token.encode()):
            raise HTTPException(
                401,
                "missing or wrong bearer token (send Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token


def _scoring_routes(svc: _Service, m: Any, auth: list) -> Any:
    """POST /score and OpenRLHF's POST /get_reward."""
    from fastapi import APIRouter

    router = APIRouter()
    problems = {c: {"model": m.Problem} for c in (400, 401, 408, 413, 503)}

    @router.post("/score", response_model=m.ScoreResponse, dependencies=auth, responses=problems)
    async def score(body: m.ScoreRequest) -> Any:  # type: ignore[name-defined]
        """Rewards for texts, prompt/response pairs or conversations, in input order."""
        prompts, responses = body.inputs()
        _, rewards = await svc.rewards(prompts, responses)
        return {"rewards": rewards, "model": svc.model_id, "normalized": svc.normalized}

    @router.post("/get_reward", response_model=m.GetRewardResponse, dependencies=auth, responses=problems)
    async def get_reward(body: m.GetRewardRequest) -> Any:  # type: ignore[name-defined]
        """OpenRLHF's remote reward API: `query` holds prompt + response texts (special tokens allowed)."""
        from rewardlab.integrations.openrlhf import split_queries

        scorer = svc.scorer
        encoder = scorer.encoder if hasattr(scorer, "encoder") else scorer.scorers[0].encoder
        # lengths of prompts and query were checked by the schema (422 otherwise)
        prompts, queries = split_queries(svc.backend.tokenizer, encoder.layout_name, body.query, body.prompts)
        stats: list[tuple[bool, int]] = []
        extras: dict[str, list] = {}
        raw, rewards = await svc.rewards(prompts, queries, stats, extras)
        extra_logs = {
            "raw_reward": raw,
            "truncated": [float(t) for t, _ in stats],  # floats: OpenRLHF averages extra_logs as metrics
            "num_tokens": [float(n) for _, n in stats],
            **extras,
        }
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra_logs}

    return router


def _steps_route(svc: _Service, m: Any, auth: list) -> Any:
    """POST /score_steps: per-step scores of a process reward model; 501 for any other model."""
    from fastapi import APIRouter, HTTPException

    router = APIRouter()
    is_prm = svc.backend.kind == "process reward model"
    problems = {c: {"model": m.Problem} for c in (400, 401, 408, 413, 501, 503)}

    @router.post(
        "/score_steps",
        response_model=m.StepsResponse,
        dependencies=auth,
        responses=problems,
        include_in_schema=is_prm,  # for other models it only answers 501
    )
    async def score_steps(body: m.StepsRequest) -> Any:  # type: ignore[name-defined]
        """Per-step P(correct) of a process reward model (PRM) and their aggregate per solution.

        Probabilities are not normalised or clipped; a step lost to truncation scores null.
        """
        if not is_prm:
            raise HTTPException(
                501,
                f"model {svc.model_id!r} is an outcome {svc.backend.kind}: it scores whole responses (use "
                "/score); /score_steps needs a process reward model (rewardlab.json with a step_marker)",
            )
        from rewardlab.prm.evaluate import aggregate

        prompts = [item.prompt for item in body.items]
        steps = [item.steps for item in body.items]
        loop = asyncio.get_running_loop()
        per_step = await loop.run_in_executor(svc.batcher.executor, svc.scorer.score_steps, prompts, steps)
        rewards = [_finite(aggregate(s, body.aggregate)) for s in per_step]
        step_rewards = [[_finite(p) for p in s] for s in per_step]
        return {"step_rewards": step_rewards, "rewards": rewards, "model": svc.model_id}

    return router


def _status_routes(svc: _Service, m: Any, auth: list) -> Any:
    """GET /health (no token: for probes) and GET /metrics (Prometheus text)."""
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse, PlainTextResponse

    router = APIRouter()

    @router.get("/health", response_model=m.Health, responses={503: {"model": m.Health}})
    async def health() -> Any:
        """Liveness (this answers) and readiness (the model is loaded and warmed up)."""
        ready = svc.metrics.ready
        body = {
            "status": "ok" if ready else "unavailable",
            "ready": ready,
            "model": svc.model_id,
            "kind": svc.backend.kind,
        }
        return body if ready else JSONResponse(body, status_code=503)

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        dependencies=auth,
        responses={401: {"model": m.Problem, "content": {"application/json": {}}}},
    )
    async def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests, latency, batch sizes, queue depth."""
        return PlainTextResponse(svc.metrics.render(), media_type="text/plain; version=0.0.4")

    return router


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


def load_scorer(model: str | Path, settings: ServeSettings) -> Any:
    """A `Scorer` for a reward-model folder, an `EnsembleScorer` for an ensemble folder."""
    from rewardlab.scoring.ensemble import load_scorer as load

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
    uvicorn.Server(uvicorn_config(app, settings)).run()
