"""TRL: a ``GRPOTrainer`` reward function that runs the rewardlab Scorer in process.

    from rewardlab.integrations.trl import RewardlabReward
    trainer = GRPOTrainer(model=policy, reward_funcs=[RewardlabReward("runs/rm")], ...)

TRL calls a reward function with ``prompts``, ``completions`` and ``completion_ids`` plus the dataset's
other columns (trl/trainer/grpo_trainer.py, ``GRPOTrainer._calculate_rewards``): strings for a standard
dataset, message lists for a conversational one. The Scorer encodes them as the model was trained
(its rewardlab.json layout), so the reward equals ``rewardlab serve``'s and, for a ``chat_template``
model, the one TRL computes when given the folder itself as ``reward_funcs="runs/rm"`` (a parity test
checks both in one ``_calculate_rewards`` call). `AsyncRewardlabReward` is the same function as a
coroutine: TRL runs async reward functions concurrently on its own event loop, and the forward pass goes
to a worker thread so that loop is not blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardlab.integrations.local import normalized, scorer_for


class RewardlabReward:
    """``reward_func(prompts, completions, completion_ids=None, **columns) -> list[float]`` for TRL."""

    def __init__(
        self, model: str | Path | Any | None = None, normalize: bool = False, device: str | None = None
    ) -> None:
        if hasattr(model, "score_encoded"):  # an already built Scorer
            import threading

            self.scorer, self._lock = model, threading.Lock()
        else:
            self.scorer, self._lock = scorer_for(model, device)
        self.normalize = normalize
        self.__name__ = "rewardlab"  # TRL names each reward function's logged column by __name__

    def inputs(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any] | None,
        completion_ids: Sequence[Sequence[int]] | None = None,
    ) -> tuple[list[Any], list[Any]]:
        """(prompts, responses) for the Scorer. Without completion texts, `completion_ids` are decoded
        with the reward model's tokenizer (special tokens skipped, as TRL decodes completions)."""
        if completions is None:
            if completion_ids is None:
                raise ValueError("pass completions (texts or messages) or completion_ids")
            tok = self.scorer.encoder.tokenizer
            texts = tok.batch_decode([list(c) for c in completion_ids], skip_special_tokens=True)
            is_chat = bool(prompts) and not isinstance(prompts[0], str)
            completions = [[{"role": "assistant", "content": t}] for t in texts] if is_chat else texts
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        return list(prompts), [_plain_messages(c) for c in completions]

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float]:
        p, r = self.inputs(prompts, completions, completion_ids)
        with self._lock:
            raw = self.scorer.score([_plain_messages(x) for x in p], r)
        return normalized(raw, self.scorer.card, self.normalize)


class AsyncRewardlabReward(RewardlabReward):
    """`RewardlabReward` as a coroutine function (TRL's ``is_async_callable`` reads ``__call__``)."""

    async def __call__(  # type: ignore[override]
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float]:
        sync = super().__call__
        return await asyncio.to_thread(sync, prompts, completions, completion_ids, **columns)


def _plain_messages(value: Any) -> Any:
    """Text, or messages reduced to role and content (TRL's may carry tool fields the Scorer ignores)."""
    if isinstance(value, str):
        return value
    return [{"role": m["role"], "content": m["content"]} for m in value]
