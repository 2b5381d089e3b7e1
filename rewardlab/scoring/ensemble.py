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

Members differ by seed (head initialisation and data order, same data) and/or by a bootstrap resample of
the training prompts (drawn with replacement; each drawn row gets a ``bootstrap_draw`` field so the loader
does not drop repeats as duplicates). Training reuses `rewardlab.train.train` for every member.

    rewardlab ensemble train --k 3 --how seeds --output-dir runs/ens
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import TrainConfig
from rewardlab.data.types import Text
from rewardlab.progress import Reporter

ENSEMBLE_CARD = "ensemble.json"
ENSEMBLE_VERSION = 1
RULES = ("mean", "min", "uwo")
HOWS = ("seeds", "bootstrap", "both")


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
    """A `Scorer` for a reward-model folder, an `EnsembleScorer` for an ensemble folder."""
    if is_ensemble(path):
        return EnsembleScorer.from_pretrained(path, device, bf16=bf16, max_batch_tokens=max_batch_tokens)
    from rewardlab.scoring.scorer import Scorer

    return Scorer.from_pretrained(path, device, bf16=bf16, max_batch_tokens=max_batch_tokens)


def bootstrap_rows(lines: Sequence[str], seed: int) -> list[str]:
    """A bootstrap resample of JSONL rows (with replacement, same count), each tagged with its draw index."""
    rng = random.Random(f"rewardlab-bootstrap:{seed}")
    rows = [json.loads(line) for line in lines if line.strip()]
    if not rows:
        raise ValueError("bootstrap_rows: no rows to resample")
    return [json.dumps({**rows[rng.randrange(len(rows))], "bootstrap_draw": j}) for j in range(len(rows))]


@dataclass
class EnsembleResult:
    output_dir: str
    card: EnsembleCard
    members: list[Any]
    """Each member's `TrainResult`."""
    wall_time_s: float


def _shared_data(cfg: TrainConfig, out: Path, how: str) -> TrainConfig:
    """Fix the data every member sees: the demo split written to files, or the user's files as given."""
    if cfg.data is None:
        from rewardlab.demo.task import demo_splits, write_demo_jsonl

        splits = demo_splits(seed=cfg.seed)
        train = splits["train"][: cfg.demo_prompts] if cfg.demo_prompts else splits["train"]
        folder = out / "data"
        folder.mkdir(parents=True, exist_ok=True)
        write_demo_jsonl(folder / "train.jsonl", train)
        write_demo_jsonl(folder / "eval.jsonl", splits["eval"])
        write_demo_jsonl(folder / "test.jsonl", splits["test"])
        return replace(
            cfg,
            data=str(folder / "train.jsonl"),
            eval_data=str(folder / "eval.jsonl"),
            test_data=str(folder / "test.jsonl"),
            demo_prompts=0,
        )
    if not cfg.eval_data:
        raise ValueError(
            "ensemble training with --data needs --eval-data: every member must select its model on the same "
            "held-out prompts (a per-member split would change with the seed)"
        )
    if how != "seeds" and not str(cfg.data).endswith(".jsonl"):
        raise ValueError(f"--how {how} resamples rows of a JSONL file; convert --data {cfg.data} to JSONL")
    return cfg


def train_ensemble(
    cfg: TrainConfig,
    k: int = 3,
    how: str = "seeds",
    rule: str = "mean",
    lam: float = 1.0,
    reporter: Reporter | None = None,
) -> EnsembleResult:
    """Train k members with `rewardlab.train.train` into cfg.output_dir/member-i and write ensemble.json.

    how='seeds': member i uses seed cfg.seed + i on the same data. 'bootstrap': member i trains on
    bootstrap resample i of the training rows (seed cfg.seed). 'both': resample i and seed cfg.seed + i.
    """
    import time

    from rewardlab.training.run import train

    if k < 2:
        raise ValueError(f"--k {k}: an ensemble needs at least 2 members")
    if how not in HOWS:
        raise ValueError(f"--how {how!r} is not one of {', '.join(HOWS)}")
    if rule not in RULES:
        raise ValueError(f"--rule {rule!r} is not one of {', '.join(RULES)}")
    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    out = Path(cfg.output_dir)
    base = _shared_data(cfg, out, how)
    results, seeds = [], []
    for i in range(k):
        seed = cfg.seed + i if how in ("seeds", "both") else cfg.seed
        member_cfg = replace(base, seed=seed, output_dir=str(out / f"member-{i}"))
        if how in ("bootstrap", "both"):
            lines = Path(str(base.data)).read_text(encoding="utf-8").splitlines()
            boot = out / "data" / f"train-bootstrap-{i}.jsonl"
            boot.parent.mkdir(parents=True, exist_ok=True)
            boot.write_text("\n".join(bootstrap_rows(lines, cfg.seed * 1000 + i)) + "\n", encoding="utf-8")
            member_cfg = replace(member_cfg, data=str(boot))
        reporter.message(f"ensemble member {i + 1}/{k}: seed {seed}, data {member_cfg.data}")
        results.append(train(member_cfg, reporter))
        seeds.append(seed)
    members = [f"member-{i}" for i in range(k)]
    card = EnsembleCard(members, rule, lam, True, how, seeds, str(cfg.data or "demo"))
    card.save(out)
    return EnsembleResult(str(out), card, results, time.perf_counter() - t0)
