"""Vector stores at scale: FAISS flat vs Milvus Lite on synthetic unit vectors.

For each size, each store is built through Sanad's own store classes (index/stores/, so
the llama-index layers are included) in a child process of its own, so that peak memory
is per store and the two never sit in memory together. Figures per store and size:
build (add all vectors and save/flush), reopen (load the saved store and run the load
consistency check, as `sanad` does on every new generation), search latency p50/p95 over
the queries (k=10, one query at a time, as a question is asked), recall@10 against exact
FAISS flat results, Milvus's cleanup after a crashed write (a full sweep of the
collection's ids), and peak RSS. Queries are database vectors plus noise, so each has a
true nearest neighbour. Vectors are generated in blocks from a seed, never all at once.

    python bench/store_scale.py                        # 100k vectors (a few minutes)
    python bench/store_scale.py --sizes 100000,1000000 # 1M: ~3 GB of vectors per store;
        # FAISS flat takes minutes; Milvus Lite is skipped when its whole run at the
        # previous size, scaled up, predicts more than --max-minutes (default 10)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    machine_load,
    p50_p95_ms,
    peak_rss_gb,
    recall_at_k,
    run_worker,
    timed_search,
)
from bench.synthetic import blocks, queries  # noqa: E402

K = 10
DATA = "uniform"  # the README's figures; bench/faiss_scale.py uses clustered data too


def open_store(kind: str, dim: int, folder: Path):
    from index.stores import StoreConfig, create_store

    # FAISS pinned to flat: its results are the exact ones recall is measured against.
    config = StoreConfig(kind=kind, milvus_uri=str(folder / "milvus.db"),
                         milvus_collection="bench", faiss_index="flat")
    return create_store(config, dim, folder, model_hash="0" * 64), config


def reload_store(kind: str, dim: int, folder: Path, config, ids: list[str]):
    from index.stores import load_store

    store = load_store(kind, folder / "saved", dim, config, folder, chunk_ids=ids)
    problem = store.check(ids)
    assert problem is None, problem
    return store


def worker(kind: str, size: int, dim: int, seed: int, query_count: int, truth: Path,
           folder: Path) -> dict:
    """Build, reopen and query one store; return its figures (runs in a child process)."""
    started = time.perf_counter()
    store, config = open_store(kind, dim, folder)
    all_ids: list[str] = []
    for ids, vectors in blocks(DATA, size, dim, seed):
        store.add(ids, vectors)
        all_ids.extend(ids)
    store.save(folder / "saved")
    build = time.perf_counter() - started
    del store
    started = time.perf_counter()
    store = reload_store(kind, dim, folder, config, all_ids)
    reopen = time.perf_counter() - started
    qs = queries(DATA, size, dim, seed, query_count)
    latencies, results = timed_search(store, qs, K)
    if kind == "faiss":
        truth.write_text(json.dumps(results))
    recall = recall_at_k(results, json.loads(truth.read_text()), K)
    p50, p95 = p50_p95_ms(latencies)
    return {"store": kind, "n": size, "build_s": build, "reopen_s": reopen,
            "p50_ms": p50, "p95_ms": p95, "recall": recall,
            "sweep_s": sweep_after_crash(store, folder, qs[0]) if kind == "milvus" else None,
            "rss_gb": peak_rss_gb()}


def sweep_after_crash(store, folder: Path, vector: np.ndarray) -> float:
    """Seconds for the cleanup after a crashed write: one orphan row forces a full sweep.

    The row goes in below Sanad's store, as a writer killed before its switch leaves it:
    no generation lists it, not even as released, so only listing every id finds it.
    """
    from index.stores.base import text_nodes

    orphan = "f" * 20
    store._store.add(text_nodes([orphan], vector[None, :]))
    started = time.perf_counter()
    store.after_switch([folder / "saved"])
    seconds = time.perf_counter() - started
    assert orphan not in set(store._all_ids(store.collection))
    return seconds


def run_child(args: argparse.Namespace, kind: str, size: int, truth: Path, tmp: Path) -> dict:
    folder = tmp / f"{kind}-{size}"
    folder.mkdir()
    return run_worker(__file__, [
        "--worker", kind, "--sizes", str(size), "--dim", str(args.dim), "--seed", str(args.seed),
        "--queries", str(args.queries), "--truth", str(truth), "--folder", str(folder)],
        f"{kind} at {size}")


def print_table(rows: list[dict], skipped: list[str]) -> None:
    header = (f"{'store':12} {'n':>9} {'build s':>9} {'reopen s':>9} {'p50 ms':>8} "
              f"{'p95 ms':>8} {'recall@10':>9} {'sweep s':>8} {'peak RSS GB':>11}")
    print("sweep: Milvus cleanup after a crashed write (lists every id in the collection)")
    print(header)
    print("-" * len(header))
    for r in rows:
        name = "faiss flat" if r["store"] == "faiss" else "milvus lite"
        sweep = "-" if r["sweep_s"] is None else f"{r['sweep_s']:.1f}"
        print(f"{name:12} {r['n']:>9} {r['build_s']:9.1f} {r['reopen_s']:9.1f} "
              f"{r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['recall']:9.3f} {sweep:>8} "
              f"{r['rss_gb']:11.2f}")
    for note in skipped:
        print(note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated database sizes")
    parser.add_argument("--stores", default="faiss,milvus")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-minutes", type=float, default=10.0,
                        help="skip a Milvus run that the previous size predicts takes longer")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--truth", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        figures = worker(args.worker, sizes[0], args.dim, args.seed, args.queries, args.truth,
                         args.folder)
        print(json.dumps(figures))
        return
    stores = args.stores.split(",")
    if "faiss" not in stores:
        sys.exit("FAISS flat gives the exact results that recall is measured against")
    print(machine_load())
    print(f"{args.dim}-d unit vectors, {args.queries} queries, k={K}; the FAISS store searches "
          "on one OpenMP thread (index/stores/faiss.py)")
    rows, notes = [], []
    rate: dict[str, float] = {}  # seconds per vector of a whole run, from the last size
    with tempfile.TemporaryDirectory(prefix="store-scale-") as tmp:
        for size in sizes:
            truth = Path(tmp) / f"truth-{size}.json"
            for kind in ["faiss", *(s for s in stores if s != "faiss")]:
                predicted = rate.get(kind, 0.0) * size
                if kind != "faiss" and predicted > args.max_minutes * 60:
                    notes.append(f"{kind} at {size}: skipped, the run at the last size predicts "
                                 f"{predicted / 60:.0f} min (> --max-minutes {args.max_minutes:g})")
                    print(f"  {notes[-1]}", flush=True)
                    continue
                started = time.perf_counter()
                try:
                    row = run_child(args, kind, size, truth, Path(tmp))
                except RuntimeError as exc:
                    notes.append(str(exc).splitlines()[0])
                    print(f"  {exc}", flush=True)
                    continue
                rate[kind] = (time.perf_counter() - started) / size
                rows.append(row)
                print(f"  {json.dumps(row)}", flush=True)
    print_table(rows, notes)


if __name__ == "__main__":
    main()
