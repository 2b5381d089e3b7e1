"""The one inference path (scorer.py: Scorer) and what reads its scores: evaluate.py, metrics.py,
ensemble.py (EnsembleScorer), score_file.py.

``from rewardlab.scoring import Scorer`` is the public face (imported on first use, so the torch-free
modules here stay cheap to import); the other names the flat ``rewardlab/scoring.py`` had still resolve,
with a DeprecationWarning naming ``rewardlab.scoring.scorer``.
"""

from __future__ import annotations

from typing import Any

from rewardlab import moved

_old_names = moved(
    __name__,
    dict.fromkeys(
        ["pick_device", "bf16_supported", "no_grad_for", "quantize_dynamic_int8"], "rewardlab.scoring.scorer"
    ),
)


def __getattr__(name: str) -> Any:
    if name == "Scorer":
        from rewardlab.scoring.scorer import Scorer

        return Scorer
    return _old_names(name)
