"""Vector stores behind one small interface: FAISS files (default) or a Milvus collection.

A store holds one vector per chunk id and knows nothing else: chunk text and spans live
in the index folder beside it (see `index.storage`). Both stores go through llama-index
(`FaissMapVectorStore`, `MilvusVectorStore`); nothing in app/ knows which one is in use.

FAISS keeps its vectors as files inside each generation folder, so a generation is
complete and immutable on its own. Which FAISS index it writes depends on the corpus size
(`faiss_layout`; setting `faiss_index`, default auto; measured with bench/faiss_scale.py):

- flat (auto up to `FLAT_MAX_VECTORS`, 20k): exact search, scanning every vector. One
  query costs ~0.2-0.3 ms per 1,000 vectors on one core: ~6 ms at 20k, ~25-30 ms at
  100k, 210-250 ms at 1M.
- ivf (auto above that): an inverted file of `ivf_lists(n)` k-means cells (~sqrt(n),
  1,024 at 1M) holding the full vectors (memory as flat; IVF deletes and reconstructs by
  id itself, so incremental indexing works on it as on flat), plus a fast-scan copy
  (`CODES_FILE`): the same cells and ids with each vector as 4-bit PQ codes (one per 4
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

Milvus is one external collection shared by all
generations, so it follows different rules, chosen so that every generation on disk stays
loadable and correct whatever happens to the writer:

- The generation's chunks.jsonl is the source of truth. The collection may hold a
  superset: vectors of chunks a newer or an older generation uses, or leftovers of a crash.
- Vectors are keyed by chunk id. Chunk ids are content-addressed (article id, text hash,
  span), and each embedding model has its own collection (`<milvus_collection>_<12 hex of
  the model hash>`), so an id names one vector for good: a row is never rewritten in place
  while a generation uses it, and a rebuild with another model cannot touch the vectors
  the previous generation searches.
- A writer inserts the vectors of new chunks BEFORE the `current` switch (`add`, flushed
  by `save`). `delete` only drops ids from the generation being built; nothing leaves
  the collection before the switch.
- AFTER the switch, `after_switch` deletes the rows that no generation still on disk
  references. The previous generation stays on disk for readers that have it open, so
  vectors of removed chunks go one write later than their chunks.jsonl line: each
  generation's store folder lists the ids it dropped (`released.txt`), and they are
  deleted once no generation on disk uses them. If the collection then still holds more
  rows than the generations on disk use (leftovers of a crashed writer: a crash between
  insert and switch only leaves rows no generation references), a full sweep of the
  collection's ids deletes them. Collections of other models that no generation uses
  are dropped.
- Search asks Milvus for some extra candidates and keeps only ids of the loaded
  generation, widening the request until k survive.
- Each collection carries the id of the data folder that owns it (property
  `sanad.index`, from `<data_dir>/.index-id`): the sweep deletes what this index does not
  reference, so two indexes must never share a collection, and a second one is refused.
Milvus Lite (a `.db` path) allows one process per file; several processes need a Milvus
server (or `milvus-lite server`) and must share the data folder (README, "Scaling out").
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryResult
from llama_index.vector_stores.faiss import FaissMapVectorStore, FaissVectorStore

from index.errors import IndexError_, IndexMismatchError

INDEX_ID_FILE = ".index-id"
REBUILD = "rebuild with `sanad index --rebuild PATH...` (or change the settings back)"


class StoreError(IndexError_):
    """The vector store cannot be used; the message says why and what to do."""


class StoreMismatchError(StoreError, IndexMismatchError):
    """The generation's vectors live somewhere else than the settings say."""


FAISS_INDEXES = ("auto", "flat", "ivf", "hnsw")


@dataclass(frozen=True)
class StoreConfig:
    """Which store, which FAISS index, and how to reach Milvus."""

    kind: str = "faiss"
    milvus_uri: str | None = None  # None: a Milvus Lite file, <data_dir>/milvus.db
    milvus_token: str | None = field(default=None, repr=False)
    milvus_collection: str = "sanad_chunks"
    faiss_index: str = "auto"  # one of FAISS_INDEXES; auto: by corpus size (faiss_layout)
    threads: int | None = None  # FAISS threads for building an index; None: all cores

    def __post_init__(self) -> None:
        if self.faiss_index not in FAISS_INDEXES:
            raise ValueError(f"unknown FAISS index {self.faiss_index!r}; "
                             f"available: {', '.join(FAISS_INDEXES)}")

    def milvus_uri_for(self, data_dir: Path) -> str:
        return self.milvus_uri or str(Path(data_dir) / "milvus.db")


