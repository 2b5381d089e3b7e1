"""The regression / multi-attribute objective (``--objective regression``): an `Objective`
(rewardlab.training.objectives) over ratings data, through the one training loop.

Each completion's ratings (``score``, or per-attribute ``scores`` such as HelpSteer's helpfulness,
correctness, coherence, complexity, verbosity) are the targets of an attribute head with ``num_labels =
attributes`` on the pooled state (`RewardModel.add_attribute_head`):

    loss = MSE(ŷ, y)  +  --bt-weight · scaled BT of r = ŷ · w over each prompt's pairs

(`losses.attribute_mse`, `losses.scaled_bt`: the pair's -log σ(r_w - r_l) weighted by its rating gap, as
in Nemotron's recipe, arXiv 2410.01257, which put a scaled Bradley-Terry objective on top of a regression
reward model). The reward is the documented combination r = Σ_a w_a · ŷ_a with w = --attribute-weights
(default: equal weights, the mean), saved in rewardlab.json and folded into the exported one-label head.
The pairs (for the BT term and for the held-out pairwise accuracy) come from the combined rating
Σ_a w_a · y_a, so they rank what the reward is meant to rank. Model selection maximises that pairwise
accuracy; the per-attribute Pearson/Spearman are logged beside it (rewardlab.scoring.attributes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from rewardlab.config import TrainConfig
from rewardlab.data.batching import EncodedGroup, collate_groups, encode_groups
from rewardlab.data.types import DataError
from rewardlab.flag_rules import regression_weights
from rewardlab.losses import attribute_mse, pairwise_accuracy, scaled_bt
from rewardlab.scoring.attributes import (
    AttributeEvalResult,
    evaluate_attribute_groups,
    rank_by_combination,
    targets_of,
)

COMBINATION_HOWTO = (
    "reward = sum_a attribute_weights[a] * attribute[a]; config.json's one-label head holds this combination "
    "folded in (plain transformers: logits[:, 0]); attribute_head.safetensors holds the per-attribute head "
    "(rewardlab: Scorer.score_attributes)"
)


@dataclass
class EncodedRated(EncodedGroup):
    """An `EncodedGroup` of rated completions with their (K, A) targets."""

    targets: list[list[float]] | None = None


class RegressionObjective:
    """Ratings → an attribute head trained by MSE (+ optional scaled BT), combined into one reward."""

    name = "regression"
    extra_tokens: Sequence[str] = ()

    def __init__(self, cfg: TrainConfig) -> None:
        self.attributes, self.weights = regression_weights(cfg)
        self.bt_weight = cfg.bt_weight

    def load(self, path: str, fmt: str | None) -> tuple[list, Any]:
        from rewardlab.data import load_preferences

        groups, summary = load_preferences(path, fmt or "ratings")
        if summary.format != "ratings":
            raise DataError(
                f"{path}: --objective regression reads ratings data, this file is '{summary.format}'"
            )
        problems = []
        for g in groups:
            try:
                rank_by_combination(g, targets_of(g, self.attributes), self.weights)
            except DataError as e:
                problems.append(str(e))
        if problems:
            more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise DataError("\n".join(problems[:20]) + more)
        return groups, summary

    def data_hash(self, items: list) -> str:
        from rewardlab.data.loading import data_hash

        return data_hash(items)

    def describe(self, card: Any) -> None:
        card.objective = self.name
        card.attributes = list(self.attributes)
        card.attribute_weights = list(self.weights)
        card.step_scores = ""

    def encode(self, items: list, encoder: Any, on_progress: Callable[[int], Any]) -> tuple[list, Any]:
        encoded, report = encode_groups(items, encoder, on_progress)
        names = [f.name for f in fields(EncodedGroup)]
        out = [
            EncodedRated(**{n: getattr(e, n) for n in names}, targets=g.meta["targets"])
            for e, g in zip(encoded, items, strict=True)
        ]
        return out, report

    def count(self, encoded: Any) -> int:
        return sum(len(g.responses) for g in encoded)

    def prepare(self, model: Any) -> str | None:
        if model.attribute_head is None:
            model.add_attribute_head(self.weights)
        return (
            f"regression head: {len(self.attributes)} attribute(s) ({', '.join(self.attributes)}), reward = "
            + " + ".join(f"{w:g}·{a}" for w, a in zip(self.weights, self.attributes, strict=True))
            + (f"; scaled BT weight {self.bt_weight:g}" if self.bt_weight else "; MSE only")
        )

    def collate(self, items: list, pad_id: int) -> dict[str, torch.Tensor]:
        batch = collate_groups(items, pad_id)
        batch["targets"] = torch.tensor([t for g in items for t in g.targets], dtype=torch.float32)
        return batch

    def rewards(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        args = (
            batch["input_ids"],
            batch["attention_mask"],
            batch.get("token_type_ids"),
            batch["response_mask"],
        )
        return model(*args, attributes=True).float()  # (N, A)

    def loss(
        self, rewards: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loss = attribute_mse(rewards, batch["targets"])
        combined = rewards @ torch.tensor(self.weights, dtype=rewards.dtype, device=rewards.device)
        pairs = batch["pairs"]
        if self.bt_weight and len(pairs):
            loss = loss + self.bt_weight * scaled_bt(combined, batch["pair_group"], pairs, batch["margins"])
        if not len(pairs):
            return loss, torch.zeros((), device=rewards.device)
        r_w, r_l = combined[pairs[:, 0]].detach(), combined[pairs[:, 1]].detach()
        return loss, pairwise_accuracy(r_w, r_l)

    def batch_count(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["pairs"])

    def evaluate(self, scorer: Any, items: list, encoded: list, ceiling: float | None) -> AttributeEvalResult:
        result = evaluate_attribute_groups(scorer, items, encoded)
        if ceiling is not None:
            result.noise_ceiling = ceiling
        return result

    def eval_record(self, result: AttributeEvalResult) -> dict[str, Any]:
        record: dict[str, Any] = {"eval_margin": result.mean_margin}
        for name, m in result.attributes.items():
            record[f"eval_{name}_pearson"] = m["pearson"]
            record[f"eval_{name}_spearman"] = m["spearman"]
        return record

    def card_metrics(self, result: AttributeEvalResult) -> dict[str, Any]:
        return {"attributes": result.attributes, "combined_pearson": result.combined_pearson}
