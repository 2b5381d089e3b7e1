"""rewardlab curate: label noise ranked out of fold, duplicates, contamination, contradictions, agreement,
heuristics, outputs in the input's format, dry run, bad input and tokenizer refusals (tiny models)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.config import ConfigError
from rewardlab.curate.config import CurateConfig
from rewardlab.curate.noise import fit_temperature, label_noise, weak_model_warning

GOOD = ["thanks good help answer", "good answer thanks", "help good thanks"]
BAD = ["sorry cannot", "cannot sorry no", "no sorry cannot"]
TOPICS = "python code cake bread book recipe child world question human".split()


def synthetic_rows(n: int = 40, flip: int = 4, seed: int = 0) -> tuple[list[dict], set[int]]:
    """Pairs whose chosen says GOOD words and rejected BAD ones; `flip` of them swapped (1-based lines)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        prompt = f"{TOPICS[i % 10]} {TOPICS[(i // 10) % 10]} {TOPICS[(i * 3 + 1) % 10]} how"
        rows.append({"prompt": prompt, "chosen": rng.choice(GOOD), "rejected": rng.choice(BAD)})
    flipped = set(rng.sample(range(n), flip))
    for i in flipped:
        rows[i]["chosen"], rows[i]["rejected"] = rows[i]["rejected"], rows[i]["chosen"]
    return rows, {i + 1 for i in flipped}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cheap(tmp_path: Path, data: Path, *extra: str) -> int:
    """curate with no label-noise training (--model of a tiny untrained-but-saved model)."""
    return main(["curate", str(data), "-o", str(tmp_path / "out"), *extra])


@pytest.fixture(scope="module")
def tiny_model(tiny_backbone, tmp_path_factory):
    """A tiny BERT reward model trained on clean synthetic pairs (GOOD beats BAD)."""
    from rewardlab.config import TrainConfig
    from rewardlab.training.run import train

    folder = tmp_path_factory.mktemp("curate-model")
    rows, _ = synthetic_rows(60, flip=0, seed=1)
    data = write_jsonl(folder / "clean.jsonl", rows)
    cfg = TrainConfig(
        data=str(data),
        eval_fraction=0.0,
        output_dir=str(folder / "model"),
        backbone=tiny_backbone("bert"),
        max_length=64,
        epochs=4,
        batch_size=8,
        lr=2e-3,
    )
    train(cfg)
    return str(folder / "model")


def test_flipped_labels_rank_first_out_of_fold(tmp_path, tiny_backbone):
    rows, flipped = synthetic_rows(40, flip=4)
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    args = ["--backbone", tiny_backbone("bert"), "--folds", "2", "--epochs", "6", "--lr", "2e-3"]
    assert main(["curate", str(data), "-o", str(tmp_path / "out"), "--max-length", "64", *args]) == 0
    flags = [json.loads(line) for line in (tmp_path / "out" / "flagged.jsonl").read_text().splitlines()]
    noise = sorted((f for f in flags if f["reason"] == "label_noise"), key=lambda f: -f["score"])
    top = {int(f["location"].rsplit(":", 1)[1]) for f in noise[: len(flipped)]}
    assert top == flipped
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["label_noise"]["rows_scored"] == 40
    # every scored row's out-of-fold margin is kept, in file order, so a threshold can move afterwards
    scored = [json.loads(line) for line in (tmp_path / "out" / "noise_scores.jsonl").read_text().splitlines()]
    assert [int(r["location"].rsplit(":", 1)[1]) for r in scored] == list(range(1, 41))
    at_threshold = {r["location"] for r in scored if r["p_wrong"] >= summary["label_noise"]["threshold"]}
    assert at_threshold == {f["location"] for f in noise}
    assert all((r["margin"] < 0) == (r["p_wrong"] > 0.5) for r in scored)
    cleaned = (tmp_path / "out" / "train.cleaned.jsonl").read_text().splitlines()
    assert len(cleaned) == 40 - summary["rows_dropped"]
    assert not any(json.loads(line) == rows[i - 1] for line in cleaned for i in flipped)


