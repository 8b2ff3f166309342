"""Deterministic stand-ins for the real models, for fast unit tests."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata

from index.embedding import Embedder, EmbedderIdentity
from index.text import tokens

FAKE_DIM = 64
# A tiny bilingual lexicon, so cross-language tests can retrieve Arabic text for English words.
LEXICON = {"mexico": "المكسيك", "mexican": "المكسيكي", "billion": "مليار", "20": "20",
           "venezuela": "فنزويلا", "sanctions": "العقوبات", "president": "الرئيس",
           "aid": "كمساعدات", "called": "دعا"}
_LEXICON = {k: tokens(v)[0] for k, v in LEXICON.items()}


def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(FAKE_DIM)


class BagOfWords(BaseEmbedding):
    """Bag of hashed words as a llama-index model: texts sharing words are close."""

    delay: float = 0.0
    embedded: int = 0  # texts embedded as documents

    def _vector(self, text: str) -> list[float]:
        vec = np.zeros(FAKE_DIM)
        for word in tokens(text):
            vec += _word_vector(_LEXICON.get(word, word))
        if not vec.any():
            vec[0] = 1.0
        return (vec / np.linalg.norm(vec)).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        if self.delay:
            time.sleep(self.delay)
        self.embedded += 1
        return self._vector(text)


class FakeEmbedder(Embedder):
    """The bag-of-words model as an Embedder; a token is a word. Counts what it embeds."""

    def __init__(self, name: str = "fake-embedder", delay: float = 0.0):
        identity = EmbedderIdentity(name=name, hash=hashlib.sha256(name.encode()).hexdigest(),
                                    dim=FAKE_DIM)
        super().__init__(BagOfWords(model_name=name, embed_batch_size=8, delay=delay), identity,
                         lambda text: len(text.split()))

    @property
    def embedded(self) -> int:
        return self.model.embedded


class FakeLLM(CustomLLM):
    """Replies with whatever `respond(prompt)` returns; records every prompt it saw."""

    respond: Callable[[str], str]
    prompts: list[str] = Field(default_factory=list)

    def __init__(self, respond: Callable[[str], str], **kwargs):
        super().__init__(respond=respond, **kwargs)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="fake-llm", is_chat_model=False)

    def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=self.respond(prompt))

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
        text = self.complete(prompt).text

        def gen():
            sent = ""
            for word in text.split(" "):
                delta = word if not sent else " " + word
                sent += delta
                yield CompletionResponse(text=sent, delta=delta)

        return gen()
