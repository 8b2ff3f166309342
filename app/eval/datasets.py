"""Question sets: the seed set (gold spans as offsets) and SQuAD/ARCD-style folders (gold
passages placed in the indexed articles)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from app.settings import PROJECT_ROOT
from index.sources import Article

SEED_QUESTIONS = PROJECT_ROOT / "eval" / "questions.jsonl"
SEED_ARTICLES = PROJECT_ROOT / "seeds"
LANGUAGES = ("en", "ar")


class EvalError(ValueError):
    """A dataset or run that cannot be evaluated; the message says what to fix."""


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
    skipped: str = ""  # why it cannot be asked (its gold could not be placed), or ""
    exclude_article: str | None = None  # asked with this article left out of retrieval
    # Every gold answer text, in any language: a passage holding one answers the question.
    gold_texts: list[str] = field(default_factory=list)
    exclude_answers: list[str] = field(default_factory=list)  # passages holding these left out


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

    def load_questions(self, articles: dict[str, Article]) -> list[EvalQuestion]:
        """The questions in file order; those whose gold cannot be placed say why in
        `skipped` (a seed question that does not fit its article is an error instead)."""
        rows = read_jsonl(self.questions_file)
        if self.kind == "arcd":
            return arcd_questions(self.root, articles, rows)
        questions = [seed_question(row, n) for n, row in enumerate(rows, start=1)]
        check_gold(questions, articles)
        return questions


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
        gold_texts=[answer] if answer else [], follow_up_of=row.get("follow_up_of"), type=row.get("type", ""),
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


def passage_text(raw: str) -> str:
    """A gold passage as it can occur in an article: without byte-order marks (the indexer
    drops the one a file starts with, and a paragraph copied from such a file keeps it)
    and surrounding white space."""
    return raw.replace("\ufeff", "").strip()


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
                text = passage_text(passages.get(pid, ""))
                at = article.text.find(text, cursor) if text else -1
                if at < 0 and text:
                    at = article.text.find(text)
                if at >= 0:
                    spans[pid] = (aid, at, at + len(text))
                    cursor = at + len(text)
    for pid, raw in passages.items():
        text = passage_text(raw)
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
                   ) -> list[EvalQuestion]:
    """One question per language field present (question_ar, question_en), gold from the
    passage's span; a question whose passage cannot be placed is kept with the reason in
    `skipped`, so that the run counts it."""
    passages = {p["id"]: p["text"] for p in read_jsonl(root / "passages.jsonl")}
    spans = passage_spans(passages, articles, _article_order(root))
    rows = read_jsonl(root / "questions.jsonl") if rows is None else rows
    questions = []
    for row in rows:
        pid = row.get("passage_id")
        for lang in LANGUAGES:
            text = (row.get(f"question_{lang}") or "").strip()
            if not text:
                continue
            aid, start, end = spans.get(pid, (None, 0, 0))
            skipped = ("" if aid else "its passage is not in passages.jsonl" if pid not in passages
                       else "its passage is empty" if not passage_text(passages[pid])
                       else "its passage is in no indexed article")
            questions.append(EvalQuestion(
                id=f"{row['id']}-{lang}", lang=lang, question=text, answerable=True,
                article_id=aid, gold_spans=[[start, end]] if aid else [],
                answers=list(row.get(f"answers_{lang}") or []), type="factoid",
                gold_texts=[a for code in LANGUAGES for a in row.get(f"answers_{code}") or []],
                skipped=skipped))
    return questions


def check_follow_ups(questions: list[EvalQuestion]) -> None:
    seen: set[str] = set()
    for q in questions:
        if q.follow_up_of and q.follow_up_of not in seen:
            raise EvalError(f"{q.id} follows up {q.follow_up_of!r}, which is not an earlier question")
        seen.add(q.id)
