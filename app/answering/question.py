"""What a question arrives as: its text, checked once, and the conversation before it."""

from __future__ import annotations

from dataclasses import dataclass

from app.textcheck import text_problem


class AnswerError(ValueError):
    """Bad input to the answer service (an empty or oversized question, say)."""


class Question(str):
    """A question that has passed `checked_question`; made only by that function.

    The check runs once per request: a door may check early (so a bad question fails before
    anything loads), and every later `checked_question` call on the same request gets a
    Question back and returns it as it is.
    """


def checked_question(question: str | None, max_chars: int) -> Question:
    """The question without surrounding space; AnswerError if it is empty, too long or not
    plain text (see app.textcheck)."""
    if isinstance(question, Question):
        return question
    question = (question or "").strip()
    if not question:
        raise AnswerError("the question is empty")
    if problem := text_problem(question):
        raise AnswerError(f"the question {problem}")
    if len(question) > max_chars:
        raise AnswerError(f"the question is {len(question)} characters long; the limit is "
                          f"{max_chars}")
    return Question(question)


@dataclass
class Turn:
    question: str
    answer: str
