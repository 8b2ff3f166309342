"""Run the synchronous, CPU-bound answer service off the event loop, one model call at a time.

Two CPU cores run one embedding or LLM call well and two badly, so calls are serialised with
a lock. Requests waiting for that lock are counted: past `max_waiting` a new one is refused
at once with `Busy` (the API turns that into 503) instead of piling up without bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
# Background work waits this long at most for a moment without answers, then takes a batch.
BACKGROUND_WAITS_AT_MOST = 5.0


class Busy(RuntimeError):
    """Too many requests are already waiting for the model."""


class ModelRunner:
    def __init__(self, max_waiting: int):
        self.capacity = max_waiting + 1  # the running call plus the waiting ones
        self._model_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._admitted = 0
        self._idle = threading.Condition(self._count_lock)  # notified as calls finish
        # One thread per admitted call, so an admitted call never waits for a thread.
        self._pool = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="sanad-model")

    @property
    def admitted(self) -> int:
        return self._admitted

    def _admit(self) -> None:
        with self._count_lock:
            if self._admitted >= self.capacity:
                raise Busy(f"Sanad is busy answering {self._admitted} other requests; "
                           "try again in 30 seconds")
            self._admitted += 1

    def _release(self) -> None:
        with self._count_lock:
            self._admitted -= 1
            self._idle.notify_all()

    @contextmanager
    def batch_slot(self, longest_wait: float = BACKGROUND_WAITS_AT_MOST) -> Iterator[None]:
        """The model for one batch of background work (indexing): answers go first.

        The batch waits until no answer is running or waiting, so a question asked during
        indexing waits for at most the one batch already running. Under a steady stream of
        questions it still gets the model after `longest_wait` seconds, so indexing ends.
        """
        with self._count_lock:
            self._idle.wait_for(lambda: self._admitted == 0, timeout=longest_wait)
        with self._model_lock:
            yield

    async def call(self, fn: Callable[..., T], *args) -> T:
        """`fn(*args)` in a worker thread, holding the model lock."""
        self._admit()

        def work() -> T:
            try:
                with self._model_lock:
                    return fn(*args)
            finally:
                self._release()

        # The caller's context goes along (as anyio.to_thread does): Gradio's progress
        # reporting finds its event through context variables.
        context = contextvars.copy_context()
        try:
            future = asyncio.get_running_loop().run_in_executor(self._pool, context.run, work)
        except BaseException:  # the pool is shut down: work() will never release
            self._release()
            raise
        return await future

    async def stream(self, produce: Callable[[], Iterable[T]]) -> AsyncIterator[T]:
        """The items of `produce()`, iterated in a worker thread holding the model lock.

        `Busy` is raised by the first `anext`, before any item. If the consumer stops early,
        the worker stops after the item it is producing.
        """
        self._admit()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the event loop is gone (server shutting down)
                stop.set()

        def work() -> None:
            failure: BaseException | None = None
            try:
                with self._model_lock:
                    if stop.is_set():
                        return
                    for item in produce():
                        put("item", item)
                        if stop.is_set():
                            break
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                failure = exc
            finally:
                self._release()  # before the consumer hears of the end, so it sees the slot free
                if failure is not None:
                    put("error", failure)
                put("done", None)

        try:
            future = loop.run_in_executor(self._pool, contextvars.copy_context().run, work)
        except BaseException:
            self._release()
            raise
        try:
            while True:
                kind, value = await queue.get()
                if kind == "item":
                    yield value  # type: ignore[misc]
                elif kind == "error":
                    raise value  # type: ignore[misc]
                else:
                    break
            await future
        finally:
            stop.set()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
