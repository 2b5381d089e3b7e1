"""Comparison mode: two diagnoses of the same data side by side, and the pairs where the models disagree.

Reward scales differ between models, so disagreement is measured on calibrated probabilities
P(chosen ≻ rejected) = σ(Δr / T), each model with the temperature its own diagnosis fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rewardlab.data.types import PreferenceGroup, Text
from rewardlab.diagnose.diagnosis import Diagnosis, finite
from rewardlab.scoring import metrics


@dataclass
class Disagreement:
    prompt: Text
    chosen: Text
    rejected: Text
    p_a: float
    """Model A's calibrated P(chosen ≻ rejected) = σ(Δ_a / T_a)."""
    p_b: float
    source: str


@dataclass
class Comparison:
    a: Diagnosis
    b: Diagnosis
    sign_agreement: float
    """Fraction of pairs both models order the same way."""
    disagreements: list[Disagreement]

    def to_dict(self) -> dict[str, Any]:
        return finite(
            {
                "a": self.a.to_dict(),
                "b": self.b.to_dict(),
                "sign_agreement": self.sign_agreement,
                "disagreements": [asdict(d) for d in self.disagreements],
            }
        )


def compare(a: Diagnosis, b: Diagnosis, groups: Sequence[PreferenceGroup], top: int = 10) -> Comparison:
    """Two diagnoses of the same data side by side, and the pairs where their calibrated preference
    probabilities differ most (temperatures make the two reward scales comparable)."""
    if a.pairs != b.pairs:
        raise ValueError(f"compare: the diagnoses cover {a.pairs} and {b.pairs} pairs; use the same data")
    ta, tb = a.calibration.temperature, b.calibration.temperature
    rows, same, i = [], 0, 0
    for g in groups:
        for w, lo in g.pairs:
            da, db = a.raw.deltas[i], b.raw.deltas[i]
            same += (da > 0) == (db > 0)
            rows.append(
                Disagreement(
                    g.prompt,
                    g.responses[w],
                    g.responses[lo],
                    metrics.sigmoid(da / ta),
                    metrics.sigmoid(db / tb),
                    g.source,
                )
            )
            i += 1
    rows.sort(key=lambda d: -abs(d.p_a - d.p_b))
    return Comparison(a, b, same / max(1, len(rows)), rows[:top])
