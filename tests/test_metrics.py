"""Diagnostic statistics against values derived by hand in the comments (rewardlab.metrics, bootstrap_ci)."""

from __future__ import annotations

import math
import random

import pytest

from rewardlab.data.types import PreferenceGroup
from rewardlab.scoring import metrics as m
from rewardlab.scoring.evaluate import bootstrap_ci

LN3 = math.log(3)


def test_ece_hand_computed():
    # Δ = 0 -> confidence 0.5, outcome 0.5 (tie): bin [0.5, 0.55), gap 0.
    # Δ = ±ln 3 -> confidence σ(ln 3) = 0.75; outcomes 1, 1, 0 -> accuracy 2/3, gap 1/12, weight 3/4.
    # ECE = 3/4 * 1/12 = 1/16.
    deltas = [0.0, LN3, LN3, -LN3]
    assert m.expected_calibration_error(deltas) == pytest.approx(1 / 16)
    bins = [b for b in m.reliability_bins(deltas) if b.count]
    assert [(b.count, round(b.confidence, 6), round(b.accuracy, 6)) for b in bins] == [
        (1, 0.5, 0.5),
        (3, 0.75, round(2 / 3, 6)),
    ]
    assert bins[1].lo == pytest.approx(0.75) and bins[1].hi == pytest.approx(0.8)


def test_ece_of_a_perfectly_calibrated_set_is_zero_and_temperature_changes_it():
    # 3 of 4 pairs right at Δ = ±ln 3: confidence 0.75 = accuracy 0.75.
    assert m.expected_calibration_error([LN3, LN3, LN3, -LN3]) == pytest.approx(0.0)
    # at T = 2 the confidence is σ(ln 3 / 2) = √3 / (1 + √3) = 0.6340: ECE = 0.75 - 0.6340
    expected = 0.75 - math.sqrt(3) / (1 + math.sqrt(3))
    assert m.expected_calibration_error([LN3, LN3, LN3, -LN3], temperature=2.0) == pytest.approx(expected)


def test_pair_nll_hand_computed():
    assert m.pair_nll([0.0]) == pytest.approx(math.log(2))
    # -log σ(ln 3) = log(4/3); -log σ(-ln 3) = log 4
    assert m.pair_nll([LN3, -LN3]) == pytest.approx((math.log(4 / 3) + math.log(4)) / 2)


def test_fit_temperature_recovers_the_analytic_optimum_at_any_scale():
    # 3 pairs at Δ = 1 right, 1 at Δ = -1: the optimum has σ(1/T) = 3/4, so 1/T = ln 3.
    assert m.fit_temperature([1.0, 1.0, 1.0, -1.0]) == pytest.approx(1 / LN3, rel=1e-6)
    # rewards scaled by 1e-4 need a temperature scaled by 1e-4 (tiny untrained models)
    assert m.fit_temperature([1e-4, 1e-4, 1e-4, -1e-4]) == pytest.approx(1e-4 / LN3, rel=1e-6)
    assert m.fit_temperature([0.0, 0.0]) == 1.0
    # mean Δ <= 0: the loss falls all the way to 1/T = 0, every probability 0.5
    assert m.fit_temperature([1.0, -2.0]) == math.inf
    assert m.pair_nll([1.0, -2.0], math.inf) == pytest.approx(math.log(2))
    with pytest.raises(ValueError):
        m.fit_temperature([])


def test_spearman_hand_computed():
    # rank differences 0, 1, 1, 0: ρ = 1 - 6·2 / (4·15) = 0.8
    assert m.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties: x ranks (1, 2.5, 2.5, 4); Pearson with (1, 2, 3, 4) = 4.5 / √(4.5·5) = 3 / √10
    assert m.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / math.sqrt(10))
    assert m.spearman([5, 4, 3], [1, 2, 3]) == pytest.approx(-1.0)
    assert m.spearman([1, 1, 1], [1, 2, 3]) is None
    assert m.average_ranks([10, 20, 10, 5]) == [2.5, 4.0, 2.5, 1.0]


def test_length_rule_accuracy_hand_computed():
    # (chosen, rejected) lengths: longer wins 1, 0, ½ (equal), 1 -> 2.5 / 4
    assert m.length_rule_accuracy([10, 3, 4, 7], [5, 8, 4, 2]) == (0.625, 0.375)


def test_length_split_and_length_controlled_accuracy():
    # chosen longer: pairs 0 (Δ > 0, right) and 3 (Δ < 0, wrong) -> 0.5; chosen shorter: pair 1, wrong -> 0;
    # equal: pair 2, right -> 1; length-controlled = (0.5 + 0) / 2
    s = m.length_split_accuracy([10, 3, 4, 7], [5, 8, 4, 2], [1.0, -1.0, 1.0, -2.0])
    assert (s.chosen_longer, s.chosen_longer_pairs) == (0.5, 2)
    assert (s.chosen_shorter, s.chosen_shorter_pairs) == (0.0, 1)
    assert (s.equal, s.equal_pairs) == (1.0, 1)
    assert s.length_controlled == 0.25
    only_longer = m.length_split_accuracy([3], [1], [1.0])
    assert only_longer.length_controlled is None and only_longer.chosen_shorter is None


