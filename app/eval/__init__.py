"""Evaluation: ask a question set through the answer service and score what came back.

Every question goes through `SanadService.answer`, the same path the CLI and chat take,
so the numbers describe what a user gets. Scored per question language and overall:

- retrieval: hit@k, recall@k (of all relevant chunks), MRR@10, nDCG@10 (a retrieved chunk
  hits when it is in the gold article and overlaps a gold span);
- citations: precision and recall against the gold spans, out-of-range markers removed,
  and what the answer checks dropped, quoted instead or withheld, per reason;
- answers: key-fact recall, SQuAD-style exact match and token F1 with Arabic
  normalisation, none of them for an answer in another script than its question;
- refusals: precision and recall with "refused" as the positive class;
- latency: p50/p95 of retrieval, first token and total time.

Modules, in the order a run uses them: `datasets` (question sets), `matching` (answer vs
gold), `scoring` (one answer → one record), `metrics` (records → numbers), `run` (a whole
run and its folder, re-scoring a stored run), `report` (report.md and plots), `tables`
(the terminal tables), `gate` (the CI gate's floors).
"""

from app.eval.datasets import Dataset, EvalError, load_dataset
from app.eval.run import REPORTS_DIR, Run, evaluate, rescore, resolve_run

__all__ = ["REPORTS_DIR", "Dataset", "EvalError", "Run", "evaluate", "load_dataset", "rescore",
           "resolve_run"]