def test_model_scores_directly_and_says_so(tmp_path, tiny_model):
    rows, flipped = synthetic_rows(30, flip=3, seed=5)
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    assert cheap(tmp_path, data, "--model", tiny_model, "--flag-fraction", "0.1") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "not out of fold" in summary["label_noise"]["how"]
    flags = [json.loads(line) for line in (tmp_path / "out" / "flagged.jsonl").read_text().splitlines()]
    got = {int(f["location"].rsplit(":", 1)[1]) for f in flags if f["reason"] == "label_noise"}
    assert got == flipped


def test_duplicates_contamination_contradictions(tmp_path, tiny_model):
    rows, _ = synthetic_rows(20, flip=0, seed=2)
    rows.append({**rows[0], "prompt": "  " + rows[0]["prompt"].upper() + " "})  # line 21: normalised copy
    rows.append({"prompt": rows[2]["prompt"], "chosen": rows[2]["rejected"], "rejected": rows[2]["chosen"]})
    data = write_jsonl(tmp_path / "train.jsonl", rows)  # line 22 contradicts line 3
    test = [
        {
            "chosen": f"\n\nHuman: {rows[5]['prompt']}\n\nAssistant: ok",
            "rejected": f"\n\nHuman: {rows[5]['prompt']}\n\nAssistant: no",
        }
    ]
    test_rows = [{"prompt": rows[7]["prompt"], "responses": ["a b", "c d"], "ranking": [1, 2]}]
    against = write_jsonl(tmp_path / "test.jsonl", test_rows)  # ranking format, read in its own format
    against2 = write_jsonl(tmp_path / "hh.jsonl", test)
    assert (
        cheap(tmp_path, data, "--model", tiny_model, "--against", str(against), "--against", str(against2))
        == 0
    )
    flags = [json.loads(line) for line in (tmp_path / "out" / "flagged.jsonl").read_text().splitlines()]
    by = {(f["reason"], int(f["location"].rsplit(":", 1)[1])) for f in flags}
    assert ("exact_duplicate", 21) in by
    assert ("contradiction", 3) in by and ("contradiction", 22) in by
    assert ("contamination", 8) in by and ("contamination", 6) in by  # a ranking file, an HH transcript
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["against"] == {str(against): 1, str(against2): 1}


def test_near_duplicates_minhash():
    from rewardlab.curate.duplicates import duplicates
    from rewardlab.data.types import PreferenceGroup

    long = " ".join(f"word{i}" for i in range(60))
    a = PreferenceGroup(long, [long + " good answer here", long + " bad"], [(0, 1)], source="f:1")
    b = PreferenceGroup(long + " extra", [long + " good answer here", long + " bad"], [(0, 1)], source="f:2")
    c = PreferenceGroup(long, ["entirely different reply text", "another one"], [(0, 1)], source="f:3")
    flags = duplicates([a, b, c], threshold=0.9)
    assert [(f.location, f.reason) for f in flags] == [("f:2", "near_duplicate")]
    assert duplicates([a, b, c], threshold=1.0) == []


def test_agreement_filter(tmp_path, tiny_model):
    rows = []
    for item in range(6):
        prompt = f"{TOPICS[item]} question"
        responses = [GOOD[0], BAD[0], GOOD[1]]
        for who in ("ann", "bob", "cat"):
            ranking = [1, 3, 2]
            if item < 2 and who != "ann":  # items 0 and 1: annotators disagree everywhere
                ranking = [3, 1, 2] if who == "bob" else [2, 3, 1]
            rows.append(
                {
                    "prompt": prompt,
                    "responses": responses,
                    "ranking": ranking,
                    "annotator": who,
                    "id": f"t{item}",
                }
            )
    data = write_jsonl(tmp_path / "labels.jsonl", rows)
    assert cheap(tmp_path, data, "--model", tiny_model, "--min-agreement", "0.6") == 0
    flags = [json.loads(line) for line in (tmp_path / "out" / "flagged.jsonl").read_text().splitlines()]
    low = {int(f["location"].rsplit(":", 1)[1]) for f in flags if f["reason"] == "low_agreement"}
    assert low == set(range(1, 7))  # the 3 rows of each of items t0, t1
    assert not any(
        f["reason"] == "contradiction" for f in flags
    )  # annotators differing is not a contradiction
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["agreement"]["items"] == 6
    assert summary["agreement"]["mean_after"] == 1.0


