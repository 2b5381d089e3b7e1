"""Resumable checkpoints: model, optimizer, scheduler and RNG state plus the position in the data.

Written to a temporary folder, fsynced and renamed, so a crash never leaves a half-written one behind;
`latest_checkpoint` skips any folder without its state file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "trainer_state.json"


def save_checkpoint(accelerator: Any, scheduler: Any, state: dict, out: Path, keep: int = 2) -> Path:
    """Atomically write a resumable checkpoint (temp folder, fsync, rename); keep the newest `keep`."""
    root = out / "checkpoints"
    final = root / f"step-{state['step']:08d}"
    tmp = root / f".tmp-step-{state['step']:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / STATE_FILE).write_text(json.dumps(state))
        for f in tmp.iterdir():
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(root.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(out: Path) -> Path | None:
    """Newest complete checkpoint (one with its state file); partial ones are skipped."""
    for ckpt in sorted((out / "checkpoints").glob("step-*"), reverse=True):
        if (ckpt / STATE_FILE).is_file() and (ckpt / "scheduler.pt").is_file():
            return ckpt
    return None


def load_checkpoint(resume: str, accelerator: Any, scheduler: Any, out: Path) -> tuple[dict, Path]:
    """``--resume latest`` or a checkpoint folder: restore the prepared objects; returns (state, folder)."""
    ckpt = latest_checkpoint(out) if resume == "latest" else Path(resume)
    if ckpt is None:
        raise FileNotFoundError(f"--resume latest: no complete checkpoint under {out / 'checkpoints'}")
    accelerator.load_state(str(ckpt))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    return json.loads((ckpt / STATE_FILE).read_text()), ckpt
