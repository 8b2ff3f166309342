"""What the refusal decision looks at: small measurements of the question, the retrieved
chunks and the evidence sentences, each one a pure function that a reader can check by hand.

A value is None where the measurement does not apply (a lexical overlap between an English
question and Arabic evidence, a name asked for in a script whose names we cannot tell).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from app.answering.corpus import (
    LATIN_NAME_WORD,
    MONTH_FORMS,
    STOPWORDS,
    Passage,
    lexical_tokens,
    normalize,
    script_of,
    tokens,
)
from app.language import asks_for_quantity, states_quantity

RANKING_DEPTH = 5  # the chunk scores a query's own distribution is read from
CLOSE_TO_BEST = 0.1  # evidence within this of the best score counts for the amount rule
MIN_SPREAD = 0.01  # floor of the standard deviation in the z-score: near-equal scores

# Words that say what kind of thing is asked, not what about: no evidence of a match.
QUESTION_WORDS = {normalize(w) for w in """what which who whom whose when where why how many
much ما ماذا من متى أين اين كيف لماذا كم هل أي اي الذي التي هو هي هم""".split()}

_LEAD = "-–— \t\"'«"
_DATE_EN = re.compile(r"^(when|(in |during |by )?(what|which) (year|month|day|date|century|decade))",
                      re.IGNORECASE)
_NAME_EN = re.compile(r"^(who|whom|whose)\b", re.IGNORECASE)
_DATE_AR = re.compile(r"^و?(متي|(في|فى) (اي|أي) (عام|سنة|سنه|تاريخ|يوم|شهر|قرن)|ما تاريخ|منذ متي)")
_NAME_AR = re.compile(r"^و?من (هو|هي|هم|الذي|التي|كان|كانت)?\b")
_YEAR = re.compile(r"(?<!\d)\d{3,4}(?!\d)")
_MONTH = re.compile(r"\b(" + "|".join(sorted({f for forms in MONTH_FORMS for f in forms})) + ")")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ORDINALS_EN = set("""first second third fourth fifth sixth seventh eighth ninth tenth eleventh
twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth
thirtieth fortieth fiftieth hundredth""".split())
_ORDINAL_EN = re.compile(r"^\d+(st|nd|rd|th)$")
_ORDINALS_AR = {normalize(w) for w in """الأول الأولى الثاني الثانية الثالث الثالثة الرابع
الرابعة الخامس الخامسة السادس السادسة السابع السابعة الثامن الثامنة التاسع التاسعة العاشر
العاشرة العشرين""".split()}


def _scores(passages: Sequence[Passage]) -> list[float]:
    return [p.score for p in passages]


def top_score(passages: Sequence[Passage]) -> float | None:
    """The best passage's score (passages come best first)."""
    return passages[0].score if passages else None


def margin(passages: Sequence[Passage]) -> float | None:
    """How far the best passage scores above the next-best: a clear winner or a crowd."""
    scores = sorted(_scores(passages), reverse=True)
    return scores[0] - scores[1] if len(scores) >= 2 else None


def z_score(passages: Sequence[Passage], depth: int = RANKING_DEPTH) -> float | None:
    """The best score against the query's own top-`depth` scores, in standard deviations:
    a question that matches one passage stands out of its ranking, one that matches
    nothing in particular scores alike everywhere, whatever the absolute cosine."""
    scores = np.array(sorted(_scores(passages), reverse=True)[:depth])
    if len(scores) < 3:
        return None
    return float((scores[0] - scores.mean()) / max(float(scores.std()), MIN_SPREAD))


def content_words(question: str, script: str) -> set[str]:
    """The question's stemmed words that say what it is about."""
    words = [w for w in tokens(question) if w not in QUESTION_WORDS]
    return set(lexical_tokens(" ".join(words), script)) if words else set()


def overlap(question: str, text: str) -> float | None:
    """Share of the question's content words found in `text`; None across scripts, where
    no word can be shared, or when the question has no content word."""
    script = script_of(question)
    if script == "other" or script != script_of(text):
        return None
    asked = content_words(question, script)
    if not asked:
        return None
    return len(asked & set(lexical_tokens(text, script))) / len(asked)


def _bare(question: str) -> str:
    return question.strip().lstrip(_LEAD).strip()


