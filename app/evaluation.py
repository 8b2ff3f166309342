"""Evaluation: ask a question set through the answer service and score what came back.

Every question goes through `SanadService.answer`, the same path the CLI and chat take,
so the numbers describe what a user gets. Scored per question language and overall:

- retrieval: recall@k, MRR@10, nDCG@10 (a retrieved chunk hits when it is in the gold
  article and overlaps a gold span);
- citations: precision and recall against the gold spans, out-of-range markers removed,
  share of answer sentences without lexical support;
- answers: key-fact recall, SQuAD-style exact match and token F1 with Arabic normalisation;
- refusals: precision and recall with "refused" as the positive class;
- latency: p50/p95 of retrieval, first token and total time.

The metrics are small pure functions over the per-question records (plain dicts, the
lines of the run's questions.jsonl), so they are unit-tested on hand-made cases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import subprocess
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.answering.checks import MIN_SUPPORT
from app.service import AnswerResult, Turn
from app.settings import PROJECT_ROOT, Settings
from index.sources import Article
from index.text import AR_CLITICS_PATTERN, CITATION_MARKERS, normalize, script_of

K = 10  # depth of retrieval asked for, so that recall@10 is meaningful
SEED_QUESTIONS = PROJECT_ROOT / "eval" / "questions.jsonl"
SEED_ARTICLES = PROJECT_ROOT / "seeds"
REPORTS_DIR = PROJECT_ROOT / "eval" / "reports"
LANGUAGES = ("en", "ar")


class EvalError(ValueError):
    """A dataset or run that cannot be evaluated; the message says what to fix."""


# ---------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------
@dataclass
class EvalQuestion:
    id: str
    lang: str
    question: str
    answerable: bool
    article_id: str | None = None
    gold_spans: list[list[int]] = field(default_factory=list)
    key_facts: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # gold answer texts, for EM/F1
    follow_up_of: str | None = None
    type: str = ""


@dataclass
class Dataset:
    """Articles to index and the questions about them, in one of two formats.

    "seed": questions.jsonl with gold spans as character offsets (eval/README.md);
    "arcd": passages.jsonl plus questions.jsonl naming a gold passage, which is mapped to
    its span in the indexed article.
    """

    name: str
    kind: str
    articles: Path
    questions_file: Path
    root: Path

    def fingerprint(self) -> str:
        return hashlib.sha256(str(self.articles.resolve()).encode()).hexdigest()[:10]

    def load_questions(self, articles: dict[str, Article]) -> tuple[list[EvalQuestion], int]:
        """(questions, how many were skipped because their gold could not be placed)."""
        rows = read_jsonl(self.questions_file)
        if self.kind == "arcd":
            return arcd_questions(self.root, articles, rows)
        questions = [seed_question(row, n) for n, row in enumerate(rows, start=1)]
        check_gold(questions, articles)
        return questions, 0


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise EvalError(f"{path}, line {n}: not JSON ({exc})") from None
    return rows


def load_dataset(path: Path | None) -> Dataset:
    """The seed set (eval/questions.jsonl over seeds/) or a dataset folder."""
    if path is None:
        if not SEED_QUESTIONS.is_file():
            raise EvalError(f"the seed questions are not at {SEED_QUESTIONS}; pass --dataset DIR")
        return Dataset("seeds", "seed", SEED_ARTICLES, SEED_QUESTIONS, SEED_QUESTIONS.parent)
    path = path.expanduser().resolve()
    questions, articles = path / "questions.jsonl", path / "articles"
    if not questions.is_file() or not articles.is_dir():
        raise EvalError(f"{path} is not a dataset: it needs articles/ and questions.jsonl "
                        "(and passages.jsonl for gold passages); see eval/README.md")
    kind = "arcd" if (path / "passages.jsonl").is_file() else "seed"
    return Dataset(path.name, kind, articles, questions, path)


def seed_question(row: dict, line: int) -> EvalQuestion:
    if not str(row.get("question", "")).strip() or not row.get("id"):
        raise EvalError(f"question on line {line} needs an id and a question")
    spans = row.get("gold_spans") or []
    answer = row.get("answer") or ""
    return EvalQuestion(
        id=str(row["id"]), lang=row.get("lang") or _language(row["question"]),
        question=row["question"], answerable=bool(row.get("answerable", bool(spans))),
        article_id=row.get("article_id"), gold_spans=[list(s) for s in spans],
        key_facts=list(row.get("key_facts") or []), answers=[answer] if answer else [],
        follow_up_of=row.get("follow_up_of"), type=row.get("type", ""),
    )


def _language(text: str) -> str:
    from app.language import detect_language

    return detect_language(text)


def check_gold(questions: list[EvalQuestion], articles: dict[str, Article]) -> None:
    """Every answerable question's gold spans must lie in an indexed article."""
    problems = []
    for q in questions:
        if not q.answerable:
            continue
        article = articles.get(q.article_id or "")
        if article is None:
            problems.append(f"{q.id}: article {q.article_id!r} is not among the indexed articles")
            continue
        if not q.gold_spans:
            problems.append(f"{q.id}: answerable but has no gold_spans")
        for start, end in q.gold_spans:
            if not 0 <= start < end <= len(article.text):
                problems.append(f"{q.id}: span [{start}, {end}] is outside {q.article_id}")
    if problems:
        raise EvalError("the questions do not fit the articles: " + "; ".join(problems[:10]))


