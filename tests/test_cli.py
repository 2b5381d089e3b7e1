"""The `rewardlab` command end to end on a tiny model: train -> eval -> score, and errors as messages."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from rewardlab.cli import main


def test_help_is_fast_and_lists_the_verbs():
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "rewardlab", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert time.perf_counter() - start < 10  # no torch/transformers import at start-up
    for verb in ("train", "eval", "score"):
        assert verb in out
    assert (
        "torch"
        not in subprocess.run(
            [sys.executable, "-c", "import sys, rewardlab.cli; print(' '.join(sys.modules))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    )


def test_train_help_documents_each_field_once():
    out = subprocess.run(
        [sys.executable, "-m", "rewardlab", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--max-length" in out and "--truncation" in out and "cut the prompt from the left" in out


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_train_eval_score_round_trip(tiny_backbone, tmp_path, capsys):
    rows = [
        {
            "prompt": f"Human: help with bread {i}?\n\nAssistant:",
            "chosen": " Thanks, here is help.",
            "rejected": " No.",
        }
        for i in range(16)
    ]
    data = _write(tmp_path / "train.jsonl", rows)
    out = tmp_path / "model"
    assert (
        main(
            [
                "train",
                "--data",
                data,
                "--backbone",
                tiny_backbone("gpt2"),
                "--output-dir",
                str(out),
                "--max-length",
                "48",
                "--epochs",
                "3",
                "--batch-size",
                "8",
                "--lr",
                "3e-3",
                "--eval-fraction",
                "0",
                "--mixed-precision",
                "no",
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 6 and (out / "rewardlab.json").exists()

    assert main(["eval", str(out), data, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"] == 16 and result["accuracy"] > 0.9
    assert result["ci_low"] <= result["accuracy"] <= result["ci_high"]

    score_in = _write(
        tmp_path / "rows.jsonl",
        [
            {"id": 1, "prompt": rows[0]["prompt"], "response": " No."},
            {"id": 2, "text": "Human: hi\n\nAssistant: Thanks, here is help."},
            {
                "id": 3,
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "No."}],
            },
            {"id": 4, "prompt": rows[0]["prompt"], "completion": " Thanks, here is help."},
        ],
    )
    scored_file = tmp_path / "scored.jsonl"
    assert main(["score", str(out), score_in, "-o", str(scored_file)]) == 0
    scored = [json.loads(line) for line in scored_file.read_text().splitlines()]
    assert [r["id"] for r in scored] == [1, 2, 3, 4]  # input order, fields carried through
    assert scored[3]["reward"] > scored[0]["reward"]  # the learned preference shows


def test_bad_data_is_an_error_message_with_its_location(tiny_backbone, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "a"\n')
    code = main(
        [
            "train",
            "--data",
            str(bad),
            "--backbone",
            tiny_backbone("gpt2"),
            "--output-dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert f"{bad}:2" in capsys.readouterr().err
