"""The demo task's toy policy: `sample_response` writes a candidate answer to a demo prompt, of varied
quality, from sentence banks; a `PolicyStyle` (or a STYLES preset) shifts how it writes, to simulate a
drifted policy or to draw best-of-N pools at a temperature.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rewardlab.demo.gold import parse_prompt
from rewardlab.demo.text import DOMAINS, ERROR_TEMPLATES, ERRORS, FILLER, POLITE, RUDE


@dataclass(frozen=True)
class PolicyStyle:
    """How `sample_response` writes; shift it (or pick a preset in STYLES) to simulate a drifted policy."""

    content_weights: tuple[float, ...] = (
        0.06,
        0.18,
        0.28,
        0.24,
        0.14,
        0.07,
        0.03,
        0.006,
        0.003,
        0.0015,
        0.0005,
    )
    """Relative probability of writing 0, 1, 2, ... content sentences."""
    filler_weights: tuple[float, ...] = (0.5, 0.3, 0.13, 0.05, 0.02)
    """Relative probability of 0, 1, 2, ... vague filler sentences."""
    error_weights: tuple[float, ...] = (0.82, 0.14, 0.04)
    """Relative probability of 0, 1, 2 factual errors."""
    p_polite_open: float = 0.35
    """Probability of a polite opener ("Happy to help!")."""
    p_polite_close: float = 0.3
    """Probability of a polite closer ("Hope this helps!")."""
    p_rude: float = 0.12
    """Probability of a rude tone: a rude opener and a rude closer (replacing any polite ones)."""
    p_off_topic: float = 0.1
    """Probability that the whole answer is about another task and topic (a misread request)."""
    p_stray: float = 0.1
    """Probability of one off-topic content sentence among on-topic ones."""
    p_repeat: float = 0.04
    """Probability that one body sentence is repeated later (padding)."""
    temperature: float = 1.0
    """Sampling temperature over all the choices above: each weight w becomes w^(1/T) (a Bernoulli p is
    the pair (p, 1-p)), so T > 1 gives more varied, more extreme candidates and T < 1 more typical ones."""


STYLES: dict[str, PolicyStyle] = {
    "default": PolicyStyle(),
    # Long answers: more content, more filler and repetition (drift in length and style).
    "verbose": PolicyStyle(
        content_weights=(0.0, 0.02, 0.05, 0.1, 0.18, 0.22, 0.2, 0.14, 0.09),
        filler_weights=(0.1, 0.25, 0.3, 0.2, 0.15),
        p_polite_open=0.6,
        p_polite_close=0.6,
        p_repeat=0.4,
    ),
    # Short answers with little decoration.
    "concise": PolicyStyle(
        content_weights=(0.1, 0.35, 0.35, 0.15, 0.05),
        filler_weights=(0.8, 0.2),
        p_polite_open=0.15,
        p_polite_close=0.1,
        p_repeat=0.02,
    ),
    # Sloppy and curt: more errors, rudeness and misread requests.
    "careless": PolicyStyle(error_weights=(0.4, 0.4, 0.2), p_rude=0.4, p_off_topic=0.25, p_stray=0.3),
}


def with_style(base: str | PolicyStyle = "default", **changes: object) -> PolicyStyle:
    """A copy of a style with some fields changed, e.g. with_style(temperature=1.5) for best-of-N pools."""
    return replace(_style(base), **changes)


def _style(style: str | PolicyStyle | None) -> PolicyStyle:
    if style is None or isinstance(style, str):
        name = style or "default"
        if name not in STYLES:
            raise ValueError(f"unknown demo policy style '{name}'; choose one of {', '.join(STYLES)}")
        return STYLES[name]
    return style


def _choice_index(weights: Sequence[float], temperature: float, rng: random.Random) -> int:
    tempered = [w ** (1.0 / temperature) if w > 0 else 0.0 for w in weights]
    return rng.choices(range(len(tempered)), weights=tempered)[0]


def _coin(p: float, temperature: float, rng: random.Random) -> bool:
    return _choice_index((1.0 - p, p), temperature, rng) == 1


def sample_response(prompt: str, rng: random.Random, style: str | PolicyStyle | None = None) -> str:
    """One candidate response to a demo prompt, of varied quality; `style` names a STYLES preset or
    gives a PolicyStyle (default: STYLES["default"]). Deterministic given the state of `rng`."""
    style = _style(style)
    target = parse_prompt(prompt)
    if target is None:
        raise ValueError(
            f"sample_response writes answers to the demo task's prompts only, not {prompt!r}; "
            "take prompts from demo_prompts() or demo_split_prompts()"
        )
    domains = {d.name: d for d in DOMAINS}
    t = style.temperature
    domain, topic = domains[target[0]], target[1]
    if _coin(style.p_off_topic, t, rng):  # answers a different request altogether
        domain = rng.choice([d for d in DOMAINS if d.name != target[0]])
        topic = rng.choice(domain.topics)
    n_content = min(_choice_index(style.content_weights, t, rng), len(domain.content))
    body = [c.format(topic=topic) for c in rng.sample(domain.content, n_content)]
    if _coin(style.p_stray, t, rng):
        other = rng.choice([d for d in DOMAINS if d.name != domain.name])
        body.append(rng.choice(other.content).format(topic=rng.choice(other.topics)))
    n_filler = min(_choice_index(style.filler_weights, t, rng), len(FILLER))
    body += rng.sample(FILLER, n_filler)
    for _ in range(_choice_index(style.error_weights, t, rng)):
        if rng.random() < 0.5:
            body.append(rng.choice(ERRORS))
        else:
            body.append(rng.choice(ERROR_TEMPLATES).format(topic=topic))
    rng.shuffle(body)
    if not body:
        body.append(rng.choice(FILLER))
    if _coin(style.p_repeat, t, rng):
        i = rng.randrange(len(body))
        body.insert(rng.randrange(i + 1, len(body) + 1), body[i])
    opener = rng.choice(POLITE[:6]) if _coin(style.p_polite_open, t, rng) else None
    closer = rng.choice(POLITE[6:]) if _coin(style.p_polite_close, t, rng) else None
    if _coin(style.p_rude, t, rng):
        opener, closer = rng.choice(RUDE[:4]), rng.choice(RUDE[4:])
    return " ".join(s for s in [opener, *body, closer] if s)