def passage_spans(passages: dict[str, str], articles: dict[str, Article],
                  order: dict[str, list[str]] | None = None) -> dict[str, tuple[str, int, int]]:
    """Where each gold passage sits in the indexed articles: (article id, start, end).

    With `order` (article id -> its passage ids in reading order, from articles.jsonl) each
    passage is looked for after the previous one, so a paragraph that repeats lands in its
    own place; without it, every article is searched and the first that holds it wins.
    """
    spans: dict[str, tuple[str, int, int]] = {}
    if order:
        for aid, pids in order.items():
            article = articles.get(aid)
            if article is None:
                continue
            cursor = 0
            for pid in pids:
                text = passages.get(pid, "").strip()
                at = article.text.find(text, cursor) if text else -1
                if at < 0 and text:
                    at = article.text.find(text)
                if at >= 0:
                    spans[pid] = (aid, at, at + len(text))
                    cursor = at + len(text)
    for pid, raw in passages.items():
        text = raw.strip()
        if pid in spans or not text:
            continue
        for aid, article in articles.items():
            at = article.text.find(text)
            if at >= 0:
                spans[pid] = (aid, at, at + len(text))
                break
    return spans


def _article_order(root: Path) -> dict[str, list[str]] | None:
    from index.sources import article_id_for

    meta = root / "articles.jsonl"
    if not meta.is_file():
        return None
    return {article_id_for(Path(m["file"])): m["passage_ids"] for m in read_jsonl(meta)}


def arcd_questions(root: Path, articles: dict[str, Article], rows: list[dict] | None = None
                   ) -> tuple[list[EvalQuestion], int]:
    """One question per language field present (question_ar, question_en), gold from the
    passage's span; questions whose passage is in no indexed article are skipped."""
    passages = {p["id"]: p["text"] for p in read_jsonl(root / "passages.jsonl")}
    spans = passage_spans(passages, articles, _article_order(root))
    rows = read_jsonl(root / "questions.jsonl") if rows is None else rows
    questions, skipped = [], 0
    for row in rows:
        for lang in LANGUAGES:
            text = (row.get(f"question_{lang}") or "").strip()
            if not text:
                continue
            if row.get("passage_id") not in spans:
                skipped += 1
                continue
            aid, start, end = spans[row["passage_id"]]
            questions.append(EvalQuestion(
                id=f"{row['id']}-{lang}", lang=lang, question=text, answerable=True,
                article_id=aid, gold_spans=[[start, end]],
                answers=list(row.get(f"answers_{lang}") or []), type="factoid"))
    return questions, skipped


def check_follow_ups(questions: list[EvalQuestion]) -> None:
    seen: set[str] = set()
    for q in questions:
        if q.follow_up_of and q.follow_up_of not in seen:
            raise EvalError(f"{q.id} follows up {q.follow_up_of!r}, which is not an earlier question")
        seen.add(q.id)


# ---------------------------------------------------------------------------------------
# Matching and normalisation
# ---------------------------------------------------------------------------------------
_EN_ARTICLES = {"a", "an", "the"}


def overlaps(article_id: str, start: int, end: int, gold_article: str | None,
             gold_spans: Iterable[Iterable[int]]) -> bool:
    """A passage hits when it is in the gold article and its [start, end) meets a gold span."""
    return article_id == gold_article and any(start < g_end and g_start < end
                                              for g_start, g_end in gold_spans)


