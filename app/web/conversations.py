"""Conversations of /api/chat, kept in memory, bounded in number, age and length."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from app.service import Turn

_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass
class Conversation:
    id: str
    turns: list[Turn] = field(default_factory=list)
    touched: float = 0.0


class ConversationStore:
    """At most `max_count` conversations; one idle for `max_age` seconds is forgotten.

    Ids are random and made here: a client cannot pick one, so it cannot guess its way into
    someone else's conversation. An unknown or expired id starts a new conversation.
    """

    def __init__(self, max_count: int, max_age: float, max_turns: int,
                 clock: Callable[[], float] = time.monotonic):
        self.max_count = max_count
        self.max_age = max_age
        self.max_turns = max(max_turns, 1)
        self._clock = clock
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self, now: float) -> None:
        while self._items:
            oldest = next(iter(self._items.values()))
            if now - oldest.touched <= self.max_age and len(self._items) <= self.max_count:
                break
            self._items.popitem(last=False)

    def get_or_create(self, conversation_id: str | None) -> Conversation:
        now = self._clock()
        with self._lock:
            self._expire(now)
            conv = self._items.get(conversation_id) if conversation_id else None
            if conv is None:
                conv = Conversation(id=secrets.token_urlsafe(18))
                self._items[conv.id] = conv
            conv.touched = now
            self._items.move_to_end(conv.id)
            self._expire(now)
            return conv

    def history(self, conversation_id: str) -> list[Turn]:
        with self._lock:
            conv = self._items.get(conversation_id)
            return list(conv.turns) if conv else []

    def add_turn(self, conversation_id: str, turn: Turn) -> None:
        with self._lock:
            conv = self._items.get(conversation_id)
            if conv is None:  # expired while answering: the answer still goes out
                return
            conv.turns = [*conv.turns, turn][-self.max_turns:]
            conv.touched = self._clock()
            self._items.move_to_end(conversation_id)

    @staticmethod
    def valid_id(value: str) -> bool:
        return bool(_ID.match(value))
