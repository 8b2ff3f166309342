"""Scoring one answer: what was asked, what came back, and how it matches the gold, as one
line of the run's questions.jsonl.

A record is made in two steps: `record_of` keeps what the service returned (raw fields),
`score_record` derives every judgement from those fields and the gold (hits, the scored
text, key facts, EM, F1, what the checks removed). A stored record can therefore be scored
again with newer rules (`app.eval.run.rescore`), or altered and replayed through the gate.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

from app.eval.datasets import LANGUAGES, EvalQuestion
from app.eval.matching import (
    contains_gold,
    exact_match,
    key_fact_found,
    overlaps,
    same_script,
    strip_markers,
    token_f1,
)
from app.eval.metrics import first_hit_rank
from app.service import AnswerResult

# Every fixed phrase of prompts/messages.txt; the service adds them around the articles'
# words, so they are no part of an answer (tests/test_evaluation.py checks the list).
BOILERPLATE_KEYS = ("refusal", "rendering_label", "rendering_withheld", "clauses_withheld",
                    "no_rendering", "evidence_intro", "yesno_basis", "extractive_intro",
                    "articles_say")

# Why the checks removed an answer sentence: the start of each problem the checks write
# (app.answering.checks, the yes/no check) and its short name in the metrics.
DROP_REASONS = [
    (r"no citation", "no_citation"),
    (r"numbers not in the cited text", "number_not_in_source"),
    (r"date not in the cited text", "date_not_in_source"),
    (r"names not in the cited text", "name_not_in_source"),
    (r"only restates the question", "restates_question"),
    (r"only \d+% of its words", "low_support"),
    (r"written in another language", "wrong_language"),
    (r"(?:\d+ )?words not in the cited text|not the cited text's own words", "not_copied"),
    (r"yes/no answer", "yes_no_contradiction"),
]
# Why the answer quotes the evidence instead of the model's words, from `result.mode`.
QUOTE_REASONS = [
    ("quoted: the model found no answer", "model_found_no_answer"),
    ("quoted where the model paraphrased", "paraphrased"),
    ("quoted after failed checks", "all_sentences_failed"),
]


def _boilerplate() -> list[str]:
    from app import prompts

    return [prompts.message(key, lang) for key in BOILERPLATE_KEYS for lang in LANGUAGES]


def without_boilerplate(text: str) -> str:
    """The text without citation markers and the fixed phrases the service adds; line
    breaks are kept (a verdict opens its own line), other runs of white space become one."""
    for phrase in _boilerplate():
        text = text.replace(phrase, " ")
    lines = (" ".join(line.split()) for line in strip_markers(text).splitlines())
    return "\n".join(line for line in lines if line)


def drop_reason(problem: str) -> str:
    return next((name for pattern, name in DROP_REASONS if re.match(pattern, problem)), "other")


def _passage(p, rank_key: str, rank: int) -> dict:
    return {rank_key: rank, "article_id": p.article_id, "paragraph": p.paragraph,
            "start": p.start, "end": p.end, "score": p.score}


def record_of(q: EvalQuestion, result: AnswerResult, relevant_chunks: int,
              history: list[str]) -> dict:
    """What was asked and what the service returned, before any judgement."""
    cited_numbers = sorted({n for s in result.sentences for n in s.citations})
    translation = result.translation or {}
    return {
        "id": q.id, "lang": q.lang, "type": q.type, "question": q.question,
        "follow_up_of": q.follow_up_of, "history": history, "skipped": "",
        "standalone_question": result.standalone_question,
        "answerable": q.answerable, "article_id": q.article_id, "gold_spans": q.gold_spans,
        "key_facts": q.key_facts if q.answerable else [], "gold_answers": q.answers,
        "refused": result.refused, "refusal_reason": result.refusal_reason,
        "refusal_score": result.refusal_score, "mode": result.mode, "answer": result.answer,
        "translation": translation.get("text") or None,
        "translation_lang": translation.get("lang"),
        "renderings_withheld": translation.get("withheld", 0),
        # why each withheld rendering, or clause of one, failed (its words are never kept)
        "rendering_problems": [r["problems"] for r in translation.get("renderings", [])
                               if r["problems"]],
        # each rendering shown, beside the article's words it renders: for reading by hand
        "renderings_shown": [{"source": r["source"], "text": r["text"]}
                             for r in translation.get("renderings", []) if r["text"]],
        "top_evidence_score": result.passages[0].score if result.passages else None,
        "retrieved": [{**_passage(p, "rank", rank), "text": p.text[:300]}
                      for rank, p in enumerate(result.retrieved, start=1)],
        "relevant_chunks": relevant_chunks,
        "evidence": [_passage(p, "n", p.n) for p in result.passages],
        "cited": [{"n": n, "article_id": p.article_id, "start": p.start, "end": p.end}
                  for n in cited_numbers if 1 <= n <= len(result.passages)
                  for p in [result.passages[n - 1]]],
        "sentences": [{"text": s.text, "citations": s.citations, "support": s.support}
                      for s in result.sentences],
        "removed_markers": result.removed_markers,
        "dropped": [{"text": d.get("text", ""), "problems": list(d.get("problems") or [])}
                    for d in result.dropped],
        "corrected_citations": result.corrected_citations,
        "timings": dict(result.timings),
    }


def scored_text(record: dict) -> str:
    """The text EM, F1 and key facts judge: the rendering when the answer came in the
    articles' language with one into the question's language (empty when every rendering
    was withheld: the reader got no answer in their language), else the answer; nothing
    for a refusal."""
    if record["refused"]:
        return ""
    text = record["answer"]
    if record.get("translation_lang") == record["lang"] or (
            record.get("translation") and record.get("translation_lang") is None):
        text = record.get("translation") or ""
    return without_boilerplate(text)


def check_counts(record: dict) -> dict:
    """What the checks removed from this answer: dropped sentences per reason, why the
    evidence was quoted instead of the model's words, names withheld from the translation.
    Records written before these were stored count their drops as "unrecorded" and their
    withheld names as None (unknown)."""
    dropped: Counter = Counter()
    if isinstance(record.get("dropped"), int):
        dropped["unrecorded"] = record["dropped"]
        dropped += Counter()  # no zero counts
    else:
        for sentence in record.get("dropped") or []:
            reasons = {drop_reason(p) for p in sentence["problems"]} or {"other"}
            dropped.update(reasons)
    mode = record.get("mode") or ""
    quoted = [name for phrase, name in QUOTE_REASONS if phrase in mode]
    return {"dropped_sentences": (record["dropped"] if isinstance(record.get("dropped"), int)
                                  else len(record.get("dropped") or [])),
            "dropped": dict(sorted(dropped.items())), "quoted": quoted,
            "renderings_withheld": _renderings_withheld(record)}


def _renderings_withheld(record: dict) -> int | None:
    """Answer parts whose rendering failed its checks; records from before renderings
    count a translation that withheld names as one, and older ones are unknown (None)."""
    if "renderings_withheld" in record:
        return record["renderings_withheld"]
    if "names_withheld" in record:
        return int(bool(record["names_withheld"]))
    return None


def score_record(record: dict) -> dict:
    """The record with every judgement derived afresh from its raw fields and gold."""
    gold = (record.get("article_id"), record.get("gold_spans") or [])

    def hit(p: dict) -> bool:
        return overlaps(p["article_id"], p["start"], p["end"], *gold)

    r = dict(record)
    r["retrieved"] = [{**p, "hit": hit(p)} for p in record.get("retrieved") or []]
    r["first_hit_rank"] = first_hit_rank([p["hit"] for p in r["retrieved"]])
    r["evidence"] = ([{**p, "hit": hit(p)} for p in record["evidence"]]
                     if record.get("evidence") is not None else None)
    r["cited"] = [{**c, "hit": hit(c)} for c in record.get("cited") or []]
    text = scored_text(record)
    scorable = record["answerable"] and same_script(text, record["question"])
    r["scored_text"] = text
    r["scored_in_question_script"] = same_script(text, record["question"])
    r["key_facts_found"] = ([f for f in record["key_facts"] if text and key_fact_found(f, text)]
                            if scorable else None)
    r["exact_match"] = exact_match(text, record["gold_answers"]) if scorable else None
    r["f1"] = token_f1(text, record["gold_answers"]) if scorable else None
    r["contains_gold"] = contains_gold(text, record["gold_answers"]) if scorable else None
    r["checks"] = check_counts(record)
    return r


def score_result(q: EvalQuestion, result: AnswerResult, relevant_chunks: int,
                 history: list[str]) -> dict:
    """One line of the run's questions.jsonl: what was asked, got, and how it scores."""
    return score_record(record_of(q, result, relevant_chunks, history))