def strip_markers(text: str) -> str:
    return CITATION_MARKERS.sub("", text)


def key_fact_found(fact: str, text: str) -> bool:
    """Whether `fact` occurs in `text` after normalisation, starting at a word.

    Arabic facts may follow clitics (و ف ب ل ك ال), as "فنزويلي" in "الفنزويليين"; a fact of
    one or two characters ("No", "لا") must be a whole word, so "no" is not found in "not".
    """
    fact_norm = " ".join(normalize(fact).split())
    if not fact_norm:
        return False
    prefix = AR_CLITICS_PATTERN if script_of(fact_norm) == "arabic" else ""
    suffix = r"(?!\w)" if len(fact_norm) <= 2 else ""
    pattern = rf"(?<!\w){prefix}{re.escape(fact_norm)}{suffix}"
    return re.search(pattern, " ".join(normalize(strip_markers(text)).split())) is not None


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation that also folds Arabic spelling variants.

    Citation markers, punctuation and symbols go; case, diacritics, tatweel, alef forms, ى/ي
    and Arabic-Indic digits are folded (index.text.normalize); English articles and the
    Arabic article ال at the start of a word are dropped.
    """
    text = normalize(strip_markers(text))
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    words = []
    for word in text.split():
        if word in _EN_ARTICLES:
            continue
        if word.startswith("ال") and len(word) >= 4:
            word = word[2:]
        words.append(word)
    return " ".join(words)


def exact_match(prediction: str, golds: list[str]) -> float | None:
    if not golds:
        return None
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1(prediction: list[str], gold: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(gold)).values())
    if not prediction or not gold or common == 0:
        return float(prediction == gold)
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: list[str]) -> float | None:
    """Token F1 against the best-matching gold answer (None when there is none)."""
    if not golds:
        return None
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(g).split()) for g in golds)


# ---------------------------------------------------------------------------------------
# Metrics over per-question records
# ---------------------------------------------------------------------------------------
def first_hit_rank(hits: list[bool]) -> int | None:
    return next((rank for rank, hit in enumerate(hits, start=1) if hit), None)


def recall_at_k(ranks: list[int | None], k: int) -> float | None:
    """Share of questions whose first hit is within the top k."""
    if not ranks:
        return None
    return sum(r is not None and r <= k for r in ranks) / len(ranks)


def mrr_at_k(ranks: list[int | None], k: int = K) -> float | None:
    if not ranks:
        return None
    return sum(1 / r for r in ranks if r is not None and r <= k) / len(ranks)


def ndcg_at_k(hits: list[bool], relevant: int, k: int = K) -> float:
    """Binary-relevance nDCG: `relevant` is how many chunks of the index hit the gold."""
    dcg = sum(1 / math.log2(rank + 1) for rank, hit in enumerate(hits[:k], start=1) if hit)
    ideal_count = min(max(relevant, sum(hits[:k]), 1), k)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, ideal_count + 1))
    return dcg / ideal


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def refusal_confusion(records: list[dict]) -> dict[str, int]:
    """Refused is the positive class; an unanswerable question is a true positive case."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for r in records:
        if r["refused"]:
            counts["tp" if not r["answerable"] else "fp"] += 1
        else:
            counts["fn" if not r["answerable"] else "tn"] += 1
    return counts


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def retrieval_metrics(records: list[dict], k: int = K) -> dict:
    gold = [r for r in records if r["answerable"] and r.get("gold_spans")]
    ranks = [first_hit_rank([p["hit"] for p in r["retrieved"]]) for r in gold]
    return {
        "recall@1": recall_at_k(ranks, 1), "recall@5": recall_at_k(ranks, 5),
        "recall@10": recall_at_k(ranks, 10), "mrr@10": mrr_at_k(ranks, k),
        "ndcg@10": mean(ndcg_at_k([p["hit"] for p in r["retrieved"]], r["relevant_chunks"], k)
                        for r in gold) if gold else None,
    }


def recall_curve(records: list[dict], k: int = K) -> list[float | None]:
    gold = [r for r in records if r["answerable"] and r.get("gold_spans")]
    ranks = [first_hit_rank([p["hit"] for p in r["retrieved"]]) for r in gold]
    return [recall_at_k(ranks, i) for i in range(1, k + 1)]


