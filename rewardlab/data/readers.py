"""Read raw rows from the places preference data lives, each tagged with where it came from.

This module knows about containers (JSONL, JSON, parquet, CSV, `datasets` folders and cached
Hugging Face datasets), not about preference formats: it yields `(location, row dict)` and leaves
the meaning of the keys to `rewardlab.data.formats`. Every location is something a user can open:

    JSONL                      "path:LINE"        (1-based line number; blank lines are skipped)
    JSON list                  "path:[i]"         (0-based index; "path:KEY[i]" for {"KEY": [...]})
    parquet, CSV, datasets     "path:row N"       (0-based, as in dataset[N]; a CSV row N sits on
                                                   line N + 2 when no cell spans lines)
    DatasetDict / cached name  "name[split]:row N"

Nothing is ever downloaded: a name that is neither a file nor a folder is looked up in the local
Hugging Face cache with offline mode forced on for that call.

Hostile bytes end in a `DataError` naming the line, never another exception: JSON nested deeper than
`MAX_DEPTH` levels, integers past Python's digit limit and invalid UTF-8 are refused where they
stand. CSV has no types, so every CSV cell is read as text (an answer column "4" stays the string
"4"), except the numeric field `margin`, parsed where it holds a number; pyarrow reads CSV and
parquet on the calling thread (its reader threads could abort the process, exit 134, on the way out
of an error when torch is loaded too).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator

from rewardlab.data.types import DataError

Row = tuple[str, dict]
OnError = Callable[[DataError], None]

MAX_DEPTH = 100
"""Deepest nesting of lists and objects accepted in one row (a preference row needs about 4)."""

NUMERIC_CSV_COLUMNS = ("margin",)
"""CSV columns read as numbers; every other CSV cell is text (`rewardlab.data.formats` types the rest)."""

FILE_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_WHAT_WE_READ = "a .jsonl/.json/.parquet/.csv file, a folder written by datasets' save_to_disk"


def read_rows(path_or_name: str, split: str | None = None, on_error: OnError | None = None) -> Iterator[Row]:
    """Yield `(location, row)` for every row of a file, a `save_to_disk` folder or a cached dataset.

    `split` picks one split of a DatasetDict (folder or cached name), or one list of a JSON object
    holding several; a plain file is a single "train" split. Row-level problems (bad JSON, a row
    that is not an object, non-UTF-8 bytes) raise `DataError` naming the line, unless `on_error` is
    given: then each is passed to it and reading goes on, so a caller can report many at once.
    Problems with the whole source (missing, unreadable, empty) always raise.
    """
    seen = 0
    failed = 0

    def count_error(err: DataError) -> None:
        nonlocal failed
        failed += 1
        if on_error is None:
            raise err
        on_error(err)

    for row in _rows(path_or_name, split, count_error):
        seen += 1
        yield row
    if seen == 0 and failed == 0:
        raise DataError(f"no rows in {path_or_name}: the file or dataset is empty; point at a file with data")


def _rows(source: str, split: str | None, on_error: OnError) -> Iterator[Row]:
    if os.path.isdir(source):
        return _dataset_folder_rows(source, split)
    suffix = os.path.splitext(source)[1].lower()
    if os.path.isfile(source):
        kind = FILE_SUFFIXES.get(suffix)
        if kind is None:
            raise DataError(
                f"{source}: unsupported file type '{suffix or '(none)'}'; rewardlab reads {_WHAT_WE_READ}, "
                "or a cached Hugging Face dataset name"
            )
        if kind != "json" and split not in (None, "train"):  # a JSON object may name several lists
            raise DataError(
                f"{source}: a single file has no split '{split}'; drop --split, or pass the file "
                "that holds that split"
            )
        reader = {"jsonl": _jsonl_rows, "json": _json_rows, "parquet": _parquet_rows, "csv": _csv_rows}[kind]
        return reader(source, split, on_error)
    looks_like_path = suffix in FILE_SUFFIXES or source.startswith(("/", ".", "~")) or source.count("/") > 1
    if looks_like_path:  # hub names are "name" or "org/name"
        raise DataError(f"{source}: no such file or folder; check the path (rewardlab reads {_WHAT_WE_READ})")
    return _cached_dataset_rows(source, split)


# --- JSON Lines and JSON --------------------------------------------------------------------------


def _jsonl_rows(path: str, split: str | None, on_error: OnError) -> Iterator[Row]:
    with open(path, "rb") as f:
        yield from _json_lines(path, f, on_error)


def _json_lines(path: str, lines: Iterable[bytes], on_error: OnError) -> Iterator[Row]:
    for lineno, raw in enumerate(lines, start=1):
        loc = f"{path}:{lineno}"
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # UTF-8 byte-order mark, as written by some Windows editors
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            on_error(_utf8_error(loc, raw, e))
            continue
        if not text.strip():
            continue
        try:
            row = parse_json(text.rstrip("\r\n"), loc)  # the newline is not part of the row's columns
        except DataError as e:
            on_error(e)
            continue
        if not isinstance(row, dict):
            on_error(DataError(f"{loc}: a row must be a JSON object {{...}}, got {json_type(row)}"))
            continue
        yield loc, row


def parse_json(text: str, loc: str) -> object:
    """`json.loads` of one JSON Lines row, with every failure a DataError at `loc` ("path:LINE").

    Beyond JSON syntax: nesting deeper than `MAX_DEPTH` (Python's parser would raise RecursionError,
    and deep rows break every later step that walks them) and integers longer than Python's digit
    limit (a ValueError). Numbers too large for a float parse as infinity; the formats refuse those.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{loc}: invalid JSON: {e.msg} at column {e.colno}; each line must be one JSON object"
        ) from None
    except RecursionError:
        raise _too_deep(loc, text) from None
    except ValueError as e:  # int digits past sys.get_int_max_str_digits()
        raise _too_long(loc, text, e) from None
    if not _within_depth(value, MAX_DEPTH):
        raise _too_deep(loc, text)
    return value


