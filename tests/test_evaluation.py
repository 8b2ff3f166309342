"""The eval's metrics on hand-made cases with known answers, and a whole run on fakes."""

import json
import math
import shutil
from typing import NamedTuple

import pytest
from typer.testing import CliRunner

from app.eval import datasets, matching, metrics, scoring
from app.eval.run import evaluate, run_questions
from app.service import AnswerResult, Turn
from app.settings import Settings
from index.search import Passage
from index.sources import Article, read_article
from tests.conftest import DATA, ROOT

GOLD = {"article_id": "a", "gold_spans": [[100, 200]]}


class AnswerSentence(NamedTuple):
    """What scoring reads of an answer sentence."""

    text: str
    citations: list[int]
    support: float | None


# -- helpers: records shaped like the run's questions.jsonl lines ------------------------
def retrieved(*hits: bool) -> list[dict]:
    return [{"hit": h} for h in hits]


def record(lang="en", answerable=True, hits=(), relevant=1, cited=(), refused=False,
           supports=(), removed=0, key_facts=(), found=(), em=None, f1=None, timings=None):
    return {"id": "q", "lang": lang, "answerable": answerable,
            "gold_spans": [[100, 200]] if answerable else [],
            "retrieved": retrieved(*hits), "relevant_chunks": relevant,
            "first_hit_rank": metrics.first_hit_rank(list(hits)),
            "cited": [{"hit": c} for c in cited], "refused": refused,
            "sentences": [{"support": s} for s in supports], "removed_markers": removed,
            "key_facts": list(key_facts), "key_facts_found": list(found),
            "exact_match": em, "f1": f1,
            "timings": timings or {"retrieval_ms": 10.0, "first_token_ms": 20.0,
                                   "total_ms": 30.0}}


def passage(n: int, start: int, end: int, article_id: str = "a", text: str = "x") -> Passage:
    return Passage(n=n, article_id=article_id, title="t", paragraph=1, start=start, end=end,
                   text=text, score=0.5)


def result(answer="", passages=(), retrieved_=(), sentences=(), refused=False,
           translation=None, removed=0) -> AnswerResult:
    return AnswerResult(question="q", standalone_question="q", language="en", answer=answer,
                        sentences=list(sentences), evidence=[], passages=list(passages),
                        retrieved=list(retrieved_), refused=refused, mode="extractive",
                        translation=translation, removed_markers=removed,
                        timings={"retrieval_ms": 1.0, "first_token_ms": 2.0, "total_ms": 3.0})


# -- retrieval ---------------------------------------------------------------------------
def test_hit_needs_the_gold_article_and_an_overlap():
    assert matching.overlaps("a", 150, 250, "a", [[100, 200]])
    assert matching.overlaps("a", 0, 101, "a", [[100, 200]])
    assert not matching.overlaps("a", 0, 100, "a", [[100, 200]])  # [start, end): touching is no overlap
    assert not matching.overlaps("a", 200, 300, "a", [[100, 200]])
    assert not matching.overlaps("b", 150, 250, "a", [[100, 200]])
    assert matching.overlaps("a", 500, 600, "a", [[100, 200], [550, 560]])


