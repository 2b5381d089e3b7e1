"""Out-of-fold scoring: every pair is scored by a model that never trained on its prompt.

k-fold by prompt (a hash of the normalised prompt and the seed, so a prompt's rows share a fold and the
split is the same on every run): fold model f trains on the other k-1 folds through the one training
path, `training.run.train` (fresh backbone, no held-out selection: the last weights), and the `Scorer`
scores fold f. Cost: k trainings on (k-1)/k of the pairs each, i.e. (k-1) x the pair-passes of one
training run, plus one scoring pass over all pairs. ``--folds 1`` trains ONE model on ``--fold-sample``
of the prompts and scores the others (cost: fold_sample x one run; the sample itself is not judged).
With ``--model`` nothing trains: that model scores every pair (cost: one scoring pass).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rewardlab.curate.config import CurateConfig
from rewardlab.curate.rows import CurateData, write_jsonl
from rewardlab.data.loading import normalize_prompt
from rewardlab.data.types import PreferenceGroup
from rewardlab.progress import Reporter


@dataclass
class PairScores:
    """Per row (location): the margin r_winner - r_loser of each of its labelled pairs, as scored."""

    margins: dict[str, list[float]]
    how: str
    """How the scores were made, in one sentence for the report."""
    cost: str
    """What it cost: models trained, pair-passes, wall time."""
    unscored: list[str] = field(default_factory=list)
    """Rows no model judged (--folds 1: the training sample)."""
    self_judged: bool = False
    """--model was trained on exactly this data (its card's data hash matches)."""


def fold_of(group: PreferenceGroup, folds: int, seed: int) -> int:
    """The fold of a group: a hash of (seed, normalised prompt), so one prompt's rows share a fold."""
    key = f"curate:{seed}:{normalize_prompt(group.prompt)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % folds


def in_sample(group: PreferenceGroup, fraction: float, seed: int) -> bool:
    """--folds 1: whether the one model trains on this group's prompt."""
    key = f"curate-sample:{seed}:{normalize_prompt(group.prompt)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < fraction


def margins_of(scorer: object, groups: list[PreferenceGroup]) -> dict[str, list[float]]:
    """Score `groups` with a `Scorer`; per group (by source) the margin of each labelled pair."""
    rewards = scorer.score_groups([g.prompt for g in groups], [g.responses for g in groups])  # type: ignore[attr-defined]
    return {g.source: [r[w] - r[lose] for w, lose in g.pairs] for g, r in zip(groups, rewards, strict=True)}


def score_with_model(data: CurateData, scorer: object, model: str) -> PairScores:
    from rewardlab.data.loading import data_hash

    t0 = time.perf_counter()
    margins = margins_of(scorer, data.groups)
    card = getattr(scorer, "card", None)
    self_judged = bool(card is not None and card.data_hash and card.data_hash == data_hash(data.groups))
    how = f"scored by --model {model} directly (not out of fold)"
    if self_judged:
        how += (
            "; its card's data hash matches DATA, so it was trained on these very rows and judges its "
            "own pairs: a memorised wrong label looks right to it, so it finds fewer errors than "
            "out-of-fold models"
        )
    else:
        how += "; if it was trained on these rows it judges its own pairs and finds fewer of their errors"
    n_pairs = sum(len(m) for m in margins.values())
    cost = f"one scoring pass over {n_pairs} pairs, {time.perf_counter() - t0:.0f} s"
    return PairScores(margins, how, cost, self_judged=self_judged)


def score_out_of_fold(
    data: CurateData, cfg: CurateConfig, reporter: Reporter, exclude: frozenset[str] = frozenset()
) -> PairScores:
    """Train the fold models (`training.run.train`) and score each held-out fold with the `Scorer`.

    `exclude`: rows (locations) left out of every fold model's training (--rounds 2: the rows round 1
    flagged as label noise, so the second round's models learn from cleaner data); they are still
    scored in their own fold."""
    from rewardlab.config import TrainConfig
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.training.run import train

    t0 = time.perf_counter()
    groups = data.groups
    if cfg.folds == 1:
        sample = [in_sample(g, cfg.fold_sample, cfg.seed) for g in groups]
        plan = [
            (
                [g for g, s in zip(groups, sample, strict=True) if s],
                [g for g, s in zip(groups, sample, strict=True) if not s],
            )
        ]
    else:
        assignment = [fold_of(g, cfg.folds, cfg.seed) for g in groups]
        plan = [
            (
                [g for g, a in zip(groups, assignment, strict=True) if a != f],
                [g for g, a in zip(groups, assignment, strict=True) if a == f],
            )
            for f in range(cfg.folds)
        ]
    margins: dict[str, list[float]] = {}
    trained_pairs = 0
    with tempfile.TemporaryDirectory(prefix="rewardlab-curate-") as tmp:
        for f, (train_groups, held) in enumerate(plan):
            train_groups = [g for g in train_groups if g.source not in exclude]
            if not held or not train_groups:
                continue
            reporter.message(
                f"[bold]fold {f + 1}/{len(plan)}[/bold]: training on {len(train_groups)} prompts, "
                f"scoring {len(held)}"
            )
            rows_file = Path(tmp, f"fold{f}.jsonl")
            write_jsonl([data.raw[g.source] for g in train_groups], rows_file)
            out = Path(tmp, f"fold{f}")
            tcfg = TrainConfig(
                data=str(rows_file),
                format=data.format,  # type: ignore[arg-type]
                eval_fraction=0.0,
                output_dir=str(out),
                backbone=cfg.backbone,
                max_length=cfg.max_length,
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                seed=cfg.seed + f,
                overwrite=True,
            )
            train(tcfg, reporter)
            trained_pairs += sum(g.num_pairs for g in train_groups)
            scorer = Scorer.from_pretrained(out, device=cfg.device)
            margins.update(margins_of(scorer, held))
            del scorer
    scored = set(margins)
    unscored = [g.source for g in groups if g.source not in scored]
    n_models = sum(1 for t, h in plan if t and h)
    if cfg.folds == 1:
        how = (
            f"one model trained on {100 * cfg.fold_sample:.0f}% of the prompts (--folds 1) scored the other "
            f"{len(scored)} rows out of fold; the {len(unscored)} rows it trained on are not judged"
        )
    else:
        how = (
            f"{cfg.folds}-fold out-of-fold scoring by prompt: each pair scored by a model that never saw its "
            f"prompt ({cfg.backbone}, {cfg.epochs:g} epoch(s), max length {cfg.max_length}, lr {cfg.lr:g})"
        )
    if exclude:
        how += f"; the fold models trained without the {len(exclude)} rows an earlier round flagged"
    cost = (
        f"{n_models} model(s) trained on {trained_pairs} pair-passes x {cfg.epochs:g} epoch(s) "
        f"({trained_pairs / max(1, sum(g.num_pairs for g in groups)):.1f} x the pairs of one run), "
        f"{sum(len(m) for m in margins.values())} pairs scored, {time.perf_counter() - t0:.0f} s wall time"
    )
    return PairScores(margins, how, cost, unscored=unscored)


def score_ensemble(
    data: CurateData, cfg: CurateConfig, reporter: Reporter, exclude: frozenset[str] = frozenset()
) -> PairScores:
    """``--ensemble K``: K independent out-of-fold scorings (member m: its own fold split and training
    seeds, ``--seed`` + m), each pair's margin the mean of the members that scored it. One fold model's
    idiosyncratic errors average out, so the ranking of suspicious rows is steadier (docs/curation.md
    measures it on the demo task). K x the cost of one."""
    if cfg.ensemble <= 1:
        return score_out_of_fold(data, cfg, reporter, exclude)
    members = []
    for m in range(cfg.ensemble):
        reporter.message(f"[bold]ensemble member {m + 1}/{cfg.ensemble}[/bold]")
        members.append(score_out_of_fold(data, replace(cfg, seed=cfg.seed + m), reporter, exclude))
    margins: dict[str, list[float]] = {}
    for loc in data.order:
        got = [mem.margins[loc] for mem in members if loc in mem.margins]
        if got:
            margins[loc] = [sum(col) / len(got) for col in zip(*got, strict=True)]
    seeds = f"seeds {cfg.seed}..{cfg.seed + cfg.ensemble - 1}"
    how = f"mean margin of {cfg.ensemble} independent out-of-fold scorings ({seeds}): {members[0].how}"
    cost = f"{cfg.ensemble} scorings, each: {members[0].cost}"
    unscored = [loc for loc in data.order if loc not in margins]
    return PairScores(margins, how, cost, unscored=unscored)
