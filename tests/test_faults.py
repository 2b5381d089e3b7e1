"""Crashes and signals: a SIGKILLed run resumes to the same weights; SIGTERM saves a checkpoint and exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from rewardlab.cli import main


def _args(tiny_backbone, tmp_path, out):
    rows = [
        {
            "prompt": f"Human: help with cake {i}?\n\nAssistant:",
            "chosen": " Sure, here is help.",
            "rejected": " No.",
        }
        for i in range(16)
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [
        "train",
        "--backbone",
        tiny_backbone("gpt2"),
        "--data",
        str(data),
        "--output-dir",
        str(out),
        "--eval-fraction",
        "0",
        "--mixed-precision",
        "no",
        "--max-length",
        "40",
        "--batch-size",
        "4",
        "--epochs",
        "12",
        "--lr",
        "1e-3",
        "--save-every",
        "2",
    ]


def _start(args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # same thread count as this process: bit-equal weights
    return subprocess.Popen(
        [sys.executable, "-m", "rewardlab", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(out, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if list((out / "checkpoints").glob("step-*")):
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint appeared (exit {proc.poll()}): {proc.stderr.read()[-2000:]}")


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tiny_backbone, tmp_path):
    full = tmp_path / "full"
    assert main(_args(tiny_backbone, tmp_path, full)) == 0

    killed = tmp_path / "killed"
    proc = _start(_args(tiny_backbone, tmp_path, killed))
    _wait_for_checkpoint(killed, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = json.loads(
        sorted((killed / "checkpoints").glob("step-*"))[-1].joinpath("trainer_state.json").read_text()
    )
    assert state["step"] < 24  # it really stopped before the end

    assert main([*_args(tiny_backbone, tmp_path, killed), "--resume", "latest"]) == 0
    a, b = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tiny_backbone, tmp_path):
    out = tmp_path / "run"
    proc = _start(_args(tiny_backbone, tmp_path, out))
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "SIGTERM" in err and "--resume latest" in err
    newest = sorted((out / "checkpoints").glob("step-*"))[-1]
    assert json.loads((newest / "trainer_state.json").read_text())["step"] >= 2
    assert not list((out / "checkpoints").glob(".tmp-*"))  # nothing half-written left behind
