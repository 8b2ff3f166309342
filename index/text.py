"""Text rules shared by indexing, search, answering and evaluation, each written once.

Normalisation and script detection, tokens and stopwords, Arabic clitics, the `[n]`
citation markers, capitalised names and month names."""

from __future__ import annotations

import re
import unicodedata

_MARKS = "\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED"  # Arabic diacritics (Mn)
_DIACRITICS = re.compile(f"[{_MARKS}]")
# A word as written: a letter, then letters, digits, diacritics (which \w leaves out, so
# المعلّم would split at its shadda), apostrophes and hyphens ("high-definition").
WORD = re.compile(f"[^\\W\\d_][\\w{_MARKS}'’-]*")
_TATWEEL = "\u0640"
_ALEF = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي"})
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_ARABIC_LETTER = re.compile(r"[\u0621-\u064A\u0671-\u06D3\u06FA-\u06FF]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00C0-\u024F]")
_TOKEN = re.compile(r"\w+", re.UNICODE)


def without_diacritics(text: str) -> str:
    return _DIACRITICS.sub("", text)


def normalize_arabic(text: str) -> str:
    """Fold the spelling variants that Arabic writers use interchangeably.

    Removes diacritics and tatweel, unifies alef forms (أ إ آ ٱ → ا) and alef maqsura
    (ى → ي), and maps Arabic-Indic digits to ASCII.
    """
    text = unicodedata.normalize("NFC", text)
    text = _DIACRITICS.sub("", text).replace(_TATWEEL, "")
    return text.translate(_ALEF).translate(_DIGITS)


def normalize(text: str) -> str:
    """Case-folded, Arabic-normalised text for matching in any script."""
    return normalize_arabic(text).casefold()


def script_of(text: str) -> str:
    """'arabic', 'latin' or 'other': the script most of the letters are written in."""
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    if arabic == latin == 0:
        return "other"
    return "arabic" if arabic >= latin else "latin"


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize(text))


# Function words of English and Arabic: no evidence of a match, no claim in an answer.
STOPWORDS = set("""a an the of in on at to for from by with and or but is are was were be been
being it its this that these those as which who whom whose what when where why how do does did
not no yes than then there their they them he she his her we our you your i me my also said says
will would could should can may might has have had into about after before over under more most
very such any all some one two per""".split()) | {normalize(w) for w in """في من على إلى الى
عن مع أن ان إن إنه أنه التي الذي الذين هذه هذا ذلك تلك كان كانت يكون لم لن لا ما ماذا هل و أو
ثم قد كما بين عند كل أي حيث إذا اذا وقد وقال قال فيما أيضا""".split()}


# -- Arabic clitics ----------------------------------------------------------------------
# Letters and syllables written onto the front of an Arabic word. Callers strip different
# sets on purpose (a stemmer, a name matcher, a copy check, a number finder): each passes
# its own, in the order to try them.
AR_ARTICLES = ("وال", "بال", "فال", "لل", "ال")  # the article, alone or after و ف ب ل
AR_CONJUNCTIONS = ("و", "ف")  # and, so
AR_STEM_PREFIXES = (*AR_ARTICLES, "و", "ف", "ب", "ل")
# A regular expression for any clitics an Arabic word may carry before a key fact:
# conjunction, preposition, article (و ف ب ل ك ال), or لل (ل + ال), itself after و ف.
AR_CLITICS_PATTERN = r"(?:[وف]?[بكل]?(?:ال)?|[وف]?لل)?"
_AR_SUFFIXES = sorted(["هما", "ها", "هم", "كم", "نا", "ون", "ين", "ات", "ان", "ية", "ة", "ه", "ي",
                       "ت", "ا"], key=len, reverse=True)


def strip_clitic(word: str, clitics: tuple[str, ...], min_rest: int = 0) -> str:
    """`word` without the first of `clitics` it starts with that leaves `min_rest` letters."""
    for clitic in clitics:
        if word.startswith(clitic) and len(word) - len(clitic) >= min_rest:
            return word[len(clitic):]
    return word


def light_stem(word: str) -> str:
    """Strip one common prefix and suffix (Arabic) or plural/verb endings (Latin)."""
    word = normalize(word)
    if script_of(word) == "arabic":
        word = strip_clitic(word, AR_STEM_PREFIXES, min_rest=3)
        for suffix in _AR_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                return word[: -len(suffix)]
        return word
    return re.sub(r"(?:'s|ies|es|s|ed|ing)$", "", word) if len(word) > 4 else word


# -- citation markers and names ----------------------------------------------------------
# "[2]", "[1][3]", "[1, 3]" after a sentence: the group holds the numbers of one marker.
CITATION_MARKERS = re.compile(r"\s*\[(\d{1,3}(?:\s*[,،]\s*\d{1,3})*)\]")
CITATION_MARKER = re.compile(r"\[(\d{1,3})\]")  # one "[n]", as the web pages link them


def capitalised(letters: str = r"\w") -> str:
    """A regular expression for a capitalised word of `letters`, apostrophes and hyphens."""
    return rf"[A-Z][{letters}'’-]+"


NAME_WORD = re.compile(r"\b" + capitalised())
# Latin letters only: a checked sentence's names ("Obrador", "Sheinbaum", "Zürich").
LATIN_NAME_WORD = re.compile(r"\b" + capitalised(r"a-zA-Z\u00C0-\u024F"))
# Capitalised words in a row after a lower-case word or a comma: names inside a sentence.
NAME_RUN = re.compile(rf"(?<=[a-z,;] ){capitalised()}(?: {capitalised()})*")

# -- months ------------------------------------------------------------------------------
MONTHS = {
    "january": "يناير", "february": "فبراير", "march": "مارس", "april": "أبريل", "may": "مايو",
    "june": "يونيو", "july": "يوليو", "august": "أغسطس", "september": "سبتمبر",
    "october": "أكتوبر", "november": "نوفمبر", "december": "ديسمبر",
}
# Each month in every form we accept for it, normalised.
MONTH_FORMS = [{en, normalize(ar)} for en, ar in MONTHS.items()]
# Any month name, English or Arabic, as written or normalised.
MONTH_PATTERN = "|".join(dict.fromkeys([*MONTHS, *MONTHS.values(),
                                        *(normalize(ar) for ar in MONTHS.values())]))