def citation_metrics(records: list[dict]) -> dict:
    """Precision over every passage cited for answerable questions; recall: share of
    answerable questions with at least one cited passage on the gold."""
    gold = [r for r in records if r["answerable"] and r.get("gold_spans")]
    cited = [c["hit"] for r in gold for c in r["cited"]]
    sentences = [s for r in records if not r["refused"] for s in r["sentences"]]
    unsupported = [s for s in sentences
                   if s["support"] is None or s["support"] < MIN_SUPPORT]
    return {
        "citation_precision": _ratio(sum(cited), len(cited)),
        "citation_recall": _ratio(sum(any(c["hit"] for c in r["cited"]) for r in gold),
                                  len(gold)),
        "out_of_range_markers": sum(r["removed_markers"] for r in records),
        "unsupported_sentence_share": _ratio(len(unsupported), len(sentences)),
    }


def answer_metrics(records: list[dict]) -> dict:
    with_facts = [r for r in records if r["answerable"] and r["key_facts"]]
    return {
        "key_fact_recall": mean(len(r["key_facts_found"]) / len(r["key_facts"])
                                for r in with_facts) if with_facts else None,
        "exact_match": mean(r["exact_match"] for r in records if r["answerable"]),
        "f1": mean(r["f1"] for r in records if r["answerable"]),
    }


def refusal_metrics(records: list[dict]) -> dict:
    """Precision and recall only apply when some questions are unanswerable."""
    c = refusal_confusion(records)
    applies = c["tp"] + c["fn"] > 0
    answerable = c["fp"] + c["tn"]
    return {
        "refusal_precision": _ratio(c["tp"], c["tp"] + c["fp"]) if applies else None,
        "refusal_recall": _ratio(c["tp"], c["tp"] + c["fn"]) if applies else None,
        "false_refusal_rate": _ratio(c["fp"], answerable),
    }


def latency_metrics(records: list[dict]) -> dict:
    out = {}
    for stage in ("retrieval", "first_token", "total"):
        values = [r["timings"][f"{stage}_ms"] for r in records
                  if r["timings"].get(f"{stage}_ms") is not None]
        out[f"latency_{stage}_p50_ms"] = percentile(values, 50)
        out[f"latency_{stage}_p95_ms"] = percentile(values, 95)
    return out


def group_metrics(records: list[dict]) -> dict:
    answerable = sum(r["answerable"] for r in records)
    return {"questions": len(records), "answerable": answerable,
            "unanswerable": len(records) - answerable,
            **retrieval_metrics(records), **citation_metrics(records),
            **answer_metrics(records), **refusal_metrics(records), **latency_metrics(records)}


def languages_of(records: list[dict]) -> list[str]:
    """The question languages present, English and Arabic first."""
    order = {lang: i for i, lang in enumerate(LANGUAGES)}
    return sorted({r["lang"] for r in records}, key=lambda x: (order.get(x, len(order)), x))


def summarize(records: list[dict]) -> dict[str, dict]:
    """Metrics overall and for each question language present."""
    groups = {"overall": records}
    for lang in languages_of(records):
        groups[lang] = [r for r in records if r["lang"] == lang]
    return {name: group_metrics(rs) for name, rs in groups.items()}


def threshold_sweep(records: list[dict], thresholds: Iterable[float]) -> list[dict]:
    """Refusal precision/recall had the service refused exactly when its best evidence
    sentence scores below t (its score rule alone), for calibrating refuse_below_en/_ar."""
    rows = []
    for t in thresholds:
        simulated = [{"answerable": r["answerable"],
                      "refused": r["top_evidence_score"] is None or r["top_evidence_score"] < t}
                     for r in records]
        rows.append({"threshold": t, **refusal_metrics(simulated)})
    return rows


# The metrics shown in tables, in order; latencies and counts where smaller is better.
TABLE_METRICS = [
    "questions", "answerable", "unanswerable",
    "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10",
    "citation_precision", "citation_recall", "out_of_range_markers", "unsupported_sentence_share",
    "key_fact_recall", "exact_match", "f1",
    "refusal_precision", "refusal_recall", "false_refusal_rate",
    "latency_retrieval_p50_ms", "latency_retrieval_p95_ms", "latency_first_token_p50_ms",
    "latency_first_token_p95_ms", "latency_total_p50_ms", "latency_total_p95_ms",
]
LOWER_IS_BETTER = {"out_of_range_markers", "unsupported_sentence_share", "false_refusal_rate"}


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.startswith("latency_")


