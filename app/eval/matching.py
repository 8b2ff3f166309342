"""Matching an answer against the gold: passage overlap, key facts, SQuAD-style EM and F1
with Arabic normalisation."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from index.textnorm import normalize, script_of

_MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*[,،]\s*\d{1,3})*\]")
# Clitics an Arabic word may carry before a key fact: conjunction, preposition, article.
_AR_CLITICS = r"(?:[وف]?[بلك]?(?:ال)?|لل)?"
_EN_ARTICLES = {"a", "an", "the"}


def overlaps(article_id: str, start: int, end: int, gold_article: str | None,
             gold_spans: Iterable[Iterable[int]]) -> bool:
    """A passage hits when it is in the gold article and its [start, end) meets a gold span."""
    return article_id == gold_article and any(start < g_end and g_start < end
                                              for g_start, g_end in gold_spans)


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text)


def key_fact_found(fact: str, text: str) -> bool:
    """Whether `fact` occurs in `text` after normalisation, starting at a word.

    Arabic facts may follow clitics (و ف ب ل ك ال), as "فنزويلي" in "الفنزويليين"; a fact of
    one or two characters ("No", "لا") must be a whole word, so "no" is not found in "not".
    """
    fact_norm = " ".join(normalize(fact).split())
    if not fact_norm:
        return False
    prefix = _AR_CLITICS if script_of(fact_norm) == "arabic" else ""
    suffix = r"(?!\w)" if len(fact_norm) <= 2 else ""
    pattern = rf"(?<!\w){prefix}{re.escape(fact_norm)}{suffix}"
    return re.search(pattern, " ".join(normalize(strip_markers(text)).split())) is not None


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation that also folds Arabic spelling variants.

    Citation markers, punctuation and symbols go; case, diacritics, tatweel, alef forms, ى/ي
    and Arabic-Indic digits are folded (index.textnorm.normalize); English articles and the
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


def exact_match(prediction: str, golds: list[str]) -> float | None:
    if not golds:
        return None
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1(prediction: list[str], gold: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(gold)).values())
    if not prediction or not gold or common == 0:
        return float(prediction == gold)
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: list[str]) -> float | None:
    """Token F1 against the best-matching gold answer (None when there is none)."""
    if not golds:
        return None
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(g).split()) for g in golds)
