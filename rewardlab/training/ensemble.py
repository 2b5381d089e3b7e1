"""Train a reward-model ensemble against overoptimization (Coste et al. 2023): k members into one folder.

Members differ by seed (head initialisation and data order, same data) and/or by a bootstrap resample of
the training prompts (drawn with replacement; each drawn row gets a ``bootstrap_draw`` field so the loader
does not drop repeats as duplicates). Training reuses `rewardlab.training.run.train` for every member;
the folder (``ensemble.json`` + ``member-i/``) is read by rewardlab.scoring.ensemble.

    rewardlab ensemble train --k 3 --how seeds --output-dir runs/ens
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rewardlab.config import TrainConfig
from rewardlab.progress import Reporter
from rewardlab.scoring.ensemble import RULES, EnsembleCard

HOWS = ("seeds", "bootstrap", "both")


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
    """Train k members with `training.run.train` into cfg.output_dir/member-i and write ensemble.json.

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
