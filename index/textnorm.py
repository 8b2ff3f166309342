"""Script detection and Arabic normalisation for lexical matching and answer scoring."""

from __future__ import annotations

import re
import unicodedata

_DIACRITICS = re.compile(r"[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED]")
_TATWEEL = "\u0640"
_ALEF = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي"})
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_ARABIC_LETTER = re.compile(r"[\u0621-\u064A\u0671-\u06D3\u06FA-\u06FF]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00C0-\u024F]")
_TOKEN = re.compile(r"\w+", re.UNICODE)


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
