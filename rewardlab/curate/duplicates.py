"""Duplicates, near duplicates, contamination and contradictions, from normalised text and MinHash.

- normalised text: NFKC, lower case, whitespace collapsed (`normalize`); chat messages as "role: content".
  Rows identical byte for byte never get here: the loader drops them (counted as ``unusable``).
- exact_duplicate: a later row with the same normalised prompt and the same labelled pairs as an earlier
  one (the first copy is kept).
- near_duplicate: a later row whose prompt AND responses each have a word-3-gram Jaccard similarity of
  at least ``--near-duplicate`` with an earlier row's (MinHash signatures, 64 permutations, banded into
  16 x 4 for candidates, every candidate checked with the exact Jaccard). Both parts must match, so two
  answers to one long conversation are not near duplicates of each other.
- contamination: a training row whose prompt is, normalised or near (same threshold), a prompt of an
  ``--against`` file (compared by their words: HH turn markers and message roles left out, so a
  transcript, a pair and a chat file match), since a model trained on it has seen the test.
- contradiction: two rows labelling the same two responses of one prompt in opposite orders (both are
  flagged: nothing says which is right). Rows from different annotators are left to agreement.py.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from rewardlab.curate.flags import Flag
from rewardlab.data.types import PreferenceGroup, Text

NUM_PERM = 64
BANDS = 16
_PRIME = (1 << 61) - 1


_TURN = re.compile(r"(?:^|\n\n)(?:Human|Assistant|System|User):", re.IGNORECASE)


def normalize(text: Text) -> str:
    """Text for comparing: NFKC, lower case, whitespace collapsed; chat messages as "role: content"."""
    if isinstance(text, list):
        text = " ".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in text)
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def normalize_prompt(prompt: Text) -> str:
    """A prompt's words only, for decontamination: chat messages' contents, and an HH transcript without
    its "\n\nHuman:" / "\n\nAssistant:" markers, so one question matches in any of the formats."""
    if isinstance(prompt, list):
        prompt = " ".join(str(m.get("content", "")) for m in prompt)
    return normalize(_TURN.sub(" ", prompt))


def shingles(text: str, n: int = 3) -> set[int]:
    """Hashes (crc32) of the word n-grams of normalised text; a text shorter than n words is one shingle."""
    words = text.split()
    grams = [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]
    return {zlib.crc32(g.encode()) for g in grams}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class MinHash:
    """Signatures of shingle sets under NUM_PERM universal hash functions (seeded, so runs agree)."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, 1 << 31, NUM_PERM, dtype=np.uint64)
        self.b = rng.integers(0, 1 << 31, NUM_PERM, dtype=np.uint64)

    def signature(self, items: set[int]) -> np.ndarray:
        x = np.fromiter(items, dtype=np.uint64, count=len(items))
        return ((np.outer(x, self.a) + self.b) % np.uint64(_PRIME)).min(axis=0)

    def bands(self, sig: np.ndarray) -> list[bytes]:
        per = NUM_PERM // BANDS
        return [bytes([b]) + sig[b * per : (b + 1) * per].tobytes() for b in range(BANDS)]


def _pair_texts(g: PreferenceGroup) -> list[tuple[str, str]]:
    return [(normalize(g.responses[w]), normalize(g.responses[lose])) for w, lose in g.pairs]


def _response_shingles(g: PreferenceGroup) -> set[int]:
    """The responses' shingles, each salted by its place in the label order (most wins first), so a row
    matches a near copy of itself, not the same texts labelled the other way (that is a contradiction)."""
    wins = [sum(1 for w, _ in g.pairs if w == k) for k in range(len(g.responses))]
    order = sorted(range(len(g.responses)), key=lambda k: -wins[k])
    return {
        h ^ (place * 0x85EBCA6B) for place, k in enumerate(order) for h in shingles(normalize(g.responses[k]))
    }


def _annotator(g: PreferenceGroup) -> str:
    return str(g.meta.get("annotator", ""))


