"""The refusal decision's measurements and the model that weighs them, on hand-made cases
(expected values worked out by hand)."""

import pytest

from app.answering import refusal
from app.answering import refusal_features as f
from app.answering.refusal import RefusalModel, model_reason
from app.settings import Settings
from index import Passage


def passage(text: str = "x", score: float = 0.5, n: int = 1) -> Passage:
    return Passage(n=n, article_id="a", title="t", paragraph=0, start=0, end=len(text),
                   text=text, score=score)


def ranking(*scores: float) -> list[Passage]:
    return [passage(score=s, n=i) for i, s in enumerate(scores, start=1)]


def test_top_score_and_margin():
    assert f.top_score(ranking(0.6, 0.5)) == 0.6
    assert f.top_score([]) is None
    assert f.margin(ranking(0.6, 0.45, 0.4)) == pytest.approx(0.15)
    assert f.margin(ranking(0.6)) is None


def test_z_score_against_the_querys_own_ranking():
    # scores 0.8, 0.5, 0.5, 0.5, 0.5: mean 0.56, std 0.12 -> (0.8 - 0.56) / 0.12 = 2.0
    assert f.z_score(ranking(0.8, 0.5, 0.5, 0.5, 0.5)) == pytest.approx(2.0)
    # only the top 5 count: a sixth score changes nothing
    assert f.z_score(ranking(0.8, 0.5, 0.5, 0.5, 0.5, 0.0)) == pytest.approx(2.0)
    # all alike: the spread's floor keeps it finite and 0
    assert f.z_score(ranking(0.5, 0.5, 0.5)) == pytest.approx(0.0)
    assert f.z_score(ranking(0.5, 0.4)) is None


def test_overlap_counts_content_words_in_the_same_script_only():
    # content words: danube, end (stemmed); "where", "does", "the" are not
    assert f.overlap("Where does the Danube end?", "The Danube ends in the Black Sea.") == 1.0
    assert f.overlap("Where does the Danube end?", "The Rhine flows north.") == 0.0
    assert f.overlap("Where does the Danube end?", "The Danube is long.") == 0.5
    assert f.overlap("Where does the Danube end?", "ينتهي الدانوب في البحر الأسود") is None
    assert f.overlap("متى ولد خاشقجي؟", "ولد جمال خاشقجي في المدينة") == 1.0
    assert f.overlap("What is it?", "Anything at all.") is None  # no content word


@pytest.mark.parametrize("question, kind", [
    ("How many points did the Panthers surrender?", "number"),
    ("كم نقطة تخلى عنها دفاع البانثرز؟", "number"),
    ("When was the tower built?", "date"),
    ("In what year did the war end?", "date"),
    ("- متى ولد جمال خاشقجي؟", "date"),
    ("في أي عام انتهت الحرب؟", "date"),
    ("Who designed the tower?", "name"),
    ("من هو مؤسس الشركة؟", "name"),
    ("Why did the river flood?", None),
    ("ما هي عاصمة مصر؟", None),
])
def test_expected_answer_type(question, kind):
    assert f.expected_answer_type(question) == kind


def test_answer_type_missing():
    assert f.answer_type_missing("When was it built?", ["It was built in 1889."]) == 0.0
    assert f.answer_type_missing("When was it built?", ["It was built in March."]) == 0.0
    assert f.answer_type_missing("When was it built?", ["It was built of iron."]) == 1.0
    assert f.answer_type_missing("How many floors?", ["It has 3 floors."]) == 0.0
    assert f.answer_type_missing("How many floors?", ["It is tall."]) == 1.0
    assert f.answer_type_missing("Who built it?", ["It was built by Gustave Eiffel."]) == 0.0
    assert f.answer_type_missing("Who built it?", ["it was built long ago."]) == 1.0
    # Arabic text has no capitals: we cannot tell whether it names someone
    assert f.answer_type_missing("Who built it?", ["بناه المهندس"]) is None
    assert f.answer_type_missing("Why is it tall?", ["It is tall."]) is None


def test_distinguishing_terms_and_the_share_the_evidence_lacks():
    question = "Where was the 20th tournament held by FIFA?"
    assert f.distinguishing_terms(question) == ["20", "20th", "fifa"]
    assert f.missing_terms(question, "The 20th FIFA tournament was held in Brazil.") == 0.0
    # the neighbour: the 15th tournament, by FIFA
    assert f.missing_terms(question, "The 15th FIFA tournament was held in the US.") == \
        pytest.approx(2 / 3)
    # Arabic evidence can hold the number, not the Latin name
    assert f.missing_terms(question, "أقيمت البطولة 20 في البرازيل") == pytest.approx(1 / 2)
    assert f.distinguishing_terms("من فاز بالبطولة الخامسة؟") == ["الخامسة"]
    assert f.distinguishing_terms("ما هو الفصل الثالث؟") == ["الثالث"]
    assert f.missing_terms("What is the river?", "A river.") is None


