"""Dynamic micro-batching: the embeddings of answers that run at once, computed together.

A short query costs the model little more in a batch of eight than alone (its matrix
products are bound by reading the weights), so when several answers run at once each
`embed_query` (and each `embed_documents` of sentences the on-disk cache lacks) is put on
a queue, and one worker thread embeds everything that arrived within a small window in one
model call. Model calls stay one at a time: the worker takes the model lock for each batch.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from index import Embedder


@dataclass
class _Job:
    texts: list[str]
    queries: bool  # query prompt (embed_queries) or document prompt (embed_documents)
    arrived: float = field(default_factory=time.monotonic)
    result: Future = field(default_factory=Future)


class BatchingEmbedder(Embedder):
    """`inner`, with the calls of concurrent threads gathered into batches.

    A batch is what arrived within `wait_ms` of its first text (at most `max_batch` texts;
    a larger single call is never split), so an idle server adds at most `wait_ms` to a
    question. Never call it while holding `model_lock`: the worker needs the lock to run the
    batch (indexing embeds through the inner model in its own slot instead).
    """

    def __init__(self, inner: Embedder, model_lock: threading.Lock, *, wait_ms: float = 5.0,
                 max_batch: int = 32):
        super().__init__(inner.model, inner.identity, inner.count_tokens)
        self.inner = inner
        self.model_lock = model_lock
        self.wait = max(wait_ms, 0.0) / 1000.0
        self.max_batch = max(max_batch, 1)
        self.batches = 0  # model calls made, for tests and figures
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def has_query_twin(self) -> bool:
        return self.inner.has_query_twin

    def embed_query(self, text: str) -> np.ndarray:
        return self._submit(_Job([text], queries=True))[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._submit(_Job(list(texts), queries=True))

    def embed_documents(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._submit(_Job(list(texts), queries=False))

    def word_vectors(self, texts: list[str]) -> list[dict[str, np.ndarray]] | None:
        # Rare (rendering checks) and not batched: one model call under the model lock.
        with self.model_lock:
            return self.inner.word_vectors(texts)

    def close(self) -> None:
        """Stop the worker once the batches already queued are done."""
        if self._worker is not None:
            self._jobs.put(None)

    def _submit(self, job: _Job) -> np.ndarray:
        if not job.texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._start()
        self._jobs.put(job)
        return job.result.result()

    def _start(self) -> None:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="sanad-embed-batcher",
                                                daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = self._gather(first)
            with self.model_lock:
                self._embed(batch, queries=True)
                self._embed(batch, queries=False)
            if any(job is None for job in batch):
                return

    def _gather(self, first: _Job) -> list[_Job | None]:
        """`first` and what else arrives within the window opened by its arrival."""
        batch: list[_Job | None] = [first]
        size = len(first.texts)
        closes = first.arrived + self.wait
        while size < self.max_batch:
            left = closes - time.monotonic()
            try:
                job = self._jobs.get(timeout=left) if left > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            batch.append(job)
            if job is None:  # closing: run what was gathered, then stop
                break
            size += len(job.texts)
        return batch

    def _embed(self, batch: list[_Job | None], *, queries: bool) -> None:
        """One model call for the batch's jobs of one kind; each job gets its rows."""
        jobs = [job for job in batch if job is not None and job.queries == queries]
        if not jobs:
            return
        texts = [text for job in jobs for text in job.texts]
        try:
            embed = self.inner.embed_queries if queries else self.inner.embed_documents
            matrix = embed(texts)
        except BaseException as exc:  # noqa: BLE001 - every waiting caller hears of it
            for job in jobs:
                job.result.set_exception(exc)
            return
        finally:
            self.batches += 1
        start = 0
        for job in jobs:
            job.result.set_result(matrix[start:start + len(job.texts)])
            start += len(job.texts)
