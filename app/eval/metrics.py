"""Metrics over per-question records (the lines of a run's questions.jsonl): small pure
functions, unit-tested on hand-made cases. Definitions: eval/README.md."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from app.eval.datasets import LANGUAGES

K = 10  # depth of retrieval asked for, so that hit@10 and recall@10 are meaningful
ANSWER_SEES = 3  # the answer picks its evidence from the top 3 chunks (app.answering.evidence)
HIT_AT = (1, ANSWER_SEES, 5, 10)
RECALL_AT = (ANSWER_SEES, 5, 10)


def first_hit_rank(hits: list[bool]) -> int | None:
    return next((rank for rank, hit in enumerate(hits, start=1) if hit), None)


def hit_at_k(ranks: list[int | None], k: int) -> float | None:
    """Share of questions with at least one relevant chunk in the top k (success@k)."""
    if not ranks:
        return None
    return sum(r is not None and r <= k for r in ranks) / len(ranks)


def chunk_recall_at_k(hits: list[bool], relevant: int, k: int) -> float:
    """Share of the relevant chunks (those of the index that meet the gold) found in the
    top k. The ranking's own hits count too, should it hold more than were counted."""
    total = max(relevant, sum(hits))
    return sum(hits[:k]) / total if total else 0.0


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


def asked(records: list[dict]) -> list[dict]:
    """The records of questions that were asked (not skipped)."""
    return [r for r in records if not r.get("skipped")]


def with_gold(records: list[dict]) -> list[dict]:
    """Answerable questions: those asked with gold spans, and the skipped ones (misses)."""
    return [r for r in records if r["answerable"] and (r.get("gold_spans") or r.get("skipped"))]


