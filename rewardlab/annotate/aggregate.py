"""Turning several annotators' rankings of one task into one ranking, and rankings into pairs.

Rankings follow the core ranking format: `ranking[i]` is the rank of response i, 1 = best, equal
ranks = tie. Two aggregation rules, both deterministic and tie-preserving:

- **borda**: each annotator gives response i one point for every response it ranked strictly worse
  and half a point for every other response tied with it; points are summed over annotators and
  responses are ranked by total points (equal totals tie).
- **majority** (Copeland's pairwise-majority rule): for every pair (i, j), i wins the pair when more
  annotators ranked i above j than j above i (equal counts: half a win each); responses are ranked
  by their number of pair wins (equal counts tie). With one annotator both rules return that
  annotator's ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

RULES = ("majority", "borda")


def competition_ranks(scores: Sequence[float], higher_is_better: bool = False) -> list[int]:
    """Standard competition ranks ("1224"): 1 + the number of items strictly better than this one.

    >>> competition_ranks([2, 1, 2, 3])
    [2, 1, 2, 4]
    >>> competition_ranks([0.5, 2.0, 2.0], higher_is_better=True)
    [3, 1, 1]
    """
    sign = -1.0 if higher_is_better else 1.0
    keyed = [sign * s for s in scores]
    return [1 + sum(other < mine for other in keyed) for mine in keyed]


def borda_scores(rankings: Sequence[Sequence[int]]) -> list[float]:
    """Summed Borda points per response (see module docstring); all rankings must have one length."""
    k = len(rankings[0])
    totals = [0.0] * k
    for ranking in rankings:
        for i in range(k):
            worse = sum(ranking[j] > ranking[i] for j in range(k))
            tied = sum(ranking[j] == ranking[i] for j in range(k) if j != i)
            totals[i] += worse + 0.5 * tied
    return totals


def copeland_scores(rankings: Sequence[Sequence[int]]) -> list[float]:
    """Pairwise-majority wins per response (see module docstring)."""
    k = len(rankings[0])
    wins = [0.0] * k
    for i, j in combinations(range(k), 2):
        i_over_j = sum(r[i] < r[j] for r in rankings)
        j_over_i = sum(r[j] < r[i] for r in rankings)
        if i_over_j > j_over_i:
            wins[i] += 1
        elif j_over_i > i_over_j:
            wins[j] += 1
        else:
            wins[i] += 0.5
            wins[j] += 0.5
    return wins


def aggregate(rankings: Sequence[Sequence[int]], rule: str) -> list[int]:
    """One ranking from several of the same K responses, by `rule` ("majority" or "borda")."""
    if rule not in RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}: use one of {', '.join(RULES)}")
    if not rankings or len({len(r) for r in rankings}) != 1:
        raise ValueError("aggregate needs at least one ranking, all of the same length")
    scores = borda_scores(rankings) if rule == "borda" else copeland_scores(rankings)
    return competition_ranks(scores, higher_is_better=True)


def ranking_pairs(ranking: Sequence[int]) -> list[tuple[int, int]]:
    """(winner, loser) index pairs implied by a ranking; ties give no pair. C(K,2) pairs without ties."""
    pairs = []
    for i, j in combinations(range(len(ranking)), 2):
        if ranking[i] < ranking[j]:
            pairs.append((i, j))
        elif ranking[j] < ranking[i]:
            pairs.append((j, i))
    return pairs
