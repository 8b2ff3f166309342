"""The numbers a text states, as values, whether written in digits or in English or Arabic
words: "20 billion" and "20 مليار" state the same {20, 1e9}; "six" and "ستة" the same {6}.

A rendering of an Arabic answer into English must state exactly the numbers its source
states; this is how that is compared without trusting the model to copy them.
"""

from __future__ import annotations

import re

from index.text import WORD, normalize, strip_clitic

_EN = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "hundreds": 100,
    "thousand": 1000, "thousands": 1000, "million": 10**6, "millions": 10**6,
    "billion": 10**9, "billions": 10**9, "dozen": 12, "half": 0.5, "quarter": 0.25,
    "third": 1 / 3, "thirds": 1 / 3, "twice": 2, "double": 2,
    # ordinals from eleventh on ("the nineteenth century", "the 19th"); below them "first",
    # "second" and "third" are as often a rank, a time unit or a fraction
    "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
    "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
}
# Cardinal forms after normalize() (alef folded, ى → ي); masculine, feminine, case forms.
_AR_FORMS = {
    0: "صفر", 1: "واحد واحدة", 2: "اثنان اثنين اثنتان اثنتين اثنتا اثنا", 3: "ثلاث ثلاثة",
    4: "اربع اربعة", 5: "خمس خمسة", 6: "ست ستة", 7: "سبع سبعة", 8: "ثمان ثماني ثمانية",
    9: "تسع تسعة", 10: "عشر عشرة", 20: "عشرون عشرين", 30: "ثلاثون ثلاثين",
    40: "اربعون اربعين", 50: "خمسون خمسين", 60: "ستون ستين", 70: "سبعون سبعين",
    80: "ثمانون ثمانين", 90: "تسعون تسعين", 100: "مئة مائة مئات", 200: "مئتان مئتين مائتان مائتين",
    1000: "الف الاف", 2000: "الفان الفين", 10**6: "مليون ملايين", 2 * 10**6: "مليونان مليونين",
    10**9: "مليار مليارات بليون", 0.5: "نصف", 0.25: "ربع", 1 / 3: "ثلث", 12: "دزينة",
}
_AR = {form: value for value, forms in _AR_FORMS.items() for form in forms.split()}
# 11 to 19 are two words, a unit then ten (ثلاثة عشر "thirteen", التاسع عشر "nineteenth"):
# the unit as a cardinal or an ordinal, masculine or feminine.
_AR_TEEN_UNITS = {
    1: "احد احدي حادي حادية", 2: "اثنا اثنتا اثني اثنتي ثاني ثانية",
    3: "ثلاث ثلاثة ثالث ثالثة", 4: "اربع اربعة رابع رابعة", 5: "خمس خمسة خامس خامسة",
    6: "ست ستة سادس سادسة", 7: "سبع سبعة سابع سابعة", 8: "ثمان ثماني ثمانية ثامن ثامنة",
    9: "تسع تسعة تاسع تاسعة",
}
_AR_TEEN_UNIT = {form: value for value, forms in _AR_TEEN_UNITS.items()
                 for form in forms.split()}
_AR_TEN = {"عشر", "عشرة"}
# "third" is a fraction after a count ("a third", "two thirds": ثلث), else a rank ("the
# third largest": الثالث), which like "second" states no number here.
_FRACTION_COUNTS = {"a", "one", "two"}
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
# A Roman numeral after a capitalised word is a regnal or series number ("Louis XIV" for
# لويس الرابع عشر, "Super Bowl XXXIII" for السوبر بول 33); like "second", one below 11
# ("World War II", "Henry III") states no number here, as the Arabic ordinal beside it.
_ROMAN = re.compile(r"\b[A-Z][\w'’-]* ((?=[IVXLC])C{0,3}(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3}))\b")
_ROMAN_DIGITS = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
_AR_PREFIXES = ("وال", "بال", "وب", "ول", "ال", "و", "ب", "ل", "ف")  # longest first


def _digit_value(text: str) -> float:
    """"1,002,000", "1.002.000" and "1,002.5" as numbers: a separator written more than once
    groups thousands, and after other ones the last is the decimal point; one comma before
    three digits groups thousands, any other single separator is the decimal point."""
    separators = re.findall(r"[.,]", text)
    if len(separators) > 1:
        decimal = separators[-1] if separators[-1] != separators[0] else ""
        whole, _, fraction = text.rpartition(decimal) if decimal else (text, "", "")
        return float(re.sub(r"[.,]", "", whole) + ("." + fraction if decimal else ""))
    text = text.replace(",", "") if re.fullmatch(r"\d{1,3},\d{3}", text) else text
    return float(text.replace(",", "."))


def _roman_value(numeral: str) -> int:
    values = [_ROMAN_DIGITS[c] for c in numeral]
    # a digit before a larger one is subtracted: XIV = 10 - 1 + 5
    return sum(-v if v < after else v for v, after in zip(values, values[1:] + [0]))


def roman_numerals(text: str) -> dict[str, int]:
    """The Roman numerals of `text` written after a capitalised word, with their values."""
    return {numeral: _roman_value(numeral) for numeral in _ROMAN.findall(text)}


def _arabic_value(word: str, table: dict[str, float]) -> float | None:
    """The value `table` gives the Arabic `word`, as written or without a prefix (وثلاثة)."""
    for form in (word, strip_clitic(word, _AR_PREFIXES, min_rest=3)):
        if form in table:
            return table[form]
    return None


def _teens(words: list[str]) -> dict[int, int]:
    """Where an Arabic 11–19 begins among `words`, and its value."""
    found = {}
    for i, (word, after) in enumerate(zip(words, words[1:])):
        unit = _arabic_value(word, _AR_TEEN_UNIT)
        if unit is not None and after in _AR_TEN:
            found[i] = 10 + int(unit)
    return found


def number_words(text: str) -> set[str]:
    """The words of `text` that are part of an Arabic 11–19 (التاسع and عشر in القرن التاسع
    عشر): an ordinal unit states no number alone, but is no word a rendering must cover."""
    words = WORD.findall(text)  # as rendering.content_words has them, diacritics and all
    plain = [normalize(w) for w in words]
    return {words[i + k] for i in _teens(plain) for k in (0, 1)}


def numbers_in(text: str) -> set[float]:
    """The values of every number in `text`: digits, and English or Arabic number words."""
    plain = normalize(text)
    values = {_digit_value(d) for d in _DIGITS.findall(plain)}
    values |= {v for v in roman_numerals(text).values() if v > 10}
    words = re.findall(r"[^\W\d_]+", plain)
    teens = _teens(words)
    values |= set(teens.values())
    inside = {i + 1 for i in teens} | set(teens)
    for i, word in enumerate(words):
        if i in inside:
            continue
        if word in _EN:
            if word not in ("third", "thirds") or (i and words[i - 1] in _FRACTION_COUNTS):
                values.add(_EN[word])
            continue
        value = _arabic_value(word, _AR)
        if value is not None:
            values.add(value)
    return {round(v, 6) for v in values}
