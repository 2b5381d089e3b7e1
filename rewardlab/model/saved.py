"""The saved reward model: a standard Hugging Face folder (config, weights, tokenizer) plus rewardlab.json.

`ModelCard` is what rewardlab.json records next to the weights; `save_reward_model` writes the folder,
`load_reward_model` reads it back and checks the card (version, pooling, pad token against the config)
so a mismatch fails with the reason instead of scoring at the wrong token.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from rewardlab.data.encoding import LAYOUTS, TextEncoder
from rewardlab.data.thinking import ThinkingStripper
from rewardlab.model.reward_model import POOLINGS, RewardModel

log = logging.getLogger(__name__)

CARD_NAME = "rewardlab.json"
ATTRIBUTE_HEAD = "attribute_head.safetensors"
"""The per-attribute head of a regression / multi-attribute model (``weight`` (A, hidden), ``bias`` (A,))."""
CARD_VERSION = 1


@dataclass
class ModelCard:
    """What `rewardlab.json` records next to the weights; `load_reward_model` checks it."""

    format_version: int = CARD_VERSION
    base_model: str = ""
    pooling: str = "last"
    is_encoder: bool = False
    padding_side: str = "right"
    max_length: int = 512
    truncation: str = "left"
    append_eos: bool = True
    layout: str = "rewardlab"
    """How (prompt, response) becomes ids (rewardlab.data.encoding): ``rewardlab`` ([BOS] prompt response
    [EOS], text pairs for encoders) or ``chat_template`` (the chat template's text as is, read at its last
    token: what vLLM, verl, TRL and OpenRLHF tokenise; docs/integrations.md). Cards older than the field
    mean ``rewardlab``."""
    strip_thinking: bool = False
    """Trained with ``--strip-thinking``: every Scorer of this folder removes reasoning traces between
    `think_open` and `think_close` from responses before encoding (rewardlab.data.thinking, its rules for
    an unterminated trace). Plain transformers does not: strip them yourself (docs/reward_kinds.md)."""
    think_open: str = "<think>"
    think_close: str = "</think>"
    reward_mean: float = 0.0
    reward_std: float = 1.0
    reward_stats_from: str = ""
    """Which data the mean/std were computed on (rewards are shift-invariant; the server may normalise)."""
    data_hash: str = ""
    objective: str = "pairs"
    """What trained the head: pairs (Bradley-Terry), steps (a process reward model), outcome (pointwise)."""
    step_marker: str = ""
    """PRMs only: the special token that ends each step; the step's score is the head's logit there."""
    step_scores: str = ""
    """PRMs only: how to read step scores with plain transformers (rewardlab: Scorer.score_steps)."""
    attributes: list[str] = field(default_factory=list)
    """Regression / multi-attribute models (``--objective regression``): the attribute names, one per
    output of ``attribute_head.safetensors``; [] for a scalar reward model."""
    attribute_weights: list[float] = field(default_factory=list)
    """The combination: reward = Σ_a w_a · attribute_a. Folded into config.json's one-label head, so plain
    transformers' ``logits[:, 0]`` is this reward (docs/reward_kinds.md)."""
    train_metrics: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        Path(path, CARD_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        file = Path(path, CARD_NAME)
        try:
            raw = json.loads(file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{file} is not valid JSON ({e}); re-save the model with rewardlab") from e
        if raw.get("format_version", 0) > CARD_VERSION:
            raise ValueError(
                f"{file} has format_version {raw['format_version']}, newer than this rewardlab "
                f"understands ({CARD_VERSION}); upgrade rewardlab"
            )
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            log.warning("%s: ignoring unknown fields %s", file, sorted(unknown))
        card = cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})
        if card.pooling not in POOLINGS[1:]:
            raise ValueError(f"{file}: pooling {card.pooling!r} is not one of {POOLINGS[1:]}")
        if card.layout not in LAYOUTS:
            raise ValueError(f"{file}: layout {card.layout!r} is not one of {LAYOUTS}")
        if len(card.attributes) != len(card.attribute_weights):
            raise ValueError(
                f"{file}: {len(card.attributes)} attributes but {len(card.attribute_weights)} weights "
                "(attribute_weights)"
            )
        return card


def unwrap_hf_model(model: RewardModel) -> nn.Module:
    """The plain transformers model, with LoRA adapters merged in."""
    hf = model.hf_model
    if hasattr(hf, "merge_and_unload"):
        import copy

        hf = copy.deepcopy(hf).merge_and_unload()
    return hf


