"""Refuse a tokenizer the data was not written for, before any model trains or scores.

Two mismatches make every score meaningless, so curation stops with the reason instead of flagging noise:
- the text is pre-rendered with a chat template's control tokens (``<|im_start|>``, ``[INST]``,
  ``<|start_header_id|>``, ``<start_of_turn>``) that this tokenizer does not hold as tokens: it reads
  them as strings of punctuation, and the model never sees the turns the data marks;
- the tokenizer maps more than `MAX_UNKNOWN` of the data's tokens to its unknown token (a vocabulary
  for another script or language), so the model reads mostly [UNK].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardlab.data.types import PreferenceGroup, Text

TEMPLATE_MARKERS = {
    "<|im_start|>": "ChatML (Qwen, SmolLM)",
    "<|start_header_id|>": "Llama 3",
    "[INST]": "Llama 2 / Mistral",
    "<start_of_turn>": "Gemma",
    "<|user|>": "Zephyr / Phi",
}
MAX_UNKNOWN = 0.05
SAMPLE = 200


class TokenizerMismatch(ValueError):
    """The model's tokenizer does not fit the data; the message names the row and the reason."""


def _flat(text: Text) -> str:
    return text if isinstance(text, str) else " ".join(str(m.get("content", "")) for m in text)


def check_tokenizer(groups: Sequence[PreferenceGroup], tokenizer: Any, model: str) -> None:
    """Raise TokenizerMismatch when `tokenizer` cannot read `groups` as they were written."""
    sample = list(groups[:SAMPLE])
    vocab = tokenizer.get_vocab()
    for marker, family in TEMPLATE_MARKERS.items():
        where = next(
            (
                g.source
                for g in groups
                if marker in _flat(g.prompt) or any(marker in _flat(r) for r in g.responses)
            ),
            None,
        )
        if where is None or marker in vocab:
            continue
        pieces = tokenizer.tokenize(marker)
        raise TokenizerMismatch(
            f"{where}: the data is pre-rendered with the {family} chat template ('{marker}'), but the "
            f"tokenizer of {model} has no such token and reads it as {len(pieces)} pieces {pieces[:6]}: it "
            "was not written for this model. Use a model of that family (--model / --backbone), or give "
            "the data as plain text or chat messages (docs/formats.md)"
        )
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or not sample:
        return
    total = unknown = 0
    worst, worst_share = "", 0.0
    for g in sample:
        ids = tokenizer(
            _flat(g.prompt) + " " + " ".join(_flat(r) for r in g.responses), add_special_tokens=False
        )["input_ids"]
        n_unk = sum(1 for i in ids if i == unk)
        total, unknown = total + len(ids), unknown + n_unk
        if ids and n_unk / len(ids) > worst_share:
            worst, worst_share = g.source, n_unk / len(ids)
    if total and unknown / total > MAX_UNKNOWN:
        raise TokenizerMismatch(
            f"{worst}: the tokenizer of {model} maps {100 * unknown / total:.0f}% of the data's tokens "
            f"(first {len(sample)} rows; {100 * worst_share:.0f}% on this row) to its unknown token "
            f"'{tokenizer.unk_token}': its vocabulary was not made for this text. Use a model whose "
            "tokenizer covers the data's language or script"
        )
