"""The four drift signals, as statistics over reference and current rewards or embeddings (numpy only).

- score drift: mean shift in reference-std units and a two-sample Kolmogorov-Smirnov test (`score_drift`);
- Mahalanobis OOD against a shrunk-covariance Gaussian of the reference embeddings (`ood_drift`);
- a cross-validated logistic-regression two-sample test on embeddings (`classifier_auroc`);
- ensemble disagreement, current against reference (`disagreement`).

rewardlab.drift.detect combines them into a verdict.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardlab.scoring.metrics import auroc


def ks_2samp(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic D and its asymptotic p-value (the Kolmogorov series at
    sqrt(n_eff) * D, n_eff = n m / (n + m), with Stephens' small-sample correction)."""
    x, y = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([x, y])
    d = float(
        np.max(
            np.abs(np.searchsorted(x, grid, "right") / len(x) - np.searchsorted(y, grid, "right") / len(y))
        )
    )
    en = math.sqrt(len(x) * len(y) / (len(x) + len(y)))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 1e-3:
        return d, 1.0
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, float(min(max(p, 0.0), 1.0))


@dataclass
class ScoreDrift:
    ref_mean: float
    ref_std: float
    cur_mean: float
    cur_std: float
    mean_shift: float
    """(current mean - reference mean) / reference std."""
    ks_stat: float
    ks_p: float


def score_drift(ref: Sequence[float], cur: Sequence[float]) -> ScoreDrift:
    r, c = np.asarray(ref, float), np.asarray(cur, float)
    std = float(r.std(ddof=1)) if len(r) > 1 else 0.0
    shift = (float(c.mean()) - float(r.mean())) / std if std > 0 else 0.0
    d, p = ks_2samp(r, c)
    return ScoreDrift(float(r.mean()), std, float(c.mean()), float(c.std(ddof=1)), shift, d, p)


@dataclass
class Gaussian:
    """A Gaussian fitted on reference embeddings; covariance shrunk toward (trace/d)·I by `shrinkage`."""

    mean: np.ndarray
    precision: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, shrinkage: float = 0.1) -> Gaussian:
        x = np.asarray(x, float)
        mean = x.mean(0)
        cov = np.atleast_2d(np.cov(x, rowvar=False))
        target = np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
        cov = (1 - shrinkage) * cov + shrinkage * target
        return cls(mean, np.linalg.pinv(cov, hermitian=True))

    def mahalanobis(self, x: np.ndarray) -> np.ndarray:
        """sqrt((x - mean)ᵀ Σ⁻¹ (x - mean)) for each row of x."""
        diff = np.asarray(x, float) - self.mean
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, self.precision, diff), 0.0))


@dataclass
class OodDrift:
    fpr: float
    """The stated false-positive rate the threshold was calibrated to."""
    threshold: float
    """The (1 - fpr) quantile of held-out reference distances."""
    cur_fraction: float
    """Fraction of current samples beyond the threshold (expect ~fpr without drift)."""
    n_fit: int
    n_calibrate: int
    ref_scores: list[float] = field(repr=False)
    cur_scores: list[float] = field(repr=False)


def _group_ids(n: int, groups: Sequence[Any] | None) -> np.ndarray:
    """An integer id per sample; samples sharing a group (e.g. a prompt) share an id."""
    if groups is None:
        return np.arange(n)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group labels for {n} samples")
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(json.dumps(g, sort_keys=True), len(ids)) for g in groups])


