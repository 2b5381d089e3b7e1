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
- a prompt whose text already starts with the layout's own first special token (an OpenRLHF query
  decoded with its BOS, a Llama-3 template that writes ``<|begin_of_text|>``) does not get a second one.

That is the ``rewardlab`` layout. The ``chat_template`` layout (decoders only; recorded in rewardlab.json
as ``layout``) is the one other engines use: the text is exactly what they tokenise,
``apply_chat_template(prompt + response, tokenize=False)`` for chat messages (``prompt + response`` for
plain strings), tokenised once with ``add_special_tokens=False``, and the reward is read at its last
token (for ChatML the ``\n`` after ``<|im_end|>``). No EOS is appended, nothing is stripped, so
transformers, vLLM, verl, TRL and OpenRLHF see the same ids (docs/integrations.md, with parity tests).
A tokenizer without a chat template gets `PLAIN_CHAT_TEMPLATE`, the plain template below as Jinja, with
the EOS closing each assistant turn (what a policy generates), and saves it with the model.

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

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardlab.data.types import Message, Text

TRUNCATION_POLICIES = ("left", "right")
LAYOUTS = ("rewardlab", "chat_template")

PLAIN_ROLES = {"user": "Human", "assistant": "Assistant", "system": "System"}


def render_plain(messages: list[Message], add_generation_prompt: bool = False) -> str:
    """The plain chat template for tokenizers without one: HH-RLHF's ``\\n\\nHuman: …\\n\\nAssistant: …``."""
    text = "".join(f"\n\n{PLAIN_ROLES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)
    return text + ("\n\nAssistant:" if add_generation_prompt else "")


PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '\\n\\n' }}"
    "{% if m['role'] == 'user' %}Human{% elif m['role'] == 'assistant' %}Assistant"
    "{% elif m['role'] == 'system' %}System{% else %}{{ m['role'] | title }}{% endif %}"
    ": {{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n\\nAssistant:' }}{% endif %}"
)
"""`render_plain` as a chat template, each assistant turn closed by the EOS: what the ``chat_template``
layout installs on a tokenizer that has none (and `rewardlab export` writes), so every engine that applies
the model's template renders the same text."""


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
    name: str = "rewardlab"  # one of LAYOUTS (part of the repr, hence of the token cache's fingerprint)


