"""The answer service: retrieve → select evidence → generate → verify → cite, or refuse.

Everything user-facing (CLI, web chat, API, widget, eval) calls `AnswerService`; nothing
else talks to the LLM. `answer_stream` yields text deltas and then one final
`AnswerResult`; `answer` returns that result alone.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
from llama_index.core.llms import ChatMessage

from app import prompts
from app.citations import check_answer, restates_question, with_markers
from app.language import (
    LANGUAGE_NAMES,
    asks_for_quantity,
    detect_language,
    is_yes_no_question,
    states_quantity,
    yes_no_contradiction,
)
from app.llm import STRONG_BACKENDS, Backend
from app.names import names_not_in_source
from app.settings import Settings
from app.textcheck import text_problem
from index.chunking import clause_spans, sentence_spans
from index.embedding import embed_documents, embed_query, identity
from index.search import Passage, Searcher, lexical_tokens
from index.sentence_cache import SentenceVectors
from index.textnorm import STOPWORDS, script_of, tokens

NOT_FOUND = "NOT_FOUND"
LONG_SENTENCE_WORDS = 20  # sentences this long are also scored clause by clause
# "Here is the translation:" and the like, which small models put before the text.
_PREAMBLE = re.compile(r"^\s*(here is|here's)[^:\n]*:\s*", re.IGNORECASE)
_FENCE = re.compile(r"<<<\w+|\w+>>>")
# "Note: the original uses square brackets…": the small model's comments after a translation.
_AFTERWORD = re.compile(r"\n\s*\(?(note|notes|translator's note)\b.*", re.IGNORECASE | re.DOTALL)
# Capitalised words after the first of a sentence: names, in a Latin-script translation.
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][\w'’-]+(?: [A-Z][\w'’-]+)*")


class AnswerError(ValueError):
    """Bad input to the answer service (an empty or oversized question, say)."""


def checked_question(question: str | None, max_chars: int) -> str:
    """The question without surrounding space; AnswerError if it is empty, too long or not
    plain text (see app.textcheck)."""
    question = (question or "").strip()
    if not question:
        raise AnswerError("the question is empty")
    if problem := text_problem(question):
        raise AnswerError(f"the question {problem}")
    if len(question) > max_chars:
        raise AnswerError(f"the question is {len(question)} characters long; the limit is "
                          f"{max_chars}")
    return question


@dataclass
class Turn:
    question: str
    answer: str


@dataclass
class AnswerSentence:
    text: str
    citations: list[int]
    support: float | None


@dataclass
class Evidence:
    n: int
    quote: str
    lang: str


@dataclass
class AnswerResult:
    question: str
    standalone_question: str
    language: str
    answer: str
    sentences: list[AnswerSentence]
    evidence: list[Evidence]
    passages: list[Passage]  # the numbered passages given to the model: [n] is passages[n-1]
    retrieved: list[Passage]  # the retrieved chunks the evidence was selected from
    refused: bool
    mode: str  # backend, and for cross-language answers the policy used
    refusal_reason: str = ""
    translation: dict | None = None  # {"text", "label", "lang"} for evidence-first answers
    dropped: list[dict] = field(default_factory=list)  # sentences removed by verification
    removed_markers: int = 0
    corrected_citations: int = 0  # sentences whose citation was moved to the passage backing it
    yes_no: bool = False
    notice: str = ""
    timings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Token:
    """A streamed piece of text; `part` is "answer" or "translation"."""

    text: str
    part: str = "answer"


class AnswerService:
    def __init__(self, settings: Settings, searcher_factory, backend: Backend):
        self.settings = settings
        self._searcher = searcher_factory
        self.backend = backend
        self._sentences: SentenceVectors | None = None
        self._sentences_lock = threading.Lock()

    # -- retrieval and evidence -------------------------------------------------------
    def condense(self, question: str, history: list[Turn]) -> str:
        """A follow-up rewritten as a standalone question, in the user's language."""
        history = history[-self.settings.history_turns:] if self.settings.history_turns else []
        if not history:
            return question
        if self.backend.llm is None:
            return question  # without a model, answer_stream may join the previous question
        transcript = "\n".join(f"User: {t.question[:500]}\nAssistant: {t.answer[:500]}"
                               for t in history)
        rewritten = self.backend.complete([ChatMessage(role="user", content=prompts.render(
            "condense", history=transcript, question=question))], side=True)
        rewritten = rewritten.strip().strip('"“”').splitlines()[0].strip() if rewritten else ""
        # A rewrite in another language, or one that is not a question (the small model
        # sometimes answers instead, and wrongly), is not used.
        if (not rewritten or detect_language(rewritten) != detect_language(question)
                or not rewritten.rstrip().endswith(("?", "؟"))):
            return question
        # Nor one that drops a word the follow-up itself asks with: it has rewritten
        # "وماذا فعلت المكسيك بعد تلك المحادثات؟" as an earlier question of the chat.
        # (A rewrite replaces references; the follow-up's own words stay.)
        if not set(lexical_tokens(question)) <= set(lexical_tokens(rewritten)):
            return question
        return rewritten

    def _sentence_cache(self, searcher: Searcher) -> SentenceVectors:
        model = identity(searcher.embed_model)
        with self._sentences_lock:
            if self._sentences is None or self._sentences.model_hash != model.hash:
                self._sentences = SentenceVectors(self.settings.data_dir, model.hash, model.dim)
            return self._sentences

    def _embed_sentences(self, searcher: Searcher, spans: list[tuple]) -> np.ndarray:
        """Vectors of (article_id, sha256, start, end) sentences, cached on disk."""
        cache = self._sentence_cache(searcher)
        keys = [(sha, start, end) for _, sha, start, end in spans]
        found = cache.get(keys)
        missing = list({k: span for k, span in zip(keys, spans) if k not in found}.items())
        if missing:
            texts = [searcher.data.articles[a].text[start:end] for _, (a, _, start, end) in missing]
            vectors = embed_documents(searcher.embed_model, texts, False)
            new = {key: vector for (key, _), vector in zip(missing, vectors)}
            cache.put(new)
            found.update(new)
        return np.stack([found[k] for k in keys])

    def prepare_context(self, question: str, k: int | None = None
                        ) -> tuple[list[Passage], list[Passage]]:
        """(retrieved chunks, numbered evidence sentences chosen from the best of them)."""
        searcher: Searcher = self._searcher()
        vector = embed_query(searcher.embed_model, question)
        retrieved = searcher.search(question, k or self.settings.top_k, vector=vector)
        candidates = []
        for passage in retrieved[:3]:
            article = searcher.data.articles[passage.article_id]
            for start, end in sentence_spans(passage.text, passage.start):
                sentence = article.text[start:end]
                # A sentence with the question's very words (an article's title, asked as
                # is) scores best and says nothing more: the answer check drops its quote.
                if len(tokens(sentence)) >= 2 and not (restates_question(sentence, question)
                                                       and restates_question(question, sentence)):
                    candidates.append((passage, start, end))
        if not candidates:
            return retrieved, []
        scores = self._sentence_scores(searcher, candidates, vector)
        best = np.argsort(-scores)[: self.settings.evidence_sentences]
        evidence = []
        for n, i in enumerate(best, start=1):
            passage, start, end = candidates[i]
            text = searcher.data.articles[passage.article_id].text[start:end]
            evidence.append(Passage(n=n, article_id=passage.article_id, title=passage.title,
                                    paragraph=passage.paragraph, start=start, end=end,
                                    text=text, score=round(float(scores[i]), 4)))
        return retrieved, evidence

    def _sentence_scores(self, searcher: Searcher, candidates: list[tuple[Passage, int, int]],
                         vector: np.ndarray) -> np.ndarray:
        """Each sentence's cosine with the question; a long one scores as its best clause
        if that is higher. One vector for a sentence listing four officials and their posts
        matches a question about one of them poorly ("What position does Mayorkas hold?"
        scored 0.26 against its sentence, 0.51 against the clause that names him)."""
        units, owner = [], []
        for i, (passage, start, end) in enumerate(candidates):
            article = searcher.data.articles[passage.article_id]
            spans = [(start, end)]
            if len(tokens(article.text[start:end])) >= LONG_SENTENCE_WORDS:
                spans += clause_spans(article.text, start, end)
            for a, b in spans:
                # The article's hash in the key: a re-indexed article never reuses old vectors.
                units.append((passage.article_id, article.sha256, a, b))
                owner.append(i)
        unit_scores = self._embed_sentences(searcher, units) @ vector
        scores = np.full(len(candidates), -np.inf, dtype=np.float32)
        np.maximum.at(scores, np.asarray(owner), unit_scores)
        return scores

    def _threshold(self, lang: str) -> float:
        return self.settings.refuse_below_ar if lang == "ar" else self.settings.refuse_below_en

    def refusal_reason(self, question: str, evidence: list[Passage]) -> str:
        """Why the articles cannot answer this, or "" when they may."""
        if not evidence:
            return "nothing relevant was retrieved"
        lang = detect_language(question)
        threshold = self._threshold(lang)
        if evidence[0].score < threshold:
            return f"best evidence scores {evidence[0].score:.3f}, below {threshold:.3f} for {lang}"
        close = [p for p in evidence if p.score >= evidence[0].score - 0.1]
        if asks_for_quantity(question) and not any(states_quantity(p.text) for p in close):
            return "the question asks for an amount and the evidence states none"
        # A name the articles never use (e.g. a country they never mention). Only names in
        # Latin script can be told apart from other words, and only checked against text
        # in that script, when the evidence is in it too (else the name may be in the
        # other script's articles).
        if script_of(question) == "latin" == script_of(evidence[0].text):
            names = [m.group(0) for m in re.finditer(r"\b[A-Z][\w'’-]+", question)
                     if m.start() > 0 and m.group(0).lower() not in STOPWORDS]
            unknown = self._searcher().unknown_terms(names)
            if unknown:
                return f"the articles never mention: {', '.join(unknown)}"
        return ""

    # -- answering --------------------------------------------------------------------
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
        started = time.perf_counter()
        timings: dict[str, float] = {}
        lang = detect_language(question)
        standalone = self.condense(question, history or [])
        retrieved, evidence = self.prepare_context(standalone, k)
        if history and self.refusal_reason(standalone, evidence):
            # The follow-up alone (or a small model's rewrite of it) can lack the referent.
            # Before refusing, retrieve with the previous question joined to it; the model
            # still answers the follow-up, not both.
            joined = self.prepare_context(f"{history[-1].question} {question}", k)
            if joined[1] and not self.refusal_reason(standalone, joined[1]):
                retrieved, evidence = joined
        timings["retrieval_ms"] = _ms(started)
        result = AnswerResult(
            question=question, standalone_question=standalone, language=lang, answer="",
            sentences=[], evidence=[Evidence(p.n, p.text, detect_language(p.text))
                                    for p in evidence],
            passages=evidence, retrieved=retrieved, refused=False, mode=self.backend.name,
            yes_no=is_yes_no_question(standalone), notice=self.backend.notice,
        )
        reason = self.refusal_reason(standalone, evidence)
        if reason:
            yield from self._refuse(result, reason, started, timings)
            return
        evidence_lang = detect_language(evidence[0].text)
        cross = evidence_lang != lang
        policy = self.settings.cross_language
        if policy == "auto":
            policy = "direct" if self.backend.name in STRONG_BACKENDS else "evidence_first"
        answer_lang = evidence_lang if cross and policy == "evidence_first" else lang
        if cross:
            result.mode = f"{self.backend.name}, {policy}"

        first_token = None
        if self.backend.llm is None:
            text = self._extractive(evidence)
            yield Token(text)
            first_token = _ms(started)
        else:
            pieces = []
            for delta in self.backend.stream(self._answer_messages(standalone, evidence,
                                                                   answer_lang)):
                if first_token is None:
                    first_token = _ms(started)
                pieces.append(delta)
                yield Token(delta)
            text = "".join(pieces).strip()
        timings["first_token_ms"] = first_token if first_token is not None else _ms(started)

        confident = evidence[0].score >= self._threshold(lang) + self.settings.quote_margin
        if (NOT_FOUND in text or not text) and (result.yes_no or confident):
            # The small model answers NOT_FOUND to yes/no questions whose evidence plainly
            # settles them ("no big announcements are expected"), and to questions whose
            # evidence scores far above the refusal threshold (mostly English questions
            # over Arabic text). Then the evidence is quoted, without a verdict: the reader
            # judges.
            text = self._extractive(evidence)
            result.mode += ", quoted: the model found no answer"
        elif NOT_FOUND in text or not text:
            yield from self._refuse(result, "the model found no answer in the evidence", started,
                                    timings)
            return
        numbered = {p.n: p.text for p in evidence}
        evidence_first = cross and policy == "evidence_first"
        copy_only = self._copy_only()
        checked = check_answer(text, numbered, standalone,
                               required_script=script_of(evidence[0].text) if evidence_first
                               else None, copy_only=copy_only)
        result.removed_markers = checked.removed_markers
        result.dropped = [{"text": s.text, "citations": s.citations,
                           "problems": s.problems or [s.not_copied]} for s in checked.dropped]
        if any(s.quoted_for for s in checked.kept):
            result.mode += ", quoted where the model paraphrased"
        result.corrected_citations = sum(s.corrected_from is not None for s in checked.kept)
        kept = checked.kept
        if not kept:
            # Nothing the model wrote survived the checks: fall back to quoting the evidence.
            text = self._extractive(evidence)
            checked = check_answer(text, numbered, standalone)
            kept = checked.kept
            result.mode += ", quoted after failed checks"
        if not kept:  # an answer is text with citations, or a refusal: never empty
            yield from self._refuse(result, "no answer sentence passed the checks", started,
                                    timings)
            return
        result.sentences = [AnswerSentence(s.text, s.citations, s.support) for s in kept]
        result.answer = " ".join(with_markers(s.text, s.citations) for s in kept)
        if result.yes_no:
            result.answer = self._with_basis(result, evidence, lang)
        if evidence_first:
            result.answer = f"{prompts.message('evidence_intro', lang)}\n{result.answer}"
            if self.backend.llm is not None:
                yield from self._translate(result, answer_lang, lang)
        timings["total_ms"] = _ms(started)
        result.timings = timings
        yield result

    def _copy_only(self) -> bool:
        """Whether answer sentences must be the cited passages' own words (see citations)."""
        check = self.settings.answer_check
        if check == "auto":
            return self.backend.llm is not None and self.backend.name not in STRONG_BACKENDS
        return check == "copy"

    def _answer_messages(self, question: str, evidence: list[Passage], lang: str
                         ) -> list[ChatMessage]:
        language = LANGUAGE_NAMES.get(lang, "the language of the question")
        passages = "\n".join(f"[{p.n}] {p.text}" for p in evidence)
        return [
            ChatMessage(role="system", content=prompts.render("answer_system", language=language)),
            ChatMessage(role="user", content=prompts.render(
                "answer_user", passages=passages, question=question, language=language)),
        ]

    def _extractive(self, evidence: list[Passage]) -> str:
        """The best evidence sentences, quoted, each with its citation."""
        best = evidence[0].score
        chosen = [p for p in evidence[:2] if p.score >= best - 0.05]
        return " ".join(with_markers(p.text, [p.n]) for p in chosen)

    def _with_basis(self, result: AnswerResult, evidence: list[Passage], lang: str) -> str:
        """A yes/no answer never stands without the sentence it rests on, nor against it."""
        cited = result.sentences[0].citations[0] if result.sentences else evidence[0].n
        basis = next(p for p in evidence if p.n == cited)
        quote = with_markers(f"«{basis.text}»", [basis.n])
        first = result.sentences[0].text if result.sentences else ""
        problem = yes_no_contradiction(result.standalone_question, first, basis.text)
        if problem:
            result.dropped.append({"text": first, "citations": [basis.n],
                                   "problems": [f"yes/no answer {problem}"]})
            result.sentences = []
            return f"{prompts.message('articles_say', lang)} {quote}"
        if basis.text.rstrip().rstrip(".!?؟؛…") in result.answer:  # the answer quotes it already
            return result.answer
        return f"{result.answer}\n{prompts.message('yesno_basis', lang)} {quote}"

    def _translate(self, result: AnswerResult, source: str, target: str) -> Iterator[Token]:
        text = "\n".join(with_markers(s.text, s.citations) for s in result.sentences)
        messages = [
            ChatMessage(role="system", content=prompts.render(
                "translate_system", source=LANGUAGE_NAMES[source],
                target=LANGUAGE_NAMES[target])),
            ChatMessage(role="user", content=prompts.render("translate_user", text=text)),
        ]
        pieces = []
        for delta in self.backend.stream(messages, side=True):
            pieces.append(delta)
            yield Token(delta, part="translation")
        translation = _AFTERWORD.sub("", _FENCE.sub("", _PREAMBLE.sub("", "".join(pieces))))
        translation = translation.strip().strip('"“”').strip()
        if translation and script_of(translation) != script_of(text):
            label = prompts.message("translation_label", target)
            # A name like no word of the original is the small model's invention ("President
            # Michelangelo Buonaparte" for لوبيز أوبرادور): its sentences are left out.
            source = " ".join([text, *(p.text for p in result.passages)])
            invented = names_not_in_source(list(dict.fromkeys(_NAME.findall(translation))),
                                           source, result.question)
            if invented:
                kept = [translation[a:b] for a, b in sentence_spans(translation)
                        if not any(name in translation[a:b] for name in invented)]
                translation = " ".join(kept)
                label += " " + prompts.message("names_left_out", target) + " " + ", ".join(invented)
            result.translation = {"text": translation, "lang": target, "label": label,
                                  "names_not_in_original": invented}

    def _refuse(self, result: AnswerResult, reason: str, started: float, timings: dict
                ) -> Iterator[Token | AnswerResult]:
        result.refused = True
        result.refusal_reason = reason
        result.answer = prompts.message("refusal", result.language)
        result.sentences = []
        yield Token(result.answer)
        timings.setdefault("first_token_ms", _ms(started))
        timings["total_ms"] = _ms(started)
        result.timings = timings
        yield result


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
