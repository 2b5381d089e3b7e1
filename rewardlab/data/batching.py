"""Tokenise preference groups once, and cut them into batches.

Each response of a group is encoded once and its C(K,2) pairs index into the batch's flat list of
rewards, so a K-way ranking costs K forward passes, not K(K-1). Batches are grouped by length (sorted
inside shuffled windows, then the batch order shuffled) so little compute is spent on padding while
every epoch still sees the data in a fresh random order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardlab.data.encoding import Encoded, TextEncoder
from rewardlab.data.types import PreferenceGroup

CHUNK = 256
"""Groups tokenised per tokenizer call."""


@dataclass
class EncodedGroup:
    """A `PreferenceGroup` after tokenisation."""

    responses: list[Encoded]
    pairs: list[tuple[int, int]]
    margins: list[float]
    ranks: list[float] | None = None
    subset: str | None = None

    @property
    def num_tokens(self) -> int:
        return sum(len(r.input_ids) for r in self.responses)


@dataclass
class TruncationReport:
    """How many responses and pairs the truncation policy touched (never dropped silently)."""

    responses: int = 0
    responses_cut: int = 0
    pairs: int = 0
    pairs_cut: int = 0
    pairs_identical_after_cut: int = 0
    examples: list[str] = field(default_factory=list)

    def lines(self, policy: str, max_length: int) -> list[str]:
        if not self.responses_cut:
            return [f"truncation: nothing longer than max_length={max_length}"]
        out = [
            f"truncation ({policy}, max_length={max_length}): {self.responses_cut}/{self.responses} "
            f"responses cut, {self.pairs_cut}/{self.pairs} pairs affected"
        ]
        if self.pairs_identical_after_cut:
            out.append(
                f"  {self.pairs_identical_after_cut} pairs became identical after truncation and carry "
                f"no signal (e.g. {', '.join(self.examples[:3])}); raise --max-length or use "
                "--truncation left"
            )
        return out


def encode_groups(
    groups: Sequence[PreferenceGroup],
    encoder: TextEncoder,
    on_progress: Callable[[int], Any] | None = None,
) -> tuple[list[EncodedGroup], TruncationReport]:
    """Tokenise training groups (`TextEncoder.encode_groups`: one prompt cut per group), `CHUNK` groups per
    tokenizer call, counting what truncation did."""
    report = TruncationReport()
    out = []
    for start in range(0, len(groups), CHUNK):
        chunk = groups[start : start + CHUNK]
        encoded = encoder.encode_groups([(g.prompt, g.responses) for g in chunk])
        out.extend(encoded_group(g, enc, report) for g, enc in zip(chunk, encoded, strict=True))
        if on_progress:
            on_progress(len(chunk))
    return out, report


def encoded_group(g: PreferenceGroup, enc: list[Encoded], report: TruncationReport) -> EncodedGroup:
    """`g` with `enc`, the encodings of its responses, counting what truncation did into `report`."""
    report.responses += len(enc)
    report.responses_cut += sum(e.truncated for e in enc)
    for w, loser in g.pairs:
        report.pairs += 1
        if enc[w].truncated or enc[loser].truncated:
            report.pairs_cut += 1
            if enc[w].input_ids == enc[loser].input_ids:
                report.pairs_identical_after_cut += 1
                if len(report.examples) < 5:
                    report.examples.append(g.source)
    margins = g.margins if g.margins is not None else [0.0] * len(g.pairs)
    return EncodedGroup(enc, list(g.pairs), list(margins), g.ranks, g.subset)


def batch_indices(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int = 0,
    shuffle: bool = True,
    length_grouped: bool = True,
    window: int = 50,
) -> list[list[int]]:
    """Indices of items per batch: shuffled, and (optionally) grouped by length within windows.

    The order depends only on (seed, epoch), never on the batch size when ``length_grouped`` is False,
    so batch 4 x accumulation 1 and batch 1 x accumulation 4 see the same items in the same order.
    The batches are `batch_plan.plan_batches`'s (one sampler for in-memory and streamed data), as lists.
    """
    from rewardlab.data.batch_plan import plan_batches

    plan = plan_batches(lengths, batch_size, seed, epoch, shuffle, length_grouped, window)
    return [plan[k].tolist() for k in range(len(plan))]


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_items: int = 256) -> list[list[int]]:
    """Sort by length and fill batches up to a padded-token budget (for scoring; order restored later)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = max([lengths[j] for j in current] + [lengths[i]])
        if current and (width * (len(current) + 1) > max_tokens or len(current) >= max_items):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def collate(items: Sequence[Encoded], pad_id: int, padding_side: str = "right") -> dict[str, Any]:
    """Pad encoded texts into tensors (input_ids, attention_mask, token_type_ids?, response_mask)."""
    import torch

    width = max(len(e.input_ids) for e in items)
    n = len(items)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    resp = torch.zeros((n, width), dtype=torch.long)
    has_types = items[0].token_type_ids is not None
    types = torch.zeros((n, width), dtype=torch.long) if has_types else None
    for row, e in enumerate(items):
        length = len(e.input_ids)
        off = width - length if padding_side == "left" else 0
        ids[row, off : off + length] = torch.tensor(e.input_ids)
        mask[row, off : off + length] = 1
        resp[row, off + e.response_start : off + e.response_end] = 1
        if types is not None:
            types[row, off : off + length] = torch.tensor(e.token_type_ids)
    batch = {"input_ids": ids, "attention_mask": mask, "response_mask": resp}
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def collate_groups(groups: Sequence[EncodedGroup], pad_id: int) -> dict[str, Any]:
    """One training batch: every response of every group, plus pair indices into that flat list."""
    import torch

    items, pairs, pair_group, margins = [], [], [], []
    for gi, g in enumerate(groups):
        base = len(items)
        items.extend(g.responses)
        for (w, lo), m in zip(g.pairs, g.margins, strict=True):
            pairs.append((base + w, base + lo))
            pair_group.append(gi)
            margins.append(m)
    batch = collate(items, pad_id)
    batch["pairs"] = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
    batch["pair_group"] = torch.tensor(pair_group, dtype=torch.long)
    batch["margins"] = torch.tensor(margins, dtype=torch.float32)
    return batch
