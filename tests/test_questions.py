"""eval/questions.jsonl is valid, and the validator catches what it is there to catch."""

import copy
import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "eval" / "check_questions.py"
_spec = importlib.util.spec_from_file_location("check_questions", SCRIPT)
check_questions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_questions)


def seed_rows() -> list[dict]:
    return [json.loads(line) for line in
            (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def test_the_seed_question_set_is_valid():
    errors, counts = check_questions.validate(seed_rows())
    assert errors == []
    assert counts["questions"] == 66 and counts["pairs"] == 33
    assert counts["unanswerable_pairs"] == 9 and counts["followup_pairs"] == 8


def _by_id(rows: list[dict], qid: str) -> dict:
    return next(r for r in rows if r["id"] == qid)


def _span_past_the_end(rows):
    _by_id(rows, "seed-005-en")["gold_spans"] = [[0, 10**6]]


def _key_fact_not_in_answer(rows):
    _by_id(rows, "seed-005-en")["key_facts"].append("Napoleon")


def _arabic_key_fact_outside_gold(rows):
    row = _by_id(rows, "seed-005-ar")
    row["key_facts"].append("نابليون")
    row["answer"] += " نابليون"


def _follow_up_of_a_later_question(rows):
    _by_id(rows, "seed-002-en")["follow_up_of"] = "seed-004-en"


def _pair_disagrees_on_paragraph(rows):
    _by_id(rows, "seed-007-ar")["paragraph"] = 2


def _unanswerable_with_a_span(rows):
    _by_id(rows, "seed-025-en")["gold_spans"] = [[0, 5]]


def _duplicate_id(rows):
    rows.append(copy.deepcopy(rows[0]))


@pytest.mark.parametrize("break_it, expected", [
    (_span_past_the_end, "seed-005-en: bad span"),
    (_key_fact_not_in_answer, "key fact 'Napoleon' not in reference answer"),
    (_arabic_key_fact_outside_gold, "Arabic key fact 'نابليون' not inside gold spans"),
    (_follow_up_of_a_later_question, "follow_up_of 'seed-004-en' is not an earlier id"),
    (_pair_disagrees_on_paragraph, "seed-007: en/ar differ on paragraph"),
    (_unanswerable_with_a_span, "seed-025-en: unanswerable must have"),
    (_duplicate_id, "seed-001-en: duplicate id"),
])
def test_the_validator_catches_broken_rows(break_it, expected):
    rows = seed_rows()
    break_it(rows)
    errors, _ = check_questions.validate(rows)
    assert any(expected in e for e in errors), errors


def test_the_script_exits_1_on_a_broken_file_and_0_on_the_real_one(tmp_path):
    rows = seed_rows()
    _key_fact_not_in_answer(rows)
    broken = tmp_path / "questions.jsonl"
    broken.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    bad = subprocess.run([sys.executable, str(SCRIPT), str(broken)], capture_output=True, text=True)
    assert bad.returncode == 1 and "FAILED (1 errors)" in bad.stdout
    good = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.rstrip().endswith("OK")
