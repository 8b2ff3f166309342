"""What the reader sees: the checked sentences with their markers, the sentence a yes/no
answer rests on, the evidence-first lead-in, or the refusal."""

from __future__ import annotations

from app import prompts
from app.answering.checks import CheckedSentence, with_markers
from app.answering.corpus import Passage
from app.answering.results import AnswerResult, AnswerSentence
from app.language import yes_no_contradiction


def sentences(kept: list[CheckedSentence]) -> list[AnswerSentence]:
    return [AnswerSentence(s.text, s.citations, s.support) for s in kept]


def answer_text(kept: list[AnswerSentence] | list[CheckedSentence], sep: str = " ") -> str:
    """The sentences, each with its [n] markers."""
    return sep.join(with_markers(s.text, s.citations) for s in kept)


def with_basis(result: AnswerResult, evidence: list[Passage], lang: str) -> str:
    """A yes/no answer never stands without the sentence it rests on, nor against it.
    (A contradicted answer sentence is moved to `result.dropped`.)"""
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


def evidence_first(answer: str, lang: str) -> str:
    """An answer in the articles' language, introduced as such in the reader's."""
    return f"{prompts.message('evidence_intro', lang)}\n{answer}"


def refusal(result: AnswerResult, reason: str) -> None:
    """Turn `result` into an honest refusal (its passages stay: the closest ones are shown)."""
    result.refused = True
    result.refusal_reason = reason
    result.answer = prompts.message("refusal", result.language)
    result.sentences = []
