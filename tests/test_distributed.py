"""Data-parallel training on 2 CPU processes (torchrun, gloo) equals one process with the global batch."""

from __future__ import annotations

import json

import pytest
import torch
from launch import HAVE_TORCHRUN, torchrun
from safetensors.torch import load_file

from rewardlab.cli import main


@pytest.mark.skipif(not HAVE_TORCHRUN, reason="torchrun not installed")
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_backbone, tmp_path, capsys):
    rows = [
        {
            "prompt": f"Human: help with bread {i}?\n\nAssistant:",
            "chosen": " Thanks, here is help" + "!" * (i % 5),
            "rejected": " No.",
        }
        for i in range(16)
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = [
        "--backbone",
        tiny_backbone("llama"),
        "--data",
        str(data),
        "--no-length-grouped",
        "--eval-fraction",
        "0",
        "--mixed-precision",
        "no",
        "--max-length",
        "48",
        "--lr",
        "1e-3",
    ]
    assert main(["train", *common, "--batch-size", "4", "--output-dir", str(tmp_path / "one")]) == 0
    capsys.readouterr()

    proc = torchrun(
        ["-m", "rewardlab", "train", *common, "--batch-size", "2", "--output-dir", str(tmp_path / "two")],
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stderr + proc.stdout
    assert (proc.stderr + proc.stdout).count("model saved to") == 1  # only the main process reports

    one, two = (
        load_file(str(tmp_path / "one/model.safetensors")),
        load_file(str(tmp_path / "two/model.safetensors")),
    )
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5), k
    loss_one = [json.loads(x)["loss"] for x in (tmp_path / "one/metrics.jsonl").read_text().splitlines()]
    loss_two = [json.loads(x)["loss"] for x in (tmp_path / "two/metrics.jsonl").read_text().splitlines()]
    assert loss_two == pytest.approx(loss_one, abs=1e-5)  # logged loss is reduced over both processes
