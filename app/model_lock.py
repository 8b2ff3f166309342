"""An LLM backend whose replies take the model lock, so concurrent answers share one model.

Answers run in several threads at once (the web server's runner); their cheap steps overlap,
but two llama.cpp replies on a small CPU would each run at half speed, and a local model
cannot serve two at once. Each reply holds the lock from its first token to its last.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from llama_index.core.llms import ChatMessage

from app.llm import Backend


class LockedBackend:
    """`inner` (a Backend) with `stream` and `complete` under `lock`; the rest is `inner`'s."""

    def __init__(self, inner: Backend, lock: threading.Lock):
        self.inner = inner.inner if isinstance(inner, LockedBackend) else inner
        self.lock = lock

    def __getattr__(self, name: str):  # name, llm, notice, ...: as the inner backend says
        return getattr(self.inner, name)

    def stream(self, messages: Sequence[ChatMessage], side: bool = False) -> Iterator[str]:
        with self.lock:
            yield from self.inner.stream(messages, side)

    def complete(self, messages: Sequence[ChatMessage], side: bool = False) -> str:
        with self.lock:
            return self.inner.complete(messages, side)

    def sample(self, messages: Sequence[ChatMessage], seed: int, side: bool = False) -> str:
        with self.lock:
            return self.inner.sample(messages, seed, side)

    def prepare(self, messages: Sequence[ChatMessage]) -> None:
        with self.lock:
            self.inner.prepare(messages)