def duplicates(groups: Sequence[PreferenceGroup], threshold: float) -> list[Flag]:
    """exact_duplicate and near_duplicate flags within one file (the later copy is flagged)."""
    flags: list[Flag] = []
    first: dict[tuple, str] = {}
    exact: set[str] = set()
    for g in groups:
        key = (normalize(g.prompt), tuple(sorted(_pair_texts(g))), _annotator(g))
        if key in first:
            flags.append(Flag(g.source, "exact_duplicate", 1.0, f"normalised copy of {first[key]}"))
            exact.add(g.source)
        else:
            first[key] = g.source
    if threshold >= 1.0:
        return flags
    hasher = MinHash()
    buckets: dict[bytes, list[int]] = defaultdict(list)
    prompt_sets, response_sets = [], []
    for i, g in enumerate(groups):
        ps = shingles(normalize(g.prompt))
        rs = _response_shingles(g)
        prompt_sets.append(ps)
        response_sets.append(rs)
        if g.source in exact:
            continue
        sig = hasher.signature({h ^ 0x9E3779B9 for h in ps} | rs)
        candidates: set[int] = set()
        for band in hasher.bands(sig):
            candidates.update(buckets[band])
            buckets[band].append(i)
        best, best_j = -1, 0.0
        for j in sorted(candidates):
            if _annotator(groups[j]) != _annotator(g):
                continue
            jp, jr = jaccard(ps, prompt_sets[j]), jaccard(rs, response_sets[j])
            if min(jp, jr) >= threshold and min(jp, jr) > best_j:
                best, best_j = j, min(jp, jr)
        if best >= 0:
            flags.append(
                Flag(
                    g.source,
                    "near_duplicate",
                    best_j,
                    f"prompt and responses >= {best_j:.2f} Jaccard with {groups[best].source}",
                )
            )
    return flags


def contradictions(groups: Sequence[PreferenceGroup]) -> list[Flag]:
    """Rows (of one annotator, or without one) that order the same two responses of a prompt oppositely."""
    seen: dict[tuple, list[str]] = defaultdict(list)
    for g in groups:
        p = normalize(g.prompt)
        for a, b in _pair_texts(g):
            seen[(p, a, b, _annotator(g))].append(g.source)
    flagged: dict[str, str] = {}
    for (p, a, b, who), locs in seen.items():
        other = seen.get((p, b, a, who))
        if not other:
            continue
        for loc in locs:
            flagged.setdefault(loc, f"the same pair is labelled the other way at {other[0]}")
    return [Flag(loc, "contradiction", 1.0, detail) for loc, detail in flagged.items()]


def contamination(
    groups: Sequence[PreferenceGroup], against: dict[str, Sequence[PreferenceGroup]], threshold: float
) -> list[Flag]:
    """Training rows whose prompt is (normalised, or near at `threshold`) a prompt of an --against file."""
    exact: dict[str, str] = {}
    hasher = MinHash(seed=1)
    buckets: dict[bytes, list[int]] = defaultdict(list)
    other: list[tuple[str, set[int]]] = []
    for name, eval_groups in against.items():
        for g in eval_groups:
            p = normalize_prompt(g.prompt)
            exact.setdefault(p, g.source or name)
            if threshold < 1.0:
                s = shingles(p)
                for band in hasher.bands(hasher.signature(s)):
                    buckets[band].append(len(other))
                other.append((g.source or name, s))
    flags = []
    for g in groups:
        p = normalize_prompt(g.prompt)
        if p in exact:
            flags.append(Flag(g.source, "contamination", 1.0, f"prompt also at {exact[p]}"))
            continue
        if threshold >= 1.0:
            continue
        s = shingles(p)
        candidates = {i for band in hasher.bands(hasher.signature(s)) for i in buckets.get(band, [])}
        best = max(((jaccard(s, other[i][1]), i) for i in candidates), default=(0.0, -1))
        if best[0] >= threshold:
            flags.append(
                Flag(
                    g.source,
                    "contamination",
                    best[0],
                    f"prompt {best[0]:.2f} Jaccard with {other[best[1]][0]}",
                )
            )
    return flags
