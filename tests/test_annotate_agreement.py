"""Agreement statistics and aggregation rules against values worked out by hand (in the docstrings)."""

from __future__ import annotations

import pytest

from rewardlab.annotate.aggregate import (
    aggregate,
    borda_scores,
    competition_ranks,
    copeland_scores,
    ranking_pairs,
)
from rewardlab.annotate.agreement import Judgement, agreement_report, krippendorff_alpha, ranking_alpha

# Two tasks, K = 3.  t1: alice [1,2,3], bob [1,3,2], carol [1,2,3];  t2: alice [2,1,3], bob [2,1,3].
SMALL = [
    Judgement("t1", "alice", [1, 2, 3]),
    Judgement("t1", "bob", [1, 3, 2]),
    Judgement("t1", "carol", [1, 2, 3]),
    Judgement("t2", "alice", [2, 1, 3]),
    Judgement("t2", "bob", [2, 1, 3]),
]


def test_pairwise_agreement_by_hand() -> None:
    """Response pairs (0,1), (0,2), (1,2) per annotator pair:
    t1 alice-bob agree on (0,1), (0,2), not (1,2): 2/3; alice-carol 3/3; bob-carol 2/3; t2 alice-bob 3/3.
    Overall 10/12. alice 2+3+3 = 8/9, bob 2+2+3 = 7/9, carol 3+2 = 5/6.
    """
    r = agreement_report(SMALL)
    assert r.comparisons == 12 and r.tied_comparisons == 0
    assert r.pairwise_agreement == pytest.approx(10 / 12)
    per = {a.annotator: a for a in r.per_annotator}
    assert per["alice"].agreement == pytest.approx(8 / 9) and per["alice"].comparisons == 9
    assert per["bob"].agreement == pytest.approx(7 / 9)
    assert per["carol"].agreement == pytest.approx(5 / 6) and per["carol"].comparisons == 6
    assert (r.tasks, r.overlapping_tasks, r.annotators, r.labels) == (2, 2, 3, 5)
    assert r.to_dict()["noise_ceiling"] == pytest.approx(10 / 12)


def test_alpha_on_rankings_by_hand() -> None:
    """Units (task, response): t1r0 [1,1,1], t1r1 [2,3,2], t1r2 [3,2,3], t2r0 [2,2], t2r1 [1,1], t2r2 [3,3].
    Coincidences (weight 1/(m-1)): o11 = 3+2 = 5, o22 = 1+2 = 3, o33 = 1+2 = 3, o23 = o32 = 2;
    n_c = 5 each, n = 15.
    Interval: D_o = 4/15, D_e = (2*25*1 + 2*25*4 + 2*25*1)/(15*14) = 10/7, alpha = 1 - 28/150 = 61/75.
    Ordinal: every rank is used n_c = 5 times, so d(1,2) = d(2,3) = (10-5)^2 = 25 and d(1,3) = (15-5)^2 = 100,
    25 x the interval distances: D_o = 100/15, D_e = 7500/210, alpha = 1 - 700/3750 = 61/75 again.
    """
    assert ranking_alpha(SMALL, "interval") == pytest.approx(61 / 75)
    assert ranking_alpha(SMALL, "ordinal") == pytest.approx(61 / 75)
    r = agreement_report(SMALL)
    assert (r.alpha_interval, r.alpha_ordinal) == (pytest.approx(61 / 75), pytest.approx(61 / 75))


def test_ordinal_and_interval_alpha_differ_by_hand() -> None:
    """Units [1,1], [1,2], [3,3]: o11 = 2, o12 = o21 = 1, o33 = 2; n1 = 3, n2 = 1, n3 = 2, n = 6.
    Ordinal: d(1,2) = (4 - 2)^2 = 4, d(1,3) = (6 - 2.5)^2 = 12.25, d(2,3) = (3 - 1.5)^2 = 2.25;
    D_o = 8/6, D_e = 2(3*4 + 6*12.25 + 2*2.25)/30 = 6, alpha = 1 - (4/3)/6 = 7/9.
    Interval: D_o = 2/6, D_e = 2(3*1 + 6*4 + 2*1)/30 = 29/15, alpha = 1 - 5/29 = 24/29.
    """
    units = [[1, 1], [1, 2], [3, 3]]
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(7 / 9)
    assert krippendorff_alpha(units, "interval") == pytest.approx(24 / 29)


def test_alpha_matches_krippendorffs_published_example() -> None:
    """Krippendorff (2011), 4 coders x 12 units, some missing: nominal .743, ordinal .815, interval .849."""
    n = None
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    units = [[v for v in column if v is not None] for column in zip(*coders, strict=True)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=5e-4)


def test_alpha_edge_cases() -> None:
    assert krippendorff_alpha([[1, 2, 3]], "interval") == pytest.approx(0.0)  # one unit: D_o = D_e = 2
    assert krippendorff_alpha([[1], [2]], "interval") is None  # nothing pairable
    assert krippendorff_alpha([[2, 2], [2, 2]], "interval") is None  # no variation at all
    # o12 = o21 = 2, n = 4: D_o = 4/4 = 1, D_e = 2*2*2/12 = 2/3, alpha = 1 - 3/2.
    assert krippendorff_alpha([[1, 2], [2, 1]], "interval") == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="unknown alpha metric"):
        krippendorff_alpha([[1, 2]], "ratio")


