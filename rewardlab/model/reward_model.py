"""The reward model: a transformers ``*ForSequenceClassification`` (``num_labels=1``) plus the pooling and
position handling rewardlab guarantees, and the packed forward that encodes a group's shared prefix once.

The model IS a transformers sequence classifier, so a saved folder (rewardlab.model.saved) loads with
``AutoModelForSequenceClassification.from_pretrained(path)`` and scores the same there. `RewardModel`
only adds what transformers lacks: padding-side-agnostic position ids and optional mean pooling.

Pooling:
- ``last`` (decoders): the head reads the last real token (the EOS that ends the response). That is
  transformers' own pooling, made safe by giving the model a pad token distinct from every real token
  (RLHFlow issue 49, TRL issue 2778: with pad == EOS the reward was read at the wrong token).
- ``cls`` (encoders): the architecture's own head on the first token, as in plain transformers.
- ``mean``: the head applied to the mean hidden state over response tokens. rewardlab-only: plain
  transformers uses the native pooling, so a ``mean`` model scores differently there (the card says so).
- ``mean_all``: the head on the mean over every real token, prompt and special tokens included: the
  pooling sentence-transformers trained all-MiniLM-L6-v2 with. rewardlab-only as well, for the same reason.

Attribute head (``--objective regression``, `add_attribute_head`): a linear head of ``num_labels =
attributes`` on the same pooled state, trained on ratings; the reward is the documented combination
``w · attributes`` (the card's ``attribute_weights``). On save (rewardlab.model.saved) the combination is
folded into transformers' own one-label head (``W = wᵀA``, ``b = wᵀa``), so plain transformers reads the
combined reward, and the attribute head is kept beside it (``attribute_head.safetensors``).

Packed forward (the batch layout is built by rewardlab.data.packing): a group's responses in one row after
their common token prefix, with a block mask and restarted positions. Supported: causal decoders whose
attention takes a custom 4D mask and explicit position ids with the ``sdpa`` or ``eager`` kernels,
verified for GPT-2, Llama and Qwen2 (tests/test_shared_prefix.py). Encoders (the prompt sees the
response), ``cls`` pooling, flash/flex attention and unverified architectures fall back to the plain
path with the reason logged (`shared_prefix_support`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

POOLINGS = ("auto", "last", "cls", "mean", "mean_all")
MEAN_POOLINGS = ("mean", "mean_all")
"""Poolings that average hidden states, which plain transformers cannot express (export refuses them)."""
VERIFIED_MODEL_TYPES = ("gpt2", "llama", "qwen2")
"""Architectures whose forward is tested to accept our 4D mask and position ids unchanged."""
MASK_ATTENTION = ("sdpa", "eager")
"""Attention kernels that apply a dense 4D mask as given (flash/flex build their own from a 2D mask)."""


class RewardModel(nn.Module):
    """A sequence-classification model plus the pooling and position handling rewardlab guarantees."""

    def __init__(self, hf_model: nn.Module, pooling: str, is_encoder: bool) -> None:
        super().__init__()
        if pooling not in POOLINGS[1:]:
            raise ValueError(f"pooling must be one of {POOLINGS[1:]}, got {pooling!r}")
        self.hf_model = hf_model
        self.pooling = pooling
        self.is_encoder = is_encoder
        self.attribute_head: nn.Linear | None = None
        """Regression / multi-attribute models: (hidden -> attributes); None for a scalar reward model."""
        self.attribute_weights: torch.Tensor | None
        self.register_buffer("attribute_weights", None)
        """The combination w (attributes,): reward = attribute_head(pooled) @ w."""

    def add_attribute_head(
        self,
        weights: list[float],
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> None:
        """Give the model a head of ``len(weights)`` attributes on the pooled state (fresh, or the saved
        `weight`/`bias`), combined by `weights`. transformers' one-label head then only carries the fold
        of it (written on save), so it is frozen: the attribute head is what trains."""
        head = score_head(inner_hf(self))
        n = len(weights)
        new = nn.Linear(head.in_features, n, bias=head.bias is not None)
        new.to(device=head.weight.device, dtype=head.weight.dtype)
        with torch.no_grad():
            if weight is None:
                std = float(getattr(self.config, "initializer_range", 0.02) or 0.02)
                new.weight.normal_(0.0, std)
                if new.bias is not None:
                    new.bias.zero_()
            else:
                if tuple(weight.shape) != (n, head.in_features):
                    want = (n, head.in_features)
                    raise ValueError(
                        f"attribute head weight has shape {tuple(weight.shape)}, expected {want}"
                    )
                new.weight.copy_(weight)
                if new.bias is not None:
                    if bias is None:
                        raise ValueError("attribute head: the backbone's head has a bias but none was saved")
                    new.bias.copy_(bias)
        head.requires_grad_(False)
        self.attribute_head = new
        self.register_buffer(
            "attribute_weights", torch.tensor(weights, dtype=torch.float32, device=head.weight.device)
        )

    def head_scalar(self, pooled: torch.Tensor) -> torch.Tensor:
        """The reward (batch,) from pooled states: the combined attributes, or the one-label head."""
        if self.attribute_head is not None:
            return self.combine(self.attribute_head(pooled))
        hf = inner_hf(self)
        head = getattr(hf, "score", None)  # decoders; under LoRA the saved-module wrapper, called as is
        return (head if head is not None else score_head(hf))(pooled)[:, 0]

    def combine(self, attributes: torch.Tensor) -> torch.Tensor:
        """(batch, attributes) -> (batch,): ``attributes @ w``."""
        return attributes @ self.attribute_weights.to(attributes.dtype)

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
        attributes: bool = False,
    ) -> torch.Tensor:
        """Rewards of shape (batch,), independent of padding side and of the other rows in the batch.

        With ``per_token`` the head is applied at every token instead: (batch, seq) logits, read at the
        step markers by process reward models (rewardlab.data.step_encoding). Encoders apply their
        pooler's dense+tanh first, so position 0 gives the ``cls`` reward; decoders' last real token gives
        the ``last`` one.
        With ``packed`` (a batch from rewardlab.data.packing) the rows hold whole groups sharing their
        prompt: one reward per response. It is dispatched here so DDP wrappers see the forward.
        With ``attributes`` (a model with an attribute head) the (batch, attributes) values instead.
        """
        if packed is not None:
            return packed_forward(self, packed)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        # Positions count real tokens only, so left padding does not shift absolute position embeddings.
        kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if per_token:
            return self._token_logits(kwargs)
        if self.attribute_head is not None:
            values = self.attribute_head(pooled_hidden(self, kwargs, response_mask))
            return values if attributes else self.combine(values)
        if attributes:
            raise ValueError("this reward model has no attribute head (train with --objective regression)")
        if self.pooling not in MEAN_POOLINGS:
            return self.hf_model(**kwargs).logits[:, 0]
        hidden = self.hf_model(**kwargs, output_hidden_states=True).hidden_states[-1]
        pooled = mean_pool(hidden, self.pooling, attention_mask, response_mask)
        return score_head(self.hf_model)(pooled)[:, 0]

    def _token_logits(self, kwargs: dict[str, Any]) -> torch.Tensor:
        hf = self.hf_model
        base = getattr(hf, hf.base_model_prefix)
        hidden = base(**kwargs).last_hidden_state
        pooler = getattr(base, "pooler", None)
        if self.is_encoder and pooler is not None and hasattr(pooler, "dense"):
            hidden = pooler.activation(pooler.dense(hidden))
        return score_head(hf)(hidden)[..., 0]


def mean_pool(
    hidden: torch.Tensor, pooling: str, attention_mask: torch.Tensor, response_mask: torch.Tensor | None
) -> torch.Tensor:
    """(batch, hidden): the mean over response tokens (``mean``) or over every real token (``mean_all``)."""
    if pooling == "mean" and response_mask is None:
        raise ValueError("mean pooling needs the response mask from the collator")
    mask = response_mask if pooling == "mean" else attention_mask
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def score_head(hf_model: nn.Module) -> nn.Module:
    """The linear scalar head: ``score`` on decoders, ``classifier`` on BERT-like encoders."""
    for name in ("score", "classifier"):
        head = getattr(hf_model, name, None)
        if isinstance(head, nn.Linear):
            return head
    raise ValueError(
        f"{type(hf_model).__name__} has no plain linear head (score/classifier); use --pooling last or cls"
    )


def head_parameters(model: RewardModel) -> list[nn.Parameter]:
    """The reward head's parameters (the attribute head, else ``score``/``classifier``, a LoRA
    saved-module wrapper included): the only freshly initialised weights, which `--head-lr` scales."""
    hf = inner_hf(model)
    head = model.attribute_head
    if head is None:
        head = getattr(hf, "score", None) or getattr(hf, "classifier", None)
    return list(head.parameters()) if isinstance(head, nn.Module) else []


def shared_prefix_support(model: Any) -> tuple[bool, str]:
    """Whether `model` (a RewardModel, possibly DDP-wrapped) can use the packed path, and why."""
    model = getattr(model, "module", model)
    config = inner_hf(model).config
    if model.is_encoder:
        return False, "encoders attend bidirectionally: the prompt's states depend on the response"
    if model.pooling not in ("last", "mean"):
        return False, f"pooling {model.pooling!r} reads a position the packed row does not keep per response"
    if config.model_type not in VERIFIED_MODEL_TYPES:
        return (
            False,
            f"model type {config.model_type!r} is not verified for 4D masks ({VERIFIED_MODEL_TYPES})",
        )
    windowed = {t for t in getattr(config, "layer_types", None) or ()} - {"full_attention"}
    if windowed:
        return False, f"layers with {sorted(windowed)} need their window in the mask; not built here"
    attn = getattr(config, "_attn_implementation", None) or "eager"
    if attn not in MASK_ATTENTION:
        return False, f"attention {attn!r} ignores a custom 4D mask; load with attn_implementation='sdpa'"
    return True, f"{config.model_type} with {attn} attention takes a 4D mask and position ids"


def shared_prefix_rewards(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards (N,) for a batch from `collate_shared_prefix` / `pack_groups`, one per response in group
    order: what ``model(**collate_groups(...))`` returns for the same groups.

    Goes through ``model.__call__`` (`RewardModel.forward` dispatches on ``packed``), so a DDP or
    accelerate wrapper sees the forward and synchronises gradients as usual.
    """
    return model(batch["input_ids"], batch["attention_mask"], packed=batch)