def test_amount_rule_reads_the_evidence_close_to_the_best():
    evidence = [passage("It is long.", 0.6), passage("It has 3 bridges.", 0.45, 2)]
    assert f.amount_without_quantity("How many bridges are there?", evidence) is True
    evidence[1] = passage("It has 3 bridges.", 0.55, 2)
    assert f.amount_without_quantity("How many bridges are there?", evidence) is False
    assert f.amount_without_quantity("Why is it long?", evidence) is False


def test_measure_names_every_feature_and_marks_what_does_not_apply():
    values = f.measure("How many bridges?", "en", ranking(0.7, 0.5, 0.5),
                       [passage("ثلاثة جسور", 0.6)], [])
    assert values["top_evidence"] == 0.6 and values["top_chunk"] == 0.7
    assert values["overlap"] is None and values["cross_script"] == 1.0
    assert values["evidence_margin"] is None and values["lang_ar"] == 0.0
    assert values["amount_rule"] == 0.0 and values["unknown_name"] == 0.0


MODEL = RefusalModel(features=("top_evidence", "overlap"), mean=(0.5, 0.5), scale=(0.1, 0.25),
                     coef=(2.0, 1.0), intercept=0.0, threshold={"default": 0.5, "ar": 0.6})


def test_the_model_weighs_standardised_features_and_ignores_what_does_not_apply():
    # logit = 2 * (0.6 - 0.5) / 0.1 + 1 * (0.25 - 0.5) / 0.25 = 2 - 1 = 1
    assert MODEL.probability({"top_evidence": 0.6, "overlap": 0.25}) == \
        pytest.approx(1 / (1 + 2.718281828 ** -1))
    assert MODEL.probability({"top_evidence": 0.5, "overlap": None}) == pytest.approx(0.5)


def test_the_reason_names_the_cut_and_what_held_the_question_down():
    low = {"top_evidence": 0.4, "overlap": 0.25}  # logit = -2 - 1 = -3, p = 0.047
    assert model_reason(MODEL, low, "en") == (
        "p(answerable)=0.05 < 0.50 for en; held down by top evidence score 0.40, "
        "word overlap 0.25")
    # p = 0.5 answers in English, is refused at the Arabic cut
    even = {"top_evidence": 0.5, "overlap": 0.5}
    assert model_reason(MODEL, even, "en") == ""
    assert model_reason(MODEL, even, "ar") == "p(answerable)=0.50 < 0.60 for ar"


class KnownNames:
    """The one searcher call the refusal makes besides what it is given: which names the
    articles never use."""

    def __init__(self, unknown: set[str]):
        self.unknown = unknown

    def unknown_terms(self, names: list[str]) -> list[str]:
        return [n for n in names if n in self.unknown]


def test_the_model_decides_with_its_score_and_a_name_never_in_the_articles_still_refuses(
        monkeypatch):
    monkeypatch.setattr(refusal, "load_model", lambda: MODEL)
    settings = Settings(refusal_rule="model")
    evidence = [passage("Mexico asked Washington for aid.", score=0.6)]
    # overlap: "mexico" of {mexico, request}; logit = 2 * 1 + 1 * 0 = 2
    decided = refusal.decide_refusal("What did Mexico request?", evidence, settings,
                                     KnownNames(set()), evidence)
    assert decided.reason == "" and decided.score == pytest.approx(0.8808, abs=1e-4)
    vetoed = refusal.decide_refusal("What did Mexico request?", evidence, settings,
                                    KnownNames({"Mexico"}), evidence)
    assert vetoed.reason == "the articles never mention: Mexico"
    assert vetoed.score == decided.score
    nothing = refusal.decide_refusal("What did Mexico request?", [], settings, KnownNames(set()))
    assert (nothing.reason, nothing.score) == ("nothing relevant was retrieved", None)


def test_the_threshold_rule_decides_on_the_best_evidence_cosine():
    settings = Settings(refusal_rule="threshold", refuse_below_en=0.4)
    low = [passage("Mexico asked Washington for aid.", score=0.35)]
    decided = refusal.decide_refusal("What did Mexico request?", low, settings, KnownNames(set()))
    assert decided.score == 0.35 and decided.reason.startswith("best evidence scores 0.350")


def test_the_packaged_model_weighs_exactly_the_features_that_are_measured():
    model = refusal.load_model()
    measured = f.measure("How many?", "en", ranking(0.5, 0.4, 0.3), ranking(0.5), [])
    assert model.features == tuple(measured)
    assert all(0.0 < cut < 1.0 for cut in model.threshold.values())
    assert {"default"} <= set(model.threshold) <= {"default", "en", "ar"}
