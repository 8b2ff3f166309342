"""Retrieval quality: dense alone vs dense + same-script BM25 fusion, per question language.

Indexes the ARCD development articles (Arabic Wikipedia) and the seed article with the real
model, then asks every question once and scores recall@1/5/10 and MRR@10. A retrieved chunk
hits when its span overlaps the gold span. Prints a table and the fused/dense ratios.

    python bench/retrieval_recall.py [--dataset ../shared/datasets/arcd-dev]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.service import SanadService  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import (  # noqa: E402
    DEFAULT_ARCD,
    ROOT,
    arcd_questions,
    hit,
    machine_load,
    seed_questions,
)
from index import SearchConfig, Searcher  # noqa: E402


def score(searcher: Searcher, questions: list[dict], vectors: dict) -> dict:
    ranks = []
    for q in questions:
        passages = searcher.search(q["question"], 10, vector=vectors[q["id"]])
        rank = next((i for i, p in enumerate(passages, 1) if hit(p, q)), None)
        ranks.append(rank)
    n = len(ranks)
    return {"n": n, **{f"recall@{k}": sum(r is not None and r <= k for r in ranks) / n
                       for k in (1, 5, 10)},
            "mrr@10": sum(1 / r for r in ranks if r) / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_ARCD)
    parser.add_argument("--weights", default="0.25,0.5,1.0", help="lexical weights to compare")
    parser.add_argument("--data-dir", type=Path, help="keep the built index here (reused)")
    args = parser.parse_args()
    if not (args.dataset / "articles").is_dir():
        sys.exit(f"no dataset at {args.dataset} (expected articles/, passages.jsonl, "
                 "questions.jsonl); pass --dataset DIR")
    print(machine_load())
    with tempfile.TemporaryDirectory() as tmp:
        service = SanadService(Settings(data_dir=args.data_dir or Path(tmp) / "data"))
        started = time.perf_counter()
        service.index([args.dataset / "articles", ROOT / "seeds"], progress=False,
                      log=lambda m: None)
        data = service.searcher().data
        print(f"indexed {len(data.articles)} articles, {len(data.chunks)} chunks in "
              f"{time.perf_counter() - started:.1f} s")
        sets = {"arcd ar→ar": arcd_questions(args.dataset, data.articles)}
        seed = seed_questions()
        sets["seed en→ar"] = [q for q in seed if q["lang"] == "en"]
        sets["seed ar→ar"] = [q for q in seed if q["lang"] == "ar"]
        vectors = {}
        started = time.perf_counter()
        for qs in sets.values():
            for q in qs:
                vectors[q["id"]] = service.embed_model.embed_query(q["question"])
        count = sum(len(v) for v in sets.values())
        print(f"embedded {count} questions, median "
              f"{(time.perf_counter() - started) / count * 1000:.0f} ms each (mean)")
        configs = {"dense": SearchConfig(hybrid="off")}
        for w in args.weights.split(","):
            configs[f"fused w={float(w):g}"] = SearchConfig(hybrid="auto", lexical_weight=float(w))
        searchers = {name: Searcher(data, service.embed_model, cfg)
                     for name, cfg in configs.items()}
        header = f"{'questions':12} {'ranking':14} {'n':>4} {'R@1':>6} {'R@5':>6} {'R@10':>6} " \
                 f"{'MRR':>6} {'R@5/dense':>9}"
        print(header)
        print("-" * len(header))
        for set_name, qs in sets.items():
            base = None
            for name, searcher in searchers.items():
                m = score(searcher, qs, vectors)
                base = base or m
                ratio = m["recall@5"] / base["recall@5"] if base["recall@5"] else float("nan")
                print(f"{set_name:12} {name:14} {m['n']:>4} {m['recall@1']:6.3f} "
                      f"{m['recall@5']:6.3f} {m['recall@10']:6.3f} {m['mrr@10']:6.3f} {ratio:9.3f}")


if __name__ == "__main__":
    main()
