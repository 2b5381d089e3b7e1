"""Start several CPU processes the way users do (torchrun, gloo), for the distributed tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

TORCHRUN = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
HAVE_TORCHRUN = Path(TORCHRUN).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node N ARGS` on loopback, one thread per process, offline; output captured."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [TORCHRUN, "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1", "--master_port"]
    return subprocess.run(
        [*cmd, str(free_port()), *args], capture_output=True, text=True, env=env, timeout=timeout
    )
