"""An OpenAI-compatible server as a judge backend (vLLM, SGLang, llama.cpp's server, a hosted API).

Two APIs, both at temperature 0:
- ``/v1/completions`` with ``logprobs: K`` and ``max_tokens: 1``: label probabilities from the first
  generated token's top-K log-probabilities (logits mode), or the greedy text (text mode). The prompt is
  the template body, a newline and the answer prefix without its trailing space; a token counts for a
  label when its text, leading whitespace stripped, is the label, and a label outside the top K has
  probability 0 (none of them there: an error for that item). A label that another extends ("1" of
  "10") gets a second request for ``prompt + "1"`` whose top log-probabilities give P("0" | "1").
- ``/v1/chat/completions``: the body as one user message, the reply's text (text mode only).

Every request is bounded: `timeout_s` per attempt, at most ``1 + retries`` attempts, retrying only what
may pass on a second try (a timeout, a refused or dropped connection, HTTP 429 or 5xx) after
0.25 s · 2^attempt. A reply that arrives but is not the expected JSON, or an HTTP 4xx, is not retried.
A failure is a `JudgeItemError` for that item only; the others are still judged.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rewardlab.judge.ratings import NEG_INF, JudgeItemError

RETRY_STATUS = {429, 500, 502, 503, 504}
BACKOFF_S = 0.25


def base_url(url: str) -> str:
    """``http://host:port`` from a URL given with or without a trailing ``/v1``."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class EndpointBackend:
    """Label log-probabilities and text replies from an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        url: str,
        model: str = "default",
        api: str = "completions",
        timeout_s: float = 30.0,
        retries: int = 2,
        concurrency: int = 4,
        top_logprobs: int = 20,
        max_tokens: int = 16,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--endpoint {url!r}: give an http:// or https:// URL")
        self.url = base_url(url)
        self.model = model
        self.api = api
        self.timeout_s = timeout_s
        self.retries = retries
        self.concurrency = concurrency
        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        self.model_id = f"endpoint:{self.url}|{model}|{api}"
        self.requests = 0
        """HTTP attempts made (tests check the retry bound with it)."""

    def render(self, user_text: str, answer_prefix: str) -> str:
        return user_text if self.api == "chat" else f"{user_text}\n{answer_prefix.rstrip()}"

    # --- HTTP ---------------------------------------------------------------------------------------

    def post(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the bounded retries; returns the decoded reply or raises JudgeItemError."""
        data = json.dumps(payload).encode("utf-8")
        attempts = 1 + self.retries
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            self.requests += 1
            req = urllib.request.Request(
                self.url + route, data=data, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    body = resp.read()
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
                if e.code in RETRY_STATUS:
                    continue
                raise JudgeItemError(f"{route}: {last} (not retried)") from None
            except TimeoutError:
                last = f"timed out after {self.timeout_s:g} s"
                continue
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", e)
                last = (
                    f"timed out after {self.timeout_s:g} s"
                    if isinstance(reason, TimeoutError)
                    else str(reason)
                )
                continue
            try:
                out = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise JudgeItemError(f"{route}: the reply is not JSON: {body[:80]!r}") from None
            if not isinstance(out, dict):
                raise JudgeItemError(f"{route}: the reply is not a JSON object: {body[:80]!r}")
            return out
        raise JudgeItemError(
            f"{route}: {last}; gave up after {attempts} attempts (1 + {self.retries} retries)"
        )

    def _each(self, fn: Callable[[str], Any], items: Sequence[str]) -> list[Any]:
        def safe(x: str) -> Any:
            try:
                return fn(x)
            except JudgeItemError as e:
                return e

        if self.concurrency == 1 or len(items) <= 1:
            return [safe(x) for x in items]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="rewardlab-judge") as pool:
            return list(pool.map(safe, items))

    # --- what the judge asks ------------------------------------------------------------------------

    def _top(self, prompt: str) -> dict[str, float]:
        """The first generated token's top log-probabilities, keyed by token text."""
        out = self.post(
            "/v1/completions",
            {
                "model": self.model,
                "prompt": prompt,
                "max_tokens": 1,
                "temperature": 0,
                "logprobs": self.top_logprobs,
            },
        )
        try:
            top = out["choices"][0]["logprobs"]["top_logprobs"][0]
            if not isinstance(top, dict):
                raise TypeError
            return {str(k): float(v) for k, v in top.items()}
        except (KeyError, IndexError, TypeError, ValueError):
            raise JudgeItemError(
                "/v1/completions: no choices[0].logprobs.top_logprobs[0] in the reply "
                f"{json.dumps(out)[:120]} (does this server return logprobs? otherwise use --mode text)"
            ) from None

    def _label_logprobs(self, prompt: str, labels: Sequence[str]) -> dict[str, float]:
        top = self._top(prompt)
        mass: dict[str, float] = {}
        for tok, lp in top.items():
            key = tok.lstrip()
            if key in labels:
                mass[key] = _logaddexp(mass.get(key, NEG_INF), lp)
        if not mass:
            shown = ", ".join(repr(t) for t in list(top)[:5])
            raise JudgeItemError(
                f"none of the labels {list(labels)} in the top log-probabilities ({shown}, …)"
            )
        out = {label: mass.get(label, NEG_INF) for label in labels}
        for short in labels:
            longer = [x for x in labels if len(x) > len(short) and x.startswith(short)]
            if not longer or out[short] == NEG_INF:
                continue
            nxt = self._top(prompt + " " + short if not prompt.endswith(" ") else prompt + short)
            p_short = math.exp(out[short])
            p_stop = 1.0
            for x in longer:
                p_cont = math.exp(nxt.get(x[len(short) :], NEG_INF))
                p_stop -= p_cont
                out[x] = _logaddexp(out[x], math.log(p_short * p_cont) if p_cont > 0 else NEG_INF)
            out[short] = math.log(p_short * p_stop) if p_stop > 0 else NEG_INF
        return out

    def label_logprobs(
        self, contexts: Sequence[str], labels: Sequence[str]
    ) -> list[dict[str, float] | JudgeItemError]:
        if self.api != "completions":
            raise ValueError("label log-probabilities need --api completions (chat replies are text only)")
        return self._each(lambda c: self._label_logprobs(c, labels), contexts)

    def _reply(self, context: str) -> str:
        if self.api == "chat":
            payload = {
                "model": self.model,
                "messages": [{"role": "user", "content": context}],
                "max_tokens": self.max_tokens,
                "temperature": 0,
            }
            out = self.post("/v1/chat/completions", payload)
            path = "choices[0].message.content"
            get: Callable[[dict], Any] = lambda o: o["choices"][0]["message"]["content"]  # noqa: E731
        else:
            payload = {
                "model": self.model,
                "prompt": context,
                "max_tokens": self.max_tokens,
                "temperature": 0,
            }
            out = self.post("/v1/completions", payload)
            path = "choices[0].text"
            get = lambda o: o["choices"][0]["text"]  # noqa: E731
        try:
            text = get(out)
        except (KeyError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):
            raise JudgeItemError(f"no {path} in the reply {json.dumps(out)[:120]}")
        return text

    def replies(self, contexts: Sequence[str]) -> list[str | JudgeItemError]:
        """The greedy reply to each context (text mode)."""
        return self._each(self._reply, contexts)


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))
