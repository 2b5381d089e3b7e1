"""The best-of-n estimator against brute-force enumeration, KL_bon by hand, and the Gao et al. fits
recovering known alpha and beta."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest

from rewardlab.bon.overopt import (
    bon_curve,
    fit_gold,
    fit_grid,
    kl_bon,
    n_for_kl,
    proxy_scores,
    selection_weights,
    study,
)


def brute_force(proxy, gold, n):
    """Average over every n-subset of the gold at the proxy argmax, ties split evenly among the tied."""
    total, count = 0.0, 0
    for subset in itertools.combinations(range(len(proxy)), n):
        top = max(proxy[i] for i in subset)
        tied = [i for i in subset if proxy[i] == top]
        total += sum(gold[i] for i in tied) / len(tied)
        count += 1
    return total / count


def test_kl_bon_by_hand():
    assert kl_bon(1) == 0.0
    assert kl_bon(2) == pytest.approx(math.log(2) - 0.5)  # 0.19315
    assert kl_bon(4) == pytest.approx(math.log(4) - 0.75)  # 0.63629
    assert kl_bon(64) == pytest.approx(4.158883 - 63 / 64, abs=1e-6)
    assert n_for_kl(kl_bon(37)) == pytest.approx(37, rel=1e-9)
    assert n_for_kl(0.0) == 1.0
    with pytest.raises(ValueError):
        kl_bon(0)


def test_selection_weights_by_hand():
    # C(i, 1) / C(5, 2) = i / 10: the i-th smallest (0-based) is the max of a pair in i of the 10 pairs
    assert selection_weights(5, 2) == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    assert selection_weights(5, 1) == pytest.approx([0.2] * 5)
    assert selection_weights(5, 5) == pytest.approx([0, 0, 0, 0, 1])
    # C(i, 2) / C(6, 3) = [0, 0, 1, 3, 6, 10] / 20
    assert selection_weights(6, 3) == pytest.approx(np.array([0, 0, 1, 3, 6, 10]) / 20)
    with pytest.raises(ValueError, match="pool size"):
        selection_weights(3, 4)


def test_bon_curve_small_pool_by_hand():
    # pairs: {3,1} -> 10, {3,2} -> 10, {1,2} -> 5, so best-of-2 gold = 25/3
    proxy_curve, gold_curve = bon_curve([3, 1, 2], [10, 0, 5])
    assert gold_curve == pytest.approx([5, 25 / 3, 10])
    assert proxy_curve == pytest.approx([2, 8 / 3, 3])


@pytest.mark.parametrize("seed", range(5))
def test_estimator_equals_enumeration_with_ties(seed):
    rng = random.Random(seed)
    m = 8
    proxy = [rng.randint(0, 4) for _ in range(m)]  # few values: many ties
    gold = [rng.gauss(0, 1) for _ in range(m)]
    p_curve, g_curve = bon_curve(proxy, gold)
    for n in range(1, m + 1):
        assert g_curve[n - 1] == pytest.approx(brute_force(proxy, gold, n), abs=1e-12)
        assert p_curve[n - 1] == pytest.approx(brute_force(proxy, proxy, n), abs=1e-12)


def test_estimator_is_stable_for_large_pools():
    rng = np.random.default_rng(0)
    proxy, gold = rng.normal(size=2000), rng.normal(size=2000)
    p_curve, g_curve = bon_curve(proxy, gold, n_max=2000)
    assert np.all(np.isfinite(g_curve))
    assert p_curve[-1] == pytest.approx(proxy.max())
    assert g_curve[-1] == pytest.approx(gold[np.argmax(proxy)])
    assert np.all(np.diff(p_curve) >= -1e-12)  # the proxy max can only grow with n


def test_fit_recovers_known_alpha_beta_bon_form():
    d = np.sqrt(kl_bon(np.array(fit_grid(1000))))
    fit = fit_gold(d, d * (1.3 - 0.4 * d), "bon")
    assert (fit.alpha, fit.beta) == pytest.approx((1.3, 0.4), abs=1e-9)
    assert fit.d_star == pytest.approx(1.3 / 0.8)
    assert fit.kl_star == pytest.approx((1.3 / 0.8) ** 2)
    assert kl_bon(fit.n_star) == pytest.approx(fit.kl_star)
    assert fit.r_star == pytest.approx(1.3**2 / (4 * 0.4))  # alpha^2 / 4 beta
    assert fit.r2 == pytest.approx(1.0)


def test_fit_recovers_known_alpha_beta_with_noise():
    rng = np.random.default_rng(1)
    d = np.sqrt(kl_bon(np.arange(1, 2001)))
    fit = fit_gold(d, d * (0.9 - 0.25 * d) + rng.normal(0, 0.01, d.shape), "bon")
    assert fit.alpha == pytest.approx(0.9, abs=0.01)
    assert fit.beta == pytest.approx(0.25, abs=0.01)
    assert 0.95 < fit.r2 <= 1.0


def test_fit_recovers_rl_form():
    d = np.linspace(0, 6, 40)
    safe = np.where(d > 0, d, 1)
    gain = np.where(d > 0, d * (0.8 - 0.5 * np.log(safe)), 0)
    fit = fit_gold(d, gain, "rl")
    assert (fit.alpha, fit.beta) == pytest.approx((0.8, 0.5), abs=1e-9)
    assert fit.d_star == pytest.approx(math.exp(0.8 / 0.5 - 1))  # dR/dd = alpha - beta(log d + 1) = 0


def test_no_peak_when_gold_keeps_rising():
    d = np.sqrt(kl_bon(np.arange(1, 65)))
    fit = fit_gold(d, 0.5 * d + 0.1 * d**2, "bon")
    assert fit.beta < 0 and math.isinf(fit.d_star) and math.isinf(fit.n_star)
    with pytest.raises(ValueError, match="choose one of"):
        fit_gold(d, d, "ppo")


def test_study_averages_prompts_and_finds_the_peak():
    # prompt A: the proxy's top pick is gold-bad (overoptimised); prompt B: the proxy is right
    proxy = [[1, 2, 3, 4], [1, 2, 3, 4]]
    gold = [[0, 2, 3, -5], [0, 1, 2, 3]]
    c = study("t", proxy, gold, n_boot=200)
    a = bon_curve(proxy[0], gold[0])[1]
    b = bon_curve(proxy[1], gold[1])[1]
    assert c.gold_mean == pytest.approx((a + b) / 2)
    assert c.gold_peak_n == int(np.argmax((a + b) / 2)) + 1
    assert np.all(np.array(c.gold_lo) <= np.array(c.gold_mean) + 1e-12)
    assert np.all(np.array(c.gold_mean) <= np.array(c.gold_hi) + 1e-12)
    assert c.d == pytest.approx(np.sqrt(kl_bon(np.arange(1, 5))))
    with pytest.raises(ValueError, match="max-n"):
        study("t", proxy, gold, n_max=5)


def test_proxy_scores_specs():
    row = {"scores": [1, 2], "member_scores": [[1.0, 4.0], [3.0, 0.0]]}
    assert proxy_scores(row, "scores") == [1, 2]
    assert proxy_scores({**row, "gold": [5, 6]}, "gold") == [5, 6]
    assert proxy_scores(row, "member:1") == [3.0, 0.0]
    assert proxy_scores(row, "min") == [1.0, 0.0]
    assert proxy_scores(row, "uwo", lam=1.0) == pytest.approx([2 - 1, 2 - 4])
    with pytest.raises(ValueError, match="member_scores"):
        proxy_scores({"scores": [1]}, "mean")


def test_overopt_cli_writes_plot_and_fits(tmp_path):
    from rewardlab.cli import main

    rng = np.random.default_rng(0)
    pool = tmp_path / "pool.jsonl"
    with pool.open("w") as f:
        for _ in range(12):
            gold = rng.normal(size=16)
            proxy = gold + rng.normal(scale=1.0, size=16) + 3 * (gold < -1.0)  # proxy loves some bad ones
            f.write(json.dumps({"prompt": "p", "scores": proxy.tolist(), "gold": gold.tolist()}) + "\n")
    out = tmp_path / "out"
    args = ["overopt", f"demo={pool}", "--out-dir", str(out), "--fit", "bon,rl", "--bootstrap", "50"]
    assert main(args) == 0
    payload = json.loads((out / "overopt.json").read_text())
    curve = payload["curves"][0]
    assert curve["name"] == "demo" and curve["n"][-1] == 16
    assert set(curve["fits"]) == {"bon", "rl"}
    assert (out / "overopt.png").read_bytes()[:4] == b"\x89PNG"
    # NAME=PATH@PROXY: one proxy for one file
    args = ["overopt", f"a λ=1={pool}@scores", str(pool), "--out-dir", str(out), "--bootstrap", "10"]
    args += ["--max-n", "8"]
    assert main(args) == 0
    names = [c["name"] for c in json.loads((out / "overopt.json").read_text())["curves"]]
    assert names == ["a λ=1", "pool"]
