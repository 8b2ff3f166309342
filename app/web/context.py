"""What the API, the chat UI and the widget share: one service, one model runner, the limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from app.answering.service import AnswerService
from app.llm import BACKENDS, make_backend
from app.service import AnswerResult, SanadService, Token, Turn
from app.settings import Settings
from app.web.conversations import ConversationStore
from app.web.guard import RateLimiter
from app.web.runner import ModelRunner

BACKEND_CHOICES = ("auto", *BACKENDS)


class WebContext:
    def __init__(self, settings: Settings, service: SanadService | None = None):
        self.settings = settings
        self.service = service or SanadService(settings)
        self.runner = ModelRunner(settings.max_waiting_answers)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.conversations = ConversationStore(
            settings.max_conversations, settings.conversation_minutes * 60.0,
            max(settings.history_turns, 1))
        self._other_backends: dict[str, AnswerService] = {}
        self._lock = threading.Lock()
        self.answering_with: str | None = None  # the configured backend, once loaded

    @property
    def default_backend(self) -> str:
        return self.service.settings.llm_backend

    def answers(self, backend: str | None = None) -> SanadService | AnswerService:
        """The answer service for `backend` (the configured one when None); loads it once.

        Other backends share the service's searcher (so its index and embedding model), and
        differ only in the LLM. Call this from the model runner: loading an LLM is slow.
        """
        if backend is None or backend == self.default_backend:
            answers = self.service
            self.answering_with = answers.backend.name
            return answers
        if backend not in BACKEND_CHOICES:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}")
        with self._lock:
            if backend not in self._other_backends:
                settings = self.service.settings.model_copy(update={"llm_backend": backend})
                self._other_backends[backend] = AnswerService(settings, self.service.searcher,
                                                              make_backend(settings))
            return self._other_backends[backend]

    def answer_stream(self, question: str, history: list[Turn] | None = None,
                      k: int | None = None, backend: str | None = None
                      ) -> Iterator[Token | AnswerResult]:
        return self.answers(backend).answer_stream(question, history, k)

    def warm_up(self) -> None:
        """Load the index, the embedding model and the LLM before the first question."""
        self.service.searcher()
        self.answers()