def format_value(metric: str, value) -> str:
    if value is None:
        return "—"
    if metric.startswith("latency_"):
        return f"{value:,.0f}"
    if isinstance(value, int) or metric in {"questions", "answerable", "unanswerable"}:
        return str(int(value))
    return f"{value:.3f}"


# ---------------------------------------------------------------------------------------
# Scoring one answer
# ---------------------------------------------------------------------------------------
def _boilerplate() -> list[str]:
    from app import prompts

    return [prompts.message(key, lang) for key in ("evidence_intro", "yesno_basis")
            for lang in LANGUAGES]


def without_boilerplate(text: str) -> str:
    """The text without citation markers and the fixed phrases the service adds."""
    for phrase in _boilerplate():
        text = text.replace(phrase, " ")
    return " ".join(strip_markers(text).split())


def scored_text(result: AnswerResult, lang: str) -> str:
    """The text EM/F1 judge: the translation when the answer came in the articles'
    language with one into the question's language, else the answer."""
    if result.refused:
        return ""
    text = result.answer
    if result.translation and result.translation.get("lang") == lang:
        text = result.translation["text"]
    return without_boilerplate(text)


def score_result(q: EvalQuestion, result: AnswerResult, relevant_chunks: int,
                 history: list[str]) -> dict:
    """One line of the run's questions.jsonl: what was asked, got, and how it scores."""
    retrieved = [{"rank": rank, "article_id": p.article_id, "paragraph": p.paragraph,
                  "start": p.start, "end": p.end, "score": p.score,
                  "hit": overlaps(p.article_id, p.start, p.end, q.article_id, q.gold_spans),
                  "text": p.text[:300]}
                 for rank, p in enumerate(result.retrieved, start=1)]
    cited_numbers = sorted({n for s in result.sentences for n in s.citations})
    cited = [{"n": n, "article_id": p.article_id, "start": p.start, "end": p.end,
              "hit": overlaps(p.article_id, p.start, p.end, q.article_id, q.gold_spans)}
             for n in cited_numbers if 1 <= n <= len(result.passages)
             for p in [result.passages[n - 1]]]
    translation = (result.translation or {}).get("text", "")
    facts_in = "" if result.refused else without_boilerplate(f"{result.answer}\n{translation}")
    text = scored_text(result, q.lang)
    return {
        "id": q.id, "lang": q.lang, "type": q.type, "question": q.question,
        "follow_up_of": q.follow_up_of, "history": history,
        "standalone_question": result.standalone_question,
        "answerable": q.answerable, "article_id": q.article_id, "gold_spans": q.gold_spans,
        "refused": result.refused, "refusal_reason": result.refusal_reason, "mode": result.mode,
        "answer": result.answer, "translation": translation or None,
        "top_evidence_score": result.passages[0].score if result.passages else None,
        "retrieved": retrieved, "relevant_chunks": relevant_chunks,
        "first_hit_rank": first_hit_rank([p["hit"] for p in retrieved]),
        "cited": cited,
        "sentences": [{"text": s.text, "citations": s.citations, "support": s.support}
                      for s in result.sentences],
        "removed_markers": result.removed_markers, "dropped": len(result.dropped),
        "key_facts": q.key_facts if q.answerable else [],
        "key_facts_found": [f for f in q.key_facts if q.answerable and facts_in
                            and key_fact_found(f, facts_in)],
        "gold_answers": q.answers, "scored_text": text,
        "exact_match": exact_match(text, q.answers) if q.answerable else None,
        "f1": token_f1(text, q.answers) if q.answerable else None,
        "timings": dict(result.timings),
    }


def relevant_chunk_counter(chunks: Iterable) -> Callable[[EvalQuestion], int]:
    """How many indexed chunks hit a question's gold (the ideal ranking, for nDCG)."""
    by_article: dict[str, list] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.article_id, []).append(chunk)

    def count(q: EvalQuestion) -> int:
        return sum(overlaps(c.article_id, c.start, c.end, q.article_id, q.gold_spans)
                   for c in by_article.get(q.article_id or "", []))

    return count


