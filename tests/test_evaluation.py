"""The eval's metrics, matching and scoring on hand-made cases: every expected value is
written as a number worked out by hand, never computed by the code under test."""

import math
import re
from typing import NamedTuple

import pytest

from app.eval import datasets, matching, metrics, scoring
from app.service import AnswerResult
from index.search import Passage
from tests.conftest import ROOT


class AnswerSentence(NamedTuple):
    """What scoring reads of an answer sentence."""

    text: str
    citations: list[int]
    support: float | None


NO_CHECKS = {"dropped_sentences": 0, "dropped": {}, "quoted": [], "renderings_withheld": 0}


# -- helpers: records shaped like the run's questions.jsonl lines ------------------------
def record(lang="en", answerable=True, hits=(), relevant=1, cited=(), refused=False,
           removed=0, key_facts=(), found=(), em=None, f1=None, timings=None, skipped="",
           checks=None, same_script=True, evidence=None):
    return {"id": "q", "lang": lang, "answerable": answerable,
            "gold_spans": [[100, 200]] if answerable and not skipped else [],
            "skipped": skipped, "retrieved": [{"hit": h} for h in hits],
            "relevant_chunks": relevant, "evidence": evidence,
            "cited": [{"hit": c} for c in cited], "refused": refused,
            "removed_markers": removed, "key_facts": list(key_facts),
            "key_facts_found": None if found is None else list(found),
            "exact_match": em, "f1": f1, "scored_in_question_script": same_script,
            "checks": checks or NO_CHECKS,
            "timings": {} if skipped else timings or {"retrieval_ms": 10.0,
                                                      "first_token_ms": 20.0, "total_ms": 30.0}}


def passage(n: int, start: int, end: int, article_id: str = "a", text: str = "x") -> Passage:
    return Passage(n=n, article_id=article_id, title="t", paragraph=1, start=start, end=end,
                   text=text, score=0.5)


def result(answer="", passages=(), retrieved_=(), sentences=(), refused=False,
           translation=None, removed=0, mode="extractive", dropped=()) -> AnswerResult:
    return AnswerResult(question="q", standalone_question="q", language="en", answer=answer,
                        sentences=list(sentences), evidence=[], passages=list(passages),
                        retrieved=list(retrieved_), refused=refused, mode=mode,
                        translation=translation, removed_markers=removed, dropped=list(dropped),
                        timings={"retrieval_ms": 1.0, "first_token_ms": 2.0, "total_ms": 3.0})


def question(lang="en", text="What happened?", key_facts=(), answers=(), answerable=True):
    return datasets.EvalQuestion(id="q1", lang=lang, question=text, answerable=answerable,
                                 article_id="a", gold_spans=[[100, 200]],
                                 key_facts=list(key_facts), answers=list(answers))


# -- retrieval ---------------------------------------------------------------------------
def test_hit_needs_the_gold_article_and_an_overlap():
    assert matching.overlaps("a", 150, 250, "a", [[100, 200]])
    assert matching.overlaps("a", 0, 101, "a", [[100, 200]])
    assert not matching.overlaps("a", 0, 100, "a", [[100, 200]])  # [start, end): touching
    assert not matching.overlaps("a", 200, 300, "a", [[100, 200]])
    assert not matching.overlaps("b", 150, 250, "a", [[100, 200]])
    assert matching.overlaps("a", 500, 600, "a", [[100, 200], [550, 560]])


