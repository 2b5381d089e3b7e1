"""Reading annotation tasks from JSONL: a prompt and the K responses to rank.

Two row shapes are accepted, one JSON object per line:

- `{"prompt": ..., "responses": [r1, r2, ...], "id"?: str}`: any generator's output;
- `{"prompt": ..., "candidates": [{"text": r1, ...}, ...]}`: `rewardlab bon` output; each
  candidate's other fields (scores, ...) are kept in the task's meta under "candidates".

A prompt or response is a non-empty string or a list of chat messages `{"role", "content"}`, none of
them empty; the responses of a task must differ (an annotator cannot rank a text against itself). A
UTF-8 byte-order mark at the start of the file is skipped. Other top-level
fields are kept in the task's meta. A task without an `id` is identified by a hash of its content,
so importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardlab.annotate.records import TaskInput
from rewardlab.data.types import DataError


def _check_text(value: object, where: str, name: str) -> None:
    """A non-empty string, or a non-empty list of messages each with a non-empty role and content."""
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: {name} is empty; give it some text")
        return
    ok = (
        isinstance(value, list)
        and value
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value
        )
    )
    if not ok:
        raise DataError(
            f"{where}: {name} must be a string or a list of messages "
            '[{"role": ..., "content": ...}], got ' + type(value).__name__
        )
    for i, m in enumerate(value):
        for key in ("role", "content"):
            if not m[key].strip():
                raise DataError(f"{where}: {name}[{i}] has an empty {key!r}; give it some text")


def _check_distinct(responses: list, where: str, field_name: str) -> None:
    """Refuse two identical responses: no annotator can rank a response apart from itself."""
    seen: dict[str, int] = {}
    for i, r in enumerate(responses):
        key = json.dumps(r, sort_keys=True, ensure_ascii=False)
        if key in seen:
            raise DataError(
                f"{where}: '{field_name}'[{seen[key]}] and '{field_name}'[{i}] are identical; "
                "give distinct responses to rank"
            )
        seen[key] = i


def parse_task(row: object, where: str) -> TaskInput:
    """One task from one decoded JSONL row; `where` ("path:line") prefixes every error."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
    if "prompt" not in row:
        raise DataError(f"{where}: missing field 'prompt'")
    _check_text(row["prompt"], where, "'prompt'")
    meta = {k: v for k, v in row.items() if k not in ("prompt", "responses", "candidates", "id")}
    if "responses" in row:
        responses = row["responses"]
        field_name = "responses"
    elif "candidates" in row:
        cands = row["candidates"]
        if not isinstance(cands, list) or not all(isinstance(c, dict) and "text" in c for c in cands):
            raise DataError(f"{where}: 'candidates' must be a list of objects with a 'text' field")
        responses = [c["text"] for c in cands]
        extras = [{k: v for k, v in c.items() if k != "text"} for c in cands]
        if any(extras):
            meta["candidates"] = extras
        field_name = "candidates"
    else:
        raise DataError(f"{where}: missing field 'responses' (or 'candidates', the bon output shape)")
    if not isinstance(responses, list) or len(responses) < 2:
        raise DataError(f"{where}: '{field_name}' must be a list of at least 2 responses to rank")
    for i, r in enumerate(responses):
        _check_text(r, where, f"'{field_name}'[{i}]")
    _check_distinct(responses, where, field_name)
    ext = row.get("id")
    if ext is not None and not isinstance(ext, (str, int)):
        raise DataError(f"{where}: 'id' must be a string or an integer")
    return TaskInput(row["prompt"], responses, str(ext) if ext is not None else None, meta, where)


def read_tasks(path: str | Path) -> list[TaskInput]:
    """Every task in a JSONL file; raises DataError naming the line of the first bad row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; give the JSONL file of tasks to import")
    tasks = []
    with path.open(encoding="utf-8-sig") as f:  # a UTF-8 BOM is skipped, as the training readers do
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{where}: not valid JSON ({e.msg}); each line must be one JSON object"
                ) from None
            tasks.append(parse_task(row, where))
    if not tasks:
        raise DataError(f"{path}: no tasks in the file")
    return tasks