def as_store_config(store: StoreConfig | str | None) -> StoreConfig:
    if store is None:
        return StoreConfig()
    return StoreConfig(kind=store) if isinstance(store, str) else store


class VectorStore(Protocol):
    kind: str
    dim: int

    def __len__(self) -> int: ...
    def add(self, ids: list[str], vectors: np.ndarray) -> None: ...
    def delete(self, ids: list[str]) -> None: ...
    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]: ...
    def vectors(self, ids: list[str]) -> np.ndarray: ...
    def ids(self) -> list[str]: ...
    def save(self, folder: Path) -> None: ...
    def check(self, chunk_ids: list[str]) -> str | None:
        """What is wrong between this store and the generation's chunk ids, or None."""
    def outdated(self) -> str | None:
        """Why the store should be written again although no chunk changed, or None."""
    def after_switch(self, store_folders: list[Path]) -> None:
        """Release what none of the generations on disk (their store folders) uses."""


def _check_batch(ids: list[str], vectors: np.ndarray, dim: int) -> None:
    if len(ids) != len(vectors):
        raise ValueError("ids and vectors differ in length")
    if len(ids) and vectors.shape[1] != dim:
        raise ValueError(f"vectors have dimension {vectors.shape[1]}, the store {dim}")


def _nodes(ids: list[str], vectors: np.ndarray) -> list[TextNode]:
    return [TextNode(id_=i, text="", embedding=v.tolist()) for i, v in zip(ids, vectors)]


# -- FAISS ---------------------------------------------------------------------------------

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
SEARCH_THREADS = 1
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


def _code_factory(dim: int, lists: int) -> str | None:
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


def _new_index(layout: str, dim: int, count: int) -> faiss.Index:
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


def _tune_search(index: faiss.Index, codes: faiss.Index | None = None) -> None:
    """Search parameters from the constants above, also for files written before a change."""
    layout = layout_of(index)
    if layout == "ivf":
        index.nprobe = ivf_probes(index.nlist)
    elif layout == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
    if codes is not None:
        codes.nprobe = ivf_code_probes(codes.nlist)


def _build_codes(index: faiss.IndexIVF, faiss_ids: np.ndarray) -> faiss.Index | None:
    """The fast-scan copy of an IVF index: its cells, 4-bit PQ codes, the same ids.

    No second k-means: the copy's coarse quantizer gets the IVF centroids. The PQ is
    trained on the same fixed sample as the cells.
    """
    factory = _code_factory(index.d, index.nlist)
    if factory is None or len(faiss_ids) < IVF_CODES_MIN:
        return None
    codes = faiss.index_factory(index.d, factory, faiss.METRIC_INNER_PRODUCT)
    centroids = faiss.downcast_index(index.quantizer).reconstruct_n(0, index.nlist)
    faiss.downcast_index(codes.quantizer).add(centroids)
    codes.train(index.reconstruct_batch(_training_sample(faiss_ids, index.nlist)))
    for start in range(0, len(faiss_ids), COPY_BATCH):
        batch = faiss_ids[start:start + COPY_BATCH]
        codes.add_with_ids(index.reconstruct_batch(batch), batch)
    _tune_search(index, codes)
    return codes


