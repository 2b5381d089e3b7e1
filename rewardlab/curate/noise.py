"""Label noise from out-of-fold margins: a calibrated P(label wrong) per row, and which rows to flag.

The margin m = r_chosen - r_rejected of a pair scored out of fold says how the model, which never saw
the pair, would label it. A temperature T is fitted on all scored pairs (maximum likelihood of the
labels under P(label right) = σ(m / T), as `rewardlab diagnose` calibrates), so σ(-m / T) is a
calibrated P(label wrong) given the margin. A row with several pairs (a K-way ranking) takes its most
suspicious pair.

Which rows are flagged (the report states the rule and its number):
- default, the confident-learning threshold (Northcutt et al., 2021): a label counts as confidently
  wrong when the model's probability for the other order reaches the model's average confidence in
  the labels it is given, t = mean σ(m / T); with both orders of a pair being the same class up to
  orientation, that is P(label wrong) >= t. A model no better than chance (t <= 0.5) flags nothing.
- ``--flag-threshold P``: every row with P(label wrong) >= P; 0.5 flags each row the model would
  label the other way (on the demo task's flipped labels: more recall for less precision, measured in
  docs/curation.md).
- ``--flag-fraction F``: the F most suspicious share of the scored rows, whatever their probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rewardlab.curate.flags import Flag


@dataclass
class NoiseResult:
    temperature: float
    threshold: float
    """The P(label wrong) at or above which a row is flagged."""
    rule: str
    """The threshold in words, with its number."""
    oof_accuracy: float
    """Share of scored pairs the out-of-fold models order as labelled (ties half)."""
    p_wrong: dict[str, float] = field(default_factory=dict)
    """Row location -> P(label wrong) of its most suspicious pair."""
    margins: dict[str, float] = field(default_factory=dict)
    """Row location -> that pair's margin r_chosen - r_rejected."""
    flags: list[Flag] = field(default_factory=list)


WEAK_ACCURACY = 0.65
"""Below this out-of-fold accuracy the flags are mostly the fold models' own errors (docs/curation.md)."""


def weak_model_warning(result: NoiseResult) -> str | None:
    """A warning when the fold models are too weak for their flags to be trusted, else None.

    If a model orders a share a of clean pairs right, a flag (the model disagrees) hits a flipped label
    with probability about noise * a / (noise * a + (1 - noise) * (1 - a)): at a = 0.6 and 20% noise that
    is 27%, barely above the 20% of picking at random, which is what HH-RLHF measured (28.5%)."""
    if not result.flags or math.isnan(result.oof_accuracy):
        return None
    if result.oof_accuracy >= WEAK_ACCURACY:
        return None
    return (
        f"the out-of-fold models order only {100 * result.oof_accuracy:.1f}% of the pairs as labelled: "
        "a model this weak disagrees with many correct labels, so most label_noise flags are likely its "
        "own errors (docs/curation.md); consider --drop without label_noise, --ensemble, or a stronger "
        "--backbone"
    )


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def fit_temperature(margins: list[float]) -> float:
    """T maximising the mean log σ(m / T) over the labelled pairs (a grid over log T, then refined)."""
    if not margins or all(m == 0 for m in margins):
        return 1.0

    def nll(t: float) -> float:
        return -sum(_log_sigmoid(m / t) for m in margins) / len(margins)

    grid = [math.exp(-4 + 8 * i / 80) for i in range(81)]
    best = min(grid, key=nll)
    lo, hi = best / math.exp(0.1), best * math.exp(0.1)
    for _ in range(30):  # golden-section refinement inside the best grid cell
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2


def label_noise(
    margins: dict[str, list[float]], flag_fraction: float = 0.0, flag_threshold: float = 0.0
) -> NoiseResult:
    """Flags for the rows whose labels the out-of-fold scores most confidently contradict."""
    pairs = [m for ms in margins.values() for m in ms]
    if not pairs:
        return NoiseResult(1.0, 1.0, "no pair was scored, so no label was judged", float("nan"))
    t = fit_temperature(pairs)
    accuracy = sum(1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in pairs) / len(pairs)
    p_wrong, worst = {}, {}
    for loc, ms in margins.items():
        if not ms:
            continue
        m = min(ms)
        worst[loc], p_wrong[loc] = m, _sigmoid(-m / t)
    ranked = sorted(p_wrong, key=lambda loc: -p_wrong[loc])
    if flag_fraction > 0:
        n = math.ceil(flag_fraction * len(ranked))
        chosen = ranked[:n]
        threshold = p_wrong[chosen[-1]] if chosen else 1.0
        rule = (
            f"--flag-fraction {flag_fraction:g}: the {n} most suspicious of {len(ranked)} scored rows "
            f"(P(label wrong) >= {threshold:.3f})"
        )
    elif flag_threshold > 0:
        threshold = flag_threshold
        chosen = [loc for loc in ranked if p_wrong[loc] >= threshold]
        rule = (
            f"--flag-threshold {flag_threshold:g}: flag where calibrated P(label wrong) >= {threshold:.3f} "
            f"(temperature T = {t:.3g} fitted out of fold); {len(chosen)} of {len(ranked)} scored rows"
        )
    else:
        confidence = sum(_sigmoid(m / t) for m in pairs) / len(pairs)
        threshold = confidence
        if confidence <= 0.5:
            chosen = []
            rule = (
                f"confident learning: the out-of-fold models are no better than chance (mean P(label right) "
                f"{confidence:.3f} <= 0.5), so no label is flagged as noise"
            )
        else:
            chosen = [loc for loc in ranked if p_wrong[loc] >= threshold]
            rule = (
                f"confident learning: flag where calibrated P(label wrong) >= the models' mean confidence in "
                f"the given labels, t = {threshold:.3f} (temperature T = {t:.3g} fitted out of fold); "
                f"{len(chosen)} of {len(ranked)} scored rows"
            )
    flags = [
        Flag(loc, "label_noise", p_wrong[loc], f"out-of-fold r_rejected - r_chosen = {-worst[loc]:+.3f}")
        for loc in chosen
    ]
    return NoiseResult(t, threshold, rule, accuracy, p_wrong, worst, flags)
