"""Pack the K responses of one prompt into one row after their shared token prefix: the index work of the
shared-prefix forward (rewardlab.model.reward_model runs it).

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

The model side (which backbones take the packed layout, the forward itself) is in
rewardlab.model.reward_model (`shared_prefix_support`, `packed_forward`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from rewardlab.data.batching import EncodedGroup
    from rewardlab.data.encoding import Encoded


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
