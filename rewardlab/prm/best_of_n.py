"""Best-of-N over step-by-step solutions: the selection rules, in one place, and their accuracy.

A pool is one problem's candidate solutions (lists of steps) with their final answers, and any number of
verifier scores per candidate (`Pool.scores`: key → one score per candidate). Methods:

    <key>           argmax of that verifier: orm (outcome reward), prm_<agg> (the PRM solution score,
                    <agg> one of product, min, last, mean; prm/evaluate.py), or any other key a caller
                    fills (the benchmark's cross-validated "prm")
    weighted_<key>  verifier-weighted majority vote: the final answer with the largest sum of its
                    candidates' weights (Li et al. 2023 "DiVeRSe"; Lightman et al. 2023's strongest
                    rule); weights must be >= 0: ORM rewards (logits of P(correct), keys "orm...")
                    become sigmoid(reward), Bradley-Terry rewards (keys "bt...", shift-invariant) a
                    softmax over the pool, PRM scores (probabilities) are used as they are
    majority        the most common final answer (self-consistency, Wang et al. 2022)
    random          any candidate: the expected accuracy of sampling once (the share of correct
                    candidates), not one draw
    oracle          right whenever any candidate is right (the ceiling of every selection rule)

`selection_accuracy` measures each method on random size-N subsets of every pool; ties are broken
uniformly at random and counted by their expectation (so a method that scores everything equal gets
the random baseline, not the luck of the first index), with a 95% bootstrap interval over problems.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardlab.data.gsm8k import final_answer, normalize_answer
from rewardlab.data.step_encoding import join_plain
from rewardlab.data.types import DataError
from rewardlab.prm.evaluate import AGGREGATIONS, aggregate
from rewardlab.scoring.metrics import sigmoid

SCORED = ("orm", *(f"prm_{a}" for a in AGGREGATIONS))
"""The score keys `score_pools` fills."""
BASELINES = ("majority", "random", "oracle")


def vote_weights(key: str, scores: Sequence[float]) -> list[float]:
    """One pool's verifier scores as non-negative votes, by what the scores are:
    - ``orm...``: an outcome reward trained on right/wrong labels, a logit of P(correct): sigmoid;
    - ``bt...``: a Bradley-Terry reward, defined up to a shift (only differences mean anything), so a
      softmax over the pool's candidates, exp(r_i - max r): the Bradley-Terry/Plackett-Luce probability
      that candidate i is the best, unchanged by a shift of every reward; sigmoid of such a reward
      would weight by an arbitrary offset;
    - anything else (PRM solution scores): probabilities in [0, 1], used as they are.
    NaN (a candidate the verifier could not score) counts 0."""
    if key.startswith("bt"):
        finite = [s for s in scores if not math.isnan(s)]
        top = max(finite) if finite else 0.0
        return [0.0 if math.isnan(s) else math.exp(s - top) for s in scores]
    return [0.0 if math.isnan(s) else sigmoid(s) if key.startswith("orm") else s for s in scores]


@dataclass
class Pool:
    prompt: str
    candidates: list[list[str]]
    answers: list[str]
    gold: str | None = None
    source: str = ""
    scores: dict[str, list[float]] = field(default_factory=dict)
    """Score key (orm, prm_product, ...) → one score per candidate; filled by `score_pools`."""

    @property
    def correct(self) -> list[bool]:
        return [self.gold is not None and a == self.gold for a in self.answers]


def read_pools(path: str) -> list[Pool]:
    """Rows {"prompt", "candidates": [[step, ...] | {"completions": [...], "answer"?}], "gold"?}, or
    `gsm8k_solutions` rows (real model solutions; rewardlab.data.gsm8k_solutions), detected by their keys."""
    from rewardlab.data.gsm8k_solutions import is_solutions_row, read_solution_problems
    from rewardlab.data.readers import read_rows

    first = next(iter(read_rows(path)))[1]
    if is_solutions_row(first):
        return [pool_from_problem(p) for p in read_solution_problems(path)]
    pools = []
    for source, row in read_rows(path):
        prompt, cands = row.get("prompt"), row.get("candidates")
        if not isinstance(prompt, str) or not isinstance(cands, list) or not cands:
            raise DataError(f"{source}: a pool row needs 'prompt' (string) and 'candidates' (non-empty list)")
        steps_list, answers = [], []
        for i, c in enumerate(cands):
            steps = c.get("completions") if isinstance(c, dict) else c
            if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
                raise DataError(
                    f"{source}: candidates[{i}] must be a list of step strings or {{completions}}"
                )
            answer = c.get("answer") if isinstance(c, dict) else None
            steps_list.append(steps)
            answers.append(normalize_answer(str(answer)) if answer is not None else final_answer(steps))
        gold = row.get("gold")
        pools.append(Pool(prompt, steps_list, answers, normalize_answer(str(gold)) if gold else None, source))
    return pools


def pool_from_problem(problem: Any) -> Pool:
    """A `gsm8k_solutions` problem (`SolutionProblem`) as a pool: its candidates, their answers, the gold."""
    cands = problem.candidates
    return Pool(
        problem.question, [c.steps for c in cands], [c.answer for c in cands], problem.gold, problem.source
    )


def score_pools(
    pools: Sequence[Pool],
    prm: Any | None = None,
    orm: Any | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> None:
    """Fill each pool's scores with the PRM (all aggregations) and the ORM; identical candidates of one
    pool are scored once."""
    keys = sorted({(p.prompt, tuple(c)) for p in pools for c in p.candidates})
    prompts, steps = [k[0] for k in keys], [list(k[1]) for k in keys]
    by_key: dict[str, dict[tuple, float]] = {}
    if prm is not None:
        per_step = prm.score_steps(prompts, steps, on_progress)
        for agg in AGGREGATIONS:
            by_key[f"prm_{agg}"] = {k: aggregate(ps, agg) for k, ps in zip(keys, per_step, strict=True)}
    if orm is not None:
        rewards = orm.score(prompts, [join_plain(s) for s in steps], on_progress)
        by_key["orm"] = dict(zip(keys, rewards, strict=True))
    for p in pools:
        for name, table in by_key.items():
            p.scores[name] = [table[(p.prompt, tuple(c))] for c in p.candidates]


def _best_expected(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """Expected correctness of the argmax under uniform tie-breaking (NaN scores never win)."""
    finite = [s for s in scores if not math.isnan(s)]
    if not finite:
        return sum(correct) / len(correct)
    top = max(finite)
    tied = [c for s, c in zip(scores, correct, strict=True) if s == top]
    return sum(tied) / len(tied)


def _vote_expected(answers: Sequence[str], correct: Sequence[bool], weights: Sequence[float]) -> float:
    totals: dict[str, float] = defaultdict(float)
    right: dict[str, bool] = {}
    for a, c, w in zip(answers, correct, weights, strict=True):
        totals[a] += 0.0 if math.isnan(w) else w
        right[a] = c
    top = max(totals.values())
    tied = [a for a, t in totals.items() if math.isclose(t, top, rel_tol=1e-12, abs_tol=1e-12)]
    return sum(right[a] for a in tied) / len(tied)


def pick_expected(pool: Pool, idx: Sequence[int], method: str) -> float:
    """Expected correctness of `method`'s pick among the candidates `idx` of `pool`."""
    correct = [pool.correct[i] for i in idx]
    if method == "random":
        return sum(correct) / len(correct)
    if method == "oracle":
        return float(any(correct))
    answers = [pool.answers[i] for i in idx]
    if method == "majority":
        return _vote_expected(answers, correct, [1.0] * len(idx))
    if method.startswith("weighted_"):
        key = method[len("weighted_") :]
        return _vote_expected(answers, correct, vote_weights(key, [pool.scores[key][i] for i in idx]))
    return _best_expected([pool.scores[method][i] for i in idx], correct)


