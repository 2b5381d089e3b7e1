"""What the training loop optimises: the `Objective` Protocol and the pairwise preference objective.

The loop (rewardlab.training.loop.fit) knows only this Protocol; each objective says how its items are
read, encoded, batched, scored by the model and turned into a loss, and how held-out items are
evaluated for model selection. A Protocol, not a base class (torchtune's ``recipe_interfaces.py``):
implementations share functions, never inherited code. `PairwiseObjective` is here; the process and
outcome reward objectives are in rewardlab.prm.objective.

    rewardlab train → training.run.train → loop.fit → PairwiseObjective.loss → losses.grouped_bt
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from rewardlab.config import TrainConfig
from rewardlab.data.batching import EncodedGroup, collate_groups, encode_groups
from rewardlab.data.packing import collate_shared_prefix
from rewardlab.data.types import PreferenceGroup
from rewardlab.losses import centering, grouped_bt, pairwise_accuracy, plackett_luce
from rewardlab.model.reward_model import shared_prefix_rewards, shared_prefix_support
from rewardlab.scoring.evaluate import EvalResult, evaluate_encoded


class Objective(Protocol):
    """A training signal for a reward model, as the loop and `train` use it."""

    name: str
    """Written to the model card (``objective``): pairs, steps or outcome."""
    extra_tokens: Sequence[str]
    """Special tokens the tokenizer needs (a PRM's step marker), added before the model is wrapped."""

    def load(self, path: str, fmt: str | None) -> tuple[list, Any]:
        """Read one data file: (items, a summary with ``lines()``)."""
        ...

    def data_hash(self, items: list) -> str:
        """A fingerprint of the training items, for the model card."""
        ...

    def describe(self, card: Any) -> None:
        """Record on the model card how to read this model's scores."""
        ...

    def encode(self, items: list, encoder: Any, on_progress: Callable[[int], Any]) -> tuple[list, Any]:
        """Tokenise items: (encoded items with ``num_tokens``, a truncation report with ``lines()``)."""
        ...

    def count(self, encoded: Any) -> int:
        """Training units in the encoded data (pairs, labelled steps, solutions): the 'pairs' of pairs/s."""
        ...

    def prepare(self, model: Any) -> str | None:
        """Choose the forward for this model (e.g. the shared-prefix one); a line to log, or None."""
        ...

    def collate(self, items: list, pad_id: int) -> dict[str, torch.Tensor]:
        """One micro-batch of encoded items as tensors."""
        ...

    def rewards(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The model's output the loss reads (float32), through ``model.__call__`` so DDP sees it."""
        ...

    def loss(
        self, rewards: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The micro-batch's loss and its accuracy (a 0-dim tensor each)."""
        ...

    def batch_count(self, batch: dict[str, torch.Tensor]) -> int:
        """Training units in one micro-batch (weights its accuracy in the step's log line)."""
        ...

    def evaluate(self, scorer: Any, items: list, encoded: list, ceiling: float | None) -> Any:
        """Held-out result with ``accuracy`` (maximised by model selection), ``line()``, ``to_dict()``,
        ``reward_mean`` and ``reward_std``."""
        ...

    def eval_record(self, result: Any) -> dict[str, Any]:
        """Extra fields of an evaluation's metrics.jsonl record."""
        ...

    def card_metrics(self, result: Any) -> dict[str, Any]:
        """Extra fields of the best evaluation for the card's ``train_metrics``."""
        ...


class PairwiseObjective:
    """Preference groups (one prompt, K ranked responses) trained with Bradley-Terry over their pairs
    (optional margins, label smoothing and centering) or Plackett-Luce over strict rankings; decoders
    score a group's responses in one packed row after their shared prefix where supported."""

    name = "pairs"
    extra_tokens: Sequence[str] = ()

    def __init__(self, cfg: TrainConfig) -> None:
        self.plackett_luce = cfg.loss == "plackett_luce"
        self.use_margins = cfg.use_margins
        self.label_smoothing = cfg.label_smoothing
        self.centering = cfg.centering
        self.want_shared_prefix = cfg.shared_prefix
        self.shared_prefix = False

    def load(self, path: str, fmt: str | None) -> tuple[list, Any]:
        from rewardlab.data import load_preferences

        return load_preferences(path, fmt)

    def data_hash(self, items: list) -> str:
        from rewardlab.data.loading import data_hash

        return data_hash(items)

    def describe(self, card: Any) -> None:
        card.objective = self.name

    def encode(self, items: list, encoder: Any, on_progress: Callable[[int], Any]) -> tuple[list, Any]:
        return encode_groups(items, encoder, on_progress)

    def count(self, encoded: Any) -> int:
        streamed = getattr(encoded, "num_pairs", None)  # a TokenCache counted its pairs while building
        return streamed if streamed is not None else sum(len(g.pairs) for g in encoded)

    def prepare(self, model: Any) -> str | None:
        if not self.want_shared_prefix or model.is_encoder:
            return None
        self.shared_prefix, why = shared_prefix_support(model)
        return f"shared-prefix forward: {'on' if self.shared_prefix else 'off'} ({why})"

    def collate(self, items: list, pad_id: int) -> dict[str, torch.Tensor]:
        batch = collate_shared_prefix(items, pad_id) if self.shared_prefix else collate_groups(items, pad_id)
        order = rank_order(items) if self.plackett_luce else None
        if order is not None:
            batch["rank_order"] = order
        return batch

    def rewards(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.shared_prefix:
            return shared_prefix_rewards(model, batch).float()
        args = (
            batch["input_ids"],
            batch["attention_mask"],
            batch.get("token_type_ids"),
            batch["response_mask"],
        )
        return model(*args, per_token=False).float()

    def loss(
        self, rewards: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = batch["pairs"]
        r_w, r_l = rewards[pairs[:, 0]], rewards[pairs[:, 1]]
        if "rank_order" in batch:  # --loss plackett_luce, and every group of the batch a strict ranking
            loss = plackett_luce(rewards, batch["rank_order"])
        else:
            margins = batch["margins"] if self.use_margins else None
            loss = grouped_bt(rewards, batch["pair_group"], pairs, margins, eps=self.label_smoothing)
        if self.centering:
            loss = loss + centering(r_w, r_l, self.centering)
        return loss, pairwise_accuracy(r_w.detach(), r_l.detach())

    def batch_count(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["pairs"])

    def evaluate(
        self, scorer: Any, items: list[PreferenceGroup], encoded: list[EncodedGroup], ceiling: float | None
    ) -> EvalResult:
        return evaluate_encoded(scorer, items, encoded, ceiling)

    def eval_record(self, result: EvalResult) -> dict[str, Any]:
        return {"eval_margin": result.mean_margin}

    def card_metrics(self, result: EvalResult) -> dict[str, Any]:
        return {}


def rank_order(groups: list[EncodedGroup]) -> torch.Tensor | None:
    """Best-first response indices of groups given as strict rankings (Plackett-Luce), else None."""
    orders, base = [], 0
    for g in groups:
        if g.ranks is None or len(set(g.ranks)) != len(g.ranks):
            return None
        orders.append([base + i for i in sorted(range(len(g.ranks)), key=lambda i: g.ranks[i])])
        base += len(g.responses)
    width = max(len(o) for o in orders)
    return torch.tensor([o + [-1] * (width - len(o)) for o in orders])