def save_reward_model(
    model: RewardModel,
    encoder: TextEncoder,
    card: ModelCard,
    path: str | Path,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write a standard HF folder (weights, config, tokenizer) plus rewardlab.json.

    `state_dict` holds the full weights when `model`'s own are sharded (FSDP, DeepSpeed ZeRO-3): the
    ``accelerator.get_state_dict(model)`` that every process gathered, keyed as `RewardModel`'s.
    """
    import accelerate
    import transformers

    import rewardlab

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    hf = unwrap_hf_model(model)
    hf.config.num_labels = 1
    if state_dict is not None:
        if hf is not model.hf_model:
            raise ValueError(
                "--lora-r models cannot be saved from sharded weights (FSDP, ZeRO-3); use DDP or ZeRO-2"
            )
        state_dict = {k.removeprefix("hf_model."): v for k, v in state_dict.items()}
    if model.attribute_head is not None:
        state_dict = save_attribute_head(model, hf, path, state_dict)
    hf.save_pretrained(path, safe_serialization=True, state_dict=state_dict)
    encoder.tokenizer.save_pretrained(path)
    card.versions = {
        "rewardlab": rewardlab.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }
    card.save(path)


def save_attribute_head(
    model: RewardModel, hf: nn.Module, path: Path, state_dict: dict[str, torch.Tensor] | None
) -> dict[str, torch.Tensor] | None:
    """Write ``attribute_head.safetensors`` and fold the combination into transformers' one-label head
    (``W = wᵀA``, ``b = wᵀa``), in `hf` or, for sharded weights, in `state_dict` (returned)."""
    from safetensors.torch import save_file

    from rewardlab.model.reward_model import score_head

    head_name = next(n for n in ("score", "classifier") if isinstance(getattr(hf, n, None), nn.Linear))
    if state_dict is not None:
        weight = state_dict.pop("attribute_head.weight").float()
        bias = state_dict.pop("attribute_head.bias", None)
        state_dict.pop("attribute_weights", None)
    else:
        weight, bias = model.attribute_head.weight.detach().float(), model.attribute_head.bias
    bias = bias.detach().float() if bias is not None else None
    w = model.attribute_weights.detach().float().to(weight.device)
    folded_w, folded_b = (w @ weight)[None, :], (w @ bias)[None] if bias is not None else None
    tensors = {"weight": weight.cpu().contiguous()}
    if bias is not None:
        tensors["bias"] = bias.cpu().contiguous()
    save_file(tensors, str(path / ATTRIBUTE_HEAD))
    if state_dict is not None:
        key = f"{head_name}.weight"
        state_dict[key] = folded_w.to(state_dict[key].dtype)
        if folded_b is not None:
            state_dict[f"{head_name}.bias"] = folded_b.to(state_dict[f"{head_name}.bias"].dtype)
        return state_dict
    head = score_head(hf)
    with torch.no_grad():
        head.weight.copy_(folded_w.to(head.weight))
        if folded_b is not None:
            head.bias.copy_(folded_b.to(head.bias))
    return None


def load_reward_model(
    path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> tuple[RewardModel, TextEncoder, ModelCard]:
    """Load a folder written by `save_reward_model` (checks rewardlab.json and says what is wrong)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"reward model folder not found: {path}")
    if not (path / CARD_NAME).exists():
        raise FileNotFoundError(
            f"{path} has no {CARD_NAME}: it was not saved by rewardlab. Train with `rewardlab train` "
            "or load it with transformers directly"
        )
    card = ModelCard.load(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf_model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype or torch.float32)
    if hf_model.config.num_labels != 1:
        raise ValueError(f"{path}: config.num_labels is {hf_model.config.num_labels}, a reward model has 1")
    if hf_model.config.pad_token_id is None or hf_model.config.pad_token_id != tokenizer.pad_token_id:
        raise ValueError(
            f"{path}: config.pad_token_id ({hf_model.config.pad_token_id}) does not match the tokenizer's "
            f"pad token ({tokenizer.pad_token_id}); the reward would be read at the wrong token"
        )
    tokenizer.padding_side = card.padding_side
    encoder = TextEncoder(
        tokenizer,
        max_length=card.max_length,
        truncation=card.truncation,
        is_encoder=card.is_encoder,
        append_eos=card.append_eos,
        layout=card.layout,
        thinking=ThinkingStripper(card.think_open, card.think_close) if card.strip_thinking else None,
    )
    model = RewardModel(hf_model, card.pooling, card.is_encoder).eval()
    if card.attributes:
        from safetensors.torch import load_file

        file = path / ATTRIBUTE_HEAD
        if not file.is_file():
            raise FileNotFoundError(
                f"{path}: rewardlab.json lists attributes {card.attributes} but {ATTRIBUTE_HEAD} is missing"
            )
        saved = load_file(str(file))
        try:
            model.add_attribute_head(card.attribute_weights, saved["weight"], saved.get("bias"))
        except (KeyError, ValueError) as e:
            raise ValueError(f"{file}: {e}") from e
    if device is not None:
        model.to(device)
    return model, encoder, card
