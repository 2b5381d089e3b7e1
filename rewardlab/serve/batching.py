"""Dynamic micro-batching and Prometheus metrics for the reward server (rewardlab/serve.py).

An RL loop sends many small scoring requests at once; scoring each alone wastes the model on tiny
batches. `MicroBatcher` queues the already-tokenised texts of concurrent requests and hands them to
ONE `Scorer.score_encoded` call per batch, in a single worker thread (the event loop never runs the
model), then splits the rewards back to each request in order. A batch is cut when the queued texts
reach `max_batch_tokens`, or `max_wait_s` after its first request arrived, whichever comes first;
while the model is busy, new requests simply queue, so batches grow with load.

Everything here runs on the event loop thread except the scoring function, so the counters need no
locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("rewardlab.serve")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass
class Histogram:
    """A Prometheus histogram: cumulative bucket counts, a sum and a count."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.n += 1
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [
            f'{name}_bucket{{{labels}{sep}le="{_num(b)}"}} {c}'
            for b, c in zip(self.buckets, self.counts, strict=True)
        ]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        tail = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{tail} {self.total:.6f}", f"{name}_count{tail} {self.n}"]
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass
class Metrics:
    """What /metrics reports: requests by endpoint and status, latency, batch sizes, queue depth."""

    requests: Counter = field(default_factory=Counter)
    """(endpoint, status code) -> requests answered."""
    latency: dict[str, Histogram] = field(default_factory=dict)
    batch_texts: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    batch_requests: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    texts_scored: int = 0
    queue_texts: int = 0
    in_flight: int = 0
    ready: bool = False

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, status)] += 1
        self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        out = [
            "# HELP rewardlab_requests_total HTTP requests answered, by endpoint and status code.",
            "# TYPE rewardlab_requests_total counter",
        ]
        for (endpoint, status), n in sorted(self.requests.items()):
            out.append(f'rewardlab_requests_total{{endpoint="{endpoint}",code="{status}"}} {n}')
        out += [
            "# HELP rewardlab_request_seconds Time from request received to response sent.",
            "# TYPE rewardlab_request_seconds histogram",
        ]
        for endpoint, hist in sorted(self.latency.items()):
            out += hist.lines("rewardlab_request_seconds", f'endpoint="{endpoint}"')
        out += [
            "# HELP rewardlab_batch_texts Texts per model call (after micro-batching).",
            "# TYPE rewardlab_batch_texts histogram",
            *self.batch_texts.lines("rewardlab_batch_texts"),
            "# HELP rewardlab_batch_requests Requests merged into one model call.",
            "# TYPE rewardlab_batch_requests histogram",
            *self.batch_requests.lines("rewardlab_batch_requests"),
            "# HELP rewardlab_texts_scored_total Texts scored by the model.",
            "# TYPE rewardlab_texts_scored_total counter",
            f"rewardlab_texts_scored_total {self.texts_scored}",
            "# HELP rewardlab_queue_texts Texts waiting for the model.",
            "# TYPE rewardlab_queue_texts gauge",
            f"rewardlab_queue_texts {self.queue_texts}",
            "# HELP rewardlab_requests_in_flight Requests received and not yet answered.",
            "# TYPE rewardlab_requests_in_flight gauge",
            f"rewardlab_requests_in_flight {self.in_flight}",
            "# HELP rewardlab_ready 1 when the model is loaded and requests are accepted.",
            "# TYPE rewardlab_ready gauge",
            f"rewardlab_ready {int(self.ready)}",
        ]
        return "\n".join(out) + "\n"


@dataclass
class _Job:
    items: Sequence[Any]
    tokens: int
    future: asyncio.Future
    arrived: float


class MicroBatcher:
    """Merge concurrent scoring requests into one call of `score_fn` in a worker thread.

    `score_fn(items) -> rewards` takes the concatenated items of several requests (for the server:
    `Encoded` texts) and returns one reward per item, in order. `cost(item)` is its share of the
    token budget (for the server: its token count).
    """

    def __init__(
        self,
        score_fn: Callable[[list[Any]], list[float]],
        cost: Callable[[Any], int],
        max_batch_tokens: int,
        max_wait_s: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.score_fn = score_fn
        self.cost = cost
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.metrics = metrics or Metrics()
        self._pending: deque[_Job] = deque()
        self._pending_tokens = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="rewardlab-score")
        """The one thread that runs the model; other model work (warm-up, PRM steps) goes here too."""

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rewardlab-batcher")

    async def submit(self, items: Sequence[Any]) -> list[float]:
        """Rewards for `items`, scored together with whatever else is queued."""
        if self._task is None or self._closing:
            raise RuntimeError("the batcher is not running (server starting or shutting down)")
        if not items:
            return []
        loop = asyncio.get_running_loop()
        job = _Job(items, sum(self.cost(i) for i in items), loop.create_future(), loop.time())
        self._pending.append(job)
        self._pending_tokens += job.tokens
        self.metrics.queue_texts += len(items)
        self._wakeup.set()
        return await job.future

    async def close(self) -> None:
        """Score everything already queued, then stop the loop and the worker thread."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
        self.executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._fill(loop)
            jobs = self._take()
            await self._score(loop, jobs)

    async def _fill(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for more requests until the budget is full or the oldest has waited max_wait_s."""
        deadline = self._pending[0].arrived + self.max_wait_s
        while self._pending_tokens < self.max_batch_tokens and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[_Job]:
        """Oldest jobs first, up to the token budget (always at least one, however large)."""
        jobs, tokens = [], 0
        while self._pending and (not jobs or tokens + self._pending[0].tokens <= self.max_batch_tokens):
            job = self._pending.popleft()
            tokens += job.tokens
            jobs.append(job)
        self._pending_tokens -= tokens
        return jobs

    async def _score(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        merged = [item for job in jobs for item in job.items]
        self.metrics.queue_texts -= len(merged)
        started = time.perf_counter()
        try:
            rewards = await loop.run_in_executor(self.executor, self.score_fn, merged)
            if len(rewards) != len(merged):
                raise RuntimeError(f"scoring returned {len(rewards)} rewards for {len(merged)} texts")
        except Exception as e:  # a model failure fails these requests, never the server
            log.error("scoring a batch of %d texts failed: %s: %s", len(merged), type(e).__name__, e)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        log.debug(
            "batch: %d requests, %d texts, %d tokens, %.1f ms",
            len(jobs),
            len(merged),
            sum(j.tokens for j in jobs),
            1000 * (time.perf_counter() - started),
        )
        self.metrics.batch_texts.observe(len(merged))
        self.metrics.batch_requests.observe(len(jobs))
        self.metrics.texts_scored += len(merged)
        start = 0
        for job in jobs:
            part = rewards[start : start + len(job.items)]
            start += len(job.items)
            if not job.future.done():  # the client may have gone away
                job.future.set_result(part)