def pick(pool: Pool, method: str) -> int:
    """The index `method` selects among all candidates (ties: the first). For `random`: index 0; for
    `oracle`: the first correct candidate (index 0 if none is)."""
    if method == "random":
        return 0
    if method == "oracle":
        return next((i for i, c in enumerate(pool.correct) if c), 0)
    if method == "majority" or method.startswith("weighted_"):
        key = method[len("weighted_") :]
        weights = [1.0] * len(pool.answers) if method == "majority" else vote_weights(key, pool.scores[key])
        totals: dict[str, float] = defaultdict(float)
        for a, w in zip(pool.answers, weights, strict=True):
            totals[a] += w
        best = max(totals, key=lambda a: totals[a])
        return pool.answers.index(best)
    scores = [(-math.inf if math.isnan(s) else s) for s in pool.scores[method]]
    return max(range(len(scores)), key=lambda i: scores[i])


def available_methods(pools: Sequence[Pool]) -> list[str]:
    """Argmax of every score key the pools share, then the weighted votes, then the baselines."""
    have = [k for k in pools[0].scores if all(k in p.scores for p in pools)] if pools else []
    keys = [k for k in SCORED if k in have] + [k for k in have if k not in SCORED]
    return [*keys, "majority", *(f"weighted_{k}" for k in keys), "random", "oracle"]


