"""The demo task's gold reward: it parses a response back into features and scores them, so it works on any
string, including responses a trained policy or best-of-N produced (docs/demo.md, "Gold reward").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rewardlab.demo.text import DOMAINS, ERROR_TEMPLATES, ERRORS, FILLER, POLITE, RUDE


@dataclass(frozen=True)
class GoldWeights:
    """The gold reward's weights; `gold_reward` sums weight × feature (docs/demo.md, "Gold reward")."""

    content: float = 1.0
    """Each distinct on-topic content sentence, for the first `content_cap` of them."""
    content_cap: int = 3
    """How many content sentences earn the full `content` weight; later ones earn `extra_content`."""
    extra_content: float = 0.3
    """Each distinct on-topic content sentence beyond `content_cap` (diminishing returns)."""
    no_answer: float = -1.0
    """Once, when the response has no on-topic content sentence at all (it ignored the request)."""
    off_topic: float = -0.4
    """Each content sentence about another topic or task (irrelevant)."""
    filler: float = -0.25
    """Each vague filler sentence ("It really depends on your situation.")."""
    polite: float = 0.5
    """Once, when the response has at least one polite sentence ("Happy to help!")."""
    rude: float = -1.2
    """Each rude sentence ("Obviously you should already know this.")."""
    error: float = -1.2
    """Each factual error ("The Moon is bigger than the Earth.")."""
    repeat: float = -0.5
    """Each sentence that repeats an earlier one word for word (it earns nothing else)."""
    free_words: int = 50
    """Length up to this many words costs nothing."""
    length: float = -0.002
    """Times (words - free_words)², beyond `free_words`: padding hurts, and more and more."""


GOLD_WEIGHTS = GoldWeights()


@dataclass
class GoldBreakdown:
    """What `gold_reward` found in a response, and the total it gave."""

    on_topic: int = 0
    off_topic: int = 0
    filler: int = 0
    polite: int = 0
    rude: int = 0
    error: int = 0
    repeat: int = 0
    unknown: int = 0
    """Sentences the task does not know (e.g. from a real LM): they only count towards length."""
    words: int = 0
    total: float = 0.0


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _alternation(templates: Sequence[str]) -> re.Pattern[str]:
    """One regex matching any template, capturing its {topic} in group t<i> (i = template index)."""
    parts = []
    for i, template in enumerate(templates):
        before, after = template.split("{topic}")
        parts.append(f"{re.escape(before)}(?P<t{i}>.+?){re.escape(after)}")
    return re.compile("|".join(parts), re.IGNORECASE)


@lru_cache(maxsize=1)
def _tables() -> tuple:
    prompts = [(d.name, p) for d in DOMAINS for p in d.prompts]
    content = [(d.name, c) for d in DOMAINS for c in d.content]
    fixed = {
        _norm(s): kind
        for kind, bank in (("polite", POLITE), ("rude", RUDE), ("filler", FILLER), ("error", ERRORS))
        for s in bank
    }
    return (
        prompts,
        _alternation([p for _, p in prompts]),
        content,
        _alternation([c for _, c in content]),
        _alternation(ERROR_TEMPLATES),
        fixed,
    )


def _match(pattern: re.Pattern[str], text: str) -> tuple[int, str] | None:
    m = pattern.fullmatch(text)
    if m is None or m.lastgroup is None:
        return None
    return int(m.lastgroup[1:]), m.group(m.lastgroup)


def parse_prompt(prompt: str) -> tuple[str, str] | None:
    """(domain, topic) of a demo prompt, or None when `prompt` is not one of the task's templates."""
    prompts, prompt_re, *_ = _tables()
    found = _match(prompt_re, " ".join(prompt.split()))
    return None if found is None else (prompts[found[0]][0], found[1])


def gold_breakdown(prompt: str, response: str, weights: GoldWeights = GOLD_WEIGHTS) -> GoldBreakdown:
    """Parse `response` into sentences, classify each, and score them (see `GoldWeights`).

    A content sentence is on-topic when its task and topic are the prompt's; for a prompt outside the
    task's templates, when its topic occurs in the prompt text.
    """
    _, _, content, content_re, error_re, fixed = _tables()
    target = parse_prompt(prompt)
    lowered_prompt = _norm(prompt)
    out = GoldBreakdown(words=len(response.split()))
    seen: set[str] = set()
    for sentence in _SENTENCE_END.split(response.strip()):
        key = _norm(sentence)
        if not key:
            continue
        if key in seen:
            out.repeat += 1
            continue
        seen.add(key)
        kind = fixed.get(key)
        if kind is not None:
            setattr(out, kind, getattr(out, kind) + 1)
        elif (found := _match(content_re, " ".join(sentence.split()))) is not None:
            domain, topic = content[found[0]][0], found[1].lower()
            if target is None:
                relevant = topic in lowered_prompt
            else:
                relevant = domain == target[0] and topic == target[1].lower()
            out.on_topic += relevant
            out.off_topic += not relevant
        elif _match(error_re, " ".join(sentence.split())) is not None:
            out.error += 1
        else:
            out.unknown += 1
    w = weights
    out.total = (
        w.content * min(out.on_topic, w.content_cap)
        + w.extra_content * max(out.on_topic - w.content_cap, 0)
        + w.no_answer * (out.on_topic == 0)
        + w.off_topic * out.off_topic
        + w.filler * out.filler
        + w.polite * (out.polite > 0)
        + w.rude * out.rude
        + w.error * out.error
        + w.repeat * out.repeat
        + w.length * max(out.words - w.free_words, 0) ** 2
    )
    return out


def gold_reward(prompt: str, response: str, weights: GoldWeights = GOLD_WEIGHTS) -> float:
    """The demo task's true reward of `response` to `prompt`, computed from the text alone."""
    return gold_breakdown(prompt, response, weights).total
