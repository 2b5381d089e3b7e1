"""Turn (prompt, response) into token ids the same way in training, scoring and plain transformers.

Every path that feeds the model (training batches, `Scorer`, the server, diagnostics) goes through
`TextEncoder`, so a truncation or template bug cannot hide in one of them.

Layout:
- encoders (BERT-like, `tokenizer(prompt, response)` text pairs): ``[CLS] prompt [SEP] response [SEP]``
  with token type ids, exactly what ``tokenizer(prompt, response)`` returns in plain transformers;
- decoders: ``[BOS] prompt response [EOS]``, i.e. ``tokenizer(prompt + response + eos_token)``: prompt and
  response are concatenated as they are (TRL's convention: the prompt ends where the response begins,
  e.g. HH's ``...\\n\\nAssistant:`` + `` I can't help with that.``) and the reward is read at the EOS.
- chat messages are rendered with the tokenizer's chat template, or with the plain template below.

Truncation (`max_length` counts every token, specials included):
- ``left`` (default): keep the whole response and cut the prompt from the left (the latest turns of a
  conversation matter most); a response longer than the budget alone keeps its end. The reward is read
  at the end of the response, so the end must never be cut.
- ``right``: cut the end of the whole sequence, as ``tokenizer(..., truncation=True)`` does. Two
  responses that differ late can become identical; rewardlab counts and reports such pairs.

Training groups (`encode_groups`) cut the prompt once per group: under ``left`` every response of a
group keeps the same last prompt tokens, as many as its longest response leaves room for. A pair is then
compared on the same context (cut per response, a longer response would see less of the conversation
than its rival, a length cue the model could learn), and a decoder can encode that shared prompt once
(`rewardlab.data.packing`). Scoring (`encode`) cuts each response on its own, as an RL loop sends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardlab.data.types import Message, Text

TRUNCATION_POLICIES = ("left", "right")

PLAIN_ROLES = {"user": "Human", "assistant": "Assistant", "system": "System"}


def render_plain(messages: list[Message], add_generation_prompt: bool = False) -> str:
    """The plain chat template for tokenizers without one: HH-RLHF's ``\\n\\nHuman: …\\n\\nAssistant: …``."""
    text = "".join(f"\n\n{PLAIN_ROLES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)
    return text + ("\n\nAssistant:" if add_generation_prompt else "")


def _as_messages(response: Text) -> list[Message]:
    return [{"role": "assistant", "content": response}] if isinstance(response, str) else list(response)


@dataclass
class Encoded:
    """One tokenised (prompt, response)."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    response_start: int
    """Index of the first response token (for mean pooling over the response)."""
    response_end: int
    """One past the last response token (specials such as [SEP]/EOS excluded)."""
    truncated: bool


@dataclass
class _Layout:
    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    types: tuple[int, int, int, int] | None  # token type of prefix, prompt+middle, response, suffix
    single: _Layout | None = None  # encoders: the one-segment layout used when the prompt is empty


class TextEncoder:
    """Tokenise (prompt, response) pairs with a fixed layout and an explicit truncation policy."""

    def __init__(
        self,
        tokenizer: Any,
        max_length: int = 512,
        truncation: str = "left",
        is_encoder: bool | None = None,
        append_eos: bool = True,
    ) -> None:
        if truncation not in TRUNCATION_POLICIES:
            raise ValueError(f"truncation must be one of {TRUNCATION_POLICIES}, got {truncation!r}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self.is_encoder = _looks_like_encoder(tokenizer) if is_encoder is None else is_encoder
        self.append_eos = append_eos and not self.is_encoder and tokenizer.eos_token_id is not None
        self.layout = self._detect_layout()
        if self.max_length <= self.num_special + 1:
            raise ValueError(f"max_length={max_length} leaves no room for text; use at least 16")

    @property
    def num_special(self) -> int:
        return _num_special(self.layout)

    def _detect_layout(self) -> _Layout:
        """Find where the tokenizer puts its special tokens by encoding two known words."""
        tok = self.tokenizer
        a = tok("hello", add_special_tokens=False)["input_ids"]
        b = tok("world", add_special_tokens=False)["input_ids"]
        if self.is_encoder:
            out = tok("hello", "world")
            ids, types = out["input_ids"], out.get("token_type_ids")
            i = _find(ids, a, 0)
            j = _find(ids, b, i + len(a))
            lay = _Layout(ids[:i], ids[i + len(a) : j], ids[j + len(b) :], None)
            if types is not None:
                lay.types = (types[0], types[i], types[j], types[-1])
            one = tok("hello")
            k = _find(one["input_ids"], a, 0)
            one_types = one.get("token_type_ids")
            lay.single = _Layout(one["input_ids"][:k], [], one["input_ids"][k + len(a) :], None)
            if one_types is not None:
                lay.single.types = (one_types[0], one_types[k], one_types[k], one_types[-1])
            return lay
        ids = tok("hello")["input_ids"]
        i = _find(ids, a, 0)
        suffix = ids[i + len(a) :]
        if self.append_eos and (not suffix or suffix[-1] != tok.eos_token_id):
            suffix = suffix + [tok.eos_token_id]
        return _Layout(ids[:i], [], suffix, None)

    def render(self, prompt: Text, response: Text) -> tuple[str, str]:
        """Prompt and response as the strings that get tokenised."""
        if isinstance(prompt, str) and isinstance(response, str):
            return prompt, response
        prompt_msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        full_msgs = prompt_msgs + _as_messages(response)
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            head = tok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(full_msgs, tokenize=False)
        else:
            head = render_plain(prompt_msgs, add_generation_prompt=True)
            full = render_plain(full_msgs)
        if not full.startswith(head):  # templates that rewrite earlier turns: fall back to the plain one
            head, full = render_plain(prompt_msgs, True), render_plain(full_msgs)
        body = full[len(head) :]
        if self.append_eos and tok.eos_token and body.rstrip().endswith(tok.eos_token):
            body = body.rstrip()[: -len(tok.eos_token)]  # the layout appends EOS itself
        return head, body

    def encode(self, prompt: Text, response: Text) -> Encoded:
        prompt_text, response_text = self.render(prompt, response)
        tok = self.tokenizer
        p = tok(prompt_text, add_special_tokens=False)["input_ids"] if prompt_text else []
        r = tok(response_text, add_special_tokens=False)["input_ids"]
        return self._assemble(p, r)

    def encode_group(self, prompt: Text, responses: Sequence[Text]) -> list[Encoded]:
        """The responses to one prompt, with the prompt cut once for the whole group (module docstring)."""
        return self.encode_groups([(prompt, responses)])[0]

    def encode_groups(self, groups: Sequence[tuple[Text, Sequence[Text]]]) -> list[list[Encoded]]:
        """`encode_group` for many groups with one tokenizer call.

        Each distinct prompt text is tokenised once. Without truncation the ids equal `encode`'s
        (tests/test_token_cache.py checks it); with it, only the prompt cut differs (module docstring).
        """
        rendered = [[self.render(prompt, r) for r in responses] for prompt, responses in groups]
        flat = [pr for group in rendered for pr in group]
        if not flat:
            return [[] for _ in groups]
        prompts = list(dict.fromkeys(p for p, _ in flat if p))
        ids = self.tokenizer(prompts + [r for _, r in flat], add_special_tokens=False)["input_ids"]
        prompt_ids = dict(zip(prompts, ids[: len(prompts)], strict=True))
        response_ids = iter(ids[len(prompts) :])
        out = []
        for group in rendered:
            items = [(prompt_ids[p] if p else [], next(response_ids)) for p, _ in group]
            keep = self._group_prompt_budget(items)
            out.append([self._assemble(p, r, keep) for p, r in items])
        return out

    def _group_prompt_budget(self, items: list[tuple[list[int], list[int]]]) -> int | None:
        """Prompt tokens every response of a group keeps under left truncation: what its longest
        response leaves room for. Responses that fill the budget alone are left out of the minimum (they
        keep no prompt whatever the others do), so one over-long response does not erase the others'."""
        if self.truncation != "left" or len(items) < 2:
            return None
        rooms = [self._budget(p) - len(r) for p, r in items if p and self._budget(p) > len(r)]
        return min(rooms) if rooms else None

    def _layout_for(self, p: list[int]) -> _Layout:
        return self.layout if p or self.layout.single is None else self.layout.single

    def _budget(self, p: list[int]) -> int:
        """Text tokens that fit beside the specials of `p`'s layout."""
        return self.max_length - _num_special(self._layout_for(p))

    def _assemble(self, p: list[int], r: list[int], keep_prompt: int | None = None) -> Encoded:
        """Lay out prompt ids `p` and response ids `r` with the specials, truncating by the policy;
        `keep_prompt` caps the prompt tokens kept under left truncation (`encode_groups`)."""
        lay = self._layout_for(p)
        budget = self._budget(p)
        truncated = len(p) + len(r) > budget or (keep_prompt is not None and keep_prompt < len(p))
        if truncated:
            if self.truncation == "left":
                r = r[-budget:]
                room = budget - len(r) if keep_prompt is None else min(keep_prompt, budget - len(r))
                p = p[len(p) - room :] if room > 0 else []
            else:
                p = p[:budget]
                r = r[: budget - len(p)]
        ids = lay.prefix + p + lay.middle + r + lay.suffix
        start = len(lay.prefix) + len(p) + len(lay.middle)
        types = None
        if lay.types is not None:
            t0, t1, t2, t3 = lay.types
            types = [t0] * len(lay.prefix) + [t1] * (len(p) + len(lay.middle)) + [t2] * len(r)
            types += [t3] * len(lay.suffix)
        return Encoded(ids, types, start, start + len(r), truncated)

    def encode_text(self, text: str) -> Encoded:
        """A whole text with no prompt (a transcript, or a response scored on its own).

        Encoders lay it out as one segment, ``[CLS] text [SEP]``, as ``tokenizer(text)`` does.
        """
        return self.encode("", text)


def _num_special(lay: _Layout) -> int:
    return len(lay.prefix) + len(lay.middle) + len(lay.suffix)


def _find(seq: list[int], sub: list[int], start: int) -> int:
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i : i + len(sub)] == sub:
            return i
    raise ValueError("could not locate text inside the tokenizer's special-token layout")


def _looks_like_encoder(tokenizer: Any) -> bool:
    """Text-pair tokenizers with a separator (BERT, RoBERTa, DeBERTa) are treated as encoders."""
    return tokenizer.sep_token_id is not None and tokenizer.cls_token_id is not None
