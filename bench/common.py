"""Shared helpers for the benchmark scripts: datasets, span mapping, timing."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from index.sources import article_id_for

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCD = ROOT.parent / "shared" / "datasets" / "arcd-dev"


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def arcd_questions(dataset: Path, articles: dict) -> list[dict]:
    """ARCD questions with the gold paragraph mapped to a span of its indexed article."""
    passages = {p["id"]: p for p in read_jsonl(dataset / "passages.jsonl")}
    spans = {}
    for meta in read_jsonl(dataset / "articles.jsonl"):
        art = articles.get(article_id_for(Path(meta["file"])))
        if art is None:
            continue
        cursor = 0
        for pid in meta["passage_ids"]:
            text = passages[pid]["text"].strip()
            at = art.text.find(text, cursor)
            if at < 0:
                at = art.text.find(text)
            if at >= 0:
                spans[pid] = (art.id, at, at + len(text))
                cursor = at + len(text)
    out = []
    for q in read_jsonl(dataset / "questions.jsonl"):
        if q["passage_id"] in spans and q.get("question_ar"):
            aid, start, end = spans[q["passage_id"]]
            out.append({"id": q["id"], "lang": "ar", "question": q["question_ar"],
                        "article_id": aid, "gold_spans": [[start, end]]})
    return out


def seed_questions() -> list[dict]:
    rows = read_jsonl(ROOT / "eval" / "questions.jsonl")
    return [{"id": r["id"], "lang": r["lang"], "article_id": r["article_id"],
             "question": r["standalone"] or r["question"], "gold_spans": r["gold_spans"]}
            for r in rows if r["answerable"]]


def hit(passage, question: dict) -> bool:
    return passage.article_id == question["article_id"] and any(
        passage.start < end and start < passage.end for start, end in question["gold_spans"])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
