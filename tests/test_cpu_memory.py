"""--trim-memory: freed heap pages go back to the OS (tests/test_train.py: the weights do not change)."""

from __future__ import annotations

import pytest

from rewardlab.training.cpu_memory import release_free_heap, trim_available

pytestmark = pytest.mark.skipif(not trim_available(), reason="needs glibc's malloc_trim")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_freed_heap_pages_are_returned():
    blocks = [bytes(100_000) for _ in range(2000)]  # 200 MB of heap chunks, below the mmap threshold
    keep = blocks[-1]  # the last chunk pins the heap's top, so free() alone cannot shrink it
    del blocks
    before = _rss_mb()
    assert release_free_heap()
    assert before - _rss_mb() > 100
    assert len(keep) == 100_000
