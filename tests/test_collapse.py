"""A run whose rewards stop differing is reported as collapsed, once, with the flag to change."""

from __future__ import annotations

import json
import math

import torch
from test_train import _cfg, _Messages, _pairs_file

from rewardlab.training.collapse import COLLAPSE_SD, CollapseWatch, reward_spread
from rewardlab.training.run import train


def test_watch_warns_once_after_a_window_of_flat_steps_past_the_warmup():
    watch = CollapseWatch(lr=1e-4, warmup_steps=10, window=5)
    assert all(watch.update(s, 0.0) is None for s in range(1, 11))  # warmup: never counted
    assert [watch.update(s, 0.0) is None for s in range(11, 16)] == [True] * 4 + [False]
    assert watch.update(16, 0.0) is None  # once per run
    assert "--lr (now 0.0001)" in CollapseWatch(lr=1e-4, window=1).update(1, 0.0)


def test_a_healthy_or_unmeasured_step_breaks_the_run():
    watch = CollapseWatch(lr=1e-4, window=3)
    for step, spread in enumerate([0.0, 0.0, 0.5, 0.0, 0.0, math.nan, 0.0, 0.0], start=1):
        assert watch.update(step, spread) is None
    assert watch.update(9, 0.0) is not None


def test_spread_ignores_masked_rewards():
    assert reward_spread(torch.tensor([1.0, 1.0, -math.inf, math.nan])) == 0.0
    assert math.isnan(reward_spread(torch.tensor([2.0])))
    assert abs(reward_spread(torch.tensor([0.0, 2.0])) - math.sqrt(2)) < 1e-6


def _reward_sds(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["reward_sd"] for r in rows if "loss" in r]


def test_a_collapsed_run_is_reported_and_a_healthy_one_is_not(tiny_backbone, tmp_path):
    data = _pairs_file(tmp_path / "pairs.jsonl", n=48)
    runs = {}
    for lr in (2e-3, 0.5):  # 0.5: Adam moves every weight by ~0.5 a step, the network saturates
        reporter = _Messages()
        out = tmp_path / f"out-{lr}"
        train(_cfg(tiny_backbone, tmp_path, "bert", data=data, lr=lr, epochs=6, output_dir=str(out)),
              reporter=reporter)  # fmt: skip
        runs[lr] = (reporter.lines, _reward_sds(out))
    healthy, collapsed = runs[2e-3], runs[0.5]
    assert len(healthy[1]) == len(collapsed[1]) == 72
    assert not [t for t in healthy[0] if "training has collapsed" in t]
    assert min(healthy[1][-20:]) > 100 * COLLAPSE_SD  # a trained model spreads its rewards
    assert max(collapsed[1][1:]) < COLLAPSE_SD
    warnings = [t for t in collapsed[0] if "training has collapsed" in t]
    assert len(warnings) == 1 and "up to step 50" in warnings[0] and "--lr (now 0.5)" in warnings[0]
