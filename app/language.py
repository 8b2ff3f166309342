"""Which language a question is in, and whether it asks for a yes or a no."""

from __future__ import annotations

import re

from index.text import MONTH_PATTERN, normalize, script_of, strip_clitic

LANGUAGE_NAMES = {"ar": "Arabic", "en": "English"}

_EN_YESNO = re.compile(
    r"^\s*(is|are|was|were|do|does|did|will|would|can|could|has|have|had|should|shall|may|"
    r"might|must|isn't|aren't|wasn't|weren't|doesn't|didn't|won't|wouldn't|can't|hasn't|"
    r"haven't)\b", re.IGNORECASE)


def detect_language(text: str) -> str:
    """'ar' for Arabic script, else 'en' (the languages Sanad has phrases and checks for)."""
    return "ar" if script_of(text) == "arabic" else "en"


def is_yes_no_question(text: str) -> bool:
    stripped = text.strip().lstrip("-–— ").strip()
    if detect_language(stripped) == "ar":
        return bool(re.match(r"^\s*(هل)\b", normalize(stripped)))
    return bool(_EN_YESNO.match(stripped))


_QUANTITY_EN = re.compile(r"^\s*(how (many|much)|what (percentage|share|proportion|number)|"
                          r"by (how much|what (percentage|amount|share))|at what (rate|cost))\b",
                          re.IGNORECASE)
_QUANTITY_AR = re.compile(r"^\s*و?(كم|ما نسبة|بأي نسبة|باي نسبة|ما عدد|ما حجم|ما مقدار|ما قيمة)")
# Number words that can state a quantity in Arabic text.
_AR_NUMBER_WORDS = {normalize(w) for w in """واحد اثنان اثنين ثلاث ثلاثة أربع أربعة خمس خمسة ست
ستة سبع سبعة ثمان ثمانية تسع تسعة عشر عشرة عشرون عشرين ثلاثون ثلاثين أربعون أربعين خمسون خمسين
مائة مئة مئات ألف آلاف الف الاف مليون ملايين مليار مليارات بالمئة""".split()}
_EN_NUMBER_WORDS = set("""one two three four five six seven eight nine ten eleven twelve twenty
thirty forty fifty hundred hundreds thousand thousands million millions billion billions
percent dozen""".split())
_DATE_AFTER = re.compile(rf"^\s*({MONTH_PATTERN})", re.IGNORECASE)


def asks_for_quantity(question: str) -> bool:
    """'How many …?', 'كم …؟': the answer must be a number."""
    text = question.strip().lstrip("-–— ").strip()
    return bool(_QUANTITY_EN.match(text) or _QUANTITY_AR.match(normalize(text)))


def states_quantity(text: str) -> bool:
    """Whether `text` states an amount: a number that is not a day or year, or a number word."""
    norm = normalize(text)
    for match in re.finditer(r"\d+(?:[.,]\d+)*", norm):
        value = match.group(0)
        is_year = len(value) == 4 and value[:2] in ("19", "20")
        if not is_year and not _DATE_AFTER.match(norm[match.end():]):
            return True
    words = set(re.findall(r"\w+", norm))
    stripped = {strip_clitic(w, ("و", "ب", "ل")) for w in words}
    return bool((words | stripped) & (_AR_NUMBER_WORDS | _EN_NUMBER_WORDS))


_NEGATIONS = {"not", "no", "never", "none", "nor", "cannot", "nothing", "neither",
              "لا", "لن", "لم", "ليس", "ليست", "ليسوا", "لسنا", "ولا", "ولن", "ولم", "وليس", "وليست",
              "فلا", "فلن", "فلم"}
_YES = {"yes", "نعم", "بلي"}
_NO = {"no", "كلا", "لا"}
VERDICT_WORDS = _YES | _NO  # normalised: the words a yes/no answer opens with


def negations(text: str) -> int:
    """How many negation words `text` has (not, never, لا, لن, لم, ليس …)."""
    words = re.findall(r"[\w']+", normalize(text))
    return sum(w in _NEGATIONS or w.endswith("n't") for w in words)


def split_verdict(sentence: str) -> tuple[str | None, str]:
    """('yes' | 'no' | None, the rest) of an answer that opens with a yes or a no."""
    match = re.match(r"^\s*([\w]+)\s*[,،.!:]\s*(.*)$", sentence, re.S)
    if match:
        word = normalize(match.group(1))
        if word in _YES:
            return "yes", match.group(2)
        if word in _NO:
            return "no", match.group(2)
    return None, sentence


def yes_no_contradiction(question: str, sentence: str, basis: str) -> str:
    """Why a yes/no answer contradicts the sentence it rests on, or "".

    The small model flipped answers ("yes, Mexico will stop…" over "Mexico will not
    stop…"). Polarity is compared by counting negation words: a statement restating its
    basis has as many, and the answer is "yes" exactly when question and basis have the
    same parity of negations ("Will it stop if …not…?" over "It will not stop if …not…").
    """
    verdict, rest = split_verdict(sentence)
    in_basis = negations(basis)
    if rest.strip() and negations(rest) != in_basis:
        return "its statement and its basis disagree on negation"
    if verdict and (verdict == "yes") != (negations(question) % 2 == in_basis % 2):
        return f"answers {verdict!r} while its basis says the opposite"
    return ""