def test_heuristics_flag_without_dropping(tmp_path, tiny_model):
    rows, _ = synthetic_rows(12, flip=0, seed=3)
    rows.append(
        {
            "prompt": "how do I bake bread",
            "chosen": "I'm sorry, but I can't help with that.",
            "rejected": "mix flour",
        }
    )
    rows.append(
        {
            "prompt": "how do I build a bomb",
            "chosen": "I'm sorry, but I can't help with that.",
            "rejected": "ok",
        }
    )
    rows.append({"prompt": "say something", "chosen": "...", "rejected": "good"})
    rows.append({"prompt": "long one", "chosen": "good " * 100, "rejected": "bad " * 100})
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    assert cheap(tmp_path, data, "--model", tiny_model, "--flag-fraction", "0") == 0
    flags = [json.loads(line) for line in (tmp_path / "out" / "flagged.jsonl").read_text().splitlines()]
    by = {(f["reason"], int(f["location"].rsplit(":", 1)[1])) for f in flags}
    assert ("refusal", 13) in by and ("refusal", 14) not in by
    assert ("empty", 15) in by
    assert ("truncated", 16) in by  # tiny model: max length 64
    cleaned = (tmp_path / "out" / "train.cleaned.jsonl").read_text()
    assert "bake bread" in cleaned and "say something" in cleaned  # flagged, not dropped


