"""Score the K responses of one prompt in one packed row, encoding their shared prefix once.

A preference group's responses share the prompt (HH conversations: hundreds of tokens) and differ in
the last turn, so the plain path spends most of its compute re-encoding the same prompt K times. In a
causal decoder a token's hidden state depends only on the tokens before it, so the prompt's hidden
states are the same for every response: pack ``[prefix, suffix_1, ..., suffix_K]`` into one row and
give the attention a block mask (each suffix sees the prefix and itself, causally, never the other
suffixes) and position ids that restart where the prefix ends. Every response token then sees exactly
the context and positions it sees in the plain path, so rewards match it to float rounding (tests).

What is shared is the longest common token prefix of the group's encoded sequences, not "the prompt"
re-tokenised: `TextEncoder` tokenises prompt and response separately, so the prompt tokens agree
across the group except where left truncation cut them differently, and a common start of the
responses is shared too. Taking the common prefix of the actual ids is exact by construction.

Batching: one group per row, rows right-padded (a pad token sees only itself). Packing several
groups block-diagonally into one row would save the padding but make attention cost quadratic in
the whole batch's length (the mask is dense), so rows are sorted by packed length instead.

Supported: causal decoders whose attention takes a custom 4D mask and explicit position ids with the
``sdpa`` or ``eager`` kernels, verified for GPT-2, Llama and Qwen2 (tests/test_shared_prefix.py).
Encoders (the prompt sees the response), ``cls`` pooling, flash/flex attention and unverified
architectures fall back to the plain path with the reason logged (`shared_prefix_support`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from rewardlab.data.batching import EncodedGroup
    from rewardlab.data.encoding import Encoded
    from rewardlab.modeling import RewardModel

log = logging.getLogger(__name__)

VERIFIED_MODEL_TYPES = ("gpt2", "llama", "qwen2")
"""Architectures whose forward is tested to accept our 4D mask and position ids unchanged."""
MASK_ATTENTION = ("sdpa", "eager")
"""Attention kernels that apply a dense 4D mask as given (flash/flex build their own from a 2D mask)."""


def shared_prefix_support(model: Any) -> tuple[bool, str]:
    """Whether `model` (a RewardModel, possibly DDP-wrapped) can use the packed path, and why."""
    model = getattr(model, "module", model)
    config = _inner_hf(model).config
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


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix all sequences share."""
    first, n = sequences[0], min(len(s) for s in sequences)
    for i in range(n):
        if any(s[i] != first[i] for s in sequences[1:]):
            return i
    return n


@dataclass
class GroupPlan:
    """Where one group's tokens go in its packed row."""

    prefix: int
    """Tokens shared by every response (the common token prefix)."""
    offsets: list[int]
    """Packed index where each response's own suffix starts."""
    length: int
    """Packed row length: prefix + every suffix."""


def plan_group(responses: Sequence[Encoded]) -> GroupPlan:
    ids = [r.input_ids for r in responses]
    prefix = common_prefix_length(ids)
    offsets, end = [], prefix
    for seq in ids:
        offsets.append(end)
        end += len(seq) - prefix
    return GroupPlan(prefix, offsets, end)


def packed_length(responses: Sequence[Encoded]) -> int:
    """Tokens in the packed row (the budget to batch on), against ``sum(len)`` for the plain path."""
    return plan_group(responses).length


def pack_groups(groups: Sequence[Sequence[Encoded]], pad_id: int) -> dict[str, torch.Tensor]:
    """One packed, right-padded row per group.

    Returns input_ids and position_ids (G, W); attention_mask (G, 1, W, W), True where a query token
    (row) may attend to a key (column); pool_index (N,): the flat index into (G*W) of each response's
    last token, responses in group order; mean_index / mean_owner: flat index and response number of
    every response token (``Encoded.response_start:response_end``), for mean pooling.
    """
    import torch

    plans = [plan_group(g) for g in groups]
    width = max(p.length for p in plans)
    n = len(groups)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    seg = torch.full((n, width), -1, dtype=torch.long)  # 0 shared prefix, k+1 response k, -1 padding
    pool, mean_index, mean_owner = [], [], []
    for row, (group, plan) in enumerate(zip(groups, plans, strict=True)):
        p = plan.prefix
        ids[row, :p] = torch.tensor(group[0].input_ids[:p], dtype=torch.long)
        pos[row, :p] = torch.arange(p)
        seg[row, :p] = 0
        for k, (enc, off) in enumerate(zip(group, plan.offsets, strict=True)):
            tail = enc.input_ids[p:]
            ids[row, off : off + len(tail)] = torch.tensor(tail, dtype=torch.long)
            pos[row, off : off + len(tail)] = torch.arange(p, len(enc.input_ids))
            seg[row, off : off + len(tail)] = k + 1

            def packed(j: int, row: int = row, p: int = p, off: int = off) -> int:
                return row * width + (j if j < p else off + j - p)

            pool.append(packed(len(enc.input_ids) - 1))
            for j in range(enc.response_start, enc.response_end):
                mean_index.append(packed(j))
                mean_owner.append(len(pool) - 1)
    index = torch.arange(width)
    causal = index[None, :] <= index[:, None]
    q_seg, k_seg = seg[:, :, None], seg[:, None, :]
    allowed = causal & ((k_seg == 0) | (k_seg == q_seg)) & (q_seg >= 0)
    allowed |= torch.eye(width, dtype=torch.bool)  # padding attends to itself: no all-masked rows
    return {
        "input_ids": ids,
        "position_ids": pos,
        "attention_mask": allowed[:, None],
        "pool_index": torch.tensor(pool, dtype=torch.long),
        "mean_index": torch.tensor(mean_index, dtype=torch.long),
        "mean_owner": torch.tensor(mean_owner, dtype=torch.long),
    }


def collate_shared_prefix(groups: Sequence[EncodedGroup], pad_id: int) -> dict[str, torch.Tensor]:
    """A training batch like `data.batching.collate_groups` (same pairs / pair_group / margins, rewards in
    the same flat order: every response of group 0, then group 1, ...) but packed per group."""
    import torch

    batch = pack_groups([g.responses for g in groups], pad_id)
    pairs, pair_group, margins, base = [], [], [], 0
    for gi, g in enumerate(groups):
        for (w, lo), m in zip(g.pairs, g.margins, strict=True):
            pairs.append((base + w, base + lo))
            pair_group.append(gi)
            margins.append(m)
        base += len(g.responses)
    batch["pairs"] = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
    batch["pair_group"] = torch.tensor(pair_group, dtype=torch.long)
    batch["margins"] = torch.tensor(margins, dtype=torch.float32)
    return batch


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
    inner = _inner_hf(model)
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
    return inner.score(pooled)[:, 0]


def _inner_hf(model: Any) -> Any:
    """The transformers model inside a RewardModel, looking through a PEFT wrapper (LoRA layers are
    injected in place, and the saved head is a callable wrapper, so both still apply)."""
    hf = model.hf_model
    return hf.get_base_model() if hasattr(hf, "get_base_model") else hf
