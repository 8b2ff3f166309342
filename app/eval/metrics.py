"""Metrics over per-question records (the lines of a run's questions.jsonl): small pure
functions, unit-tested on hand-made cases."""

from __future__ import annotations

import math
from collections.abc import Iterable

from app.eval.datasets import LANGUAGES

K = 10  # depth of retrieval asked for, so that recall@10 is meaningful
UNSUPPORTED_BELOW = 0.5  # the citation checker's own threshold (app.citations.MIN_SUPPORT)


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
                   if s["support"] is None or s["support"] < UNSUPPORTED_BELOW]
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
