"""scripts/gpu_check.sh --dry-run: the prepared GPU check runs end to end here, at toy sizes on the CPU,
so the script a GPU session runs blind has run before (docs/speed.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_prints_one_json_line_with_every_figure(tiny_backbone, tmp_path):
    pytest.importorskip("trl")
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--dry-run", "--backbone", tiny_backbone("bert")]
        + ["--workdir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["dry_run"] is True and not any("error" in s for s in report["steps"].values())
    assert report["demo_pairs_per_s"] > 0 and 0 <= report["demo_gold_agreement"] <= 1
    assert report["hh_rewardlab_pairs_per_s"] > 0 and report["train_ratio"] > 0
    assert {"scorer_fp32", "pipeline_bs16"} <= set(report["score_texts_per_s"]) and report["score_ratio"] > 0
    assert report["device"]