def ood_drift(
    ref_emb: np.ndarray,
    cur_emb: np.ndarray,
    fpr: float = 0.05,
    calibrate_frac: float = 0.3,
    shrinkage: float = 0.1,
    seed: int = 0,
    ref_groups: Sequence[Any] | None = None,
) -> OodDrift:
    """Fit a Gaussian on (1 - calibrate_frac) of the reference, calibrate the threshold on the rest.

    With `ref_groups` (the prompts) the split is by group, so no calibration sample has a sibling
    response in the fit set (siblings sit closer to the fit and would make the threshold too low)."""
    ref_emb, cur_emb = np.asarray(ref_emb, float), np.asarray(cur_emb, float)
    n = len(ref_emb)
    gid = _group_ids(n, ref_groups)
    n_groups = int(gid.max()) + 1
    cal_groups = np.random.default_rng(seed).permutation(n_groups)[: max(1, round(calibrate_frac * n_groups))]
    cal = np.isin(gid, cal_groups)
    if (~cal).sum() < 2:
        raise ValueError(f"{n} reference samples are too few to fit and calibrate (need 3+, better 200+)")
    gauss = Gaussian.fit(ref_emb[~cal], shrinkage)
    held = gauss.mahalanobis(ref_emb[cal])
    threshold = float(np.quantile(held, 1 - fpr, method="higher"))
    cur = gauss.mahalanobis(cur_emb)
    return OodDrift(
        fpr,
        threshold,
        float((cur > threshold).mean()),
        int((~cal).sum()),
        int(cal.sum()),
        held.tolist(),
        cur.tolist(),
    )


def _logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 300) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (x standardised; d is small enough)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ theta, -30, 30)))
        grad = xb.T @ (p - y) / n + reg * theta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb / n + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-6:
            break
    w, b = theta[:-1], float(theta[-1])
    return w, b


def classifier_auroc(
    ref_emb: np.ndarray,
    cur_emb: np.ndarray,
    folds: int = 5,
    l2: float = 1.0,
    max_dims: int = 64,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
) -> float:
    """Cross-validated AUROC of a logistic regression telling reference (0) from current (1) embeddings.

    Features are projected on the reference's top `max_dims` principal directions (fitted per fold on
    the training part) and standardised; out-of-fold scores of all samples give one AUROC. `groups`
    (one label per reference then current sample, e.g. the prompt) keeps each group inside one fold.
    """
    x = np.vstack([np.asarray(ref_emb, float), np.asarray(cur_emb, float)])
    y = np.concatenate([np.zeros(len(ref_emb)), np.ones(len(cur_emb))])
    rng = np.random.default_rng(seed)
    if groups is None:
        fold_of = np.empty(len(y), int)
        for cls in (0, 1):  # stratified folds
            idx = rng.permutation(np.flatnonzero(y == cls))
            fold_of[idx] = np.arange(len(idx)) % folds
    else:  # whole groups per fold, so the classifier cannot recognise a prompt it saw in training
        gid = _group_ids(len(y), groups)
        fold_of = (rng.permutation(int(gid.max()) + 1) % folds)[gid]
    out = np.zeros(len(y))
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        mu = x[train].mean(0)
        _, _, vt = np.linalg.svd(x[train] - mu, full_matrices=False)
        proj = vt[:max_dims].T
        z_train, z_test = (x[train] - mu) @ proj, (x[test] - mu) @ proj
        sd = z_train.std(0) + 1e-8
        w, b = _logistic(z_train / sd, y[train], l2)
        out[test] = (z_test / sd) @ w + b
    value = auroc(list(out), list(y == 1))
    return float("nan") if value is None else value


@dataclass
class Disagreement:
    ref_mean_std: float
    cur_mean_std: float
    ratio: float
    """cur_mean_std / ref_mean_std: how much more the members disagree on the current policy."""
    cur_std: list[float] = field(repr=False)


def disagreement(
    ref_members: Sequence[Sequence[float]], cur_members: Sequence[Sequence[float]]
) -> Disagreement:
    """Std across members (member-major k × n lists, as EnsembleScorer.score_members returns)."""
    r, c = np.asarray(ref_members, float).std(0), np.asarray(cur_members, float).std(0)
    ratio = float(c.mean() / r.mean()) if r.mean() > 0 else float("inf")
    return Disagreement(float(r.mean()), float(c.mean()), ratio, c.tolist())


# --- verdict --------------------------------------------------------------------------------------------
