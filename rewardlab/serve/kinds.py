"""What the server adds for reward kinds beyond one scalar (docs/reward_kinds.md): a multi-attribute
model's attributes, and a --reward-fn rule combined with the served reward, both reported in
``extra_logs``. Kept apart from rewardlab/serve/app.py, which calls these from `_Service.rewards`."""

import asyncio
from collections.abc import Callable, Sequence
from typing import Any


def attribute_score_fn(scorer: Any) -> Callable[[list[Any]], list[tuple[float, list[float]]]]:
    """The model-thread scoring function of a multi-attribute model: (reward, attributes) per item."""

    def score(items: list[Any]) -> list[tuple[float, list[float]]]:
        rewards, values = scorer.score_encoded_attributes(items)
        return list(zip(rewards, values, strict=True))

    return score


def split_attributes(out: list[Any], names: Sequence[str], extras: dict[str, list] | None) -> list[float]:
    """The rewards of (reward, attributes) items; each attribute goes to `extras` under its name."""
    if extras is not None:
        for k, name in enumerate(names):
            extras[name] = [float(o[1][k]) for o in out]
    return [o[0] for o in out]


async def rule_values(rule: Any, pool: Any, prompts: Sequence[Any], responses: Sequence[Any]) -> list:
    """The --reward-fn hook over the items in `pool` (a hook may be slow Python); a failing item is a 422
    naming it."""
    from fastapi import HTTPException

    from rewardlab.scoring.rules import RewardFnError

    try:
        return await asyncio.get_running_loop().run_in_executor(pool, rule.values, prompts, responses)
    except RewardFnError as e:
        problem = {"loc": ["body", e.index], "msg": str(e), "type": "value_error"}
        raise HTTPException(422, [problem]) from None


def apply_rule(rule: Any, served: list[float], values: list, extras: dict[str, list] | None) -> list[float]:
    """The combined rewards; `extras` get the served RM reward and the rule's values as floats (OpenRLHF
    averages extra_logs): no opinion is 0.0 in ``rule_reward`` and flagged by ``rule_has_opinion``."""
    if extras is not None:
        extras["rm_reward"] = served
        extras["rule_reward"] = [0.0 if v is None else v for v in values]
        extras["rule_has_opinion"] = [float(v is not None) for v in values]
    return rule.combine(served, values)