def _within_depth(value: object, limit: int) -> bool:
    """Whether lists/objects in `value` nest at most `limit` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _too_deep(loc: str, text: str, document: bool = False) -> DataError:
    """The error for nesting past MAX_DEPTH levels, at the first bracket past the limit.

    A JSON document (`document`, whose own list adds one level) gets "path:LINE"; a JSON Lines row's
    `loc` already names its line. Both get the column.
    """
    limit = MAX_DEPTH + 1 if document else MAX_DEPTH
    depth, line, column, in_string, escaped = 0, 1, 0, False, False
    for char in text:
        column += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                break
        elif char in "]}":
            depth -= 1
        elif char == "\n":
            line, column = line + 1, 0
    where = f"{loc}:{line}" if document else loc
    return DataError(
        f"{where}: JSON nested more than {MAX_DEPTH} levels deep (at column {column}); a preference row "
        "needs a few levels"
    )


def _too_long(loc: str, text: str, e: ValueError, document: bool = False) -> DataError:
    """The error for an integer longer than Python reads (`sys.get_int_max_str_digits`), at its line."""
    import re

    limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()  # Python >= 3.10.7
    match = re.search(rf"\d{{{limit + 1},}}", text)
    line = text.count("\n", 0, match.start()) + 1 if match else 1
    where = f"{loc}:{line}" if document else loc
    return DataError(f"{where}: a number too long to read ({e}); write it as a float or a string")


def _json_rows(path: str, split: str | None, on_error: OnError) -> Iterator[Row]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _first_utf8_error(path, data) from None
    if not text.strip():
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # several values one per line: this ".json" file is JSON Lines
            yield from _json_lines(path, data.splitlines(keepends=True), on_error)
            return
        raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise _too_deep(path, text, document=True) from None
    except ValueError as e:  # int digits past sys.get_int_max_str_digits()
        raise _too_long(path, text, e, document=True) from None
    if not _within_depth(doc, MAX_DEPTH + 1):  # the document's own list is one level more than a row's
        raise _too_deep(path, text, document=True)
    key, items = _rows_of_document(path, doc, split)
    for i, row in enumerate(items):
        loc = f"{path}:{key}[{i}]"
        if not isinstance(row, dict):
            on_error(DataError(f"{loc}: a row must be a JSON object {{...}}, got {json_type(row)}"))
            continue
        yield loc, row


def _rows_of_document(path: str, doc: object, split: str | None) -> tuple[str, list]:
    """The list of rows in a JSON document: the document itself, or one list inside an object."""
    if isinstance(doc, list):
        if split not in (None, "train"):
            raise DataError(f"{path}: holds one list of rows, so --split '{split}' does not apply; drop it")
        return "", doc
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a list of row objects, got a JSON {json_type(doc)}")
    if split is not None:
        if not isinstance(doc.get(split), list):
            lists = [k for k, v in doc.items() if isinstance(v, list)]
            raise DataError(
                f"{path}: no list named '{split}' at the top level (lists: {', '.join(lists) or 'none'})"
            )
        return split, doc[split]
    candidates = [k for k, v in doc.items() if _is_row_list(v)]
    if len(candidates) == 1:
        return candidates[0], doc[candidates[0]]
    if not candidates:
        raise DataError(
            f"{path}: a JSON object with no list of row objects; write a list [{{...}}, ...] or an object "
            'holding one, like {"data": [{...}, ...]}'
        )
    raise DataError(
        f"{path}: the top-level object holds several lists of objects ({', '.join(candidates)}); "
        "pass --split NAME to pick one"
    )


def _is_row_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, dict) for x in value)


def _first_utf8_error(path: str, data: bytes) -> DataError:
    """The error for the first line of `data` that is not valid UTF-8."""
    for lineno, raw in enumerate(data.splitlines(), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return _utf8_error(f"{path}:{lineno}", raw, e)
    return DataError(f"{path}: not valid UTF-8; re-save the file as UTF-8")


def _utf8_error(loc: str, raw: bytes, e: UnicodeDecodeError) -> DataError:
    column = len(raw[: e.start].decode("utf-8", errors="replace")) + 1
    return DataError(
        f"{loc}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {column}); re-save the file as UTF-8, "
        "e.g. `iconv -f latin1 -t utf-8 IN > OUT`"
    )


def shown_keys(row: dict) -> str:
    """A row's keys for an error message, comma-separated; a key holding a line break or other control
    character is shown escaped, so one problem stays on one line of the message."""
    shown = [key if str(key).isprintable() else json.dumps(str(key))[1:-1] for key in map(str, row)]
    return ", ".join(shown) or "(none)"


def json_type(value: object) -> str:
    """The JSON name of a Python value's type, for error messages ("string", "list", "object"...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --- parquet and CSV (pyarrow) ----------------------------------------------------------------------


