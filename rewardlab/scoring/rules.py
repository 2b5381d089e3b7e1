"""Rule-based rewards next to a learned one: a ``reward.py`` hook combined with the reward model's score.

``--reward-fn path.py[:name]`` names a Python function ``name(prompt, response) -> float | None`` (default
name ``reward``): a final-answer checker, a format check, a unit test. ``None`` means "no opinion" (the
rule cannot judge this item, e.g. no reference answer for the prompt): the reward model's score is used
as it is. The rule and the RM's reward r combine by ``--reward-combine``, with w = ``--reward-weight``:

- ``sum``:      r + w · rule                                    (None: r)
- ``gate``:     r where rule > 0 (passes), ``--gate-floor`` where rule <= 0 (fails)  (None: r)
- ``tiebreak``: rule + w · σ(r): the rule orders first and the RM breaks its ties; σ(r) ∈ (0, 1), so
  with w no larger than the smallest gap between two rule values (1 for a 0/1 checker) the rule's
  order is never overturned (None: the rule term is 0, i.e. w · σ(r) alone)

`RuleScorer` wraps a `Scorer` (or an `EnsembleScorer`) with `Scorer.score`'s signature, so best-of-N takes
it unchanged; the server calls `rule_values` and `combine` itself, after its own normalisation. A hook
that raises, or returns something that is not a finite number or None, fails with `RewardFnError`
naming the hook, the item's index and its prompt: never a made-up score.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rewardlab.config import ConfigError, check_choices, doc
from rewardlab.data.types import Text

COMBINE_RULES = ("sum", "gate", "tiebreak")
RewardFn = Callable[[Any, Any], "float | None"]


class RewardFnError(ValueError):
    """A ``--reward-fn`` hook failed on one item; the message names the hook, the item and the cause."""

    def __init__(self, spec: str, index: int, prompt: Any, cause: str) -> None:
        self.index = index
        shown = prompt if isinstance(prompt, str) else str(prompt)
        super().__init__(f"--reward-fn {spec}: item {index} (prompt {shown[:60]!r}): {cause}")


@dataclass
class RewardRuleFlags:
    """The ``--reward-fn`` flags of `rewardlab bon` and `rewardlab serve` (docs/reward_kinds.md)."""

    reward_fn: str | None = doc(
        "A rule-based reward: path.py[:name], a function name(prompt, response) -> float | None (default "
        "name: reward; None = no opinion), combined with the reward model by --reward-combine.",
        None,
    )
    reward_combine: Literal["sum", "gate", "tiebreak"] = doc(
        "How --reward-fn combines with the RM's reward r: sum (r + w·rule), gate (r if rule > 0 else "
        "--gate-floor), tiebreak (rule + w·sigmoid(r): the rule orders, the RM breaks ties).",
        "sum",
    )
    reward_weight: float = doc(
        "w of --reward-combine sum and tiebreak (tiebreak keeps the rule's order while w <= the smallest "
        "gap between rule values).",
        1.0,
    )
    gate_floor: float = doc("--reward-combine gate: the reward of a response the rule fails.", -10.0)

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("reward_weight", "gate_floor"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
        if self.reward_combine == "tiebreak" and not self.reward_weight > 0:
            raise ConfigError(
                f"--reward-weight must be > 0 with --reward-combine tiebreak, got {self.reward_weight}"
            )
        if self.reward_fn is not None:
            path, _, _ = self.reward_fn.partition(":")
            if not path.endswith(".py") or not Path(path).is_file():
                raise ConfigError(
                    f"--reward-fn {self.reward_fn}: {path!r} is not a .py file (path.py[:name])"
                )

    def load(self) -> RewardRule | None:
        """The hook, loaded, with its combination; None without --reward-fn."""
        if self.reward_fn is None:
            return None
        return RewardRule(self.reward_fn, load_reward_fn(self.reward_fn), self.reward_combine,
                          self.reward_weight, self.gate_floor)  # fmt: skip


def load_reward_fn(spec: str) -> RewardFn:
    """Import ``path.py[:name]`` (default name ``reward``) and return the function; errors name the spec."""
    path, _, name = spec.partition(":")
    name = name or "reward"
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--reward-fn {spec}: no such file {path!r}")
    module_name = f"rewardlab_reward_fn_{abs(hash(str(file.resolve())))}"
    loader = importlib.util.spec_from_file_location(module_name, file)
    if loader is None or loader.loader is None:
        raise ConfigError(f"--reward-fn {spec}: cannot import {path!r} as a Python module")
    module = importlib.util.module_from_spec(loader)
    try:
        loader.loader.exec_module(module)
    except Exception as e:
        raise ConfigError(f"--reward-fn {spec}: importing {path} failed: {type(e).__name__}: {e}") from e
    fn = getattr(module, name, None)
    if not callable(fn):
        found = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise ConfigError(f"--reward-fn {spec}: {path} has no function {name!r} (it has {found})")
    return fn


@dataclass
class RewardRule:
    """A loaded hook and how it combines with the RM (module docstring)."""

    spec: str
    fn: RewardFn
    how: str = "sum"
    weight: float = 1.0
    floor: float = -10.0

    def values(self, prompts: Sequence[Text], responses: Sequence[Text]) -> list[float | None]:
        return rule_values(self.fn, self.spec, prompts, responses)

    def combine(self, rm: Sequence[float], rule: Sequence[float | None]) -> list[float]:
        return combine(rm, rule, self.how, self.weight, self.floor)


def rule_values(
    fn: RewardFn, spec: str, prompts: Sequence[Text], responses: Sequence[Text]
) -> list[float | None]:
    """The hook on every (prompt, response): a finite float or None each; `RewardFnError` on the first
    item it raises on or answers with anything else."""
    out: list[float | None] = []
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        try:
            value = fn(prompt, response)
        except Exception as e:  # the hook is user code: any failure is that item's error
            raise RewardFnError(spec, i, prompt, f"raised {type(e).__name__}: {e}") from e
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise RewardFnError(
                spec, i, prompt, f"returned {value!r}; it must return a finite number or None"
            )
        out.append(float(value))
    return out


def combine(
    rm: Sequence[float], rule: Sequence[float | None], how: str, weight: float = 1.0, floor: float = -10.0
) -> list[float]:
    """The combined rewards (module docstring: the three rules and what None does)."""
    if how not in COMBINE_RULES:
        raise ValueError(f"--reward-combine must be one of {', '.join(COMBINE_RULES)}, got {how!r}")
    if len(rm) != len(rule):
        raise ValueError(f"got {len(rm)} rewards but {len(rule)} rule values")
    out = []
    for r, v in zip(rm, rule, strict=True):
        if how == "sum":
            out.append(r if v is None else r + weight * v)
        elif how == "gate":
            out.append(r if v is None or v > 0 else floor)
        else:
            out.append((0.0 if v is None else v) + weight * _sigmoid(r))
    return out


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


class RuleScorer:
    """A scorer whose reward is the RM's combined with a rule; `Scorer.score`'s signature."""

    def __init__(self, scorer: Any, rule: RewardRule) -> None:
        self.scorer, self.rule = scorer, rule
        self.card = getattr(scorer, "card", None)

    def score_parts(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        on_progress: Callable[[int], Any] | None = None,
    ) -> tuple[list[float], list[float | None], list[float]]:
        """(RM rewards, rule values, combined rewards); the rule runs first, so a failing hook costs no
        model time."""
        rule = self.rule.values(prompts, responses)
        rm = self.scorer.score(prompts, responses, on_progress)
        return list(rm), rule, self.rule.combine(rm, rule)

    def score(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[float]:
        return self.score_parts(prompts, responses, on_progress)[2]

    def score_texts(
        self, texts: Sequence[str], on_progress: Callable[[int], Any] | None = None
    ) -> list[float]:
        return self.score([""] * len(texts), texts, on_progress)


def score_groups_with_rule(
    scorer: Any, rule: RewardRule, groups: Sequence[tuple[Text, Sequence[Text]]], on_progress: Any = None
) -> tuple[list[list[float]], list[list[float]], list[list[float | None]]]:
    """(combined, RM, rule values) per group of (prompt, responses), scored in one batched call."""
    prompts = [p for p, rs in groups for _ in rs]
    rm, values, combined = RuleScorer(scorer, rule).score_parts(
        prompts, [r for _, rs in groups for r in rs], on_progress
    )
    out: tuple[list, list, list] = ([], [], [])
    start = 0
    for _, rs in groups:
        for part, flat in zip(out, (combined, rm, values), strict=True):
            part.append(list(flat[start : start + len(rs)]))
        start += len(rs)
    return out
