"""Dump the refusal features of a dataset's questions, answerable and made unanswerable, one
JSON row each, for eval/fit_refusal.py.

Retrieval and evidence selection only (no LLM): each answerable question is measured as
asked (variant "asked"), and twice made unanswerable: with its gold article and every
passage holding its gold answer left out of retrieval ("gold-removed", as `sanad eval
--unanswerable gold-removed` asks it: the rest of the index is mostly off-topic), and with
only its gold passage and the passages holding its answer left out ("passage-removed": the
same article's other paragraphs stay, the near-topic trap of a name's namesake or a
river's tributary). Each row also says what the threshold rule decided, for comparison.

    PYTHONPATH=. python eval/refusal_features.py ../shared/datasets/arcd-dev \
        ../shared/datasets/xquad-ar-dev --out /tmp/refusal-features.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.answering.evidence import EvidenceSelector  # noqa: E402
from app.answering.refusal import threshold_reason, unknown_names  # noqa: E402
from app.answering.refusal_features import RANKING_DEPTH, measure  # noqa: E402
from app.eval.datasets import load_dataset  # noqa: E402
from app.eval.gate import IsolatedSettings  # noqa: E402
from app.eval.run import eval_data_dir, index_dataset, load_checked_questions  # noqa: E402
from app.eval.unanswerable import ExcludingSearcher, excluding, gold_removed  # noqa: E402
from app.service import SanadService  # noqa: E402


class _QueryMemo:
    """The searcher's embedder with its query embeddings remembered: each question is
    searched twice (with and without its gold article)."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.embed_query = lru_cache(maxsize=4)(embedder.embed_query)

    def __getattr__(self, name: str):
        return getattr(self._embedder, name)


def feature_rows(dataset_dir: Path, settings: IsolatedSettings, log=print, seed: int = 13,
                 done: frozenset[str] = frozenset()):
    """Rows in a random order (seeded): a dump stopped early is a random sample. Questions
    whose id is in `done` are passed over (a resumed dump)."""
    dataset = load_dataset(dataset_dir)
    service = SanadService(settings.model_copy(
        update={"data_dir": eval_data_dir(settings, dataset)}))
    index_dataset(service, dataset, progress=False, log=log)
    searcher = service.searcher()
    searcher.embedder = _QueryMemo(searcher.embedder)
    questions = load_checked_questions(dataset, searcher.data.articles, None,
                                       settings.max_question_chars)
    asked = [q for q in questions if not q.skipped]
    random.Random(seed).shuffle(asked)
    asked = [q for q in asked if q.id not in done]
    selector = EvidenceSelector(service.settings)
    variants = {v.id.removesuffix("-nogold"): v for v in gold_removed(asked)}
    for n, q in enumerate(asked, start=1):
        cases = [("asked", q, searcher)]
        if q.id in variants:
            removed = variants[q.id]
            cases.append(("gold-removed", removed, excluding(searcher, removed)))
            cases.append(("passage-removed", dataclasses.replace(removed, id=q.id + "-nopassage"),
                          ExcludingSearcher(searcher, frozenset(), q.gold_texts,
                                            [(q.article_id, *span) for span in q.gold_spans])))
        for variant, case, s in cases:
            retrieved, evidence = selector.select(s, case.question, RANKING_DEPTH)
            names = unknown_names(case.question, evidence, s)
            old = (threshold_reason(case.question, evidence, service.settings, case.lang, names)
                   if evidence else "nothing relevant was retrieved")
            yield {"dataset": dataset.name, "id": case.id, "lang": case.lang, "variant": variant,
                   "group": q.article_id, "answerable": case.answerable,
                   "gold_top1": bool(retrieved) and retrieved[0].article_id == q.article_id,
                   "threshold_refused": bool(old), "threshold_reason": old,
                   "features": measure(case.question, case.lang, retrieved, evidence, names)}
        if n % 100 == 0:
            log(f"{dataset.name}: {n}/{len(asked)} questions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --out and add the questions they lack")
    args = parser.parse_args()
    settings = IsolatedSettings(llm_backend="extractive")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = frozenset()
    if args.resume and args.out.is_file():
        done = frozenset(json.loads(line)["id"] for line in
                         args.out.read_text(encoding="utf-8").splitlines() if line.strip())
    with args.out.open("a" if args.resume else "w", encoding="utf-8") as handle:
        for folder in args.datasets:
            for row in feature_rows(folder, settings, log=lambda m: print(m, file=sys.stderr),
                                    done=done):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                handle.flush()


if __name__ == "__main__":
    main()
