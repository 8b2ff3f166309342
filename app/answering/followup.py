"""Follow-up questions: rewritten as standalone questions before retrieval.

The rewrite is a side call to the LLM. A rewrite that changes the language, is not a
question, or drops a word the follow-up asks with is not used: the follow-up then stands as
asked, and the answer service may retrieve with the previous question joined to it.
"""

from __future__ import annotations

from llama_index.core.llms import ChatMessage

from app import prompts
from app.answering.corpus import lexical_tokens
from app.answering.question import Turn
from app.language import detect_language
from app.llm import Backend

TURN_CHARS = 500  # of each earlier question and answer, in the rewrite prompt


def recent(history: list[Turn], turns: int) -> list[Turn]:
    """The last `turns` turns of the conversation (none when `turns` is 0)."""
    return history[-turns:] if turns else []


def condense(backend: Backend, question: str, history: list[Turn]) -> str:
    """A follow-up rewritten as a standalone question, in the user's language."""
    if not history:
        return question
    if backend.llm is None:
        return question  # without a model, the previous question may be joined instead
    transcript = "\n".join(f"User: {t.question[:TURN_CHARS]}\nAssistant: {t.answer[:TURN_CHARS]}"
                           for t in history)
    rewritten = backend.complete([ChatMessage(role="user", content=prompts.render(
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


def joined_with_previous(question: str, history: list[Turn]) -> str:
    """The previous question and the follow-up as one retrieval query: the follow-up alone
    (or a small model's rewrite of it) can lack the referent."""
    return f"{history[-1].question} {question}"
