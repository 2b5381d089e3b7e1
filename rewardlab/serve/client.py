"""Call a rewardlab reward server from an RL loop: a client with timeouts and retries, and adapters.

    client = RewardClient("http://127.0.0.1:8000")           # token: $REWARDLAB_SERVE_TOKEN if set
    client.score(prompts, responses)                         # -> list[float], in input order

TRL (GRPOTrainer, RLOOTrainer) takes the adapter as a reward function::

    GRPOTrainer(..., reward_funcs=[TRLRewardFunction("http://127.0.0.1:8000")])

OpenRLHF, two ways (docs/serving.md):
- ``--remote_rm_url http://127.0.0.1:8000/get_reward``: OpenRLHF's own HTTP client talks to the server
  directly (it sends ``{"query", "prompts", "labels"}`` and reads ``rewards``). It sends no
  Authorization header, so leave the server's token unset (and keep it on 127.0.0.1).
- ``--remote_rm_url reward_func.py`` with a file holding
  ``from rewardlab.serve.client import openrlhf_reward_func as reward_func``: OpenRLHF calls it with
  ``(queries, prompts, labels)``; it reaches $REWARDLAB_SERVE_URL with this client, so the token,
  timeouts and retries apply.

Scoring is idempotent, so every failure that may be transient (connection refused or reset, timeout,
429/502/503/504) is retried with exponential backoff; other 4xx errors are raised at once with the
server's message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from rewardlab.data.types import Text

TOKEN_ENV = "REWARDLAB_SERVE_TOKEN"
URL_ENV = "REWARDLAB_SERVE_URL"
DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUS = (429, 502, 503, 504)


class RewardServerError(RuntimeError):
    """The server refused a request (4xx/5xx after retries); `status` and `detail` say why."""

    def __init__(self, status: int, detail: Any, url: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{url} answered {status}: {detail}")


class RewardClient:
    """A synchronous client for `rewardlab serve`, safe to share between threads."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        chunk_size: int = 256,
        transport: Any = None,
    ) -> None:
        """`url`: the server (default $REWARDLAB_SERVE_URL, else http://127.0.0.1:8000). `token`: bearer
        token (default $REWARDLAB_SERVE_TOKEN). `retries`: extra attempts after a transient failure,
        waiting backoff_s, 2·backoff_s, ... `chunk_size`: texts per request (keep it ≤ the server's
        --max-texts)."""
        import httpx

        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.backoff_s = backoff_s
        self.chunk_size = chunk_size
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)
        self.attempts = 0
        """Requests sent, retries included (for tests and logs)."""

    def score(
        self,
        prompts: Sequence[Text] | None = None,
        responses: Sequence[Text] | None = None,
        *,
        texts: Sequence[str] | None = None,
    ) -> list[float]:
        """Rewards for (prompt, response) pairs (plain text or chat messages), or for whole `texts`."""
        if texts is not None:
            return self._chunked("/score", list(texts), lambda part: {"texts": part})
        if responses is None:
            raise ValueError("give responses (with or without prompts), or texts=")
        prompts = [""] * len(responses) if prompts is None else list(prompts)
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        pairs = [{"prompt": p, "response": r} for p, r in zip(prompts, responses, strict=True)]
        return self._chunked("/score", pairs, lambda part: {"pairs": part})

    def get_reward(self, queries: Sequence[str], prompts: Sequence[str] | None = None) -> dict[str, Any]:
        """OpenRLHF's call: ``{"rewards", "scores", "extra_logs"}`` for prompt+response `queries`."""
        body: dict[str, Any] = {"query": list(queries)}
        if prompts is not None:
            body["prompts"] = list(prompts)
        return self.post("/get_reward", body)

    def health(self) -> dict[str, Any]:
        """The server's /health body (``ready`` is False while it starts or drains)."""
        return self._request("GET", "/health", None, ok=(200, 503))

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, body)

    def _chunked(self, path: str, items: list, wrap: Any) -> list[float]:
        out: list[float] = []
        for start in range(0, len(items), self.chunk_size):
            out += self.post(path, wrap(items[start : start + self.chunk_size]))["rewards"]
        return out

    def _request(self, method: str, path: str, body: Any, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.attempts += 1
            try:
                r = self._http.request(method, path, json=body)
            except httpx.TransportError as e:  # refused, reset, timed out: the server may be restarting
                last = e
                continue
            if r.status_code in ok:
                return r.json()
            detail = _detail(r)
            last = RewardServerError(r.status_code, detail, self.url + path)
            if r.status_code not in RETRY_STATUS:
                raise last
        if isinstance(last, RewardServerError):
            raise last
        raise ConnectionError(
            f"{self.url}{path}: no answer after {self.retries + 1} attempts ({type(last).__name__}: {last}); "
            "is `rewardlab serve` running there?"
        ) from last

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _detail(r: Any) -> Any:
    """The server's explanation: its ``detail`` string, or the messages of a 422's error list."""
    try:
        detail = r.json().get("detail", r.text)
    except (ValueError, AttributeError):
        return r.text[:500]
    if isinstance(detail, list):
        return "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in detail)
    return detail


class TRLRewardFunction:
    """A TRL ``reward_funcs`` entry: called as ``f(prompts=..., completions=..., **columns)``.

    Prompts and completions may be plain strings or conversational (lists of messages), as TRL passes
    them; extra dataset columns are ignored. TRL logs the reward under ``__name__``.
    """

    def __init__(self, client: RewardClient | str | None = None, name: str = "rewardlab") -> None:
        self.client = client if isinstance(client, RewardClient) else RewardClient(client)
        self.__name__ = name

    def __call__(self, prompts: Sequence[Text], completions: Sequence[Text], **kwargs: Any) -> list[float]:
        return self.client.score(list(prompts), list(completions))


_default_client: RewardClient | None = None


def openrlhf_reward_func(
    queries: Sequence[str], prompts: Sequence[str] | None = None, labels: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """OpenRLHF's ``reward_func(queries, prompts, labels)`` for ``--remote_rm_url reward_func.py``.

    Reaches the server at $REWARDLAB_SERVE_URL (token: $REWARDLAB_SERVE_TOKEN) and returns what
    OpenRLHF expects: ``{"rewards": tensor, "scores": tensor, "extra_logs": {name: tensor}}``.
    """
    import torch

    global _default_client
    if _default_client is None:
        _default_client = RewardClient()
    out = _default_client.get_reward(list(queries), list(prompts) if prompts is not None else None)
    rewards = torch.tensor(out["rewards"], dtype=torch.float32)
    return {
        "rewards": rewards,
        "scores": torch.tensor(out["scores"], dtype=torch.float32),
        "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in out["extra_logs"].items()},
    }
