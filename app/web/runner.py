"""Run the synchronous answer service off the event loop: several answers at once, in turn.

Up to `workers` answers run at once in worker threads. Their cheap steps (search, checks)
overlap, while their model calls take the model lock one at a time (two CPU cores run one
call well and two badly), and their embeddings are batched (app/batching.py). A request
that finds every worker busy waits in a first-come, first-served queue and may be told its
position. It is refused with `Busy` (503) only when it could not start within
`deadline_s`: at once when the recent service time says so, or when the deadline passes.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
# Background work waits this long at most for a moment without answers, then takes a batch.
BACKGROUND_WAITS_AT_MOST = 5.0
# How often a waiting request looks at its position (and reports a change).
POSITION_POLL_S = 0.25
# Weight of the newest answer in the running mean of service times.
SERVICE_TIME_WEIGHT = 0.2


class Busy(RuntimeError):
    """The request could not start within the queue's deadline."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Queued:
    """Not an answer's item: the request waits, `position` requests ahead of it."""

    position: int


@dataclass(eq=False)
class _Ticket:
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    granted: bool = False


class ModelRunner:
    def __init__(self, workers: int = 8, deadline_s: float = 30.0,
                 model_lock: threading.Lock | None = None):
        self.workers = workers
        self.deadline_s = deadline_s
        self.model_lock = model_lock or threading.Lock()
        self._state = threading.Condition()  # guards the counts below; notified as they change
        self._running = 0
        self._waiting: deque[_Ticket] = deque()
        self._service_s: float | None = None  # running mean of one answer's time in a worker
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sanad-answer")

    @property
    def admitted(self) -> int:
        """Requests running or waiting."""
        return self._running + len(self._waiting)

    # -- the queue ----------------------------------------------------------------------
    def estimated_wait(self, ahead: int) -> float:
        """Seconds until a request with `ahead` requests before it starts, from the recent
        service time: `workers` answers finish per service time."""
        if self._service_s is None:
            return 0.0
        return (ahead + 1) * self._service_s / self.workers

    def _refusal(self, ahead: int) -> Busy:
        wait = self.estimated_wait(ahead)
        # When a request arriving then would start within the deadline, if no one else came.
        retry = max(1, math.ceil(wait - self.deadline_s))
        return Busy(f"Sanad is busy: {self._running} questions are being answered and "
                    f"{len(self._waiting)} "
                    f"are waiting; a new one would start in about {wait:.0f} s, past the "
                    f"{self.deadline_s:g} s limit. Try again in {retry} s.", retry)

    async def _turn(self) -> AsyncIterator[int]:
        """Wait for a worker, first come first served; yields the position whenever it
        changes. On return the caller holds a worker and must `_finish` it."""
        with self._state:
            if self._running < self.workers and not self._waiting:
                self._running += 1
                return
            if self.estimated_wait(len(self._waiting)) > self.deadline_s:
                raise self._refusal(len(self._waiting))
            ticket = _Ticket(asyncio.get_running_loop())
            self._waiting.append(ticket)
        gives_up = time.monotonic() + self.deadline_s
        reported = None
        try:
            while True:
                with self._state:
                    if ticket.granted:
                        return
                    position = self._waiting.index(ticket)
                    if time.monotonic() >= gives_up:
                        self._waiting.remove(ticket)
                        self._state.notify_all()
                        raise self._refusal(position)
                if position != reported:
                    reported = position
                    yield position
                ticket.wake.clear()
                left = gives_up - time.monotonic()
                with suppress(TimeoutError):
                    await asyncio.wait_for(ticket.wake.wait(), max(0.0, min(POSITION_POLL_S, left)))
        except BaseException:  # cancelled or closed while waiting: give the turn back
            with self._state:
                if ticket.granted:
                    self._release_locked(None)
                elif ticket in self._waiting:
                    self._waiting.remove(ticket)
                    self._state.notify_all()
            raise

    def _finish(self, started: float | None) -> None:
        with self._state:
            self._release_locked(started)

    def _release_locked(self, started: float | None) -> None:
        """A worker is free: note how long its answer took, and hand it to the next."""
        self._running -= 1
        if started is not None:
            took = time.monotonic() - started
            self._service_s = took if self._service_s is None else (
                SERVICE_TIME_WEIGHT * took + (1 - SERVICE_TIME_WEIGHT) * self._service_s)
        while self._waiting and self._running < self.workers:
            ticket = self._waiting.popleft()
            ticket.granted = True
            self._running += 1
            try:
                ticket.loop.call_soon_threadsafe(ticket.wake.set)
            except RuntimeError:  # its event loop is gone: the request will never run
                self._running -= 1
        self._state.notify_all()

    @contextmanager
    def batch_slot(self, longest_wait: float = BACKGROUND_WAITS_AT_MOST) -> Iterator[None]:
        """The model for one batch of background work (indexing): answers go first.

        The batch waits until no answer is running or waiting, so a question asked during
        indexing waits for at most the one batch already running. Under a steady stream of
        questions it still gets the model after `longest_wait` seconds, so indexing ends.
        """
        with self._state:
            self._state.wait_for(lambda: self.admitted == 0, timeout=longest_wait)
        with self.model_lock:
            yield

    # -- running ------------------------------------------------------------------------
    def _submit(self, work: Callable[[], T]) -> asyncio.Future:
        # The caller's context goes along (as anyio.to_thread does): Gradio's progress
        # reporting finds its event through context variables.
        context = contextvars.copy_context()
        try:
            return asyncio.get_running_loop().run_in_executor(self._pool, context.run, work)
        except BaseException:  # the pool is shut down: work() will never release
            self._finish(None)
            raise

    async def call(self, fn: Callable[..., T], *args) -> T:
        """`fn(*args)` in a worker thread, once it is this request's turn."""
        async for _ in self._turn():
            pass

        def work() -> T:
            started = time.monotonic()
            try:
                return fn(*args)
            finally:
                self._finish(started)

        return await self._submit(work)

    async def stream(self, produce: Callable[[], Iterable[T]]) -> AsyncIterator[T | Queued]:
        """`Queued(position)` while the request waits, then the items of `produce()`,
        iterated in a worker thread.

        `Busy` is raised by an `anext`, before any item of `produce()`. If the consumer
        stops early, the worker stops after the item it is producing.
        """
        turn = self._turn()
        try:
            async for position in turn:
                yield Queued(position)
        finally:  # closed while waiting: the ticket leaves the queue now, not when collected
            await turn.aclose()
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
            started = time.monotonic()
            try:
                if stop.is_set():
                    return
                items = iter(produce())
                try:
                    for item in items:
                        put("item", item)
                        if stop.is_set():
                            break
                finally:
                    close = getattr(items, "close", None)
                    if close is not None:  # a generator holding the model lock lets go now
                        close()
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                failure = exc
            finally:
                self._finish(started)  # before the consumer hears of the end
                if failure is not None:
                    put("error", failure)
                put("done", None)

        future = self._submit(work)
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
