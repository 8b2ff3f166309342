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

from llama_index.core.base.embeddings.base import BaseEmbedding

from index.embedding import identity, token_counter

Slot = Callable[[], AbstractContextManager]


class SlotEmbedder:
    """The embedding model as the indexer sees it, taking `slot()` around each batch.

    It carries the model's identity and token counter (what the indexer reads from a
    model) and passes everything else through.
    """

    def __init__(self, model: BaseEmbedding, slot: Slot,
                 on_batch: Callable[[int, int], None] = lambda done, total: None):
        self._model = model
        self._slot = slot
        self._on_batch = on_batch
        self.__dict__["sanad_identity"] = identity(model)
        self.__dict__["sanad_count_tokens"] = token_counter(model)

    def __getattr__(self, name: str):
        if name == "_model":  # not set yet (copying): no endless lookup
            raise AttributeError(name)
        return getattr(self._model, name)

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                 **kwargs) -> list[list[float]]:
        size = max(1, int(self._model.embed_batch_size))
        vectors: list[list[float]] = []
        self._on_batch(0, len(texts))
        for start in range(0, len(texts), size):
            with self._slot():
                vectors.extend(self._model.get_text_embedding_batch(texts[start:start + size]))
            self._on_batch(len(vectors), len(texts))
        return vectors


@dataclass
class IndexJob:
    """One background indexing run, as the uploader follows it."""

    files: list[str]
    state: str = "queued"  # queued, indexing, done, failed
    chunks_done: int = 0
    chunks_total: int = 0
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    finished_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def progress(self, done: int, total: int) -> None:
        self.chunks_done, self.chunks_total = done, total

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished_event.wait(timeout)


def no_slot() -> AbstractContextManager:
    return contextlib.nullcontext()
