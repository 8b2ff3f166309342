"""Shared helpers for the benchmark scripts: datasets, span mapping, timing."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from app import evaluation

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCD = ROOT.parent / "shared" / "datasets" / "arcd-dev"


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def arcd_questions(dataset: Path, articles: dict) -> list[dict]:
    """ARCD's Arabic questions with the gold paragraph mapped to a span of its indexed article
    (the mapping is the eval's: app.evaluation.arcd_questions)."""
    questions, _ = evaluation.arcd_questions(dataset, articles)
    return [{"id": q.id, "lang": q.lang, "question": q.question, "article_id": q.article_id,
             "gold_spans": q.gold_spans} for q in questions if q.lang == "ar"]


def seed_questions() -> list[dict]:
    rows = read_jsonl(ROOT / "eval" / "questions.jsonl")
    return [{"id": r["id"], "lang": r["lang"], "article_id": r["article_id"],
             "question": r["standalone"] or r["question"], "gold_spans": r["gold_spans"]}
            for r in rows if r["answerable"]]


def hit(passage, question: dict) -> bool:
    return evaluation.overlaps(passage.article_id, passage.start, passage.end,
                               question["article_id"], question["gold_spans"])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
