"""A whole run: index the dataset's articles in a folder of their own, ask every question
through the answer service, score, and write the run folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.eval.datasets import Dataset, EvalError, EvalQuestion, check_follow_ups
from app.eval.metrics import K, asked, hit_curve, languages_of, recall_curve, summarize
from app.eval.report import write_report
from app.eval.scoring import relevant_chunk_counter, score_record, score_result, skipped_record
from app.service import AnswerResult, Turn
from app.settings import PROJECT_ROOT, Settings
from index.sources import Article

REPORTS_DIR = PROJECT_ROOT / "eval" / "reports"


@dataclass
class Run:
    folder: Path
    summary: dict
    records: list[dict]


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def eval_data_dir(settings: Settings, dataset: Dataset) -> Path:
    """A data folder of its own per dataset and embedding/chunking setup, reused across runs
    (the indexer is incremental) and never mixed with the user's index."""
    key = json.dumps([dataset.fingerprint(), settings.embed_model, settings.chunk_size,
                      settings.store])
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return settings.data_dir / f"eval-{dataset.name}-{digest}"


def git_state() -> dict:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def llm_description(settings: Settings, backend_name: str) -> dict:
    from index import models

    info: dict = {"backend": backend_name}
    if backend_name == "local":
        if settings.llm_model_path:
            path = Path(settings.llm_model_path)
            info.update(model=path.name, sha256=models.sha256_file(path))
        else:
            spec = models.SPECS[models.QWEN_CODER_GGUF]
            info.update(model=spec.filename, sha256=spec.sha256[spec.main_file])
    elif backend_name in ("openai", "ollama"):
        info.update(model=settings.llm_model, base_url=settings.llm_base_url)
    return info


def _relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def resolve_run(ref: str, reports_dir: Path = REPORTS_DIR) -> Path:
    """summary.json of a run given by id (under reports_dir), folder or file path."""
    for candidate in (Path(ref), Path(ref) / "summary.json", reports_dir / ref / "summary.json"):
        if candidate.is_file():
            return candidate
    raise EvalError(f"no run {ref!r}: give a run id under {reports_dir} or a run folder")


def index_dataset(service, dataset: Dataset, progress: bool, log: Callable[[str], object]):
    """Bring the eval's own index in line with the dataset's articles. The folder is the
    eval's alone, so an index built with another model is simply rebuilt."""
    from index.storage import IndexMismatchError

    log(f"indexing {_relative(dataset.articles)} into {service.settings.data_dir}")
    try:
        return service.index([dataset.articles], progress=progress, log=log)
    except IndexMismatchError as exc:
        log(f"rebuilding the eval index: {exc}")
        return service.index([dataset.articles], rebuild=True, progress=progress, log=log)


def sampled(questions: list[EvalQuestion], per_language: int, seed: int) -> list[EvalQuestion]:
    """A seeded random sample of `per_language` standalone questions in each language (a
    follow-up needs its chain), in file order."""
    chosen: set[str] = set()
    rng = random.Random(seed)
    for lang in sorted({q.lang for q in questions}):
        pool = [q.id for q in questions if q.lang == lang and not q.follow_up_of]
        chosen.update(rng.sample(pool, min(per_language, len(pool))))
    return [q for q in questions if q.id in chosen]


def load_checked_questions(dataset: Dataset, articles: dict[str, Article], limit: int | None,
                           max_chars: int, sample: int | None = None,
                           seed: int = 0) -> list[EvalQuestion]:
    """The first `limit` questions in file order (or a random `sample` per language),
    skipped ones included (they count)."""
    questions = dataset.load_questions(articles)
    questions = sampled(questions, sample, seed) if sample else questions
    questions = questions[:limit] if limit else questions
    if not any(not q.skipped for q in questions):
        reasons = Counter(q.skipped for q in questions)
        raise EvalError(f"no questions to ask in {dataset.questions_file}"
                        + "".join(f"; {n} skipped: {why}" for why, n in reasons.items()))
    check_follow_ups(questions)
    too_long = [q.id for q in questions if len(q.question) > max_chars]
    if too_long:
        raise EvalError(f"questions longer than max_question_chars ({max_chars}): "
                        f"{', '.join(too_long[:10])}")
    return questions


