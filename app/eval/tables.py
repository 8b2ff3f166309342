"""The eval's tables in the terminal: a run's metrics and the comparison of two runs."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.eval.metrics import TABLE_METRICS, compare_rows, format_value, lower_is_better


def print_metrics(out: Console, metrics: dict[str, dict], title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for group in metrics:
        table.add_column(group, justify="right")
    for metric in TABLE_METRICS:
        table.add_row(metric, *(format_value(metric, metrics[g].get(metric)) for g in metrics))
    out.print(table)


def print_comparison(out: Console, path_a: Path, path_b: Path) -> None:
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (path_a, path_b))
    table = Table(title=f"A = {a['run_id']} ({a['backend']}, {a['dataset']['name']})   "
                        f"B = {b['run_id']} ({b['backend']}, {b['dataset']['name']})",
                  title_justify="left")
    for name, justify in [("group", "left"), ("metric", "left"), ("A", "right"), ("B", "right"),
                          ("B − A", "right")]:
        table.add_column(name, justify=justify)
    for group, metric, va, vb, delta in compare_rows(a, b):
        shown = "" if delta is None else format_value(metric, delta)
        if delta:
            better = (delta < 0) == lower_is_better(metric)
            shown = f"[{'green' if better else 'red'}]{'+' if delta > 0 else ''}{shown}[/]"
        table.add_row(group, metric, format_value(metric, va), format_value(metric, vb), shown)
    out.print(table)
    for key in ("embedding", "llm"):
        if a["models"].get(key) != b["models"].get(key):
            out.print(f"{key} model differs: A {a['models'].get(key)}, B {b['models'].get(key)}")


def print_run(out: Console, summary: dict, folder: Path) -> None:
    """The metrics of a finished run, what the checks took out, the skipped questions (in
    yellow: they leave every column but `strict`) and where the report is."""
    dataset = summary["dataset"]
    print_metrics(out, summary["metrics"], f"{summary['run_id']}: {dataset['name']}, "
                                           f"{dataset['questions']} questions asked, answers "
                                           f"by {summary['backend']}")
    out.print("\"—\": does not apply (e.g. answers in another script than the question); "
              "strict: overall with skipped questions as misses")
    checks = summary["metrics"]["overall"]["checks"]
    parts = [f"{kind} {name} {n}" for kind in ("dropped", "quoted")
             for name, n in checks[kind].items()]
    if checks["withheld"]["renderings"]:
        parts.append(f"withheld {checks['withheld']['renderings']} rendering(s) that failed "
                     "their checks")
    if parts:
        out.print("checks: " + ", ".join(parts))
    if dataset.get("skipped"):
        total = dataset["questions"] + dataset["skipped"]
        reasons = "; ".join(f"{n} {why}" for why, n in dataset["skipped_reasons"].items())
        out.print(f"[bold yellow]{dataset['skipped']} of {total} questions skipped[/] "
                  f"(counted as misses in the strict column): {escape(reasons)}")
    seconds = summary["seconds"]
    out.print(f"{seconds['total']:.0f} s ({seconds['index']:.0f} s indexing, "
              f"{seconds['questions']:.0f} s answering); report: {folder / 'report.md'}")
