"""Retrieval: dense search, plus BM25 where the lexical side can help, fused by rank.

BM25 only helps when the question and the passage share a script: an English question
over Arabic text shares no words with it, and mixing that noise into the ranking was
measured to drop recall@5 from 0.99 to 0.25. So the lexical ranking is computed only over
chunks written in the question's script, and it is fused into the dense ranking with a
smaller weight, so a strong dense hit is never pushed out by a lexical one.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection
from dataclasses import asdict, dataclass

import bm25s
import numpy as np
import Stemmer

from index.embedding import Embedder
from index.storage import IndexData
from index.text import STOPWORDS, light_stem, script_of, tokens

RRF_K = 60  # the usual constant of reciprocal-rank fusion


@dataclass(frozen=True)
class SearchConfig:
    hybrid: str = "auto"  # "auto": BM25 for same-script chunks; "off": dense only
    lexical_weight: float = 0.5  # weight of the BM25 ranking in the fusion (dense: 1.0)
    candidates: int = 50  # depth of each ranking that enters the fusion


@dataclass(frozen=True)
class Passage:
    """The one shape a citation has everywhere (CLI JSON, API, UI, widget, eval)."""

    n: int
    article_id: str
    title: str
    paragraph: int
    start: int
    end: int
    text: str
    score: float  # cosine similarity between question and passage

    def as_dict(self) -> dict:
        return asdict(self)


_STEMMERS = {"arabic": Stemmer.Stemmer("arabic"), "latin": Stemmer.Stemmer("english")}


def lexical_tokens(text: str, script: str | None = None) -> list[str]:
    stemmer = _STEMMERS.get(script or script_of(text))
    words = [w for w in tokens(text) if w not in STOPWORDS]
    return stemmer.stemWords(words) if stemmer else words


class Searcher:
    def __init__(self, data: IndexData, embedder: Embedder, config: SearchConfig | None = None):
        self.data = data
        self.embedder = embedder
        self.config = config or SearchConfig()
        self._chunk_ids = list(data.chunks)
        self._scripts = np.array([script_of(data.chunks[c].text) for c in self._chunk_ids])
        self._bm25 = None
        self._stems: list[str] | None = None
        if self.config.hybrid != "off" and self._chunk_ids:
            self._bm25 = bm25s.BM25()
            corpus = [lexical_tokens(data.chunks[c].text, s)
                      for c, s in zip(self._chunk_ids, self._scripts)]
            self._bm25.index(corpus, show_progress=False)

    def dense(self, query_vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        return self.data.store.search(query_vector, k)

    def lexical(self, question: str, k: int, exclude_articles: Collection[str] = ()) -> list[str]:
        """Chunk ids ranked by BM25 among chunks in the question's script (may be empty)."""
        if self._bm25 is None:
            return []
        script = script_of(question)
        query = lexical_tokens(question, script)
        if not query or script == "other":
            return []
        scores = self._bm25.get_scores(query)
        scores = np.where(self._scripts == script, scores, 0.0)
        if exclude_articles:
            scores = np.where(self._in_articles(exclude_articles), 0.0, scores)
        order = np.argsort(-scores)[:k]
        return [self._chunk_ids[i] for i in order if scores[i] > 0]

    def unknown_terms(self, words: list[str]) -> list[str]:
        """Those of `words` that appear in no chunk, in any inflection we can strip.

        Lenient on purpose (a word counts as known when its light stem begins any corpus
        word), so it only flags terms the articles really never use, like a country they
        never name. Only meaningful where the corpus has text in the word's script: an
        English word is always unknown to an all-Arabic corpus, which says nothing.
        """
        if self._stems is None:
            self._stems = sorted({light_stem(w) for c in self._chunk_ids
                                  for w in tokens(self.data.chunks[c].text)})
        unknown = []
        for word in words:
            script = script_of(word)
            if script == "other" or not (self._scripts == script).any():
                continue
            stem = light_stem(word)
            at = bisect.bisect_left(self._stems, stem)
            if at == len(self._stems) or not self._stems[at].startswith(stem):
                unknown.append(word)
        return unknown

    def _in_articles(self, article_ids: Collection[str]) -> np.ndarray:
        """A mask over the chunks: those of `article_ids`."""
        return np.array([self.data.chunks[c].article_id in article_ids for c in self._chunk_ids])

    def search(self, question: str, k: int = 5, vector: np.ndarray | None = None,
               exclude_articles: Collection[str] = ()) -> list[Passage]:
        """Top-k passages; `vector` is the question's embedding if the caller has it.
        Chunks of `exclude_articles` are never returned, as if those articles were not
        indexed (the eval makes a question unanswerable by leaving out its gold article)."""
        if not question.strip():
            raise ValueError("the question is empty")
        if not self._chunk_ids:
            return []
        if vector is None:
            vector = self.embedder.embed_query(question)
        depth = max(k, self.config.candidates)
        excluded = int(self._in_articles(exclude_articles).sum()) if exclude_articles else 0
        dense = self.dense(vector, depth + excluded)
        if excluded:
            dense = [(cid, score) for cid, score in dense
                     if self.data.chunks[cid].article_id not in exclude_articles][:depth]
        fused: dict[str, float] = {}
        for rank, (cid, _) in enumerate(dense):
            fused[cid] = 1.0 / (RRF_K + rank + 1)
        # The dense ranking tells which script the answer is written in; the lexical side
        # only joins when that is the question's own script.
        top_script = script_of(self.data.chunks[dense[0][0]].text) if dense else "other"
        if top_script == script_of(question):
            for rank, cid in enumerate(self.lexical(question, depth, exclude_articles)):
                fused[cid] = fused.get(cid, 0.0) + self.config.lexical_weight / (RRF_K + rank + 1)
        ranked = sorted(fused, key=lambda c: -fused[c])[:k]
        cosine = dict(dense)
        missing = [c for c in ranked if c not in cosine]
        if missing:
            for cid, vec in zip(missing, self.data.store.vectors(missing)):
                cosine[cid] = float(vec @ vector)
        passages = []
        for n, cid in enumerate(ranked, start=1):
            chunk = self.data.chunks[cid]
            article = self.data.articles[chunk.article_id]
            passages.append(Passage(
                n=n, article_id=chunk.article_id, title=article.title, paragraph=chunk.paragraph,
                start=chunk.start, end=chunk.end, text=chunk.text, score=round(cosine[cid], 4),
            ))
        return passages
