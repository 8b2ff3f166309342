"""FAISS index types at scale: flat vs IVF vs HNSW on synthetic 768-d vectors, with the query embedding.

Each index type is built and then searched through Sanad's own FaissStore (index/stores/,
llama-index layers included), each step in a child process of its own so that peak
memory is per type and step. Build: add every vector (into flat, as `sanad index` does)
and save, which converts to the asked-for type (IVF: k-means training on a sample, then
adding). Search: load the saved store in a fresh process, as a serving process does, and
ask the queries one at a time (k=10) on Sanad's search path (one OpenMP thread, see the
store's docstring); recall@10 is measured against the exact flat results. "p50 all thr" is
the same search with FAISS's default thread count (all cores), on the first 50 queries.

Data (bench/synthetic.py): clustered by default, a mixture of one centre per 1,000
vectors on the sphere with noise around each, because uniform random unit vectors (--data
uniform) have no neighbourhoods and are the worst case for IVF and HNSW, unlike embeddings
of real text. Queries are database vectors plus noise.

The query embedding is measured with the real model (the settings' embedding model and
threads, over the seed questions) so that "p50 total" = embedding median + search median
of the type Sanad picks by itself (auto) can be compared with the goal, 100 ms at 1M.

    python bench/faiss_scale.py                         # 10k, 100k and 1M: 15-30 min on 2 cores
    python bench/faiss_scale.py --sizes 10000,100000    # a few minutes
    python bench/faiss_scale.py --data uniform --sizes 100000 --indexes flat,ivf

Bounded: flat (the exact reference) and the type auto picks always run; another type whose
run at the previous size, scaled up as n log n, predicts more than --max-minutes (default
10) is skipped and said so: HNSW at 1M, whose build alone took 14 min here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    machine_load,
    median,
    p50_p95_ms,
    peak_rss_gb,
    recall_at_k,
    run_worker,
    seed_questions,
    timed_search,
)
from bench.synthetic import KINDS, blocks, queries  # noqa: E402

K = 10
LAYOUTS = ("flat", "ivf", "hnsw")
ALL_THREADS_QUERIES = 50
GOAL_MS = 100.0


# -- child processes -----------------------------------------------------------------------

def build(layout: str, args: argparse.Namespace) -> dict:
    from index.stores import FaissStore, StoreConfig

    size = args.sizes[0]
    started = time.perf_counter()
    store = FaissStore(args.dim, config=StoreConfig(faiss_index=layout))
    for ids, vectors in blocks(args.data, size, args.dim, args.seed):
        store.add(ids, vectors)
    store.save(args.folder)
    assert store.layout == layout, store.layout
    return {"build_s": time.perf_counter() - started, "build_rss_gb": peak_rss_gb(),
            "file_mb": sum(f.stat().st_size for f in args.folder.iterdir()) / 1024 ** 2}


def search_knob(store) -> tuple[str, object, int] | None:
    """(name, holder, upper bound) of the parameter trading recall for time; flat: None."""
    import faiss

    index = store._index
    if store.layout == "ivf":
        codes = store._store._codes  # the fast-scan copy is what a search scans, if any
        holder = index if codes is None else codes
        return "nprobe", holder, holder.nlist
    if store.layout == "hnsw":
        return "efSearch", faiss.downcast_index(index.index).hnsw, 4096
    return None


def knob_sweep(store, vectors: np.ndarray, exact: list[list[str]]) -> list[dict]:
    """Recall and p50 at a quarter, half and twice the store's setting (restored after)."""
    knob = search_knob(store)
    if knob is None:
        return []
    name, holder, upper = knob
    chosen = getattr(holder, name)
    sweep = []
    for value in sorted({max(1, chosen // 4), max(1, chosen // 2), chosen, min(upper, chosen * 2)}):
        setattr(holder, name, value)
        latencies, results = timed_search(store, vectors, K)
        sweep.append({"knob": name, "value": value, "p50_ms": p50_p95_ms(latencies)[0],
                      "recall": recall_at_k(results, exact, K)})
    setattr(holder, name, chosen)
    return sweep


def index_detail(store) -> str:
    """The parameters the store searches with."""
    from index.stores.faiss_layout import HNSW_NEIGHBOURS, IVF_RERANK

    knob = search_knob(store)
    if knob is None:
        return "exact"
    name, holder, _ = knob
    if store.layout == "ivf":
        if store._store._codes is None:
            return f"{holder.nlist} cells of full vectors, {name} {holder.nprobe}"
        return (f"{holder.nlist} cells, 4-bit PQ fast-scan codes ({holder.code_size} bytes a "
                f"vector), {name} {holder.nprobe}, best {IVF_RERANK} re-scored exactly")
    return f"M={HNSW_NEIGHBOURS}, {name} {getattr(holder, name)}"


def search(layout: str, args: argparse.Namespace) -> dict:
    from index.stores import FaissStore
    from index.stores import faiss as store_module

    size = args.sizes[0]
    started = time.perf_counter()
    store = FaissStore.load(args.folder, args.dim)
    load_s = time.perf_counter() - started
    assert store.layout == layout and len(store) == size, (store.layout, len(store))
    qs = queries(args.data, size, args.dim, args.seed, args.queries)
    latencies, results = timed_search(store, qs, K)
    if layout == "flat":
        args.truth.write_text(json.dumps(results))
    exact = json.loads(args.truth.read_text())
    sweep = knob_sweep(store, qs, exact)
    store_module.SEARCH_THREADS = None  # FAISS's default: all cores
    all_threads, _ = timed_search(store, qs[:ALL_THREADS_QUERIES], K)
    p50, p95 = p50_p95_ms(latencies)
    return {"load_s": load_s, "p50_ms": p50, "p95_ms": p95,
            "p50_all_threads_ms": p50_p95_ms(all_threads)[0],
            "recall": recall_at_k(results, exact, K), "search_rss_gb": peak_rss_gb(),
            "detail": index_detail(store), "sweep": sweep}


def embed(args: argparse.Namespace) -> dict:
    """Median time to embed one question with the settings' model, as `sanad ask` does."""
    from app.settings import Settings
    from index import EmbedderError, load_embedder

    settings = Settings()
    try:
        model = load_embedder(settings.embed_model, settings.models_dir,
                              dtype=settings.embed_dtype, threads=settings.threads,
                              query_twin=settings.embed_query_twin)
    except EmbedderError as exc:
        return {"error": str(exc).splitlines()[0]}
    questions = [q["question"] for q in seed_questions()]
    model.embed_query(questions[0])  # warm-up
    latencies = []
    for question in questions:
        started = time.perf_counter()
        model.embed_query(question)
        latencies.append(time.perf_counter() - started)
    return {"embed_p50_ms": median(latencies) * 1000, "questions": len(questions),
            "model": settings.embed_model, "threads": settings.threads or "all cores",
            "precision": settings.embed_dtype + (", queries on its float32 twin"
                                                 if model.has_query_twin else "")}


# -- the parent ----------------------------------------------------------------------------

def child(args: argparse.Namespace, step: str, layout: str, size: int, folder: Path,
          truth: Path) -> dict:
    return run_worker(__file__, [
        "--worker", step, "--indexes", layout, "--sizes", str(size), "--dim", str(args.dim),
        "--data", args.data, "--seed", str(args.seed), "--queries", str(args.queries),
        "--folder", str(folder), "--truth", str(truth)], f"{step} of {layout} at {size}")


def measure(args: argparse.Namespace, layout: str, size: int, tmp: Path) -> dict:
    folder = tmp / f"{layout}-{size}"
    truth = tmp / f"truth-{size}.json"
    row = {"index": layout, "n": size, **child(args, "build", layout, size, folder, truth)}
    row.update(child(args, "search", layout, size, folder, truth))
    for path in folder.iterdir():  # 3 GB per type at 1M: free the disk before the next
        path.unlink()
    return row


def predicted_seconds(seconds: float, last: int, size: int) -> float:
    """The last size's run scaled to `size` as n log n (HNSW's build grows so)."""
    return seconds * size * math.log(size) / (last * math.log(last))


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def print_table(rows: list[dict], notes: list[str]) -> None:
    header = (f"{'index':6} {'n':>9} {'build s':>8} {'file MB':>8} {'build RSS GB':>12} "
              f"{'load s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p50 all thr':>11} {'recall@10':>9} "
              f"{'search RSS GB':>13} {'p50/flat':>8} {'build/flat':>10} {'RSS/flat':>8}")
    print(header)
    print("-" * len(header))
    flat = {r["n"]: r for r in rows if r["index"] == "flat"}
    for r in rows:
        f = flat[r["n"]]
        print(f"{r['index']:6} {r['n']:>9} {r['build_s']:8.1f} {r['file_mb']:8.0f} "
              f"{r['build_rss_gb']:12.2f} {r['load_s']:7.1f} {r['p50_ms']:7.2f} "
              f"{r['p95_ms']:7.2f} {r['p50_all_threads_ms']:11.2f} {r['recall']:9.3f} "
              f"{r['search_rss_gb']:13.2f} {ratio(r['p50_ms'], f['p50_ms']):>8} "
              f"{ratio(r['build_s'], f['build_s']):>10} "
              f"{ratio(r['search_rss_gb'], f['search_rss_gb']):>8}")
    for r in rows:
        print(f"  {r['index']} at {r['n']}: {r['detail']}")
        for s in r["sweep"]:
            print(f"    {s['knob']} {s['value']:4} -> recall@10 {s['recall']:.3f}, "
                  f"p50 {s['p50_ms']:.2f} ms")
    for note in notes:
        print(note)


def print_totals(rows: list[dict], embedding: dict) -> None:
    """p50 embedding + search for the type Sanad picks at each size, against the goal."""
    from index.stores.faiss_layout import faiss_layout

    if "error" in embedding:
        print(f"query embedding not measured: {embedding['error']}")
        return
    print(f"query embedding ({embedding['model']}, {embedding['precision']}, "
          f"threads: {embedding['threads']}): "
          f"p50 {embedding['embed_p50_ms']:.1f} ms over {embedding['questions']} seed questions")
    for size in sorted({r["n"] for r in rows}):
        auto = faiss_layout(size)
        row = next((r for r in rows if r["n"] == size and r["index"] == auto), None)
        if row is None:
            print(f"  auto at {size}: {auto}, not measured")
            continue
        total = embedding["embed_p50_ms"] + row["p50_ms"]
        verdict = "within" if total <= GOAL_MS else "over"
        print(f"  auto at {size}: {auto}; p50 total = embed {embedding['embed_p50_ms']:.1f} + "
              f"search {row['p50_ms']:.1f} = {total:.1f} ms ({verdict} the {GOAL_MS:.0f} ms goal), "
              f"recall@10 {row['recall']:.3f}")


def must_run(layout: str, size: int) -> bool:
    """Flat gives the exact results; the type auto picks is the one Sanad would search."""
    from index.stores.faiss_layout import faiss_layout

    return layout in ("flat", faiss_layout(size))


def run_all(args: argparse.Namespace) -> None:
    layouts = ["flat", *(i for i in args.indexes if i != "flat")]
    rows, notes = [], []
    last: dict[str, tuple[int, float]] = {}  # layout -> (size, seconds) of its last run
    with tempfile.TemporaryDirectory(prefix="faiss-scale-") as tmp:
        for size in args.sizes:
            for layout in layouts:
                if layout in last and not must_run(layout, size):
                    predicted = predicted_seconds(last[layout][1], last[layout][0], size)
                    if predicted > args.max_minutes * 60:
                        notes.append(f"{layout} at {size}: skipped, the run at {last[layout][0]} "
                                     f"predicts {predicted / 60:.1f} min "
                                     f"(> --max-minutes {args.max_minutes:g})")
                        print(f"  {notes[-1]}", flush=True)
                        continue
                started = time.perf_counter()
                try:
                    row = measure(args, layout, size, Path(tmp))
                except RuntimeError as exc:
                    notes.append(str(exc).splitlines()[0])
                    print(f"  {exc}", flush=True)
                    continue
                last[layout] = (size, time.perf_counter() - started)
                rows.append(row)
                print(f"  {json.dumps(row)}", flush=True)
    embedding = run_worker(__file__, ["--worker", "embed"], "query embedding")
    print(machine_load())
    print_table(rows, notes)
    print_totals(rows, embedding)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        type=lambda s: [int(n) for n in s.split(",")])
    parser.add_argument("--indexes", default=",".join(LAYOUTS), type=lambda s: s.split(","),
                        help="FAISS index types to compare (flat always runs: it gives the truth)")
    parser.add_argument("--data", default="clustered", choices=KINDS)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-minutes", type=float, default=10.0,
                        help="skip a type whose run the previous size predicts takes longer")
    parser.add_argument("--worker", choices=["build", "search", "embed"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--truth", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        step = {"build": build, "search": search}.get(args.worker)
        figures = step(args.indexes[0], args) if step else embed(args)
        print(json.dumps(figures))
        return
    unknown = set(args.indexes) - set(LAYOUTS)
    if unknown:
        sys.exit(f"unknown index type(s) {', '.join(sorted(unknown))}; known: {', '.join(LAYOUTS)}")
    print(machine_load())
    print(f"{args.dim}-d {args.data} unit vectors (bench/synthetic.py), {args.queries} queries "
          f"one at a time, k={K}, sizes {args.sizes}", flush=True)
    run_all(args)


if __name__ == "__main__":
    main()