def skipped_summary(records: list[dict]) -> dict:
    """How many questions were skipped and why, for summary.json."""
    reasons = Counter(r["skipped"] for r in records if r.get("skipped"))
    return {"skipped": sum(reasons.values()), "skipped_reasons": dict(reasons)}


def curves(records: list[dict]) -> dict:
    """hit@k and recall@k for k = 1..K, overall and per language, over the questions asked."""
    every = asked(records)
    groups = {"overall": every, **{lang: [r for r in every if r["lang"] == lang]
                                   for lang in languages_of(every)}}
    return {"hit_curve": {name: hit_curve(rs) for name, rs in groups.items()},
            "recall_curve": {name: recall_curve(rs) for name, rs in groups.items()}}


def evaluate(settings: Settings, dataset: Dataset, *, limit: int | None = None,
             run_id: str | None = None, reports_dir: Path = REPORTS_DIR, embed_model=None,
             progress: bool = True, log: Callable[[str], object] = print,
             unanswerable: str | None = None, sample: int | None = None,
             seed: int = 0) -> Run:
    """Index the dataset's articles in a folder of their own, ask every question, score,
    and write summary.json, questions.jsonl and report.md under reports_dir/run_id.
    With unanswerable="gold-removed" every answerable question is also asked with its gold
    article left out of retrieval, as an unanswerable one."""
    from app.eval.unanswerable import VARIANTS, answerer, gold_removed
    from app.service import SanadService

    started = time.perf_counter()
    created = dt.datetime.now(dt.UTC)
    if run_id is not None and not _RUN_ID.match(run_id):
        raise EvalError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    if unanswerable not in (None, *VARIANTS):
        raise EvalError(f"unanswerable variant {unanswerable!r}: use one of {', '.join(VARIANTS)}")
    service = SanadService(settings.model_copy(
        update={"data_dir": eval_data_dir(settings, dataset)}), embed_model)
    report = index_dataset(service, dataset, progress, log)
    indexed = time.perf_counter()
    searcher = service.searcher()
    questions = load_checked_questions(dataset, searcher.data.articles, limit,
                                       settings.max_question_chars, sample, seed)
    if unanswerable:
        questions = questions + gold_removed(questions)
    backend = service.backend.name  # loads the LLM before the clock of question 1
    records = run_questions(answerer(service, K), questions,
                            relevant_chunk_counter(searcher.data.chunks.values()), progress)
    finished = time.perf_counter()
    manifest = searcher.data.manifest
    summary = {
        "run_id": run_id or f"{created:%Y%m%d-%H%M%S}-{backend}",
        "created": created.isoformat(timespec="seconds"),
        "dataset": {"name": dataset.name, "kind": dataset.kind, "path": _relative(dataset.root),
                    "questions_file": _relative(dataset.questions_file),
                    "articles": _relative(dataset.articles),
                    "questions": len(asked(records)), **skipped_summary(records),
                    "limit": limit, "sample": sample and {"per_language": sample, "seed": seed},
                    "unanswerable": unanswerable},
        "backend": backend,
        "models": {"embedding": manifest.model,
                   "llm": llm_description(service.settings, backend)},
        "index": {"data_dir": str(service.settings.data_dir), "generation": manifest.generation,
                  "articles": len(manifest.articles), "chunks": manifest.chunk_count,
                  "chunks_embedded_now": report.chunks_embedded},
        "git": git_state(),
        "k": K,
        "seconds": {"index": round(indexed - started, 1),
                    "questions": round(finished - indexed, 1),
                    "total": round(finished - started, 1)},
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "settings": service.settings.model_dump(mode="json", exclude={"llm_api_key"}),
        "metrics": summarize(records),
        **curves(records),
    }
    folder = reports_dir / summary["run_id"]
    write_run(folder, summary, records)
    return Run(folder, summary, records)