class _IdMapStore(FaissMapVectorStore):
    """llama-index's FAISS map store with the changes we rely on.

    Upstream numbers new vectors by `ntotal`, which repeats an id still in use once a
    vector has been deleted; and it adds one vector per FAISS call. We number after the
    highest id the index holds and add in one batch. Upstream accepts only IDMap
    wrappers; we accept an IVF index too, which keeps the ids itself (and searches,
    deletes and reconstructs by them), which is all the rest of this class relies on.
    And FAISS cannot remove vectors from an HNSW graph: there a deleted vector stays in
    the index as a tombstone, left out of the id maps and skipped by search, until the
    graph is built again (`FaissStore.outdated`).
    """

    _deleted: set[int] = PrivateAttr(default_factory=set)  # tombstones (HNSW)
    _live_only: Any = PrivateAttr(default=None)  # search parameters skipping them
    _codes: Any = PrivateAttr(default=None)  # IVF: the fast-scan copy searched first

    def __init__(self, faiss_index: faiss.Index):
        if not isinstance(faiss_index, faiss.IndexIVF):
            super().__init__(faiss_index=faiss_index)
            return
        FaissVectorStore.__init__(self, faiss_index=faiss_index)
        self._node_id_to_faiss_id_map = {}
        self._faiss_id_to_node_id_map = {}

    @classmethod
    def from_persist_path(cls, persist_path: str, fs: Any = None) -> _IdMapStore:
        store = super().from_persist_path(persist_path, fs)
        index = store._faiss_index
        if layout_of(index) == "hnsw":  # tombstones: ids in the index but not in the maps
            store._deleted = set(faiss.vector_to_array(index.id_map).tolist()).difference(
                store._faiss_id_to_node_id_map)
        return store

    def add(self, nodes: list, **add_kwargs) -> list[str]:
        if not nodes:
            return []
        start = max(max(self._faiss_id_to_node_id_map, default=-1),
                    max(self._deleted, default=-1)) + 1
        faiss_ids = np.arange(start, start + len(nodes), dtype=np.int64)
        matrix = np.asarray([node.get_embedding() for node in nodes], dtype=np.float32)
        self._faiss_index.add_with_ids(matrix, faiss_ids)
        if self._codes is not None:
            self._codes.add_with_ids(matrix, faiss_ids)
        for node, fid in zip(nodes, faiss_ids.tolist()):
            self._node_id_to_faiss_id_map[node.id_] = fid
            self._faiss_id_to_node_id_map[fid] = node.id_
        return [node.id_ for node in nodes]

    def replace_index(self, index: faiss.Index, codes: faiss.Index | None = None) -> None:
        """Swap in an index holding the live vectors under the same FAISS ids."""
        self._faiss_index, self._codes = index, codes
        self._deleted, self._live_only = set(), None

    def stale_codes(self) -> int:
        """Codes of deleted vectors (IVF; see `_query_codes`)."""
        return 0 if self._codes is None else self._codes.ntotal - self._faiss_index.ntotal

    def leave_as_tombstones(self, node_ids: list[str]) -> None:
        """Drop ids from the maps only: their vectors stay, and search skips them."""
        for node_id in node_ids:
            faiss_id = self._node_id_to_faiss_id_map.pop(node_id, None)
            if faiss_id is not None:
                del self._faiss_id_to_node_id_map[faiss_id]
                self._deleted.add(faiss_id)
        self._live_only = None

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if self._codes is not None:
            return self._query_codes(query)
        if not self._deleted:
            return super().query(query, **kwargs)
        if self._live_only is None:
            skipped = faiss.IDSelectorBatch(np.fromiter(self._deleted, dtype=np.int64))
            self._live_only = faiss.SearchParametersHNSW(
                sel=faiss.IDSelectorNot(skipped), efSearch=HNSW_EF_SEARCH)
            self._live_only.referenced_objects = [skipped]  # FAISS keeps a bare pointer
        vector = np.asarray([query.query_embedding], dtype=np.float32)
        scores, faiss_ids = self._faiss_index.search(vector, query.similarity_top_k,
                                                     params=self._live_only)
        hits = [(self._faiss_id_to_node_id_map[i], s)
                for i, s in zip(faiss_ids[0].tolist(), scores[0].tolist()) if i >= 0]
        return VectorStoreQueryResult(ids=[i for i, _ in hits], similarities=[s for _, s in hits])

    def _query_codes(self, query: VectorStoreQuery) -> VectorStoreQueryResult:
        """Scan the fast-scan codes for candidates, then score those exactly.

        The exact scores come from the IVF index's own (full) vectors, so the hits and
        their scores are what a flat search gives whenever the true neighbours are among
        the candidates. Deletes leave the codes alone: in FAISS 1.15 a vector added to
        a fast-scan cell after a removal from it is never found again (measured), so a
        deleted vector's code stays, stale, and is dropped here (its id is no longer
        live, or, reused by a later vector, is scored with that vector) until the codes
        are rebuilt (`FaissStore.outdated`).
        """
        k = query.similarity_top_k
        vector = np.asarray(query.query_embedding, dtype=np.float32)
        _, found = self._codes.search(vector[None, :], max(k, IVF_RERANK))
        live = self._faiss_id_to_node_id_map
        candidates = np.array([i for i in dict.fromkeys(found[0].tolist()) if i in live],
                              dtype=np.int64)
        if not len(candidates):
            return VectorStoreQueryResult(ids=[], similarities=[])
        scores = self._faiss_index.reconstruct_batch(candidates) @ vector
        best = np.argsort(-scores, kind="stable")[:k]
        return VectorStoreQueryResult(
            ids=[self._faiss_id_to_node_id_map[i] for i in candidates[best].tolist()],
            similarities=scores[best].tolist())


