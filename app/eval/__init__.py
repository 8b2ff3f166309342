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

Modules, in the order a run uses them: `datasets` (question sets), `matching` (answer vs
gold), `scoring` (one answer → one record), `metrics` (records → numbers), `run` (a whole
run and its folder), `report` (report.md and plots), `tables` (the terminal tables).
"""

from app.eval.datasets import Dataset, EvalError, load_dataset
from app.eval.run import REPORTS_DIR, Run, evaluate, resolve_run

__all__ = ["REPORTS_DIR", "Dataset", "EvalError", "Run", "evaluate", "load_dataset",
           "resolve_run"]
