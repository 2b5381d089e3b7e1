"""`CurateResult`: what curation found and wrote; summary.json is its `summary()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rewardlab.curate.agreement import AgreementResult
from rewardlab.curate.flags import Flag
from rewardlab.curate.folds import PairScores
from rewardlab.curate.noise import NoiseResult, weak_model_warning
from rewardlab.curate.rows import CurateData


@dataclass
class CurateResult:
    """What curation found and wrote (summary.json is its `summary()`)."""

    data: CurateData
    against: dict[str, int]
    """--against file -> prompts read from it."""
    flags: list[Flag]
    noise: NoiseResult
    scores: PairScores
    agreement: AgreementResult
    kept: list[str]
    dropped: list[str]
    settings: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def counts(self) -> dict[str, dict[str, int]]:
        """Reason -> {"flagged": rows, "dropped": rows} (a row with several reasons counts under each)."""
        out: dict[str, dict[str, int]] = {}
        for reason in dict.fromkeys(f.reason for f in self.flags):
            rows = {f.location for f in self.flags if f.reason == reason}
            dropped = {f.location for f in self.flags if f.reason == reason and f.dropped}
            out[reason] = {"flagged": len(rows), "dropped": len(dropped)}
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "data": self.data.path,
            "format": self.data.format,
            "rows_read": len(self.data.order),
            "rows_kept": len(self.kept),
            "rows_dropped": len(self.dropped),
            "rows_flagged": len({f.location for f in self.flags}),
            "reasons": self.counts(),
            "label_noise": {
                "how": self.scores.how,
                "cost": self.scores.cost,
                "rule": self.noise.rule,
                "threshold": self.noise.threshold,
                "temperature": self.noise.temperature,
                "out_of_fold_accuracy": self.noise.oof_accuracy,
                "warning": weak_model_warning(self.noise),
                "rows_scored": len(self.noise.p_wrong),
                "rows_not_judged": len(self.scores.unscored),
            },
            "agreement": {
                "items": self.agreement.items,
                "annotators": self.agreement.annotators,
                "mean_before": self.agreement.mean_before,
                "mean_after": self.agreement.mean_after,
            },
            "against": self.against,
            "settings": self.settings,
            "files": self.files,
            "wall_time_s": self.wall_time_s,
        }
