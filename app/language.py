"""Which language a question is in, and whether it asks for a yes or a no."""

from __future__ import annotations

import re

from index.textnorm import normalize, script_of

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