def test_bucket_accuracy_by_value_and_by_quantile():
    assert m.bucket_accuracy([1, 1, 2, 3, 3], [1, -1, 1, 1, 0]) == [
        ("1", 2, 0.5),
        ("2", 1, 1.0),
        ("3", 2, 0.75),
    ]
    # 8 distinct keys -> quartiles of two keys each
    got = m.bucket_accuracy(list(range(8)), [1, -1, 1, 1, 1, -1, -1, -1])
    assert got == [("[0, 2)", 2, 0.5), ("[2, 4)", 2, 1.0), ("[4, 6)", 2, 0.5), ("[6, inf)", 2, 0.0)]


def _pair(prompt, a, b, annotator, task_id=None, flip=False):
    """One annotator's pair row: `a` preferred to `b`; flip lists the responses the other way round."""
    meta = {"annotator": annotator} | ({"id": task_id} if task_id else {})
    if flip:
        return PreferenceGroup(prompt, [b, a], [(1, 0)], meta=meta)
    return PreferenceGroup(prompt, [a, b], [(0, 1)], meta=meta)


def test_krippendorff_alpha_and_pairwise_agreement_hand_computed():
    # Two annotators, three pair tasks; they agree on t1, t2 and disagree on t3.
    # Units (task, response) hold ranks: t1: (1,1), (2,2); t2: same; t3: (1,2), (2,1).
    # Coincidences: o11 = o22 = 4, o12 = o21 = 2; n1 = n2 = 6, n = 12.
    # D_o = 4/12, D_e = 2·6·6/(12·11) = 6/11, alpha = 1 - (1/3)/(6/11) = 7/18 (interval = ordinal here).
    groups = [
        _pair("p1", "x", "y", "ann"),
        _pair("p1", "x", "y", "bob", flip=True),
        _pair("p2", "u", "v", "ann"),
        _pair("p2", "u", "v", "bob"),
        _pair("p3", "s", "t", "ann"),
        _pair("p3", "t", "s", "bob"),
    ]
    report = m.annotator_agreement(groups)
    assert report is not None
    assert report.pairwise_agreement == pytest.approx(2 / 3)
    assert report.alpha_interval == pytest.approx(7 / 18)
    assert report.alpha_ordinal == pytest.approx(7 / 18)
    assert (report.annotators, report.overlapping_tasks, report.comparisons) == (2, 3, 3)


def test_agreement_uses_ranks_and_ids_and_needs_overlap():
    # ranking rows of one task (same id) by three annotators over 3 responses
    rows = [([1, 2, 3], "a"), ([1, 2, 3], "b"), ([2, 1, 3], "c")]
    groups = [
        PreferenceGroup(
            "q", ["r1", "r2", "r3"], [], ranks=[float(x) for x in r], meta={"annotator": who, "id": "t"}
        )
        for r, who in rows
    ]
    report = m.annotator_agreement(groups)
    # annotator pairs (a,b): 3/3 agree; (a,c): 2/3; (b,c): 2/3 -> 7/9
    assert report.pairwise_agreement == pytest.approx(7 / 9)
    no_overlap = [_pair("p1", "x", "y", "ann"), _pair("p2", "x", "y", "bob")]
    assert m.annotator_agreement(no_overlap) is None
    assert m.annotator_agreement([PreferenceGroup("p", ["x", "y"], [(0, 1)])]) is None


def test_bootstrap_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    # Synthetic: 120 prompts with one pair each, each right with probability 0.7. Over 120 datasets the
    # percentile interval should contain 0.7 in roughly 95% of them (binomial sd of the rate: 2%).
    rng = random.Random(1234)
    hits, trials = 0, 120
    for t in range(trials):
        per_group = [(1.0 if rng.random() < 0.7 else 0.0, 1) for _ in range(120)]
        lo, hi = bootstrap_ci(per_group, n_boot=300, seed=t)
        hits += lo <= 0.7 <= hi
    assert 0.88 <= hits / trials <= 0.99


def test_bootstrap_interval_degenerate_and_pooled():
    assert bootstrap_ci([(1.0, 1)] * 10, n_boot=50) == (1.0, 1.0)
    # every resample of two groups with 3/3 and 0/1 pooled lies in {0, 3/4, 1} -> bounds from that set
    lo, hi = bootstrap_ci([(3.0, 3), (0.0, 1)], n_boot=200)
    assert lo in (0.0, 0.75) and hi in (0.75, 1.0)