def packed_forward(model: RewardModel, packed: dict[str, torch.Tensor]) -> torch.Tensor:
    """The backbone over packed rows, then the model's pooling and head per response (N,)."""
    import torch

    ok, why = shared_prefix_support(model)
    if not ok:
        raise ValueError(f"shared-prefix forward not available: {why}; use the plain (padded) batch")
    inner = inner_hf(model)
    base = getattr(inner, inner.base_model_prefix)
    dtype = base.get_input_embeddings().weight.dtype
    mask = packed["attention_mask"]
    if getattr(inner.config, "_attn_implementation", None) != "sdpa":
        # eager adds the mask to the scores: additive form, 0 = attend, dtype min = blocked. sdpa takes
        # the boolean one as is (True = attend), which CPU runs ~25% faster than an additive float mask.
        bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        mask = bias.masked_fill_(~mask, torch.finfo(dtype).min)
    hidden = base(
        input_ids=packed["input_ids"], attention_mask=mask, position_ids=packed["position_ids"]
    ).last_hidden_state
    flat = hidden.reshape(-1, hidden.shape[-1])
    if model.pooling == "mean":
        owner = packed["mean_owner"]
        n = packed["pool_index"].shape[0]
        sums = flat.new_zeros((n, flat.shape[-1])).index_add(0, owner, flat[packed["mean_index"]])
        counts = torch.bincount(owner, minlength=n).clamp(min=1).to(flat.dtype)
        pooled = sums / counts[:, None]
    else:
        pooled = flat[packed["pool_index"]]
    return model.head_scalar(pooled)


