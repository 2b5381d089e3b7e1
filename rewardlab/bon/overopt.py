"""Reward-model overoptimization under best-of-n: gold vs proxy curves and the Gao et al. (2022) fits.

Given a pool of M >= n candidates per prompt with a proxy score (the reward model being optimised) and a
gold score (the truth), best-of-n picks the proxy argmax among n candidates. Instead of drawing one
random subset per n, `bon_curve` computes the exact expectation over all C(M, n) subsets: sort the pool
by proxy score; the i-th smallest (1-based) is the proxy max of a uniformly random n-subset with
probability C(i-1, n-1) / C(M, n), so

    E[gold of best-of-n] = sum_i C(i-1, n-1) / C(M, n) * gold_(i)

(the unbiased order-statistics estimator; proxy ties are broken uniformly at random, which gives every
member of a tied run the run's mean gold). The x-axis is d = sqrt(KL_bon(n)) with
KL_bon(n) = log n - (n-1)/n, and the gold gain over n = 1 is fitted with R(d) = d(alpha - beta d)
(best-of-n) or R(d) = d(alpha - beta log d) (the RL form). `rewardlab overopt` drives this; the recipe
and results are in docs/overoptimization.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rewardlab.config import ConfigError, check_range, doc

FORMS = ("bon", "rl")


def kl_bon(n: int | float | np.ndarray) -> float | np.ndarray:
    """KL(best-of-n policy || base policy) = log n - (n-1)/n (Stiennon et al. 2020; Gao et al. 2022)."""
    n = np.asarray(n, dtype=float)
    if np.any(n < 1):
        raise ValueError(f"best-of-n needs n >= 1, got {n.min()}")
    out = np.log(n) - (n - 1.0) / n
    return float(out) if out.ndim == 0 else out


def n_for_kl(kl: float, n_max: float = 1e12) -> float:
    """The (real-valued) n with KL_bon(n) = kl; KL_bon is increasing, so bisect in log n."""
    if kl <= 0:
        return 1.0
    if kl >= kl_bon(n_max):
        return math.inf
    lo, hi = 0.0, math.log(n_max)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if kl_bon(math.exp(mid)) < kl else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def selection_weights(m: int, n: int) -> np.ndarray:
    """w[i] = P(the (i+1)-th smallest of m items is the max of a uniform n-subset) = C(i, n-1) / C(m, n)."""
    return weight_matrix(m, n)[n - 1]


def weight_matrix(m: int, n_max: int) -> np.ndarray:
    """Rows n = 1..n_max of `selection_weights(m, n)`, from a table of log-factorials (stable for large m)."""
    if not 1 <= n_max <= m:
        raise ValueError(f"best-of-{n_max} needs 1 <= n <= pool size {m}")
    log_fact = np.array([math.lgamma(k + 1) for k in range(m + 1)])
    i = np.arange(m)
    rows = []
    for n in range(1, n_max + 1):
        k = n - 1  # log C(i, k) for i >= k, else -inf
        log_c = np.where(i >= k, log_fact[i] - log_fact[k] - log_fact[np.maximum(i - k, 0)], -np.inf)
        log_c -= log_fact[m] - log_fact[n] - log_fact[m - n]
        w = np.exp(log_c)
        rows.append(w / w.sum())  # sums to 1 in theory (hockey-stick identity); renormalise rounding
    return np.stack(rows)


def _tie_averaged(proxy: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by proxy and replace each value by the mean over its run of tied proxy scores."""
    order = np.argsort(proxy, kind="stable")
    p, v = proxy[order], values[order].astype(float)
    out = v.copy()
    start = 0
    for end in range(1, len(p) + 1):
        if end == len(p) or p[end] != p[start]:
            out[start:end] = v[start:end].mean()
            start = end
    return p, out