def _parquet_rows(path: str, split: str | None, on_error: OnError) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024, use_threads=False)
        index = 0
        for batch in batches:
            for row in batch.to_pylist():
                yield f"{path}:row {index}", row
                index += 1
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot read as parquet: {e}") from None


def _csv_rows(path: str, split: str | None, on_error: OnError) -> Iterator[Row]:
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(path, "rb") as f:
        data = f.read()
    if not data.strip():
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise _first_utf8_error(path, data) from None
    options = pcsv.ReadOptions(use_threads=False)
    try:
        with pcsv.open_csv(io.BytesIO(data), read_options=options) as head:  # the header, as pyarrow reads it
            names = head.schema.names
        table = pcsv.read_csv(
            io.BytesIO(data),
            read_options=options,
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),  # CSV has no types: text stays text
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowException as e:
        raise DataError(f"{path}: cannot read as CSV: {e}") from None
    for index, row in enumerate(table.to_pylist()):
        for name in NUMERIC_CSV_COLUMNS:
            if name in row:
                row[name] = _csv_number(row[name])
        yield f"{path}:row {index}", row


def _csv_number(cell: str | None) -> float | str | None:
    """A numeric CSV cell as a float; an empty cell as None (absent); anything else as the text itself,
    so the format's check reports it with its row."""
    if cell is None or not cell.strip():
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


# --- datasets: save_to_disk folders and cached hub names ------------------------------------------


def _dataset_folder_rows(path: str, split: str | None) -> Iterator[Row]:
    import datasets

    try:
        loaded = datasets.load_from_disk(path)
    except FileNotFoundError:
        raise DataError(
            f"{path}: a folder, but not one written by datasets' save_to_disk (no dataset_info.json or "
            "dataset_dict.json); pass one of the data files inside it instead"
        ) from None
    return _dataset_rows(path, loaded, split)


def _cached_dataset_rows(name: str, split: str | None) -> Iterator[Row]:
    import datasets

    try:
        with _hub_offline():
            loaded = datasets.load_dataset(name, split=split)
    except ValueError as e:  # an unknown split of a cached dataset
        raise DataError(f"{name}: {e}; pass --split with one of the dataset's splits") from None
    except Exception as e:  # noqa: BLE001 - datasets raises many types for "not here"; all mean the same
        reason = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        raise DataError(
            f"{name}: no such file or folder, and no dataset of that name in the Hugging Face cache "
            f"({datasets.config.HF_DATASETS_CACHE}); rewardlab never downloads at run time. Pass "
            f"{_WHAT_WE_READ}, or cache the dataset once while online: "
            f"python -c \"import datasets; datasets.load_dataset('{name}')\" [{reason}]"
        ) from None
    if split is not None:  # load_dataset already picked it
        return _dataset_rows(f"{name}[{split}]", loaded, None)
    return _dataset_rows(name, loaded, None)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Force Hugging Face offline mode for one call (HF_HUB_OFFLINE is read once at import)."""
    from unittest import mock

    import datasets
    import huggingface_hub

    with (
        mock.patch.object(datasets.config, "HF_HUB_OFFLINE", True),
        mock.patch.object(datasets.config, "HF_DATASETS_OFFLINE", True),
        mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True),
    ):
        yield


def _dataset_rows(where: str, loaded: object, split: str | None) -> Iterator[Row]:
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        if split is None:
            if len(names) != 1:
                raise DataError(f"{where}: has splits {', '.join(names)}; pass --split to pick one")
            split = names[0]
        if split not in loaded:
            raise DataError(f"{where}: no split '{split}' (splits: {', '.join(names)}); pass one to --split")
        loaded = loaded[split]
        where = f"{where}[{split}]"
    elif split not in (None, "train") and split != getattr(loaded, "split", None):
        raise DataError(f"{where}: holds a single split, so --split '{split}' does not apply; drop it")
    for index, row in enumerate(loaded):
        yield f"{where}:row {index}", row
