"""The input file as curation sees it: its groups (validated exactly as training reads them) beside its
raw rows, so a flag names the row a user opens and the cleaned file is the input minus rows, unchanged.

The cleaned file keeps the input's container and format: JSON Lines lines are copied byte for byte,
a JSON document keeps its shape (a list, or the object key that held the list), CSV and parquet keep
their columns and cell types (pyarrow `take` on the original table). A `save_to_disk` folder or a cached
dataset name is written as JSON Lines (there is no file to keep the shape of; the summary says so).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.data.formats import convert_row
from rewardlab.data.loading import DROP_DUPLICATE, load_preferences
from rewardlab.data.readers import FILE_SUFFIXES, read_rows
from rewardlab.data.types import DataSummary, PreferenceGroup


@dataclass
class CurateData:
    """One preference file: groups by location, raw rows by location, in file order."""

    path: str
    format: str
    groups: list[PreferenceGroup]
    summary: DataSummary
    raw: dict[str, dict]
    """Location -> the row as read (every readable row, usable or not)."""
    order: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """jsonl, json, csv, parquet (a file), or dataset (a folder or cached name: written as JSONL)."""
        if os.path.isfile(self.path):
            return FILE_SUFFIXES.get(os.path.splitext(self.path)[1].lower(), "jsonl")
        return "dataset"

    def unusable(self) -> dict[str, str]:
        """Location -> why the loader dropped it (identical sides, all tied, an exact duplicate row)."""
        used = {g.source for g in self.groups}
        out = {}
        for loc in self.order:
            if loc in used:
                continue
            converted = convert_row(self.raw[loc], self.format, loc)
            out[loc] = converted.drop_reason or DROP_DUPLICATE
        return out

    def cleaned_name(self) -> str:
        if self.kind == "dataset":
            return "cleaned.jsonl"
        name = Path(self.path).name
        stem, suffix = os.path.splitext(name)
        return f"{stem}.cleaned{suffix}"

    def write(self, keep: list[str], out: str | Path) -> Path:
        """Write the rows at `keep` (locations, in file order) to `out` in the input's container."""
        out = Path(out)
        keep_set = set(keep)
        kept = [loc for loc in self.order if loc in keep_set]
        kind = self.kind
        tmp = out.with_name(out.name + ".tmp")
        if kind == "jsonl":
            lines = {int(loc.rsplit(":", 1)[1]) for loc in kept}
            with open(self.path, "rb") as src, open(tmp, "wb") as dst:
                for lineno, raw in enumerate(src, start=1):
                    if lineno in lines:
                        dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
        elif kind == "json":
            key = _json_key(kept[0] if kept else (self.order[0] if self.order else ""))
            rows = [self.raw[loc] for loc in kept]
            document: object = {key: rows} if key else rows
            tmp.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        elif kind in ("csv", "parquet"):
            _write_table(self.path, kind, [int(loc.rsplit("row ", 1)[1]) for loc in kept], tmp)
        else:
            write_jsonl([self.raw[loc] for loc in kept], tmp)
        os.replace(tmp, out)
        return out


def load_data(path: str, format: str | None = None) -> CurateData:
    """Validate `path` as training does (one DataError listing file:line problems), then keep its raw rows."""
    groups, summary = load_preferences(path, format)
    raw: dict[str, dict] = {}
    order: list[str] = []
    for loc, row in read_rows(path):
        raw[loc] = row
        order.append(loc)
    return CurateData(path, summary.format, groups, summary, raw, order)


def write_jsonl(rows: list[dict], path: str | Path) -> None:
    """Rows as JSON Lines (the fold models' training files; any container's rows are JSON objects)."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def _json_key(loc: str) -> str:
    """ "path:KEY[i]" -> KEY ("" for a top-level list)."""
    tail = loc.rsplit(":", 1)[-1]
    return tail[: tail.rfind("[")] if "[" in tail else ""


def _write_table(path: str, kind: str, indices: list[int], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if kind == "parquet":
        table = pq.read_table(path, use_threads=False)
        pq.write_table(table.take(pa.array(indices, type=pa.int64())), out)
        return
    options = pcsv.ReadOptions(use_threads=False)
    with pcsv.open_csv(path, read_options=options) as head:
        names = head.schema.names
    table = pcsv.read_csv(
        path,
        read_options=options,
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
        ),
    )
    pcsv.write_csv(table.take(pa.array(indices, type=pa.int64())), out)
