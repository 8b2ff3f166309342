"""Matching an answer against the gold: passage overlap, key facts, SQuAD-style EM and F1
with Arabic normalisation."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from app.language import VERDICT_WORDS
from index.text import AR_CLITICS_PATTERN, CITATION_MARKERS, normalize, script_of

_EN_PLURAL = r"(?:e?s)?"
_EN_ARTICLES = {"a", "an", "the"}
# A verdict opens the answer and stands alone: "No, …", "لا، …", "Yes." — not the first
# word of a quoted sentence ("No announcements are expected").
_VERDICT_END = r"\s*(?:[,،.!:;؛]|$)"


def overlaps(article_id: str, start: int, end: int, gold_article: str | None,
             gold_spans: Iterable[Iterable[int]]) -> bool:
    """A passage hits when it is in the gold article and its [start, end) meets a gold span."""
    return article_id == gold_article and any(start < g_end and g_start < end
                                              for g_start, g_end in gold_spans)


def strip_markers(text: str) -> str:
    return CITATION_MARKERS.sub("", text)


def _words(text: str) -> str:
    return " ".join(normalize(strip_markers(text)).split())


def fact_pattern(fact: str) -> str:
    """The regex a normalised key fact is found by: whole words only ("200" is not in "2000",
    "ten" not in "Tennessee"). An Arabic fact may carry proclitics (و ف ب ك ل ال) when its
    first word has three letters or more without its article, so "الفنزويليين" is found in
    "للفنزويليين" but "لا" not in "بلا"; an English one may take a plural -s/-es."""
    if script_of(fact) == "arabic":
        stem = fact[2:] if fact.startswith("ال") and len(fact.split()[0]) >= 5 else fact
        prefix = AR_CLITICS_PATTERN if len(stem.split()[0]) >= 3 else ""
        return rf"(?<!\w){prefix}{re.escape(stem)}(?!\w)"
    suffix = _EN_PLURAL if len(fact) >= 3 and fact[-1].isalpha() else ""
    return rf"(?<!\w){re.escape(fact)}{suffix}(?!\w)"


def key_fact_found(fact: str, text: str) -> bool:
    """Whether `fact` occurs in `text` as whole words, after normalisation (case,
    diacritics, alef forms, Arabic-Indic digits) and without citation markers.

    A verdict fact ("No", "لا", "Yes", "نعم") counts only as the answer's opening word,
    followed by punctuation or nothing: a quoted sentence that happens to start with "لا"
    gives no verdict."""
    fact_norm = " ".join(normalize(fact).split())
    if not fact_norm:
        return False
    if fact_norm in VERDICT_WORDS:
        opening = normalize(strip_markers(text)).lstrip(" \t\n\"'«“(")
        return re.match(rf"{re.escape(fact_norm)}(?!\w){_VERDICT_END}", opening,
                        re.M) is not None
    return re.search(fact_pattern(fact_norm), _words(text)) is not None


def same_script(text: str, question: str) -> bool:
    """Whether `text` may be scored against answers to `question`: it is written in the
    question's script, or has no letters at all (a number, an empty refusal)."""
    script = script_of(text)
    return script == "other" or script == script_of(question)


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation that also folds Arabic spelling variants.

    Citation markers, punctuation and symbols go; case, diacritics, tatweel, alef forms, ى/ي
    and Arabic-Indic digits are folded (index.text.normalize); English articles and the
    Arabic article ال at the start of a word are dropped.
    """
    text = normalize(strip_markers(text))
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    words = []
    for word in text.split():
        if word in _EN_ARTICLES:
            continue
        if word.startswith("ال") and len(word) >= 4:
            word = word[2:]
        words.append(word)
    return " ".join(words)


def _gold_texts(golds: list[str]) -> list[str]:
    """The gold answers that say something once normalised (never "" or "the")."""
    return [g for g in (normalize_answer(g) for g in golds) if g]


def exact_match(prediction: str, golds: list[str]) -> float | None:
    """1.0 when the normalised prediction equals a normalised gold answer; None without a
    gold that has words, so an empty prediction (a refusal) never matches an empty gold."""
    golds = _gold_texts(golds)
    if not golds:
        return None
    return float(normalize_answer(prediction) in golds)


def contains_gold(prediction: str, golds: list[str]) -> float | None:
    """1.0 when a normalised gold answer appears, as whole words, in the normalised
    prediction (a short answer first, or a sentence holding it); None without a gold that
    has words."""
    golds = _gold_texts(golds)
    if not golds:
        return None
    padded = f" {normalize_answer(prediction)} "
    return float(any(f" {g} " in padded for g in golds))


def _f1(prediction: list[str], gold: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: list[str]) -> float | None:
    """Token F1 against the best-matching gold answer (None when no gold has words)."""
    golds = _gold_texts(golds)
    if not golds:
        return None
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, g.split()) for g in golds)