def run_questions(answer: Callable[[str, list[Turn]], AnswerResult],
                  questions: list[EvalQuestion], relevant: Callable[[EvalQuestion], int],
                  progress: bool = True) -> list[dict]:
    """Ask every question in order; a follow-up carries the turns of its chain."""
    from tqdm import tqdm

    turns: dict[str, list[tuple[str, Turn]]] = {}  # id -> its chain, itself included
    records = []
    bar = tqdm(questions, desc="eval", unit="q", disable=not progress, dynamic_ncols=True)
    for q in bar:
        chain = turns[q.follow_up_of] if q.follow_up_of else []
        result = answer(q.question, [turn for _, turn in chain])
        turns[q.id] = [*chain, (q.id, Turn(q.question, result.answer))]
        records.append(score_result(q, result, relevant(q), [qid for qid, _ in chain]))
        bar.set_postfix(lang=q.lang, refused=result.refused)
    return records


# ---------------------------------------------------------------------------------------
# A whole run
# ---------------------------------------------------------------------------------------
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


def load_checked_questions(dataset: Dataset, articles: dict[str, Article], limit: int | None,
                           max_chars: int) -> tuple[list[EvalQuestion], int]:
    questions, skipped = dataset.load_questions(articles)
    questions = questions[:limit] if limit else questions
    if not questions:
        raise EvalError(f"no questions to ask in {dataset.questions_file}")
    check_follow_ups(questions)
    too_long = [q.id for q in questions if len(q.question) > max_chars]
    if too_long:
        raise EvalError(f"questions longer than max_question_chars ({max_chars}): "
                        f"{', '.join(too_long[:10])}")
    return questions, skipped


