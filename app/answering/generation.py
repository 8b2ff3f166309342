"""Generation: the draft answer, written by the LLM from the numbered evidence or, without
an LLM, quoted from it.

The draft is streamed as it is written and checked afterwards (checks.py); nothing here
decides what the reader finally sees.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from llama_index.core.llms import ChatMessage

from app import prompts
from app.answering.checks import with_markers
from app.answering.corpus import CITATION_MARKERS, Passage, normalize
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


def found_nothing(draft: str) -> bool:
    """Whether the model said the evidence does not answer the question."""
    return NOT_FOUND in draft or not draft


def draft(backend: Backend, question: str, evidence: list[Passage], lang: str,
          first_token: Callable[[], None], span: bool = False) -> Generator[Token, None, str]:
    """Stream the draft answer in `lang` as tokens (with `span`: the evidence's shortest
    answering words, in the evidence's language); return its whole text. `first_token` is
    called once the first piece of text exists."""
    if backend.llm is None:
        text = extractive_quote(evidence)
        yield Token(text)
        first_token()
        return text
    pieces = []
    messages = (span_messages(question, evidence) if span
                else answer_messages(question, evidence, lang))
    for delta in backend.stream(messages):
        if not pieces:
            first_token()
        pieces.append(delta)
        yield Token(delta)
    text = "".join(pieces).strip()
    return with_span_citation(text, evidence) if span else text
