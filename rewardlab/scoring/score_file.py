"""Score a whole file of rows, streamed in chunks, on one process or many (`rewardlab score`).

    rewardlab score runs/rm rows.jsonl -o scored.jsonl                               # one process
    torchrun --nproc_per_node 8 -m rewardlab score runs/rm rows.jsonl -o scored.jsonl  # 8 GPUs
    accelerate launch -m rewardlab score runs/rm rows.jsonl -o scored.jsonl

The file is never held in memory whole: it is read twice as a stream, once by the main process to check
every row (so a bad row 900,000 fails before any scoring, naming its line) and count them, then in
chunks of `chunk_rows`. Within a chunk, process ``rank`` scores the rows whose index is ``rank`` modulo
the number of processes (strided, so long and short rows spread evenly), the rewards are gathered on
the main process, and it writes the chunk's rows in input order before the next chunk is read. Every
reward comes from `Scorer`, so a row scores the same whichever process scores it.

The output goes to ``OUT.partial`` and is renamed to ``OUT`` when the last row is written, so a file
named ``OUT`` is always complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rewardlab.data.readers import read_rows
from rewardlab.data.score_rows import score_inputs
from rewardlab.data.types import DataError
from rewardlab.progress import Reporter

CHUNK_ROWS = 4096


@dataclass
class Processes:
    """Where this process stands in a launch (torchrun / accelerate launch), and the device it scores on."""

    rank: int
    world: int
    device: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class ScoreFileResult:
    """What a scoring run did, for the CLI summary."""

    rows: int
    processes: int
    wall_time_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_time_s if self.wall_time_s else 0.0


def init_processes(device: str | None = None) -> Processes:
    """Join the process group a launcher set up (``WORLD_SIZE`` > 1), or stay a single process.

    Under a launcher each process scores on its own device (``cuda:LOCAL_RANK``), or on the CPU with
    ``device="cpu"`` (gloo); naming one GPU makes no sense for several processes and is refused.
    """
    from rewardlab.scoring.scorer import pick_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Processes(0, 1, str(pick_device(device)))
    if device not in (None, "cpu"):
        raise ValueError(
            f"--device {device}: under torchrun/accelerate launch each process uses its own device "
            "(cuda:LOCAL_RANK); drop --device, or pass --device cpu to score on CPU processes"
        )
    from accelerate import PartialState

    cpu = device == "cpu" or pick_device().type == "cpu"
    state = PartialState(cpu=cpu)
    return Processes(state.process_index, state.num_processes, "cpu" if cpu else str(state.device))


def close_processes(procs: Processes) -> None:
    """Leave the process group (no-op for a single process), so the launcher sees a clean exit."""
    import torch.distributed as dist

    if procs.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_score_file(path: str, procs: Processes | None = None) -> int:
    """Rows in `path` after checking every one (up to 20 problems reported at once, with their lines).

    With several processes only the main one reads the file; the count or the error reaches every
    process, so all of them stop together on bad data.
    """
    procs = procs or Processes(0, 1, "cpu")
    found: list[Any] = [0, None]
    if procs.is_main:
        try:
            found[0] = _check_rows(path)
        except (DataError, OSError) as e:  # reaches every process: none is left waiting
            found[1] = e
    if procs.world > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(found, src=0)
    if found[1] is not None:
        raise found[1]
    return found[0]


def _check_rows(path: str) -> int:
    errors: list[str] = []
    n = 0

    def note(err: DataError) -> None:
        errors.append(str(err))

    for where, row in read_rows(path, on_error=note):
        try:
            score_inputs(row, where)
            n += 1
        except DataError as e:
            errors.append(str(e))
    if errors:
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise DataError("\n".join(errors[:20]) + more)
    return n


def score_file(
    scorer: Any,
    path: str,
    out: TextIO | None,
    procs: Processes | None = None,
    chunk_rows: int = CHUNK_ROWS,
    reporter: Reporter | None = None,
) -> ScoreFileResult:
    """Score every row of `path` (checked beforehand by `check_score_file`) and write each row with its
    ``reward`` to `out` (the main process's stream; other processes pass None), in input order.

    `scorer` is a `rewardlab.scoring.Scorer` on this process's device. Every process must call this
    with the same file and `chunk_rows`: they meet once per chunk to gather the rewards.
    """
    procs = procs or Processes(0, 1, "cpu")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if procs.is_main and out is None:
        raise ValueError("the main process needs an output stream")
    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    total = 0
    for chunk in _chunks(path, chunk_rows):
        mine = range(procs.rank, len(chunk), procs.world)
        prompts, responses = [], []
        for i in mine:
            p, r = score_inputs(chunk[i][1], chunk[i][0])
            prompts.append(p)
            responses.append(r)
        rewards = scorer.score(prompts, responses, reporter.advance if procs.is_main else None)
        if procs.world > 1:
            rewards = _gather_strided(rewards, len(chunk), procs)
            if procs.is_main:
                reporter.advance(len(chunk) - len(mine))  # the other processes' rows
        if procs.is_main:
            assert out is not None
            for (_, row), reward in zip(chunk, rewards, strict=True):
                out.write(json.dumps({**row, "reward": reward}, ensure_ascii=False) + "\n")
            out.flush()
        total += len(chunk)
    return ScoreFileResult(rows=total, processes=procs.world, wall_time_s=time.perf_counter() - t0)


def _chunks(path: str, size: int) -> Iterator[list[tuple[str, dict]]]:
    chunk: list[tuple[str, dict]] = []
    for item in read_rows(path):
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _gather_strided(rewards: list[float], n: int, procs: Processes) -> list[float]:
    """Rewards of all `n` rows of a chunk on the main process (in row order), [] elsewhere.

    Row i was scored by process i % world as its (i // world)-th row."""
    import torch.distributed as dist

    parts: list[Any] | None = [None] * procs.world if procs.is_main else None
    dist.gather_object(rewards, parts, dst=0)
    if not procs.is_main:
        return []
    assert parts is not None
    return [parts[i % procs.world][i // procs.world] for i in range(n)]


def check_output(path: str) -> None:
    """Refuse an output path that cannot become a file (a folder, or in a folder that does not exist)
    before anything is scored, naming `-o`; `open_output` calls it too."""
    final = Path(path)
    if final.is_dir():
        raise ValueError(f"-o {path}: is a folder; name the output file, e.g. -o {final / 'scored.jsonl'}")
    if not final.parent.is_dir():
        raise ValueError(f"-o {path}: the folder {final.parent} does not exist; create it first")


@contextlib.contextmanager
def open_output(path: str | None, stdout: TextIO) -> Iterator[TextIO]:
    """`stdout` when no path is given; else ``PATH.partial``, renamed to ``PATH`` only on success."""
    if path is None:
        yield stdout
        return
    check_output(path)
    final = Path(path)
    partial = final.with_name(final.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, final)
