"""Generation: the draft answer, written by the LLM from the numbered evidence or, without
an LLM, quoted from it.

The draft is checked after it is written (checks.py); nothing here decides what the reader
finally sees. While it is written, only one run of its words copied from the evidence
streams out as a preview: the article's own words need no check, anything else waits for
the checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator

from llama_index.core.llms import ChatMessage

from app import prompts
from app.answering.checks import with_markers
from app.answering.corpus import CITATION_MARKERS, Passage, normalize, tokens
from app.answering.results import Token
from app.language import LANGUAGE_NAMES
from app.llm import Backend

NOT_FOUND = "NOT_FOUND"  # the model's word for "the passages do not say"
QUOTE_WITHIN = 0.05  # the second evidence sentence is quoted too when it scores this close


def answer_messages(question: str, evidence: list[Passage], lang: str) -> list[ChatMessage]:
    """The answer prompt: the evidence numbered, fenced as data, and the question."""
    language = LANGUAGE_NAMES.get(lang, "the language of the question")
    passages = "\n".join(f"[{p.n}] {p.text}" for p in evidence)
    return [
        ChatMessage(role="system", content=prompts.render("answer_system", language=language)),
        ChatMessage(role="user", content=prompts.render(
            "answer_user", passages=passages, question=question, language=language)),
    ]


def span_messages(question: str, evidence: list[Passage]) -> list[ChatMessage]:
    """The span prompt: worked examples, then the evidence numbered and fenced as data, and
    the question. The reply is the evidence's own words, in the evidence's language."""
    messages = [ChatMessage(role="system", content=prompts.render("span_system"))]
    for example in prompts.examples("span"):
        messages += [
            ChatMessage(role="user", content=prompts.render(
                "span_user", passages=example["passages"], question=example["question"])),
            ChatMessage(role="assistant", content=example["answer"]),
        ]
    passages = "\n".join(f"[{p.n}] {p.text}" for p in evidence)
    messages.append(ChatMessage(role="user", content=prompts.render(
        "span_user", passages=passages, question=question)))
    return messages


def with_span_citation(span: str, evidence: list[Passage]) -> str:
    """The span with the number of the passage it was copied from when the model left the
    number out (small models often do); unchanged when it has one or copies none."""
    if CITATION_MARKERS.search(span) or found_nothing(span):
        return span
    copied = normalize(span.strip().rstrip(".،,؛"))
    source = next((p for p in evidence if copied and copied in normalize(p.text)), None)
    return with_markers(span.strip(), [source.n]) if source else span


def extractive_quote(evidence: list[Passage]) -> str:
    """The best evidence sentences, quoted, each with its citation."""
    best = evidence[0].score
    chosen = [p for p in evidence[:2] if p.score >= best - QUOTE_WITHIN]
    return " ".join(with_markers(p.text, [p.n]) for p in chosen)


MIN_PREVIEW_WORDS = 2  # one common word ("في", "the") is copied from anywhere


class CopiedPreview:
    """What of a draft may be shown while it is written, before its checks: one run of its
    whole words that is written in one of `sources` (the article's own words; citation
    markers, punctuation and letter forms aside, which the model often changes). The run
    starts at the draft's first word when that is copied, else at the first
    MIN_PREVIEW_WORDS copied words in a row; it ends for good at the first whole word after
    it that is not."""

    def __init__(self, sources: list[str]):
        self.sources = [f" {' '.join(tokens(text))} " for text in sources]
        self.stopped = False
        self._first = 0  # the first draft word that may still start the run
        self._start: int | None = None  # the draft word the run starts at
        self._shown = 0  # characters of the run already given out

    def _copied(self, words: list[str]) -> bool:
        return any(f" {' '.join(words)} " in source for source in self.sources)

    def _run(self, words: list[list[str]], start: int) -> int:
        """How many of `words` from `start` on make a copied run."""
        run: list[str] = []
        for n, piece in enumerate(words[start:]):
            if piece and not self._copied(run + piece):
                return n
            run += piece
        return len(words) - start

    def update(self, text: str, final: bool = False) -> str:
        """The text the draft so far adds to the preview ("" for none). A word still being
        written (nothing after it yet) waits unless the draft is `final`."""
        if self.stopped:
            return ""
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        if spans and not final and spans[-1][1] == len(text):
            spans.pop()
        words = [tokens(CITATION_MARKERS.sub(" ", text[a:b])) for a, b in spans]
        while self._start is None and self._first < len(words):
            count = self._run(words, self._first)
            # the draft's first word starts a run alone: it is where the answer begins
            needed = 1 if self._first == 0 else MIN_PREVIEW_WORDS
            if sum(map(len, words[self._first:self._first + count])) >= needed:
                self._start = self._first
            elif self._first + count < len(words) and words[self._first]:
                self._first += 1  # a word after this run is not copied: it cannot grow
            elif not words[self._first]:
                self._first += 1  # a run does not start at a marker
            else:
                return ""  # the run reaches the last whole word: wait for more
        if self._start is None:
            return ""
        count = self._run(words, self._start)  # draft words (markers included) in the run
        if self._start + count < len(words):
            self.stopped = True
        begin, end = spans[self._start][0], spans[self._start + count - 1][1]
        added = text[begin + self._shown:end]
        self._shown = end - begin
        return added

    @property
    def started(self) -> bool:
        return self._shown > 0


def found_nothing(draft: str) -> bool:
    """Whether the model said the evidence does not answer the question."""
    return NOT_FOUND in draft or not draft


def draft(backend: Backend, question: str, evidence: list[Passage], lang: str,
          first_token: Callable[[], None], span: bool = False) -> Generator[Token, None, str]:
    """Write the draft answer in `lang` (with `span`: the evidence's shortest answering
    words, in the evidence's language) and return its whole text. As it is written, one
    run of its words copied from the evidence streams out as tokens (CopiedPreview);
    `first_token` is called when the first of them does."""
    if backend.llm is None:
        text = extractive_quote(evidence)
        yield Token(text)
        first_token()
        return text
    pieces: list[str] = []
    messages = (span_messages(question, evidence) if span
                else answer_messages(question, evidence, lang))
    preview = CopiedPreview([p.text for p in evidence])
    for delta in backend.stream(messages):
        pieces.append(delta)
        yield from _preview(preview, "".join(pieces), False, first_token)
    yield from _preview(preview, "".join(pieces), True, first_token)
    text = "".join(pieces).strip()
    return with_span_citation(text, evidence) if span else text


def _preview(preview: CopiedPreview, text: str, final: bool,
             first_token: Callable[[], None]) -> Iterator[Token]:
    """Stream what the draft so far adds to its preview."""
    started = preview.started
    added = preview.update(text, final)
    if added:
        if not started:
            first_token()
        yield Token(added)
