"""How `rewardlab serve` runs: `ServeSettings`, one documented field per flag, checked when it is made.

Kept apart from the app (rewardlab/serve.py) so that `rewardlab serve --clip nan` is refused, naming
the flag, before the model is loaded, and so the flags are documented in one place
(`rewardlab serve --help` prints these texts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rewardlab.config import doc
from rewardlab.data.thinking import ThinkingFlags
from rewardlab.scoring.rules import RewardRuleFlags

TOKEN_ENV = "REWARDLAB_SERVE_TOKEN"
ENSEMBLE_RULES = ("mean", "min", "uwo")


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
    shutdown_timeout_s: float = doc(
        "On SIGTERM/SIGINT, wait this long for in-flight requests; one still running then gets a 503.", 30.0
    )
    client_timeout_s: float = doc(
        "A client must send a whole request head within this many seconds of connecting (or of starting "
        "its next request), and its body within as many again; else its connection is closed (a late "
        "body gets 408). Bounds what slow or silent clients hold.",
        10.0,
    )
    keep_alive_s: float = doc("Close a keep-alive connection idle this long after a response.", 5.0)
    max_connections: int = doc(
        "Most open connections plus requests in progress (uvicorn's limit_concurrency); a request "
        "beyond it is answered 503 at once.",
        256,
    )
    max_header_bytes: int = doc(
        "Most bytes buffered for an incomplete request head (request line and headers); more → 400.", 16_384
    )
    access_log: bool = doc("Log one line per request (method, path, status; never bodies).", False)
    device: str | None = doc("cpu, cuda, cuda:1, mps (empty: best available).", None)
    bf16: bool = doc("Score under bf16 autocast (faster on GPUs; tiny accuracy cost).", False)
    thinking: ThinkingFlags = field(default_factory=ThinkingFlags)
    rules: RewardRuleFlags = field(default_factory=RewardRuleFlags)
    """--reward-fn: combined with the reward as served (after --normalize and --clip)."""

    def __post_init__(self) -> None:
        """Refuse values the server cannot honour, naming the flag (``max_texts`` → ``--max-texts``)."""
        for name in ("max_texts", "max_chars", "max_body_bytes", "max_batch_tokens", "max_connections"):
            _check(self, name, lambda v: _is_int(v) and v >= 1, "an integer >= 1")
        _check(self, "max_header_bytes", lambda v: _is_int(v) and v >= 1024, "an integer >= 1024")
        _check(self, "port", lambda v: _is_int(v) and 0 <= v <= 65535, "an integer from 0 to 65535")
        _check(self, "host", lambda v: isinstance(v, str) and v.strip() != "", "an address")
        for name in ("max_wait_ms", "shutdown_timeout_s"):
            _check(self, name, lambda v: _is_real(v) and v >= 0, "a finite number >= 0")
        for name in ("client_timeout_s", "keep_alive_s"):
            _check(self, name, lambda v: _is_real(v) and v > 0, "a finite number > 0")
        if self.clip is not None:  # inf would be the same as no clipping, nan clips everything to nan
            _check(
                self, "clip", lambda v: _is_real(v) and v > 0, "a finite number > 0 (leave it out: no clip)"
            )
        if self.ensemble_rule is not None:
            _check(
                self, "ensemble_rule", lambda v: v in ENSEMBLE_RULES, "one of " + ", ".join(ENSEMBLE_RULES)
            )
        if self.ensemble_lam is not None:
            _check(self, "ensemble_lam", lambda v: _is_real(v) and v >= 0, "a finite number >= 0")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(settings: ServeSettings, name: str, ok: object, want: str) -> None:
    value = getattr(settings, name)
    if not ok(value):  # type: ignore[operator]
        flag = "--" + name.replace("_", "-")
        raise ValueError(f"{flag} {value!r}: must be {want}")