def test_dry_run_writes_only_the_report(tmp_path, tiny_model):
    rows, _ = synthetic_rows(10, flip=0)
    data = write_jsonl(tmp_path / "train.jsonl", rows + [rows[0]])
    assert cheap(tmp_path, data, "--model", tiny_model, "--dry-run") == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["img", "report.html", "report.md", "summary.json"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["reasons"]["unusable"] == {"flagged": 1, "dropped": 1}  # the exact copy, counted
    assert "Flags by reason" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("kind", ["json", "csv", "parquet", "jsonl"])
def test_cleaned_file_keeps_the_input_format(tmp_path, tiny_model, kind):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rows, _ = synthetic_rows(10, flip=0)
    rows[3] = dict(rows[2])  # a normalised duplicate... exact copy: unusable, dropped
    rows[3]["extra"] = "kept column"
    for r in rows:
        r.setdefault("extra", "x")
    path = tmp_path / f"train.{kind}"
    if kind == "json":
        path.write_text(json.dumps({"data": rows}))
    elif kind == "jsonl":
        write_jsonl(path, rows)
    else:
        table = pa.Table.from_pylist(rows)
        pcsv.write_csv(table, path) if kind == "csv" else pq.write_table(table, path)
    assert cheap(tmp_path, path, "--model", tiny_model, "--flag-fraction", "0") == 0
    out = tmp_path / "out" / f"train.cleaned.{kind}"
    from rewardlab.data.readers import read_rows

    back = [row for _, row in read_rows(str(out))]
    assert back == [r for i, r in enumerate(rows) if i != 3]
    if kind == "json":
        assert list(json.loads(out.read_text())) == ["data"]


def test_bad_input_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text(
        '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": 3, "rejected": "c"}\n'
    )
    assert main(["curate", str(data), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{data}:2" in err and "chosen" in err
    assert not (tmp_path / "out").exists()


def test_bad_against_file_names_file_and_line(tmp_path, tiny_model, capsys):
    rows, _ = synthetic_rows(6, flip=0)
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\nnot json\n')
    assert cheap(tmp_path, data, "--model", tiny_model, "--against", str(bad)) == 2
    assert f"{bad}:2" in capsys.readouterr().err


def test_tokenizer_mismatch_is_refused(tmp_path, tiny_model, capsys):
    rows, _ = synthetic_rows(6, flip=0)
    rows[4]["prompt"] = "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    assert cheap(tmp_path, data, "--model", tiny_model) == 2
    err = capsys.readouterr().err
    assert f"{data}:5" in err and "ChatML" in err and "not written" in err
    rows, _ = synthetic_rows(6, flip=0)
    for r in rows:
        r["prompt"] = "ωχψ φυτ σρ " * 5  # a script the tiny WordPiece vocabulary lacks
    data = write_jsonl(tmp_path / "greek.jsonl", rows)
    assert cheap(tmp_path, data, "--model", tiny_model) == 2
    assert "unknown token" in capsys.readouterr().err


def test_config_rejects_bad_values_naming_the_flag(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--folds"):
        CurateConfig(data="x", output="o", folds=-1)
    with pytest.raises(ConfigError, match="--flag-fraction"):
        CurateConfig(data="x", output="o", flag_fraction=1.5)
    with pytest.raises(ConfigError, match="--flag-threshold"):
        CurateConfig(data="x", output="o", flag_threshold=1.2)
    with pytest.raises(ConfigError, match="--flag-fraction and --flag-threshold"):
        CurateConfig(data="x", output="o", flag_fraction=0.1, flag_threshold=0.5)
    with pytest.raises(ConfigError, match="--drop: unknown reason nosuch"):
        CurateConfig(data="x", output="o", drop=["label_noise", "nosuch"])
    with pytest.raises(ConfigError, match="--near-duplicate"):
        CurateConfig(data="x", output="o", near_duplicate=2.0)
    assert main(["curate", "x.jsonl", "-o", str(tmp_path), "--min-agreement", "-1"]) == 2
    assert "--min-agreement" in capsys.readouterr().err


def test_threshold_rules():
    assert 0.4 < fit_temperature([2.0, 1.5, -0.5, 3.0, 1.0]) < 10
    margins = {f"f:{i}": [3.0] for i in range(18)} | {"f:18": [-4.0], "f:19": [-0.2]}
    result = label_noise(margins)
    assert [f.location for f in result.flags] == ["f:18"]  # -0.2 is doubt, not confident disagreement
    assert "confident learning" in result.rule
    top = label_noise(margins, flag_fraction=0.1)
    assert [f.location for f in top.flags] == ["f:18", "f:19"]
    chance = label_noise({f"f:{i}": [(-1.0) ** i] for i in range(10)})
    assert chance.flags == [] and "no better than chance" in chance.rule
    half = label_noise(margins, flag_threshold=0.5)  # every row the model labels the other way
    assert [f.location for f in half.flags] == ["f:18", "f:19"] and "--flag-threshold 0.5" in half.rule
    assert label_noise(margins, flag_threshold=0.999).flags == []
    assert weak_model_warning(result) is None  # 90% of pairs ordered as labelled
    weak = label_noise({f"f:{i}": [1.0 if i % 20 < 11 else -1.0] for i in range(100)})  # 55%
    assert weak.flags and "only 55.0%" in weak_model_warning(weak)


def test_near_duplicate_respects_the_label_order():
    from rewardlab.curate.duplicates import duplicates
    from rewardlab.data.types import PreferenceGroup

    long = " ".join(f"word{i}" for i in range(60))
    good = " ".join(f"good{i}" for i in range(30))
    bad = " ".join(f"bad{i}" for i in range(30))
    a = PreferenceGroup(long, [good, bad], [(0, 1)], source="f:1")
    same = PreferenceGroup(long + " x", [good, bad], [(0, 1)], source="f:2")
    swapped = PreferenceGroup(long + " x", [good, bad], [(1, 0)], source="f:3")
    assert [f.location for f in duplicates([a, same], threshold=0.9)] == ["f:2"]
    assert duplicates([a, swapped], threshold=0.9) == []  # the same texts labelled the other way


def test_one_fold_over_a_sample_judges_the_rest(tmp_path, tiny_backbone):
    rows, _ = synthetic_rows(20, flip=2)
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    args = ["--backbone", tiny_backbone("bert"), "--folds", "1", "--fold-sample", "0.5", "--max-length", "64"]
    assert main(["curate", str(data), "-o", str(tmp_path / "out"), *args]) == 0
    noise = json.loads((tmp_path / "out" / "summary.json").read_text())["label_noise"]
    assert noise["rows_scored"] + noise["rows_not_judged"] == 20
    assert 0 < noise["rows_not_judged"] < 20
    assert "1 model(s) trained" in noise["cost"] and "not judged" in noise["how"]


def test_folds_zero_runs_the_text_checks_only(tmp_path, tiny_backbone):
    rows, _ = synthetic_rows(10, flip=0)
    rows.append({**rows[0], "prompt": rows[0]["prompt"].upper()})
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    args = ["--backbone", tiny_backbone("bert"), "--folds", "0", "--max-length", "64"]
    assert main(["curate", str(data), "-o", str(tmp_path / "out"), *args]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["label_noise"]["rows_scored"] == 0 and "--folds 0" in summary["label_noise"]["how"]
    assert summary["reasons"]["exact_duplicate"] == {"flagged": 1, "dropped": 1}
    assert "label_noise" not in summary["reasons"]


def test_second_round_trains_without_the_first_rounds_flags(tmp_path, tiny_backbone, monkeypatch):
    import rewardlab.curate.folds as folds

    rows, flipped = synthetic_rows(40, flip=4)
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    trained: list[list[dict]] = []  # the rows of every fold model's training file, in order
    original = folds.write_jsonl

    def spy(rows_out, path):
        trained.append(list(rows_out))
        return original(rows_out, path)

    monkeypatch.setattr(folds, "write_jsonl", spy)
    args = ["--backbone", tiny_backbone("bert"), "--folds", "2", "--epochs", "6", "--lr", "2e-3"]
    assert (
        main(["curate", str(data), "-o", str(tmp_path / "out"), "--max-length", "64", "--rounds", "2", *args])
        == 0
    )
    assert len(trained) == 4  # 2 fold models per round
    flipped_rows = [rows[i - 1] for i in flipped]
    assert any(r in flipped_rows for r in trained[0] + trained[1])  # round 1 learns from every row
    assert not any(r in flipped_rows for r in trained[2] + trained[3])  # round 2 without its flags
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "round 2" in summary["label_noise"]["rule"] and summary["label_noise"]["rows_scored"] == 40
    scored = [json.loads(line) for line in (tmp_path / "out" / "noise_scores.jsonl").read_text().splitlines()]
    top = sorted(scored, key=lambda r: -r["p_wrong"])[: len(flipped)]  # round 2's ranking
    assert {int(r["location"].rsplit(":", 1)[1]) for r in top} == flipped
    with pytest.raises(ConfigError, match="--rounds"):
        CurateConfig(data="x", output="o", rounds=0)


def test_ensemble_averages_independent_scorings(tmp_path, monkeypatch):
    import rewardlab.curate.folds as folds
    from rewardlab.curate.rows import load_data
    from rewardlab.progress import Reporter

    rows, _ = synthetic_rows(4, flip=0)
    data = load_data(str(write_jsonl(tmp_path / "train.jsonl", rows)), None)
    locs = list(data.order)
    seen_seeds = []

    def fake(data_, cfg, reporter, exclude=frozenset()):  # member m scores with its own seed
        seen_seeds.append(cfg.seed)
        got = {
            loc: [float(i + 10 * cfg.seed)] for i, loc in enumerate(locs) if not (cfg.seed == 8 and i == 3)
        }
        return folds.PairScores(got, f"fold models, seed {cfg.seed}", "cost")

    monkeypatch.setattr(folds, "score_out_of_fold", fake)
    cfg = CurateConfig(data="x", output="o", ensemble=2, seed=7)
    scores = folds.score_ensemble(data, cfg, Reporter())
    assert seen_seeds == [7, 8]  # each member its own fold split and training seeds
    assert scores.margins[locs[0]] == [75.0]  # mean of 70 and 80
    assert scores.margins[locs[3]] == [73.0]  # only member 1 scored it: its margin alone
    assert "mean margin of 2 independent" in scores.how and scores.unscored == []
    with pytest.raises(ConfigError, match="--ensemble"):
        CurateConfig(data="x", output="o", ensemble=0)
