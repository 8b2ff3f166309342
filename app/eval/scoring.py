"""Scoring one answer: what was asked, what came back, and how it matches the gold, as one
line of the run's questions.jsonl."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from app.eval.datasets import LANGUAGES, EvalQuestion
from app.eval.matching import exact_match, key_fact_found, overlaps, strip_markers, token_f1
from app.eval.metrics import first_hit_rank
from app.service import AnswerResult


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