def test_ties_are_counted_apart() -> None:
    """alice ties responses 0 and 1; bob orders them: that comparison is set aside; (0,2), (1,2) agree."""
    r = agreement_report([Judgement("t", "alice", [1, 1, 3]), Judgement("t", "bob", [1, 2, 3])])
    assert (r.comparisons, r.tied_comparisons, r.pairwise_agreement) == (2, 1, 1.0)


def test_single_annotator_tasks_do_not_count() -> None:
    r = agreement_report([Judgement("t1", "alice", [1, 2]), Judgement("t2", "bob", [2, 1])])
    assert r.overlapping_tasks == 0 and r.pairwise_agreement is None and r.alpha_ordinal is None
    assert [a.agreement for a in r.per_annotator] == [None, None]


def test_outlier_is_flagged() -> None:
    """alice, bob, carol rank 5 tasks alike; dave reverses them. Per task each pair of annotators has 3
    comparisons: alice agrees with bob and carol (6), not dave (3): 6/9 = 2/3, likewise bob and carol;
    dave 0/9. Median 2/3, so dave (0 < 2/3 - 0.15) is an outlier and nobody else is."""
    js = []
    for t in range(5):
        for name in ("alice", "bob", "carol"):
            js.append(Judgement(f"t{t}", name, [1, 2, 3]))
        js.append(Judgement(f"t{t}", "dave", [3, 2, 1]))
    r = agreement_report(js)
    per = {a.annotator: a for a in r.per_annotator}
    assert per["alice"].agreement == pytest.approx(2 / 3) and per["dave"].agreement == 0.0
    assert per["dave"].comparisons == 45
    assert r.outliers == ["dave"]
    # With too few comparisons (one task: 9 each < min_comparisons 10) nobody is flagged.
    assert agreement_report(js[:4]).outliers == []
    assert agreement_report(js[:4], min_comparisons=9).outliers == ["dave"]


def test_inconsistent_judgements_are_rejected() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        agreement_report([Judgement("t", "a", [1, 2]), Judgement("t", "b", [1, 2, 3])])
    with pytest.raises(ValueError, match="appears twice"):
        agreement_report([Judgement("t", "a", [1, 2]), Judgement("t", "a", [2, 1])])


def test_competition_ranks() -> None:
    assert competition_ranks([2, 1, 2, 3]) == [2, 1, 2, 4]
    assert competition_ranks([1, 1, 2]) == [1, 1, 3]
    assert competition_ranks([0.5, 2.0, 2.0], higher_is_better=True) == [3, 1, 1]


def test_borda_and_majority_by_hand() -> None:
    """[1,2,3], [2,1,3], [1,3,2]. Borda points (worse + half tied): [2,1,0] + [1,2,0] + [2,0,1] = [5,3,1].
    Majority: 0 beats 1 (2-1), 0 beats 2 (3-0), 1 beats 2 (2-1): wins [2,1,0]. Both give [1,2,3]."""
    rankings = [[1, 2, 3], [2, 1, 3], [1, 3, 2]]
    assert borda_scores(rankings) == [5, 3, 1]
    assert copeland_scores(rankings) == [2, 1, 0]
    assert aggregate(rankings, "borda") == aggregate(rankings, "majority") == [1, 2, 3]


def test_borda_and_majority_can_disagree() -> None:
    """3 voters A>B>C, 2 voters B>C>A. Borda: A 3*2 = 6, B 3*1 + 2*2 = 7, C 2*1 = 2: B first.
    Majority: A beats B 3-2 and C 3-2, B beats C 5-0: A first."""
    rankings = [[1, 2, 3]] * 3 + [[3, 1, 2]] * 2
    assert borda_scores(rankings) == [6, 7, 2]
    assert aggregate(rankings, "borda") == [2, 1, 3]
    assert aggregate(rankings, "majority") == [1, 2, 3]


def test_aggregation_keeps_ties() -> None:
    """[1,1,3] + [1,2,3]: Borda [1.5+2, 1.5+1, 0] = [3.5, 2.5, 0].
    Opposite votes tie: [1,2] + [2,1] -> [1,1]."""
    assert borda_scores([[1, 1, 3], [1, 2, 3]]) == [3.5, 2.5, 0]
    assert aggregate([[1, 2], [2, 1]], "borda") == [1, 1]
    assert aggregate([[1, 2], [2, 1]], "majority") == [1, 1]
    assert aggregate([[2, 1, 3]], "majority") == [2, 1, 3]  # one annotator: their ranking
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        aggregate([[1, 2]], "mean")


def test_ranking_pairs() -> None:
    assert ranking_pairs([2, 1, 3]) == [(1, 0), (0, 2), (1, 2)]
    assert ranking_pairs([1, 1, 3]) == [(0, 2), (1, 2)]  # the tie gives no pair
