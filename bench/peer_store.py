"""Peer at scale: llama-index's default in-memory VectorStoreIndex vs Sanad's FAISS store,
on the same synthetic 768-d vectors (bench/synthetic.py, clustered, as bench/faiss_scale.py):
query latency and memory as ratios from one run.

Peer: `VectorStoreIndex(nodes)` with llama-index's defaults (SimpleVectorStore and a
SimpleDocumentStore, in memory), every node a TextNode with an empty text and its vector
given, so nothing is embedded. Queried through its default retriever (`as_retriever(
similarity_top_k=5).retrieve` with the query's vector given, the first 10 queries) and
through the vector store alone (`SimpleVectorStore.query`, all queries). Its results are
exact: they are the reference for recall.
Sanad: `FaissStore` with the layout it picks by itself (`faiss_index` auto), built and saved
as `sanad index` does, then loaded in a fresh process as a serving process does, and
queried with `FaissStore.search` (llama-index's FAISS map store underneath).

Latency: the median of the same --queries vectors, asked one at a time, top-5, after one
warm-up query. Memory: each side runs in a child process of its own; the figure is the
growth of its resident memory (VmRSS in /proc/self/status, after gc) from just before the
index is built (peer) or loaded (Sanad) to just after: what holding the index costs a
serving process. Peak resident memory (VmHWM) of each child is printed as well.

    python bench/peer_store.py                 # 100k vectors: a few minutes
    python bench/peer_store.py --size 20000 --queries 20
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine_load, median, recall_at_k, run_worker  # noqa: E402
from bench.synthetic import blocks, queries  # noqa: E402

TOP_K = 5
RETRIEVER_QUERIES = 10  # the retriever adds little to the store's time; fewer suffice


def proc_status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def resident_mb() -> float:
    gc.collect()
    return proc_status_mb("VmRSS")


def timed(search, vectors) -> tuple[list[float], list[list[str]]]:
    """Milliseconds per query and the ids found, one query at a time, after a warm-up."""
    search(vectors[0])
    latencies, found = [], []
    for vector in vectors:
        started = time.perf_counter()
        ids = search(vector)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(ids)
    return latencies, found


# -- child processes -----------------------------------------------------------------------

def peer(args: argparse.Namespace) -> dict:
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import QueryBundle, TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery

    # Nothing may reach for OpenAI; every node comes with its vector, so nothing is embedded.
    LlamaSettings.embed_model = MockEmbedding(embed_dim=args.dim)
    LlamaSettings.llm = MockLLM()
    qs = [q.tolist() for q in queries("clustered", args.size, args.dim, args.seed, args.queries)]
    before = resident_mb()
    started = time.perf_counter()
    index = VectorStoreIndex(nodes=[], show_progress=False)
    for ids, vectors in blocks("clustered", args.size, args.dim, args.seed):
        index.insert_nodes([TextNode(id_=i, text="", embedding=v)
                            for i, v in zip(ids, vectors.tolist())])
    build_s = time.perf_counter() - started
    held = resident_mb() - before
    retriever = index.as_retriever(similarity_top_k=TOP_K)
    store = index.vector_store

    def retrieve(vector: list[float]) -> list[str]:
        hits = retriever.retrieve(QueryBundle(query_str="", embedding=vector))
        return [hit.node.node_id for hit in hits]

    def store_query(vector: list[float]) -> list[str]:
        return store.query(VectorStoreQuery(query_embedding=vector,
                                            similarity_top_k=TOP_K)).ids

    store_ms, found = timed(store_query, qs)
    retriever_ms, _ = timed(retrieve, qs[:RETRIEVER_QUERIES])
    return {"build_s": build_s, "held_mb": held, "peak_mb": proc_status_mb("VmHWM"),
            "retriever_ms": retriever_ms, "store_ms": store_ms, "found": found,
            "count": len(store.data.embedding_dict)}


def sanad_build(args: argparse.Namespace) -> dict:
    from index.stores import FaissStore, StoreConfig

    started = time.perf_counter()
    store = FaissStore(args.dim, config=StoreConfig(faiss_index="auto"))
    for ids, vectors in blocks("clustered", args.size, args.dim, args.seed):
        store.add(ids, vectors)
    store.save(args.folder)
    return {"build_s": time.perf_counter() - started, "layout": store.layout,
            "peak_mb": proc_status_mb("VmHWM")}


def sanad_search(args: argparse.Namespace) -> dict:
    from index.stores import FaissStore

    qs = queries("clustered", args.size, args.dim, args.seed, args.queries)
    before = resident_mb()
    store = FaissStore.load(args.folder, args.dim)
    held = resident_mb() - before

    def search(vector) -> list[str]:
        return [cid for cid, _ in store.search(vector, TOP_K)]

    store_ms, found = timed(search, qs)
    return {"held_mb": held, "peak_mb": proc_status_mb("VmHWM"), "store_ms": store_ms,
            "found": found, "layout": store.layout, "count": len(store)}


WORKERS = {"peer": peer, "sanad-build": sanad_build, "sanad-search": sanad_search}


# -- the parent ----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="vectors in the index")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    print(f"before: {machine_load()}", flush=True)
    common = ["--size", str(args.size), "--queries", str(args.queries), "--dim", str(args.dim),
              "--seed", str(args.seed)]
    with tempfile.TemporaryDirectory(prefix="sanad-peer-store-") as tmp:
        folder = ["--folder", tmp]
        built = run_worker(__file__, ["--worker", "sanad-build", *common, *folder], "Sanad build")
        print(f"sanad built ({built['layout']}) in {built['build_s']:.1f} s", flush=True)
        sanad = run_worker(__file__, ["--worker", "sanad-search", *common, *folder],
                           "Sanad search")
    print("sanad searched", flush=True)
    other = run_worker(__file__, ["--worker", "peer", *common], "llama-index default")
    assert sanad["count"] == other["count"] == args.size

    recall = recall_at_k(sanad["found"], other["found"], TOP_K)
    sanad_ms, peer_ms = median(sanad["store_ms"]), median(other["store_ms"])
    retriever_ms = median(other["retriever_ms"])
    print(f"\n{args.size} vectors, {args.dim}-d, clustered; {args.queries} queries one at a time,"
          f" top-{TOP_K}")
    print(f"{'system':34} {'build s':>8} {'query p50 ms':>13} {'memory held MB':>15} "
          f"{'peak MB':>8}")
    print(f"{'sanad FaissStore (' + sanad['layout'] + ')':34} {built['build_s']:8.1f} "
          f"{sanad_ms:13.2f} {sanad['held_mb']:15.0f} {sanad['peak_mb']:8.0f}")
    print(f"{'llama-index SimpleVectorStore':34} {other['build_s']:8.1f} {peer_ms:13.2f} "
          f"{other['held_mb']:15.0f} {other['peak_mb']:8.0f}")
    print(f"{'  the same through its retriever':34} {'':8} {retriever_ms:13.2f}")
    print(f"ratios peer/sanad: query {peer_ms / sanad_ms:.0f}x (retriever "
          f"{retriever_ms / sanad_ms:.0f}x), memory held {other['held_mb'] / sanad['held_mb']:.1f}x")
    print(f"sanad recall@{TOP_K} against the peer's exact results: {recall:.3f}")
    print(f"after: {machine_load()}")


if __name__ == "__main__":
    main()