def test_hit_at_k_and_mrr_by_hand():
    ranks = [1, 3, None, 7]
    assert metrics.hit_at_k(ranks, 1) == 0.25
    assert metrics.hit_at_k(ranks, 3) == 0.5
    assert metrics.hit_at_k(ranks, 10) == 0.75
    assert metrics.mrr_at_k(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert metrics.mrr_at_k([11], 10) == 0.0  # a hit below the cut-off does not count
    assert metrics.first_hit_rank([False, False, True, True]) == 3
    assert metrics.first_hit_rank([]) is None


def test_recall_at_k_counts_every_relevant_chunk_not_only_the_first():
    # 2 relevant chunks, found at ranks 1 and 4: hit@3 is 1, recall@3 is 1/2
    hits = [True, False, False, True]
    assert metrics.chunk_recall_at_k(hits, relevant=2, k=3) == 0.5
    assert metrics.chunk_recall_at_k(hits, relevant=2, k=4) == 1.0
    assert metrics.chunk_recall_at_k(hits, relevant=4, k=10) == 0.5  # 2 of 4 relevant found
    assert metrics.chunk_recall_at_k([False] * 5, relevant=3, k=5) == 0.0
    assert metrics.chunk_recall_at_k([], relevant=0, k=5) == 0.0  # gold in no chunk: a miss
    assert metrics.chunk_recall_at_k([True, True], relevant=1, k=1) == 0.5  # counted low


def test_ndcg_by_hand():
    assert metrics.ndcg_at_k([False, True, False], relevant=1) == pytest.approx(
        1 / math.log2(3))  # 0.6309
    # hits at ranks 1 and 3 of 2 relevant: (1 + 1/2) / (1 + 1/log2 3)
    assert metrics.ndcg_at_k([True, False, True], relevant=2) == pytest.approx(0.9197, abs=1e-4)
    assert metrics.ndcg_at_k([True, True], relevant=2) == 1.0
    assert metrics.ndcg_at_k([False] * 10, relevant=3) == 0.0


def test_retrieval_metrics_by_hand():
    records = [record(hits=(True,)),                               # rank 1
               record(hits=(False, True, False, True), relevant=2),  # ranks 2 and 4 of 2
               record(hits=(False,) * 5 + (True,)),                  # rank 6
               record(hits=(False,) * 10),                           # none
               record(answerable=False, hits=(False,))]              # unanswerable: not scored
    m = metrics.retrieval_metrics(records)
    assert (m["hit@1"], m["hit@3"], m["hit@5"], m["hit@10"]) == (0.25, 0.5, 0.5, 0.75)
    # per question recall@3: 1, 1/2, 0, 0 -> 0.375; @5: 1, 1, 0, 0 -> 0.5; @10: 1, 1, 1, 0
    assert (m["recall@3"], m["recall@5"], m["recall@10"]) == (0.375, 0.5, 0.75)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)  # 0.41667
    assert m["evidence_hit"] is None  # no record says what the answer was given
    assert metrics.hit_curve(records)[:6] == [0.25, 0.5, 0.5, 0.5, 0.5, 0.75]
    assert metrics.recall_curve(records)[:4] == [0.25, 0.375, 0.375, 0.5]


def test_evidence_hit_is_the_share_whose_evidence_sentences_meet_the_gold():
    records = [record(evidence=[{"hit": False}, {"hit": True}]),
               record(evidence=[{"hit": False}]), record(evidence=[]),
               record(answerable=False, evidence=[{"hit": False}])]
    assert metrics.retrieval_metrics(records)["evidence_hit"] == pytest.approx(1 / 3)


# -- citations and checks ----------------------------------------------------------------
def test_citation_metrics_by_hand():
    records = [
        record(cited=(True, False)),
        record(cited=(False,)),
        record(refused=True),
        record(answerable=False, cited=(False, False), removed=2),
        record(cited=(), removed=1),
    ]
    m = metrics.citation_metrics(records)
    assert m["citation_precision"] == pytest.approx(1 / 3)  # 1 of 3 cited, answerable only
    assert m["citation_recall"] == 0.25  # 1 of 4 answerable cites the gold
    assert m["out_of_range_markers"] == 3
    nothing = metrics.citation_metrics([record(refused=True)] * 2)
    assert nothing["citation_precision"] is None  # nothing cited: precision undefined
    assert nothing["citation_recall"] == 0.0


