"""Hostile input to data loading, scoring and evaluation (issue 20, defects 5, 7, 10, 12, 15): each
one is refused with a `DataError` (or a flag error) naming the file:line and the field, before
anything is scored or trained, or loads correctly. Every test here failed before its fix."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import pytest

from rewardlab.cli import main
from rewardlab.data import load_preferences
from rewardlab.data.readers import MAX_DEPTH, read_rows
from rewardlab.data.types import DataError
from rewardlab.scoring.score_file import check_score_file, open_output

PAIR = {"prompt": "p", "chosen": "a", "rejected": "b"}


def _jsonl(path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _refused(path: str, *needles: str) -> str:
    with pytest.raises(DataError) as err:
        load_preferences(path)
    message = str(err.value)
    for needle in needles:
        assert needle in message
    return message


@pytest.fixture(scope="module")
def saved_model(tiny_backbone, tmp_path_factory) -> str:
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    out = tmp_path_factory.mktemp("hostile-model")
    model, encoder, card = build_reward_model(tiny_backbone("bert"), max_length=32)
    save_reward_model(model, encoder, card, out)
    return str(out)


# --- 5: `rewardlab score` checks chat messages before scoring --------------------------------------------


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        (
            {"prompt": [1, 2], "response": "x"},
            "field 'prompt[0]' must be a {role, content} object, got number",
        ),
        (
            {"prompt": "p", "response": [{"role": "assistant"}]},
            "field 'response[0].content' must be a string",
        ),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}, "'messages[0].content'"),
        (
            {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]},
            "got a number",
        ),
        ({"messages": ["hi"]}, "field 'messages[0]' must be a {role, content} object, got string"),
        ({"messages": "hi"}, "field 'messages' must be a list"),
        ({"messages": []}, "got an empty list"),
        ({"messages": [{"role": "user", "content": "x"}]}, "must end with an assistant message"),
        ({"text": 5}, "field 'text' must be a string, got number"),  # 15: was "no field to score"
        ({"prompt": "p", "completion": {"a": 1}}, "field 'completion' must be a string or a list"),
    ],
)
def test_score_precheck_looks_inside_messages_and_names_line_and_field(tmp_path, row, needle):
    path = _jsonl(tmp_path / "rows.jsonl", [json.dumps({"text": "fine"}), json.dumps(row)])
    with pytest.raises(DataError) as err:
        check_score_file(path)
    assert f"{path}:2: " in str(err.value) and needle in str(err.value)


def test_score_precheck_still_accepts_every_good_shape(tmp_path):
    rows = [
        {"prompt": "p", "response": "r"},
        {
            "prompt": [{"role": "user", "content": "hi"}],
            "completion": [{"role": "assistant", "content": "yo"}],
        },
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        {"text": "whole"},
        {"response": "no prompt"},
    ]
    assert check_score_file(_jsonl(tmp_path / "ok.jsonl", [json.dumps(r) for r in rows])) == 5


def test_score_output_naming_a_folder_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="-o .*is a folder"), open_output(str(tmp_path), io.StringIO()):
        pytest.fail("open_output must refuse before the scoring inside runs")
    with (
        pytest.raises(ValueError, match="does not exist"),
        open_output(str(tmp_path / "no" / "o.jsonl"), None),
    ):
        pytest.fail("unreachable")
    assert list(tmp_path.iterdir()) == []


def test_score_cli_refuses_a_folder_output_and_a_bad_message_row(saved_model, tmp_path, capsys):
    rows = _jsonl(tmp_path / "rows.jsonl", [json.dumps({"prompt": "p", "response": "r"})])
    folder = tmp_path / "outdir"
    folder.mkdir()
    assert main(["score", saved_model, rows, "-o", str(folder), "--device", "cpu"]) == 2
    assert "is a folder" in capsys.readouterr().err and list(folder.iterdir()) == []
    bad = _jsonl(
        tmp_path / "bad.jsonl", [json.dumps({"prompt": "p", "response": "r"}), '{"messages": ["hi"]}']
    )
    out = tmp_path / "out.jsonl"
    assert main(["score", saved_model, bad, "-o", str(out), "--device", "cpu"]) == 2
    assert f"{bad}:2: field 'messages[0]'" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("out.jsonl.partial").exists()


# --- 7: CSV cells are text; CSV errors exit 2 ------------------------------------------------------------


def test_csv_all_numeric_answer_column_loads_as_strings(tmp_path):
    path = tmp_path / "math.csv"
    path.write_text(
        "prompt,chosen,rejected,id\nWhat is 2+2?,4,5,007\nWhat is 3+3?,6,6.0,8\n", encoding="utf-8"
    )
    groups, summary = load_preferences(str(path))
    assert [g.responses for g in groups] == [["4", "5"], ["6", "6.0"]]  # "6" and "6.0" differ as text
    assert groups[0].meta == {"id": "007"} and summary.groups == 2


def test_csv_margin_column_is_still_a_number_and_a_bad_one_is_named(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("prompt,chosen,rejected,margin\np,a,b,0.5\nq,c,d,\n", encoding="utf-8")
    groups, _ = load_preferences(str(path))
    assert [g.margins for g in groups] == [[0.5], None]
    path.write_text("prompt,chosen,rejected,margin\np,a,b,lots\n", encoding="utf-8")
    _refused(str(path), f"{path}:row 0: field 'margin' must be a finite number, got string 'lots'")


def test_csv_is_read_on_the_calling_thread(tmp_path, monkeypatch):
    """pyarrow's CSV reader threads, with torch loaded, aborted the process (exit 134) after an error."""
    import pyarrow.csv as pcsv

    seen = []
    real = pcsv.read_csv

    def spy(source, read_options=None, **kw):
        seen.append(read_options.use_threads)
        return real(source, read_options=read_options, **kw)

    monkeypatch.setattr(pcsv, "read_csv", spy)
    path = tmp_path / "d.csv"
    path.write_text("prompt,chosen,rejected\np,a,b\n", encoding="utf-8")
    list(read_rows(str(path)))
    assert seen == [False]


