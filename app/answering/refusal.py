"""The refusal decision: whether the evidence found can answer the question at all.

Decided before the model is asked, from the evidence alone: a refused question costs no LLM
call, and the reason given is one a reader can check against the passages shown.
"""

from __future__ import annotations

from app.answering.corpus import NAME_WORD, STOPWORDS, Passage, Searcher, script_of
from app.language import asks_for_quantity, detect_language, states_quantity
from app.settings import Settings

CLOSE_TO_BEST = 0.1  # evidence within this of the best score counts for the amount rule


def refusal_threshold(settings: Settings, lang: str) -> float:
    """The evidence score below which a question in `lang` is refused."""
    return settings.refuse_below_ar if lang == "ar" else settings.refuse_below_en


def refusal_reason(question: str, evidence: list[Passage], settings: Settings,
                   searcher: Searcher) -> str:
    """Why the articles cannot answer this, or "" when they may. `searcher` is the one the
    evidence came from (the same index generation)."""
    if not evidence:
        return "nothing relevant was retrieved"
    lang = detect_language(question)
    threshold = refusal_threshold(settings, lang)
    if evidence[0].score < threshold:
        return f"best evidence scores {evidence[0].score:.3f}, below {threshold:.3f} for {lang}"
    close = [p for p in evidence if p.score >= evidence[0].score - CLOSE_TO_BEST]
    if asks_for_quantity(question) and not any(states_quantity(p.text) for p in close):
        return "the question asks for an amount and the evidence states none"
    # A name the articles never use (e.g. a country they never mention). Only names in
    # Latin script can be told apart from other words, and only checked against text
    # in that script, when the evidence is in it too (else the name may be in the
    # other script's articles).
    if script_of(question) == "latin" == script_of(evidence[0].text):
        names = [m.group(0) for m in NAME_WORD.finditer(question)
                 if m.start() > 0 and m.group(0).lower() not in STOPWORDS]
        unknown = searcher.unknown_terms(names)
        if unknown:
            return f"the articles never mention: {', '.join(unknown)}"
    return ""