def test_what_the_checks_dropped_is_counted_per_reason():
    raw = {"refused": False, "mode": "local, evidence_first, quoted where the model paraphrased",
           "names_withheld": ["Michelangelo Buonaparte"],
           "dropped": [{"text": "a", "problems": ["no citation"]},
                       {"text": "b", "problems": ["numbers not in the cited text: 12",
                                                  "only 20% of its words are in the cited text"]},
                       {"text": "c", "problems": ["words not in the cited text: x"]},
                       {"text": "d", "problems": ["yes/no answer answers 'yes' while …"]},
                       {"text": "e", "problems": ["something new"]}]}
    assert scoring.check_counts(raw) == {
        "dropped_sentences": 5, "renderings_withheld": 1, "quoted": ["paraphrased"],
        "dropped": {"low_support": 1, "no_citation": 1, "not_copied": 1,
                    "number_not_in_source": 1, "other": 1, "yes_no_contradiction": 1}}
    old = {"refused": False, "mode": "local, quoted after failed checks", "dropped": 2}
    assert scoring.check_counts(old) == {"dropped_sentences": 2, "dropped": {"unrecorded": 2},
                                         "quoted": ["all_sentences_failed"],
                                         "renderings_withheld": None}  # not stored: unknown
    new = {"refused": False, "mode": "local, evidence_first", "renderings_withheld": 2}
    assert scoring.check_counts(new)["renderings_withheld"] == 2


def test_check_metrics_sum_over_answers_and_skip_refusals():
    first = {"dropped_sentences": 2, "dropped": {"no_citation": 1, "low_support": 1},
             "quoted": ["paraphrased"], "renderings_withheld": 0}
    second = {"dropped_sentences": 1, "dropped": {"no_citation": 1}, "quoted": [],
              "renderings_withheld": 2}
    refused = {"dropped_sentences": 9, "dropped": {"no_citation": 9}, "quoted": ["x"],
               "renderings_withheld": 9}
    m = metrics.check_metrics([record(checks=first), record(checks=second),
                               record(refused=True, checks=refused)])
    assert (m["dropped_sentences"], m["quoted_answers"], m["answers_withholding_renderings"]) \
        == (3, 1, 1)
    assert m["checks"] == {"dropped": {"low_support": 1, "no_citation": 2},
                           "quoted": {"paraphrased": 1},
                           "withheld": {"answers": 1, "renderings": 2}}
    unknown = dict(second, renderings_withheld=None)
    assert metrics.check_metrics([record(checks=unknown)])["answers_withholding_renderings"] \
        is None


@pytest.mark.parametrize("problem, reason", [
    ("no citation", "no_citation"),
    ("numbers not in the cited text: 7", "number_not_in_source"),
    ("date not in the cited text: may", "date_not_in_source"),
    ("names not in the cited text: Smith", "name_not_in_source"),
    ("only restates the question", "restates_question"),
    ("only 40% of its words are in the cited text", "low_support"),
    ("written in another language than the articles", "wrong_language"),
    ("3 words not in the cited text", "not_copied"),
    ("not the cited text's own words (3 pieces)", "not_copied"),
    ("yes/no answer its statement and its basis disagree on negation", "yes_no_contradiction"),
])
def test_every_problem_the_checks_write_has_its_reason(problem, reason):
    assert scoring.drop_reason(problem) == reason


