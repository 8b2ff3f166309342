"""Evidence selection: the sentences of the best retrieved chunks that best match the question.

The model is given single sentences, numbered, rather than whole chunks: a small model
cites and copies a sentence far more reliably than it finds one inside a paragraph.
"""

from __future__ import annotations

import threading

import numpy as np

from app.answering.checks import restates_question
from app.answering.corpus import (
    Passage,
    Searcher,
    SentenceVectors,
    article_hash,
    article_text,
    document_vectors,
    model_key,
    query_vector,
    scored_sentences,
    sentence_cache,
)
from app.settings import Settings

CHUNKS_READ = 3  # evidence sentences come from this many of the best retrieved chunks


class EvidenceSelector:
    """Retrieves chunks and picks the numbered evidence sentences from them.

    Sentence vectors are cached on disk in the data folder (one cache per embedding model),
    so a sentence is embedded once, whichever question brings it up.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._cache: SentenceVectors | None = None
        self._cache_lock = threading.Lock()

    def select(self, searcher: Searcher, question: str, k: int | None = None
               ) -> tuple[list[Passage], list[Passage]]:
        """(retrieved chunks, numbered evidence sentences chosen from the best of them)."""
        vector = query_vector(searcher, question)
        retrieved = searcher.search(question, k or self.settings.top_k, vector=vector)
        candidates = []
        for passage in retrieved[:CHUNKS_READ]:
            text = article_text(searcher, passage.article_id)
            for (start, end), units in scored_sentences(text, passage.text, passage.start):
                sentence = text[start:end]
                # A sentence with the question's very words (an article's title, asked as
                # is) scores best and says nothing more: the answer check drops its quote.
                if not (restates_question(sentence, question)
                        and restates_question(question, sentence)):
                    candidates.append((passage, start, end, units))
        if not candidates:
            return retrieved, []
        scores = self._sentence_scores(searcher, candidates, vector)
        best = np.argsort(-scores)[: self.settings.evidence_sentences]
        evidence = []
        for n, i in enumerate(best, start=1):
            passage, start, end, _ = candidates[i]
            text = article_text(searcher, passage.article_id)[start:end]
            evidence.append(Passage(n=n, article_id=passage.article_id, title=passage.title,
                                    paragraph=passage.paragraph, start=start, end=end,
                                    text=text, score=round(float(scores[i]), 4)))
        return retrieved, evidence

    def _sentence_scores(self, searcher: Searcher, candidates: list[tuple], vector: np.ndarray
                         ) -> np.ndarray:
        """Each sentence's cosine with the question; a long one scores as its best clause
        if that is higher (`scored_sentences`)."""
        units, owner = [], []
        for i, (passage, _, _, spans) in enumerate(candidates):
            sha = article_hash(searcher, passage.article_id)
            for a, b in spans:
                units.append((passage.article_id, sha, a, b))
                owner.append(i)
        unit_scores = self._embed_sentences(searcher, units) @ vector
        scores = np.full(len(candidates), -np.inf, dtype=np.float32)
        np.maximum.at(scores, np.asarray(owner), unit_scores)
        return scores

    def _embed_sentences(self, searcher: Searcher, spans: list[tuple]) -> np.ndarray:
        """Vectors of (article_id, sha256, start, end) sentences, cached on disk."""
        cache = self._sentence_cache(searcher)
        texts = {(sha, start, end): article_text(searcher, article)[start:end]
                 for article, sha, start, end in spans}
        found, _ = cache.embed_missing(texts, lambda batch: document_vectors(searcher, batch))
        return np.stack([found[(sha, start, end)] for _, sha, start, end in spans])

    def _sentence_cache(self, searcher: Searcher) -> SentenceVectors:
        """The cache for the searcher's embedding model (a new one when the model changed)."""
        with self._cache_lock:
            if self._cache is None or self._cache.model_hash != model_key(searcher):
                self._cache = sentence_cache(searcher, self.settings.data_dir)
            return self._cache
