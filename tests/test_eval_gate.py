"""CI gate: the extractive seed eval stays within eval/thresholds.json, per language.

The gate is only as good as what it fails, so the stored run (and, in the slow test, a
fresh one) is replayed after altering its records the way a worse service would answer:
refusing most answerable questions, refusing nothing, answering with nothing, losing half
of one language's retrieval. Each must break a limit.
"""

import copy
import json

import pytest

from app.eval import evaluate, load_dataset
from app.eval.gate import IsolatedSettings, gate_failures, load_thresholds
from app.eval.metrics import summarize
from app.eval.scoring import score_record
from app.settings import Settings
from tests.conftest import ROOT

THRESHOLDS = load_thresholds()
BASELINE = ROOT / THRESHOLDS["baseline"]
REQUIRED = {"floors": [("hit@1", "mrr@10"), ("citation_precision",), ("citation_recall",),
                       ("refusal_recall",)],
            "ceilings": [("false_refusal_rate",)]}


def stored_records() -> list[dict]:
    return [json.loads(line) for line in
            (BASELINE / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line]


def replay(records: list[dict], alter) -> list[str]:
    """The gate's failures for the records after `alter` (which changes raw fields of a
    copy of each, as the service would have returned them), scored afresh."""
    altered = copy.deepcopy(records)
    alter(altered)
    return gate_failures(summarize([score_record(r) for r in altered]), THRESHOLDS)


def _refuse(r: dict) -> None:
    r.update(refused=True, refusal_reason="replay", answer="The articles don't say this.",
             translation=None, sentences=[], cited=[], dropped=[])


def refuse_60_percent(records: list[dict]) -> None:
    for lang in ("en", "ar"):
        answerable = [r for r in records if r["lang"] == lang and r["answerable"]]
        for i, r in enumerate(answerable):
            if i % 5 < 3:  # 3 of every 5: 15 of 24 per language
                _refuse(r)


def refuse_everything(records: list[dict]) -> None:
    for r in records:
        _refuse(r)


def answer_everything(records: list[dict]) -> None:
    for r in records:
        if r["refused"]:
            quote = r["retrieved"][0]["text"]
            r.update(refused=False, refusal_reason="", answer=f"{quote} [1].",
                     sentences=[{"text": quote, "citations": [1], "support": 1.0}])


def empty_answers(records: list[dict]) -> None:
    for r in records:
        if not r["refused"]:
            r.update(answer="", translation=None, sentences=[], cited=[])


def halve_retrieval(lang: str):
    def alter(records: list[dict]) -> None:
        answerable = [r for r in records if r["lang"] == lang and r["answerable"]]
        for r in answerable[::2]:  # every other question loses the chunks on its gold
            r["retrieved"] = [p for p in r["retrieved"] if not p["hit"]]
    return alter


ALTERATIONS = {
    "60% false refusals": (refuse_60_percent, ["en false_refusal_rate", "ar false_refusal_rate"]),
    "refusing everything": (refuse_everything, ["en false_refusal_rate", "ar citation_recall"]),
    "answering everything": (answer_everything, ["en refusal_recall", "ar refusal_recall"]),
    "empty answers": (empty_answers, ["en citation_recall", "ar citation_recall",
                                      "ar key_fact_recall"]),
    "English retrieval halved": (halve_retrieval("en"), ["en hit@1", "en mrr@10"]),
    "Arabic retrieval halved": (halve_retrieval("ar"), ["ar hit@1", "ar mrr@10"]),
}


def test_the_thresholds_limit_every_required_metric_in_both_languages():
    for kind, metrics in REQUIRED.items():
        for lang in ("en", "ar"):
            for alternatives in metrics:
                assert set(alternatives) & set(THRESHOLDS[kind][lang]), (kind, lang, alternatives)
    assert "key_fact_recall" in THRESHOLDS["floors"]["ar"]


def test_the_stored_baseline_meets_the_gate():
    records = stored_records()
    assert len(records) == 66
    assert gate_failures(summarize([score_record(r) for r in records]), THRESHOLDS) == []


@pytest.mark.parametrize("name", list(ALTERATIONS))
def test_a_worse_service_replayed_from_the_stored_run_fails_the_gate(name):
    alter, expected = ALTERATIONS[name]
    failures = replay(stored_records(), alter)
    broken = {" ".join(f.split(":")[0].split()[:2]) for f in failures}
    assert set(expected) <= broken, failures


def test_a_metric_the_gate_limits_must_be_there():
    thresholds = {"floors": {"ar": {"key_fact_recall": 0.5}}, "ceilings": {}}
    assert gate_failures({"ar": {"key_fact_recall": None}}, thresholds) == [
        "ar key_fact_recall: missing, floor 0.5"]
    assert gate_failures({}, thresholds) == ["ar key_fact_recall: missing, floor 0.5"]
    assert gate_failures({"ar": {"key_fact_recall": 0.5}}, thresholds) == []
    ceiling = {"floors": {}, "ceilings": {"en": {"false_refusal_rate": 0.05}}}
    assert gate_failures({"en": {"false_refusal_rate": 0.0625}}, ceiling) == [
        "en false_refusal_rate: 0.062, ceiling 0.05"]


def test_the_gate_settings_ignore_the_environment_and_sanad_toml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sanad.toml").write_text("top_k = 2\nrefuse_below_ar = 0.9\n")
    monkeypatch.setenv("SANAD_REFUSE_BELOW_EN", "0.95")
    monkeypatch.setenv("SANAD_EVIDENCE_SENTENCES", "1")
    monkeypatch.setenv("SANAD_LLM_BACKEND", "local")
    changed = ("top_k", "refuse_below_ar", "refuse_below_en", "evidence_sentences")
    leaky = Settings()
    assert [getattr(leaky, name) for name in changed] == [2, 0.9, 0.95, 1]  # they would leak
    isolated = IsolatedSettings(data_dir=tmp_path / "data", llm_backend="extractive")
    assert [getattr(isolated, name) for name in changed] == [
        Settings.model_fields[name].default for name in changed]
    assert isolated.llm_backend == "extractive" and isolated.data_dir == tmp_path / "data"
    assert isolated.model_copy(update={"top_k": 7}).top_k == 7  # evaluate() copies it


@pytest.mark.slow
def test_the_fresh_seed_eval_meets_the_gate_and_its_worse_replays_fail(tmp_path):
    settings = IsolatedSettings(data_dir=tmp_path / "data", llm_backend="extractive")
    run = evaluate(settings, load_dataset(None), run_id="gate", reports_dir=tmp_path / "reports",
                   progress=False, log=lambda m: None)
    assert run.summary["backend"] == "extractive" and run.summary["dataset"]["questions"] == 66
    failures = gate_failures(run.summary["metrics"], THRESHOLDS)
    assert failures == [], f"{failures}; see {run.folder / 'report.md'}"
    for name, (alter, expected) in ALTERATIONS.items():
        broken = {" ".join(f.split(":")[0].split()[:2]) for f in replay(run.records, alter)}
        assert set(expected) <= broken, name