def within_problem_auroc(pools: Sequence[Pool], key: str) -> float | None:
    """P(a right candidate outscores a wrong candidate of the *same* pool) under `key`, ties half; None
    when no pool has both. This is what selection needs: the pooled outcome AUROC also credits telling
    easy problems from hard ones (every candidate of an easy problem scoring high), which picks nothing.
    NaN scores rank lowest."""
    wins = pairs = 0.0
    for p in pools:
        s = [-math.inf if math.isnan(x) else x for x in p.scores[key]]
        for i, right in enumerate(p.correct):
            for j, wrong in enumerate(p.correct):
                if right and not wrong:
                    pairs += 1
                    wins += 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0
    return wins / pairs if pairs else None


@dataclass
class BonPoint:
    n: int
    method: str
    accuracy: float
    ci_low: float
    ci_high: float


def selection_accuracy(
    pools: Sequence[Pool], ns: Sequence[int], draws: int = 64, seed: int = 0, n_boot: int = 1000
) -> list[BonPoint]:
    """Accuracy of every available method for each N, averaged over `draws` random size-N subsets per pool,
    with a 95% bootstrap interval over problems. Pools need a gold answer."""
    if any(p.gold is None for p in pools):
        raise DataError("selection accuracy needs a 'gold' answer in every pool row")
    methods = available_methods(pools)
    out = []
    for n in ns:
        per_problem: dict[str, list[float]] = {m: [] for m in methods}
        for p in pools:
            if len(p.candidates) < n:
                raise DataError(f"{p.source}: {len(p.candidates)} candidates, fewer than N={n}")
            rng = random.Random(f"{seed}:{n}:{p.prompt}")
            subsets = [
                rng.sample(range(len(p.candidates)), n) for _ in range(draws if n < len(p.candidates) else 1)
            ]
            for m in methods:
                per_problem[m].append(sum(pick_expected(p, s, m) for s in subsets) / len(subsets))
        for m in methods:
            vals = per_problem[m]
            lo, hi = _bootstrap(vals, n_boot, seed)
            out.append(BonPoint(n, m, sum(vals) / len(vals), lo, hi))
    return out


def _bootstrap(values: Sequence[float], n_boot: int, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(n_boot))
    return means[int(0.025 * n_boot)], means[min(n_boot - 1, int(0.975 * n_boot))]


def markdown_table(points: Sequence[BonPoint]) -> str:
    """Methods as rows, N as columns, accuracy % with the 95% interval."""
    ns = sorted({p.n for p in points})
    methods = list(dict.fromkeys(p.method for p in points))
    cell = {(p.method, p.n): p for p in points}
    lines = ["| method | " + " | ".join(f"N={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for m in methods:
        row = [
            f"{100 * cell[m, n].accuracy:.1f} ({100 * cell[m, n].ci_low:.0f}-{100 * cell[m, n].ci_high:.0f})"
            for n in ns
        ]
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_bon(points: Sequence[BonPoint], path: str, title: str = "") -> None:
    """Selection accuracy against N (log2 axis), one line per method; needs the [plot] extra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    look = {
        "orm": ("k", "-"), "prm_product": ("tab:blue", "-"), "prm_min": ("tab:green", "-"),
        "prm_last": ("tab:purple", "-"), "prm_mean": ("tab:cyan", "-"), "majority": ("tab:orange", "--"),
        "weighted_orm": ("tab:brown", "--"), "weighted_prm_product": ("tab:red", "--"),
        "random": ("tab:gray", ":"),
    }  # fmt: skip
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for m in dict.fromkeys(p.method for p in points):
        if m == "oracle":
            continue
        pts = sorted((p for p in points if p.method == m), key=lambda p: p.n)
        color, style = look.get(m, (None, "-"))
        xs, ys = [p.n for p in pts], [100 * p.accuracy for p in pts]
        ax.plot(xs, ys, style, color=color, marker="o", ms=3, label=m)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({p.n for p in points}), [str(n) for n in sorted({p.n for p in points})])
    ax.set_xlabel("N (candidates per problem)")
    ax.set_ylabel("selected answer correct (%)")
    ax.set_title(title or "Best-of-N on held-out GSM8K (injected errors)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def selections(pools: Sequence[Pool]) -> list[dict]:
    """Per pool: the index each method picks among all its candidates, and whether that is correct."""
    methods = [m for m in available_methods(pools) if m not in ("random", "oracle")]
    rows = []
    for p in pools:
        picks = {m: pick(p, m) for m in methods}
        row: dict[str, Any] = {
            "prompt": p.prompt,
            "picks": picks,
            "answers": {m: p.answers[i] for m, i in picks.items()},
        }
        if p.gold is not None:
            row["correct"] = {m: p.correct[i] for m, i in picks.items()}
        row["scores"] = p.scores
        rows.append(row)
    return rows


def points_json(points: Sequence[BonPoint]) -> str:
    return json.dumps([p.__dict__ for p in points], indent=2)
