"""The judge's arithmetic, free of models: label probabilities from next-token log-probabilities, the
expected rating, pairwise preference with both orders combined, and the parse rules for text replies.

Labels that span several tokens ("10" is "1" then "0" in SmolLM2's vocabulary) are scored exactly: a
label's log-probability is the sum over its tokens, and a label that is a prefix of another ("1" of
"10") also pays for *stopping* there: P("1") = P(1 | ctx) · (1 - P(0 | ctx, 1)). `label_logprobs` does
this over the label tree; `tree_prefixes` says which prefixes need a next-token distribution.

Position bias: with the responses shown in both orders, a judge with a bias b towards the first slot
gives log-odds d + b and d - b for the same response, so averaging the log-odds of the two orders
returns d exactly (`combine_orders`); averaging probabilities would not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

NEG_INF = float("-inf")


class JudgeItemError(ValueError):
    """One item could not be judged: a reply with no usable answer, a request that failed after its
    retries, a prompt too long. It stands in that item's place; it is never replaced by a made-up score."""


# --- label trees -----------------------------------------------------------------------------------------


def tree_prefixes(tails: Mapping[str, Sequence]) -> list[tuple]:
    """Every token prefix whose next-token distribution the label log-probabilities need: the empty
    prefix, each proper prefix of a label's tokens, and each label that another label extends."""
    needed = {()}
    seqs = [tuple(t) for t in tails.values()]
    for seq in seqs:
        needed.update(seq[:k] for k in range(1, len(seq)))
    needed.update(s for s in seqs if any(len(o) > len(s) and o[: len(s)] == s for o in seqs))
    return sorted(needed, key=lambda p: (len(p), p))


def label_logprobs(tails: Mapping[str, Sequence], next_logprob: Mapping[tuple, Mapping]) -> dict[str, float]:
    """log P(label) for every label, given its token sequence (`tails`) and ``next_logprob[prefix][tok]``,
    the log-probability of token `tok` after ``context + prefix`` (missing entries are -inf).

    A label that other labels extend is charged the probability of not continuing into them:
    log P(label) = Σ log p(tokens) + log(1 - Σ_c p(c | label)), c the first tokens of the extensions."""
    seqs = {label: tuple(t) for label, t in tails.items()}
    out = {}
    for label, seq in seqs.items():
        if not seq:
            raise ValueError(f"label {label!r} has no tokens")
        lp = 0.0
        for k, tok in enumerate(seq):
            lp += next_logprob.get(seq[:k], {}).get(tok, NEG_INF)
        cont = {o[len(seq)] for o in seqs.values() if len(o) > len(seq) and o[: len(seq)] == seq}
        if cont:
            dist = next_logprob.get(seq, {})
            p_cont = sum(math.exp(dist.get(c, NEG_INF)) for c in cont)
            lp += math.log(max(1.0 - p_cont, 0.0)) if p_cont < 1.0 else NEG_INF
        out[label] = lp
    return out


# --- pointwise ------------------------------------------------------------------------------------------


def label_mass(logprobs: Mapping[str, float]) -> float:
    """Total probability the judge puts on the labels (low: it is not answering in the asked format)."""
    return sum(math.exp(v) for v in logprobs.values())


def expected_rating(logprobs: Mapping[str, float], values: Mapping[str, float]) -> float:
    """Σ value · P(label), P renormalised over the labels. Raises JudgeItemError when no label has any
    probability (an endpoint whose top log-probabilities contain none of them)."""
    top = max(logprobs.values(), default=NEG_INF)
    if top == NEG_INF:
        raise JudgeItemError("no rating label among the judge's next-token probabilities")
    weights = {k: math.exp(v - top) for k, v in logprobs.items()}
    total = sum(weights.values())
    return sum(values[k] * w for k, w in weights.items()) / total


# --- pairwise -------------------------------------------------------------------------------------------


def first_wins(logprob_first: float, logprob_second: float) -> float:
    """P(the first-shown response wins) = P(first label) / (P(first) + P(second))."""
    if logprob_first == NEG_INF and logprob_second == NEG_INF:
        raise JudgeItemError("neither choice label among the judge's next-token probabilities")
    return 1.0 / (1.0 + math.exp(max(min(logprob_second - logprob_first, 700.0), -700.0)))


def logit(p: float) -> float:
    if p <= 0.0:
        return NEG_INF
    if p >= 1.0:
        return float("inf")
    return math.log(p / (1.0 - p))


def combine_orders(p_x_first: float, p_x_second: float, soft: bool = True) -> float:
    """P(x beats y) from the two presentations: `p_x_first` with x shown first, `p_x_second` with x
    shown second (both already "P(x wins)"). `soft` (probabilities from logits): σ of the mean log-odds,
    which cancels a constant position bias exactly; otherwise (0/1 votes parsed from text) their mean."""
    if not soft:
        return (p_x_first + p_x_second) / 2
    a, b = logit(p_x_first), logit(p_x_second)
    if math.isinf(a) or math.isinf(b):
        return (p_x_first + p_x_second) / 2 if math.isinf(a) and math.isinf(b) and a != b else _sig(a + b)
    return _sig((a + b) / 2)


def _sig(z: float) -> float:
    if z == float("inf"):
        return 1.0
    if z == NEG_INF:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


# --- parse rules for text replies (endpoints without log-probabilities) ----------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_rating(reply: str, labels: Sequence[str]) -> float:
    """The rule: the first number in the reply is the rating, and it must be one of `labels`
    ("7", "Rating: 7/10", "7 - good" give 7). No number, or a first number that is not a label
    ("0", "11", "7.5"), raises JudgeItemError."""
    m = _NUMBER.search(reply)
    if m is None:
        raise JudgeItemError(f"no rating in the reply {_clip(reply)}")
    if m.group() not in labels:
        raise JudgeItemError(f"rating {m.group()} is not one of {', '.join(labels)} in {_clip(reply)}")
    return float(m.group())


def parse_choice(reply: str, labels: Sequence[str]) -> int:
    """The rule: the first label (A or B) standing alone as a word ("A", "Answer: B", "(A)") is the
    choice; 0 for the first label, 1 for the second. A reply with neither raises JudgeItemError."""
    pattern = r"\b(" + "|".join(re.escape(x) for x in labels) + r")\b"
    m = re.search(pattern, reply)
    if m is None:
        raise JudgeItemError(f"no {' or '.join(labels)} in the reply {_clip(reply)}")
    return list(labels).index(m.group(1))


def _clip(text: str, n: int = 80) -> str:
    return repr(text if len(text) <= n else text[:n] + "…")
