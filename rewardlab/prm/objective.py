"""The process and outcome reward objectives: `Objective`s (rewardlab.training.objectives) over solutions
with per-step labels, read from step-labelled data (docs/prm.md).

- `StepObjective` (``--objective steps``): the head's logit at each step marker, binary cross-entropy
  against the step's (soft) label (`losses.step_bce`); model selection maximises step AUROC.
- `OutcomeObjective` (``--objective outcome``): one reward per solution at the usual pooled position,
  binary cross-entropy against the outcome label (`losses.outcome_bce`); selection maximises outcome AUROC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from rewardlab.config import TrainConfig
from rewardlab.data.step_encoding import (
    STEP_MARKER,
    STEP_SCORES_HOWTO,
    EncodedSteps,
    collate_steps,
    encode_step_examples,
)
from rewardlab.losses import outcome_bce, step_bce
from rewardlab.prm.evaluate import StepEvalResult, evaluate_steps


def check_step_flags(cfg: TrainConfig) -> None:
    """Flag combinations the step-labelled objectives cannot train, failing before any model is built."""
    if cfg.stream:
        raise ValueError("--stream reads --data of preferences (--objective pairs); drop --stream otherwise")
    if cfg.data is None:
        raise ValueError(
            f"--objective {cfg.objective} needs --data with step-labelled solutions (docs/prm.md); "
            "build some from GSM8K with `rewardlab prm build-gsm8k`"
        )


def load_solutions(path: str, fmt: str | None, neutral: float) -> tuple[list, Any]:
    from rewardlab.data.steps import load_steps

    return load_steps(path, fmt, neutral)


def solutions_hash(items: list) -> str:
    from rewardlab.data.steps import steps_hash

    return steps_hash(items)


def model_output(model: Any, batch: dict[str, torch.Tensor], per_token: bool) -> torch.Tensor:
    args = (batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), batch["response_mask"])
    return model(*args, per_token=per_token).float()


def eval_fields(result: StepEvalResult) -> dict[str, Any]:
    return {f"eval_{k}": v for k, v in result.to_dict().items() if isinstance(v, float)}


class StepObjective:
    """A process reward model: every labelled step of a solution, read at its step marker."""

    name = "steps"
    extra_tokens: Sequence[str] = (STEP_MARKER,)

    def __init__(self, cfg: TrainConfig) -> None:
        if cfg.lora_r:
            raise ValueError(
                "--lora-r is not supported with --objective steps yet; use --freeze-layers instead"
            )
        check_step_flags(cfg)
        self.neutral = cfg.prm800k_neutral

    def load(self, path: str, fmt: str | None) -> tuple[list, Any]:
        return load_solutions(path, fmt, self.neutral)

    def data_hash(self, items: list) -> str:
        return solutions_hash(items)

    def describe(self, card: Any) -> None:
        card.objective = self.name
        card.step_marker = STEP_MARKER
        card.step_scores = STEP_SCORES_HOWTO

    def encode(self, items: list, encoder: Any, on_progress: Callable[[int], Any]) -> tuple[list, Any]:
        return encode_step_examples(items, encoder, "steps", on_progress)

    def count(self, encoded: list[EncodedSteps]) -> int:
        return sum(y is not None for e in encoded for y in e.labels)

    def prepare(self, model: Any) -> str | None:
        return None

    def collate(self, items: list, pad_id: int) -> dict[str, torch.Tensor]:
        return collate_steps(items, pad_id)

    def rewards(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model_output(model, batch, per_token=True)  # (batch, seq): read at the markers

    def loss(
        self, rewards: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return step_bce(rewards, batch)

    def batch_count(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["step_labels"])

    def evaluate(self, scorer: Any, items: list, encoded: list, ceiling: float | None) -> StepEvalResult:
        return evaluate_steps(scorer, items)

    def eval_record(self, result: StepEvalResult) -> dict[str, Any]:
        return eval_fields(result)

    def card_metrics(self, result: StepEvalResult) -> dict[str, Any]:
        return result.to_dict()


class OutcomeObjective:
    """An outcome reward model: one pointwise reward per solution against its outcome label."""

    name = "outcome"
    extra_tokens: Sequence[str] = ()

    def __init__(self, cfg: TrainConfig) -> None:
        check_step_flags(cfg)
        self.neutral = cfg.prm800k_neutral

    def load(self, path: str, fmt: str | None) -> tuple[list, Any]:
        return load_solutions(path, fmt, self.neutral)

    def data_hash(self, items: list) -> str:
        return solutions_hash(items)

    def describe(self, card: Any) -> None:
        card.objective = self.name

    def encode(self, items: list, encoder: Any, on_progress: Callable[[int], Any]) -> tuple[list, Any]:
        return encode_step_examples(items, encoder, "outcome", on_progress)

    def count(self, encoded: list[EncodedSteps]) -> int:
        return sum(e.outcome is not None for e in encoded)

    def prepare(self, model: Any) -> str | None:
        return None

    def collate(self, items: list, pad_id: int) -> dict[str, torch.Tensor]:
        return collate_steps(items, pad_id)

    def rewards(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model_output(model, batch, per_token=False)

    def loss(
        self, rewards: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return outcome_bce(rewards, batch)

    def batch_count(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["outcomes"])

    def evaluate(self, scorer: Any, items: list, encoded: list, ceiling: float | None) -> StepEvalResult:
        return evaluate_steps(scorer, items)

    def eval_record(self, result: StepEvalResult) -> dict[str, Any]:
        return eval_fields(result)

    def card_metrics(self, result: StepEvalResult) -> dict[str, Any]:
        return result.to_dict()