def write_run(folder: Path, summary: dict, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n",
                                         encoding="utf-8")
    with (folder / "questions.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    write_report(folder, summary, records)


def run_questions(answer: Callable[[EvalQuestion, list[Turn]], AnswerResult],
                  questions: list[EvalQuestion], relevant: Callable[[EvalQuestion], int],
                  progress: bool = True) -> list[dict]:
    """Ask every question in order; a follow-up carries the turns of its chain."""
    from tqdm import tqdm

    turns: dict[str, list[tuple[str, Turn]]] = {}  # id -> its chain, itself included
    records = []
    bar = tqdm(questions, desc="eval", unit="q", disable=not progress, dynamic_ncols=True)
    for q in bar:
        if q.skipped:
            records.append(skipped_record(q))
            continue
        chain = turns.get(q.follow_up_of or "", [])  # none when its question was skipped
        result = answer(q, [turn for _, turn in chain])
        turns[q.id] = [*chain, (q.id, Turn(q.question, result.answer))]
        records.append(score_result(q, result, relevant(q), [qid for qid, _ in chain]))
        bar.set_postfix(lang=q.lang, refused=result.refused)
    return records


def rescore(ref: str, reports_dir: Path = REPORTS_DIR, run_id: str | None = None,
            questions_file: Path | None = None) -> Run:
    """Score a stored run again with this code's rules, without asking anything.

    The records' raw fields (the answers, passages and checks the service returned) are
    judged afresh; with a seed-format `questions_file` (by default the run's own, when it
    is in this checkout) the gold (key facts, answers, spans) is refreshed by question id.
    Written to reports_dir/run_id (default: the run's id + "-rescored"); summary.json keeps
    the run's facts and says what was re-scored, when and by which commit."""
    source = resolve_run(ref, reports_dir).parent
    summary = json.loads((source / "summary.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in
               (source / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line]
    run_id = run_id or f"{summary['run_id']}-rescored"
    if not _RUN_ID.match(run_id):
        raise EvalError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    if questions_file is None and summary["dataset"].get("kind") == "seed":
        candidate = PROJECT_ROOT / summary["dataset"]["questions_file"]
        questions_file = candidate if candidate.is_file() else None
    if questions_file is not None:
        records = refresh_gold(records, questions_file)
    records = [score_record(r) for r in records]
    summary.update({"run_id": run_id, "metrics": summarize(records), **curves(records)})
    summary["dataset"].update(questions=len(asked(records)), **skipped_summary(records))
    summary.pop("skipped_unplaced_gold", None)
    summary["dataset"].pop("skipped_unplaced_gold", None)
    summary["rescored"] = {
        "from": str(_relative(source)), "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_state(), "gold_from": _relative(questions_file) if questions_file else None}
    folder = reports_dir / run_id
    write_run(folder, summary, records)
    return Run(folder, summary, records)


def refresh_gold(records: list[dict], questions_file: Path) -> list[dict]:
    """The records with the gold of the current seed question set (matched by id)."""
    from app.eval.datasets import read_jsonl, seed_question

    gold = {q.id: q for q in (seed_question(row, n) for n, row in
                              enumerate(read_jsonl(questions_file), start=1))}
    missing = [r["id"] for r in records if r["id"] not in gold]
    if missing:
        raise EvalError(f"{questions_file} has no question {', '.join(missing[:5])}")
    return [{**r, "answerable": gold[r["id"]].answerable, "article_id": gold[r["id"]].article_id,
             "gold_spans": gold[r["id"]].gold_spans,
             "key_facts": gold[r["id"]].key_facts if gold[r["id"]].answerable else [],
             "gold_answers": gold[r["id"]].answers} for r in records]
