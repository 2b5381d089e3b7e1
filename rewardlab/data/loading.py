"""Load a whole preference file into groups, validating every row before anything trains on it.

`load_preferences` is the one entry point training, evaluation and the CLI use: it reads rows
(`readers`), fixes the file's format (the override, or the first row's keys), converts every row
(`formats`), and either returns all groups with a `DataSummary`, or raises one `DataError` listing
up to 20 problems with their file:line, so a user fixes them in one pass instead of twenty runs.

Fatal: unreadable rows (bad JSON or UTF-8, nesting past `readers.MAX_DEPTH`, huge integers),
missing/empty/mistyped fields, margins that are not finite or past `formats.MAX_MARGIN`, a row of
another format than the file's.
Dropped and counted (not fatal): chosen identical to rejected, all responses tied, exact duplicate
rows (the first copy is kept). `find_leakage` reports prompts shared by train and eval data;
`data_hash` fingerprints the groups for the model card.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from rewardlab.data.formats import (
    DROP_IDENTICAL_PAIR,
    EXPECTED_KEYS,
    FORMATS,
    convert_row,
    describe_formats,
    detect_format,
    why_format,
)
from rewardlab.data.readers import read_rows, shown_keys
from rewardlab.data.types import DataError, DataSummary, PreferenceGroup, Text

MAX_ERRORS = 20
"""How many problems one DataError lists; the rest are counted."""

DROP_DUPLICATE = "exact duplicate of an earlier row (first copy kept)"


def load_preferences(
    path: str,
    format: str | None = None,
    split: str | None = None,
    *,
    margin_scale: float = 1.0,
) -> tuple[list[PreferenceGroup], DataSummary]:
    """Read, validate and convert every row of `path`; return the groups and what happened.

    `path` is a .jsonl/.json/.parquet/.csv file, a `save_to_disk` folder or a cached dataset name;
    `format` overrides detection (one of `FORMATS`); `split` picks a split of a dataset;
    `margin_scale` multiplies ratings-derived margins. Raises DataError listing up to 20 problems
    (file:line and field each) when any row is bad, or when no row is left after dropping.
    """
    summary = DataSummary(path=path if split is None else f"{path}[{split}]", format=format or "")
    groups = list(iter_preferences(path, format, split, margin_scale=margin_scale, summary=summary))
    if not groups:
        raise DataError(
            f"{summary.path}: no usable rows: every row was dropped.\n" + "\n".join(summary.lines())
        )
    return groups, summary


def iter_preferences(
    path: str,
    format: str | None = None,
    split: str | None = None,
    *,
    margin_scale: float = 1.0,
    summary: DataSummary,
) -> Iterator[PreferenceGroup]:
    """`load_preferences` one row at a time: yield each kept group as soon as its row is read.

    Drops, duplicates and counts go into `summary` as they happen. Bad rows do not stop the reading:
    once the last row is read, one DataError lists up to 20 of them with their file:line, so a
    consumer that writes groups somewhere (rewardlab.data.token_cache) must discard what it wrote.
    What grows with the file is the duplicate check only: one 8-byte row hash (~65 B in a set) per row.
    """
    if format is not None and format not in FORMATS:
        raise DataError(f"unknown format '{format}'; --format takes one of {', '.join(FORMATS)}")
    problems: list[str] = []
    n_problems = 0
    seen_rows: set[int] = set()
    first_source = ""

    def problem(message: str) -> None:
        nonlocal n_problems
        n_problems += 1
        if len(problems) < MAX_ERRORS:
            problems.append(message)

    for source, row in read_rows(path, split, on_error=lambda err: problem(str(err))):
        summary.rows_read += 1
        detected = detect_format(row)
        if not summary.format:  # the first readable row fixes the file's format
            if detected is None:
                raise DataError(
                    f"{source}: cannot tell the format from keys {shown_keys(row)}; expected one of: "
                    f"{describe_formats()}. Rename the fields, or pass --format"
                )
            summary.format, first_source = detected, source
        elif format is None and detected is not None and detected != summary.format:
            expects = ", ".join(EXPECTED_KEYS[summary.format])
            problem(
                f"{source}: row looks like format '{detected}' ({why_format(row, detected)}; keys "
                f"{shown_keys(row)}) but the file's first row ({first_source}) is '{summary.format}', which "
                f"expects {expects}; one file holds one format: fix or split the file, or pass --format"
            )
            continue
        try:
            converted = convert_row(row, summary.format, source, margin_scale)
        except DataError as err:
            problem(str(err))
            continue
        if converted.group is None:
            summary.drop(converted.drop_reason or "dropped", source)
            continue
        fingerprint = int.from_bytes(hashlib.sha1(_canonical(row)).digest()[:8], "little")
        if fingerprint in seen_rows:
            summary.drop(DROP_DUPLICATE, source)
            continue
        seen_rows.add(fingerprint)
        for _ in range(converted.pairs_dropped):
            summary.drop(DROP_IDENTICAL_PAIR, source)
        if not problems:  # after the first problem nothing will train: keep checking, stop yielding
            summary.groups += 1
            summary.pairs += converted.group.num_pairs
            yield converted.group

    if problems:
        shown = "\n  ".join(problems)
        more = f"\n  ... and {n_problems - MAX_ERRORS} more" if n_problems > MAX_ERRORS else ""
        raise DataError(
            f"{summary.path}: {n_problems} problem(s) in the data, so none of it was used. "
            f"Fix these and run again:\n  {shown}{more}"
        )


def find_leakage(train: Iterable[PreferenceGroup], eval: Iterable[PreferenceGroup]) -> list[str]:
    """Prompts found in both `train` and `eval`, normalised, in the order they first occur in `eval`.

    Normalising collapses runs of whitespace and renders messages as "role: content", so
    "Hi  there" matches "Hi there\\n" and [{"role": "user", "content": "Hi"}] matches "user: Hi";
    an HH transcript prompt ("\\n\\nHuman: Hi\\n\\nAssistant:") does not match those messages.
    """
    seen = {normalize_prompt(g.prompt) for g in train}
    leaked: dict[str, None] = {}
    for group in eval:
        prompt = normalize_prompt(group.prompt)
        if prompt in seen:
            leaked[prompt] = None
    return list(leaked)


def normalize_prompt(prompt: Text) -> str:
    """A prompt as one whitespace-collapsed string; messages become "role: content" joined by spaces."""
    if isinstance(prompt, list):
        prompt = " ".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in prompt)
    return " ".join(prompt.split())


def data_hash(groups: Iterable[PreferenceGroup]) -> str:
    """sha256 (hex) of the groups' canonical JSON, in order; stable across runs, machines and paths.

    Covers prompt, responses, pairs, margins, ranks, subset and meta; not `source`, so moving or
    renaming the file keeps the hash. Reordering the groups changes it (the order is what trained).
    """
    digest = hashlib.sha256()
    for group in groups:
        update_data_hash(digest, group)
    return digest.hexdigest()


def update_data_hash(digest: Any, group: PreferenceGroup) -> None:
    """Add one group to a running `data_hash` (a hashlib.sha256 object), for data read as a stream."""
    record = {
        "prompt": group.prompt,
        "responses": group.responses,
        "pairs": [list(p) for p in group.pairs],
        "margins": group.margins,
        "ranks": group.ranks,
        "subset": group.subset,
        "meta": group.meta,
    }
    digest.update(_canonical(record))
    digest.update(b"\n")


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()
