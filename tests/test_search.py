import pytest

from index.pipeline import IndexConfig, index_paths
from index.search import SearchConfig, Searcher
from index.storage import load_index
from index.text import normalize_arabic, script_of, tokens


@pytest.fixture
def searcher_factory(corpus, tmp_path, fake_embedder, store_kind):
    data = tmp_path / "data"
    index_paths([corpus], IndexConfig(data_dir=data, store=store_kind), fake_embedder,
                progress=False, log=lambda m: None)

    def make(**kwargs) -> Searcher:
        return Searcher(load_index(data), fake_embedder, SearchConfig(**kwargs))

    return make


def test_arabic_normalisation():
    assert normalize_arabic("أَحْمَد") == "احمد"
    assert normalize_arabic("إلى مصطفى") == "الي مصطفي"
    assert normalize_arabic("كـــبير") == "كبير"
    assert normalize_arabic("آمنة ٱلعربية ١٢٣") == "امنة العربية 123"
    assert tokens("الأسبابُ الجذرية") == tokens("الاسباب الجذريه".replace("ه", "ة"))


def test_script_detection():
    assert script_of("ماذا طلبت المكسيك؟") == "arabic"
    assert script_of("What did Mexico request?") == "latin"
    assert script_of("2024 ?") == "other"


def test_passages_carry_exact_quotes(searcher_factory):
    searcher = searcher_factory()
    passages = searcher.search("Does the Rhine reach the North Sea near Rotterdam?", k=3)
    assert [p.n for p in passages] == [1, 2, 3]
    top = passages[0]
    assert "Rhine" in top.text and top.article_id == "rivers"
    text = searcher.data.articles[top.article_id].text
    assert text[top.start:top.end] == top.text
    assert -1.0 <= top.score <= 1.0


def test_lexical_side_only_searches_the_question_script(searcher_factory):
    searcher = searcher_factory()
    latin_hits = searcher.lexical("Mexico Danube", 20)
    assert latin_hits and all(searcher.data.chunks[c].article_id != "us-mexico-migration-talks"
                              for c in latin_hits)
    arabic_hits = searcher.lexical("ماذا طلبت المكسيك؟", 20)
    assert arabic_hits and all(searcher.data.chunks[c].article_id == "us-mexico-migration-talks"
                               for c in arabic_hits)
    # Alef and diacritic variants still match.
    assert searcher.lexical("الاسباب الجذرية", 1) == searcher.lexical("الأسبابُ الجذريّة", 1)


DANUBE = "The Danube flows through ten countries. It ends in the Black Sea."


def test_hybrid_off_is_dense_only(searcher_factory):
    dense = searcher_factory(hybrid="off")
    hybrid = searcher_factory()
    chunks = dense.data.chunks
    # One chunk of the corpus has the word: the lexical side finds it, and only with hybrid.
    assert [chunks[c].text for c in hybrid.lexical("Danube", 5)] == [DANUBE]
    assert dense.lexical("Danube", 5) == []
    # Dense only: the passages are the store's ranking, in its order, with its cosines.
    ranked = dense.dense(dense.embedder.embed_query("Danube"), 3)
    passages = dense.search("Danube", 3)
    assert [(p.article_id, p.start, p.end, p.score) for p in passages] == [
        (chunks[c].article_id, chunks[c].start, chunks[c].end, round(s, 4)) for c, s in ranked]
    assert passages[0].text == DANUBE == hybrid.search("Danube", 1)[0].text


def test_fusion_keeps_the_dense_top_hit_against_a_weaker_lexical_one(searcher_factory):
    searcher = searcher_factory()
    question = "Rhine Swiss Alps North Sea Rotterdam"
    dense_top = searcher.data.chunks[
        searcher.dense(searcher.embedder.embed_query(question), 1)[0][0]]
    assert searcher.search(question, 1)[0].text == dense_top.text


def test_empty_question_is_rejected(searcher_factory):
    with pytest.raises(ValueError, match="empty"):
        searcher_factory().search("   ")