def expected_answer_type(question: str) -> str | None:
    """"number" for how many/how much, "date" for when/what year, "name" for who; else None."""
    text = _bare(question)
    if asks_for_quantity(text):
        return "number"
    norm = normalize(text)
    if _DATE_EN.match(text) or _DATE_AR.match(norm):
        return "date"
    if _NAME_EN.match(text) or _NAME_AR.match(norm):
        return "name"
    return None


def holds_type(kind: str, text: str) -> bool | None:
    """Whether `text` holds a thing of `kind`; None where we cannot tell (names in Arabic
    script have no capitals)."""
    if kind == "number":
        return states_quantity(text)
    if kind == "date":
        norm = normalize(text)
        return bool(_YEAR.search(norm) or _MONTH.search(norm))
    if kind == "name":
        if script_of(text) != "latin":
            return None
        return any(m.start() > 0 and m.group(0).lower() not in STOPWORDS
                   for m in LATIN_NAME_WORD.finditer(text))
    raise ValueError(f"unknown answer type {kind!r}")


def answer_type_missing(question: str, texts: Sequence[str]) -> float | None:
    """1.0 when the question asks for a number, date or name and none of `texts` holds one,
    0.0 when one does; None when the question asks for no such thing or we cannot tell."""
    kind = expected_answer_type(question)
    if kind is None:
        return None
    found = [holds_type(kind, t) for t in texts]
    if any(found):
        return 0.0
    return None if all(f is None for f in found) else 1.0


def distinguishing_terms(question: str) -> list[str]:
    """The words that single out what is asked about from its neighbours: numbers,
    ordinals ("20th", "الخامس") and names (capitalised Latin words inside the sentence),
    normalised."""
    terms = [m.group(0) for m in _NUMBER.finditer(normalize(question))]
    for word in tokens(question):
        if word in _ORDINALS_EN or _ORDINAL_EN.match(word) or word in _ORDINALS_AR:
            terms.append(word)
    text = _bare(question)
    terms += [m.group(0).lower() for m in LATIN_NAME_WORD.finditer(text)
              if m.start() > 0 and m.group(0).lower() not in STOPWORDS]
    return list(dict.fromkeys(terms))


def missing_terms(question: str, text: str) -> float | None:
    """Share of the question's distinguishing terms that `text` lacks; only terms `text`
    could hold count (digits anywhere, words in its own script). None when none count."""
    script = script_of(text)
    checkable = [t for t in distinguishing_terms(question)
                 if t[0].isdigit() or script_of(t) == script]
    if not checkable:
        return None
    words = set(tokens(text))
    numbers = set(_NUMBER.findall(normalize(text)))
    missing = [t for t in checkable
               if t not in words and t not in numbers and t.split(".")[0] not in numbers
               and not any(w.endswith(t) for w in words if len(t) > 3)]
    return len(missing) / len(checkable)


def amount_without_quantity(question: str, evidence: Sequence[Passage]) -> bool:
    """The question asks for an amount and no evidence close to the best states one."""
    if not evidence or not asks_for_quantity(_bare(question)):
        return False
    close = [p for p in evidence if p.score >= evidence[0].score - CLOSE_TO_BEST]
    return not any(states_quantity(p.text) for p in close)


def measure(question: str, lang: str, retrieved: Sequence[Passage],
            evidence: Sequence[Passage], unknown_names: Sequence[str]) -> dict[str, float | None]:
    """Every feature of one decision, by name (None where it does not apply)."""
    texts = [p.text for p in evidence]
    joined = " ".join(texts)
    over = overlap(question, joined) if evidence else None
    return {
        "top_evidence": top_score(evidence),
        "evidence_margin": margin(evidence),
        "top_chunk": top_score(retrieved),
        "chunk_margin": margin(retrieved[:RANKING_DEPTH]),
        "chunk_z": z_score(retrieved),
        "overlap": over,
        "cross_script": float(bool(evidence) and script_of(question) != script_of(texts[0])),
        "type_missing": answer_type_missing(question, texts) if evidence else None,
        "terms_missing": missing_terms(question, joined) if evidence else None,
        "amount_rule": float(amount_without_quantity(question, evidence)),
        "unknown_name": float(bool(unknown_names)),
        "lang_ar": float(lang == "ar"),
    }
