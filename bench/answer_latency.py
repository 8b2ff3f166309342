"""Answers: retrieval, first-token and total latency with the local LLM, per question language.

Indexes seeds/ into a temporary data folder and asks the seed questions (eval/questions.jsonl,
answerable ones, in their standalone form, English and Arabic) one after another through
`SanadService.answer_stream`, the path `sanad ask` and `sanad chat` take. The timings are the
service's own (retrieval, first streamed token, total; the ones `sanad eval` reports),
summarised with the eval's own latency_metrics. One question is asked first, uncounted, so
that loading the model's pages is not charged to question 1. The English questions are asked
first, then the Arabic ones: an English question and its Arabic twin share their evidence,
and asked one after the other the second would reuse the first's evaluated prompt, which
different users' questions do not (only the system prompt's evaluation carries over).
Refused questions never reach the LLM and are left out of the figures (their count is
printed).

    python bench/answer_latency.py [--threads 1] [--limit 10] [--backend local]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.eval.metrics import latency_metrics  # noqa: E402
from app.service import AnswerResult, SanadService  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import ROOT, machine_load, seed_questions  # noqa: E402

STAGES = ("retrieval", "first_token", "total")


def final_result(service: SanadService, question: str) -> AnswerResult:
    """Consume the stream as a client would; the last item is the verified result."""
    result = None
    for item in service.answer_stream(question):
        result = item
    assert isinstance(result, AnswerResult)
    return result


def print_table(records: list[dict]) -> None:
    header = f"{'questions':10} {'n':>3} " + " ".join(
        f"{stage + ' p50':>15} {'p95':>7}" for stage in STAGES)
    print(header + "   (ms)")
    print("-" * len(header))
    groups = {"all": records, **{lang: [r for r in records if r["lang"] == lang]
                                 for lang in ("en", "ar")}}
    for name, group in groups.items():
        if not group:
            continue
        metrics = latency_metrics(group)
        cells = " ".join(f"{metrics[f'latency_{s}_p50_ms']:15.0f} "
                         f"{metrics[f'latency_{s}_p95_ms']:7.0f}" for s in STAGES)
        print(f"{name:10} {len(group):>3} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local", help="answer backend (default: local)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the models")
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    args = parser.parse_args()
    questions = sorted(seed_questions()[: args.limit], key=lambda q: q["lang"] != "en")
    print(machine_load())
    with tempfile.TemporaryDirectory(prefix="sanad-latency-") as tmp:
        service = SanadService(Settings(data_dir=Path(tmp) / "data", llm_backend=args.backend,
                                        threads=args.threads))
        report = service.index([ROOT / "seeds"], progress=False, log=lambda m: None)
        backend = service.backend.name
        print(f"index: {report.summary()}; answers by {backend}, {args.threads} thread(s)")
        final_result(service, questions[0]["question"])  # warm-up, not counted
        started = time.perf_counter()
        records, refused = [], 0
        for q in questions:
            result = final_result(service, q["question"])
            if result.refused:
                refused += 1
                continue
            records.append({"lang": q["lang"], "timings": result.timings})
            print(f"  {q['id']}: {result.timings['first_token_ms']:.0f} ms to the first token, "
                  f"{result.timings['total_ms']:.0f} ms in all ({result.mode})", flush=True)
        seconds = time.perf_counter() - started
    print(f"{len(questions)} questions in {seconds:.0f} s; {refused} refused (no LLM call, "
          "left out)")
    if records:
        print_table(records)
    print(f"after: {machine_load()}")


if __name__ == "__main__":
    main()
