"""What depends on the backend: the language of the answer and how strictly it is checked.

A strong backend writes the answer in the question's language even over evidence in the
other one ("direct"); a small one answers in the evidence's language, which the reader sees
first, with a labelled machine translation after it ("evidence_first"). The small model's
sentences must also be copies of the cited text (see copy_check).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.llm import STRONG_BACKENDS, Backend
from app.settings import Settings


@dataclass(frozen=True)
class LanguagePlan:
    question_lang: str
    evidence_lang: str
    policy: str  # "direct" or "evidence_first"

    @property
    def cross(self) -> bool:
        return self.evidence_lang != self.question_lang

    @property
    def evidence_first(self) -> bool:
        return self.cross and self.policy == "evidence_first"

    @property
    def answer_lang(self) -> str:
        return self.evidence_lang if self.evidence_first else self.question_lang


def language_plan(settings: Settings, backend: Backend, question_lang: str,
                  evidence_lang: str) -> LanguagePlan:
    policy = settings.cross_language
    if policy == "auto":
        policy = "direct" if backend.name in STRONG_BACKENDS else "evidence_first"
    return LanguagePlan(question_lang, evidence_lang, policy)


def copy_only(settings: Settings, backend: Backend) -> bool:
    """Whether answer sentences must be the cited passages' own words."""
    check = settings.answer_check
    if check == "auto":
        return backend.llm is not None and backend.name not in STRONG_BACKENDS
    return check == "copy"


def answers_with_span(settings: Settings, backend: Backend, yes_no: bool) -> bool:
    """Whether the model is asked for the evidence's shortest answering words rather than
    answer sentences. A yes/no question keeps sentences: its answer is a verdict with the
    sentence it rests on (render.with_basis)."""
    form = settings.answer_form
    if form == "auto":
        form = "span" if backend.llm is not None and backend.name not in STRONG_BACKENDS \
            else "sentences"
    return form == "span" and not yes_no
