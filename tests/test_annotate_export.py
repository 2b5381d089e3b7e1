"""Task import and label export: the JSONL shapes, aggregation, agreement beside the data, and that
the export loads with `load_preferences` and trains with `rewardlab train` unchanged."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rewardlab.annotate.export import agreement_path_for, export_labels, pair_rows, ranking_rows
from rewardlab.annotate.imports import read_tasks
from rewardlab.annotate.records import LabelRecord
from rewardlab.data.types import DataError

CHAT = [{"role": "user", "content": "Say hi"}]


def record(task: str, annotator: str, ranking: list[int], prompt: object = None, **kw: object) -> LabelRecord:
    k = len(ranking)
    responses = ["hi", "hello there"] if prompt == CHAT else [f"{task} answer {i}" for i in range(k)]
    fields = dict(confidence=None, note=None, revision=1, submitted_at=datetime.now(timezone.utc))
    fields.update(kw)
    return LabelRecord(task, prompt or f"question {task}", responses, annotator, ranking, **fields)


# q0: alice [1,2,3], bob [2,1,3], carol [1,3,2] (Borda and majority both give [1,2,3]).
# q1: a chat, alice only.
LABELS = [
    record("q0", "alice", [1, 2, 3], confidence=5, note="easy"),
    record("q0", "bob", [2, 1, 3]),
    record("q0", "carol", [1, 3, 2]),
    record("q1", "alice", [2, 1], CHAT),
]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_read_tasks_accepts_both_shapes(tmp_path: Path) -> None:
    f = tmp_path / "tasks.jsonl"
    rows = [
        {"id": "a", "prompt": "p", "responses": ["x", "y"], "source": "gen-1"},
        {"prompt": CHAT, "candidates": [{"text": "hi", "score": 0.1}, {"text": CHAT, "score": 0.7}]},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    first, second = read_tasks(f)
    assert (first.external_id, first.responses, first.meta) == ("a", ["x", "y"], {"source": "gen-1"})
    assert second.external_id is None and second.responses == ["hi", CHAT]
    assert second.meta == {"candidates": [{"score": 0.1}, {"score": 0.7}]}
    assert second.source == f"{f}:2"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"responses": ["a", "b"]}', "missing field 'prompt'"),
        ('{"prompt": "p", "responses": ["a"]}', "at least 2 responses"),
        ('{"prompt": "p"}', "missing field 'responses'"),
        ('{"prompt": "p", "candidates": [{"score": 1}, {"text": "b"}]}', "'text' field"),
        ('{"prompt": [{"role": "user"}], "responses": ["a", "b"]}', "'prompt' must be a string or a list"),
        ('{"prompt": "p", "responses": ["a", "  "]}', "'responses'[1] is empty"),
        ('["p", "a", "b"]', "must be a JSON object"),
    ],
)
def test_read_tasks_names_the_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"prompt": "ok", "responses": ["a", "b"]}\n' + line + "\n")
    with pytest.raises(DataError, match=re.escape(message)) as err:
        read_tasks(f)
    assert f"{f}:2:" in str(err.value)


def test_ranking_rows_per_annotator() -> None:
    rows = ranking_rows(LABELS)
    assert len(rows) == 4
    assert rows[0] == {
        "prompt": "question q0",
        "responses": ["q0 answer 0", "q0 answer 1", "q0 answer 2"],
        "ranking": [1, 2, 3],
        "annotator": "alice",
        "id": "q0",
        "confidence": 5,
        "note": "easy",
    }
    assert "confidence" not in rows[1] and rows[3]["prompt"] == CHAT


def test_aggregated_rows() -> None:
    borda = ranking_rows(LABELS, "borda")
    assert [(r["id"], r["ranking"], r["votes"]) for r in borda] == [("q0", [1, 2, 3], 3), ("q1", [2, 1], 1)]
    assert all("annotator" not in r for r in borda)
    assert [r["id"] for r in ranking_rows(LABELS, "majority", min_votes=2)] == ["q0"]
    with pytest.raises(ValueError, match="--aggregate"):
        ranking_rows(LABELS, "mean")


def test_pair_rows_expand_rankings_and_keep_one_shape() -> None:
    plain = pair_rows(ranking_rows(LABELS[:3]))
    assert len(plain) == 9  # 3 annotators x C(3,2)
    assert plain[0] == {
        "prompt": "question q0",
        "chosen": "q0 answer 0",
        "rejected": "q0 answer 1",
        "id": "q0",
        "annotator": "alice",
    }
    mixed = pair_rows(ranking_rows(LABELS))
    assert len(mixed) == 10
    assert mixed[0]["prompt"] == [{"role": "user", "content": "question q0"}]
    assert mixed[0]["chosen"] == [{"role": "assistant", "content": "q0 answer 0"}]
    assert mixed[-1] == {
        "prompt": CHAT,
        "chosen": [{"role": "assistant", "content": "hello there"}],
        "rejected": [{"role": "assistant", "content": "hi"}],
        "id": "q1",
        "annotator": "alice",
    }


def test_export_writes_data_and_agreement_beside(tmp_path: Path) -> None:
    """q0 by three annotators: alice-bob agree on 2 of 3 response pairs, alice-carol 2, bob-carol 1: 5/9."""
    out = tmp_path / "labels.jsonl"
    summary = export_labels(LABELS, out)
    assert summary.rows == 4 and summary.tasks == 2 and summary.labels == 4
    assert agreement_path_for(out) == tmp_path / "labels.agreement.json"
    report = json.loads((tmp_path / "labels.agreement.json").read_text())
    assert report["pairwise_agreement"] == pytest.approx(5 / 9) == report["noise_ceiling"]
    assert report["overlapping_tasks"] == 1 and report["comparisons"] == 9
    assert {a["annotator"]: a["comparisons"] for a in report["per_annotator"]} == {
        "alice": 6,
        "bob": 6,
        "carol": 6,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "labels.agreement.json",
        "labels.jsonl",
    ]  # no temp files
    export_labels(
        LABELS, tmp_path / "pairs.jsonl", "pairs", "majority", agreement_path=tmp_path / "agree.json"
    )
    assert len(lines(tmp_path / "pairs.jsonl")) == 4 and (tmp_path / "agree.json").exists()


def _load_preferences():
    try:
        from rewardlab.data.loading import load_preferences
    except ImportError:
        pytest.skip("rewardlab.data.loading is not there yet")
    return load_preferences


@pytest.mark.parametrize(
    ("fmt", "rule", "groups", "pairs"),
    [
        ("rankings", None, 4, 10),
        ("rankings", "borda", 2, 4),
        ("pairs", None, 10, 10),
        ("pairs", "majority", 4, 4),
    ],
)
def test_export_loads_with_load_preferences(
    tmp_path: Path, fmt: str, rule: str | None, groups: int, pairs: int
) -> None:
    load_preferences = _load_preferences()
    out = tmp_path / f"{fmt}.jsonl"
    export_labels(LABELS, out, fmt, rule)
    loaded, summary = load_preferences(str(out))
    assert summary.format == ("ranking" if fmt == "rankings" else "conversational")
    assert (len(loaded), sum(g.num_pairs for g in loaded)) == (groups, pairs)
    if fmt == "rankings" and rule is None:
        bob = next(g for g in loaded if g.meta.get("annotator") == "bob")
        assert sorted(bob.pairs) == [(0, 2), (1, 0), (1, 2)] and bob.meta["id"] == "q0"


@pytest.mark.slow
def test_a_small_annotated_project_trains_with_rewardlab_train(
    tiny_backbone, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The export of a project annotated through the store trains with the unchanged `rewardlab train` CLI.

    About 15 s alone (torch, a tiny backbone, 3 steps), so it runs with `-m slow` (`make test-slow`);
    by default the load tests above check the same files against `load_preferences`.
    """
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("trains a tiny model: run with -m slow (make test-slow)")
    _load_preferences()
    cli = pytest.importorskip("rewardlab.cli")
    from rewardlab.annotate.records import TaskInput
    from rewardlab.annotate.store import Store

    store = Store(str(tmp_path / "project.db"))
    store.update_settings(overlap=2)
    store.add_tasks(
        [
            TaskInput(
                f"help me with the recipe number {i}",
                ["sorry no", "thanks here is good help with the recipe", "cake"],
                f"q{i}",
            )
            for i in range(6)
        ]
    )
    for name in ("alice", "bob"):
        uid = store.add_user(name, "pw").id
        while (view := store.next_assignment(uid)) is not None:
            # Both prefer the helpful answer, then the short one, then the refusal.
            by_response = {"thanks here is good help with the recipe": 1, "cake": 2, "sorry no": 3}
            store.submit(uid, view.id, [by_response[r] for r in view.responses])
    export_labels(store.labels(), tmp_path / "labels.jsonl")
    assert len(lines(tmp_path / "labels.jsonl")) == 12
    out = tmp_path / "rm"
    rc = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "labels.jsonl"),
            "--backbone",
            tiny_backbone("bert"),
            "--output-dir",
            str(out),
            "--max-length",
            "32",
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--eval-fraction",
            "0",
            "--mixed-precision",
            "no",
            "--no-length-grouped",
        ]
    )
    assert rc == 0
    card = json.loads((out / "rewardlab.json").read_text())
    assert len(card["data_hash"]) == 64
    assert (out / "model.safetensors").exists()
