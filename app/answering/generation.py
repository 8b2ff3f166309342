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
from app.answering.corpus import Passage
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


def extractive_quote(evidence: list[Passage]) -> str:
    """The best evidence sentences, quoted, each with its citation."""
    best = evidence[0].score
    chosen = [p for p in evidence[:2] if p.score >= best - QUOTE_WITHIN]
    return " ".join(with_markers(p.text, [p.n]) for p in chosen)


def found_nothing(draft: str) -> bool:
    """Whether the model said the evidence does not answer the question."""
    return NOT_FOUND in draft or not draft


def draft(backend: Backend, question: str, evidence: list[Passage], lang: str,
          first_token: Callable[[], None]) -> Generator[Token, None, str]:
    """Stream the draft answer in `lang` as tokens; return its whole text. `first_token`
    is called once the first piece of text exists."""
    if backend.llm is None:
        text = extractive_quote(evidence)
        yield Token(text)
        first_token()
        return text
    pieces = []
    for delta in backend.stream(answer_messages(question, evidence, lang)):
        if not pieces:
            first_token()
        pieces.append(delta)
        yield Token(delta)
    return "".join(pieces).strip()
