"""Vectors of single sentences (for ranking evidence), kept on disk across runs.

The answer service ranks the sentences of the retrieved chunks by embedding each one: over
a second for a 256-token chunk on two cores, most of the 46 minutes of an ARCD eval when
each question's chunks were embedded on first use. So the indexer embeds them with the
chunks (`embed_chunk_sentences`; `scored_sentences` says which spans, for both sides), and
the answer service embeds only what it does not find, an index built without them (both
through `SentenceVectors.embed_missing`). The vectors are kept in SQLite in the data
folder, keyed by the embedding model's hash, the article's content hash and the sentence's
span: a restart, a second process or a re-index reuses them, and an edited article (a new
hash) never does. In front sits a bounded in-memory cache. If the file cannot be written
(a read-only data folder), the cache works in memory only.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index.chunking import clause_spans, sentence_spans
from index.text import tokens

log = logging.getLogger(__name__)

FILE_NAME = "sentence-vectors.sqlite3"
MEMORY_ITEMS = 20_000

Key = tuple[str, int, int]  # (article sha256, start, end)
Span = tuple[int, int]

LONG_SENTENCE_WORDS = 20  # sentences this long are also scored clause by clause


def scored_sentences(article_text: str, chunk_text: str, chunk_start: int
                     ) -> list[tuple[Span, list[Span]]]:
    """Each sentence of a chunk worth ranking (two words or more), with the spans it is
    scored by: the sentence and, when it is long, its comma-separated clauses (one vector
    for a sentence listing four officials matches a question about one of them poorly).
    Spans are offsets into the article's text, as the cache keys them."""
    found = []
    for start, end in sentence_spans(chunk_text, chunk_start):
        words = len(tokens(article_text[start:end]))
        if words < 2:
            continue
        units = [(start, end)]
        if words >= LONG_SENTENCE_WORDS:
            units += clause_spans(article_text, start, end)
        found.append(((start, end), units))
    return found


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

    def embed_missing(self, texts: dict[Key, str], embed: Callable[[list[str]], np.ndarray],
                      batch: int = 512, progress: bool = False
                      ) -> tuple[dict[Key, np.ndarray], int]:
        """The vectors of `texts` (by key): those the cache holds, and the others embedded
        and kept, batch by batch (an interrupted run keeps what it did); with how many
        were embedded."""
        vectors = self.get(list(texts))
        missing = [key for key in texts if key not in vectors]
        with tqdm(total=len(missing), desc="Embedding sentences", unit="sentence",
                  disable=not progress or not missing) as bar:
            for first in range(0, len(missing), batch):
                keys = missing[first:first + batch]
                new = {key: np.asarray(vector, dtype=np.float32) for key, vector
                       in zip(keys, embed([texts[key] for key in keys]))}
                self.put(new)
                vectors.update(new)
                bar.update(len(keys))
        return vectors, len(missing)

    def _remember(self, key: Key, vector: np.ndarray) -> None:
        self._memory[key] = vector
        self._memory.move_to_end(key)
        while len(self._memory) > MEMORY_ITEMS:
            self._memory.popitem(last=False)


def embed_chunk_sentences(cache: SentenceVectors, embed: Callable[[list[str]], np.ndarray],
                          chunks: Iterable[tuple[str, str, str, int]],
                          progress: bool = False) -> int:
    """Embed and keep every scored sentence of `chunks` (article sha256, article text, chunk
    text, chunk start) that the cache does not hold yet, so that no question waits for
    them; returns how many were embedded."""
    wanted: dict[Key, str] = {}
    for sha, text, chunk_text, chunk_start in chunks:
        for _, units in scored_sentences(text, chunk_text, chunk_start):
            for start, end in units:
                wanted.setdefault((sha, start, end), text[start:end])
    return cache.embed_missing(wanted, embed, progress=progress)[1]
