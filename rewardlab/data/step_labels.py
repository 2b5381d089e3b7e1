"""Step labels for real model solutions from the reference solution's intermediate values ("rule 3").

GSM8K solutions, the reference and the model samples alike, mark each calculation with a calculator
annotation ``<<16-3=13>>``. That makes intermediate results comparable without a human labeller:

    a correct solution (final answer right)   every step positive (1.0)
    an incorrect solution                     the first step that is wrong is negative (0.0), and so
                                              is every step after it; the steps before it positive

where a step is *wrong* when one of its annotations

- states a result that its own expression does not give (``<<3*4=13>>``: an arithmetic slip), or
- gives a result that is not among the reference values (the results of the reference solution's
  annotations, plus the numbers in the question and the gold answer; with ``extra_values``, e.g. the
  results of the problem's *correct* samples, other valid routes count too);

and, when no annotated step is wrong, the final-answer step is the first error (the answer is wrong,
so some step is; the last one is the only one left to blame). Labels "wrong from the first error on"
match the injected-error data (`rewardlab.data.gsm8k`), so a PRM reads the same meaning from both.

Known failure modes (docs/prm.md): steps without annotations are never judged, so an error in plain
prose moves the blame later; a valid re-ordering of the computation (3+4=7, then 16-7=9, where the
reference computes 16-3-4=9) produces values the reference never writes, so a correct step of an
incorrect solution is blamed early; and a step with the right value for the wrong reason (a number
that happens to occur in the reference) passes, moving the blame later.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rewardlab.data.gsm8k import ANNOTATION, fmt, safe_eval

QUESTION_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
TOLERANCE = 1e-4
"""Relative tolerance when comparing two values (0.33 and 0.333 are different; 1e4 and 10000.0 equal)."""


@dataclass
class StepVerdict:
    """Why a solution got its labels: the first-error index (None: all positive) and the reason."""

    labels: list[float]
    first_error: int | None
    reason: str
    """'correct', 'arithmetic' (a wrong stated result), 'off-reference' (a value the reference does not
    have), or 'final answer' (no annotated step disagrees: the final step takes the blame)."""


def annotation_values(text: str) -> list[float]:
    """The stated results of the calculator annotations of `text`, in order (unparseable ones skipped)."""
    out = []
    for m in ANNOTATION.finditer(text):
        value = _number(m.group(2))
        if value is not None:
            out.append(value)
    return out


def reference_values(reference_steps: Sequence[str], question: str = "", gold: str | None = None) -> set[str]:
    """Every value a correct route may write: annotation results of the reference, the question's
    numbers and the gold answer, as canonical strings (`value_key`)."""
    values = {value_key(v) for step in reference_steps for v in annotation_values(step)}
    values |= {value_key(v) for v in (_number(n) for n in QUESTION_NUMBER.findall(question)) if v is not None}
    if gold is not None and _number(gold) is not None:
        values.add(value_key(_number(gold)))  # type: ignore[arg-type]
    return values


def rule3_labels(
    steps: Sequence[str],
    correct: bool,
    reference: set[str],
    extra_values: Iterable[str] = (),
) -> StepVerdict:
    """Labels for one solution (the module docstring has the rule); `reference` from `reference_values`."""
    n = len(steps)
    if correct:
        return StepVerdict([1.0] * n, None, "correct")
    allowed = reference | set(extra_values)
    for i, step in enumerate(steps[:-1] if n > 1 else steps):
        reason = _step_error(step, allowed)
        if reason:
            return StepVerdict(_from(i, n), i, reason)
    return StepVerdict(_from(n - 1, n), n - 1, "final answer")


def _step_error(step: str, allowed: set[str]) -> str:
    for m in ANNOTATION.finditer(step):
        stated = _number(m.group(2))
        if stated is None:
            continue
        try:
            computed = safe_eval(m.group(1).replace("x", "*"))
        except ValueError:
            computed = None
        if computed is not None and not _close(computed, stated):
            return "arithmetic"
        if value_key(stated) not in allowed:
            return "off-reference"
    return ""


def _from(k: int, n: int) -> list[float]:
    return [1.0 if i < k else 0.0 for i in range(n)]


def _number(text: str) -> float | None:
    text = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b)) or fmt(a) == fmt(b)


def value_key(x: float) -> str:
    """Values that print alike at 2 decimals are one value (GSM8K writes 0.33 for 1/3 as often as not)."""
    return fmt(x)