def test_csv_validation_error_exits_2_with_torch_loaded(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("prompt,chosen,rejected\n" + "".join(f"q{i},a{i},b{i}\n" for i in range(3000)) + "q,,b\n")
    code = (
        "import sys, torch\nfrom rewardlab.cli import main\n"
        f"sys.exit(main(['eval', 'no-such-model', {str(path)!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{path}:row 3000: field 'chosen' is empty" in done.stderr


# --- 10: huge numbers, deep nesting, --bootstrap 0 -----------------------------------------------------


def test_a_400_digit_margin_is_a_located_data_error(tmp_path):
    path = _jsonl(
        tmp_path / "d.jsonl",
        [json.dumps(PAIR), json.dumps({**PAIR, "prompt": "q"})[:-1] + ', "margin": ' + "9" * 400 + "}"],
    )
    _refused(path, f"{path}:2: field 'margin' must be a finite number", "400 digits")


def test_an_integer_past_pythons_digit_limit_is_a_located_data_error(tmp_path):
    digits = "9" * (getattr(sys, "get_int_max_str_digits", lambda: 4300)() + 10)
    path = _jsonl(
        tmp_path / "d.jsonl",
        [json.dumps(PAIR), '{"prompt": "q", "chosen": "a", "rejected": "b", "margin": ' + digits + "}"],
    )
    _refused(path, f"{path}:2: a number too long to read")
    doc = tmp_path / "d.json"
    doc.write_text('[\n{"prompt": "p", "chosen": "a", "rejected": "b"},\n{"margin": ' + digits + "}\n]")
    _refused(str(doc), f"{doc}:3: a number too long to read")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
def test_deep_nesting_is_a_located_data_error_not_a_recursion_error(tmp_path, depth):
    nested = "[" * depth + "]" * depth
    path = _jsonl(
        tmp_path / "d.jsonl",
        [json.dumps(PAIR), '{"prompt": "q", "chosen": "a", "rejected": "b", "x": ' + nested + "}"],
    )
    _refused(path, f"{path}:2: JSON nested more than {MAX_DEPTH} levels deep")
    doc = tmp_path / "d.json"
    doc.write_text(
        '[\n{"prompt": "p", "chosen": "a", "rejected": "b"},\n{"x": "[\\"{", "y": ' + nested + "}]"
    )
    _refused(str(doc), f"{doc}:3: JSON nested more than {MAX_DEPTH} levels deep")


def test_nesting_within_the_limit_still_loads(tmp_path):
    nested = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)  # the row object + the "x" value: MAX_DEPTH - 1
    path = _jsonl(
        tmp_path / "d.jsonl", ['{"prompt": "q", "chosen": "a", "rejected": "b", "x": ' + nested + "}"]
    )
    groups, _ = load_preferences(path)
    assert len(groups) == 1


def test_bootstrap_zero_is_refused_before_scoring():
    from rewardlab.data.types import PreferenceGroup
    from rewardlab.scoring.evaluate import bootstrap_ci, evaluate

    class MustNotScore:
        def score(self, *a, **kw):
            raise AssertionError("scored before --bootstrap was checked")

    with pytest.raises(ValueError, match="--bootstrap must be at least 1"):
        evaluate(MustNotScore(), [PreferenceGroup("p", ["a", "b"], [(0, 1)])], n_boot=0)
    with pytest.raises(ValueError, match="--bootstrap"):
        bootstrap_ci([(1.0, 1)], n_boot=0)  # was IndexError


def test_eval_cli_bootstrap_zero_exits_2(saved_model, tmp_path, capsys):
    data = _jsonl(tmp_path / "d.jsonl", [json.dumps(PAIR)])
    assert main(["eval", saved_model, data, "--bootstrap", "0", "--device", "cpu"]) == 2
    assert "--bootstrap must be at least 1" in capsys.readouterr().err


# --- 12: infinite and overflowing margins; strict JSON metrics ------------------------------------------


@pytest.mark.parametrize("margin", ["1e308", "1e400", "1e7", "Infinity", "NaN"])
def test_infinite_or_huge_margins_are_refused_with_their_line(tmp_path, margin):
    path = _jsonl(
        tmp_path / "d.jsonl",
        [json.dumps(PAIR), '{"prompt": "q", "chosen": "a", "rejected": "b", "margin": ' + margin + "}"],
    )
    _refused(path, f"{path}:2: field 'margin'")


def test_overflowing_rating_differences_are_refused_naming_the_scores(tmp_path):
    row = {"prompt": "p", "completions": [{"text": "a", "score": 1e308}, {"text": "b", "score": -1e308}]}
    path = _jsonl(tmp_path / "r.jsonl", [json.dumps(row)])
    _refused(path, f"{path}:1: fields 'completions[0].score' and 'completions[1].score' differ by inf")


def test_metrics_lines_are_strict_json():
    from rewardlab.strict_json import json_line

    line = json_line(
        {"step": 3, "loss": math.inf, "eval": {"acc": math.nan, "low": -math.inf}, "xs": [1.5, math.nan]}
    )
    assert "Infinity" not in line and "NaN" not in line
    assert json.loads(line, parse_constant=lambda c: pytest.fail(c)) == {
        "step": 3,
        "loss": None,
        "eval": {"acc": None, "low": None},
        "xs": [1.5, None],
    }


# --- 15: messages that say what is wrong -------------------------------------------------------------------


def test_a_list_typed_field_in_a_pairs_file_is_named_in_the_format_clash(tmp_path):
    row = {**PAIR, "prompt": "q", "chosen": [{"role": "assistant", "content": "a"}]}
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(PAIR), json.dumps(row)])
    _refused(path, f"{path}:2: row looks like format 'conversational' (field 'chosen' is a list;")


def test_unterminated_json_object_reports_the_column_where_it_ends(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(PAIR), '{"prompt": "a"'])
    _refused(path, f"{path}:2: invalid JSON: Expecting ',' delimiter at column 15")  # was "column 1"


def test_bad_data_messages_do_not_claim_training(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(PAIR), '{"prompt": "q"}'])
    message = _refused(path, "none of it was used")
    assert "trained" not in message
