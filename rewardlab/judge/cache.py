"""The judge's on-disk result cache: a judge is slow and deterministic (logits, or temperature-0
replies), so a result is stored under a content hash and never computed twice.

The key is SHA-256 over (cache format, the judge model's fingerprint, the template's SHA-256, what was
asked: label log-probabilities or a text reply, and the exact rendered text sent to the model). A changed
template file, another model or another text is a miss; the same ones hit whatever the file or run. Only
successes are stored: an error (a timeout, a garbage reply) is retried on the next run. One SQLite file,
so concurrent readers and a writer are safe.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

CACHE_FORMAT = 1


def cache_key(model_id: str, template_sha: str, query: str, text: str) -> str:
    blob = json.dumps([CACHE_FORMAT, model_id, template_sha, query, text], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResultCache:
    """get/put JSON values by key in one SQLite file; ``hits`` and ``misses`` count this process's use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put_many(self, items: list[tuple[str, Any]]) -> None:
        if not items:
            return
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in items],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
