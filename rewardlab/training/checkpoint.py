"""Resumable checkpoints: model, optimizer, scheduler and RNG state plus the position in the data.

Written to a temporary folder, fsynced and renamed, so a crash never leaves a half-written one behind.
Each carries ``run.json``: the run id (a hash of the config fields and data that define the run, see
`run_id`) and a sha256 of every file, so that resume can tell this run's intact checkpoints from another
run's or a damaged one, and retention only ever deletes this run's own (docs/reliability.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "trainer_state.json"
RUN_FILE = "run.json"
RUN_ID_IGNORED = frozenset(
    {"output_dir", "resume", "save_every", "eval_every", "force", "overwrite", "trim_memory"}
)
"""Config fields that say where or how often, not what is trained: they may differ between a run and its
resumption (a checkpoint copied to another folder, a different --save-every) without making another run."""


def run_id(cfg: Any, data_hash: str | None) -> str:
    """The identity of a training run: sha256 over the defining config fields and the training data hash.
    Two runs with the same id train the same model from the same data, so their checkpoints are
    interchangeable; a different seed, lr, backbone or data gives another id."""
    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUN_ID_IGNORED}
    blob = json.dumps({"config": fields, "data_hash": data_hash}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != RUN_FILE)


def read_run_id(ckpt: Path) -> str | None:
    """The run id in a checkpoint's run.json, or None where it has none or it does not parse."""
    try:
        return str(json.loads((ckpt / RUN_FILE).read_text())["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_checkpoint(
    accelerator: Any, scheduler: Any, state: dict, out: Path, keep: int = 2, run: str = ""
) -> Path:
    """Atomically write a resumable checkpoint of run `run` (temp folder, run.json with checksums, fsync,
    rename); keep the newest `keep` of this run's checkpoints; another run's are never touched."""
    root = out / "checkpoints"
    final = root / f"step-{state['step']:08d}"
    tmp = root / f".tmp-step-{state['step']:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every process's RNG file is in before the checksums
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / STATE_FILE).write_text(json.dumps(state))
        for f in _files(tmp):
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        sums = {str(f.relative_to(tmp)): _sha256(f) for f in _files(tmp)}
        (tmp / RUN_FILE).write_text(json.dumps({"run_id": run, "step": state["step"], "sha256": sums}))
        with (tmp / RUN_FILE).open("rb") as fh:
            os.fsync(fh.fileno())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        mine = [c for c in sorted(root.glob("step-*")) if read_run_id(c) == run]
        for old in mine[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(out: Path) -> Path | None:
    """Newest complete checkpoint folder (one with its state file) of any run; partial ones are skipped.
    Resume uses `find_checkpoint`, which also checks the run id and checksums."""
    for ckpt in sorted((out / "checkpoints").glob("step-*"), reverse=True):
        if (ckpt / STATE_FILE).is_file() and (ckpt / "scheduler.pt").is_file():
            return ckpt
    return None


def verify_checkpoint(ckpt: Path) -> str | None:
    """What is wrong with checkpoint folder `ckpt` (missing run.json or file, checksum mismatch, state file
    that does not parse), or None when it is intact."""
    if not ckpt.is_dir():
        return "no such folder"
    try:
        meta = json.loads((ckpt / RUN_FILE).read_text())
        sums = dict(meta["sha256"])
        str(meta["run_id"])
    except FileNotFoundError:
        return f"no {RUN_FILE} (written by an older rewardlab: cannot be verified)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{RUN_FILE} is unreadable ({type(e).__name__}: {e})"
    for name in (STATE_FILE, "scheduler.pt"):
        if name not in sums:
            return f"{RUN_FILE} lists no {name}"
    for name, digest in sums.items():
        f = ckpt / name
        if not f.is_file():
            return f"{name} is missing"
        if _sha256(f) != digest:
            return f"{name} does not match its checksum (truncated or changed after it was written)"
    try:
        state = json.loads((ckpt / STATE_FILE).read_text())
        int(state["step"])
    except (ValueError, KeyError, TypeError) as e:
        return f"{STATE_FILE} does not parse ({type(e).__name__}: {e})"
    return None


def find_checkpoint(out: Path, run: str, force: bool = False, say: Callable[[str], None] = print) -> Path:
    """``--resume latest``: the newest checkpoint of run `run` under out/checkpoints that verifies; each
    newer one skipped is reported through `say` with what was wrong. With `force`, checkpoints without
    run.json (older rewardlab) are used unverified. Another run's checkpoints are never picked."""
    root = out / "checkpoints"
    others = []
    for ckpt in sorted(root.glob("step-*"), reverse=True):
        owner = read_run_id(ckpt)
        if owner is not None and owner != run:
            others.append(ckpt.name)
            continue
        problem = verify_checkpoint(ckpt)
        if problem is None:
            return ckpt
        if force and not (ckpt / RUN_FILE).exists() and (ckpt / STATE_FILE).is_file():
            say(f"--resume latest: {ckpt} has no {RUN_FILE} (older rewardlab); used unverified (--force)")
            return ckpt
        hint = "; pass --force to use it unverified" if not (ckpt / RUN_FILE).exists() else ""
        say(f"--resume latest: skipping {ckpt}: {problem}{hint}")
    note = f" ({len(others)} of another run ignored: {', '.join(others)})" if others else ""
    raise FileNotFoundError(
        f"--resume latest: no intact checkpoint of this run (id {run}) under {root}{note}"
    )


def check_resume_path(ckpt: Path, run: str, force: bool) -> str | None:
    """``--resume PATH``: refuse a damaged checkpoint or another run's (ValueError naming both run ids and
    --force); with `force` another run's or an unverifiable one is allowed and a warning is returned."""
    if not ckpt.is_dir():
        raise FileNotFoundError(f"--resume {ckpt}: no such checkpoint folder")
    owner = read_run_id(ckpt)
    if (ckpt / RUN_FILE).exists() and owner is None:
        raise ValueError(f"--resume {ckpt}: {verify_checkpoint(ckpt)}")
    if owner is not None:
        problem = verify_checkpoint(ckpt)
        if problem is not None:
            raise ValueError(f"--resume {ckpt}: {problem}")
        if owner == run:
            return None
        if not force:
            raise ValueError(
                f"--resume {ckpt}: that checkpoint belongs to run {owner}, this config is run {run} "
                "(another seed, data or hyperparameters); pass --force to continue from it anyway"
            )
        return f"--resume {ckpt}: checkpoint of run {owner} continued as run {run} (--force)"
    if not force:
        raise ValueError(
            f"--resume {ckpt}: no {RUN_FILE} (written by an older rewardlab), so it cannot be verified as "
            "this run's; pass --force to use it unverified"
        )
    return f"--resume {ckpt}: no {RUN_FILE}; used unverified (--force)"


def load_checkpoint(
    resume: str,
    accelerator: Any,
    scheduler: Any,
    out: Path,
    run: str = "",
    force: bool = False,
    say: Callable[[str], None] = print,
) -> tuple[dict, Path]:
    """``--resume latest`` or a checkpoint folder: verify it is run `run`'s and intact, restore the prepared
    objects; returns (state, folder). Any failure is a ValueError/FileNotFoundError naming the folder."""
    if resume == "latest":
        ckpt = find_checkpoint(out, run, force, say)
    else:
        ckpt = Path(resume)
        warning = check_resume_path(ckpt, run, force)
        if warning:
            say(warning)
    try:
        state = json.loads((ckpt / STATE_FILE).read_text())
        accelerator.load_state(str(ckpt))
        scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    except Exception as e:  # an unverified (--force) checkpoint: name it rather than show a library trace
        raise ValueError(f"--resume: checkpoint {ckpt} could not be loaded ({type(e).__name__}: {e})") from e
    return state, ckpt


def prepare_output(out: Path, run: str, overwrite: bool) -> None:
    """A new run (no --resume) into `out`: refuse when it holds another run's checkpoints or model (ValueError
    naming the folder and --overwrite); with `overwrite`, or when they are this run's own (the same config
    trained again), the old checkpoints folder is removed so retention and resume see only the new run's."""
    root = out / "checkpoints"
    ckpts = sorted(root.glob("step-*"))
    foreign = [c.name for c in ckpts if read_run_id(c) != run]
    model_owner = None
    if (out / "rewardlab.json").is_file():
        model_owner = read_run_id(out)
    foreign_model = (out / "rewardlab.json").is_file() and model_owner != run
    if (foreign or foreign_model) and not overwrite:
        what = []
        if foreign:
            what.append(f"checkpoints of another run ({', '.join(foreign)})")
        if foreign_model:
            what.append(
                "a model of another run (rewardlab.json" + ("" if model_owner else ", no run.json") + ")"
            )
        raise ValueError(
            f"--output-dir {out} already holds {' and '.join(what)}; this config is run {run}. Pass "
            "--overwrite to replace them, --resume latest to continue this run, or another --output-dir"
        )
    shutil.rmtree(root, ignore_errors=True)


def write_run_file(out: Path, run: str, cfg: Any) -> None:
    """out/run.json: which run wrote this folder's model, so a later run can tell its own folder from
    another's (`prepare_output`)."""
    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUN_ID_IGNORED}
    (out / RUN_FILE).write_text(json.dumps({"run_id": run, "config": fields}, default=str, indent=1) + "\n")
