"""Which FAISS index a generation holds, and how each kind is built and searched.

FAISS keeps its vectors as files inside each generation folder, so a generation is
complete and immutable on its own. Which FAISS index it writes depends on the corpus size
(`faiss_layout`; setting `faiss_index`, default auto; measured with bench/faiss_scale.py):

- flat (auto up to `FLAT_MAX_VECTORS`, 20k): exact search, scanning every vector. One
  query costs ~0.2-0.3 ms per 1,000 vectors on one core: ~6 ms at 20k, ~25-30 ms at
  100k, 210-250 ms at 1M.
- ivf (auto above that): an inverted file of `ivf_lists(n)` k-means cells (~sqrt(n),
  1,024 at 1M) holding the full vectors (memory as flat; IVF deletes and reconstructs by
  id itself, so incremental indexing works on it as on flat), plus a fast-scan copy
  (`FaissStore.CODES_FILE`): the same cells and ids with each vector as 4-bit PQ codes (one per 4
  dimensions: 96 bytes at 768-d, +3%). A query scans the codes of the `ivf_code_probes`
  cells nearest to it (half of them), then re-scores the best `IVF_RERANK` exactly
  against the full vectors, so scores are exact cosines. On the overlapping clusters of
  bench/synthetic.py at 1M: recall@10 0.98 in ~6 ms on one core, where scanning the full
  vectors of the same cells took ~110 ms (and of 1/8 of them, the old setting, ~70 ms
  for 0.90). It is trained (k-means on a sample; the codes' PQ on the same sample) and
  filled when a generation is saved (the whole 1M build took ~4 min), and trained again
  when the corpus has grown or shrunk 16-fold. Deletes leave a deleted vector's code in
  the copy (FAISS 1.15 loses vectors added to a fast-scan cell after a removal from
  it); search drops such codes, and the copy is rebuilt at save once a tenth is stale. An IVF file
  written before the codes existed loads and searches its full vectors (1/8 of the
  cells) until its next save adds them (`outdated` says so to `sanad index`).
- hnsw (only when asked for): a graph of `HNSW_NEIGHBOURS` links per vector, searched
  keeping `HNSW_EF_SEARCH` candidates: ~2-4 ms, recall@10 0.998 at 100k on the
  overlapping clusters, but 0.46 at 1M (0.60 with efSearch 512), for a build 2.3 times
  as long as IVF's and ~9% more memory. FAISS adds to the graph incrementally but cannot
  remove from it, so a deleted vector stays in the file as a tombstone: out of the id
  maps, skipped by search (an ID selector), and dropped when the graph is built again,
  once more than `HNSW_MAX_DELETED` of its vectors are tombstones.
A generation's file says which index it is (FAISS records it), so old generations load as
they were written; a writer converts to the wanted index when it saves, and `sanad index`
rewrites an unchanged index whose type no longer matches the setting and size. Vectors
are reconstructed from any of them (incremental indexing, `sanad store copy`).
Single-query search runs on one OpenMP thread: FAISS gains nothing from more threads for
one query, and with the machine busy a second thread made flat search ~3x slower
(measured). Builds (IVF training and adding, HNSW) use the `threads` setting.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import faiss
import numpy as np

from index.stores.base import FAISS_INDEXES

# auto: flat up to this many vectors, IVF above (module docstring). Flat search grows
# ~0.3 ms per 1,000 vectors: at 100k it took 32 ms, which with the query embedding
# (~83 ms) broke the 100 ms goal, where IVF took 0.8 ms for recall@10 0.97.
FLAT_MAX_VECTORS = 20_000
HNSW_NEIGHBOURS = 32  # M: links per vector
HNSW_EF_SEARCH = 256  # candidates a search keeps (bench/faiss_scale.py sweeps it)
HNSW_MAX_DELETED = 0.1  # rebuild the graph at save once this share of its vectors is deleted
IVF_TRAINING_PER_LIST = 50  # k-means sample per cell (FAISS asks for at least 39)
IVF_RETRAIN_FACTOR = 4  # train again when the wanted number of cells is off by this much
IVF_CODE_DIMS = 4  # dimensions per 4-bit code of the fast-scan copy: 96 bytes a 768-d vector
IVF_CODES_MIN = 1000  # vectors from which an IVF index gets its fast-scan codes
IVF_RERANK = 64  # candidates of the codes scan re-scored exactly (at least k)
IVF_MAX_STALE = 0.1  # rebuild the codes at save once this share of them is of deleted vectors
COPY_BATCH = 50_000  # vectors moved at a time when the index type changes


def faiss_layout(count: int, wanted: str = "auto") -> str:
    """The FAISS index for `count` vectors: the one asked for, or by size when auto."""
    if wanted != "auto":
        return wanted
    return "flat" if count <= FLAT_MAX_VECTORS else "ivf"


def ivf_lists(count: int) -> int:
    """IVF cells: a power of two near sqrt(count), with enough vectors to train each."""
    near_sqrt = 2 ** round(math.log2(math.sqrt(max(count, 1))))
    return max(1, min(near_sqrt, count // IVF_TRAINING_PER_LIST))


def ivf_probes(lists: int) -> int:
    """Cells a query scans without codes: 1/8 of them (at least 8), so recall holds as n grows."""
    return min(lists, max(8, lists // 8))


def ivf_code_probes(lists: int) -> int:
    """Cells the fast-scan codes scan: half of them (at least 8); scanning codes is cheap.

    At 1M (1,024 cells, bench/faiss_scale.py data): 1/4 gives recall@10 0.95 in 5.0 ms,
    3/8 0.97 in 5.5 ms, 1/2 0.98 in 6.2 ms (one thread, load ~2.3).
    """
    return min(lists, max(8, lists // 2))


def code_factory(dim: int, lists: int) -> str | None:
    """The fast-scan copy's FAISS factory string, or None when `dim` does not split.

    At least 64 codes a vector: a 4-bit code per 4 dimensions ranks well in 768-d (192
    codes, recall@10 0.98 at 1M) but coarsely in a small test dimension (32-d: 0.84).
    """
    codes = max(dim // IVF_CODE_DIMS, min(dim, 64))
    if dim % codes:
        return None
    return f"IVF{lists},PQ{codes}x4fs"


@contextlib.contextmanager
def omp_threads(count: int | None) -> Iterator[None]:
    """FAISS's OpenMP threads for the calling thread (None: unchanged), restored after."""
    before = faiss.omp_get_max_threads()
    if count:
        faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def new_index(layout: str, dim: int, count: int) -> faiss.Index:
    """An empty index of `layout` for about `count` vectors; inner product throughout."""
    if layout == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if layout == "hnsw":
        return faiss.index_factory(dim, f"IDMap2,HNSW{HNSW_NEIGHBOURS}", faiss.METRIC_INNER_PRODUCT)
    if layout == "ivf":
        # No IDMap2 wrapper: it renumbers after a removal, which only flat storage does.
        index = faiss.index_factory(dim, f"IVF{ivf_lists(count)},Flat", faiss.METRIC_INNER_PRODUCT)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
        return index
    raise ValueError(f"unknown FAISS index {layout!r}; available: {', '.join(FAISS_INDEXES)}")


