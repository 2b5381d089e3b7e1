"""`CurateConfig`: every `rewardlab curate` option, documented once; the flags are generated from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rewardlab.config import PAIR_FORMATS, ConfigError, check_choices, check_range, doc

REASONS = (
    "label_noise",
    "exact_duplicate",
    "near_duplicate",
    "contamination",
    "contradiction",
    "low_agreement",
    "truncated",
    "empty",
    "boilerplate",
    "refusal",
    "unusable",
)
"""Every reason a row can be flagged for (docs/curation.md explains each)."""

FLAG_ONLY = ("truncated", "empty", "boilerplate", "refusal")
"""The heuristic reasons: flagged for a person to look at, never dropped unless --drop names them."""

DEFAULT_DROP = [r for r in REASONS if r not in FLAG_ONLY]
"""Reasons whose rows leave the cleaned file by default; the heuristic ones are flagged only."""


@dataclass
class CurateConfig:
    """Everything `rewardlab curate` needs; defaults fit MiniLM on a few thousand pairs on a CPU."""

    data: str = doc("Preference data to curate (any format `rewardlab train` reads).", positional=True)
    output: str = doc(
        "Output folder: the cleaned file, flagged.jsonl, summary.json and the report.", short="-o"
    )
    format: Literal["pairs", "transcript", "conversational", "ranking", "ratings"] | None = doc(
        "Data format override (default: detect).", None
    )
    model: str | None = doc(
        "Score the pairs with this trained reward model instead of out-of-fold models. If it was trained "
        "on DATA it judges its own pairs and finds few of their errors (the report says so).",
        None,
    )
    against: list[str] = doc(
        "Evaluation or benchmark file to decontaminate against (each read in its own format).",
        default_factory=list,
    )
    folds: int = doc(
        "Out-of-fold models, split by prompt: each trains on the other folds and scores its own. 1: one "
        "model trained on --fold-sample of the prompts scores the rest (the sample itself is not judged). "
        "0: no label-noise scoring, only the text checks (seconds; ignored with --model).",
        5,
    )
    ensemble: int = doc(
        "Independent out-of-fold scorings (each its own fold split and seeds); a pair's margin is their "
        "mean, so one fold model's errors average out (K x the cost). On the demo task at 20% noise, "
        "recall of the flips at 60% precision, 3 seeds: 3 → 80%, 5 → 82% (docs/curation.md).",
        1,
    )
    rounds: int = doc(
        "Out-of-fold rounds: 2 trains the fold models again without the rows round 1 flagged as label "
        "noise and flags from those cleaner models' scores (twice the cost; docs/curation.md measures it).",
        1,
    )
    fold_sample: float = doc("With --folds 1: the fraction of prompts the one model trains on.", 0.5)
    flag_fraction: float = doc(
        "Flag this share of the scored pairs, most suspicious first (0: the confident-learning threshold, "
        "P(label wrong) at least the mean calibrated P(label right), docs/curation.md).",
        0.0,
    )
    flag_threshold: float = doc(
        "Flag rows whose calibrated P(label wrong) is at least this (0: the confident-learning threshold; "
        "0.5: every row the out-of-fold model would label the other way, more recall, less precision; "
        "docs/curation.md measures both).",
        0.0,
    )
    backbone: str = doc("Backbone of the out-of-fold models (as `rewardlab train --backbone`).", "minilm")
    max_length: int = doc("Token budget per (prompt, response) of the fold models and the checks.", 256)
    epochs: float = doc("Training passes of each fold model.", 1.0)
    batch_size: int = doc("Pairs (groups) per micro-batch of the fold models.", 8)
    lr: float = doc("Peak learning rate of the fold models.", 1e-4)
    near_duplicate: float = doc(
        "Jaccard similarity (word 3-gram MinHash) at or above which two rows are near duplicates (1: off).",
        0.9,
    )
    min_agreement: float = doc(
        "Items labelled by several annotators with a lower mean pairwise agreement are flagged.", 0.6
    )
    drop: list[str] = doc(
        "Flag reasons whose rows leave the cleaned file (the others are flagged and kept).",
        default_factory=lambda: list(DEFAULT_DROP),
        sep=",",
    )
    dry_run: bool = doc("Write only the report (and summary), no cleaned file or flagged.jsonl.", False)
    seed: int = doc("Seed of the folds and of the fold models.", 0)
    device: str | None = doc("cpu, cuda, cuda:1, mps (default: best available).", None)

    def __post_init__(self) -> None:
        check_choices(self)
        check_range(self, "folds", low=0)
        check_range(self, "rounds", low=1)
        check_range(self, "ensemble", low=1)
        check_range(self, "fold_sample", low=0, high=1, low_open=True)
        check_range(self, "flag_fraction", low=0, high=1)
        check_range(self, "flag_threshold", low=0, high=1)
        if self.flag_fraction and self.flag_threshold:
            raise ConfigError("--flag-fraction and --flag-threshold are two rules for one flag: give one")
        check_range(self, "max_length", low=1)
        check_range(self, "batch_size", low=1)
        check_range(self, "epochs", low=0, low_open=True)
        check_range(self, "lr", low=0)
        check_range(self, "near_duplicate", low=0, low_open=True)
        check_range(self, "min_agreement", low=0)
        for name, flag in (("near_duplicate", "--near-duplicate"), ("min_agreement", "--min-agreement")):
            if getattr(self, name) > 1:
                raise ConfigError(f"{flag} is a share and must be at most 1, got {getattr(self, name)}")
        if self.format is not None and self.format not in PAIR_FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(PAIR_FORMATS)}; got {self.format!r}")
        unknown = [r for r in self.drop if r not in REASONS]
        if unknown:
            raise ConfigError(
                f"--drop: unknown reason {', '.join(unknown)}; reasons are {', '.join(REASONS)}"
            )