def bon_curve(
    proxy: Sequence[float], gold: Sequence[float], n_max: int | None = None, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact E[proxy] and E[gold] of the best-of-n pick for n = 1..n_max (default: the pool size);
    `weights` may pass a precomputed `weight_matrix(len(proxy), n_max)`."""
    proxy_a, gold_a = np.asarray(proxy, dtype=float), np.asarray(gold, dtype=float)
    if proxy_a.shape != gold_a.shape or proxy_a.ndim != 1 or len(proxy_a) == 0:
        raise ValueError(
            f"proxy and gold must be equal-length non-empty lists, got {proxy_a.shape}, {gold_a.shape}"
        )
    m = len(proxy_a)
    n_max = m if n_max is None else n_max
    if n_max > m:
        raise ValueError(f"n_max={n_max} exceeds the pool of {m} candidates; generate more or lower --max-n")
    p_sorted, g_sorted = _tie_averaged(proxy_a, gold_a)
    weights = weights if weights is not None else weight_matrix(m, n_max)
    return weights @ p_sorted, weights @ g_sorted


@dataclass
class Fit:
    """A least-squares fit of the gold gain R(d) = gold(d) - gold(0) through the origin."""

    form: str
    """'bon': R = d(alpha - beta d). 'rl': R = d(alpha - beta log d)."""
    alpha: float
    beta: float
    d_star: float
    """Where the fitted curve peaks (inf when beta <= 0: no peak, gold still rising)."""
    kl_star: float
    n_star: float
    """Best-of-n's n at the fitted peak (real-valued; inf when there is no peak in reach)."""
    r_star: float
    """The fitted gold gain at the peak."""
    r2: float
    """Coefficient of determination of the fit on the points it used."""
    rmse: float
    points: int

    def predict(self, d: np.ndarray | float) -> np.ndarray:
        d = np.asarray(d, dtype=float)
        if self.form == "bon":
            return d * (self.alpha - self.beta * d)
        safe = np.where(d > 0, d, 1.0)
        return np.where(d > 0, d * (self.alpha - self.beta * np.log(safe)), 0.0)


def fit_gold(d: Sequence[float], gain: Sequence[float], form: str = "bon") -> Fit:
    """Fit the gold gain against d = sqrt(KL) with the Gao et al. functional form (linear least squares)."""
    if form not in FORMS:
        raise ValueError(f"--fit {form!r}: choose one of {', '.join(FORMS)}")
    d_a, y = np.asarray(d, dtype=float), np.asarray(gain, dtype=float)
    if len(d_a) < 2 or np.count_nonzero(d_a > 0) < 2:
        raise ValueError("fitting alpha and beta needs at least two points with d > 0 (n >= 2, 3)")
    if form == "bon":
        x = np.stack([d_a, -(d_a**2)], axis=1)
    else:
        dlog = np.where(d_a > 0, d_a * np.log(np.where(d_a > 0, d_a, 1.0)), 0.0)
        x = np.stack([d_a, -dlog], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ np.array([alpha, beta])
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else 1.0
    if beta <= 0:
        d_star = math.inf
    elif form == "bon":
        d_star = alpha / (2 * beta)
    else:
        d_star = math.exp(min(alpha / beta - 1.0, 700.0))
    kl_star = d_star**2
    fit = Fit(
        form,
        float(alpha),
        float(beta),
        d_star,
        kl_star,
        n_for_kl(kl_star),
        0.0,
        r2,
        float(np.sqrt(np.mean(resid**2))),
        len(d_a),
    )
    fit.r_star = float(fit.predict(d_star)) if math.isfinite(d_star) else math.inf
    return fit


def fit_grid(n_max: int, points: int = 24) -> list[int]:
    """n values for fitting: log-spaced from 1 to n_max, so the many large-n points (whose d bunch up
    as sqrt(log n)) do not outweigh the small-n ones."""
    grid = np.unique(np.round(np.geomspace(1, n_max, points)).astype(int))
    return [int(n) for n in grid]


@dataclass
class Curve:
    """One proxy's best-of-n study over many prompts."""

    name: str
    n: list[int]
    kl: list[float]
    d: list[float]
    proxy_mean: list[float]
    gold_mean: list[float]
    gold_lo: list[float]
    gold_hi: list[float]
    """95% bootstrap band over prompts for the mean gold (prompts resampled with replacement)."""
    proxy_lo: list[float]
    proxy_hi: list[float]
    prompts: int
    pool_size: int
    fits: dict[str, Fit] = field(default_factory=dict)
    gold_peak_n: int = 1
    """The n with the highest measured mean gold."""


def _band(per_prompt: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = per_prompt.shape[0]
    means = np.stack([per_prompt[rng.integers(0, p, p)].mean(0) for _ in range(n_boot)])
    return np.quantile(means, 0.025, axis=0), np.quantile(means, 0.975, axis=0)


def study(
    name: str,
    proxy: Sequence[Sequence[float]],
    gold: Sequence[Sequence[float]],
    n_max: int | None = None,
    forms: Sequence[str] = ("bon",),
    n_boot: int = 1000,
    seed: int = 0,
) -> Curve:
    """Mean best-of-n curves over prompts (each prompt's pool: its proxy and gold scores), bands, fits."""
    if len(proxy) != len(gold) or not proxy:
        raise ValueError(f"need proxy and gold scores for the same prompts, got {len(proxy)} and {len(gold)}")
    pool = min(len(p) for p in proxy)
    n_max = pool if n_max is None else n_max
    if n_max > pool:
        raise ValueError(f"--max-n {n_max} exceeds the smallest pool ({pool} candidates); lower --max-n")
    cache: dict[int, np.ndarray] = {}

    def weights(m: int) -> np.ndarray:
        if m not in cache:
            cache[m] = weight_matrix(m, n_max)
        return cache[m]

    curves = [bon_curve(p, g, n_max, weights(len(p))) for p, g in zip(proxy, gold, strict=True)]
    proxy_pp = np.stack([c[0] for c in curves])
    gold_pp = np.stack([c[1] for c in curves])
    ns = np.arange(1, n_max + 1)
    d = np.sqrt(kl_bon(ns))
    g_lo, g_hi = _band(gold_pp, n_boot, seed)
    p_lo, p_hi = _band(proxy_pp, n_boot, seed)
    gold_mean = gold_pp.mean(0)
    curve = Curve(
        name,
        ns.tolist(),
        np.asarray(kl_bon(ns)).tolist(),
        d.tolist(),
        proxy_pp.mean(0).tolist(),
        gold_mean.tolist(),
        g_lo.tolist(),
        g_hi.tolist(),
        p_lo.tolist(),
        p_hi.tolist(),
        len(proxy),
        pool,
        gold_peak_n=int(ns[int(np.argmax(gold_mean))]),
    )
    grid = np.array(fit_grid(n_max)) - 1
    for form in forms:
        curve.fits[form] = fit_gold(d[grid], gold_mean[grid] - gold_mean[0], form)
    return curve


def proxy_scores(row: dict, spec: str, lam: float = 1.0) -> list[float]:
    """One proxy's scores from a `rewardlab bon` row: 'scores' (what the model gave), 'member:K', an
    ensemble rule over 'member_scores' ('mean', 'min', 'uwo' = mean - lam * variance), or 'gold' (the
    oracle: best-of-n on the gold reward itself, the ceiling any proxy can reach)."""
    if spec in ("scores", "gold"):
        return [float(s) for s in row[spec]]
    members = row.get("member_scores")
    if members is None:
        raise ValueError(f"proxy {spec!r} needs 'member_scores' in the pool file: score it with an ensemble")
    from rewardlab.scoring.ensemble import combine

    if spec.startswith("member:"):
        return [float(s) for s in members[int(spec.split(":", 1)[1])]]
    return combine(members, spec, lam)


def load_pool(path: str | Path) -> list[dict]:
    """Rows of a `rewardlab bon` output that carry gold scores (needed for the study)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("gold") is None:
                raise ValueError(f"{path}:{i}: no 'gold' scores; rerun `rewardlab bon` with --gold")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def plot_curves(curves: Sequence[Curve], path: str | Path, title: str = "") -> None:
    """Proxy (dashed) and gold (solid, with its band and fitted curve) against d = sqrt(KL_bon)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_g, ax_p) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=90)
    for k, c in enumerate(curves):
        color = f"C{k}"
        d = np.array(c.d)
        ax_g.plot(d, c.gold_mean, color=color, label=c.name)
        ax_g.fill_between(d, c.gold_lo, c.gold_hi, color=color, alpha=0.15, linewidth=0)
        fit = c.fits.get("bon")
        if fit is not None:
            ax_g.plot(d, c.gold_mean[0] + fit.predict(d), color=color, linestyle=":", linewidth=1)
        ax_p.plot(d, c.proxy_mean, color=color, linestyle="--", label=c.name)
    ticks = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if n <= curves[0].n[-1]]
    for ax, what in ((ax_g, "gold reward of best-of-n (dotted: fit)"), (ax_p, "proxy reward of best-of-n")):
        ax.set_xlabel("d = sqrt(KL_bon(n))")
        ax.set_ylabel(what, fontsize=8)
        top = ax.secondary_xaxis("top", functions=(lambda x: x, lambda x: x))
        top.set_ticks([math.sqrt(kl_bon(n)) for n in ticks], labels=[str(n) for n in ticks])
        top.tick_params(labelsize=7)
        top.set_xlabel("n", fontsize=8, labelpad=1)
    ax_g.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_json(curves: Sequence[Curve], path: str | Path, extra: dict | None = None) -> None:
    """All curves and fits as JSON (inf written as null)."""

    def clean(x: object) -> object:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    payload = {**(extra or {}), "curves": [clean(asdict(c)) for c in curves]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


@dataclass
class OveroptConfig:
    """Everything `rewardlab overopt` needs; each field is a flag (`rewardlab.config.add_dataclass_flags`)."""

    pools: list[str] = doc(
        "`rewardlab bon` outputs with gold scores: PATH, NAME=PATH, or NAME=PATH@PROXY (that one proxy "
        "for this file instead of --proxy, e.g. single=ens.jsonl@member:0).",
        positional=True,
    )
    proxies: list[str] = doc(
        "Proxy that picks: scores, member:K, mean, min, uwo, gold (oracle); see `proxy_scores`.",
        flag="--proxy",
        default_factory=lambda: ["scores"],
    )
    lam: float = doc("λ of the uwo rule (mean - λ·variance).", 1.0)
    max_n: int | None = doc("Largest n (default: the pool size).", None)
    forms: list[str] = doc(
        "Fitted forms, comma-separated: bon (d(α-βd)), rl (d(α-β log d)).",
        flag="--fit",
        sep=",",
        default_factory=lambda: ["bon"],
    )
    out_dir: str = doc("Where overopt.png and overopt.json go.", "runs/overopt")
    title: str = doc("Plot title.", "")
    n_boot: int = doc("Prompt resamples for the 95% bands.", 1000, flag="--bootstrap")

    def __post_init__(self) -> None:
        bad = [form for form in self.forms if form not in FORMS]
        if bad or not self.forms:
            raise ConfigError(
                f"--fit takes a comma-separated list of {', '.join(FORMS)}; got {','.join(self.forms)!r}"
            )
        check_range(self, "max_n", low=1)
        check_range(self, "n_boot", low=1)


def run_overopt(cfg: OveroptConfig) -> list[Curve]:
    """One curve per (pool, proxy); writes overopt.json and overopt.png to cfg.out_dir."""
    curves = []
    for spec in cfg.pools:
        name, _, path = spec.rpartition("=")  # names may hold '=' (e.g. 'uwo λ=0.5'); paths may not
        path, _, own = path.partition("@")
        rows = load_pool(path)
        name = name or Path(path).stem
        proxies = [own] if own else cfg.proxies
        for proxy in proxies:
            label = name if len(proxies) == 1 else f"{name} {proxy}"
            scores = [proxy_scores(r, proxy, cfg.lam) for r in rows]
            curves.append(study(label, scores, [r["gold"] for r in rows], cfg.max_n, cfg.forms, cfg.n_boot))
    out = Path(cfg.out_dir)
    plot_curves(curves, out / "overopt.png", cfg.title)
    write_json(curves, out / "overopt.json", {"config": asdict(cfg)})
    return curves
