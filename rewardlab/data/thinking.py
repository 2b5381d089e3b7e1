"""``--strip-thinking``: score the answer, not the reasoning trace a thinking policy wrote before it.

A response from a reasoning model reads ``<think> ... </think> the answer``. A reward model trained on
answers (or asked to judge answers) should not see the trace: its length and wording move the reward
without changing the answer (eval harnesses strip it before scoring: olmo-eval PR 361, lmms-eval PR 1100).
`ThinkingStripper` removes the traces inside `TextEncoder.render`, the one place every path (training
batches, `Scorer`, the server, best-of-N) turns text into ids, so train and inference strip alike; a model
trained with it records the delimiters in rewardlab.json (`ModelCard.strip_thinking`) and every later
`Scorer` of that folder strips without being told.

The rules, applied to each response (to the content of each assistant message of a chat response):

- every complete ``<open> ... <close>`` block is removed, with the whitespace right after it;
- a ``<close>`` with no ``<open>`` before it (chat templates such as DeepSeek-R1's and Qwen3's write the
  ``<open>`` into the prompt) ends a trace that began with the response: the text up to it is removed;
- an **unterminated** trace (an ``<open>`` never closed: the policy ran out of tokens while thinking) is
  an unfinished answer: everything from the ``<open>`` on is dropped, so the answer is what came before it
  (usually nothing: an empty answer, scored as the model scores an empty response). Each such response is
  counted (`unterminated`) and logged, never silently scored as if the trace were the answer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from rewardlab.config import ConfigError, doc
from rewardlab.data.types import Text
from rewardlab.flag_rules import thinking_problem

log = logging.getLogger(__name__)

DEFAULT_OPEN = "<think>"
DEFAULT_CLOSE = "</think>"
LOGGED_EXAMPLES = 5
"""Unterminated traces logged one by one before only the count goes on."""


@dataclass
class ThinkingFlags:
    """The ``--strip-thinking`` flags of the commands that score (eval, score, serve, bon)."""

    strip_thinking: bool = doc(
        "Remove reasoning traces (--think-open ... --think-close) from responses before scoring; an "
        "unterminated trace is an unfinished answer: dropped from its opening tag on, counted and logged "
        "(docs/reward_kinds.md). A model trained with it (rewardlab.json) strips without the flag.",
        False,
    )
    think_open: str = doc("Tag that opens a reasoning trace.", DEFAULT_OPEN)
    think_close: str = doc("Tag that closes a reasoning trace.", DEFAULT_CLOSE)

    def __post_init__(self) -> None:
        check_delimiters(self.think_open, self.think_close)

    def stripper(self) -> ThinkingStripper | None:
        return ThinkingStripper(self.think_open, self.think_close) if self.strip_thinking else None


def check_delimiters(open_tag: str, close_tag: str) -> None:
    """ConfigError naming the flag unless both tags are non-empty, distinct and unnested."""
    problem = thinking_problem(open_tag, close_tag)
    if problem:
        raise ConfigError(problem)


class ThinkingStripper:
    """Removes reasoning traces from responses (module docstring: the rules) and counts what it did."""

    def __init__(self, open_tag: str = DEFAULT_OPEN, close_tag: str = DEFAULT_CLOSE) -> None:
        check_delimiters(open_tag, close_tag)
        self.open, self.close = open_tag, close_tag
        self.responses = 0
        """Responses seen."""
        self.stripped = 0
        """Responses that held at least one trace (terminated or not)."""
        self.unterminated = 0
        """Responses whose last trace was never closed (scored as the text before it)."""
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the counts (the server calls it after its warm-up)."""
        with self._lock:
            self.responses = self.stripped = self.unterminated = 0

    def __repr__(self) -> str:  # part of the token cache's encoder fingerprint
        return f"ThinkingStripper({self.open!r}, {self.close!r})"

    def strip_text(self, text: str) -> str:
        """`text` without its traces; counts the response."""
        answer, found, unterminated = strip_trace(text, self.open, self.close)
        with self._lock:
            self.responses += 1
            self.stripped += found
            self.unterminated += unterminated
            n = self.unterminated
        if unterminated and n <= LOGGED_EXAMPLES:
            log.warning(
                "unterminated %s trace (no %s): scored as an unfinished answer, %d characters before the "
                "trace kept (response starts %r)%s",
                self.open, self.close, len(answer), text[:60],
                "; further ones are only counted" if n == LOGGED_EXAMPLES else "",
            )  # fmt: skip
        return answer

    def strip(self, response: Text) -> Text:
        """A response (text or chat messages: each assistant message's content) without its traces."""
        if isinstance(response, str):
            return self.strip_text(response)
        return [
            {**m, "content": self.strip_text(m["content"])} if m.get("role") == "assistant" else m
            for m in response
        ]

    def line(self) -> str:
        """What was stripped, for the command's summary."""
        return (
            f"strip-thinking ({self.open}...{self.close}): {self.stripped} of {self.responses} responses "
            f"held a trace, {self.unterminated} unterminated (scored as unfinished answers: text before "
            f"{self.open} only)"
        )


def strip_trace(text: str, open_tag: str, close_tag: str) -> tuple[str, bool, bool]:
    """(answer, whether a trace was found, whether one was unterminated) by the module's rules."""
    found = unterminated = False
    first_open, first_close = text.find(open_tag), text.find(close_tag)
    if first_close >= 0 and (first_open < 0 or first_close < first_open):
        text = text[first_close + len(close_tag) :].lstrip()  # the template opened the trace
        found = True
    parts: list[str] = []
    pos = 0
    while True:
        start = text.find(open_tag, pos)
        if start < 0:
            parts.append(text[pos:])
            break
        parts.append(text[pos:start])
        found = True
        end = text.find(close_tag, start + len(open_tag))
        if end < 0:
            unterminated = True
            break
        pos = end + len(close_tag)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    answer = "".join(parts)
    return (answer.rstrip() if unterminated else answer), found, unterminated


def use_thinking(scorer: object, flags: ThinkingFlags | None) -> ThinkingStripper | None:
    """Turn ``--strip-thinking`` on for a loaded `Scorer` (or each member of an `EnsembleScorer`) and
    return the stripper now in effect: the flag's, else the one the model's rewardlab.json set up, else
    None. Returned so the command can report its counts (`ThinkingStripper.line`)."""
    encoders = [s.encoder for s in getattr(scorer, "scorers", [scorer]) if hasattr(s, "encoder")]
    wanted = flags.stripper() if flags is not None else None
    if wanted is not None:
        for enc in encoders:
            card_tags = (enc.thinking.open, enc.thinking.close) if enc.thinking is not None else None
            if card_tags and card_tags != (wanted.open, wanted.close):
                log.warning(
                    "--strip-thinking %s...%s overrides the model's own %s...%s (rewardlab.json)",
                    wanted.open, wanted.close, *card_tags,
                )  # fmt: skip
            enc.thinking = wanted
        return wanted
    return next((enc.thinking for enc in encoders if enc.thinking is not None), None)