def test_ranks_recall_and_mrr_by_hand():
    ranks = [1, 3, None, 7]
    assert metrics.recall_at_k(ranks, 1) == 0.25
    assert metrics.recall_at_k(ranks, 5) == 0.5
    assert metrics.recall_at_k(ranks, 10) == 0.75
    assert metrics.mrr_at_k(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert metrics.mrr_at_k([11], 10) == 0.0  # a hit below the cut-off does not count
    assert metrics.first_hit_rank([False, False, True, True]) == 3
    assert metrics.first_hit_rank([]) is None


def test_ndcg_one_hit_at_rank_2_is_one_over_log2_3():
    assert metrics.ndcg_at_k([False, True, False], relevant=1) == pytest.approx(1 / math.log2(3))


def test_ndcg_two_relevant_chunks():
    # hits at ranks 1 and 3 of 2 relevant: (1 + 1/2) / (1 + 1/log2 3)
    assert metrics.ndcg_at_k([True, False, True], relevant=2) == pytest.approx(
        1.5 / (1 + 1 / math.log2(3)))
    assert metrics.ndcg_at_k([True, True], relevant=2) == 1.0
    assert metrics.ndcg_at_k([False] * 10, relevant=3) == 0.0


def test_retrieval_metrics_perfect_empty_and_partial():
    perfect = [record(hits=(True, False)), record(hits=(True,))]
    assert metrics.retrieval_metrics(perfect) == {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0,
                                             "mrr@10": 1.0, "ndcg@10": 1.0}
    nothing = [record(hits=()), record(hits=())]
    assert set(metrics.retrieval_metrics(nothing).values()) == {0.0}
    partial = [record(hits=(True,)), record(hits=(False, True)),
               record(hits=(False,) * 5 + (True,)), record(hits=(False,) * 10),
               record(answerable=False, hits=(False,))]  # unanswerable: not scored here
    m = metrics.retrieval_metrics(partial)
    assert m["recall@1"] == 0.25 and m["recall@5"] == 0.5 and m["recall@10"] == 0.75
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(7)) / 4)
    assert metrics.recall_curve(partial)[:6] == [0.25, 0.5, 0.5, 0.5, 0.5, 0.75]


# -- citations ---------------------------------------------------------------------------
def test_citation_metrics_by_hand():
    records = [
        record(cited=(True, False), supports=(1.0, None)),
        record(cited=(False,), supports=(0.4,)),
        record(refused=True, supports=()),
        record(answerable=False, cited=(False, False), supports=(0.8,), removed=2),
        record(cited=(), supports=(), removed=1),
    ]
    m = metrics.citation_metrics(records)
    assert m["citation_precision"] == pytest.approx(1 / 3)  # 1 of 3 cited, answerable only
    assert m["citation_recall"] == pytest.approx(1 / 4)  # 1 of 4 answerable cites the gold
    assert m["out_of_range_markers"] == 3
    assert m["unsupported_sentence_share"] == pytest.approx(2 / 4)  # None and 0.4 of 4


def test_citation_metrics_perfect_and_nothing_cited():
    perfect = metrics.citation_metrics([record(cited=(True,), supports=(1.0,))] * 3)
    assert perfect["citation_precision"] == 1.0 and perfect["citation_recall"] == 1.0
    assert perfect["unsupported_sentence_share"] == 0.0
    nothing = metrics.citation_metrics([record(refused=True)] * 2)
    assert nothing["citation_precision"] is None  # nothing cited: precision undefined
    assert nothing["citation_recall"] == 0.0
    assert nothing["unsupported_sentence_share"] is None


# -- answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("fact, text, found", [
    ("فنزويلي", "بدأت المكسيك عمليات ترحيل الفنزويليين", True),  # after the article ال
    ("الأسباب الجذرية", "لمعالجة الاسباب الجذرية", True),  # alef forms
    ("20 مليار", "توزيع ٢٠ مليار دولار", True),  # Arabic-Indic digits
    ("27 ديسمبر", "بدأت في المكسيك في 27 ديسمبر [1].", True),
    ("December 27", "They began on december 27 [2].", True),
    ("20 billion", "$20 billion in aid", True),
    ("NBC", "On NBCNews.com.", True),
    ("No", "No, it will not.", True),
    ("No", "It is not expected; announcements in November.", False),  # short: whole word only
    ("لا", "لاجئون كثيرون", False),
    ("Blinken", "Antony Blinken attends", True),
    ("Mayorkas", "Blinken attends", False),
    ("son", "Madison", False),  # must start at a word
])
def test_key_fact_matching(fact, text, found):
    assert matching.key_fact_found(fact, text) is found


