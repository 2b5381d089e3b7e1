"""Agreement filtering for rows that carry per-annotator labels (the annotation app's export).

The app's exports (docs/annotate.md) write one row per task per annotator, with ``annotator`` and the
task ``id``: ranking rows, or one pair row per ordered pair. Rows are grouped into items by ``id`` (or,
without one, by the normalised prompt and its set of responses). For every two annotators of an item and
every two of its responses, the two votes (a above b, b above a, tie) agree or not; the item's agreement
is the share that agree (mean pairwise percent agreement, 1 = unanimous). Items below ``--min-agreement``
flag all their rows (``low_agreement``), as HelpSteer2-Preference drops its low-agreement pairs.
Items with one annotator are not judged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

from rewardlab.curate.duplicates import normalize
from rewardlab.curate.flags import Flag
from rewardlab.data.types import PreferenceGroup


@dataclass
class AgreementResult:
    items: int = 0
    """Items labelled by at least two annotators."""
    annotators: int = 0
    mean_before: float | None = None
    """Mean item agreement over all judged items."""
    mean_after: float | None = None
    """Mean item agreement over the items that pass the threshold."""
    per_item: dict[str, float] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)


def _votes(g: PreferenceGroup) -> dict[tuple[str, str], int]:
    """Vote per unordered response pair (texts sorted): +1 first above second, -1 below, 0 tie."""
    texts = [normalize(r) for r in g.responses]
    votes: dict[tuple[str, str], int] = {}
    for i, j in combinations(range(len(texts)), 2):
        key = tuple(sorted((texts[i], texts[j])))
        if (i, j) in g.pairs:
            v = 1
        elif (j, i) in g.pairs:
            v = -1
        elif g.ranks is not None:
            v = 0  # a ranking row that ties them
        else:
            continue  # a pair row says nothing about the pairs it does not hold
        votes[key] = v if texts[i] == key[0] else -v  # type: ignore[index]
    return votes


def agreement(groups: Sequence[PreferenceGroup], min_agreement: float) -> AgreementResult:
    if not any("annotator" in g.meta for g in groups):
        return AgreementResult()
    items: dict[str, list[PreferenceGroup]] = defaultdict(list)
    for g in groups:
        if "annotator" not in g.meta:
            continue
        key = g.meta.get("id")
        if key is None:
            key = normalize(g.prompt) + "\x00" + "\x00".join(sorted(normalize(r) for r in g.responses))
        items[str(key)].append(g)
    result = AgreementResult(
        annotators=len({str(g.meta["annotator"]) for g in groups if "annotator" in g.meta})
    )
    for key, rows in items.items():
        by_annotator: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        for g in rows:
            by_annotator[str(g.meta["annotator"])].update(_votes(g))
        if len(by_annotator) < 2:
            continue
        agree = total = 0
        for a, b in combinations(sorted(by_annotator), 2):
            for pair, vote in by_annotator[a].items():
                if pair in by_annotator[b]:
                    total += 1
                    agree += vote == by_annotator[b][pair]
        if not total:
            continue
        share = agree / total
        result.per_item[key] = share
        if share < min_agreement:
            who = ", ".join(sorted(by_annotator))
            for g in rows:
                detail = f"item {key[:60]!r}: {100 * share:.0f}% pairwise agreement among {who}"
                result.flags.append(Flag(g.source, "low_agreement", share, detail))
    values = list(result.per_item.values())
    result.items = len(values)
    if values:
        result.mean_before = sum(values) / len(values)
        kept = [v for v in values if v >= min_agreement]
        result.mean_after = sum(kept) / len(kept) if kept else None
    return result