def layout_of(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    inner = faiss.downcast_index(index.index)
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


def tune_search(index: faiss.Index, codes: faiss.Index | None = None) -> None:
    """Search parameters from the constants above, also for files written before a change."""
    layout = layout_of(index)
    if layout == "ivf":
        index.nprobe = ivf_probes(index.nlist)
    elif layout == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
    if codes is not None:
        codes.nprobe = ivf_code_probes(codes.nlist)


def build_codes(index: faiss.IndexIVF, faiss_ids: np.ndarray) -> faiss.Index | None:
    """The fast-scan copy of an IVF index: its cells, 4-bit PQ codes, the same ids.

    No second k-means: the copy's coarse quantizer gets the IVF centroids. The PQ is
    trained on the same fixed sample as the cells.
    """
    factory = code_factory(index.d, index.nlist)
    if factory is None or len(faiss_ids) < IVF_CODES_MIN:
        return None
    codes = faiss.index_factory(index.d, factory, faiss.METRIC_INNER_PRODUCT)
    centroids = faiss.downcast_index(index.quantizer).reconstruct_n(0, index.nlist)
    faiss.downcast_index(codes.quantizer).add(centroids)
    codes.train(index.reconstruct_batch(training_sample(faiss_ids, index.nlist)))
    for start in range(0, len(faiss_ids), COPY_BATCH):
        batch = faiss_ids[start:start + COPY_BATCH]
        codes.add_with_ids(index.reconstruct_batch(batch), batch)
    tune_search(index, codes)
    return codes


def training_sample(faiss_ids: np.ndarray, lists: int) -> np.ndarray:
    """FAISS ids of a fixed-seed sample to train `lists` k-means cells on."""
    size = min(len(faiss_ids), lists * IVF_TRAINING_PER_LIST)
    picks = np.random.default_rng(0).choice(len(faiss_ids), size, replace=False)
    return np.sort(faiss_ids[picks])
