"""Whether a Latin-script name in a machine translation comes from the Arabic original.

A small model translating Arabic news into English garbles names ("Mayurkash") and also
invents them ("President Michelangelo Buonaparte" for لوبيز أوبرادور). A garbled name still
sounds like the original; an invented one does not. Both sides are reduced to consonant
skeletons in one shared alphabet (Arabic writes no short vowels, so Latin vowels are
dropped too) and compared by similarity: a name whose skeleton is like no word of the
source is reported as not in the original.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from index.text import AR_ARTICLES, MONTHS, normalize, strip_clitic

# Arabic letters to the shared alphabet; long vowels, hamza carriers, ع and ة are dropped.
_ARABIC = str.maketrans({
    "ب": "b", "پ": "b", "ت": "t", "ط": "t", "ث": "t", "ج": "j", "ح": "h", "خ": "k", "د": "d",
    "ض": "d", "ذ": "z", "ر": "r", "ز": "z", "س": "s", "ص": "s", "ش": "s", "غ": "g", "ف": "f",
    "ڤ": "f", "ق": "k", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "ظ": "z",
    **{c: "" for c in "اأإآءئؤويىةع"},
})
# Latin spellings to the same alphabet, longest first; vowels, w and y are dropped.
_LATIN_RULES = [(r"sch|sh", "s"), (r"kh|ck|qu|q", "k"), (r"th", "t"), (r"ph|v", "f"),
                (r"gh", "g"), (r"x", "ks"), (r"c(?=[eiy])", "s"), (r"c", "k"), (r"p", "b"),
                (r"(?<=[bdfjklmnrst])h", ""), (r"[aeiouyw'’-]", "")]
# Spellings that stand for either of two sounds: "ch" in Charles (تشارلز) and Michael
# (مايكل), "g" in George (جورج) and Gilbert (غيلبرت), "h" after a vowel in Ahmad (أحمد)
# and John (جون); every reading is tried.
_LATIN_CHOICES = [(r"ch", ("ts", "s", "k")), (r"g(?=[eiy])", ("j", "g")),
                  (r"(?<=[aeiouy])h(?![aeiouy])", ("h", ""))]
MIN_SIMILARITY = 0.8
# Capitalised English words that translate an Arabic word rather than transliterate it.
COMMON = {w.lower() for w in """I A The United States America American Americans White House
Secretary State Department Homeland Security President Vice Minister Ministry Foreign Affairs
Interior Defense Congress Senate Republican Republicans Democrat Democrats Democratic
Administration Government Latin Central South North Western Eastern Hemisphere Middle East
Europe European Union Nations Arab Muslim Mr Mrs Ms Dr Monday Tuesday Wednesday Thursday Friday
Saturday Sunday News Caribbean Gulf Sea Ocean Border Patrol Immigration Customs Assistant
Adviser Advisor Deputy Chief Officer Official Officials Spokesman Spokesperson Council National
General Attorney Agency Committee Commission Prime Governor Mayor Ambassador Embassy""".split()}
COMMON |= {month.lower() for month in MONTHS}


def _collapse(skeleton: str) -> str:
    return re.sub(r"(.)\1+", r"\1", skeleton)


def _plain(word: str) -> str:
    plain = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in plain if not unicodedata.combining(c))


def _skeleton(plain: str) -> str:
    for pattern, repl in _LATIN_RULES:
        plain = re.sub(pattern, repl, plain)
    return _collapse(re.sub(r"[^a-z]", "", plain).replace("z", "s"))


def latin_skeletons(word: str) -> set[str]:
    """The word's skeleton under every reading of its ambiguous spellings."""
    readings = {_plain(word)}
    for pattern, choices in _LATIN_CHOICES:
        readings = {re.sub(pattern, choice, r) for r in readings for choice in choices}
    return {_skeleton(r) for r in readings}


def arabic_skeletons(word: str) -> set[str]:
    """The word's skeleton, and without a leading article: "ال" may also begin a name
    (إليزابيث, normalised to اليزابيث)."""
    word = normalize(word)
    forms = {word, strip_clitic(word, AR_ARTICLES)}
    # s and z merge: English writes the voiced s of "Mayorkas" and "Rose" both ways
    return {_collapse(form.translate(_ARABIC).replace("z", "s")) for form in forms}


def source_skeletons(text: str, min_length: int = 2) -> set[str]:
    """Skeletons of the Arabic words of `text` (at least `min_length` letters), and its
    Latin words as they are."""
    arabic = set().union(*map(arabic_skeletons, re.findall(r"[\u0600-\u06FF]+", text)))
    return ({s for s in arabic if len(s) >= min_length}
            | {w.lower() for w in re.findall(r"[A-Za-z]+", text)})


def is_in_source(word: str, skeletons: set[str], strict: bool = False) -> bool:
    """Whether the Latin `word` could be a transliteration of a word with these skeletons.
    A skeleton too short to compare by similarity ("Ali", "Tokyo") passes, or with `strict`
    must equal one of them ("Apple" is not أبلين)."""
    return word.lower() in COMMON or sounds_in_source(word, skeletons, strict)


def sounds_in_source(word: str, skeletons: set[str], strict: bool = False) -> bool:
    """`is_in_source` by sound alone: a common word passes only if it sounds like one."""
    if word.lower() in skeletons:
        return True
    return any(_matches(target, skeletons, strict) for target in latin_skeletons(word))


def _matches(target: str, skeletons: set[str], strict: bool) -> bool:
    if len(target) < 3:
        return not strict or target in skeletons
    return any(len(s) >= 3 and abs(len(s) - len(target)) <= 1
               and difflib.SequenceMatcher(None, target, s).ratio() >= MIN_SIMILARITY
               for s in skeletons)


def names_not_in_source(names: list[str], source: str, question: str = "",
                        strict: bool = False) -> list[str]:
    """The names (each one or more capitalised words) with a word found nowhere in the
    source (Arabic, possibly with Latin words such as a site's name) nor in the question."""
    # strict: one-letter skeletons too, since a short name must equal one (علي for "Ali")
    skeletons = source_skeletons(source, min_length=1 if strict else 2)
    asked = question.lower()
    return [name for name in names
            if any(w.lower() not in asked and not is_in_source(w, skeletons, strict)
                   for w in re.findall(r"[^\W\d_]+", name))]


def common_words_not_heard(names: list[str], source: str, question: str = "") -> list[str]:
    """The common words of `names` ("Council", "Arab") that are not in the question and
    sound like no word of the source (strict). They pass `names_not_in_source` by being
    common; this is for a caller that can check them another way (by meaning)."""
    skeletons = source_skeletons(source, min_length=1)
    asked = question.lower()
    words = [w for name in names for w in re.findall(r"[^\W\d_]+", name)]
    return list(dict.fromkeys(
        w for w in words if w.lower() in COMMON and w.lower() not in asked
        and not sounds_in_source(w, skeletons, strict=True)))