def refusal_confusion(records: list[dict]) -> dict[str, int]:
    """Refused is the positive class; an unanswerable question is a true positive case."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for r in asked(records):
        if r["refused"]:
            counts["tp" if not r["answerable"] else "fp"] += 1
        else:
            counts["fn" if not r["answerable"] else "tn"] += 1
    return counts


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _hits(record: dict) -> list[bool]:
    return [p["hit"] for p in record["retrieved"]]


def retrieval_metrics(records: list[dict], k: int = K) -> dict:
    gold = with_gold(records)
    ranks = [first_hit_rank(_hits(r)) for r in gold]
    seen = [r for r in gold if r.get("evidence") is not None]
    return {
        **{f"hit@{n}": hit_at_k(ranks, n) for n in HIT_AT},
        **{f"recall@{n}": mean(chunk_recall_at_k(_hits(r), r["relevant_chunks"], n)
                               for r in gold) for n in RECALL_AT},
        "mrr@10": mrr_at_k(ranks, k),
        "ndcg@10": mean(ndcg_at_k(_hits(r), r["relevant_chunks"], k) for r in gold),
        "evidence_hit": _ratio(sum(any(p["hit"] for p in r["evidence"]) for r in seen),
                               len(seen)),
    }


def hit_curve(records: list[dict], k: int = K) -> list[float | None]:
    ranks = [first_hit_rank(_hits(r)) for r in with_gold(records)]
    return [hit_at_k(ranks, i) for i in range(1, k + 1)]


def recall_curve(records: list[dict], k: int = K) -> list[float | None]:
    gold = with_gold(records)
    return [mean(chunk_recall_at_k(_hits(r), r["relevant_chunks"], i) for r in gold)
            for i in range(1, k + 1)]


def citation_metrics(records: list[dict]) -> dict:
    """Precision over every passage cited for answerable questions; recall: share of
    answerable questions with at least one cited passage on the gold."""
    gold = with_gold(records)
    cited = [c["hit"] for r in gold for c in r["cited"]]
    return {
        "citation_precision": _ratio(sum(cited), len(cited)),
        "citation_recall": _ratio(sum(any(c["hit"] for c in r["cited"]) for r in gold),
                                  len(gold)),
        "out_of_range_markers": sum(r["removed_markers"] for r in asked(records)),
    }


def check_metrics(records: list[dict]) -> dict:
    """What the citation, copy, yes/no and translation checks took out of the answers
    (refusals have none): totals for the tables, per reason under "checks"."""
    answered = [r for r in asked(records) if not r["refused"]]
    dropped: Counter = Counter()
    quoted: Counter = Counter()
    for r in answered:
        dropped.update(r["checks"]["dropped"])
        quoted.update(r["checks"]["quoted"])
    # None: a record from before withheld translations were stored
    withheld = [n for r in answered if (n := r["checks"]["renderings_withheld"]) is not None]
    known = bool(withheld) or not answered
    return {
        "dropped_sentences": sum(r["checks"]["dropped_sentences"] for r in answered),
        "quoted_answers": sum(bool(r["checks"]["quoted"]) for r in answered),
        "answers_withholding_renderings": sum(n > 0 for n in withheld) if known else None,
        "checks": {"dropped": dict(sorted(dropped.items())),
                   "quoted": dict(sorted(quoted.items())),
                   "withheld": {"answers": sum(n > 0 for n in withheld) if known else None,
                                "renderings": sum(withheld) if known else None}},
    }


def answer_metrics(records: list[dict]) -> dict:
    """Key facts, EM and F1 over answerable questions where they apply: None (not 0) for
    an answer written in another script than its question, which cannot be judged."""
    gold = with_gold(records)
    with_facts = [r for r in gold if r["key_facts"] and r["key_facts_found"] is not None]
    # What a reader who got an answer got: refusals left out (issue 14 sets its
    # containment bar over the answers given; the refusal metrics judge refusals).
    given = [r for r in gold if not r.get("refused") and not r.get("skipped")]
    return {
        "key_fact_recall": mean(len(r["key_facts_found"]) / len(r["key_facts"])
                                for r in with_facts),
        "exact_match": mean(r["exact_match"] for r in gold),
        "f1": mean(r["f1"] for r in gold),
        "containment": mean(r.get("contains_gold") for r in gold),
        "f1_given": mean(r["f1"] for r in given),
        "containment_given": mean(r.get("contains_gold") for r in given),
        "answers_in_other_script": sum(not r["scored_in_question_script"] for r in gold),
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
    """Every metric over `records`; skipped questions count only where they are misses
    (retrieval, citation recall, EM/F1), never as answered or refused."""
    answerable = sum(r["answerable"] for r in records)
    return {"questions": len(records), "answerable": answerable,
            "unanswerable": len(records) - answerable,
            "skipped": sum(bool(r.get("skipped")) for r in records),
            **retrieval_metrics(records), **citation_metrics(records),
            **check_metrics(records), **answer_metrics(records), **refusal_metrics(records),
            **latency_metrics(records)}


def languages_of(records: list[dict]) -> list[str]:
    """The question languages present, English and Arabic first."""
    order = {lang: i for i, lang in enumerate(LANGUAGES)}
    return sorted({r["lang"] for r in records}, key=lambda x: (order.get(x, len(order)), x))


def summarize(records: list[dict]) -> dict[str, dict]:
    """Metrics overall and for each question language present, over the questions asked
    ("skipped" says how many were not), and `strict`: overall with every skipped question
    counted as a miss."""
    every = asked(records)
    groups = {"overall": every}
    for lang in languages_of(records):
        groups[lang] = [r for r in every if r["lang"] == lang]
    metrics = {name: group_metrics(rs) for name, rs in groups.items()}
    for name, rs in [("overall", records),
                     *((lang, [r for r in records if r["lang"] == lang])
                       for lang in languages_of(records))]:
        metrics[name]["skipped"] = sum(bool(r.get("skipped")) for r in rs)
    metrics["strict"] = group_metrics(records)
    return metrics


def decision_score(record: dict) -> float | None:
    """What the run's refusal rule decided on (p(answerable), or the best evidence cosine);
    records from before it was kept have the cosine only."""
    return record["refusal_score"] if "refusal_score" in record else record["top_evidence_score"]


def threshold_sweep(records: list[dict], thresholds: Iterable[float]) -> list[dict]:
    """Refusal precision/recall had the service refused exactly when its decision score is
    below t (its score alone, without its other rules), for choosing the operating point."""
    rows = []
    for t in thresholds:
        simulated = [{"answerable": r["answerable"],
                      "refused": decision_score(r) is None or decision_score(r) < t}
                     for r in asked(records)]
        rows.append({"threshold": t, **refusal_metrics(simulated)})
    return rows


# The metrics shown in tables, in order; latencies and counts where smaller is better.
TABLE_METRICS = [
    "questions", "answerable", "unanswerable", "skipped",
    *(f"hit@{n}" for n in HIT_AT), *(f"recall@{n}" for n in RECALL_AT), "mrr@10", "ndcg@10",
    "evidence_hit", "citation_precision", "citation_recall", "out_of_range_markers",
    "dropped_sentences", "quoted_answers", "answers_withholding_renderings",
    "key_fact_recall", "exact_match", "f1", "containment", "f1_given", "containment_given",
    "answers_in_other_script",
    "refusal_precision", "refusal_recall", "false_refusal_rate",
    "latency_retrieval_p50_ms", "latency_retrieval_p95_ms", "latency_first_token_p50_ms",
    "latency_first_token_p95_ms", "latency_total_p50_ms", "latency_total_p95_ms",
]
COUNTS = {"questions", "answerable", "unanswerable", "skipped", "out_of_range_markers",
          "dropped_sentences", "quoted_answers", "answers_withholding_renderings",
          "answers_in_other_script"}
LOWER_IS_BETTER = COUNTS - {"questions", "answerable", "unanswerable"} | {"false_refusal_rate"}


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.startswith("latency_")


def format_value(metric: str, value) -> str:
    if value is None:
        return "—"
    if metric.startswith("latency_"):
        return f"{value:,.0f}"
    if isinstance(value, int) or metric in COUNTS:
        return str(int(value))
    return f"{value:.3f}"


def compare_rows(a: dict, b: dict) -> list[tuple[str, str, object, object, float | None]]:
    """(group, metric, value in A, value in B, B - A) for every table metric either has."""
    rows = []
    groups = [g for g in ("overall", *LANGUAGES, "strict") if g in a["metrics"] or g in b["metrics"]]
    for group in groups:
        ma, mb = a["metrics"].get(group, {}), b["metrics"].get(group, {})
        for metric in TABLE_METRICS:
            va, vb = ma.get(metric), mb.get(metric)
            if va is None and vb is None:
                continue
            delta = vb - va if va is not None and vb is not None else None
            rows.append((group, metric, va, vb, delta))
    return rows