class FaissStore:
    """FAISS inner-product search (vectors are normalised: scores are cosines).

    The index type follows `config.faiss_index` and the corpus size (module docstring);
    a store converts its index when it saves, so adds and deletes work on any type.
    """

    kind = "faiss"
    INDEX_FILE = "vectors.faiss"
    CODES_FILE = "vectors.codes.faiss"  # IVF: the fast-scan copy (none before scale2)
    IDS_FILE = "id_map.json"

    def __init__(self, dim: int, inner: _IdMapStore | None = None,
                 config: StoreConfig | None = None):
        self.dim = dim
        self.config = config or StoreConfig()
        self._store = inner or _IdMapStore(faiss_index=_new_index("flat", dim, 0))
        _tune_search(self._index, self._store._codes)

    @property
    def _index(self) -> faiss.Index:
        return self._store._faiss_index

    @property
    def layout(self) -> str:
        """The FAISS index this store holds now: flat, ivf or hnsw."""
        return layout_of(self._index)

    @classmethod
    def create(cls, dim: int, config: StoreConfig | None = None, data_dir: Path | None = None,
               model_hash: str = "") -> FaissStore:
        return cls(dim, config=config)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._store._deleted)

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        _check_batch(ids, vectors, self.dim)
        with omp_threads(self.config.threads):
            self._store.add(_nodes(ids, vectors))

    def delete(self, ids: list[str]) -> None:
        if not ids:
            return
        if self.layout == "hnsw":  # FAISS cannot remove from the graph
            self._store.leave_as_tombstones(list(ids))
        else:
            self._store.delete_nodes(node_ids=list(ids))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if len(self) == 0 or k <= 0:
            return []
        query = VectorStoreQuery(query_embedding=np.asarray(vector, dtype=np.float32).tolist(),
                                 similarity_top_k=min(k, len(self)))
        with omp_threads(SEARCH_THREADS):
            result = self._store.query(query)
        return [(i, float(s)) for i, s in zip(result.ids, result.similarities)]

    def vectors(self, ids: list[str]) -> np.ndarray:
        fmap = self._store._node_id_to_faiss_id_map
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(np.array([fmap[i] for i in ids], dtype=np.int64))

    def ids(self) -> list[str]:
        return list(self._store._node_id_to_faiss_id_map)

    def check(self, chunk_ids: list[str]) -> str | None:
        if len(self) != len(chunk_ids):
            return f"{len(self)} vectors, {len(chunk_ids)} chunks"
        return None

    def wanted_layout(self) -> str:
        return faiss_layout(len(self), self.config.faiss_index)

    def outdated(self) -> str | None:
        """Why the index should be written again although nothing changed, or None."""
        wanted, layout = self.wanted_layout(), self.layout
        if wanted != layout:
            return f"the FAISS index is {layout}, {len(self)} vectors want {wanted}"
        if layout == "ivf":
            lists, trained = ivf_lists(len(self)), self._index.nlist
            if max(lists, trained) >= IVF_RETRAIN_FACTOR * min(lists, trained):
                return f"the IVF index has {trained} cells, {len(self)} vectors want {lists}"
            if self._wants_codes():
                return ("the IVF index has no fast-scan codes (written before they existed); "
                        "adding them makes its searches several times faster")
            stale = self._store.stale_codes()
            if stale > IVF_MAX_STALE * self._index.ntotal:
                return f"{stale} of the IVF index's fast-scan codes are of deleted vectors"
        deleted = len(self._store._deleted)
        if deleted > HNSW_MAX_DELETED * self._index.ntotal:
            return f"{deleted} of the HNSW graph's {self._index.ntotal} vectors are deleted"
        return None

    def _wants_codes(self) -> bool:
        """An IVF index without its fast-scan copy that should have one."""
        return (self.layout == "ivf" and self._store._codes is None
                and len(self) >= IVF_CODES_MIN and _code_factory(self.dim, 1) is not None)

    def save(self, folder: Path) -> None:
        if self.outdated():
            if self.wanted_layout() == self.layout == "ivf" and (
                    self._wants_codes() or self._store.stale_codes()):
                self._add_codes()  # the cells still fit: no new k-means
            if self.outdated():
                self._convert(self.wanted_layout())
        folder.mkdir(parents=True, exist_ok=True)
        # llama-index's persist writes the FAISS file and the id map beside it.
        self._store.persist(persist_path=str(folder / self.INDEX_FILE))
        if self._store._codes is not None:
            faiss.write_index(self._store._codes, str(folder / self.CODES_FILE))
        written = folder / "id_map.json"
        if written.name != self.IDS_FILE:
            os.replace(written, folder / self.IDS_FILE)

    def _convert(self, layout: str) -> None:
        """Move every live vector, under its FAISS id, into a new index of `layout`.

        Memory: the old and the new index are both held until the copy ends (twice the
        vectors, briefly, in the writer only).
        """
        faiss_ids = np.fromiter(self._store._faiss_id_to_node_id_map, dtype=np.int64)
        target = _new_index(layout, self.dim, len(faiss_ids))
        with omp_threads(self.config.threads):
            if layout == "ivf":
                target.train(self._index.reconstruct_batch(_training_sample(faiss_ids, target.nlist)))
            for start in range(0, len(faiss_ids), COPY_BATCH):
                batch = faiss_ids[start:start + COPY_BATCH]
                target.add_with_ids(self._index.reconstruct_batch(batch), batch)
        codes = _build_codes(target, faiss_ids) if layout == "ivf" else None
        _tune_search(target, codes)
        self._store.replace_index(target, codes)

    def _add_codes(self) -> None:
        faiss_ids = np.fromiter(self._store._faiss_id_to_node_id_map, dtype=np.int64)
        with omp_threads(self.config.threads):
            self._store._codes = _build_codes(self._index, faiss_ids)

    def after_switch(self, store_folders: list[Path]) -> None:
        """Nothing to release: each generation's vectors are files in its own folder."""

    @classmethod
    def load(cls, folder: Path, dim: int, config: StoreConfig | None = None,
             data_dir: Path | None = None, chunk_ids: Iterable[str] = ()) -> FaissStore:
        inner = _IdMapStore.from_persist_path(str(folder / cls.INDEX_FILE))
        if inner._faiss_index.d != dim:
            raise ValueError(f"FAISS index in {folder} has dimension {inner._faiss_index.d}, "
                             f"expected {dim}")
        codes_file = folder / cls.CODES_FILE
        if layout_of(inner._faiss_index) == "ivf" and codes_file.exists():
            codes = faiss.read_index(str(codes_file))
            if codes.ntotal >= inner._faiss_index.ntotal and codes.d == dim:
                inner._codes = codes  # otherwise searched without them (and `outdated`)
        return cls(dim, inner, config)


