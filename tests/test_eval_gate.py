"""CI gate: the seed eval with the extractive backend stays above eval/thresholds.json (slow).

Runs the whole eval in-process with the real embedding model on a temporary data folder,
so it measures this checkout and nothing a developer has indexed.
"""

import json

import pytest

from app.eval import evaluate, load_dataset
from app.settings import Settings
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
THRESHOLDS = json.loads((ROOT / "eval" / "thresholds.json").read_text(encoding="utf-8"))


def test_the_seed_eval_meets_the_thresholds(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive")
    run = evaluate(settings, load_dataset(None), run_id="gate", reports_dir=tmp_path / "reports",
                   progress=False, log=lambda m: None)
    overall = run.summary["metrics"]["overall"]
    assert overall["questions"] == 66 and run.summary["backend"] == "extractive"
    below = {metric: (overall[metric], floor) for metric, floor in THRESHOLDS["overall"].items()
             if overall[metric] is None or overall[metric] < floor}
    assert not below, f"(value, floor) below the gate: {below}; see {run.folder / 'report.md'}"
