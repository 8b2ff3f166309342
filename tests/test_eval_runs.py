"""Datasets, whole eval runs on fakes, re-scoring a stored run, and the eval command."""

import json
import shutil

import pytest
from rich.console import Console
from typer.testing import CliRunner

from app.eval import datasets
from app.eval.gate import IsolatedSettings as Settings
from app.eval.run import evaluate, rescore, run_questions
from app.eval.tables import print_run
from app.service import AnswerResult, Turn
from index.sources import Article, read_article
from tests.conftest import DATA, ROOT


def result(answer: str) -> AnswerResult:
    return AnswerResult(question="q", standalone_question="q", language="en", answer=answer,
                        sentences=[], evidence=[], passages=[], retrieved=[], refused=False,
                        mode="extractive", timings={"total_ms": 1.0})


def recording(seen: list):
    """An answerer that notes what it was asked, with which history."""
    def answer(question, history):
        seen.append((question.question, history))
        return result(answer=f"answer to {question.question}")
    return answer


def test_follow_ups_are_asked_with_the_turns_of_their_chain():
    questions = [datasets.EvalQuestion("q1", "en", "first?", True, "a", [[0, 5]]),
                 datasets.EvalQuestion("x", "en", "other?", False),
                 datasets.EvalQuestion("q2", "en", "and then?", True, "a", [[0, 5]], follow_up_of="q1"),
                 datasets.EvalQuestion("q3", "en", "why?", True, "a", [[0, 5]], follow_up_of="q2")]
    seen = []
    records = run_questions(recording(seen), questions, lambda q: 1, progress=False)
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
    questions = datasets.arcd_questions(sample, articles)
    assert len(questions) == len(rows) and not any(q.skipped for q in questions)
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
    questions = datasets.arcd_questions(tmp_path, {"a": _article("a", "x Cairo is big.")}, rows)
    assert [(q.id, q.lang, q.answers, q.gold_spans, q.skipped) for q in questions] == [
        ("1-en", "en", ["big"], [[2, 15]], ""), ("1-ar", "ar", ["كبيرة"], [[2, 15]], ""),
        ("2-en", "en", [], [], "its passage is not in passages.jsonl")]


def test_a_passage_that_starts_with_a_byte_order_mark_is_still_placed():
    articles = {"a": _article("a", "First para.\n\nSecond para.")}  # the indexer drops BOMs
    spans = datasets.passage_spans({"p1": "\ufeffFirst para.", "p2": "\ufeffSecond para.\n"},
                                   articles, {"a": ["p1", "p2"]})
    assert spans == {"p1": ("a", 0, 11), "p2": ("a", 13, 25)}


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
    assert overall["questions"] == 3 and overall["hit@10"] == 1.0 and overall["skipped"] == 0
    assert set(summary["metrics"]) == {"overall", "en", "strict"}
    assert summary["dataset"]["skipped"] == 0 and len(summary["hit_curve"]["en"]) == 10
    assert summary["models"]["embedding"]["name"] == "fake-embedder"
    assert summary["models"]["llm"] == {"backend": "extractive"}
    assert summary["dataset"]["kind"] == "seed" and summary["index"]["chunks_embedded_now"] > 0
    assert "llm_api_key" not in summary["settings"]
    lines = (folder / "questions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["r1-en", "r2-en", "r3-en"]
    assert json.loads(lines[1])["history"] == ["r1-en"]
    report = (folder / "report.md").read_text()
    assert "## Worst answerable questions" in report and "r1-en" in report
    assert "## What the checks took out" in report and "## Skipped questions" not in report
    for image in ("retrieval_at_k.png", "metrics_by_language.png", "latency.png"):
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
            "metrics": {"overall": {"hit@5": recall, "latency_total_p50_ms": 100.0}}}))

    write("old", 0.5)
    write("new", 0.75)
    done = CliRunner().invoke(cli, ["eval", "--reports", str(tmp_path), "--compare", "old",
                                    str(tmp_path / "new")])
    assert done.exit_code == 0, done.output
    assert "hit@5" in done.output and "0.500" in done.output and "+0.250" in done.output
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


