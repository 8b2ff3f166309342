"""Shared helpers for the benchmark scripts: datasets, span mapping, timing."""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from app.eval.datasets import arcd_questions as eval_arcd_questions
from app.eval.matching import overlaps

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCD = ROOT.parent / "shared" / "datasets" / "arcd-dev"


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def copy_articles(dataset: Path, count: int, folder: Path) -> list[Path]:
    """The dataset's first `count` article files, copied into a new `folder`."""
    files = sorted((dataset / "articles").glob("*.txt"))[:count]
    if not files:
        sys.exit(f"no articles under {dataset}/articles; pass --dataset DIR")
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    return files


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def arcd_questions(dataset: Path, articles: dict) -> list[dict]:
    """ARCD's Arabic questions with the gold paragraph mapped to a span of its indexed article
    (the mapping is the eval's: app.eval.datasets.arcd_questions)."""
    return [{"id": q.id, "lang": q.lang, "question": q.question, "article_id": q.article_id,
             "gold_spans": q.gold_spans} for q in eval_arcd_questions(dataset, articles)
            if q.lang == "ar" and not q.skipped]


def seed_questions() -> list[dict]:
    rows = read_jsonl(ROOT / "eval" / "questions.jsonl")
    return [{"id": r["id"], "lang": r["lang"], "article_id": r["article_id"],
             "question": r["standalone"] or r["question"], "gold_spans": r["gold_spans"]}
            for r in rows if r["answerable"]]


def hit(passage, question: dict) -> bool:
    return overlaps(passage.article_id, passage.start, passage.end,
                   question["article_id"], question["gold_spans"])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p50_p95_ms(seconds: list[float]) -> tuple[float, float]:
    milliseconds = [s * 1000 for s in seconds]
    return statistics.median(milliseconds), statistics.quantiles(milliseconds, n=20)[18]


def peak_rss_gb() -> float:
    """This process's peak resident memory (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def run_worker(script: str, arguments: list[str], what: str) -> dict:
    """Run `script --worker ...` in a child process; its last stdout line is a JSON object.

    A child per measured thing keeps peak memory per thing and nothing in memory between.
    """
    done = subprocess.run([sys.executable, script, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_search(store, vectors, k: int) -> tuple[list[float], list[list[str]]]:
    """Seconds per search and the ids found, one query at a time (after one warm-up)."""
    store.search(vectors[0], k)
    latencies, results = [], []
    for vector in vectors:
        started = time.perf_counter()
        hits = store.search(vector, k)
        latencies.append(time.perf_counter() - started)
        results.append([cid for cid, _ in hits])
    return latencies, results


def recall_at_k(results: list[list[str]], exact: list[list[str]], k: int) -> float:
    return statistics.mean(len(set(r) & set(e)) / k for r, e in zip(results, exact))
