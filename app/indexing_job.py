"""Articles added while the server answers: indexed in the background, one batch at a time.

The model slot (one embedding or LLM call at a time on a small CPU) is taken per embedding
batch, never for the whole file, so a question asked during an upload waits for at most one
batch. `SlotEmbedder` does that around the real model without the indexer knowing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from index import Embedder

Slot = Callable[[], AbstractContextManager]


class SlotEmbedder(Embedder):
    """The embedding model as the indexer sees it, taking `slot()` around each batch."""

    def __init__(self, inner: Embedder, slot: Slot,
                 on_batch: Callable[[int, int], None] = lambda done, total: None):
        super().__init__(inner.model, inner.identity, inner.count_tokens)
        self._inner = inner
        self._slot = slot
        self._on_batch = on_batch

    def embed_documents(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return self._inner.embed_documents(texts)
        size = max(1, int(self.model.embed_batch_size))
        # Batches of similar length, as the inner model would make them; order restored after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        matrix = np.empty((len(texts), self.dim), dtype=np.float32)
        self._on_batch(0, len(texts))
        for start in range(0, len(texts), size):
            batch = order[start:start + size]
            with self._slot():
                matrix[batch] = self._inner.embed_documents([texts[i] for i in batch])
            self._on_batch(min(start + size, len(texts)), len(texts))
        return matrix

    def embed_query(self, text: str) -> np.ndarray:
        with self._slot():
            return self._inner.embed_query(text)


@dataclass
class IndexJob:
    """One background indexing run, as the uploader follows it."""

    files: list[str]
    state: str = "queued"  # queued, indexing, done, failed
    texts_done: int = 0  # chunks, then the sentences evidence is ranked by
    texts_total: int = 0
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    finished_event: threading.Event = field(default_factory=threading.Event, repr=False)
    _earlier: int = field(default=0, repr=False)  # texts of the finished calls
    _current: int = field(default=0, repr=False)  # texts of the call under way

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def progress(self, done: int, total: int) -> None:
        """(done, total) of the embedding call under way. Calls follow one another (the
        chunks, then the sentences batch by batch), so the job counts every text of the
        calls so far: the total grows as each call starts."""
        if done == 0:
            self._earlier += self._current
            self._current = total
        self.texts_done, self.texts_total = self._earlier + done, self._earlier + total

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished_event.wait(timeout)


def no_slot() -> AbstractContextManager:
    return contextlib.nullcontext()