def pooled_hidden(
    model: RewardModel, kwargs: dict[str, Any], response_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """(batch, hidden): what `model`'s linear head reads, given the backbone's inputs (input_ids,
    attention_mask, position_ids, token_type_ids): the last real token (``last``), the pooler's dense+tanh
    of position 0 (``cls``, as BERT's classifier reads it), the response-token mean (``mean``) or the mean
    over every real token (``mean_all``)."""
    hf = inner_hf(model)
    base = getattr(hf, hf.base_model_prefix)
    hidden = base(**kwargs).last_hidden_state
    mask = kwargs["attention_mask"]
    if model.pooling in MEAN_POOLINGS:
        return mean_pool(hidden, model.pooling, mask, response_mask)
    if model.pooling == "cls":
        first = hidden[:, 0]
        pooler = getattr(base, "pooler", None)
        return pooler.activation(pooler.dense(first)) if pooler is not None else first
    # last real token, wherever the padding is
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = (positions * mask.long()).argmax(-1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def inner_hf(model: Any) -> Any:
    """The transformers model inside a RewardModel, looking through a PEFT wrapper (LoRA layers are
    injected in place, and the saved head is a callable wrapper, so both still apply)."""
    hf = model.hf_model
    return hf.get_base_model() if hasattr(hf, "get_base_model") else hf
