"""Unanswerable questions made from answerable ones: each asked with its gold article left
out of retrieval, the standard way to get a question the articles cannot answer without
writing new ones. Articles overlap (a country's article and the list of its rulers), so the
passages of other articles that hold the gold answer are left out too. The index is the
same; only the search skips those chunks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from app.answering.corpus import tokens
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
        answers=[], exclude_article=q.article_id, exclude_answers=q.gold_texts,
        type=q.type or "gold-removed")
        for q in questions if q.answerable and q.article_id and not q.skipped
        and not q.follow_up_of]


def phrases(answers: list[str]) -> list[str]:
    """Each answer as its normalised words (diacritics, letter forms and punctuation do not
    count), padded to match whole words only."""
    return [f" {' '.join(words)} " for words in map(tokens, answers) if words]


def holds_phrase(text: str, padded: list[str]) -> bool:
    words = f" {' '.join(tokens(text))} "
    return any(phrase in words for phrase in padded)


def holds_any(text: str, answers: list[str]) -> bool:
    """Whether `text` holds one of `answers` as whole words."""
    return holds_phrase(text, phrases(answers))


def excludes(q: EvalQuestion) -> bool:
    """Whether the question is asked with something left out of retrieval."""
    return bool(q.exclude_article or q.exclude_answers)


class ExcludingSearcher:
    """A searcher that never returns the chunks of `excluded` articles, nor chunks holding
    one of `answers`, nor chunks overlapping `passages` ((article id, start, end) spans);
    everything else is the wrapped searcher's, so the answer path cannot tell it apart."""

    EXTRA = 12  # searched beyond k, so that k remain once answer-holding chunks are dropped

    def __init__(self, searcher: Searcher, excluded: frozenset[str], answers: list[str] = (),
                 passages: list[tuple[str, int, int]] = ()):
        self._searcher = searcher
        self.excluded = excluded
        self.answers = phrases(list(answers))  # tokenised once, matched against every chunk
        self.passages = list(passages)

    def _left_out(self, p: Passage) -> bool:
        return (any(p.article_id == aid and p.start < end and start < p.end
                    for aid, start, end in self.passages)
                or holds_phrase(p.text, self.answers))

    def search(self, question: str, k: int = 5, vector: np.ndarray | None = None
               ) -> list[Passage]:
        if not self.answers and not self.passages:
            return self._searcher.search(question, k, vector=vector,
                                         exclude_articles=self.excluded)
        found = self._searcher.search(question, k + self.EXTRA, vector=vector,
                                      exclude_articles=self.excluded)
        kept = [p for p in found if not self._left_out(p)][:k]
        return [dataclasses.replace(p, n=n) for n, p in enumerate(kept, start=1)]

    def __getattr__(self, name: str):
        return getattr(self._searcher, name)


def excluding(searcher: Searcher, q: EvalQuestion) -> Searcher:
    """The searcher a question is asked with: as is, or without what makes it answerable."""
    if not excludes(q):
        return searcher
    return ExcludingSearcher(searcher, frozenset({q.exclude_article} - {None}),
                             q.exclude_answers)  # type: ignore[return-value]


def answerer(service: SanadService, k: int) -> Callable[[EvalQuestion, list[Turn]], AnswerResult]:
    """Answers an eval question through the service's own answer path, with what the
    question excludes (if anything) left out of every search it makes."""
    asking: list[EvalQuestion | None] = [None]

    def searcher() -> Searcher:
        return excluding(service.searcher(), asking[0])  # type: ignore[arg-type]

    without = AnswerService(service.settings, searcher, service.backend)

    def answer(q: EvalQuestion, history: list[Turn]) -> AnswerResult:
        if not excludes(q):
            return service.answer(q.question, history, k=k)
        asking[0] = q
        return without.answer(q.question, history, k=k)

    return answer