def evaluate(settings: Settings, dataset: Dataset, *, limit: int | None = None,
             run_id: str | None = None, reports_dir: Path = REPORTS_DIR, embed_model=None,
             progress: bool = True, log: Callable[[str], object] = print) -> Run:
    """Index the dataset's articles in a folder of their own, ask every question, score,
    and write summary.json, questions.jsonl and report.md under reports_dir/run_id."""
    from app.service import SanadService

    started = time.perf_counter()
    created = dt.datetime.now(dt.UTC)
    if run_id is not None and not _RUN_ID.match(run_id):
        raise EvalError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    service = SanadService(settings.model_copy(
        update={"data_dir": eval_data_dir(settings, dataset)}), embed_model)
    report = index_dataset(service, dataset, progress, log)
    indexed = time.perf_counter()
    searcher = service.searcher()
    questions, skipped = load_checked_questions(dataset, searcher.data.articles, limit,
                                                settings.max_question_chars)
    backend = service.backend.name  # loads the LLM before the clock of question 1
    records = run_questions(lambda text, history: service.answer(text, history, k=K), questions,
                            relevant_chunk_counter(searcher.data.chunks.values()), progress)
    finished = time.perf_counter()
    manifest = searcher.data.manifest
    summary = {
        "run_id": run_id or f"{created:%Y%m%d-%H%M%S}-{backend}",
        "created": created.isoformat(timespec="seconds"),
        "dataset": {"name": dataset.name, "kind": dataset.kind, "path": _relative(dataset.root),
                    "questions_file": _relative(dataset.questions_file),
                    "articles": _relative(dataset.articles), "questions": len(questions),
                    "skipped_unplaced_gold": skipped, "limit": limit},
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
        "recall_curve": {name: recall_curve([r for r in records
                                             if name == "overall" or r["lang"] == name])
                         for name in ["overall", *languages_of(records)]},
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


def compare_rows(a: dict, b: dict) -> list[tuple[str, str, object, object, float | None]]:
    """(group, metric, value in A, value in B, B - A) for every table metric either has."""
    rows = []
    for group in [g for g in ("overall", *LANGUAGES) if g in a["metrics"] or g in b["metrics"]]:
        ma, mb = a["metrics"].get(group, {}), b["metrics"].get(group, {})
        for metric in TABLE_METRICS:
            va, vb = ma.get(metric), mb.get(metric)
            if va is None and vb is None:
                continue
            delta = vb - va if va is not None and vb is not None else None
            rows.append((group, metric, va, vb, delta))
    return rows


# ---------------------------------------------------------------------------------------
# Report: report.md with plots
# ---------------------------------------------------------------------------------------
BAR_METRICS = ["recall@5", "mrr@10", "ndcg@10", "citation_precision", "citation_recall",
               "key_fact_recall", "f1", "refusal_precision", "refusal_recall"]
GROUP_COLOURS = {"overall": "#555555", "en": "#1f77b4", "ar": "#d62728"}


def question_quality(record: dict) -> float:
    """How well one answerable question went, 0..1, to find the worst ones: the mean of
    retrieval hit in the top 5, a cited gold passage, key-fact share and F1."""
    rank = record["first_hit_rank"]
    parts = [float(rank is not None and rank <= 5),
             float(any(c["hit"] for c in record["cited"]))]
    if record["key_facts"]:
        parts.append(len(record["key_facts_found"]) / len(record["key_facts"]))
    if record["f1"] is not None:
        parts.append(record["f1"])
    return sum(parts) / len(parts)


def worst_questions(records: list[dict], n: int = 10) -> list[dict]:
    answerable = [r for r in records if r["answerable"]]
    return sorted(answerable, key=lambda r: (question_quality(r), -(r["first_hit_rank"] or 99))
                  )[:n]


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def metrics_table_md(metrics: dict[str, dict]) -> list[str]:
    groups = list(metrics)
    lines = [f"| metric | {' | '.join(groups)} |", "|---|" + "---:|" * len(groups)]
    for metric in TABLE_METRICS:
        values = [format_value(metric, metrics[g].get(metric)) for g in groups]
        lines.append(f"| {metric} | {' | '.join(values)} |")
    return lines


SWEEP = [round(0.30 + 0.05 * i, 2) for i in range(9)]


def sweep_md(records: list[dict]) -> list[str]:
    """Per language: what the score threshold alone would give (only with unanswerables)."""
    lines = []
    for lang in languages_of(records):
        mine = [r for r in records if r["lang"] == lang]
        if all(r["answerable"] for r in mine):
            continue
        if not lines:
            lines = ["### Refusal by evidence score alone", "",
                     "Had the service refused exactly when its best evidence sentence scores "
                     "below the threshold (settings refuse_below_en / refuse_below_ar), "
                     "ignoring its other refusal rules:", ""]
        lines += [f"| {lang}: threshold | refusal precision | refusal recall | false refusals |",
                  "|---:|---:|---:|---:|"]
        for row in threshold_sweep(mine, SWEEP):
            lines.append(f"| {row['threshold']:.2f} | "
                         + " | ".join(format_value("x", row[m]) for m in (
                             "refusal_precision", "refusal_recall", "false_refusal_rate")) + " |")
        lines.append("")
    return lines


def _retrieved_cell(record: dict, n: int = 3) -> str:
    parts = []
    for p in record["retrieved"][:n]:
        mark = "✓" if p["hit"] else "✗"
        parts.append(f"{mark} {p['article_id']} ¶{p['paragraph']} ({p['score']:.2f}) "
                     f"«{_cell(p['text'], 70)}»")
    return "<br>".join(parts) or "nothing"


def render_report(summary: dict, records: list[dict], images: list[str]) -> str:
    metrics = summary["metrics"]
    llm = summary["models"]["llm"]
    embed = summary["models"]["embedding"]
    git = summary["git"]
    lines = [
        f"# Eval run `{summary['run_id']}`", "",
        f"- dataset: **{summary['dataset']['name']}** ({summary['dataset']['kind']} format, "
        f"{summary['dataset']['questions']} questions, `{summary['dataset']['questions_file']}`)",
        f"- answers by: **{summary['backend']}**"
        + (f" ({llm.get('model')}, sha256 {str(llm.get('sha256'))[:12]}…)"
           if llm.get("sha256") else f" ({llm.get('model')})" if llm.get("model") else ""),
        f"- embedding model: {embed.get('name')} ({embed.get('dim')}-d, "
        f"hash {str(embed.get('hash'))[:12]}…)",
        f"- index: {summary['index']['articles']} articles, {summary['index']['chunks']} chunks; "
        f"retrieval depth k={summary['k']}",
        f"- commit {str(git.get('commit'))[:12]}{' (with uncommitted changes)' if git.get('dirty') else ''}"
        f", {summary['created']}",
        f"- time: {summary['seconds']['total']:.0f} s ({summary['seconds']['index']:.0f} s "
        f"indexing, {summary['seconds']['questions']:.0f} s questions) on "
        f"{summary['machine']['cpus']} cores, load {summary['machine']['load_average'][0]}",
        "", "## Metrics", "", *metrics_table_md(metrics), "",
        "Definitions: eval/README.md. \"—\": does not apply to these questions.", "",
    ]
    confusion = refusal_confusion(records)
    lines += ["Refusals (refused = positive): "
              f"{confusion['tp']} unanswerable refused, {confusion['fn']} unanswerable answered, "
              f"{confusion['fp']} answerable refused, {confusion['tn']} answerable answered.", ""]
    lines += sweep_md(records)
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in images] + [""]
    lines += ["## Worst answerable questions", "",
              "Sorted by the mean of: gold in the top 5, a cited gold passage, key-fact share, F1.",
              "", "| id | question | first hit | F1 | key facts | answer | retrieved (top 3) |",
              "|---|---|---:|---:|---|---|---|"]
    for r in worst_questions(records):
        facts = f"{len(r['key_facts_found'])}/{len(r['key_facts'])}" if r["key_facts"] else "—"
        answer = "(refused) " + r["refusal_reason"] if r["refused"] else r["scored_text"]
        f1 = "—" if r["f1"] is None else f"{r['f1']:.2f}"
        lines.append(f"| {r['id']} | {_cell(r['question'], 90)} | {r['first_hit_rank'] or '—'} | "
                     f"{f1} | {facts} | {_cell(answer)} | {_retrieved_cell(r)} |")
    answered = [r for r in records if not r["answerable"] and not r["refused"]]
    if answered:
        lines += ["", "## Unanswerable questions that were answered", "",
                  "| id | question | best evidence score | answer |", "|---|---|---:|---|"]
        for r in answered:
            score = "—" if r["top_evidence_score"] is None else f"{r['top_evidence_score']:.3f}"
            lines.append(f"| {r['id']} | {_cell(r['question'], 90)} | {score} | "
                         f"{_cell(r['scored_text'])} |")
    return "\n".join(lines) + "\n"


