"""Writing annotations out as training data, with their agreement statistics beside them.

Formats (JSON Lines, one object per line; `docs/annotate.md` shows examples):

- **rankings** (the core ranking format that `rewardlab train` reads): one row per task per
  annotator, `{"prompt", "responses", "ranking", "annotator", "id", "confidence"?, "note"?}`,
  where `ranking[i]` is the rank of `responses[i]`, 1 = best, equal ranks = tie.
- **rankings, aggregated** (`aggregate="majority"` or `"borda"`, rules in `aggregate.py`): one row
  per task, the same shape without `annotator`, plus `votes` (how many rankings were combined).
- **pairs**: one row per strictly ordered response pair, `{"prompt", "chosen", "rejected", "id",
  "annotator"}` (or `"votes"` when aggregated); ties give no pair. Chat tasks are written with all
  three fields as message lists (the conversational shape).

The agreement report (`agreement.py`) is written as JSON next to the data: `labels.jsonl` gets
`labels.agreement.json`. Files are written to a temporary name and renamed, so a crash never leaves
a half-written export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rewardlab.annotate.aggregate import RULES, aggregate, ranking_pairs
from rewardlab.annotate.agreement import AgreementReport, Judgement, agreement_report
from rewardlab.annotate.records import LabelRecord
from rewardlab.data.types import Text

FORMATS = ("rankings", "pairs")


@dataclass
class ExportSummary:
    path: str
    rows: int
    tasks: int
    labels: int
    agreement_path: str | None
    agreement: AgreementReport


def judgements(labels: Iterable[LabelRecord]) -> list[Judgement]:
    return [Judgement(lab.task_external_id, lab.annotator, list(lab.ranking)) for lab in labels]


def agreement_path_for(path: str | Path) -> Path:
    """Where the agreement JSON goes for an export at `path` (`x.jsonl` -> `x.agreement.json`)."""
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + ".agreement.json")


def _grouped(labels: list[LabelRecord]) -> Iterator[list[LabelRecord]]:
    group: list[LabelRecord] = []
    for lab in labels:
        if group and lab.task_external_id != group[0].task_external_id:
            yield group
            group = []
        group.append(lab)
    if group:
        yield group


def ranking_rows(labels: list[LabelRecord], rule: str | None = None, min_votes: int = 1) -> list[dict]:
    """Rows of the rankings format: per annotator (`rule=None`) or aggregated by `rule`."""
    rows = []
    if rule is None:
        for lab in labels:
            row = {
                "prompt": lab.prompt,
                "responses": lab.responses,
                "ranking": lab.ranking,
                "annotator": lab.annotator,
                "id": lab.task_external_id,
            }
            if lab.confidence is not None:
                row["confidence"] = lab.confidence
            if lab.note:
                row["note"] = lab.note
            rows.append(row)
        return rows
    if rule not in RULES:
        raise ValueError(f"--aggregate {rule}: use one of {', '.join(RULES)}")
    for group in _grouped(sorted(labels, key=lambda lab: lab.task_external_id)):
        if len(group) < min_votes:
            continue
        first = group[0]
        rows.append(
            {
                "prompt": first.prompt,
                "responses": first.responses,
                "ranking": aggregate([lab.ranking for lab in group], rule),
                "id": first.task_external_id,
                "votes": len(group),
            }
        )
    return rows


def _as_messages(text: Text, role: str) -> list:
    return text if isinstance(text, list) else [{"role": role, "content": text}]


def pair_rows(ranking_rows_: list[dict]) -> list[dict]:
    """Each ranking row expanded into its (chosen, rejected) pairs; per-annotator fields kept.

    When any task is a chat (a prompt or response that is a list of messages), every row is written
    with all three fields as messages (plain text becomes one user or assistant message): the
    conversational pairs shape, since one file holds one format.
    """
    rows = []
    chat = any(
        isinstance(r["prompt"], list) or any(isinstance(x, list) for x in r["responses"])
        for r in ranking_rows_
    )
    for r in ranking_rows_:
        prompt, responses = r["prompt"], r["responses"]
        if chat:  # one file holds one shape, so a single chat task turns every row into messages
            prompt = _as_messages(prompt, "user")
            responses = [_as_messages(x, "assistant") for x in responses]
        for w, loser in ranking_pairs(r["ranking"]):
            row = {"prompt": prompt, "chosen": responses[w], "rejected": responses[loser], "id": r["id"]}
            for key in ("annotator", "votes"):
                if key in r:
                    row[key] = r[key]
            rows.append(row)
    return rows


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def export_labels(
    labels: list[LabelRecord],
    path: str | Path,
    fmt: str = "rankings",
    aggregate_rule: str | None = None,
    min_votes: int = 1,
    agreement_path: str | Path | None = None,
    write_agreement: bool = True,
) -> ExportSummary:
    """Write `labels` to `path` in `fmt` ("rankings" or "pairs") and the agreement JSON beside it."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    path = Path(path)
    rows = ranking_rows(labels, aggregate_rule, min_votes)
    if fmt == "pairs":
        rows = pair_rows(rows)
    _write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    report = agreement_report(judgements(labels))
    where = None
    if write_agreement:
        where = Path(agreement_path) if agreement_path else agreement_path_for(path)
        _write_atomic(where, json.dumps(report.to_dict(), indent=2) + "\n")
    return ExportSummary(
        str(path),
        len(rows),
        len({lab.task_external_id for lab in labels}),
        len(labels),
        str(where) if where else None,
        report,
    )
