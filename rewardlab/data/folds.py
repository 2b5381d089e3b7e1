"""K-fold cross-validation by problem: every solution of one problem lands in the same fold.

Best-of-N and verifier numbers on real samples are only honest when no test problem was seen in
training (Cobbe et al. 2021 split by problem too): the four candidates of a problem share its question,
and a verifier that saw three of them in training has seen the question, the reference values and
which answer was right. Folds are assigned by a seeded shuffle of the distinct normalised questions,
so the assignment does not depend on row order and every problem is held out exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rewardlab.data.loading import normalize_prompt


def problem_folds(questions: Sequence[str], k: int, seed: int = 0) -> list[int]:
    """The fold (0..k-1) of each item, by its question: equal questions share a fold; fold sizes (in
    distinct questions) differ by at most one."""
    if k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2 folds, got {k}")
    keys = sorted({normalize_prompt(q) for q in questions})
    if len(keys) < k:
        raise ValueError(f"{len(keys)} distinct problems cannot fill {k} folds")
    random.Random(f"problem_folds:{seed}").shuffle(keys)
    fold_of = {key: i % k for i, key in enumerate(keys)}
    return [fold_of[normalize_prompt(q)] for q in questions]


def split_fold(items: Sequence, folds: Sequence[int], fold: int) -> tuple[list, list]:
    """(training items, held-out items) for one fold."""
    train = [x for x, f in zip(items, folds, strict=True) if f != fold]
    held = [x for x, f in zip(items, folds, strict=True) if f == fold]
    return train, held
