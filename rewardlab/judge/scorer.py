"""`JudgeScorer`: a generative judge with `Scorer`'s face, so everything that consumes a reward model
(diagnose, bon and overopt, drift, serve, evaluate) takes a judge unchanged.

    judge = JudgeScorer.from_config("runs/judge")               # judge.json, or a folder holding it
    judge.score(prompts, responses)                              # pointwise: expected rating 1..10
    judge.compare(prompts, responses_a, responses_b)             # pairwise, both orders: PairVerdict

Pointwise (`score`): in logits mode the expected value Σ r·P(r) over the rating labels "1".."10"
from the next-token probabilities (no sampling); in text mode the greedy reply's rating by
`ratings.parse_rating`. Pairwise (`compare`): each pair is shown twice, x as A then x as B; the two
P(x wins) are combined by `ratings.combine_orders` (mean log-odds, which cancels a constant position
bias), and both per-order values are kept for the position-bias probe (rewardlab.diagnose.position).
Results are cached by content hash (rewardlab.judge.cache). An item that fails is a `JudgeItemError`
in the per-item methods (`rate`, `compare`); `score` raises it, or gives NaN with ``errors: nan``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.judge.cache import ResultCache, cache_key
from rewardlab.judge.config import JudgeConfig, load_judge_config
from rewardlab.judge.ratings import (
    JudgeItemError,
    combine_orders,
    expected_rating,
    first_wins,
    parse_choice,
    parse_rating,
)
from rewardlab.judge.templates import Template, load_template, parse_template

log = logging.getLogger(__name__)

CHUNK = 32
"""Items per backend call: progress and the cache advance in these steps."""


def as_text(x: Any) -> str:
    """A prompt or response as the judge reads it: a string as is, chat messages as 'role: content' lines."""
    if isinstance(x, str):
        return x
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in x)


@dataclass
class PairVerdict:
    """The judge on one pair (x, y): P(x beats y) with x shown first, with x shown second, combined."""

    p_first: float | None
    p_second: float | None
    p: float | None
    error: str | None = None

    @property
    def flipped(self) -> bool | None:
        """Whether the two orders disagree on the winner (None if either is a tie or missing)."""
        if self.p_first is None or self.p_second is None or 0.5 in (self.p_first, self.p_second):
            return None
        return (self.p_first > 0.5) != (self.p_second > 0.5)


class JudgeScorer:
    """A generative judge: score / score_texts / compare / embed, with per-item errors and a result cache."""

    card = None
    """No reward-model card: a judge has no training-time reward statistics."""

    def __init__(
        self,
        cfg: JudgeConfig,
        backend: Any,
        pointwise: Template,
        pairwise: Template,
        cache: ResultCache | None = None,
        source: str = "",
    ) -> None:
        self.judge_config = cfg
        self.backend = backend
        self.pointwise = pointwise
        self.pairwise = pairwise
        self.cache = cache
        self.source = source

    @classmethod
    def from_config(
        cls, path: str | Path, device: str | None = None, bf16: bool | None = None, **backend_kw: Any
    ) -> JudgeScorer:
        """Open a saved judge (judge.json or its folder): its recorded templates, cache and backend."""
        cfg, file = load_judge_config(path)
        if bf16:
            cfg.bf16 = True
        return cls.from_settings(cfg, device, base_dir=file.parent, source=str(file), **backend_kw)

    @classmethod
    def from_settings(
        cls,
        cfg: JudgeConfig,
        device: str | None = None,
        base_dir: str | Path | None = None,
        source: str = "",
        **backend_kw: Any,
    ) -> JudgeScorer:
        """A judge from a config in memory; `backend_kw` (hf_model=, tokenizer=) lets tests pass a model."""
        templates = {}
        for kind, name in (("pointwise", cfg.pointwise_template), ("pairwise", cfg.pairwise_template)):
            saved = cfg.templates.get(kind)
            if saved:  # the text recorded in judge.json wins over the file's current text
                templates[kind] = parse_template(saved["text"], saved.get("source", kind))
            else:
                templates[kind] = load_template(name, kind)
        backend = make_backend(cfg, device, **backend_kw)
        cache = None
        if cfg.cache:
            cache_file = Path(cfg.cache)
            if not cache_file.is_absolute():
                cache_file = Path(base_dir or ".") / cache_file
            cache = ResultCache(cache_file)
        return cls(cfg, backend, templates["pointwise"], templates["pairwise"], cache, source)

    # --- the cached backend calls --------------------------------------------------------------------

    def _ask(self, template: Template, contexts: Sequence[str]) -> list[Any]:
        """Per context: label log-probabilities (logits mode) or the reply text (text mode), or an error."""
        query = ("labels:" + "\x1f".join(template.labels)) if self.judge_config.mode == "logits" else "text"
        keys = [cache_key(self.backend.model_id, template.sha256, query, c) for c in contexts]
        out: list[Any] = [None] * len(contexts)
        todo = []
        for i, k in enumerate(keys):
            hit = self.cache.get(k) if self.cache is not None else None
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        if todo:
            miss = [contexts[i] for i in todo]
            if self.judge_config.mode == "logits":
                got = self.backend.label_logprobs(miss, template.labels)
            else:
                got = self.backend.replies(miss)
            fresh = []
            for i, value in zip(todo, got, strict=True):
                out[i] = value
                if not isinstance(value, JudgeItemError):
                    fresh.append((keys[i], value))
            if self.cache is not None:
                self.cache.put_many(fresh)
        return out

    def _contexts(self, template: Template, fields: Sequence[dict[str, str]]) -> list[str]:
        return [self.backend.render(template.fill(**f), template.answer_prefix) for f in fields]

    # --- pointwise -----------------------------------------------------------------------------------

    def rate(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[float | JudgeItemError]:
        """The pointwise rating of each (prompt, response), or the JudgeItemError that item raised."""
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        t = self.pointwise
        values = dict(zip(t.labels, t.values, strict=True))
        out: list[float | JudgeItemError] = []
        for s in range(0, len(prompts), CHUNK):
            fields = [
                {"prompt": as_text(p), "response": as_text(r)}
                for p, r in zip(prompts[s : s + CHUNK], responses[s : s + CHUNK], strict=True)
            ]
            for answer in self._ask(t, self._contexts(t, fields)):
                out.append(_rating(answer, values, t.labels))
            if on_progress:
                on_progress(len(fields))
        return out

    def score(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[float]:
        """`Scorer.score`'s contract: one float per (prompt, response), in input order. A failed item
        raises (listing the failures) or, with ``errors: nan`` in the config, scores NaN."""
        rated = self.rate(prompts, responses, on_progress)
        failed = [(i, r) for i, r in enumerate(rated) if isinstance(r, JudgeItemError)]
        if failed and self.judge_config.errors == "raise":
            shown = "; ".join(f"item {i}: {e}" for i, e in failed[:3])
            raise JudgeItemError(
                f"the judge failed on {len(failed)} of {len(rated)} items ({shown}); "
                'set "errors": "nan" in judge.json to score them NaN instead'
            )
        return [math.nan if isinstance(r, JudgeItemError) else float(r) for r in rated]

    def score_texts(
        self, texts: Sequence[str], on_progress: Callable[[int], Any] | None = None
    ) -> list[float]:
        return self.score([""] * len(texts), texts, on_progress)

    # --- pairwise ------------------------------------------------------------------------------------

    def compare(
        self,
        prompts: Sequence[Any],
        responses_x: Sequence[Any],
        responses_y: Sequence[Any],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[PairVerdict]:
        """P(x beats y) per pair, from both presentation orders (x as A, then x as B)."""
        if not len(prompts) == len(responses_x) == len(responses_y):
            raise ValueError("compare needs as many prompts as responses_x and responses_y")
        t = self.pairwise
        soft = self.judge_config.mode == "logits"
        out: list[PairVerdict] = []
        for s in range(0, len(prompts), CHUNK):
            chunk = list(
                zip(
                    prompts[s : s + CHUNK],
                    responses_x[s : s + CHUNK],
                    responses_y[s : s + CHUNK],
                    strict=True,
                )
            )
            first = [
                {"prompt": as_text(p), "response_a": as_text(x), "response_b": as_text(y)}
                for p, x, y in chunk
            ]
            second = [
                {"prompt": as_text(p), "response_a": as_text(y), "response_b": as_text(x)}
                for p, x, y in chunk
            ]
            answers = self._ask(t, self._contexts(t, first + second))
            n = len(chunk)
            for a1, a2 in zip(answers[:n], answers[n:], strict=True):
                try:
                    p1 = _first_wins(a1, t.labels)  # x shown first
                    p2 = 1.0 - _first_wins(a2, t.labels)  # x shown second
                except JudgeItemError as e:
                    out.append(PairVerdict(None, None, None, str(e)))
                    continue
                out.append(PairVerdict(p1, p2, combine_orders(p1, p2, soft=soft)))
            if on_progress:
                on_progress(n)
        return out

    # --- what diagnose, drift and serve read ---------------------------------------------------------

    def serve_parts(self) -> tuple[Any, ...]:
        """The fields of rewardlab.serve.app.Backend for this judge: an item is (prompt, response, cost,
        truncated=False), its cost its length in tokens (local) or characters / 4 (endpoint); a failed
        item scores NaN, logged here with its reason, which the server answers with HTTP 502."""
        counter = getattr(self.backend, "count_tokens", None)

        def prepare(prompt: Any, response: Any) -> tuple[Any, Any, int, bool]:
            text = as_text(prompt) + as_text(response)
            return prompt, response, counter([text])[0] if counter else len(text) // 4 + 1, False

        def score(items: list[tuple[Any, Any, int, bool]]) -> list[float]:
            rated = self.rate([i[0] for i in items], [i[1] for i in items])
            for i, r in enumerate(rated):
                if isinstance(r, JudgeItemError):
                    log.warning("judge item %d of the batch failed: %s", i, r)
            return [math.nan if isinstance(r, JudgeItemError) else float(r) for r in rated]

        tokenizer = getattr(self.backend, "tokenizer", None)
        return (
            prepare,
            lambda item: item[2],
            score,
            tokenizer,
            None,
            f"generative judge ({self.judge_config.backend_name})",
        )

    def response_lengths(self, groups: Sequence[Any]) -> list[list[int]]:
        """Each response's length as the judge reads it: tokens for a local model, words for an endpoint."""
        texts = [as_text(r) for g in groups for r in g.responses]
        if hasattr(self.backend, "count_tokens"):
            flat = self.backend.count_tokens(texts) if texts else []
        else:
            flat = [len(t.split()) for t in texts]
        out, i = [], 0
        for g in groups:
            out.append(flat[i : i + len(g.responses)])
            i += len(g.responses)
        return out

    def embed(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[list[float]]:
        """Local judges: the hidden state the rating is read from (rewardlab drift's OOD statistics)."""
        if not hasattr(self.backend, "embed"):
            raise ValueError(
                "an endpoint judge has no embeddings; rewardlab drift needs a local judge (or a reward model)"
            )
        t = self.pointwise
        fields = [
            {"prompt": as_text(p), "response": as_text(r)} for p, r in zip(prompts, responses, strict=True)
        ]
        vectors = self.backend.embed(self._contexts(t, fields))
        if on_progress:
            on_progress(len(fields))
        return vectors


def make_backend(cfg: JudgeConfig, device: str | None = None, **backend_kw: Any) -> Any:
    if cfg.endpoint:
        from rewardlab.judge.endpoint import EndpointBackend

        return EndpointBackend(
            cfg.endpoint,
            cfg.endpoint_model,
            cfg.api,
            cfg.timeout_s,
            cfg.retries,
            cfg.concurrency,
            cfg.top_logprobs,
            cfg.max_tokens,
        )
    if cfg.mode != "logits":
        raise ValueError("a local judge reads logits: --mode text is for endpoints without log-probabilities")
    from rewardlab.judge.local import LocalBackend

    return LocalBackend(cfg.model, device, cfg.bf16, cfg.max_length, cfg.max_batch_tokens, **backend_kw)


def _rating(answer: Any, values: dict[str, float], labels: Sequence[str]) -> float | JudgeItemError:
    if isinstance(answer, JudgeItemError):
        return answer
    try:
        if isinstance(answer, str):
            return parse_rating(answer, labels)
        return expected_rating(answer, values)
    except JudgeItemError as e:
        return e


def _first_wins(answer: Any, labels: Sequence[str]) -> float:
    """P(first-shown response wins) from label log-probabilities, or 1/0 from a parsed text reply."""
    if isinstance(answer, JudgeItemError):
        raise answer
    if isinstance(answer, str):
        return 1.0 if parse_choice(answer, labels) == 0 else 0.0
    return first_wins(answer[labels[0]], answer[labels[1]])
