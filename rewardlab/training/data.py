"""Training data for `train`: the training, model-selection and test sets, and the batches the loop draws.

In-memory and streamed (``--stream``, a memory-mapped token cache) training data share one batch path:
both are indexed with ``take(indices)`` and batched by `batch_plan.plan_batches` over their lengths
column, so a streamed run and an in-memory run with the same seed train on the same batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardlab.config import TrainConfig
from rewardlab.data.batch_plan import Steps, plan_batches
from rewardlab.data.types import PreferenceGroup
from rewardlab.progress import Reporter


@dataclass
class Datasets:
    train: list[PreferenceGroup]
    eval: list[PreferenceGroup]
    test: list[PreferenceGroup]
    lines: list[str]
    noise_ceiling: dict[str, float] = field(default_factory=dict)


def load_datasets(cfg: TrainConfig, load: Any) -> Datasets:
    """Training, model-selection and test items, with the loading summary and leakage warnings.

    `load(path, format)` reads one file (the objective's reader); no ``--data``: the built-in demo task.
    """
    from rewardlab.data import find_leakage

    if cfg.stream and cfg.data is None:
        raise ValueError("--stream reads --data of preferences (--objective pairs); drop --stream otherwise")
    if cfg.data is None:
        return demo_datasets(cfg)
    lines: list[str] = []
    train: list = []
    if not cfg.stream:  # --stream reads --data later, into the token cache (open_stream)
        train, summary = load(cfg.data, cfg.format)
        lines += summary.lines()
    if cfg.eval_data:
        eval_groups, s = load(cfg.eval_data, cfg.format)
        lines += s.lines()
    elif cfg.stream:
        eval_groups = []  # held out while --data is streamed
    else:
        train, eval_groups = split_by_prompt(train, cfg.eval_fraction, cfg.seed)
        lines.append(f"held out {len(eval_groups)} prompts of --data for model selection")
    test: list[PreferenceGroup] = []
    if cfg.test_data:
        test, s = load(cfg.test_data, cfg.format)
        lines += s.lines()
    for name, other in (("eval", eval_groups), ("test", test)):
        leaked = find_leakage(train, other) if other else []
        if leaked:
            lines.append(f"warning: {len(leaked)} prompts occur in both train and {name} data (leakage)")
    return Datasets(train, eval_groups, test, lines)


def demo_datasets(cfg: TrainConfig) -> Datasets:
    """The built-in demo task's splits; its gold reward gives each held-out split a noise ceiling."""
    from rewardlab.data.gold import noise_ceiling
    from rewardlab.demo.task import demo_splits

    splits = demo_splits(seed=cfg.seed)
    train = splits["train"][: cfg.demo_prompts] if cfg.demo_prompts else splits["train"]
    ds = Datasets(train, splits["eval"], splits["test"], ["data: built-in demo task (docs/demo.md)"])
    ds.noise_ceiling = {k: noise_ceiling(v) for k, v in (("eval", ds.eval), ("test", ds.test))}
    return ds


def split_by_prompt(
    groups: list[PreferenceGroup], fraction: float, seed: int
) -> tuple[list[PreferenceGroup], list[PreferenceGroup]]:
    """Hold out a fraction of prompts; every group of one prompt lands on the same side."""
    if fraction <= 0:
        return groups, []
    train, held = [], []
    for g in groups:
        (held if held_out(g, fraction, seed) else train).append(g)
    return train, held


def held_out(group: PreferenceGroup, fraction: float, seed: int) -> bool:
    """Whether `split_by_prompt` holds `group` out: a hash of (seed, normalised prompt) below `fraction`."""
    from rewardlab.data.loading import normalize_prompt

    key = f"{seed}:{normalize_prompt(group.prompt)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < fraction


def open_stream(cfg: TrainConfig, encoder: Any, data: Datasets, reporter: Reporter) -> Any:
    """--stream: the token cache of --data (built or reused); held-out prompts become data.eval."""
    from rewardlab.data.token_cache import open_token_cache

    split = not cfg.eval_data and cfg.eval_fraction > 0
    cache = open_token_cache(
        cfg.data,
        encoder,
        format=cfg.format,
        holdout=(lambda g: held_out(g, cfg.eval_fraction, cfg.seed)) if split else None,
        holdout_key=f"split_by_prompt fraction={cfg.eval_fraction} seed={cfg.seed}" if split else "",
        reporter=reporter,
    )
    lines = [*cache.summary.lines(), cache.line()]
    if not cfg.eval_data:
        data.eval = cache.heldout
        lines.append(f"held out {len(data.eval)} prompts of --data for model selection")
    for name, other in (("eval", data.eval), ("test", data.test)):
        leaked = cache.shared_prompts(other) if other else []
        if leaked:
            lines.append(f"warning: {len(leaked)} prompts occur in both train and {name} data (leakage)")
    data.lines += lines
    return cache


class EncodedItems(list):
    """Encoded training items held in memory, read like a `TokenCache`: ``take(indices)`` and ``lengths``."""

    def take(self, indices: Sequence[int]) -> list:
        return [self[int(i)] for i in indices]

    @property
    def lengths(self) -> list[int]:
        return [item.num_tokens for item in self]


def optimizer_steps(items: Any, cfg: TrainConfig, epoch: int, rank: int, world: int) -> Steps:
    """This process's optimizer steps of one epoch: each a list of `cfg.grad_accum` micro-batches of
    item indices. Every process takes every world-th batch (equal counts), the same for in-memory and
    streamed items (`plan_batches` over their lengths)."""
    plan = plan_batches(items.lengths, cfg.batch_size, cfg.seed, epoch, length_grouped=cfg.length_grouped)
    return plan.shard(rank, world).steps(cfg.grad_accum)
