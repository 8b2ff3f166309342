"""Dynamic micro-batching of embeddings (app/batching.py) and the model lock around LLM
replies (app/model_lock.py), with fakes; one slow test with the real model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.batching import BatchingEmbedder
from app.llm import Backend
from app.model_lock import LockedBackend
from index import Embedder
from tests.fakes import FakeEmbedder

QUESTIONS = [f"Where does river number {n} end?" for n in range(8)]


class CountingEmbedder(Embedder):
    """The fake model, counting its model calls, each taking `delay` and checking that
    the model lock is held."""

    def __init__(self, lock: threading.Lock, delay: float = 0.05):
        self.fake = FakeEmbedder()
        super().__init__(self.fake.model, self.fake.identity, self.fake.count_tokens)
        self.lock, self.delay = lock, delay
        self.calls: list[tuple[str, int]] = []

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._call("queries", texts, self.fake.embed_queries)

    def embed_documents(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._call("documents", texts, self.fake.embed_documents)

    def word_vectors(self, texts: list[str]):
        return self._call("words", texts, lambda t: [{w: np.ones(2)} for w in t])

    def _call(self, kind, texts, embed):
        assert self.lock.locked(), "a model call without the model lock"
        self.calls.append((kind, len(texts)))
        time.sleep(self.delay)
        return embed(texts)


def test_words_read_in_context_come_from_the_inner_model_under_the_lock():
    lock = threading.Lock()
    inner = CountingEmbedder(lock, delay=0)
    batching = BatchingEmbedder(inner, lock)
    assert [list(words) for words in batching.word_vectors(["a", "b"])] == [["a"], ["b"]]
    assert inner.calls == [("words", 2)]
    assert not lock.locked()


def at_once(fn, items, workers=8):
    """`fn` over `items` from `workers` threads released together."""
    start = threading.Barrier(len(items))

    def run(item):
        start.wait()
        return fn(item)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, items))


def test_concurrent_queries_are_embedded_in_few_batches_with_the_same_vectors():
    lock = threading.Lock()
    inner = CountingEmbedder(lock)
    batching = BatchingEmbedder(inner, lock, wait_ms=10, max_batch=16)
    vectors = at_once(batching.embed_query, QUESTIONS)
    # While the first batch runs (50 ms) the others queue, so at most two model calls.
    assert len(inner.calls) <= 2 and sum(n for _, n in inner.calls) == len(QUESTIONS)
    assert batching.batches == len(inner.calls)
    alone = FakeEmbedder()
    for question, vector in zip(QUESTIONS, vectors):
        np.testing.assert_allclose(vector, alone.embed_query(question), atol=1e-6)
    batching.close()


def test_documents_and_queries_batch_apart_and_each_caller_gets_its_rows():
    lock = threading.Lock()
    inner = CountingEmbedder(lock)
    batching = BatchingEmbedder(inner, lock, wait_ms=20, max_batch=64)
    jobs = [("q", [q]) for q in QUESTIONS[:4]] + [("d", QUESTIONS[4:6]), ("d", QUESTIONS[6:])]

    def run(job):
        kind, texts = job
        return batching.embed_queries(texts) if kind == "q" else batching.embed_documents(texts)

    results = at_once(run, jobs)
    assert {kind for kind, _ in inner.calls} == {"queries", "documents"}
    assert len(inner.calls) <= 4  # far fewer than the six calls asked
    alone = FakeEmbedder()
    for (kind, texts), got in zip(jobs, results):
        want = alone.embed_queries(texts) if kind == "q" else alone.embed_documents(texts)
        assert got.shape == (len(texts), alone.dim)
        np.testing.assert_allclose(got, want, atol=1e-6)
    batching.close()


def test_a_batch_respects_its_largest_size_and_an_idle_call_waits_at_most_the_window():
    lock = threading.Lock()
    inner = CountingEmbedder(lock, delay=0.05)
    batching = BatchingEmbedder(inner, lock, wait_ms=5, max_batch=3)
    at_once(batching.embed_query, QUESTIONS)
    assert all(n <= 3 for _, n in inner.calls) and len(inner.calls) >= 3
    inner.delay = 0.0
    started = time.perf_counter()
    batching.embed_query("alone")
    assert time.perf_counter() - started < 0.5  # the 5 ms window, not a full batch's wait
    batching.close()


def test_a_failed_batch_fails_every_caller_in_it_and_the_next_batch_works():
    lock = threading.Lock()
    inner = CountingEmbedder(lock)
    batching = BatchingEmbedder(inner, lock, wait_ms=20)
    inner.fake.model.delay = 0.0
    broken = threading.Event()
    broken.set()
    original = inner.embed_queries

    def failing(texts):
        if broken.is_set():
            raise RuntimeError("model fell over")
        return original(texts)

    inner.embed_queries = failing
    outcomes = at_once(lambda q: _outcome(batching.embed_query, q), QUESTIONS[:4])
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    broken.clear()
    assert batching.embed_query("Where does the Rhine end?").shape == (inner.dim,)
    batching.close()


def _outcome(fn, arg):
    try:
        return fn(arg)
    except RuntimeError as exc:
        return exc


def test_a_model_call_waits_for_the_lock_held_elsewhere():
    lock = threading.Lock()
    batching = BatchingEmbedder(CountingEmbedder(lock, delay=0.0), lock, wait_ms=0)
    with ThreadPoolExecutor(1) as pool:
        with lock:  # an LLM reply or an indexing batch holds the model
            pending = pool.submit(batching.embed_query, "Where does the Rhine end?")
            time.sleep(0.1)
            assert not pending.done()
        assert pending.result(5).shape == (batching.dim,)
    batching.close()


def test_questions_reach_the_query_model_in_one_call_with_or_without_the_twin():
    fake = FakeEmbedder()
    calls = []

    class QueryModel:  # sentence-transformers' encode, as load_embedder hands the model on
        def encode(self, texts, *, prompt_name, normalize_embeddings, show_progress_bar,
                   batch_size):
            calls.append((prompt_name, len(texts), batch_size))
            return np.stack([fake.embed_query(t) for t in texts])

    for twin in (False, True):
        calls.clear()
        embedder = Embedder(fake.model, fake.identity, fake.count_tokens,
                            query_model=QueryModel(), query_twin=twin)
        assert embedder.has_query_twin is twin
        vectors = embedder.embed_queries(QUESTIONS)
        assert calls == [("query", len(QUESTIONS), len(QUESTIONS))]
        np.testing.assert_allclose(vectors[3], fake.embed_query(QUESTIONS[3]), atol=1e-6)
    assert not Embedder(fake.model, fake.identity, fake.count_tokens,
                        query_twin=True).has_query_twin  # no query model, no twin


def test_llm_replies_of_concurrent_answers_never_overlap():
    lock = threading.Lock()
    active, most = [0], [0]

    class Slow(Backend):
        def stream(self, messages, side=False):
            active[0] += 1
            most[0] = max(most[0], active[0])
            for word in ("one ", "two"):
                time.sleep(0.02)
                yield word
            active[0] -= 1

    backend = LockedBackend(Slow("slow", None), lock)
    assert backend.name == "slow" and backend.llm is None  # the rest is the inner backend's
    replies = at_once(lambda _: backend.complete([]), range(4))
    assert replies == ["one two"] * 4 and most[0] == 1
    assert LockedBackend(backend, lock).inner is backend.inner  # never wrapped twice
    # A reply abandoned midway lets go of the model.
    partial = backend.stream([])
    next(partial)
    assert lock.locked()
    partial.close()
    assert not lock.locked()


@pytest.mark.slow
def test_batched_queries_match_single_ones_on_the_real_model(seeded_service):
    real_embedder = seeded_service.embed_model
    # The path the server takes by default: the bf16 model itself, several questions per
    # call (the float32 twin is off unless embed_query_twin asks for it).
    assert not real_embedder.has_query_twin
    lock = threading.Lock()
    batching = BatchingEmbedder(real_embedder, lock, wait_ms=20)
    questions = [*QUESTIONS[:3], "ماذا طلبت المكسيك؟", "Who attended the talks in Geneva?"]
    batched = at_once(batching.embed_query, questions, workers=len(questions))
    assert batching.batches < len(questions)
    for question, vector in zip(questions, batched):
        single = real_embedder.embed_query(question)
        assert float(vector @ single) >= 0.9999
        # bfloat16 sums round differently beside a batch's padding (the float32 twin
        # stayed within 2e-4; bf16 differs by about 1.5e-3 in a coordinate, cosine 0.99994)
        np.testing.assert_allclose(vector, single, atol=3e-3)
    batching.close()