def _plot_recall_curve(plt, summary: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for group, curve in summary["recall_curve"].items():
        if any(v is not None for v in curve):
            ax.plot(range(1, len(curve) + 1), [math.nan if v is None else v for v in curve],
                    marker="o", label=group, color=GROUP_COLOURS.get(group))
    ax.set(xlabel="k", ylabel="recall@k", ylim=(0, 1.02), title="Retrieval recall@k",
           xticks=range(1, summary["k"] + 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")  # the curves run along the top
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_metric_bars(plt, summary: dict, path: Path) -> None:
    groups = list(summary["metrics"])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(groups)
    for i, group in enumerate(groups):
        values = [summary["metrics"][group].get(m) for m in BAR_METRICS]
        xs = [x + i * width for x in range(len(BAR_METRICS))]
        ax.bar(xs, [math.nan if v is None else v for v in values], width, label=group,
               color=GROUP_COLOURS.get(group))
        for x, v in zip(xs, values):
            if v is None:
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks([x + width * (len(groups) - 1) / 2 for x in range(len(BAR_METRICS))],
                  BAR_METRICS, rotation=30, ha="right")
    ax.set(ylim=(0, 1.05), title="Main metrics by question language")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_latency(plt, records: list[dict], path: Path) -> None:
    stages = ("retrieval", "first_token", "total")
    fig, axes = plt.subplots(1, len(stages), figsize=(12, 3.6))
    for ax, stage in zip(axes, stages):
        seconds = {lang: [r["timings"][f"{stage}_ms"] / 1000 for r in records
                          if r["lang"] == lang and r["timings"].get(f"{stage}_ms") is not None]
                   for lang in languages_of(records)}
        every = [v for values in seconds.values() for v in values]
        if not every:
            continue
        # One set of bins for all languages, so the bars line up.
        low, high = min(every), max(every)
        bins = [low + (high - low) * i / 15 for i in range(16)] if high > low else 1
        ax.hist(list(seconds.values()), bins=bins, label=list(seconds), stacked=True,
                color=[GROUP_COLOURS.get(lang) for lang in seconds])
        ax.set(title=f"{stage.replace('_', ' ')} time", xlabel="seconds", ylabel="questions")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(folder: Path, summary: dict, records: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display where evals run
    import matplotlib.pyplot as plt

    images = ["recall_at_k.png", "metrics_by_language.png", "latency.png"]
    _plot_recall_curve(plt, summary, folder / images[0])
    _plot_metric_bars(plt, summary, folder / images[1])
    _plot_latency(plt, records, folder / images[2])
    (folder / "report.md").write_text(render_report(summary, records, images), encoding="utf-8")
