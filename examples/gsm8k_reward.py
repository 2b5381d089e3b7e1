"""A rule-based reward for GSM8K-style arithmetic, for ``--reward-fn examples/gsm8k_reward.py``.

    GSM8K_ANSWERS=gsm8k_test.jsonl rewardlab bon runs/rm --candidates cands.jsonl -o bon.jsonl \
        --reward-fn examples/gsm8k_reward.py --reward-combine tiebreak

`reward(prompt, response)` is 1.0 when the response's final number (rewardlab.bon.answers.final_number:
after '####' or 'answer is', else the last number) equals the reference answer of that prompt, 0.0 when
it differs, and None, "no opinion", when the prompt has no reference here (the reward model decides alone).
References come from the JSONL file named by $GSM8K_ANSWERS, rows with GSM8K's own fields ``question``
and ``answer`` (the answer ends in ``#### N``), or ``prompt`` and ``answer``; a prompt given as chat
messages is looked up by its last user message.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

from rewardlab.bon.answers import gsm8k_correct

ANSWERS_ENV = "GSM8K_ANSWERS"


@lru_cache(maxsize=4)
def references(path: str) -> dict[str, str]:
    """question (stripped) -> reference answer, from a JSONL file; errors name the file and line."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            question = row.get("question", row.get("prompt"))
            if not isinstance(question, str) or "answer" not in row:
                raise ValueError(f"{path}:{i}: needs 'question' (or 'prompt') and 'answer'")
            out[question.strip()] = str(row["answer"])
    return out


def _question(prompt: object) -> str:
    if isinstance(prompt, list):  # chat messages: the last user turn
        users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return users[-1].strip() if users else ""
    return str(prompt).strip()


def reward(prompt: object, response: object) -> float | None:
    """1.0 / 0.0 by the final number against the reference; None when the prompt has no reference."""
    path = os.environ.get(ANSWERS_ENV)
    if not path:
        raise RuntimeError(f"set ${ANSWERS_ENV} to a JSONL of GSM8K questions and answers")
    reference = references(path).get(_question(prompt))
    if reference is None:
        return None
    if isinstance(response, list):  # chat messages: the assistant's turns
        response = " ".join(m.get("content", "") for m in response if m.get("role") == "assistant")
    return gsm8k_correct(str(response), reference)