class TextEncoder:
    """Tokenise (prompt, response) pairs with a fixed layout and an explicit truncation policy."""

    def __init__(
        self,
        tokenizer: Any,
        max_length: int = 512,
        truncation: str = "left",
        is_encoder: bool | None = None,
        append_eos: bool = True,
        layout: str = "rewardlab",
        thinking: Any = None,
    ) -> None:
        if truncation not in TRUNCATION_POLICIES:
            raise ValueError(f"truncation must be one of {TRUNCATION_POLICIES}, got {truncation!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.tokenizer = tokenizer
        self.thinking = thinking
        """A `rewardlab.data.thinking.ThinkingStripper` (``--strip-thinking``): applied to every response in
        `render`, so training, scoring and serving strip alike; None: responses are used as they are."""
        self.max_length = max_length
        self.truncation = truncation
        self.is_encoder = _looks_like_encoder(tokenizer) if is_encoder is None else is_encoder
        if layout == "chat_template" and self.is_encoder:
            raise ValueError(
                "layout chat_template is for decoders; an encoder reads a (prompt, response) text pair "
                "(layout rewardlab)"
            )
        self.append_eos = (
            append_eos
            and layout == "rewardlab"
            and not self.is_encoder
            and tokenizer.eos_token_id is not None
        )
        if layout == "chat_template" and not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = PLAIN_CHAT_TEMPLATE  # saved with the model, read by other engines
        self.layout = _Layout([], [], [], None, name="chat_template") if layout == "chat_template" else None
        self.layout = self.layout or self._detect_layout()
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

    @property
    def layout_name(self) -> str:
        """``rewardlab`` or ``chat_template`` (module docstring)."""
        return self.layout.name

    def render(self, prompt: Text, response: Text) -> tuple[str, str]:
        """Prompt and response as the strings that get tokenised (reasoning traces stripped first when
        `thinking` is set)."""
        if self.thinking is not None:
            response = self.thinking.strip(response)
        if isinstance(prompt, str) and isinstance(response, str):
            return prompt, response
        if self.layout.name == "chat_template":
            return self._render_template(prompt, response)
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

    def _render_template(self, prompt: Text, response: Text) -> tuple[str, str]:
        """``chat_template`` layout: the whole conversation rendered once, split where the prompt's
        rendering with the generation prompt ends (or, for a template that rewrites earlier turns, where
        the two renderings part: TRL's ``apply_chat_template`` does the same)."""
        if isinstance(prompt, str):
            prompt_msgs = [{"role": "user", "content": prompt}] if prompt else []
        else:
            prompt_msgs = list(prompt)
        tok = self.tokenizer
        full = tok.apply_chat_template(prompt_msgs + _as_messages(response), tokenize=False)
        head = (
            tok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
            if prompt_msgs
            else ""
        )
        if not full.startswith(head):
            head = os.path.commonprefix([head, full])
        return head, full[len(head) :]

    def encode(self, prompt: Text, response: Text) -> Encoded:
        prompt_text, response_text = self.render(prompt, response)
        if self.layout.name == "chat_template":
            lay, p, r = self._split_text(prompt_text, response_text)
            return self._assemble(p, r, lay=lay)
        tok = self.tokenizer
        p = tok(prompt_text, add_special_tokens=False)["input_ids"] if prompt_text else []
        r = tok(response_text, add_special_tokens=False)["input_ids"]
        return self._assemble(*self._drop_repeated_prefix(p, r))

    def _split_text(self, head: str, body: str) -> tuple[_Layout, list[int], list[int]]:
        """``chat_template`` layout: ``head + body`` tokenised once as it is (add_special_tokens=False),
        cut into prompt and response ids at the first token that ends past the head. A leading BOS becomes
        the layout's prefix, so left truncation keeps it."""
        tok = self.tokenizer
        text = head + body
        if getattr(tok, "is_fast", False):
            out = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = out["input_ids"]
            k = next((i for i, (_, end) in enumerate(out["offset_mapping"]) if end > len(head)), len(ids))
        else:
            p = tok(head, add_special_tokens=False)["input_ids"] if head else []
            ids, k = p + tok(body, add_special_tokens=False)["input_ids"], len(p)
        bos = tok.bos_token_id
        if ids and bos is not None and ids[0] == bos:  # also for a whole text scored with no prompt
            k = max(k, 1)
            return _Layout([bos], [], [], None, name="chat_template"), ids[1:k], ids[k:]
        return self.layout, ids[:k], ids[k:]

    def _drop_repeated_prefix(self, p: list[int], r: list[int]) -> tuple[list[int], list[int]]:
        """Text that already starts with the layout's first special tokens (a BOS written by a chat
        template or kept in a decoded query) does not get them twice."""
        prefix = self._layout_for(p).prefix
        if not prefix:
            return p, r
        if p[: len(prefix)] == prefix:
            return p[len(prefix) :], r
        if not p and r[: len(prefix)] == prefix:
            return p, r[len(prefix) :]
        return p, r

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
        if self.layout.name == "chat_template":
            out = []
            for group in rendered:
                split = [self._split_text(p, r) for p, r in group]
                keep = self._group_prompt_budget([(p, r) for _, p, r in split], [lay for lay, _, _ in split])
                out.append([self._assemble(p, r, keep, lay) for lay, p, r in split])
            return out
        prompts = list(dict.fromkeys(p for p, _ in flat if p))
        ids = self.tokenizer(prompts + [r for _, r in flat], add_special_tokens=False)["input_ids"]
        prompt_ids = dict(zip(prompts, ids[: len(prompts)], strict=True))
        response_ids = iter(ids[len(prompts) :])
        out = []
        for group in rendered:
            items = [
                self._drop_repeated_prefix(prompt_ids[p] if p else [], next(response_ids)) for p, _ in group
            ]
            keep = self._group_prompt_budget(items)
            out.append([self._assemble(p, r, keep) for p, r in items])
        return out

    def _group_prompt_budget(
        self, items: list[tuple[list[int], list[int]]], layouts: Sequence[_Layout] | None = None
    ) -> int | None:
        """Prompt tokens every response of a group keeps under left truncation: what its longest
        response leaves room for. Responses that fill the budget alone are left out of the minimum (they
        keep no prompt whatever the others do), so one over-long response does not erase the others'."""
        if self.truncation != "left" or len(items) < 2:
            return None
        lays = layouts or [None] * len(items)
        budgets = [self._budget(p, lay) for (p, _), lay in zip(items, lays, strict=True)]
        rooms = [b - len(r) for (p, r), b in zip(items, budgets, strict=True) if p and b > len(r)]
        return min(rooms) if rooms else None

    def _layout_for(self, p: list[int]) -> _Layout:
        return self.layout if p or self.layout.single is None else self.layout.single

    def _budget(self, p: list[int], lay: _Layout | None = None) -> int:
        """Text tokens that fit beside the specials of `p`'s layout."""
        return self.max_length - _num_special(lay or self._layout_for(p))

    def _assemble(
        self, p: list[int], r: list[int], keep_prompt: int | None = None, lay: _Layout | None = None
    ) -> Encoded:
        """Lay out prompt ids `p` and response ids `r` with the specials, truncating by the policy;
        `keep_prompt` caps the prompt tokens kept under left truncation (`encode_groups`); `lay`
        overrides the layout (``chat_template``: the item's own, with or without a BOS)."""
        lay = lay or self._layout_for(p)
        budget = self._budget(p, lay)
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
