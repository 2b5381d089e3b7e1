"""Final numeric answers: what a GSM8K-style response commits to, and whether it matches the reference.

The gold reward of `rewardlab bon --gold gsm8k` and `rewardlab overopt` on arithmetic; a rule-based
check next to the learned reward.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_number(text: str) -> float | None:
    """The answer a response commits to: the number after '####' or 'answer is', else the last number."""
    for marker in ("####", "answer is", "Answer:"):
        if marker in text:
            found = _NUMBER.findall(text.rsplit(marker, 1)[1])
            if found:
                return _to_float(found[0])
    found = _NUMBER.findall(text)
    return _to_float(found[-1]) if found else None


def _to_float(s: str) -> float | None:
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


def gsm8k_correct(response: str, reference: str) -> float:
    """1.0 when the response's final number equals the reference's (a GSM8K answer ends in '#### N')."""
    want, got = final_number(reference), final_number(response)
    return float(want is not None and got is not None and abs(want - got) < 1e-6)