def test_skipped_questions_are_counted_reported_and_strict(tmp_path, fake_embedder):
    """xquad-sample: 2 questions x 2 languages on a paragraph that starts with a BOM (placed
    all the same), 4 on a paragraph of an article that is not there (skipped)."""
    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive")
    run = evaluate(settings, datasets.load_dataset(DATA / "xquad-sample"), run_id="x",
                   reports_dir=tmp_path / "reports", embed_model=fake_embedder, progress=False,
                   log=lambda m: None)
    dataset, metrics = run.summary["dataset"], run.summary["metrics"]
    assert (dataset["questions"], dataset["skipped"]) == (8, 4)
    assert dataset["skipped_reasons"] == {"its passage is in no indexed article": 4}
    assert (metrics["overall"]["skipped"], metrics["en"]["skipped"], metrics["ar"]["skipped"],
            metrics["strict"]["questions"]) == (4, 2, 2, 12)
    assert metrics["strict"]["hit@10"] == pytest.approx(metrics["overall"]["hit@10"] * 8 / 12)
    skipped = [r for r in run.records if r["skipped"]]
    assert [r["id"] for r in skipped] == ["57339c16d058e614000b5ec5-en",
                                          "57339c16d058e614000b5ec5-ar",
                                          "57339c16d058e614000b5ec6-en",
                                          "57339c16d058e614000b5ec6-ar"]
    report = (run.folder / "report.md").read_text()
    assert "**4 of 12 questions were not asked**" in report
    assert "- 4: its passage is in no indexed article" in report
    console = Console(record=True, width=200)
    print_run(console, run.summary, run.folder)
    shown = console.export_text()
    assert "4 of 12 questions skipped" in shown and "hit@3" in shown and "strict" in shown
    assert "—" in shown  # refusal recall: no unanswerable question here


def test_a_stored_run_is_rescored_with_the_current_rules(tmp_path, tiny_dataset, fake_embedder):
    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive")
    reports = tmp_path / "reports"
    first = evaluate(settings, datasets.load_dataset(tiny_dataset), run_id="first",
                     reports_dir=reports, embed_model=fake_embedder, progress=False,
                     log=lambda m: None)
    lines = (first.folder / "questions.jsonl").read_text().splitlines()
    old = [json.loads(line) for line in lines]
    for r in old:  # as an older run stored them: no hits, no reasons, a count of drops
        r.pop("checks"), r.pop("evidence"), r.pop("key_facts_found")
        r["dropped"] = 0
        for p in r["retrieved"]:
            p.pop("hit")
    (first.folder / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    again = rescore("first", reports)
    assert again.folder == reports / "first-rescored"
    assert again.summary["rescored"]["from"].endswith("first")
    for group in ("overall", "en"):
        for metric in ("hit@1", "hit@3", "recall@10", "mrr@10", "citation_precision",
                       "key_fact_recall", "f1", "false_refusal_rate"):
            assert again.summary["metrics"][group][metric] == first.summary["metrics"][group][metric]
    assert again.summary["metrics"]["overall"]["evidence_hit"] is None  # not stored then
    assert "re-scored" in (again.folder / "report.md").read_text()
    with pytest.raises(datasets.EvalError, match="no run 'nope'"):
        rescore("nope", reports)


def test_a_skipped_question_is_not_asked_and_its_follow_up_goes_without_it():
    questions = [datasets.EvalQuestion("q1", "en", "first?", True, skipped="its passage is empty"),
                 datasets.EvalQuestion("q2", "en", "and?", True, "a", [[0, 5]], follow_up_of="q1")]
    seen = []
    records = run_questions(recording(seen), questions, lambda q: 1, progress=False)
    assert seen == [("and?", [])]
    assert [(r["id"], r["skipped"]) for r in records] == [("q1", "its passage is empty"),
                                                          ("q2", "")]