def test_key_fact_recall_is_the_mean_share_per_question():
    records = [record(key_facts=("a", "b"), found=("a",)), record(key_facts=("c",), found=("c",)),
               record(key_facts=("d", "e", "f", "g"), found=()),
               record(answerable=False)]
    assert metrics.answer_metrics(records)["key_fact_recall"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert metrics.answer_metrics([record()])["key_fact_recall"] is None  # no key facts: n/a


@pytest.mark.parametrize("prediction, gold", [
    ("أحمد", "احمد"), ("٢٠", "20"), ("مُحَمَّد", "محمد"), ("مـحـمد", "محمد"),
    ("مصطفى", "مصطفي"), ("القاهرة", "قاهرة"), ("The Nile.", "nile"), ("«واشنطن»،", "واشنطن"),
    ("Blinken [1].", "Blinken"), ("إلى", "الى"),
])
def test_exact_match_after_normalisation(prediction, gold):
    assert matching.exact_match(prediction, [gold]) == 1.0


def test_exact_match_and_f1_by_hand():
    assert matching.exact_match("Cairo", ["Giza"]) == 0.0
    assert matching.exact_match("Cairo", ["Giza", "cairo"]) == 1.0
    assert matching.exact_match("anything", []) is None
    # [cat sat on mat] vs [cat on mat]: 3 common, precision 3/4, recall 1 -> F1 6/7
    assert matching.token_f1("the cat sat on the mat", ["a cat on the mat"]) == pytest.approx(6 / 7)
    assert matching.token_f1("the cat sat on the mat", ["dog", "cat on the mat"]) == pytest.approx(6 / 7)
    assert matching.token_f1("", ["cairo"]) == 0.0
    assert matching.token_f1("completely different", ["cairo"]) == 0.0
    assert matching.token_f1("في ٢٠ أكتوبر", ["في 20 اكتوبر"]) == 1.0
    assert matching.token_f1("x", []) is None


def test_answer_metrics_average_over_answerable_questions_with_gold():
    records = [record(em=1.0, f1=1.0), record(em=0.0, f1=0.5), record(em=None, f1=None),
               record(answerable=False)]
    m = metrics.answer_metrics(records)
    assert m["exact_match"] == 0.5 and m["f1"] == 0.75


# -- refusals ----------------------------------------------------------------------------
def test_refusal_precision_and_recall_from_a_hand_made_confusion_matrix():
    records = ([record(answerable=False, refused=True)] * 2        # tp = 2
               + [record(answerable=False, refused=False)]         # fn = 1
               + [record(answerable=True, refused=True)]           # fp = 1
               + [record(answerable=True, refused=False)] * 4)     # tn = 4
    assert metrics.refusal_confusion(records) == {"tp": 2, "fp": 1, "fn": 1, "tn": 4}
    m = metrics.refusal_metrics(records)
    assert m["refusal_precision"] == pytest.approx(2 / 3)
    assert m["refusal_recall"] == pytest.approx(2 / 3)
    assert m["false_refusal_rate"] == pytest.approx(1 / 5)


def test_refusal_metrics_perfect_never_and_not_applicable():
    perfect = [record(answerable=False, refused=True), record(answerable=True, refused=False)]
    assert metrics.refusal_metrics(perfect) == {"refusal_precision": 1.0, "refusal_recall": 1.0,
                                           "false_refusal_rate": 0.0}
    never = [record(answerable=False, refused=False), record(answerable=True, refused=False)]
    assert metrics.refusal_metrics(never)["refusal_recall"] == 0.0
    assert metrics.refusal_metrics(never)["refusal_precision"] is None  # nothing refused
    no_unanswerable = [record(refused=True), record(refused=False)]
    m = metrics.refusal_metrics(no_unanswerable)
    assert m["refusal_precision"] is None and m["refusal_recall"] is None
    assert m["false_refusal_rate"] == 0.5


def test_threshold_sweep_refuses_below_the_score():
    records = [dict(record(answerable=False), top_evidence_score=0.30),
               dict(record(answerable=False), top_evidence_score=0.55),
               dict(record(answerable=True), top_evidence_score=0.50),
               dict(record(answerable=True), top_evidence_score=0.70),
               dict(record(answerable=True), top_evidence_score=None)]  # nothing retrieved
    low, mid, high = metrics.threshold_sweep(records, [0.2, 0.52, 0.6])
    assert (low["refusal_precision"], low["refusal_recall"]) == (0.0, 0.0)  # only the None one
    # below 0.52: the 0.30 unanswerable, the 0.50 answerable and the None one
    assert mid["refusal_precision"] == pytest.approx(1 / 3) and mid["refusal_recall"] == 0.5
    assert high["refusal_recall"] == 1.0 and high["false_refusal_rate"] == pytest.approx(2 / 3)


# -- latency and grouping ----------------------------------------------------------------
def test_percentiles_interpolate_between_ranks():
    assert metrics.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert metrics.percentile([7.0], 95) == 7.0
    assert metrics.percentile([], 50) is None


def test_summary_groups_by_language_and_overall():
    records = [record(lang="en", hits=(True,), timings={"retrieval_ms": 10, "first_token_ms": 10,
                                                         "total_ms": 100}),
               record(lang="ar", hits=(False,), timings={"retrieval_ms": 30, "first_token_ms": 30,
                                                          "total_ms": 300})]
    summary = metrics.summarize(records)
    assert list(summary) == ["overall", "en", "ar"]
    assert summary["en"]["recall@5"] == 1.0 and summary["ar"]["recall@5"] == 0.0
    assert summary["overall"]["recall@5"] == 0.5
    assert summary["overall"]["latency_total_p50_ms"] == 200
    assert summary["ar"]["questions"] == 1 and summary["overall"]["answerable"] == 2


def test_compare_rows_give_b_minus_a():
    a = {"metrics": {"overall": {"recall@5": 0.5, "f1": None}}}
    b = {"metrics": {"overall": {"recall@5": 0.75, "f1": None}, "en": {"recall@5": 1.0}}}
    rows = metrics.compare_rows(a, b)
    assert ("overall", "recall@5", 0.5, 0.75, 0.25) in rows
    assert ("en", "recall@5", None, 1.0, None) in rows
    assert not any(metric == "f1" for _, metric, *_ in rows)  # null in both: left out
    assert metrics.lower_is_better("latency_total_p50_ms") and not metrics.lower_is_better("recall@5")


# -- scoring one answer ------------------------------------------------------------------
def test_score_result_maps_citations_and_retrieval_to_the_gold():
    q = datasets.EvalQuestion(id="q1", lang="en", question="q", answerable=True, article_id="a",
                        gold_spans=[[100, 200]], key_facts=["Blinken", "Mayorkas"],
                        answers=["Blinken and Mayorkas"])
    passages = [passage(1, 0, 50), passage(2, 120, 180)]
    res = result(answer="Blinken attends [2]. Something [1].", passages=passages,
                 retrieved_=[passage(1, 0, 90), passage(2, 90, 300), passage(3, 100, 200, "b")],
                 sentences=[AnswerSentence("Blinken attends", [2], 1.0),
                            AnswerSentence("Something", [1, 2], None)])
    r = scoring.score_result(q, res, relevant_chunks=1, history=[])
    assert [p["hit"] for p in r["retrieved"]] == [False, True, False]
    assert r["first_hit_rank"] == 2
    assert [(c["n"], c["hit"]) for c in r["cited"]] == [(1, False), (2, True)]
    assert r["key_facts_found"] == ["Blinken"]
    assert r["scored_text"] == "Blinken attends. Something."
    assert r["f1"] == pytest.approx(matching.token_f1("Blinken attends. Something.",
                                                ["Blinken and Mayorkas"]))


def test_english_answers_quoted_in_arabic_are_scored_on_their_translation():
    q = datasets.EvalQuestion(id="q1", lang="en", question="q", answerable=True, article_id="a",
                        gold_spans=[[0, 10]], key_facts=["20 billion"],
                        answers=["20 billion dollars"])
    res = result(answer="The articles are in another language; here is what they say:\n"
                        "دعا إلى توزيع 20 مليار دولار [1].",
                 passages=[passage(1, 0, 10)],
                 sentences=[AnswerSentence("دعا إلى توزيع 20 مليار دولار", [1], 1.0)],
                 translation={"text": "He called for 20 billion dollars [1].", "lang": "en",
                              "label": "machine translation"})
    r = scoring.score_result(q, res, 1, [])
    assert r["scored_text"] == "He called for 20 billion dollars."
    # 3 of its 6 tokens are the 3 gold tokens: precision 1/2, recall 1 -> F1 2/3
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["key_facts_found"] == ["20 billion"]


def test_a_refused_answer_finds_no_key_facts_and_scores_zero():
    q = datasets.EvalQuestion(id="q1", lang="ar", question="هل؟", answerable=True, article_id="a",
                        gold_spans=[[0, 10]], key_facts=["لا"], answers=["لا"])
    res = result(answer="لا تذكر المقالات ذلك.", refused=True)
    r = scoring.score_result(q, res, 1, [])
    assert r["key_facts_found"] == [] and r["f1"] == 0.0 and r["exact_match"] == 0.0


def test_follow_ups_are_asked_with_the_turns_of_their_chain():
    questions = [datasets.EvalQuestion("q1", "en", "first?", True, "a", [[0, 5]]),
                 datasets.EvalQuestion("x", "en", "other?", False),
                 datasets.EvalQuestion("q2", "en", "and then?", True, "a", [[0, 5]], follow_up_of="q1"),
                 datasets.EvalQuestion("q3", "en", "why?", True, "a", [[0, 5]], follow_up_of="q2")]
    seen = []

    def answer(text, history):
        seen.append((text, history))
        return result(answer=f"answer to {text}")

    records = run_questions(answer, questions, lambda q: 1, progress=False)
    assert seen[0][1] == [] and seen[1][1] == []
    assert seen[2][1] == [Turn("first?", "answer to first?")]
    assert seen[3][1] == [Turn("first?", "answer to first?"),
                          Turn("and then?", "answer to and then?")]
    assert records[3]["history"] == ["q1", "q2"]


def test_a_follow_up_must_come_after_its_question():
    questions = [datasets.EvalQuestion("q2", "en", "and?", True, follow_up_of="q1"),
                 datasets.EvalQuestion("q1", "en", "first?", True)]
    with pytest.raises(datasets.EvalError, match="q2 follows up 'q1'"):
        datasets.check_follow_ups(questions)


# -- datasets ----------------------------------------------------------------------------
def _article(aid: str, text: str) -> Article:
    return Article(id=aid, title=aid, text=text, sha256="", source=aid)


def test_passage_spans_follow_the_article_order_and_search_without_it():
    articles = {"a": _article("a", "Intro.\n\nSame para.\n\nMiddle.\n\nSame para."),
                "b": _article("b", "Other text.\n\nLast para.")}
    passages = {"a-1": "Same para.", "a-2": "Middle.", "a-3": "Same para.", "b-1": " Last para.\n",
                "gone": "Not in any article."}
    spans = datasets.passage_spans(passages, articles, {"a": ["a-1", "a-2", "a-3"]})
    text = articles["a"].text
    assert spans["a-1"] == ("a", 8, 18) and spans["a-3"] == ("a", text.rindex("Same"), len(text))
    assert spans["b-1"] == ("b", 13, 23)  # not in the order: found by search, trimmed
    assert "gone" not in spans
    assert datasets.passage_spans(passages, articles)["a-3"] == ("a", 8, 18)  # no order: first place


def test_arcd_questions_from_the_shipped_sample():
    sample = DATA / "arcd-sample"
    articles = {a.id: a for a in map(read_article, sorted((sample / "articles").glob("*.txt")))}
    passages = {json.loads(line)["id"]: json.loads(line)["text"]
                for line in (sample / "passages.jsonl").read_text().splitlines()}
    rows = [json.loads(line) for line in (sample / "questions.jsonl").read_text().splitlines()]
    questions, skipped = datasets.arcd_questions(sample, articles)
    assert skipped == 0 and len(questions) == len(rows)
    for q, row in zip(questions, rows):
        (start, end), = q.gold_spans
        assert articles[q.article_id].text[start:end] == passages[row["passage_id"]].strip()
        assert q.lang == "ar" and q.answers == row["answers_ar"] and q.id == f"{row['id']}-ar"


def test_arcd_rows_with_both_languages_give_two_questions(tmp_path):
    (tmp_path / "passages.jsonl").write_text(json.dumps({"id": "p", "title": "t",
                                                         "text": "Cairo is big."}))
    rows = [{"id": "1", "passage_id": "p", "question_ar": "ما القاهرة؟", "answers_ar": ["كبيرة"],
             "question_en": "What is Cairo?", "answers_en": ["big"]},
            {"id": "2", "passage_id": "missing", "question_en": "Where?"}]
    questions, skipped = datasets.arcd_questions(tmp_path, {"a": _article("a", "x Cairo is big.")}, rows)
    assert [(q.id, q.lang, q.answers, q.gold_spans) for q in questions] == [
        ("1-en", "en", ["big"], [[2, 15]]), ("1-ar", "ar", ["كبيرة"], [[2, 15]])]
    assert skipped == 1


def test_load_dataset_tells_the_formats_apart(tmp_path):
    assert datasets.load_dataset(None).kind == "seed"
    assert datasets.load_dataset(DATA / "arcd-sample").kind == "arcd"
    (tmp_path / "articles").mkdir()
    (tmp_path / "questions.jsonl").write_text("")
    assert datasets.load_dataset(tmp_path).kind == "seed"
    with pytest.raises(datasets.EvalError, match="is not a dataset"):
        datasets.load_dataset(tmp_path / "articles")


def test_seed_questions_outside_their_article_are_an_error():
    q = datasets.EvalQuestion("q", "en", "?", True, "a", [[5, 500]])
    with pytest.raises(datasets.EvalError, match=r"span \[5, 500\] is outside a"):
        datasets.check_gold([q], {"a": _article("a", "short text")})
    with pytest.raises(datasets.EvalError, match="not among the indexed articles"):
        datasets.check_gold([q], {})


# -- a whole run on fakes ----------------------------------------------------------------
@pytest.fixture
def tiny_dataset(tmp_path, corpus):
    folder = tmp_path / "tiny"
    (folder / "articles").mkdir(parents=True)
    shutil.copy(corpus / "rivers.md", folder / "articles" / "rivers.md")
    text = (folder / "articles" / "rivers.md").read_text()
    sea = "It ends in the Black Sea."
    rows = [
        {"id": "r1-en", "lang": "en", "question": "Where does the Danube end?",
         "answerable": True, "article_id": "rivers",
         "gold_spans": [[text.index(sea), text.index(sea) + len(sea)]],
         "key_facts": ["Black Sea"], "answer": "In the Black Sea."},
        {"id": "r2-en", "lang": "en", "question": "And how many countries does it flow through?",
         "answerable": True, "article_id": "rivers", "follow_up_of": "r1-en",
         "gold_spans": [[text.index("The Danube flows"), text.index(sea) - 1]],
         "key_facts": ["ten"], "answer": "Ten countries."},
        {"id": "r3-en", "lang": "en", "question": "Who painted the Mona Lisa?",
         "answerable": False, "gold_spans": []},
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return folder


def test_a_whole_run_writes_summary_questions_and_report(tmp_path, tiny_dataset, fake_embedder):
    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive")
    reports = tmp_path / "reports"
    dataset = datasets.load_dataset(tiny_dataset)
    done = evaluate(settings, dataset, run_id="first", reports_dir=reports,
                      embed_model=fake_embedder, progress=False, log=lambda m: None)
    folder = reports / "first"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary == json.loads(json.dumps(done.summary))
    overall = summary["metrics"]["overall"]
    assert overall["questions"] == 3 and overall["recall@10"] == 1.0
    assert set(summary["metrics"]) == {"overall", "en"}
    assert summary["models"]["embedding"]["name"] == "fake-embedder"
    assert summary["models"]["llm"] == {"backend": "extractive"}
    assert summary["dataset"]["kind"] == "seed" and summary["index"]["chunks_embedded_now"] > 0
    assert "llm_api_key" not in summary["settings"]
    lines = (folder / "questions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["r1-en", "r2-en", "r3-en"]
    assert json.loads(lines[1])["history"] == ["r1-en"]
    report = (folder / "report.md").read_text()
    assert "## Worst answerable questions" in report and "r1-en" in report
    for image in ("recall_at_k.png", "metrics_by_language.png", "latency.png"):
        assert (folder / image).read_bytes().startswith(b"\x89PNG")
        assert f"]({image})" in report
    again = evaluate(settings, dataset, run_id="second", reports_dir=reports,
                        embed_model=fake_embedder, progress=False, log=lambda m: None)
    assert again.summary["index"]["chunks_embedded_now"] == 0  # the eval index is reused
    assert again.summary["index"]["data_dir"] == summary["index"]["data_dir"]


def test_the_cli_compares_two_runs(tmp_path):
    from app.cli import cli

    def write(run_id, recall):
        folder = tmp_path / run_id
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps({
            "run_id": run_id, "backend": "extractive", "dataset": {"name": "seeds"},
            "models": {"embedding": {"name": "m"}, "llm": {"backend": "extractive"}},
            "metrics": {"overall": {"recall@5": recall, "latency_total_p50_ms": 100.0}}}))

    write("old", 0.5)
    write("new", 0.75)
    done = CliRunner().invoke(cli, ["eval", "--reports", str(tmp_path), "--compare", "old",
                                    str(tmp_path / "new")])
    assert done.exit_code == 0, done.output
    assert "recall@5" in done.output and "0.500" in done.output and "+0.250" in done.output
    missing = CliRunner().invoke(cli, ["eval", "--reports", str(tmp_path), "--compare", "old",
                                       "nope"])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output


def test_the_seed_dataset_lives_in_the_checkout():
    dataset = datasets.load_dataset(None)
    assert dataset.questions_file == ROOT / "eval" / "questions.jsonl"
    assert dataset.articles == ROOT / "seeds"


def test_the_eval_index_is_rebuilt_for_another_model_and_limit_cuts_the_set(tmp_path,
                                                                           tiny_dataset):
    from tests.fakes import FakeEmbedder

    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive")
    dataset = datasets.load_dataset(tiny_dataset)
    quiet = {"reports_dir": tmp_path / "reports", "progress": False, "log": lambda m: None}
    evaluate(settings, dataset, run_id="a", embed_model=FakeEmbedder("model-a"), **quiet)
    other = evaluate(settings, dataset, run_id="b", limit=2,
                        embed_model=FakeEmbedder("model-b"), **quiet)
    assert other.summary["models"]["embedding"]["name"] == "model-b"
    assert other.summary["index"]["chunks_embedded_now"] > 0
    assert [r["id"] for r in other.records] == ["r1-en", "r2-en"]


def test_questions_longer_than_the_limit_stop_the_run_before_asking(tmp_path, tiny_dataset,
                                                                    fake_embedder):
    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive",
                        max_question_chars=20)
    with pytest.raises(datasets.EvalError, match="longer than max_question_chars .20.: r1-en, r2-en"):
        evaluate(settings, datasets.load_dataset(tiny_dataset), reports_dir=tmp_path / "reports",
                    embed_model=fake_embedder, progress=False, log=lambda m: None)
    assert not (tmp_path / "reports").exists()
