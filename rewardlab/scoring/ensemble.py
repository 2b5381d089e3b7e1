"""Reward-model ensembles against overoptimization (Coste et al. 2023): train k members, combine them.

An ensemble is one folder: ``ensemble.json`` (members, combination rule, λ, how the members differ) and
one ordinary reward-model folder per member (``member-0/``, ...). `load_scorer` opens a single model or
an ensemble alike, and `EnsembleScorer.score` has `Scorer.score`'s signature, so `rewardlab bon`,
`rewardlab score`-style code and the overoptimization study take either.

Rules, over the k member rewards r_1..r_k of one response (each standardised with its own card's
reward_mean/reward_std, so members trained apart share a scale):
- ``mean``: the average.
- ``min`` (worst-case optimisation, WCO): the lowest member reward.
- ``uwo`` (uncertainty-weighted optimisation): mean - λ · variance, the population variance over members.

Training the members is rewardlab.training.ensemble (`train_ensemble`), so the reward server, which
loads ensembles through this module, does not depend on the training loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.types import Text

ENSEMBLE_CARD = "ensemble.json"
ENSEMBLE_VERSION = 1
RULES = ("mean", "min", "uwo")


def combine(member_scores: Sequence[Sequence[float]], rule: str, lam: float = 1.0) -> list[float]:
    """Combine k lists of n rewards (member-major) into n rewards by `rule` (mean, min, uwo)."""
    if rule not in RULES:
        raise ValueError(f"ensemble rule {rule!r} is not one of {', '.join(RULES)}")
    scores = np.asarray(member_scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"member scores must be k lists of equal length, got shape {scores.shape}")
    if rule == "mean":
        out = scores.mean(0)
    elif rule == "min":
        out = scores.min(0)
    else:
        out = scores.mean(0) - lam * scores.var(0)
    return out.tolist()


@dataclass
class EnsembleCard:
    """What ``ensemble.json`` records; `EnsembleScorer.from_pretrained` reads it."""

    members: list[str]
    """Member folders, relative to the ensemble folder."""
    rule: str = "mean"
    lam: float = 1.0
    """λ of the uwo rule."""
    normalize: bool = True
    """Standardise each member with its card's reward_mean / reward_std before combining."""
    how: str = "seeds"
    seeds: list[int] = field(default_factory=list)
    data: str = ""
    format_version: int = ENSEMBLE_VERSION

    def save(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        Path(folder, ENSEMBLE_CARD).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> EnsembleCard:
        file = Path(folder, ENSEMBLE_CARD)
        raw = json.loads(file.read_text())
        if raw.get("format_version", 0) > ENSEMBLE_VERSION:
            raise ValueError(
                f"{file}: format_version {raw['format_version']} is newer than this rewardlab; upgrade"
            )
        card = cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})
        if card.rule not in RULES:
            raise ValueError(f"{file}: rule {card.rule!r} is not one of {', '.join(RULES)}; edit the file")
        if not card.members:
            raise ValueError(f"{file}: 'members' is empty")
        return card


def is_ensemble(path: str | Path) -> bool:
    return Path(path, ENSEMBLE_CARD).is_file()


class EnsembleScorer:
    """k `Scorer`s combined by one rule; `score` and `score_texts` behave like `Scorer`'s."""

    def __init__(self, scorers: Sequence[Any], card: EnsembleCard) -> None:
        if len(scorers) != len(card.members):
            raise ValueError(f"{len(scorers)} scorers for {len(card.members)} members")
        self.scorers = list(scorers)
        self.card = card

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | None = None,
        bf16: bool = False,
        max_batch_tokens: int | None = None,
    ) -> EnsembleScorer:
        from rewardlab.scoring.scorer import Scorer

        card = EnsembleCard.load(path)
        scorers = []
        for member in card.members:
            folder = Path(path, member)
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"{Path(path, ENSEMBLE_CARD)} lists member {member!r}, missing at {folder}"
                )
            scorers.append(
                Scorer.from_pretrained(folder, device, bf16=bf16, max_batch_tokens=max_batch_tokens)
            )
        return cls(scorers, card)

    def with_rule(self, rule: str, lam: float | None = None) -> EnsembleScorer:
        """The same members under another rule (no reloading)."""
        lam = self.card.lam if lam is None else lam
        return EnsembleScorer(self.scorers, replace(self.card, rule=rule, lam=lam))

    def score_members(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[list[float]]:
        """Each member's (standardised) rewards, member-major; progress advances k × len(prompts)."""
        out = []
        for scorer in self.scorers:
            rewards = np.asarray(scorer.score(prompts, responses, on_progress), dtype=float)
            if self.card.normalize and scorer.card is not None:
                std = scorer.card.reward_std if scorer.card.reward_std > 0 else 1.0
                rewards = (rewards - scorer.card.reward_mean) / std
            out.append(rewards.tolist())
        return out

    def score(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[float]:
        """Combined rewards for each (prompt, response), in input order."""
        return combine(self.score_members(prompts, responses, on_progress), self.card.rule, self.card.lam)

    def score_texts(
        self, texts: Sequence[str], on_progress: Callable[[int], Any] | None = None
    ) -> list[float]:
        return self.score([""] * len(texts), texts, on_progress)


def load_scorer(
    path: str | Path, device: str | None = None, bf16: bool = False, max_batch_tokens: int | None = None
) -> Any:
    """A `Scorer` for a reward-model folder, an `EnsembleScorer` for an ensemble folder, a `JudgeScorer`
    for a judge config (judge.json, or a folder holding one; rewardlab.judge)."""
    from rewardlab.judge.config import is_judge

    if is_judge(path):
        from rewardlab.judge.scorer import JudgeScorer

        return JudgeScorer.from_config(path, device, bf16=bf16)
    if is_ensemble(path):
        return EnsembleScorer.from_pretrained(path, device, bf16=bf16, max_batch_tokens=max_batch_tokens)
    from rewardlab.scoring.scorer import Scorer

    return Scorer.from_pretrained(path, device, bf16=bf16, max_batch_tokens=max_batch_tokens)