def _training_sample(faiss_ids: np.ndarray, lists: int) -> np.ndarray:
    """FAISS ids of a fixed-seed sample to train `lists` k-means cells on."""
    size = min(len(faiss_ids), lists * IVF_TRAINING_PER_LIST)
    picks = np.random.default_rng(0).choice(len(faiss_ids), size, replace=False)
    return np.sort(faiss_ids[picks])


def index_id(data_dir: Path, create: bool) -> str | None:
    """The data folder's own id (written once), which marks the collections it owns."""
    path = Path(data_dir) / INDEX_ID_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{INDEX_ID_FILE}.{os.getpid()}.tmp")
    tmp.write_text(uuid.uuid4().hex, encoding="ascii")
    os.replace(tmp, path)
    return path.read_text(encoding="ascii").strip()


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _id_list(ids: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in ids) + "]"


class MilvusStore:
    """A Milvus collection seen through llama-index's `MilvusVectorStore`.

    `self._members` are the chunk ids of the generation this object stands for (loaded
    or being built); the collection may hold more (see the module docstring). Exact
    search: a FLAT index with inner product, so scores are cosines as with FAISS.
    """

    kind = "milvus"
    DESCRIPTOR = "milvus.json"
    IDS_FILE = "ids.txt"
    RELEASED_FILE = "released.txt"
    OWNER_PROPERTY = "sanad.index"
    EXTRA_CANDIDATES = 32  # room for ids of other generations before widening a search
    MAX_TOPK = 16384  # Milvus refuses a larger search limit
    BATCH = 1000  # rows per insert, id lookup or delete request
    SCAN_BATCH = 10000  # ids per page when listing a whole collection

    def __init__(self, dim: int, uri: str, token: str | None, collection: str,
                 owner: str | None, members: Iterable[str] = ()):
        self.dim = dim
        self.uri = uri
        self.collection = collection
        self._base = collection.rsplit("_", 1)[0]
        self._members = set(members)
        self._released: set[str] = set()  # dropped from this generation, maybe still in use
        self._owner = owner
        self._store = _open_collection(uri, token, collection, dim)
        self._client = self._store.client
        self._check_collection()

    @classmethod
    def collection_for(cls, base: str, model_hash: str) -> str:
        return f"{base}_{model_hash[:12]}"

    @classmethod
    def create(cls, dim: int, config: StoreConfig, data_dir: Path, model_hash: str) -> MilvusStore:
        return cls(dim, config.milvus_uri_for(data_dir), config.milvus_token,
                   cls.collection_for(config.milvus_collection, model_hash),
                   index_id(data_dir, create=True))

    @classmethod
    def load(cls, folder: Path, dim: int, config: StoreConfig, data_dir: Path,
             chunk_ids: Iterable[str] = ()) -> MilvusStore:
        recorded = json.loads((folder / cls.DESCRIPTOR).read_text(encoding="utf-8"))
        collection = recorded["collection"]
        if not _owned_name(collection, config.milvus_collection):
            raise StoreMismatchError(
                f"the index's vectors are in Milvus collection {collection!r}, but the settings "
                f"say milvus_collection={config.milvus_collection!r}; {REBUILD}")
        if recorded["dim"] != dim:
            raise StoreMismatchError(f"Milvus collection {collection!r} holds {recorded['dim']}-d "
                                     f"vectors, the index's model {dim}-d; {REBUILD}")
        return cls(dim, config.milvus_uri_for(data_dir), config.milvus_token, collection,
                   index_id(data_dir, create=False), chunk_ids)

    # -- the generation's view ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._members)

    def ids(self) -> list[str]:
        return list(self._members)

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Insert vectors now (before the switch); ids already in the collection are kept.

        An id names one vector for good (module docstring), so a row that is there
        already is the right one, and a generation that is live may be reading it.
        """
        _check_batch(ids, vectors, self.dim)
        present = self._present(ids)
        fresh = [n for n, i in enumerate(ids) if i not in present]
        for batch in _batches(fresh, self.BATCH):
            self._call(self._store.add, _nodes([ids[n] for n in batch], vectors[batch]))
        self._members.update(ids)
        self._released.difference_update(ids)

    def delete(self, ids: list[str]) -> None:
        """Drop ids from this generation; their rows go in `after_switch`, once unused."""
        self._members.difference_update(ids)
        self._released.update(ids)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if not self._members or k <= 0:
            return []
        query_vector = np.asarray(vector, dtype=np.float32).tolist()
        limit = min(k + self.EXTRA_CANDIDATES, self.MAX_TOPK)
        while True:
            result = self._call(self._store.query, VectorStoreQuery(
                query_embedding=query_vector, similarity_top_k=limit, output_fields=["id"]))
            kept = [(i, float(s)) for i, s in zip(result.ids, result.similarities)
                    if i in self._members]
            exhausted = len(result.ids) < limit or limit == self.MAX_TOPK
            if len(kept) >= k or exhausted:
                return kept[:k]
            limit = min(limit * 4, self.MAX_TOPK)

    def vectors(self, ids: list[str]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        found: dict[str, list[float]] = {}
        for batch in _batches(list(dict.fromkeys(ids)), self.BATCH):
            for node in self._call(self._store.get_nodes, node_ids=batch):
                found[node.id_] = node.embedding
        missing = [i for i in ids if i not in found]
        if missing:
            raise StoreError(f"{len(missing)} vector(s) missing from Milvus collection "
                             f"{self.collection!r} (e.g. {missing[0]}); the index changed under "
                             "this reader, ask again")
        return np.asarray([found[i] for i in ids], dtype=np.float32)

    def outdated(self) -> str | None:
        return None  # the collection's index is Milvus's own business (always FLAT)

    def check(self, chunk_ids: list[str]) -> str | None:
        missing = len(chunk_ids) - len(self._present(chunk_ids))
        if missing:
            return (f"{missing} of {len(chunk_ids)} chunks have no vector in Milvus collection "
                    f"{self.collection!r} at {self.uri}")
        return None

    # -- generations ---------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        # llama-index flushes only inside add(force_flush=True); one flush per write is enough.
        self._call(self._client.flush, self.collection)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.DESCRIPTOR).write_text(json.dumps(
            {"collection": self.collection, "dim": self.dim, "metric": "IP", "index": "FLAT"}),
            encoding="utf-8")
        # For after_switch: the rows this generation uses (without parsing chunks.jsonl),
        # and those it dropped, to delete once no generation on disk uses them.
        _write_ids(folder / self.IDS_FILE, self._members)
        _write_ids(folder / self.RELEASED_FILE, self._released)

    def after_switch(self, store_folders: list[Path]) -> None:
        """Delete rows no generation on disk uses; drop this index's unused collections.

        Run under the writer lock. Cheap when nothing is left over: one count per collection.
        """
        if self._owner is None:  # cannot tell this index's collections from another's
            return
        used = _rows_by_collection(store_folders, self.DESCRIPTOR, self.IDS_FILE)
        used.setdefault(self.collection, set()).update(self._members)
        released = _rows_by_collection(store_folders, self.DESCRIPTOR, self.RELEASED_FILE)
        released.setdefault(self.collection, set()).update(self._released)
        for name in self._call(self._client.list_collections):
            if not _owned_name(name, self._base) or not self._owned_by_us(name):
                continue
            if name not in used:
                self._call(self._client.drop_collection, name)
                continue
            self._delete_rows(name, sorted(released.get(name, set()) - used[name]))
            if self._count(name) != len(used[name]):  # leftovers of a crash: look at every id
                self._delete_rows(name, [i for i in self._all_ids(name) if i not in used[name]])

    # -- Milvus calls llama-index has no API for (it manages one collection, by nodes) -----

    def _present(self, ids: list[str]) -> set[str]:
        """Which of `ids` have a row. get_nodes would fetch whole rows; we ask for ids only."""
        present: set[str] = set()
        for batch in _batches(list(ids), self.BATCH):
            rows = self._call(self._client.query, self.collection,
                              filter=f"id in {_id_list(batch)}", output_fields=["id"])
            present.update(row["id"] for row in rows)
        return present

    def _count(self, collection: str) -> int:
        rows = self._call(self._client.query, collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _all_ids(self, collection: str) -> Iterator[str]:
        iterator = self._call(self._client.query_iterator, collection,
                              batch_size=self.SCAN_BATCH, output_fields=["id"])
        try:
            while rows := self._call(iterator.next):
                yield from (row["id"] for row in rows)
        finally:
            iterator.close()

    def _delete_rows(self, collection: str, ids: list[str]) -> None:
        for batch in _batches(ids, self.BATCH):
            # Never an empty list: delete_nodes without ids would delete by no filter at all.
            if collection == self.collection:
                self._call(self._store.delete_nodes, node_ids=batch)
            else:
                self._call(self._client.delete, collection, filter=f"id in {_id_list(batch)}")

    def _owned_by_us(self, collection: str) -> bool:
        properties = self._call(self._client.describe_collection, collection).get("properties", {})
        return properties.get(self.OWNER_PROPERTY) == self._owner

    def _check_collection(self) -> None:
        """Refuse a collection of another dimension or index; mark an unmarked one as ours."""
        collection = self.collection
        described = self._call(self._client.describe_collection, collection)
        dims = [int(f.get("params", {}).get("dim", 0)) for f in described["fields"]
                if f.get("name") == "embedding"]
        if dims and dims[0] != self.dim:
            raise StoreMismatchError(f"Milvus collection {collection!r} at {self.uri} holds "
                                     f"{dims[0]}-d vectors, the model {self.dim}-d")
        owner = described.get("properties", {}).get(self.OWNER_PROPERTY)
        if self._owner is None:  # a reader whose data folder has no id: nothing to compare
            return
        if owner is None:
            # llama-index sets properties only in its constructor, and releases and reloads
            # the collection each time it does, which would interrupt other readers.
            self._call(self._client.alter_collection_properties, collection,
                       properties={self.OWNER_PROPERTY: self._owner})
        elif owner != self._owner:
            raise StoreMismatchError(
                f"Milvus collection {collection!r} at {self.uri} belongs to another Sanad index "
                f"(id {owner}, this data folder is {self._owner}); two indexes must not share a "
                "collection: set another milvus_collection, or drop that collection")

    def _call(self, method, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if _is_milvus_error(exc):
                raise StoreError(f"Milvus at {self.uri} ({self.collection!r}): {exc}") from exc
            raise


def _owned_name(name: str, base: str) -> bool:
    return re.fullmatch(re.escape(base) + r"_[0-9a-f]{12}", name) is not None


def _write_ids(path: Path, ids: Iterable[str]) -> None:
    path.write_text("".join(f"{i}\n" for i in sorted(ids)), encoding="ascii")


def _rows_by_collection(store_folders: list[Path], descriptor: str,
                        ids_file: str) -> dict[str, set[str]]:
    """collection -> the ids listed in `ids_file` by the Milvus generations among the folders."""
    rows: dict[str, set[str]] = {}
    for folder in store_folders:
        if not (folder / descriptor).exists():
            continue  # a FAISS generation: its vectors are its own files
        collection = json.loads((folder / descriptor).read_text(encoding="utf-8"))["collection"]
        listed = folder / ids_file
        ids = listed.read_text(encoding="ascii").split() if listed.exists() else []
        rows.setdefault(collection, set()).update(ids)
    return rows


def _is_milvus_error(exc: Exception) -> bool:
    from pymilvus.exceptions import MilvusException

    return isinstance(exc, MilvusException)


class _UnimplementedRpcFilter(logging.Filter):
    """Drops the traceback Milvus Lite's in-process server logs when pymilvus, after
    creating an index, polls an RPC Lite does not implement (harmless: pymilvus goes on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Method not implemented" not in record.getMessage()


def _quiet_milvus_lite() -> None:
    grpc_server_log = logging.getLogger("grpc._server")
    if not any(isinstance(f, _UnimplementedRpcFilter) for f in grpc_server_log.filters):
        grpc_server_log.addFilter(_UnimplementedRpcFilter())


def _open_collection(uri: str, token: str | None, collection: str, dim: int):
    """llama-index's store on `collection` (created if missing), loaded for search."""
    try:
        from llama_index.vector_stores.milvus import MilvusVectorStore
        from pymilvus.exceptions import MilvusException
    except ImportError:
        raise StoreError("the Milvus store needs the 'milvus' extra: "
                         "pip install -e '.[milvus]'") from None
    # Milvus Lite reports no MVCC timestamp to iterators; pymilvus then warns on every sweep.
    logging.getLogger("pymilvus.orm.iterator").setLevel(logging.ERROR)
    if uri.endswith(".db"):
        _quiet_milvus_lite()
    try:
        store = MilvusVectorStore(
            uri=uri, token=token or "", collection_name=collection, dim=dim,
            similarity_metric="IP", index_config={"index_type": "FLAT"},
            # Strong: a reader in another process must see rows inserted before the switch.
            consistency_level="Strong", upsert_mode=True, use_async_client=False,
            batch_size=MilvusStore.BATCH,
        )
        # llama-index creates and loads a new collection but does not load an existing one.
        if store.client.get_load_state(collection)["state"].name != "Loaded":
            store.client.load_collection(collection)
    except MilvusException as exc:
        hint = (" (Milvus Lite allows one process per file: is another `sanad` using it?)"
                if uri.endswith(".db") else "")
        raise StoreError(f"cannot open Milvus at {uri}{hint}: {exc}") from exc
    return store


STORES: dict[str, type] = {"faiss": FaissStore, "milvus": MilvusStore}


def _store_class(kind: str) -> type:
    try:
        return STORES[kind]
    except KeyError:
        raise ValueError(f"unknown store {kind!r}; available: {', '.join(STORES)}") from None


def create_store(store: StoreConfig | str, dim: int, data_dir: Path | None = None,
                 model_hash: str = "") -> VectorStore:
    """An empty store for a new index (Milvus: the model's collection, maybe not empty)."""
    config = as_store_config(store)
    return _store_class(config.kind).create(dim, config, data_dir, model_hash)


def load_store(kind: str, folder: Path, dim: int, config: StoreConfig | None = None,
               data_dir: Path | None = None, chunk_ids: Iterable[str] = ()) -> VectorStore:
    """The store of the generation in `folder.parent`; `kind` is the one its manifest names."""
    return _store_class(kind).load(folder, dim, as_store_config(config), data_dir, chunk_ids)


def describe_store(kind: str, folder: Path) -> str:
    """One line on where a generation's vectors are, for `sanad status`."""
    descriptor = folder / MilvusStore.DESCRIPTOR
    if kind == "milvus" and descriptor.exists():
        return f"milvus (collection {json.loads(descriptor.read_text())['collection']})"
    return kind
