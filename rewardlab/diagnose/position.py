"""The position-bias probe for pairwise judges: show every sampled pair in both orders (A/B swapped)
and measure how often the verdict flips, how much the judge prefers the first slot, and what the
order-averaged verdict is worth (accuracy against the labels, agreement with a known gold reward).

A reward model scores each response alone and has no position to be biased by; the probe runs for
scorers that can `compare` two responses (rewardlab.judge.JudgeScorer). Pure numbers from
`PairVerdict`s are computed by `position_from_verdicts`, so they are tested on hand-made values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardlab.data.types import PreferenceGroup


@dataclass
class PositionSection:
    pairs: int
    """Sampled (chosen, rejected) pairs, each judged in both orders."""
    errors: int
    """Pairs the judge could not answer in one of the orders (left out of every figure below)."""
    flip_rate: float | None
    """Fraction of pairs whose winner changes when A and B are swapped (ties left out)."""
    first_slot: float | None
    """Mean P(the response shown first wins) over both orders: 0.5 means no preference for a slot."""
    shift: float | None
    """Mean position bias in log-odds, (logit p_first - logit p_second) / 2 (logits mode only)."""
    accuracy_first: float | None
    """Accuracy against the labels with the chosen response always shown first."""
    accuracy_second: float | None
    """... with the chosen response always shown second."""
    accuracy: float | None
    """Accuracy of the order-averaged verdict (the judge's pairwise accuracy); ties count half."""
    gold_agreement: float | None = None
    """Order-averaged verdict against the gold ordering (demo task), pairs with distinct gold only."""
    longer_wins: float | None = None
    """How often the order-averaged verdict picks the longer response (pairs of unequal length)."""


def _acc(ps: Sequence[float]) -> float | None:
    return sum(1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0 for p in ps) / len(ps) if ps else None


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def position_from_verdicts(
    verdicts: Sequence[Any],
    gold_sign: Sequence[int] | None = None,
    length_sign: Sequence[int] | None = None,
    soft: bool = True,
) -> PositionSection:
    """The section from verdicts on (chosen, rejected) pairs. `gold_sign[i]` is +1 when the gold reward
    prefers the chosen response, -1 the rejected, 0 a gold tie; `length_sign` likewise for "chosen is
    longer"."""
    ok = [i for i, v in enumerate(verdicts) if v.error is None]
    flips = [verdicts[i].flipped for i in ok if verdicts[i].flipped is not None]
    first = [verdicts[i].p_first for i in ok]
    second = [verdicts[i].p_second for i in ok]
    both = [verdicts[i].p for i in ok]
    out = PositionSection(
        pairs=len(verdicts),
        errors=len(verdicts) - len(ok),
        flip_rate=sum(flips) / len(flips) if flips else None,
        # p_first = P(chosen wins | shown first); 1 - p_second = P(rejected wins | rejected shown first)
        first_slot=(sum(first) + sum(1 - p for p in second)) / (2 * len(ok)) if ok else None,
        shift=(sum((_logit(a) - _logit(b)) / 2 for a, b in zip(first, second, strict=True)) / len(ok))
        if ok and soft
        else None,
        accuracy_first=_acc(first),
        accuracy_second=_acc(second),
        accuracy=_acc(both),
    )
    if gold_sign is not None:
        agree = [verdicts[i].p if gold_sign[i] > 0 else 1 - verdicts[i].p for i in ok if gold_sign[i] != 0]
        out.gold_agreement = _acc(agree)
    if length_sign is not None:
        longer = [
            verdicts[i].p if length_sign[i] > 0 else 1 - verdicts[i].p for i in ok if length_sign[i] != 0
        ]
        out.longer_wins = _acc(longer)
    return out


def sample_pairs(
    groups: Sequence[PreferenceGroup], max_pairs: int, seed: int = 0
) -> list[tuple[int, int, int]]:
    """Up to `max_pairs` labelled pairs (group, winner, loser), a seeded sample over all groups."""
    pairs = [(gi, w, lo) for gi, g in enumerate(groups) for w, lo in g.pairs]
    if len(pairs) > max_pairs:
        pairs = sorted(random.Random(f"rewardlab-position:{seed}").sample(pairs, max_pairs))
    return pairs


def position_probe(
    judge: Any,
    groups: Sequence[PreferenceGroup],
    lengths: Sequence[Sequence[int]],
    max_pairs: int = 100,
    seed: int = 0,
    on_progress: Any = None,
) -> PositionSection:
    """Judge a seeded sample of labelled pairs in both orders (`judge.compare`) and summarise."""
    pairs = sample_pairs(groups, max_pairs, seed)
    verdicts = judge.compare(
        [groups[gi].prompt for gi, _, _ in pairs],
        [groups[gi].responses[w] for gi, w, _ in pairs],
        [groups[gi].responses[lo] for gi, _, lo in pairs],
        on_progress,
    )
    gold = None
    if pairs and all(isinstance(groups[gi].meta.get("gold"), list) for gi, _, _ in pairs):
        gold = [_sign(groups[gi].meta["gold"][w] - groups[gi].meta["gold"][lo]) for gi, w, lo in pairs]
    length = [_sign(lengths[gi][w] - lengths[gi][lo]) for gi, w, lo in pairs]
    soft = getattr(getattr(judge, "judge_config", None), "mode", "logits") == "logits"
    return position_from_verdicts(verdicts, gold, length, soft)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def position_block(doc: Any, diags: Sequence[Any]) -> None:
    """The report section (rewardlab.diagnose.report), for the diagnoses that have one."""
    have = [d for d in diags if getattr(d, "position", None) is not None]
    if not have:
        return
    doc.h(2, "Position bias (pairwise judge, A/B swapped)")
    doc.p(
        "Each sampled pair is judged twice, the chosen response shown first and then second. A judge "
        "without position bias keeps its verdict when the order changes (flip rate 0) and gives the first "
        "slot 50%; the order-averaged verdict (mean log-odds of both orders) cancels a constant bias."
    )
    rows = [
        ("pairs judged (errors)", lambda s: f"{s.pairs} ({s.errors})"),
        ("verdict flips when A/B are swapped", lambda s: pct(s.flip_rate)),
        ("P(first-shown response wins)", lambda s: pct(s.first_slot)),
        ("position shift, log-odds", lambda s: num(s.shift)),
        (
            "accuracy, chosen shown first / second",
            lambda s: f"{pct(s.accuracy_first)} / {pct(s.accuracy_second)}",
        ),
        ("accuracy, both orders averaged", lambda s: pct(s.accuracy)),
        ("agreement with the gold ordering", lambda s: pct(s.gold_agreement)),
        ("picks the longer response", lambda s: pct(s.longer_wins)),
    ]
    cols = ["", *(d.model for d in have)] if len(have) > 1 else ["", "value"]
    doc.table(cols, [[name, *(f(d.position) for d in have)] for name, f in rows])
