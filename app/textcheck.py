"""Text from a visitor is checked before it can reach the tokenizer or the LLM.

Refused: lone surrogates (not Unicode text at all: the tokenizer raises on them), control
characters other than tab, newline and carriage return (NUL, escape sequences, form feeds:
nothing a question needs), and the bidi *override* controls LRO/RLO (U+202D, U+202E), which
make what a reader sees differ from what the model reads. Accepted: the bidi marks and
isolates (LRM, RLM, ALM, U+2066-2069) and embeddings, which mixed Arabic and English text
legitimately carries when it is copied from other programs.
"""

from __future__ import annotations

import re

ALLOWED_CONTROLS = "\t\n\r"
BIDI_OVERRIDES = "\u202d\u202e"
# One class for everything refused: C0 and C1 controls (less the allowed ones), DEL,
# surrogates, the overrides.
_REFUSED = re.compile(
    "[" + "".join(f"\\x{c:02x}" for c in range(0x20) if chr(c) not in ALLOWED_CONTROLS)
    + "\\x7f-\\x9f\\ud800-\\udfff" + BIDI_OVERRIDES + "]")


def text_problem(text: str) -> str:
    """What makes `text` unfit for the models, or "" when it is fine.

    The message names the character by code point and position only: it never echoes the
    character itself (a lone surrogate cannot even be encoded into the error response).
    """
    found = _REFUSED.search(text)
    if found is None:
        return ""
    char = found.group(0)
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        kind = "a lone surrogate"
    elif char in BIDI_OVERRIDES:
        kind = "a bidi override control"
    else:
        kind = "a control character"
    return f"holds {kind} ({code}) at character {found.start() + 1}"
