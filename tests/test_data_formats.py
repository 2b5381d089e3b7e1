"""Reading, format conversion and validation of preference data (rewardlab/data/{readers,formats,loading}).

Every expected group, pair and margin below is derived by hand from the fixture rows written next
to it; no fixture comes from real data except the last test, which reads the shared HH file when
this machine has it and skips otherwise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rewardlab.data import DataError, PreferenceGroup, data_hash, find_leakage, load_preferences
from rewardlab.data.formats import (
    DROP_ALL_TIED,
    DROP_IDENTICAL,
    DROP_IDENTICAL_PAIR,
    convert_row,
    detect_format,
    split_transcript,
)
from rewardlab.data.loading import DROP_DUPLICATE
from rewardlab.data.readers import read_rows

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def load_one(tmp_path: Path, row: dict, **kwargs) -> PreferenceGroup:
    groups, _ = load_preferences(write_jsonl(tmp_path / "one.jsonl", [row]), **kwargs)
    assert len(groups) == 1
    return groups[0]


def problem(tmp_path: Path, rows: list, **kwargs) -> str:
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_preferences(path, **kwargs)
    return str(info.value)


# --- readers --------------------------------------------------------------------------------------


def test_jsonl_locations_count_lines_from_one_and_skip_blank_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert list(read_rows(str(path))) == [(f"{path}:1", {"a": 1}), (f"{path}:4", {"a": 2})]


def test_json_list_object_with_a_list_and_json_lines_named_json(tmp_path):
    as_list = tmp_path / "list.json"
    as_list.write_text('[{"a": 1}, {"a": 2}]', encoding="utf-8")
    assert list(read_rows(str(as_list))) == [(f"{as_list}:[0]", {"a": 1}), (f"{as_list}:[1]", {"a": 2})]

    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text('{"version": 2, "data": [{"a": 1}]}', encoding="utf-8")
    assert list(read_rows(str(wrapped))) == [(f"{wrapped}:data[0]", {"a": 1})]

    two_lists = tmp_path / "two.json"
    two_lists.write_text('{"train": [{"a": 1}], "test": [{"a": 2}]}', encoding="utf-8")
    with pytest.raises(DataError, match="several lists of objects \\(train, test\\); pass --split"):
        list(read_rows(str(two_lists)))
    assert list(read_rows(str(two_lists), split="test")) == [(f"{two_lists}:test[0]", {"a": 2})]

    lines = tmp_path / "lines.json"
    lines.write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    assert [loc for loc, _ in read_rows(str(lines))] == [f"{lines}:1", f"{lines}:2"]


def test_parquet_and_csv_rows_are_numbered_from_zero_with_types_kept(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"prompt": "p1", "chosen": "a", "rejected": "b", "margin": 0.5},
        {"prompt": "p2", "chosen": "c", "rejected": "d", "margin": 1.0},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    assert list(read_rows(str(tmp_path / "d.parquet"))) == [
        (f"{tmp_path / 'd.parquet'}:row 0", rows[0]),
        (f"{tmp_path / 'd.parquet'}:row 1", rows[1]),
    ]

    csv = tmp_path / "d.csv"
    csv.write_text('prompt,chosen,rejected,margin\np1,a,b,0.5\n"p, 2",c,d,1\n', encoding="utf-8")
    read = list(read_rows(str(csv)))
    assert read[1] == (f"{csv}:row 1", {"prompt": "p, 2", "chosen": "c", "rejected": "d", "margin": 1.0})

    groups, summary = load_preferences(str(csv))
    assert summary.format == "pairs" and [g.margins for g in groups] == [[0.5], [1.0]]


def test_save_to_disk_folders_and_their_splits(tmp_path):
    import datasets

    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))
    assert list(read_rows(str(tmp_path / "one"))) == [(f"{tmp_path / 'one'}:row 0", rows[0])]

    test_rows = [{"prompt": "q", "chosen": "c", "rejected": "d"}]
    datasets.DatasetDict(
        train=datasets.Dataset.from_list(rows), test=datasets.Dataset.from_list(test_rows)
    ).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match="has splits train, test; pass --split"):
        list(read_rows(str(tmp_path / "dd")))
    assert list(read_rows(str(tmp_path / "dd"), split="test")) == [
        (f"{tmp_path / 'dd'}[test]:row 0", test_rows[0])
    ]
    with pytest.raises(DataError, match="no split 'dev' \\(splits: train, test\\)"):
        list(read_rows(str(tmp_path / "dd"), split="dev"))

    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not one written by datasets' save_to_disk"):
        list(read_rows(str(tmp_path / "plain")))


def test_cached_dataset_names_load_offline_and_missing_ones_fail_clearly(tmp_path, monkeypatch):
    import shutil

    import datasets

    # Build a cache entry the way datasets lays out "someone/tiny" after one online load_dataset call.
    data = write_jsonl(tmp_path / "src.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    datasets.load_dataset("json", data_files={"train": data}, cache_dir=str(tmp_path / "build"))
    built = next((tmp_path / "build" / "json").glob("*/*/*[!k]"))  # skip the .lock files
    cached = tmp_path / "cache" / "someone___tiny" / "default" / "0.0.0" / "abc"
    cached.mkdir(parents=True)
    shutil.copy(built / "json-train.arrow", cached / "tiny-train.arrow")
    info = json.loads((built / "dataset_info.json").read_text())
    (cached / "dataset_info.json").write_text(json.dumps({**info, "config_name": "default"}))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))

    assert list(read_rows("someone/tiny", split="train")) == [
        ("someone/tiny[train]:row 0", {"prompt": "p", "chosen": "a", "rejected": "b"})
    ]
    with pytest.raises(
        DataError, match="someone/absent: no such file or folder, and no dataset of that name"
    ):
        list(read_rows("someone/absent"))
    with pytest.raises(DataError, match="no such file or folder; check the path"):
        list(read_rows(str(tmp_path / "missing.jsonl")))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b'{"a": 1}\n{"a": 2,}\n',
            ":2: invalid JSON: Expecting property name enclosed in double quotes at column 9",
        ),
        (b'{"a": 1}\n[1, 2]\n', ":2: a row must be a JSON object {...}, got list"),
        (b'{"a": 1}\n{"a": "caf\xe9"}\n', ":2: not valid UTF-8 (byte 0xe9 at column 11)"),
    ],
)
def test_unreadable_rows_name_the_line(tmp_path, content, expected):
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        list(read_rows(str(path)))
    assert str(info.value).startswith(f"{path}{expected}")


def test_unreadable_json_documents_name_the_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'[\n {"a": 1},\n {"a": "\xff"}\n]')
    with pytest.raises(DataError, match=f"^{path}:3: not valid UTF-8"):
        list(read_rows(str(path)))
    path.write_bytes(b'[\n {"a": 1},\n {"a": }\n]')
    with pytest.raises(DataError, match=f"^{path}:3: invalid JSON: Expecting value"):
        list(read_rows(str(path)))


@pytest.mark.parametrize(
    "name,content", [("e.jsonl", ""), ("b.jsonl", "\n \n"), ("e.json", "[]"), ("e.csv", "")]
)
def test_empty_sources(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=f"no rows in {tmp_path / name}"):
        list(read_rows(str(tmp_path / name)))


def test_unsupported_suffix_and_split_on_a_file(tmp_path):
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        list(read_rows(str(tmp_path / "d.txt")))
    path = write_jsonl(tmp_path / "d.jsonl", [{"a": 1}])
    with pytest.raises(DataError, match="a single file has no split 'test'"):
        list(read_rows(path, split="test"))


def test_on_error_collects_every_bad_line_and_reading_goes_on(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"a": 1}\nnot json\n"text"\n{"a": 4}\n')
    errors: list[DataError] = []
    rows = list(read_rows(str(path), on_error=errors.append))
    assert [loc for loc, _ in rows] == [f"{path}:1", f"{path}:4"]
    assert [str(e).split(": ")[0] for e in errors] == [f"{path}:2", f"{path}:3"]


# --- formats: detection and conversion ------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "pairs"),
        ({"chosen": "\n\nHuman: x\n\nAssistant: a", "rejected": "..."}, "transcript"),
        ({"prompt": [{"role": "user", "content": "x"}], "chosen": [], "rejected": []}, "conversational"),
        ({"chosen": [{"role": "user", "content": "x"}], "rejected": []}, "conversational"),
        ({"prompt": "p", "responses": ["a", "b"], "ranking": [1, 2]}, "ranking"),
        ({"prompt": "p", "completions": []}, "ratings"),
        ({"question": "q", "answer": "a"}, None),
    ],
)
def test_detect_format_by_keys(row, fmt):
    assert detect_format(row) == fmt


def test_pairs_with_margin_subset_and_extra_fields(tmp_path):
    group = load_one(
        tmp_path,
        {
            "prompt": "2+2?",
            "chosen": "4",
            "rejected": "5",
            "margin": 2,
            "subset": "math",
            "annotator": "ann-7",
            "votes": [3, 1],
        },
    )
    assert (group.prompt, group.responses, group.pairs, group.margins) == (
        "2+2?",
        ["4", "5"],
        [(0, 1)],
        [2.0],
    )
    assert group.subset == "math" and group.ranks is None
    assert group.meta == {"annotator": "ann-7", "votes": [3, 1]}
    assert group.source == f"{tmp_path / 'one.jsonl'}:1"


def test_transcript_single_turn_keeps_the_leading_space_in_responses(tmp_path):
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello!"
    group = load_one(tmp_path, {"chosen": chosen, "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."})
    assert group.prompt == "\n\nHuman: Hi\n\nAssistant:"
    assert group.responses == [" Hello!", " Go away."] and group.pairs == [(0, 1)]
    assert group.prompt + group.responses[0] == chosen


def test_transcript_multi_turn_split_at_the_last_common_assistant_turn():
    shared = "\n\nHuman: Name a fruit.\n\nAssistant: Apple.\n\nHuman: Another?\n\nAssistant:"
    assert split_transcript(shared + " Pear.", shared + " Rock.") == (shared, " Pear.", " Rock.")


def test_transcript_split_falls_back_to_the_turn_start_when_responses_share_words():
    # The common prefix ends inside the assistant turn ("Sure, t"): the prompt stops at "Assistant:".
    prompt = "\n\nHuman: Help me\n\nAssistant:"
    assert split_transcript(prompt + " Sure, there you go", prompt + " Sure, try this") == (
        prompt,
        " Sure, there you go",
        " Sure, try this",
    )


def test_transcript_split_when_they_diverge_before_the_last_turn():
    # They part inside the first assistant turn; the later turns belong to the responses.
    chosen = "\n\nHuman: A\n\nAssistant: Yes.\n\nHuman: B\n\nAssistant: C"
    rejected = "\n\nHuman: A\n\nAssistant: No.\n\nHuman: B\n\nAssistant: D"
    assert split_transcript(chosen, rejected) == (
        "\n\nHuman: A\n\nAssistant:",
        " Yes.\n\nHuman: B\n\nAssistant: C",
        " No.\n\nHuman: B\n\nAssistant: D",
    )


def test_transcript_without_a_shared_assistant_turn_is_an_error_with_location(tmp_path):
    message = problem(tmp_path, [{"chosen": "\n\nHuman: Hi\n\nAssistant: a", "rejected": "\n\nHuman: Yo"}])
    assert f"{tmp_path / 'bad.jsonl'}:1: chosen and rejected share no 'Assistant:' turn" in message


def test_conversational_explicit_keeps_message_lists(tmp_path):
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    chosen, rejected = (
        [{"role": "assistant", "content": "Hello."}],
        [{"role": "assistant", "content": "What?"}],
    )
    group = load_one(tmp_path, {"prompt": prompt, "chosen": chosen, "rejected": rejected})
    assert (group.prompt, group.responses, group.pairs) == (prompt, [chosen, rejected], [(0, 1)])


def test_conversational_implicit_splits_at_the_last_common_message(tmp_path):
    u1, a1, u2 = (
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Joke?"},
    )
    good, bad = {"role": "assistant", "content": "Knock knock."}, {"role": "assistant", "content": "No."}
    group = load_one(tmp_path, {"chosen": [u1, a1, u2, good], "rejected": [u1, a1, u2, bad]})
    assert group.prompt == [u1, a1, u2] and group.responses == [[good], [bad]]

    message = problem(tmp_path, [{"chosen": [u1, good], "rejected": [u2, bad]}])
    assert ":1: chosen and rejected differ from their first message" in message
    message = problem(tmp_path, [{"chosen": [u1, good], "rejected": [u1]}])
    assert ":1: field 'rejected' has no message after the 1 it shares" in message


def test_ranking_keeps_one_group_with_every_untied_ordered_pair(tmp_path):
    # ranks 2, 1, 2, 3: response 1 beats all; 0 and 2 tie (no pair) and both beat 3.
    row = {
        "prompt": "p",
        "responses": ["r0", "r1", "r2", "r3"],
        "ranking": [2, 1, 2, 3],
        "annotator": "a1",
        "id": "x9",
        "confidence": 0.8,
    }
    group = load_one(tmp_path, row)
    assert group.pairs == [(0, 3), (1, 0), (1, 2), (1, 3), (2, 3)]
    assert group.ranks == [2.0, 1.0, 2.0, 3.0] and group.margins is None
    assert group.responses == ["r0", "r1", "r2", "r3"]
    assert group.meta == {"annotator": "a1", "id": "x9", "confidence": 0.8}


def test_ratings_pairs_ordered_by_score_with_scaled_margins(tmp_path):
    # scores 7, 9, 7, 3 with margin_scale 0.5: 0>3 (4), 1>0 (2), 1>2 (2), 1>3 (6), 2>3 (4); 0=2 skipped.
    row = {
        "prompt": "p",
        "completions": [
            {"text": "a", "score": 7},
            {"text": "b", "score": 9},
            {"text": "c", "score": 7},
            {"text": "d", "score": 3},
        ],
    }
    group = load_one(tmp_path, row, margin_scale=0.5)
    assert group.pairs == [(0, 3), (1, 0), (1, 2), (1, 3), (2, 3)]
    assert group.margins == [2.0, 1.0, 1.0, 3.0, 2.0]
    assert group.responses == ["a", "b", "c", "d"] and group.meta == {"scores": [7, 9, 7, 3]}
    assert load_one(tmp_path, row).margins == [4.0, 2.0, 2.0, 6.0, 4.0]  # default scale 1.0


def test_ties_and_identical_texts_are_dropped_and_counted_not_fatal(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "same", "rejected": "same"},
        {"prompt": "p", "chosen": "x", "rejected": "y"},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    groups, summary = load_preferences(path)
    assert len(groups) == 1 and summary.dropped == {DROP_IDENTICAL: 1}
    assert summary.dropped_examples[DROP_IDENTICAL] == [f"{path}:1"]

    path = write_jsonl(
        tmp_path / "rank.jsonl",
        [
            {"prompt": "p", "responses": ["a", "b"], "ranking": [1, 1]},
            {
                "prompt": "p",
                "responses": ["a", "a", "b"],
                "ranking": [1, 2, 3],
            },  # (0, 1) would be "a" over "a"
        ],
    )
    groups, summary = load_preferences(path)
    assert summary.dropped == {DROP_ALL_TIED: 1, DROP_IDENTICAL_PAIR: 1}
    assert groups[0].pairs == [(0, 2), (1, 2)] and summary.pairs == 2 and summary.rows_read == 2


def test_exact_duplicate_rows_are_counted_and_the_first_kept(tmp_path):
    row = {"prompt": "p", "chosen": "a", "rejected": "b"}
    path = write_jsonl(
        tmp_path / "d.jsonl", [row, {"prompt": "q", "chosen": "a", "rejected": "b"}, dict(row)]
    )
    groups, summary = load_preferences(path)
    assert [g.source for g in groups] == [f"{path}:1", f"{path}:2"]
    assert summary.dropped == {DROP_DUPLICATE: 1} and summary.dropped_examples[DROP_DUPLICATE] == [
        f"{path}:3"
    ]
    assert summary.lines()[0] == f"{path}: 3 rows read as 'pairs', 2 groups, 2 pairs kept"


def test_every_row_dropped_is_fatal(tmp_path):
    message = problem(tmp_path, [{"prompt": "p", "chosen": "a", "rejected": "a"}])
    assert "no usable rows" in message and "chosen identical to rejected" in message


# --- validation errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"prompt": "p", "rejected": "b"},
            "field 'chosen' is missing (format 'pairs' expects prompt, chosen, rejected)",
        ),
        ({"prompt": "p", "chosen": "  ", "rejected": "b"}, "field 'chosen' is empty (format 'pairs'"),
        ({"prompt": "p", "chosen": None, "rejected": "b"}, "field 'chosen' is null (format 'pairs'"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, "field 'prompt' must be a string, got number"),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": -1}, "field 'margin' must be >= 0"),
        (
            {"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"},
            "field 'margin' must be a finite number",
        ),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "subset": 4}, "field 'subset' must be a string"),
    ],
)
def test_pairs_field_errors_name_line_and_field(tmp_path, row, expected):
    good = {"prompt": "p0", "chosen": "a", "rejected": "b"}
    message = problem(tmp_path, [good, row])
    assert f"{tmp_path / 'bad.jsonl'}:2: {expected}" in message


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"prompt": "p", "responses": ["a", "b"], "ranking": [1]},
            "field 'ranking' has 1 entries but 'responses' has 2",
        ),
        (
            {"prompt": "p", "responses": ["a"], "ranking": [1]},
            "field 'responses' needs at least 2 responses, got 1",
        ),
        ({"prompt": "p", "responses": ["a", ""], "ranking": [1, 2]}, "field 'responses[1]' is empty"),
        (
            {"prompt": "p", "responses": ["a", "b"], "ranking": [1, "2"]},
            "field 'ranking[1]' must be a finite number",
        ),
        (
            {"prompt": "p", "responses": ["a", "b"], "ranking": [1, True]},
            "field 'ranking[1]' must be a finite number",
        ),
    ],
)
def test_ranking_field_errors(tmp_path, row, expected):
    assert f":1: {expected}" in problem(tmp_path, [row])


@pytest.mark.parametrize(
    ("completions", "expected"),
    [
        ([{"text": "a", "score": 1}], "field 'completions' needs at least 2 completions, got 1"),
        ([{"text": "a", "score": 1}, {"score": 2}], "field 'completions[1].text' is missing"),
        ([{"text": "a", "score": 1}, {"text": "b", "score": None}], "field 'completions[1].score' is null"),
        (
            [{"text": "a", "score": 1}, "b"],
            "field 'completions[1]' must be an object {text, score}, got string",
        ),
    ],
)
def test_ratings_field_errors(tmp_path, completions, expected):
    assert f":1: {expected}" in problem(tmp_path, [{"prompt": "p", "completions": completions}])


def test_conversational_message_errors_name_the_message(tmp_path):
    row = {
        "prompt": [{"role": "user", "content": "x"}],
        "chosen": [{"role": "assistant"}],
        "rejected": [{"role": "assistant", "content": "y"}],
    }
    assert ":1: field 'chosen[0].content' must be a string, got missing" in problem(tmp_path, [row])
    row = {
        "prompt": "plain",
        "chosen": [{"role": "assistant", "content": "x"}],
        "rejected": [],
    }  # prompt first
    assert "field 'prompt' must be a list of {role, content} messages, got string" in problem(tmp_path, [row])


def test_errors_are_collected_up_to_twenty_in_one_message(tmp_path):
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}] + [{"prompt": "p", "chosen": "a"}] * 24
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, rows)
    with path.open("a") as f:
        f.write("{broken\n")
    message = problem_at(path)
    assert message.startswith(f"{path}: 25 problem(s) in the data, so none of it was used.")
    assert message.count("field 'rejected' is missing") == 20 and f"{path}:2: field 'rejected'" in message
    assert message.endswith("... and 5 more")


def problem_at(path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_preferences(str(path))
    return str(info.value)


def test_bad_json_is_reported_alongside_field_errors_in_line_order(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "a"}\n{oops\n'
    )
    lines = problem_at(path).splitlines()[1:]
    assert [line.strip().split(": ")[0] for line in lines] == [f"{path}:2", f"{path}:3"]


def test_a_row_of_another_format_is_an_error_unless_the_format_is_forced(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b"},
        {"prompt": "p", "responses": ["a", "b"], "ranking": [1, 2]},
    ]
    message = problem(tmp_path, rows)
    assert (
        f"{tmp_path / 'bad.jsonl'}:2: row looks like format 'ranking' (it has 'responses' and 'ranking'; "
        "keys prompt, responses, ranking) "
        f"but the file's first row ({tmp_path / 'bad.jsonl'}:1) is 'pairs'"
    ) in message
    # Forced, every row is read as 'pairs', so the ranking row's missing fields are reported.
    assert ":2: field 'chosen' is missing (format 'pairs'" in problem(tmp_path, rows, format="pairs")


def test_undetectable_first_row_and_unknown_format_name(tmp_path):
    message = problem(tmp_path, [{"question": "q", "answer": "a"}])
    assert ":1: cannot tell the format from keys question, answer; expected one of: pairs (" in message
    with pytest.raises(DataError, match="unknown format 'hh'; --format takes one of pairs, transcript"):
        load_preferences(write_jsonl(tmp_path / "d.jsonl", [{"chosen": "a", "rejected": "b"}]), format="hh")


def test_format_override_reads_transcript_rows_that_carry_a_prompt_key(tmp_path):
    row = {
        "prompt": "ignored?",
        "chosen": "\n\nHuman: x\n\nAssistant: a",
        "rejected": "\n\nHuman: x\n\nAssistant: b",
    }
    assert load_one(tmp_path, row).responses == [
        "\n\nHuman: x\n\nAssistant: a",
        "\n\nHuman: x\n\nAssistant: b",
    ]
    group = load_one(tmp_path, row, format="transcript")
    assert group.responses == [" a", " b"] and group.meta == {"prompt": "ignored?"}


# --- leakage and hashing --------------------------------------------------------------------------


def g(prompt, responses=("a", "b"), **kw) -> PreferenceGroup:
    return PreferenceGroup(prompt=prompt, responses=list(responses), pairs=[(0, 1)], **kw)


def test_find_leakage_normalises_whitespace_and_messages():
    msgs = [{"role": "user", "content": "Tell  me\na joke"}]
    train = [g("What is  2+2?\n"), g("unique"), g(msgs)]
    evals = [
        g("Other"),
        g(" What is 2+2?"),
        g([{"role": "user", "content": "Tell me a joke"}]),
        g("What is 2+2?"),
    ]
    assert find_leakage(train, evals) == ["What is 2+2?", "user: Tell me a joke"]
    assert find_leakage(train, [g("user: Tell me a joke")]) == ["user: Tell me a joke"]
    assert find_leakage([g("A")], [g("a")]) == []


def test_data_hash_is_the_sha256_of_the_documented_canonical_json():
    group = g("p", margins=[1.5], subset="s", meta={"b": 1, "a": "é"}, source="x.jsonl:1")
    canonical = (
        '{"margins":[1.5],"meta":{"a":"é","b":1},"pairs":[[0,1]],"prompt":"p","ranks":null,'
        '"responses":["a","b"],"subset":"s"}\n'
    )
    assert data_hash([group]) == hashlib.sha256(canonical.encode()).hexdigest()


def test_data_hash_ignores_the_path_but_not_the_content_or_order(tmp_path):
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "c", "rejected": "d"}]
    first, _ = load_preferences(write_jsonl(tmp_path / "a.jsonl", rows))
    moved, _ = load_preferences(write_jsonl(tmp_path / "b.jsonl", rows))
    assert data_hash(first) == data_hash(moved)
    reordered, _ = load_preferences(write_jsonl(tmp_path / "c.jsonl", rows[::-1]))
    assert data_hash(reordered) != data_hash(first)
    edited, _ = load_preferences(write_jsonl(tmp_path / "d.jsonl", [rows[0], {**rows[1], "margin": 0.0}]))
    assert data_hash(edited) != data_hash(first)


def test_convert_row_directly_reports_the_given_source():
    converted = convert_row({"prompt": "p", "chosen": "a", "rejected": "b"}, "pairs", "mem:7")
    assert converted.group.source == "mem:7" and converted.drop_reason is None
    with pytest.raises(DataError, match="^mem:8: field 'rejected' is missing"):
        convert_row({"prompt": "p", "chosen": "a"}, "pairs", "mem:8")


# --- real data ------------------------------------------------------------------------------------


def _shared_hh() -> Path | None:
    for root in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if (root / "hh-rlhf-harmless" / "train.jsonl").is_file():
            return root / "hh-rlhf-harmless" / "train.jsonl"
    return None


@pytest.mark.skipif(_shared_hh() is None, reason="shared HH-RLHF data not on this machine (../shared/data)")
def test_every_real_hh_row_splits_and_reassembles_exactly():
    path = _shared_hh()
    groups, summary = load_preferences(str(path))
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert summary.format == "transcript" and summary.rows_read == len(raw) == len(groups) == 1600
    for group, row in zip(groups, raw, strict=True):
        assert group.prompt.endswith("\n\nAssistant:")
        assert group.prompt + group.responses[0] == row["chosen"]
        assert group.prompt + group.responses[1] == row["rejected"]
