"""report.md with plots, for a run folder."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from app.eval.metrics import (
    ANSWER_SEES,
    TABLE_METRICS,
    asked,
    format_value,
    languages_of,
    refusal_confusion,
    threshold_sweep,
)

BAR_METRICS = ["hit@1", f"hit@{ANSWER_SEES}", f"recall@{ANSWER_SEES}", "mrr@10",
               "citation_precision", "citation_recall", "key_fact_recall", "f1",
               "refusal_precision", "refusal_recall"]
GROUP_COLOURS = {"overall": "#555555", "en": "#1f77b4", "ar": "#d62728", "strict": "#999999"}


def question_quality(record: dict) -> float:
    """How well one answerable question went, 0..1, to find the worst ones: the mean of
    a hit among the chunks the answer sees, a cited gold passage, key-fact share and F1."""
    rank = record["first_hit_rank"]
    parts = [float(rank is not None and rank <= ANSWER_SEES),
             float(any(c["hit"] for c in record["cited"]))]
    if record["key_facts"] and record["key_facts_found"] is not None:
        parts.append(len(record["key_facts_found"]) / len(record["key_facts"]))
    if record["f1"] is not None:
        parts.append(record["f1"])
    return sum(parts) / len(parts)


def worst_questions(records: list[dict], n: int = 10) -> list[dict]:
    answerable = [r for r in asked(records) if r["answerable"]]
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


SWEEP = [round(0.1 * i, 1) for i in range(1, 10)]
CURVE = [round(0.02 * i, 2) for i in range(51)]


def sweep_md(records: list[dict]) -> list[str]:
    """Per language: what the score threshold alone would give (only with unanswerables)."""
    lines = []
    for lang in languages_of(records):
        mine = [r for r in records if r["lang"] == lang]
        if all(r["answerable"] for r in mine):
            continue
        if not lines:
            lines = ["### Refusal by the decision's score alone", "",
                     "Had the service refused exactly when the score its refusal rule decides "
                     "on is below t (p(answerable) for `refusal_rule=model`, the best evidence "
                     "sentence's cosine for `threshold`), ignoring its other rules; the plot "
                     "refusal_curve.png draws the same:", ""]
        lines += [f"| {lang}: threshold | refusal precision | refusal recall | false refusals |",
                  "|---:|---:|---:|---:|"]
        for row in threshold_sweep(mine, SWEEP):
            lines.append(f"| {row['threshold']:.2f} | "
                         + " | ".join(format_value("x", row[m]) for m in (
                             "refusal_precision", "refusal_recall", "false_refusal_rate")) + " |")
        lines.append("")
    return lines


def skipped_md(records: list[dict]) -> list[str]:
    """The questions that were not asked, and why: loud, since they leave every column
    but `strict`."""
    skipped = [r for r in records if r.get("skipped")]
    if not skipped:
        return []
    reasons = Counter(r["skipped"] for r in skipped)
    lines = ["## Skipped questions", "",
             f"**{len(skipped)} of {len(records)} questions were not asked** because their gold "
             "could not be placed in the indexed articles. They are left out of every column "
             "but `strict`, which counts each as a miss (no hit, no citation, F1 0).", ""]
    lines += [f"- {n}: {why}" for why, n in reasons.most_common()]
    shown = ", ".join(r["id"] for r in skipped[:20])
    lines += ["", f"Ids: {shown}{' …' if len(skipped) > 20 else ''}", ""]
    return lines


def checks_md(metrics: dict[str, dict]) -> list[str]:
    """What the answer checks dropped, quoted instead and withheld, per reason and group."""
    groups = [g for g in metrics if g != "strict"]
    rows = []
    for kind in ("dropped", "quoted"):
        names = sorted({name for g in groups for name in metrics[g]["checks"][kind]})
        rows += [(kind, name, [metrics[g]["checks"][kind].get(name, 0) for g in groups])
                 for name in names]
    rows += [("withheld", "answer parts without a reliable rendering",
              [metrics[g]["checks"]["withheld"]["renderings"] for g in groups])]
    lines = ["## What the checks took out", "",
             "Answer sentences the checks dropped (per reason: a sentence with two problems "
             "counts under both), answers that quote the evidence instead of the model's words "
             "(per reason), and names withheld from machine translations.", "",
             f"| what | reason | {' | '.join(groups)} |", "|---|---|" + "---:|" * len(groups)]
    lines += [f"| {kind} | {name} | {' | '.join('—' if v is None else str(v) for v in values)} |"
              for kind, name, values in rows]
    return [*lines, ""]


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
        "Definitions: eval/README.md. \"—\": does not apply to these questions (no gold "
        "text, no key facts, no unanswerable question, nothing cited, or every answer in "
        "another script than its question). `strict`: overall, with skipped questions "
        "counted as misses.", "",
    ]
    if summary.get("rescored"):
        again = summary["rescored"]
        lines[2:2] = [f"- re-scored {again['at']} from `{again['from']}` by commit "
                      f"{str(again['git'].get('commit'))[:12]} (gold: {again['gold_from']}); "
                      "the answers are the original run's"]
    lines += skipped_md(records)
    confusion = refusal_confusion(records)
    lines += ["Refusals (refused = positive): "
              f"{confusion['tp']} unanswerable refused, {confusion['fn']} unanswerable answered, "
              f"{confusion['fp']} answerable refused, {confusion['tn']} answerable answered.", ""]
    lines += checks_md(metrics)
    lines += sweep_md(asked(records))
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in images] + [""]
    lines += ["## Worst answerable questions", "",
              f"Sorted by the mean of: gold in the top {ANSWER_SEES} (what the answer sees), a "
              "cited gold passage, key-fact share, F1 (\"—\": answer in another script).",
              "", "| id | question | first hit | F1 | key facts | answer | retrieved (top 3) |",
              "|---|---|---:|---:|---|---|---|"]
    for r in worst_questions(records):
        facts = (f"{len(r['key_facts_found'])}/{len(r['key_facts'])}"
                 if r["key_facts"] and r["key_facts_found"] is not None else "—")
        answer = "(refused) " + r["refusal_reason"] if r["refused"] else r["scored_text"]
        f1 = "—" if r["f1"] is None else f"{r['f1']:.2f}"
        lines.append(f"| {r['id']} | {_cell(r['question'], 90)} | {r['first_hit_rank'] or '—'} | "
                     f"{f1} | {facts} | {_cell(answer)} | {_retrieved_cell(r)} |")
    answered = [r for r in asked(records) if not r["answerable"] and not r["refused"]]
    if answered:
        lines += ["", "## Unanswerable questions that were answered", "",
                  "| id | question | best evidence score | answer |", "|---|---|---:|---|"]
        for r in answered:
            score = "—" if r["top_evidence_score"] is None else f"{r['top_evidence_score']:.3f}"
            lines.append(f"| {r['id']} | {_cell(r['question'], 90)} | {score} | "
                         f"{_cell(r['scored_text'])} |")
    return "\n".join(lines) + "\n"


def _plot_retrieval_curves(plt, summary: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in [(axes[0], "hit_curve", "hit@k"), (axes[1], "recall_curve", "recall@k")]:
        for group, curve in summary[key].items():
            if any(v is not None for v in curve):
                ax.plot(range(1, len(curve) + 1), [math.nan if v is None else v for v in curve],
                        marker="o", label=group, color=GROUP_COLOURS.get(group))
        ax.axvline(ANSWER_SEES, color="#bbbbbb", linestyle="--", linewidth=1)
        ax.set(xlabel="k", ylabel=label, ylim=(0, 1.02), title=f"Retrieval {label}",
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
        seconds = {lang: [r["timings"][f"{stage}_ms"] / 1000 for r in asked(records)
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


def _plot_refusal_curve(plt, records: list[dict], path: Path) -> bool:
    """Refusal of unanswerable and of answerable questions over the decision's cut, per
    language; False (nothing drawn) without unanswerable questions."""
    langs = [lang for lang in languages_of(records)
             if not all(r["answerable"] for r in records if r["lang"] == lang)]
    if not langs:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for lang in langs:
        sweep = threshold_sweep([r for r in records if r["lang"] == lang], CURVE)
        colour = GROUP_COLOURS.get(lang)
        ax.plot(CURVE, [row["refusal_recall"] for row in sweep], color=colour,
                label=f"{lang}: unanswerable refused")
        ax.plot(CURVE, [row["false_refusal_rate"] for row in sweep], color=colour,
                linestyle="--", label=f"{lang}: answerable refused")
    ax.axhline(0.05, color="grey", linewidth=0.5)
    ax.set(xlabel="refuse below this decision score", ylabel="share refused",
           title="refusal over the decision's score")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(folder: Path, summary: dict, records: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display where evals run
    import matplotlib.pyplot as plt

    images = ["retrieval_at_k.png", "metrics_by_language.png", "latency.png"]
    _plot_retrieval_curves(plt, summary, folder / images[0])
    _plot_metric_bars(plt, summary, folder / images[1])
    _plot_latency(plt, records, folder / images[2])
    if _plot_refusal_curve(plt, asked(records), folder / "refusal_curve.png"):
        images.append("refusal_curve.png")
    (folder / "report.md").write_text(render_report(summary, records, images), encoding="utf-8")
