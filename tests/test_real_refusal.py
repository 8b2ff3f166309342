"""The refusal decision on real embeddings and a real index: questions whose answer is in the
top passage, with a best evidence score the old fixed cut refused, are answered and cited
(issue 13's regression; the questions are XQuAD's, see tests/data/refusal-regression)."""

import json

import pytest

from app.service import SanadService
from app.settings import Settings
from tests.conftest import DATA

FOLDER = DATA / "refusal-regression"
QUESTIONS = [json.loads(line) for line in
             (FOLDER / "questions.jsonl").read_text(encoding="utf-8").splitlines()]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("refusal") / "data",
                        llm_backend="extractive", refusal_rule="model")
    model = SanadService(settings)
    model.index([FOLDER / "articles"], progress=False, log=lambda m: None)
    return model, SanadService(settings.model_copy(update={"refusal_rule": "threshold"}))


@pytest.mark.parametrize("row", QUESTIONS, ids=[q["id"] for q in QUESTIONS])
def test_a_low_scoring_answer_in_the_top_passage_is_answered_and_cited(services, row):
    model, threshold = services
    question = row["question_ar"]
    result = model.answer(question)
    assert not result.refused, result.refusal_reason
    assert result.refusal_score is not None and 0.0 <= result.refusal_score <= 1.0
    cited = {n for s in result.sentences for n in s.citations}
    assert any(row["answers_ar"][0] in result.passages[n - 1].text for n in cited)
    # what the old rule did with the same evidence
    old = threshold.answer(question)
    assert old.refused and old.refusal_reason.startswith("best evidence scores")
