"""Cross-language answers: a labelled machine translation of an evidence-first answer.

The translation is a side call to the LLM, shown under its label and never as the answer.
A small model translating names garbles some and invents others; sentences with a name
like no word of the original are left out, and the label says which names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from llama_index.core.llms import ChatMessage

from app import prompts
from app.answering.corpus import NAME_RUN, script_of, sentence_spans
from app.answering.render import answer_text
from app.answering.results import AnswerResult, Token
from app.language import LANGUAGE_NAMES
from app.llm import Backend
from app.names import names_not_in_source

# "Here is the translation:" and the like, which small models put before the text.
_PREAMBLE = re.compile(r"^\s*(here is|here's)[^:\n]*:\s*", re.IGNORECASE)
_FENCE = re.compile(r"<<<\w+|\w+>>>")
# "Note: the original uses square brackets…": the small model's comments after a translation.
_AFTERWORD = re.compile(r"\n\s*\(?(note|notes|translator's note)\b.*", re.IGNORECASE | re.DOTALL)
# Capitalised words after the first of a sentence: names, in a Latin-script translation.


def translation_messages(text: str, source: str, target: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=prompts.render(
            "translate_system", source=LANGUAGE_NAMES[source], target=LANGUAGE_NAMES[target])),
        ChatMessage(role="user", content=prompts.render("translate_user", text=text)),
    ]


def cleaned(reply: str) -> str:
    """The translation without the small model's preamble, fences and notes."""
    text = _AFTERWORD.sub("", _FENCE.sub("", _PREAMBLE.sub("", reply)))
    return text.strip().strip('"“”').strip()


def translate(backend: Backend, result: AnswerResult, source: str, target: str
              ) -> Iterator[Token]:
    """Stream a translation of the answer's sentences from `source` into `target`; set
    `result.translation` when it is a translation (in another script than the original)."""
    text = answer_text(result.sentences, sep="\n")
    pieces = []
    for delta in backend.stream(translation_messages(text, source, target), side=True):
        pieces.append(delta)
        yield Token(delta, part="translation")
    translation = cleaned("".join(pieces))
    if translation and script_of(translation) != script_of(text):
        label = prompts.message("translation_label", target)
        # A name like no word of the original is the small model's invention ("President
        # Michelangelo Buonaparte" for لوبيز أوبرادور): its sentences are left out.
        original = " ".join([text, *(p.text for p in result.passages)])
        invented = names_not_in_source(list(dict.fromkeys(NAME_RUN.findall(translation))),
                                       original, result.question)
        if invented:
            translation = " ".join(translation[a:b] for a, b in sentence_spans(translation)
                                   if not any(name in translation[a:b] for name in invented))
            label += " " + prompts.message("names_left_out", target) + " " + ", ".join(invented)
        result.translation = {"text": translation, "lang": target, "label": label,
                              "names_not_in_original": invented}