# -- answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("fact, text, found", [
    ("الفنزويليين", "بدأت المكسيك عمليات ترحيل الفنزويليين", True),
    ("الفنزويليين", "ترحيل للفنزويليين وغيرهم", True),  # ل + ال written لل
    ("فنزويلي", "بدأت المكسيك عمليات ترحيل الفنزويليين", False),  # not a whole word
    ("الأسباب الجذرية", "لمعالجة الاسباب الجذرية", True),  # alef forms, ل before ال
    ("العنف", "الفقر والعنف", True),  # و before ال
    ("20 مليار", "توزيع ٢٠ مليار دولار", True),  # Arabic-Indic digits
    ("27 ديسمبر", "بدأت في المكسيك في 27 ديسمبر [1].", True),
    ("December 27", "They began on december 27 [2].", True),
    ("20 billion", "$20 billion in aid", True),
    ("200", "2000 migrants", False),
    ("200", "some 200 migrants", True),
    ("ten", "Tennessee", False),
    ("ten", "ten countries", True),
    ("Venezuelan", "deporting Venezuelans", True),  # English plural
    ("NBC", "On NBCNews.com.", False),
    ("NBCNews", "On NBCNews.com.", True),
    ("Blinken", "Antony Blinken's visit", True),
    ("Mayorkas", "Blinken attends", False),
    ("son", "Madison", False),
    ("من", "بمن حضر", False),  # no clitic before a two-letter word
    ("لا", "بلا شك", False),
    ("لا", "لاجئون كثيرون", False),
])
def test_key_facts_are_whole_words(fact, text, found):
    assert matching.key_fact_found(fact, text) is found


@pytest.mark.parametrize("fact, text, found", [
    ("No", "No, it will not [1].", True),
    ("No", "No.", True),
    ("no", "No\nBasis: «…»", True),
    ("No", "No announcements are expected [1].", False),  # a quote, no verdict
    ("No", "It is not expected; no, not really.", False),  # not the opening word
    ("لا", "لا، لن تتوقف المكسيك [1].", True),
    ("لا", "«لا نتوقع أي إعلانات كبيرة غدًا» [1].", False),  # a quoted sentence
    ("لا", "لا نتوقع أي إعلانات كبيرة [1].", False),
    ("Yes", "Yes. The US is interested [2].", True),
    ("نعم", "قال مسؤول: نعم، مهتمة.", False),
])
def test_a_verdict_counts_only_as_the_opening_word(fact, text, found):
    assert matching.key_fact_found(fact, text) is found


def test_key_fact_recall_is_the_mean_share_per_question_where_it_applies():
    records = [record(key_facts=("a", "b"), found=("a",)), record(key_facts=("c",), found=("c",)),
               record(key_facts=("d", "e", "f", "g"), found=()),
               record(key_facts=("h",), found=None, same_script=False),  # another script: n/a
               record(answerable=False)]
    m = metrics.answer_metrics(records)
    assert m["key_fact_recall"] == 0.5  # (1/2 + 1 + 0) / 3
    assert m["answers_in_other_script"] == 1
    assert metrics.answer_metrics([record()])["key_fact_recall"] is None  # no key facts
    only_other = [record(key_facts=("x",), found=None, same_script=False)]
    assert metrics.answer_metrics(only_other)["key_fact_recall"] is None


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
    assert matching.token_f1("the cat sat on the mat", ["a cat on the mat"]) == pytest.approx(
        0.857142857)
    assert matching.token_f1("the cat sat on the mat", ["dog", "cat on the mat"]) == \
        pytest.approx(0.857142857)
    assert matching.token_f1("", ["cairo"]) == 0.0
    assert matching.token_f1("completely different", ["cairo"]) == 0.0
    assert matching.token_f1("في ٢٠ أكتوبر", ["في 20 اكتوبر"]) == 1.0
    assert matching.token_f1("x", []) is None


def test_an_empty_gold_never_credits_an_empty_answer():
    for golds in ([""], ["the"], [" . "]):  # nothing left once normalised
        assert matching.exact_match("", golds) is None
        assert matching.token_f1("", golds) is None
    assert matching.exact_match("", ["", "Cairo"]) == 0.0  # the empty gold is ignored
    assert matching.token_f1("", ["", "Cairo"]) == 0.0


def test_answer_metrics_average_over_answerable_questions_with_gold():
    records = [record(em=1.0, f1=1.0), record(em=0.0, f1=0.5), record(em=None, f1=None),
               record(answerable=False)]
    m = metrics.answer_metrics(records)
    assert m["exact_match"] == 0.5 and m["f1"] == 0.75


