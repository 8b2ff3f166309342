"""What answering uses from index/, and the only module in app/answering that imports it.

Searching, the embedding model, the article texts behind the passages, the sentence-vector
cache and the text helpers (sentence splitting, normalisation, tokens) all come through here,
so a change in index/'s API is adapted in this one file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index import Passage, Searcher
from index.chunking import clause_spans, sentence_spans
from index.search import lexical_tokens
from index.sentence_cache import SentenceVectors, scored_sentences
from index.text import (
    AR_CONJUNCTIONS,
    CITATION_MARKERS,
    LATIN_NAME_WORD,
    MONTH_FORMS,
    NAME_RUN,
    NAME_WORD,
    STOPWORDS,
    light_stem,
    normalize,
    script_of,
    strip_clitic,
    tokens,
)

__all__ = [
    "AR_CONJUNCTIONS", "CITATION_MARKERS", "LATIN_NAME_WORD", "MONTH_FORMS", "NAME_RUN",
    "NAME_WORD", "STOPWORDS", "Passage", "Searcher", "SentenceVectors", "article_hash",
    "article_text", "strip_clitic",
    "clause_spans", "document_vectors", "lexical_tokens", "light_stem", "model_key", "normalize",
    "query_vector", "script_of", "scored_sentences", "sentence_cache", "sentence_spans",
    "tokens", "word_vectors",
]


def query_vector(searcher: Searcher, text: str) -> np.ndarray:
    """The question's embedding, by the model the searcher's index was built with."""
    return searcher.embedder.embed_query(text)


def document_vectors(searcher: Searcher, texts: list[str]) -> np.ndarray:
    """Embeddings of passages of article text (one row each), by the searcher's model."""
    return searcher.embedder.embed_documents(texts)


def word_vectors(searcher: Searcher, texts: list[str]) -> list[dict[str, np.ndarray]] | None:
    """Each text's words as the searcher's model reads them in that text (None when the
    model cannot say: an embedding server)."""
    return searcher.embedder.word_vectors(texts)


def model_key(searcher: Searcher) -> str:
    """What tells the searcher's embedding model apart (cached vectors are kept per model)."""
    return searcher.embedder.identity.hash


def sentence_cache(searcher: Searcher, data_dir: Path) -> SentenceVectors:
    """A sentence-vector cache in `data_dir` for the searcher's embedding model."""
    model = searcher.embedder.identity
    return SentenceVectors(data_dir, model.hash, model.dim)


def article_text(searcher: Searcher, article_id: str) -> str:
    return searcher.data.articles[article_id].text


def article_hash(searcher: Searcher, article_id: str) -> str:
    """The article's content hash: a re-indexed article never reuses old sentence vectors."""
    return searcher.data.articles[article_id].sha256
