"""Split articles into chunks that follow paragraphs and sentences, with exact spans.

Paragraphs are blocks separated by blank lines (or single lines when a file has no blank
lines at all). A paragraph that fits the chunk size is one chunk; a longer one is split at
sentence boundaries of Arabic and Latin scripts by llama-index's SentenceSplitter, whose
sentence function we supply. Each chunk keeps its character span in the article, so
`article.text[start:end] == chunk.text` always holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from llama_index.core.node_parser import SentenceSplitter

from index.sources import Article

# A sentence ends at . ! ? … or Arabic ؟ ؛ (and ۔), with any closing quotes or brackets,
# followed by whitespace. The Arabic comma ، is a clause break, used only when a sentence
# alone is too long.
_SENTENCE_END = re.compile(r"(?<=[.!?؟؛۔…])[\"'”’»)\]]*\s+")
_CLAUSE = r"(?:[^,،;؛]+[,،;؛]*)|(?:[,،;؛]+)"  # covers every character, so no text is lost
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class ChunkerConfig:
    chunk_size: int = 256  # tokens of the embedding model's tokenizer
    chunk_overlap: int = 0  # chunks never cross paragraphs; overlap would blur spans

    def as_dict(self) -> dict:
        return {"splitter": "paragraph+sentence/v1", **asdict(self)}


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    paragraph: int
    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing whitespace kept, so the pieces concatenate to `text`."""
    pieces: list[str] = []
    last = 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[last:match.end()])
        last = match.end()
    if last < len(text):
        pieces.append(text[last:])
    return pieces


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, whitespace trimmed, shifted by `offset`."""
    spans = []
    pos = 0
    for piece in split_sentences(text):
        stripped = piece.strip()
        if stripped:
            start = pos + piece.index(stripped)
            spans.append((offset + start, offset + start + len(stripped)))
        pos += len(piece)
    return spans


_CLAUSE_BREAK = re.compile(r"[,،;؛]\s+")


def clause_spans(text: str, start: int, end: int, min_tokens: int = 3) -> list[tuple[int, int]]:
    """(start, end) of the comma- or semicolon-separated clauses of `text[start:end]`.

    Clauses shorter than `min_tokens` words are left out; a sentence without a break
    gives no clauses (it is its own only clause).
    """
    pieces, last = [], start
    for match in _CLAUSE_BREAK.finditer(text, start, end):
        pieces.append((last, match.start()))
        last = match.end()
    if not pieces:
        return []
    pieces.append((last, end))
    return [(a, b) for a, b in pieces if len(text[a:b].split()) >= min_tokens]


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph, whitespace trimmed."""
    separator = _BLANK_LINE if _BLANK_LINE.search(text) else re.compile(r"\n")
    spans = []
    pos = 0
    for match in [*separator.finditer(text), None]:
        end = match.start() if match else len(text)
        block = text[pos:end]
        stripped = block.strip()
        if stripped:
            start = pos + block.index(stripped)
            spans.append((start, start + len(stripped)))
        if match:
            pos = match.end()
    return spans


class Chunker:
    def __init__(self, config: ChunkerConfig, count_tokens: Callable[[str], int]):
        self.config = config
        self._count_tokens = count_tokens
        self._splitter = SentenceSplitter(
            chunk_size=config.chunk_size,
            chunk_overlap=config.chunk_overlap,
            tokenizer=lambda s: range(count_tokens(s)),
            paragraph_separator="\n\n",
            chunking_tokenizer_fn=split_sentences,
            secondary_chunking_regex=_CLAUSE,
        )

    def chunk(self, article: Article) -> list[Chunk]:
        chunks: list[Chunk] = []
        for number, (p_start, p_end) in enumerate(paragraph_spans(article.text)):
            paragraph = article.text[p_start:p_end]
            if self._count_tokens(paragraph) <= self.config.chunk_size:
                pieces = [paragraph]
            else:
                pieces = self._splitter.split_text(paragraph)
            cursor = 0
            for piece in pieces:
                piece = piece.strip()
                if not piece:
                    continue
                at = paragraph.find(piece, cursor)
                if at < 0:  # the splitter changed the text: keep our invariant, not its output
                    raise AssertionError(f"chunk not found in paragraph {number} of {article.id}")
                start, end = p_start + at, p_start + at + len(piece)
                cursor = at + (len(piece) if self.config.chunk_overlap == 0 else 1)
                chunks.append(Chunk(
                    id=chunk_id(article, start, end), article_id=article.id,
                    paragraph=number, start=start, end=end, text=piece,
                ))
        return chunks


def chunk_id(article: Article, start: int, end: int) -> str:
    return hashlib.sha1(f"{article.id}\0{article.sha256}\0{start}\0{end}".encode()).hexdigest()[:20]
