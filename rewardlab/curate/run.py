"""`curate(cfg)`: every check over one preference file, what the cleaned file keeps, and the outputs.

Order: read and validate (training's readers, file:line errors), refuse a mismatched tokenizer, the
cheap text checks, then the label-noise scores (out-of-fold models, or ``--model``). A row leaves the
cleaned file when any of its flags has a reason in ``--drop``; every flag of every row is written to
flagged.jsonl and counted in the summary, so nothing is removed silently. ``--dry-run`` writes the
report and summary only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rewardlab.curate.agreement import agreement
from rewardlab.curate.config import CurateConfig
from rewardlab.curate.duplicates import contamination, contradictions, duplicates
from rewardlab.curate.flags import Flag
from rewardlab.curate.folds import PairScores, score_ensemble, score_with_model
from rewardlab.curate.heuristics import empty_and_boilerplate, refusals, truncated
from rewardlab.curate.noise import NoiseResult, label_noise, weak_model_warning
from rewardlab.curate.report import write_outputs
from rewardlab.curate.result import CurateResult
from rewardlab.curate.rows import CurateData, load_data
from rewardlab.curate.tokenizer import check_tokenizer
from rewardlab.progress import Reporter


def curate(cfg: CurateConfig, reporter: Reporter | None = None) -> CurateResult:
    from rewardlab.data import load_preferences

    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    data = load_data(cfg.data, cfg.format)
    for line in data.summary.lines():
        reporter.message(line)
    against = {}
    for path in cfg.against:
        groups, summary = load_preferences(path)  # each in its own format
        against[path] = groups
        reporter.message(summary.lines()[0])

    scorer, encoder, name = _scorer_or_encoder(cfg)
    check_tokenizer(data.groups, encoder.tokenizer, name)

    flags: list[Flag] = [
        Flag(loc, "unusable", 1.0, f"dropped by the loader: {why}") for loc, why in data.unusable().items()
    ]
    flags += duplicates(data.groups, cfg.near_duplicate)
    flags += contradictions(data.groups)
    if against:
        flags += contamination(data.groups, against, cfg.near_duplicate)
    agree = agreement(data.groups, cfg.min_agreement)
    flags += agree.flags
    flags += truncated(data.groups, encoder)
    flags += empty_and_boilerplate(data.groups)
    flags += refusals(data.groups)

    if scorer is not None:
        scores = score_with_model(data, scorer, cfg.model or "")
    elif cfg.folds == 0:
        scores = PairScores({}, "not scored (--folds 0: text checks only)", "none", unscored=list(data.order))
    else:
        scores = score_ensemble(data, cfg, reporter)
    noise = label_noise(scores.margins, cfg.flag_fraction, cfg.flag_threshold)
    if cfg.rounds > 1 and scorer is None and cfg.folds > 0:
        scores, noise = _more_rounds(data, cfg, noise, reporter)
    flags += noise.flags
    reporter.message(f"label noise: {noise.rule}")
    weak = weak_model_warning(noise)
    if weak:
        reporter.message(f"[yellow]warning[/yellow]: {weak}")

    drop = set(cfg.drop)
    for f in flags:
        f.dropped = f.reason in drop
    dropped_rows = {f.location for f in flags if f.dropped}
    kept = [loc for loc in data.order if loc not in dropped_rows]
    dropped = [loc for loc in data.order if loc in dropped_rows]
    settings = {k: v for k, v in vars(cfg).items()}
    result = CurateResult(
        data,
        {k: len(v) for k, v in against.items()},
        flags,
        noise,
        scores,
        agree,
        kept,
        dropped,
        settings,
    )
    result.wall_time_s = time.perf_counter() - t0
    result.files = write_outputs(result, Path(cfg.output), dry_run=cfg.dry_run)
    return result


def _more_rounds(
    data: CurateData, cfg: CurateConfig, noise: NoiseResult, reporter: Reporter
) -> tuple[PairScores, NoiseResult]:
    """--rounds: retrain the fold models without the previous round's label-noise rows, rescore, reflag.
    Flipped labels in the training folds pull a fold model towards them; without them it is surer."""
    for r in range(2, cfg.rounds + 1):
        reporter.message(f"label noise, round {r - 1}: {noise.rule}")
        previous = frozenset(f.location for f in noise.flags)
        scores = score_ensemble(data, cfg, reporter, exclude=previous)
        noise = label_noise(scores.margins, cfg.flag_fraction, cfg.flag_threshold)
        noise.rule += (
            f" (round {r}: fold models trained without the {len(previous)} rows round {r - 1} flagged)"
        )
    return scores, noise


def _scorer_or_encoder(cfg: CurateConfig) -> tuple[Any, Any, str]:
    """--model: its Scorer (and encoder); else the fold backbone's encoder for the checks (no scorer)."""
    if cfg.model:
        from rewardlab.scoring.scorer import Scorer

        scorer = Scorer.from_pretrained(cfg.model, device=cfg.device)
        return scorer, scorer.encoder, cfg.model
    from rewardlab.model.build import build_reward_model

    _, encoder, _ = build_reward_model(cfg.backbone, max_length=cfg.max_length)
    return None, encoder, cfg.backbone
