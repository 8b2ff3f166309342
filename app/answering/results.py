"""What the answer service gives back: streamed tokens, then one `AnswerResult`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from app.answering.corpus import Passage


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
    # What the refusal rule decided on: p(answerable) for the model, the best evidence
    # sentence's cosine for the threshold rule (None when nothing was retrieved).
    refusal_score: float | None = None
    translation: dict | None = None  # {"text", "label", "lang"} for evidence-first answers
    dropped: list[dict] = field(default_factory=list)  # sentences removed by verification
    removed_markers: int = 0
    corrected_citations: int = 0  # sentences whose citation was moved to the passage backing it
    yes_no: bool = False
    notice: str = ""
    timings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The result as the API and `ask --json` give it. A dropped sentence failed its
        checks, so it goes out as its citations and the kind of each problem, never its
        words nor the words a problem names ("words not in the cited text: …")."""
        data = asdict(self)
        data["dropped"] = [{"citations": list(d.get("citations") or []),
                            "problems": [p.split(":")[0] for p in d.get("problems") or []]}
                           for d in self.dropped]
        return data


@dataclass
class Token:
    """A streamed piece of text; `part` is "answer" or "translation"."""

    text: str
    part: str = "answer"
