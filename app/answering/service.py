"""The answer pipeline for one LLM backend, step by step (SanadService in app/service.py is
the door to it; nothing else should call this).

    check the question → resolve the index generation (once) → condense a follow-up →
    select evidence → decide refusal → draft (a span or sentences) → check citations →
    render → for a reader in another language, render the span into theirs, checked

`answer_stream` yields text tokens, then one final `AnswerResult`; `answer` returns that
result alone. While the draft is written, only its words copied from the evidence stream (a
preview); when none are, the checked answer is the first token.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import numpy as np

from app.answering.checks import (
    WRONG_LANGUAGE,
    CheckedAnswer,
    CheckedSentence,
    check_answer,
    check_sentence,
)
from app.answering.copy_check import COPY_MAX_PIECES, with_reversal
from app.answering.corpus import Passage, Searcher, document_vectors, script_of, word_vectors
from app.answering.evidence import EvidenceSelector
from app.answering.followup import condense, joined_with_previous, recent
from app.answering.generation import draft, extractive_quote, found_nothing, span_messages
from app.answering.policy import LanguagePlan, answers_with_span, copy_only, language_plan
from app.answering.question import Turn, checked_question
from app.answering.refusal import RefusalDecision, decide_refusal, refusal_threshold
from app.answering.render import answer_text, evidence_first, refusal, sentences, with_basis
from app.answering.rendering import (
    RenderChecks,
    grounded_run,
    in_context_from,
    in_context_messages,
    render_answer,
    render_messages,
)
from app.answering.results import AnswerResult, Evidence, Token
from app.language import LANGUAGE_NAMES, detect_language, is_yes_no_question
from app.llm import Backend
from app.settings import Settings


class AnswerService:
    """Answers questions with one LLM backend over the index `searcher_factory` serves."""

    def __init__(self, settings: Settings, searcher_factory: Callable[[], Searcher],
                 backend: Backend):
        """`searcher_factory` gives the searcher of the current index generation; it is
        called once per answer, and that searcher serves the whole answer."""
        self.settings = settings
        self._searcher = searcher_factory
        self.backend = backend
        self.evidence = EvidenceSelector(settings)

    def warm_up(self) -> None:
        """Evaluate the fixed parts of the prompts answers use (worked examples and all)
        before the first question: the rendering prompts, then the span prompt, which every
        answer starts with."""
        for source, target in itertools.permutations(LANGUAGE_NAMES, 2):
            self.backend.prepare(render_messages("", source, target))
            self.backend.prepare(in_context_messages("", "", source, target))
        if answers_with_span(self.settings, self.backend, yes_no=False):
            self.backend.prepare(span_messages("", []))

    def answer(self, question: str, history: list[Turn] | None = None,
               k: int | None = None) -> AnswerResult:
        result = None
        for item in self.answer_stream(question, history, k):
            if isinstance(item, AnswerResult):
                result = item
        assert result is not None
        return result

    def answer_stream(self, question: str, history: list[Turn] | None = None,
                      k: int | None = None) -> Iterator[Token | AnswerResult]:
        question = checked_question(question, self.settings.max_question_chars)
        clock, history = _Clock(), history or []
        searcher = self._searcher()  # one index generation for everything below
        standalone = self.condense(question, history)
        retrieved, evidence, decision = self._evidence(searcher, question, standalone, history,
                                                       k)
        clock.mark("retrieval_ms")
        result = self._new_result(question, standalone, retrieved, evidence)
        result.refusal_score = decision.score
        if decision.reason:
            yield from self._refuse(result, decision.reason, clock)
            return
        plan = self._language_plan(result, evidence)
        span = answers_with_span(self.settings, self.backend, result.yes_no)
        def shown() -> None:
            clock.mark("first_token_ms")

        text = yield from draft(self.backend, standalone, evidence, plan.answer_lang, shown,
                                span)
        if span and found_nothing(text):
            # The span prompt's NOT_FOUND is stricter than the sentence prompt's: with
            # other articles' passages among the evidence it refused questions the
            # sentence prompt answers ("What did Mexico request?"). Ask that one too.
            span = False
            text = yield from draft(self.backend, standalone, evidence, plan.answer_lang,
                                    shown, span)
        if found_nothing(text):
            if not self._quote_instead(result, evidence):
                yield from self._refuse(result, "the model found no answer in the evidence",
                                        clock)
                return
            text = extractive_quote(evidence)
        checks = (_render_checks(searcher, self.settings)
                  if plan.evidence_first and self.backend.llm is not None else None)
        own = self._check(result, text, evidence, plan, span, checks)
        if not result.sentences:  # an answer is text with citations, or a refusal: never empty
            yield from self._refuse(result, "no answer sentence passed the checks", clock)
            return
        self._render(result, evidence, plan)
        if "first_token_ms" not in clock.timings:
            # Nothing of the draft was copied from the evidence, so nothing was previewed:
            # the checked answer is the first text the reader gets.
            shown()
            yield Token(result.answer)
        if checks is not None:
            yield from render_answer(self.backend, result, plan.answer_lang, result.language,
                                     checks, own, self.settings.render_sampled_candidates
                                     if self.backend.can_sample else 0)
        result.timings = clock.finish()
        yield result

    # -- the steps, in order -----------------------------------------------------------
    def condense(self, question: str, history: list[Turn]) -> str:
        """A follow-up rewritten as a standalone question, in the user's language."""
        return condense(self.backend, question, recent(history, self.settings.history_turns))

    def prepare_context(self, question: str, k: int | None = None,
                        searcher: Searcher | None = None) -> tuple[list[Passage], list[Passage]]:
        """(retrieved chunks, numbered evidence sentences chosen from the best of them)."""
        return self.evidence.select(searcher or self._searcher(), question, k)

    def _evidence(self, searcher: Searcher, question: str, standalone: str,
                  history: list[Turn], k: int | None
                  ) -> tuple[list[Passage], list[Passage], RefusalDecision]:
        """(retrieved, evidence, the refusal decision): the refusal decided once per evidence."""
        retrieved, evidence = self.prepare_context(standalone, k, searcher)
        decision = decide_refusal(standalone, evidence, self.settings, searcher, retrieved)
        if history and decision.reason:
            # The follow-up alone (or a small model's rewrite of it) can lack the referent.
            # Before refusing, retrieve with the previous question joined to it; the model
            # still answers the follow-up, not both.
            joined, joined_evidence = self.prepare_context(
                joined_with_previous(question, history), k, searcher)
            joined_decision = decide_refusal(standalone, joined_evidence, self.settings,
                                             searcher, joined)
            if joined_evidence and not joined_decision.reason:
                return joined, joined_evidence, joined_decision
        return retrieved, evidence, decision

    def _new_result(self, question: str, standalone: str, retrieved: list[Passage],
                    evidence: list[Passage]) -> AnswerResult:
        return AnswerResult(
            question=str(question), standalone_question=str(standalone),
            language=detect_language(question), answer="", sentences=[],
            evidence=[Evidence(p.n, p.text, detect_language(p.text)) for p in evidence],
            passages=evidence, retrieved=retrieved, refused=False, mode=self.backend.name,
            yes_no=is_yes_no_question(standalone), notice=self.backend.notice,
        )

    def _language_plan(self, result: AnswerResult, evidence: list[Passage]) -> LanguagePlan:
        plan = language_plan(self.settings, self.backend, result.language,
                             detect_language(evidence[0].text))
        if plan.cross:
            result.mode = f"{self.backend.name}, {plan.policy}"
        return plan

    def _quote_instead(self, result: AnswerResult, evidence: list[Passage]) -> bool:
        """Whether to quote the evidence where the model found no answer in it.

        The small model answers NOT_FOUND to yes/no questions whose evidence plainly
        settles them ("no big announcements are expected"), and to questions whose evidence
        scores far above the refusal threshold (mostly English questions over Arabic text).
        Then the evidence is quoted, without a verdict: the reader judges. Where the
        evidence is weaker, the model's NOT_FOUND is the one reading of the evidence that can
        tell a near-topic trap (a question about Canada over passages about Mexico) from an
        answer, and it refuses."""
        if self.settings.refusal_rule == "model":
            confident = (result.refusal_score or 0.0) >= self.settings.quote_above
        else:
            confident = evidence[0].score >= (refusal_threshold(self.settings, result.language)
                                              + self.settings.quote_margin)
        if result.yes_no or confident:
            result.mode += ", quoted: the model found no answer"
            return True
        return False

    def _check(self, result: AnswerResult, text: str, evidence: list[Passage],
               plan: LanguagePlan, span: bool, checks: RenderChecks | None
               ) -> dict[int, str]:
        """Keep the draft's sentences that pass the citation checks; record the others.
        When none passes, the evidence is quoted instead. A span must be one copied run.
        With `checks` (a reader in another language), a span the model wrote in the
        reader's language is grounded in the run it renders; returns those renderings by
        answer sentence."""
        numbered = {p.n: p.text for p in evidence}
        checked = check_answer(text, numbered, result.standalone_question,
                               required_script=(script_of(evidence[0].text)
                                                if plan.evidence_first else None),
                               copy_only=copy_only(self.settings, self.backend),
                               max_pieces=1 if span else COPY_MAX_PIECES, snap=span)
        own = (_grounded(checked, numbered, result.standalone_question, result.language,
                         checks) if span and checks is not None else {})
        result.removed_markers = checked.removed_markers
        result.dropped = [{"text": s.text, "citations": s.citations,
                           "problems": s.problems or [s.not_copied]} for s in checked.dropped]
        if any(s.quoted_for for s in checked.kept):
            result.mode += ", quoted where the model paraphrased"
        result.corrected_citations = sum(s.corrected_from is not None for s in checked.kept)
        if not checked.kept:
            checked = check_answer(extractive_quote(evidence), numbered,
                                   result.standalone_question)
            result.mode += ", quoted after failed checks"
        result.sentences = sentences(checked.kept)
        return {i: own[id(s)] for i, s in enumerate(checked.kept) if id(s) in own}

    def _render(self, result: AnswerResult, evidence: list[Passage], plan: LanguagePlan) -> None:
        result.answer = answer_text(result.sentences)
        if result.yes_no:
            result.answer = with_basis(result, evidence, result.language)
        if plan.evidence_first:
            result.answer = evidence_first(result.answer, result.language)

    def _refuse(self, result: AnswerResult, reason: str, clock: _Clock
                ) -> Iterator[Token | AnswerResult]:
        refusal(result, reason)
        yield Token(result.answer)
        clock.mark("first_token_ms")
        result.timings = clock.finish()
        yield result


