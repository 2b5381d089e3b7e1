"""Rows to score: what `rewardlab score` and the batch-scoring paths accept.

Each row is one of
- ``{"prompt": ..., "response": ...}`` (or ``completion``, as TRL names it; either may be chat messages),
- ``{"messages": [...]}``: the last message is the response (it must be the assistant's), the rest the prompt,
- ``{"text": ...}``: a whole text scored with an empty prompt.
Other fields are carried through to the output untouched.
"""

from __future__ import annotations

from rewardlab.data.formats import check_messages
from rewardlab.data.readers import json_type, read_rows, shown_keys
from rewardlab.data.types import DataError, Text


def score_inputs(row: dict, where: str) -> tuple[Text, Text]:
    """(prompt, response) of one row, or a DataError naming the row and the field at fault.

    Chat messages are checked item by item ({role, content} strings), so a bad row fails the pre-check
    of `rewardlab score` with its line instead of the scorer mid-run.
    """
    if "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not msgs:
            got = "an empty list" if msgs == [] else f"a {json_type(msgs)}"
            raise DataError(
                f"{where}: field 'messages' must be a list ending with an assistant message, got {got}"
            )
        check_messages(msgs, "messages", where)
        if msgs[-1]["role"] != "assistant":
            raise DataError(
                f"{where}: field 'messages' must end with an assistant message (the response scored), "
                f"got role {msgs[-1]['role']!r} last"
            )
        return msgs[:-1], msgs[-1:]
    key = "response" if row.get("response") is not None else "completion"
    response = row.get(key)
    if response is not None:
        prompt = row.get("prompt", "")
        return _text(prompt, "prompt", where), _text(response, key, where)
    if "text" in row:
        return "", _text(row["text"], "text", where, messages=False)
    raise DataError(
        f"{where}: no field to score; give prompt+response (or completion), messages, or text "
        f"(found: {shown_keys(dict.fromkeys(sorted(row))) if row else 'nothing'})"
    )


def _text(value: object, key: str, where: str, messages: bool = True) -> Text:
    """A string, or (where `messages`) a list of {role, content} messages; else a DataError naming `key`."""
    if isinstance(value, str):
        return value
    if messages and isinstance(value, list):
        check_messages(value, key, where)
        return value
    what = "a string or a list of {role, content} messages" if messages else "a string"
    raise DataError(f"{where}: field '{key}' must be {what}, got {json_type(value)}")


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
