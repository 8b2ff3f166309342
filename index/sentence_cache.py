"""Vectors of single sentences (for ranking evidence), kept on disk across runs.

The answer service ranks the sentences of the retrieved chunks by embedding each one, so
the first question that reaches a chunk pays for embedding its sentences: over a second
for a 256-token chunk on two cores, most of the 46 minutes of the ARCD eval. The vectors
are kept in SQLite in the data folder, keyed by the embedding model's hash, the article's
content hash and the sentence's span: a restart, a second process or a re-index of other
articles reuses them, and an edited article (a new hash) never does. In front sits a
bounded in-memory cache. If the file cannot be written (a read-only data folder), the
cache works in memory only.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FILE_NAME = "sentence-vectors.sqlite3"
MEMORY_ITEMS = 20_000

Key = tuple[str, int, int]  # (article sha256, start, end)


class SentenceVectors:
    def __init__(self, folder: Path | None, model_hash: str, dim: int):
        self.model_hash = model_hash
        self.dim = dim
        self._memory: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(folder / FILE_NAME, check_same_thread=False,
                                           timeout=30)
                self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS vectors (model TEXT, sha256 TEXT, start INTEGER,"
                    " end INTEGER, vector BLOB, PRIMARY KEY (model, sha256, start, end))")
                self._db.commit()
            except (sqlite3.Error, OSError) as exc:  # OSError: mkdir in a read-only place
                log.warning("sentence vectors kept in memory only: %s (%s)", folder, exc)
                self._db = None

    @property
    def persistent(self) -> bool:
        return self._db is not None

    def get(self, keys: list[Key]) -> dict[Key, np.ndarray]:
        """The vectors known for `keys` (memory first, then disk)."""
        with self._lock:
            found = {k: self._memory[k] for k in keys if k in self._memory}
            wanted = [k for k in dict.fromkeys(keys) if k not in found]
            if wanted and self._db is not None:
                try:
                    for key in wanted:
                        row = self._db.execute(
                            "SELECT vector FROM vectors WHERE model=? AND sha256=? AND start=?"
                            " AND end=?", (self.model_hash, *key)).fetchone()
                        if row is not None:
                            vector = np.frombuffer(row[0], dtype=np.float32)
                            if vector.shape == (self.dim,):
                                found[key] = vector
                                self._remember(key, vector)
                except sqlite3.Error as exc:
                    log.warning("cannot read cached sentence vectors: %s", exc)
            return found

    def put(self, items: dict[Key, np.ndarray]) -> None:
        items = {key: np.asarray(v, dtype=np.float32) for key, v in items.items()}
        with self._lock:
            for key, vector in items.items():
                self._remember(key, vector)
            if self._db is None or not items:
                return
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO vectors VALUES (?, ?, ?, ?, ?)",
                    [(self.model_hash, *key, v.tobytes()) for key, v in items.items()])
                self._db.commit()
            except sqlite3.Error as exc:  # a full disk loses the cache, not the answer
                log.warning("cannot store sentence vectors: %s", exc)

    def _remember(self, key: Key, vector: np.ndarray) -> None:
        self._memory[key] = vector
        self._memory.move_to_end(key)
        while len(self._memory) > MEMORY_ITEMS:
            self._memory.popitem(last=False)
