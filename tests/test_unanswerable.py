"""Gold-removed unanswerable variants, on the ARCD sample in tests/data (its README gives
the attribution): each answerable question asked again with its gold article left out of
retrieval."""

import json

from app.answering.corpus import script_of, tokens
from app.eval import datasets
from app.eval.gate import IsolatedSettings as Settings
from app.eval.run import evaluate
from app.eval.unanswerable import GOLD_REMOVED_SUFFIX, ExcludingSearcher, gold_removed, holds_any
from index.pipeline import IndexConfig, index_paths
from index.search import Searcher
from index.sources import read_article
from index.storage import load_index
from tests.conftest import DATA

SAMPLE = DATA / "arcd-sample"


def sample_questions():
    dataset = datasets.load_dataset(SAMPLE)
    articles = {a.id: a for a in map(read_article, sorted(dataset.articles.iterdir()))}
    return dataset.load_questions(articles)


def test_every_placed_question_gets_one_unanswerable_copy_without_its_article():
    questions = sample_questions()
    placed = [q for q in questions if not q.skipped]
    variants = gold_removed(questions)
    assert len(variants) == len(placed) > 0
    for original, variant in zip(placed, variants):
        assert variant.id == original.id + GOLD_REMOVED_SUFFIX
        assert variant.question == original.question and variant.lang == original.lang
        assert variant.answerable is False and variant.gold_spans == [] and variant.answers == []
        assert variant.exclude_article == original.article_id is not None
    assert all(q.exclude_article is None for q in questions)  # the originals are untouched


def test_follow_ups_and_unanswerable_questions_get_no_copy():
    first, second = sample_questions()[:2]
    follow_up = datasets.EvalQuestion(**{**vars(second), "follow_up_of": first.id})
    unanswerable = datasets.EvalQuestion(id="u", lang="ar", question="؟", answerable=False)
    assert [q.id for q in gold_removed([first, follow_up, unanswerable])] == [
        first.id + GOLD_REMOVED_SUFFIX]


def test_excluded_articles_never_come_back_from_search(tmp_path, fake_embedder):
    index_paths([SAMPLE / "articles"], IndexConfig(data_dir=tmp_path), fake_embedder,
                progress=False, log=lambda m: None)
    searcher = Searcher(load_index(tmp_path), fake_embedder)
    question = sample_questions()[0]
    full = searcher.search(question.question, k=5)
    top = full[0].article_id
    without = ExcludingSearcher(searcher, frozenset({top})).search(question.question, k=5)
    assert len(without) == 5 and top not in {p.article_id for p in without}
    assert [p.n for p in without] == [1, 2, 3, 4, 5]
    # the other articles keep their order among themselves
    others = [(p.article_id, p.start) for p in full if p.article_id != top]
    assert [(p.article_id, p.start) for p in without][:len(others)] == others


def test_passages_holding_the_gold_answer_are_left_out_wherever_they_are(tmp_path,
                                                                        fake_embedder):
    index_paths([SAMPLE / "articles"], IndexConfig(data_dir=tmp_path), fake_embedder,
                progress=False, log=lambda m: None)
    searcher = Searcher(load_index(tmp_path), fake_embedder)
    question = sample_questions()[0]
    full = searcher.search(question.question, k=5)
    # a few words of the second passage, with other diacritics and punctuation: the answer
    words = tokens(full[1].text)[2:5]
    answer = " ، ".join(words) if script_of(full[1].text) == "arabic" else ", ".join(words)
    assert holds_any(full[1].text, [answer]) and not holds_any("x y z", [answer])
    without = ExcludingSearcher(searcher, frozenset(), [answer]).search(question.question, k=5)
    assert len(without) == 5 and [p.n for p in without] == [1, 2, 3, 4, 5]
    assert all(not holds_any(p.text, [answer]) for p in without)
    assert (full[1].article_id, full[1].start) not in {(p.article_id, p.start) for p in without}
    span = [(full[0].article_id, full[0].start, full[0].end)]
    no_top = ExcludingSearcher(searcher, frozenset(), passages=span).search(question.question)
    assert (full[0].article_id, full[0].start) not in {(p.article_id, p.start) for p in no_top}


def test_a_run_asks_the_originals_and_their_gold_removed_copies(tmp_path, fake_embedder):
    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive")
    dataset = datasets.load_dataset(SAMPLE)
    run = evaluate(settings, dataset, limit=6, run_id="nogold", reports_dir=tmp_path / "r",
                   embed_model=fake_embedder, progress=False, log=lambda m: None,
                   unanswerable="gold-removed")
    records = [json.loads(line) for line in
               (run.folder / "questions.jsonl").read_text().splitlines()]
    originals = [r for r in records if not r["id"].endswith(GOLD_REMOVED_SUFFIX)]
    variants = [r for r in records if r["id"].endswith(GOLD_REMOVED_SUFFIX)]
    assert len(originals) == 6 and len(variants) == sum(not r.get("skipped") for r in originals)
    gold = {r["id"]: r["article_id"] for r in originals}
    for r in variants:
        assert r["answerable"] is False
        excluded = gold[r["id"].removesuffix(GOLD_REMOVED_SUFFIX)]
        assert excluded not in {p["article_id"] for p in r["retrieved"]}
    ar = run.summary["metrics"]["ar"]
    assert ar["unanswerable"] == len(variants) and ar["refusal_recall"] is not None
    assert run.summary["dataset"]["unanswerable"] == "gold-removed"
