import random

from index.chunking import (
    Chunker,
    ChunkerConfig,
    clause_spans,
    paragraph_spans,
    sentence_spans,
    split_sentences,
)
from index.sources import Article, read_article
from tests.conftest import SEED


def words(text: str) -> int:
    return len(text.split())


def make_article(text: str) -> Article:
    return Article(id="a", title="t", text=text, sha256="0" * 64, source="/x")


def test_seed_paragraphs_match_the_article_numbering():
    article = read_article(SEED)
    chunks = Chunker(ChunkerConfig(chunk_size=256), words).chunk(article)
    assert [c.paragraph for c in chunks] == list(range(11))
    for chunk in chunks:
        assert article.text[chunk.start:chunk.end] == chunk.text
    assert "20 مليار دولار" in chunks[7].text


def test_long_arabic_paragraph_splits_at_sentence_ends_with_exact_spans():
    article = read_article(SEED)
    chunks = Chunker(ChunkerConfig(chunk_size=30), words).chunk(article)
    assert len(chunks) > 11
    for chunk in chunks:
        assert article.text[chunk.start:chunk.end] == chunk.text
        assert words(chunk.text) <= 30
    # a split inside a paragraph falls after sentence-final punctuation
    by_paragraph = {}
    for chunk in chunks:
        by_paragraph.setdefault(chunk.paragraph, []).append(chunk)
    split_ends = [c.text[-1] for cs in by_paragraph.values() if len(cs) > 1 for c in cs[:-1]]
    assert split_ends and all(ch in ".!?؟؛،,”" for ch in split_ends)


def test_sentence_splitter_knows_arabic_and_latin_marks():
    text = "Is it here? Yes! It is. هل وصل؟ نعم؛ وصل. end"
    pieces = split_sentences(text)
    assert "".join(pieces) == text
    assert [p.strip() for p in pieces] == ["Is it here?", "Yes!", "It is.", "هل وصل؟", "نعم؛",
                                           "وصل.", "end"]
    spans = sentence_spans(text, offset=10)
    assert [text[s - 10:e - 10] for s, e in spans] == [p.strip() for p in pieces]


def test_paragraphs_by_blank_lines_or_single_lines():
    assert paragraph_spans("a\nb\n\n  c  \n\n\nd") == [(0, 3), (7, 8), (13, 14)]
    assert paragraph_spans("one\ntwo\n") == [(0, 3), (4, 7)]


def test_random_texts_keep_every_span_exact():
    rng = random.Random(7)
    vocab = ["word", "كلمة", "Hello.", "مرحبا؟", "x,", "،", "!", "؛", "...", "“quoted.”", "123"]
    for _ in range(200):
        paragraphs = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 80)))
                      for _ in range(rng.randint(1, 5))]
        text = "\n\n".join(paragraphs) + rng.choice(["", "\n", "  \n\n"])
        article = make_article(text)
        chunks = Chunker(ChunkerConfig(chunk_size=rng.randint(4, 40)), words).chunk(article)
        assert chunks
        for chunk in chunks:
            assert text[chunk.start:chunk.end] == chunk.text
            assert chunk.text == chunk.text.strip()
        # chunks cover every non-space character once, in order
        covered = "".join(c.text for c in chunks).replace(" ", "").replace("\n", "")
        assert covered == text.replace(" ", "").replace("\n", "")


def test_clauses_split_at_latin_and_arabic_commas_and_semicolons():
    text = ("Officials came, among them the minister of finance; "
            "and أليخاندرو مايوركاس، وزير الأمن الداخلي, too.")
    clauses = [text[a:b] for a, b in clause_spans(text, 0, len(text))]
    assert clauses == ["among them the minister of finance", "and أليخاندرو مايوركاس",
                       "وزير الأمن الداخلي"]
    assert clause_spans("No break in this sentence at all.", 0, 33) == []
