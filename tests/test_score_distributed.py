"""`rewardlab score` streams the file in chunks, and on 2 CPU processes (torchrun, gloo) writes exactly
what one process writes: same rows, same order, same rewards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from launch import HAVE_TORCHRUN, free_port, torchrun

from rewardlab.cli import main


@pytest.fixture(scope="module")
def saved_model(tiny_backbone, tmp_path_factory) -> str:
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    out = tmp_path_factory.mktemp("scored-model")
    model, encoder, card = build_reward_model(tiny_backbone("llama"), max_length=48)
    save_reward_model(model, encoder, card, out)
    return str(out)


def _rows(n: int = 50) -> list[dict]:
    """Rows of every accepted shape and of varied lengths, each with an id to follow through."""
    rows = []
    for i in range(n):
        words = " ".join(["help"] * (1 + i % 9))
        if i % 3 == 0:
            rows.append({"id": i, "prompt": f"Human: question {i}?\n\nAssistant:", "response": f" {words}."})
        elif i % 3 == 1:
            rows.append({"id": i, "text": f"Human: hi {i}\n\nAssistant: {words}!"})
        else:
            msgs = [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": words}]
            rows.append({"id": i, "messages": msgs, "extra": {"kept": i}})
    return rows


@pytest.fixture()
def data(tmp_path) -> tuple[Path, list[dict]]:
    rows = _rows()
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _direct_rewards(model: str, rows: list[dict]) -> list[float]:
    """Rewards from Scorer on the whole list at once: the reference the streamed runs must reproduce."""
    from rewardlab.data.score_rows import score_inputs
    from rewardlab.scoring.scorer import Scorer

    pairs = [score_inputs(r, f"row {i}") for i, r in enumerate(rows)]
    return Scorer.from_pretrained(model, device="cpu").score([p for p, _ in pairs], [r for _, r in pairs])


def test_chunked_single_process_equals_scoring_the_whole_list(saved_model, data, tmp_path, capsys):
    path, rows = data
    expected = _direct_rewards(saved_model, rows)
    assert len(set(expected)) > 10  # the rows really score differently, so a mix-up would show
    for chunk in ("1", "7", "4096"):
        out = tmp_path / f"scored-{chunk}.jsonl"
        assert main(["score", saved_model, str(path), "-o", str(out), "--chunk-rows", chunk]) == 0
        scored = _read(out)
        assert [{k: v for k, v in r.items() if k != "reward"} for r in scored] == rows  # fields carried
        assert [r["reward"] for r in scored] == pytest.approx(expected, abs=1e-5)
        assert not out.with_name(out.name + ".partial").exists()
    assert "scored 50 rows on 1 process(es)" in capsys.readouterr().err


def test_score_file_never_hands_the_scorer_more_than_a_chunk(saved_model, data):
    import io

    from rewardlab.scoring.score_file import score_file
    from rewardlab.scoring.scorer import Scorer

    path, rows = data
    scorer = Scorer.from_pretrained(saved_model, device="cpu")
    sizes: list[int] = []
    real = scorer.score

    def recording(prompts, responses, on_progress=None):
        sizes.append(len(prompts))
        return real(prompts, responses, on_progress)

    scorer.score = recording  # type: ignore[method-assign]
    buf = io.StringIO()
    result = score_file(scorer, str(path), buf, chunk_rows=8)
    assert sizes == [8, 8, 8, 8, 8, 8, 2]  # 50 rows read and scored 8 at a time
    assert result.rows == 50 and result.processes == 1
    assert [json.loads(line)["id"] for line in buf.getvalue().splitlines()] == list(range(50))


def test_bad_row_fails_before_scoring_and_writes_nothing(saved_model, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "response": "r"}\n{"prompt": "p"}\n{"text": "fine"}\n')
    out = tmp_path / "out.jsonl"
    assert main(["score", saved_model, str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "no field to score" in err
    assert not out.exists() and not out.with_name("out.jsonl.partial").exists()


@pytest.mark.skipif(not HAVE_TORCHRUN, reason="torchrun not installed")
def test_two_processes_write_what_one_process_writes(saved_model, data, tmp_path, capsys):
    path, rows = data
    one = tmp_path / "one.jsonl"
    assert main(["score", saved_model, str(path), "-o", str(one), "--chunk-rows", "7"]) == 0
    capsys.readouterr()

    two = tmp_path / "two.jsonl"
    # 50 rows in chunks of 7: 4 rows on rank 0 and 3 on rank 1 per chunk, and a last chunk of 1 (rank 1: none)
    proc = torchrun(["-m", "rewardlab", "score", saved_model, str(path), "-o", str(two), "--chunk-rows", "7"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = proc.stderr + proc.stdout
    assert logs.count("scored 50 rows on 2 process(es)") == 1  # only the main process reports
    a, b = _read(one), _read(two)
    assert [r["id"] for r in b] == list(range(50))
    assert [{k: v for k, v in r.items() if k != "reward"} for r in b] == rows
    assert [r["reward"] for r in b] == pytest.approx([r["reward"] for r in a], abs=1e-5)


ACCELERATE = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")


@pytest.mark.slow
@pytest.mark.skipif(not Path(ACCELERATE).exists(), reason="accelerate's launcher not installed")
def test_accelerate_launch_two_processes_write_what_one_process_writes(saved_model, data, tmp_path, capsys):
    """`accelerate launch --multi_gpu` starts torchrun's launcher; with no GPU the processes use gloo.
    (`--cpu --num_processes 2` would need mpirun: accelerate runs a single process then.)"""
    path, rows = data
    one = tmp_path / "one.jsonl"
    assert main(["score", saved_model, str(path), "-o", str(one)]) == 0
    capsys.readouterr()
    two = tmp_path / "two.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    launch = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    proc = subprocess.run(
        [*launch, "-m", "rewardlab", "score", saved_model, str(path), "-o", str(two), "--chunk-rows", "16"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (proc.stderr + proc.stdout).count("scored 50 rows on 2 process(es)") == 1
    a, b = _read(one), _read(two)
    assert [r["id"] for r in b] == [r["id"] for r in a] == list(range(50))
    assert [r["reward"] for r in b] == pytest.approx([r["reward"] for r in a], abs=1e-5)