def skipped_record(q: EvalQuestion) -> dict:
    """A question that was not asked because its gold could not be placed: kept in the
    run so that it is counted, and scored as a miss in the strict column."""
    return score_record({
        "id": q.id, "lang": q.lang, "type": q.type, "question": q.question,
        "follow_up_of": q.follow_up_of, "history": [], "skipped": q.skipped,
        "answerable": q.answerable, "article_id": q.article_id, "gold_spans": q.gold_spans,
        "key_facts": q.key_facts, "gold_answers": q.answers, "refused": False,
        "refusal_reason": "", "refusal_score": None, "mode": "", "answer": "", "translation": None,
        "renderings_withheld": 0, "retrieved": [], "relevant_chunks": 0, "evidence": [], "cited": [],
        "sentences": [],
        "removed_markers": 0, "dropped": [], "top_evidence_score": None, "timings": {},
    })


def relevant_chunk_counter(chunks: Iterable) -> Callable[[EvalQuestion], int]:
    """How many indexed chunks hit a question's gold (for recall@k and the ideal nDCG)."""
    by_article: dict[str, list] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.article_id, []).append(chunk)

    def count(q: EvalQuestion) -> int:
        return sum(overlaps(c.article_id, c.start, c.end, q.article_id, q.gold_spans)
                   for c in by_article.get(q.article_id or "", []))

    return count
