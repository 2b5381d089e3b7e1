"""Rows to score: what `rewardlab score` and the batch-scoring paths accept.

Each row is one of
- ``{"prompt": ..., "response": ...}`` (or ``completion``, as TRL names it; either may be chat messages),
- ``{"messages": [...]}``: the last message is the response (it must be the assistant's), the rest the prompt,
- ``{"text": ...}``: a whole text scored with an empty prompt.
Other fields are carried through to the output untouched.
"""

from __future__ import annotations

from rewardlab.data.readers import read_rows
from rewardlab.data.types import DataError, Text


def score_inputs(row: dict, where: str) -> tuple[Text, Text]:
    """(prompt, response) of one row, or a DataError naming the row and the fields expected."""
    if "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not msgs or msgs[-1].get("role") != "assistant":
            raise DataError(f"{where}: 'messages' must be a list ending with an assistant message")
        return msgs[:-1], msgs[-1:]
    response = row.get("response", row.get("completion"))
    if response is not None:
        prompt = row.get("prompt", "")
        if not isinstance(response, str | list) or not isinstance(prompt, str | list):
            raise DataError(f"{where}: 'prompt' and 'response' must be strings or message lists")
        return prompt, response
    if isinstance(row.get("text"), str):
        return "", row["text"]
    raise DataError(
        f"{where}: no field to score; give prompt+response (or completion), messages, or text "
        f"(found: {', '.join(sorted(row)) or 'nothing'})"
    )


def read_score_rows(path: str) -> tuple[list[dict], list[Text], list[Text]]:
    """All rows of a file with their prompts and responses; every row is checked before scoring."""
    rows, prompts, responses, errors = [], [], [], []
    for where, row in read_rows(path):
        try:
            p, r = score_inputs(row, where)
        except DataError as e:
            errors.append(str(e))
            continue
        rows.append(row)
        prompts.append(p)
        responses.append(r)
    if errors:
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise DataError("\n".join(errors[:20]) + more)
    return rows, prompts, responses