def _grounded(checked: CheckedAnswer, passages: dict[int, str], question: str, target: str,
              checks: RenderChecks) -> dict[int, str]:
    """After each span the model wrote in the reader's language (dropped as another
    language), the run of a passage it renders, cited passages first, when one is found
    and passes as a copy; returns the model's words by the id of the span they render.
    The small model knows some names in English that it cannot transliterate ("Los
    Angeles Kings" for لوس أنجلس كينغز)."""
    own: dict[int, str] = {}
    kept: list[CheckedSentence] = []
    for sentence in checked.sentences:
        kept.append(sentence)
        if WRONG_LANGUAGE not in sentence.problems:
            continue
        cited = sentence.citations
        for n in [*cited, *(n for n in passages if n not in cited)]:
            found = grounded_run(sentence.text, passages[n], question, target, checks)
            if found is None:
                continue
            text = with_reversal(found[0], passages[n])
            run = check_sentence(text, [n], passages, question, copy_only=True, max_pieces=1)
            if run.ok:
                run.quoted_for = sentence.text
                kept.append(run)
                if text == found[0]:  # a negation the model left out is rendered anew
                    own[id(run)] = sentence.text
                break
    checked.sentences = kept
    return own


def _render_checks(searcher: Searcher, settings: Settings) -> RenderChecks:
    """The embedding model's cosines between texts, and between words, in any languages."""
    def unit(texts: list[str]) -> np.ndarray:
        vectors = np.asarray(document_vectors(searcher, texts), dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def similarity(a: str, b: str) -> float:
        va, vb = unit([a, b])
        return float(va @ vb)

    def word_similarity(words: list[str], source_words: list[str]) -> np.ndarray:
        vectors = unit(words + source_words)
        return vectors[:len(words)] @ vectors[len(words):].T

    return RenderChecks(similarity, word_similarity, settings.render_min_similarity,
                        settings.render_min_word_similarity,
                        settings.render_min_name_similarity,
                        settings.render_min_coverage_similarity,
                        settings.render_min_clause_similarity,
                        in_context_from(lambda texts: word_vectors(searcher, texts)))


class _Clock:
    """Milliseconds since the question arrived, at each stage of the answer."""

    def __init__(self):
        self._started = time.perf_counter()
        self.timings: dict[str, float] = {}

    def mark(self, stage: str) -> None:
        """Note the time `stage` was reached, the first time only."""
        self.timings.setdefault(stage, self._ms())

    def finish(self) -> dict[str, float]:
        self.mark("first_token_ms")
        self.timings["total_ms"] = self._ms()
        return self.timings

    def _ms(self) -> float:
        return round((time.perf_counter() - self._started) * 1000, 1)
