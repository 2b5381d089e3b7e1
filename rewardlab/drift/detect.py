"""Drift: has the policy moved away from what the reward model knows? Statistics, verdict, what to label.

A reward model is trustworthy near its training data; as RL improves the policy, its responses leave
that distribution. `drift` compares a reference set (the training data, or policy samples from training
time) with the current policy's responses on four signals:

- score drift: the current rewards' mean shift in reference-std units, and a two-sample KS test;
- Mahalanobis OOD: a Gaussian (shrunk covariance) fitted on part of the reference's pooled hidden states
  (`Scorer.embed`, the vector the reward head reads); the threshold is the (1 - fpr) quantile of the
  held-out reference distances, so a fresh sample of the reference policy lands beyond it at rate ~fpr;
- a classifier two-sample test: L2 logistic regression telling reference from current embeddings,
  cross-validated AUROC (0.5: no detectable shift);
- with an ensemble, disagreement (std across members) on current vs reference.

`Thresholds` turns them into a verdict (retrain / watch / fine) with the reasons; `select` picks the
current prompts most worth annotating, in the annotation app's import format (docs/annotate.md).
docs/drift.md explains each number; the signals' statistics are rewardlab.drift.signals, the report is
rewardlab.drift.report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import doc
from rewardlab.data.types import DataError, Text
from rewardlab.drift.signals import (
    Disagreement,
    OodDrift,
    ScoreDrift,
    classifier_auroc,
    disagreement,
    ood_drift,
    score_drift,
)
from rewardlab.progress import Reporter

VERDICTS = ("fine", "watch", "retrain")
SELECT_BY = ("ood", "disagreement", "mix")


@dataclass
class Sample:
    prompt: Text
    response: Text


def read_samples(path: str | Path) -> list[Sample]:
    """(prompt, response) samples from JSONL rows with `response`, `responses` (a list), `candidates`
    (`rewardlab bon` output, each with `text`) or `chosen`/`rejected` (preference data: both are used)."""
    out: list[Sample] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not JSON ({e.msg})") from e
            if not isinstance(row, dict) or "prompt" not in row:
                raise DataError(f"{path}:{n}: each row needs a 'prompt' field")
            if "response" in row:
                responses = [row["response"]]
            elif isinstance(row.get("responses"), list):
                responses = row["responses"]
            elif isinstance(row.get("candidates"), list):
                responses = [c["text"] if isinstance(c, dict) else c for c in row["candidates"]]
            elif "chosen" in row and "rejected" in row:
                responses = [row["chosen"], row["rejected"]]
            else:
                raise DataError(
                    f"{path}:{n}: no response: give 'response', 'responses', 'candidates' or chosen/rejected"
                )
            out += [Sample(row["prompt"], r) for r in responses]
    if not out:
        raise DataError(f"{path}: no samples")
    return out


# --- statistics ---------------------------------------------------------------------------------------


@dataclass
class Thresholds:
    """When drift is worth acting on: a signal at or past its `retrain_*` value says retrain, past its
    `watch_*` value says watch. Each field is a `rewardlab drift` flag (--retrain-auroc ...)."""

    fpr: float = doc(
        "False-positive rate the Mahalanobis threshold is calibrated to on held-out reference.", 0.05
    )
    watch_auroc: float = doc("Classifier two-sample AUROC that says watch (0.5: indistinguishable).", 0.6)
    retrain_auroc: float = doc("Classifier two-sample AUROC that says retrain.", 0.75)
    watch_ood_excess: float = doc(
        "Fraction of current samples beyond the OOD threshold, minus fpr: watch.", 0.1
    )
    retrain_ood_excess: float = doc("The same excess over fpr that says retrain.", 0.25)
    watch_shift: float = doc("|Reward mean shift| in reference standard deviations that says watch.", 0.5)
    retrain_shift: float = doc("|Reward mean shift| in reference standard deviations that says retrain.", 1.0)
    ks_alpha: float = doc(
        "A KS p-value below this says watch (never retrain alone: big samples make tiny shifts significant).",
        0.01,
    )
    watch_disagreement: float = doc("Ensemble disagreement on current / on reference that says watch.", 1.5)
    retrain_disagreement: float = doc("Ensemble disagreement ratio that says retrain.", 2.0)


@dataclass
class DriftResult:
    model: str
    reference: str
    current: str
    n_ref: int
    n_cur: int
    thresholds: Thresholds
    scores: ScoreDrift
    ood: OodDrift
    auroc: float
    disagreement: Disagreement | None
    verdict: str
    reasons: list[str]
    ref_rewards: list[float] = field(repr=False)
    cur_rewards: list[float] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(
    t: Thresholds, scores: ScoreDrift, ood: OodDrift, auc: float, dis: Disagreement | None
) -> tuple[str, list[str]]:
    """The verdict and one reason per signal past a threshold (or why everything is fine)."""
    level, reasons = 0, []

    def check(value: float, watch: float, retrain: float, text: str) -> None:
        nonlocal level
        if value >= retrain:
            level = 2
            reasons.append(f"{text} ≥ {retrain:g} (retrain)")
        elif value >= watch:
            level = max(level, 1)
            reasons.append(f"{text} ≥ {watch:g} (watch)")

    check(auc, t.watch_auroc, t.retrain_auroc, f"classifier AUROC {auc:.3f}")
    excess = ood.cur_fraction - ood.fpr
    check(
        excess,
        t.watch_ood_excess,
        t.retrain_ood_excess,
        f"{100 * ood.cur_fraction:.1f}% beyond the OOD threshold, excess over fpr {excess:.3f}",
    )
    check(
        abs(scores.mean_shift),
        t.watch_shift,
        t.retrain_shift,
        f"|reward shift| {abs(scores.mean_shift):.2f} std",
    )
    if dis is not None:
        check(
            dis.ratio,
            t.watch_disagreement,
            t.retrain_disagreement,
            f"ensemble disagreement ratio {dis.ratio:.2f}",
        )
    if scores.ks_p < t.ks_alpha:
        level = max(level, 1)
        reasons.append(f"KS p = {scores.ks_p:.2g} < {t.ks_alpha:g} (watch)")
    if not reasons:
        reasons.append("no signal past its watch threshold")
    return VERDICTS[level], reasons


def rewards_from_embeddings(scorer: Any, emb: np.ndarray, prompts: list, responses: list) -> list[float]:
    """The rewards of already-embedded samples: the head applied to the pooled vectors it reads, so drift
    runs the backbone once instead of twice (``head(embed) == score``, tests/test_drift.py). A model
    without a plain linear head is scored again."""
    import torch

    from rewardlab.model.reward_model import score_head
    from rewardlab.model.saved import unwrap_hf_model

    try:
        head = score_head(unwrap_hf_model(scorer.model))
    except (AttributeError, ValueError):
        return list(scorer.score(prompts, responses))
    with torch.no_grad():
        x = torch.as_tensor(emb, dtype=head.weight.dtype, device=head.weight.device)
        return head(x).squeeze(-1).float().cpu().tolist()


def drift(
    scorer: Any,
    reference: Sequence[Sample],
    current: Sequence[Sample],
    thresholds: Thresholds | None = None,
    reporter: Reporter | None = None,
    *,
    model: str = "",
    reference_name: str = "",
    current_name: str = "",
    seed: int = 0,
) -> DriftResult:
    """All drift signals for `current` against `reference`. `scorer` is a `Scorer` or an `EnsembleScorer`
    (embeddings then come from its first member, rewards from the combination rule)."""
    t = thresholds or Thresholds()
    reporter = reporter or Reporter()
    members = getattr(scorer, "scorers", None)
    embedder = members[0] if members else scorer
    sets = {}
    for name, samples in (("reference", reference), ("current", current)):
        prompts, responses = [s.prompt for s in samples], [s.response for s in samples]
        reporter.message(f"embedding and scoring {len(samples)} {name} samples")
        emb = np.asarray(embedder.embed(prompts, responses), float)
        if members:  # one pass per member, combined by the ensemble's own rule
            from rewardlab.scoring.ensemble import combine

            per_member = scorer.score_members(prompts, responses)
            rewards = combine(per_member, scorer.card.rule, scorer.card.lam)
        else:
            per_member, rewards = None, rewards_from_embeddings(scorer, emb, prompts, responses)
        sets[name] = (emb, list(rewards), per_member)
    (ref_emb, ref_r, ref_m), (cur_emb, cur_r, cur_m) = sets["reference"], sets["current"]
    scores = score_drift(ref_r, cur_r)
    ref_p, cur_p = [s.prompt for s in reference], [s.prompt for s in current]
    ood = ood_drift(ref_emb, cur_emb, fpr=t.fpr, seed=seed, ref_groups=ref_p)
    auc = classifier_auroc(ref_emb, cur_emb, seed=seed, groups=ref_p + cur_p)
    dis = disagreement(ref_m, cur_m) if members else None
    v, reasons = verdict(t, scores, ood, auc, dis)
    return DriftResult(
        model,
        reference_name,
        current_name,
        len(reference),
        len(current),
        t,
        scores,
        ood,
        auc,
        dis,
        v,
        reasons,
        ref_r,
        cur_r,
    )


# --- what to label ---------------------------------------------------------------------------------------


def _ranks01(x: Sequence[float]) -> np.ndarray:
    r = np.argsort(np.argsort(np.asarray(x, float)))
    return r / max(len(r) - 1, 1)


def select(result: DriftResult, current: Sequence[Sample], k: int, by: str = "ood") -> list[dict[str, Any]]:
    """The `k` current prompts most worth annotating, as annotation-import rows
    ``{"prompt", "responses", "drift_score"}``: each prompt is worth its most novel response (highest
    Mahalanobis distance, ensemble disagreement, or `mix`: the mean of the two percentile ranks), and
    brings all its current responses. Prompts with a single response cannot be ranked and are skipped."""
    if by not in SELECT_BY:
        raise ValueError(f"--select-by must be one of {', '.join(SELECT_BY)}, got {by!r}")
    if by != "ood" and result.disagreement is None:
        raise ValueError(f"--select-by {by} needs an ensemble MODEL (an ensemble.json folder)")
    if by == "ood":
        value = np.asarray(result.ood.cur_scores)
    elif by == "disagreement":
        value = np.asarray(result.disagreement.cur_std)
    else:
        value = (_ranks01(result.ood.cur_scores) + _ranks01(result.disagreement.cur_std)) / 2
    groups: dict[str, dict[str, Any]] = {}
    for s, v in zip(current, value, strict=True):
        key = json.dumps(s.prompt, sort_keys=True)
        g = groups.setdefault(key, {"prompt": s.prompt, "responses": [], "drift_score": -math.inf})
        if s.response not in g["responses"]:
            g["responses"].append(s.response)
        g["drift_score"] = max(g["drift_score"], float(v))
    rankable = [g for g in groups.values() if len(g["responses"]) >= 2]
    return sorted(rankable, key=lambda g: -g["drift_score"])[:k]