def test_f1_and_containment_over_the_answers_given_leave_refusals_out():
    answered = record(f1=1.0)
    answered["contains_gold"] = 1.0
    partial = record(f1=0.5)
    partial["contains_gold"] = 0.0
    refused = record(f1=0.0, refused=True)
    refused["contains_gold"] = 0.0
    m = metrics.answer_metrics([answered, partial, refused])
    assert m["f1"] == 0.5 and m["containment"] == pytest.approx(1 / 3)
    assert m["f1_given"] == 0.75 and m["containment_given"] == 0.5
    assert metrics.answer_metrics([refused])["containment_given"] is None


def test_boilerplate_lists_every_fixed_phrase_and_removes_it():
    keys = {line.split("\t")[0] for line in
            (ROOT / "prompts" / "messages.txt").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")}
    assert keys == set(scoring.BOILERPLATE_KEYS)
    text = ("The articles are in another language; here is what they say:\nدعا [1].\n"
            "The articles say: «Mexico will not stop» [2].\nBasis: «x» [1].")
    assert scoring.without_boilerplate(text) == "دعا.\n«Mexico will not stop».\n«x»."
    assert scoring.without_boilerplate("تقول المقالات: «لا» [1].\nالأساس: «ب»") == "«لا».\n«ب»"


# -- refusals ----------------------------------------------------------------------------
def test_refusal_precision_and_recall_from_a_hand_made_confusion_matrix():
    records = ([record(answerable=False, refused=True)] * 2        # tp = 2
               + [record(answerable=False, refused=False)]         # fn = 1
               + [record(answerable=True, refused=True)]           # fp = 1
               + [record(answerable=True, refused=False)] * 4      # tn = 4
               + [record(skipped="its passage is in no indexed article")])  # not asked
    assert metrics.refusal_confusion(records) == {"tp": 2, "fp": 1, "fn": 1, "tn": 4}
    m = metrics.refusal_metrics(records)
    assert m["refusal_precision"] == pytest.approx(2 / 3)
    assert m["refusal_recall"] == pytest.approx(2 / 3)
    assert m["false_refusal_rate"] == 0.2


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


def test_threshold_sweep_reads_the_refusal_models_score_when_the_run_kept_it():
    # p(answerable) decides, not the cosine: the sweep must follow the rule the run used
    records = [dict(record(answerable=False), top_evidence_score=0.9, refusal_score=0.1),
               dict(record(answerable=True), top_evidence_score=0.2, refusal_score=0.8),
               dict(record(answerable=True), top_evidence_score=None, refusal_score=None)]
    (row,) = metrics.threshold_sweep(records, [0.5])
    assert row["refusal_recall"] == 1.0 and row["false_refusal_rate"] == 0.5


# -- latency, grouping, skipped questions -------------------------------------------------
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
    assert list(summary) == ["overall", "en", "ar", "strict"]
    assert summary["en"]["hit@5"] == 1.0 and summary["ar"]["hit@5"] == 0.0
    assert summary["overall"]["hit@5"] == 0.5
    assert summary["overall"]["latency_total_p50_ms"] == 200
    assert summary["ar"]["questions"] == 1 and summary["overall"]["answerable"] == 2


def test_skipped_questions_leave_the_columns_but_count_as_misses_in_strict():
    skipped = "its passage is in no indexed article"
    records = [record(lang="ar", hits=(True,), cited=(True,), em=1.0, f1=1.0),
               record(lang="ar", hits=(False, True), cited=(False,), em=0.0, f1=0.5),
               record(lang="ar", answerable=False, refused=True),
               record(lang="ar", skipped=skipped, em=0.0, f1=0.0),
               record(lang="en", skipped=skipped, em=0.0, f1=0.0)]
    summary = metrics.summarize(records)
    overall, strict = summary["overall"], summary["strict"]
    assert (overall["questions"], overall["skipped"], summary["ar"]["skipped"],
            summary["en"]["skipped"]) == (3, 2, 1, 1)
    assert summary["en"]["questions"] == 0 and summary["en"]["hit@1"] is None
    assert (overall["hit@1"], overall["hit@3"], overall["citation_recall"], overall["f1"]) \
        == (0.5, 1.0, 0.5, 0.75)
    # strict: 4 answerable, 2 of them skipped misses
    assert (strict["questions"], strict["skipped"]) == (5, 2)
    assert (strict["hit@1"], strict["hit@3"], strict["mrr@10"]) == (0.25, 0.5, 0.375)
    assert (strict["citation_recall"], strict["exact_match"], strict["f1"]) == (0.25, 0.25, 0.375)
    # never counted as answered: false refusals and refusal recall stay as they were
    assert strict["false_refusal_rate"] == overall["false_refusal_rate"] == 0.0
    assert strict["refusal_recall"] == 1.0


def test_compare_rows_give_b_minus_a():
    a = {"metrics": {"overall": {"hit@5": 0.5, "f1": None}}}
    b = {"metrics": {"overall": {"hit@5": 0.75, "f1": None}, "en": {"hit@5": 1.0}}}
    rows = metrics.compare_rows(a, b)
    assert ("overall", "hit@5", 0.5, 0.75, 0.25) in rows
    assert ("en", "hit@5", None, 1.0, None) in rows
    assert not any(metric == "f1" for _, metric, *_ in rows)  # null in both: left out
    assert metrics.lower_is_better("latency_total_p50_ms") and not metrics.lower_is_better("hit@5")
    assert metrics.lower_is_better("dropped_sentences") and metrics.lower_is_better("skipped")
    assert metrics.format_value("f1", None) == "—" and metrics.format_value("skipped", 3) == "3"


# -- scoring one answer ------------------------------------------------------------------
def test_score_result_maps_citations_and_retrieval_to_the_gold():
    q = question(key_facts=["Blinken", "Mayorkas"], answers=["Blinken and Mayorkas"])
    passages = [passage(1, 0, 50), passage(2, 120, 180)]
    res = result(answer="Blinken attends [2]. Something [1].", passages=passages,
                 retrieved_=[passage(1, 0, 90), passage(2, 90, 300), passage(3, 100, 200, "b")],
                 sentences=[AnswerSentence("Blinken attends", [2], 1.0),
                            AnswerSentence("Something", [1, 2], None)])
    r = scoring.score_result(q, res, relevant_chunks=1, history=[])
    assert [p["hit"] for p in r["retrieved"]] == [False, True, False]
    assert r["first_hit_rank"] == 2
    assert [p["hit"] for p in r["evidence"]] == [False, True]
    assert [(c["n"], c["hit"]) for c in r["cited"]] == [(1, False), (2, True)]
    assert r["key_facts_found"] == ["Blinken"]
    assert r["scored_text"] == "Blinken attends. Something."
    # [blinken attends something] vs [blinken and mayorkas]: 1 common, P = R = 1/3
    assert r["f1"] == pytest.approx(1 / 3)
    assert r["exact_match"] == 0.0 and r["checks"] == NO_CHECKS


def test_english_answers_quoted_in_arabic_are_scored_on_their_translation():
    q = question(key_facts=["20 billion"], answers=["20 billion dollars"])
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


def test_a_run_keeps_the_renderings_it_showed_and_only_the_problems_of_the_others():
    renderings = [{"source": "توزيع 20 مليار دولار", "text": "$20 billion", "citations": [1],
                   "similarity": 0.8, "problems": []},
                  {"source": "وتعليق العقوبات", "text": "", "citations": [1],
                   "similarity": 0.6, "problems": ["1 of the article's words left out"]}]
    res = result(answer="…", passages=[passage(1, 0, 10)],
                 translation={"text": "$20 billion [1]", "lang": "en", "label": "",
                              "withheld": 1, "renderings": renderings})
    r = scoring.score_result(question(), res, 1, [])
    assert r["renderings_shown"] == [{"source": "توزيع 20 مليار دولار", "text": "$20 billion"}]
    assert r["rendering_problems"] == [["1 of the article's words left out"]]


def test_an_answer_in_another_script_than_its_question_is_not_scored():
    q = question(key_facts=["20 billion"], answers=["20 billion dollars"])
    res = result(answer="The articles are in another language; here is what they say:\n"
                        "دعا إلى توزيع 20 مليار دولار [1].", passages=[passage(1, 0, 10)],
                 sentences=[AnswerSentence("دعا إلى توزيع 20 مليار دولار", [1], 1.0)])
    r = scoring.score_result(q, res, 1, [])
    assert r["scored_text"] == "دعا إلى توزيع 20 مليار دولار."
    # the shared "20" would give F1 2 * (1/6 * 1/3) / (1/6 + 1/3) = 0.22 and the key fact
    assert r["f1"] is None and r["exact_match"] is None and r["key_facts_found"] is None
    assert r["scored_in_question_script"] is False


def test_a_refused_answer_finds_no_key_facts_and_scores_zero():
    q = question(lang="ar", text="هل؟", key_facts=["لا"], answers=["لا"])
    res = result(answer="لا تذكر المقالات ذلك. أقرب المقاطع معروضة أدناه.", refused=True)
    r = scoring.score_result(q, res, 1, [])
    assert r["key_facts_found"] == [] and r["f1"] == 0.0 and r["exact_match"] == 0.0


def test_what_the_checks_dropped_reaches_the_record():
    res = result(answer="Kept [1].", passages=[passage(1, 0, 10)],
                 sentences=[AnswerSentence("Kept", [1], 1.0)],
                 mode="local, quoted where the model paraphrased",
                 dropped=[{"text": "Bad", "citations": [1], "problems": ["no citation"]}])
    r = scoring.score_result(question(), res, 1, [])
    assert r["dropped"] == [{"text": "Bad", "problems": ["no citation"]}]
    assert r["checks"] == {"dropped_sentences": 1, "dropped": {"no_citation": 1},
                           "quoted": ["paraphrased"], "renderings_withheld": 0}


def test_scoring_a_stored_record_again_gives_the_same_record():
    q = question(key_facts=["Blinken"], answers=["Blinken"])
    res = result(answer="Blinken [1].", passages=[passage(1, 120, 180)],
                 retrieved_=[passage(1, 100, 200)], sentences=[AnswerSentence("Blinken", [1], 1)])
    first = scoring.score_result(q, res, 1, [])
    assert scoring.score_record(first) == first
    assert first["exact_match"] == 1.0 and first["f1"] == 1.0


def test_the_skipped_record_is_a_miss_everywhere_it_counts():
    q = datasets.EvalQuestion("x-ar", "ar", "ما؟", True, answers=["308"],
                              skipped="its passage is in no indexed article")
    r = scoring.skipped_record(q)
    assert (r["skipped"], r["first_hit_rank"], r["cited"], r["f1"], r["exact_match"]) == (
        "its passage is in no indexed article", None, [], 0.0, 0.0)
    assert not re.search(r"\S", r["answer"]) and r["timings"] == {}


def test_a_sample_takes_n_standalone_questions_per_language_the_same_for_the_same_seed():
    from app.eval.run import sampled

    questions = [datasets.EvalQuestion(f"{lang}{i}", lang, "q?", True) for lang in ("en", "ar")
                 for i in range(10)]
    questions.append(datasets.EvalQuestion("en-follow", "en", "and?", True, follow_up_of="en0"))
    first = sampled(questions, 3, seed=1)
    assert [q.lang for q in first].count("en") == 3 and [q.lang for q in first].count("ar") == 3
    assert all(not q.follow_up_of for q in first)
    assert first == sampled(questions, 3, seed=1)
    assert [q.id for q in first] == [q.id for q in questions if q in first]  # file order
    assert {q.id for q in sampled(questions, 3, seed=2)} != {q.id for q in first}
    assert len(sampled(questions, 50, seed=1)) == 20  # at most what there is
