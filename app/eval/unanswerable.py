"""Unanswerable questions made from answerable ones: each asked with its gold article left
out of retrieval, the standard way to get a question the articles cannot answer without
writing new ones. The index is the same; only the search skips that article's chunks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from app.answering.service import AnswerService
from app.eval.datasets import EvalQuestion
from app.service import AnswerResult, SanadService, Turn
from index import Passage, Searcher

VARIANTS = ("gold-removed",)
GOLD_REMOVED_SUFFIX = "-nogold"


def gold_removed(questions: list[EvalQuestion]) -> list[EvalQuestion]:
    """An unanswerable copy of every answerable question that stands alone (a follow-up
    depends on its chain, a skipped question has no placed gold), asked without its gold
    article."""
    return [dataclasses.replace(
        q, id=q.id + GOLD_REMOVED_SUFFIX, answerable=False, gold_spans=[], key_facts=[],
        answers=[], exclude_article=q.article_id, type=q.type or "gold-removed")
        for q in questions if q.answerable and q.article_id and not q.skipped
        and not q.follow_up_of]


class ExcludingSearcher:
    """A searcher that never returns the chunks of `excluded` articles; everything else is
    the wrapped searcher's, so the answer path cannot tell it apart."""

    def __init__(self, searcher: Searcher, excluded: frozenset[str]):
        self._searcher = searcher
        self.excluded = excluded

    def search(self, question: str, k: int = 5, vector: np.ndarray | None = None
               ) -> list[Passage]:
        return self._searcher.search(question, k, vector=vector, exclude_articles=self.excluded)

    def __getattr__(self, name: str):
        return getattr(self._searcher, name)


def answerer(service: SanadService, k: int) -> Callable[[EvalQuestion, list[Turn]], AnswerResult]:
    """Answers an eval question through the service's own answer path, with the question's
    excluded article (if any) left out of every search it makes."""
    excluded: list[frozenset[str]] = [frozenset()]

    def searcher() -> Searcher:
        return ExcludingSearcher(service.searcher(), excluded[0])  # type: ignore[return-value]

    without = AnswerService(service.settings, searcher, service.backend)

    def answer(q: EvalQuestion, history: list[Turn]) -> AnswerResult:
        if not q.exclude_article:
            return service.answer(q.question, history, k=k)
        excluded[0] = frozenset({q.exclude_article})
        return without.answer(q.question, history, k=k)

    return answer
