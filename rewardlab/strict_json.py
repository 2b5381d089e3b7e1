"""Strict JSON for files other tools read (metrics.jsonl, train_result.json, curate summaries): Python's
json writes inf/nan as the tokens ``Infinity``/``NaN``, which are not JSON, so they become null here."""

from __future__ import annotations

import json
import math
from typing import Any


def finite_json(value: Any) -> Any:
    """`value` with every non-finite float (inf, -inf, nan) replaced by None, recursively.

    json.dumps writes those as the tokens `Infinity` and `NaN`, which are not JSON: strict readers
    (jq, JavaScript, pandas with some engines) reject the whole file. null says "no number" honestly.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def json_line(record: dict[str, Any]) -> str:
    """One line of strict JSON for a metrics log (metrics.jsonl): non-finite numbers become null."""
    return json.dumps(finite_json(record), allow_nan=False)
