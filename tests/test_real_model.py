"""The real multilingual model, a real FAISS index on disk, the real CLI (slow)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from app.service import SanadService
from app.settings import Settings
from index.sources import read_article
from tests.conftest import DATA, ROOT, SEED

pytestmark = pytest.mark.slow
SANAD = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "sanad")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> SanadService:
    settings = Settings(data_dir=tmp_path_factory.mktemp("real") / "data")
    service = SanadService(settings)
    report = service.index([ROOT / "seeds"], progress=False, log=lambda m: None)
    assert report.chunks_embedded == 11
    return service


@pytest.mark.parametrize("question", ["What did Mexico request?", "ماذا طلبت المكسيك؟"])
def test_mexico_request_paragraph_in_top_3_with_exact_quote(seeded, question):
    passages = seeded.retrieve(question, 5)
    top3 = [p.paragraph for p in passages[:3]]
    assert 7 in top3, top3
    text = read_article(SEED).text
    for p in passages:
        assert text[p.start:p.end] == p.text


def test_unrelated_question_scores_lower(seeded):
    relevant = seeded.retrieve("What did Mexico request?", 1)[0].score
    unrelated = seeded.retrieve("How do I bake sourdough bread?", 1)[0].score
    assert unrelated < relevant


def test_arabic_questions_find_their_arcd_paragraph(tmp_path):
    """A sample of ARCD (Arabic Wikipedia QA) that ships with the tests."""
    sample = DATA / "arcd-sample"
    service = SanadService(Settings(data_dir=tmp_path / "data"))
    service.index([sample / "articles"], progress=False, log=lambda m: None)
    passages = {json.loads(line)["id"]: json.loads(line)
                for line in (sample / "passages.jsonl").read_text().splitlines()}
    questions = [json.loads(line) for line in (sample / "questions.jsonl").read_text().splitlines()]
    hits = 0
    for q in questions:
        gold = passages[q["passage_id"]]["text"]
        found = service.retrieve(q["question_ar"], 5)
        hits += any(p.text in gold or gold in p.text for p in found)
    assert hits / len(questions) >= 0.85, f"recall@5 {hits}/{len(questions)}"


def test_cli_index_twice_then_ask_json(tmp_path):
    env = {**os.environ, "SANAD_DATA_DIR": str(tmp_path / "data")}
    first = subprocess.run([SANAD, "index", "-q", "seeds/"], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=True)
    assert "embedded 11 chunks" in first.stdout
    second = subprocess.run([SANAD, "index", "-q", "seeds/"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    assert "0 chunks embedded" in second.stdout and "1 unchanged" in second.stdout
    asked = subprocess.run([SANAD, "ask", "--json", "ماذا طلبت المكسيك؟"], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=True)
    doc = json.loads(asked.stdout)
    assert doc["question"] == "ماذا طلبت المكسيك؟"
    assert set(doc["passages"][0]) == {"n", "article_id", "title", "paragraph", "start", "end",
                                       "text", "score"}
    assert 7 in [p["paragraph"] for p in doc["passages"][:3]]


def test_cli_errors_are_clear(tmp_path):
    env = {**os.environ, "SANAD_DATA_DIR": str(tmp_path / "empty")}
    result = subprocess.run([SANAD, "ask", "anything"], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 2 and "sanad index" in result.stderr
    assert "Traceback" not in result.stderr
    bad = subprocess.run([SANAD, "ask", "x"], cwd=ROOT, capture_output=True, text=True,
                         env={**env, "SANAD_TOP_K": "zero"})
    assert bad.returncode == 2 and "top_k" in bad.stderr
