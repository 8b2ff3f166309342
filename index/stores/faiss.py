"""FAISS files in each generation folder, through llama-index's FAISS map store.

A generation's vectors are files of its own, so it is complete and immutable on its own;
which FAISS index it holds (flat, IVF, HNSW) is `index.stores.faiss_layout`'s business.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryResult
from llama_index.vector_stores.faiss import FaissMapVectorStore, FaissVectorStore

from index.stores.base import StoreConfig, check_batch, text_nodes
from index.stores.faiss_layout import (
    COPY_BATCH,
    HNSW_EF_SEARCH,
    HNSW_MAX_DELETED,
    IVF_CODES_MIN,
    IVF_MAX_STALE,
    IVF_RERANK,
    IVF_RETRAIN_FACTOR,
    build_codes,
    code_factory,
    faiss_layout,
    ivf_lists,
    layout_of,
    new_index,
    omp_threads,
    training_sample,
    tune_search,
)

SEARCH_THREADS = 1  # one query gains nothing from more OpenMP threads (faiss_layout docstring)


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

    The index type follows `config.faiss_index` and the corpus size (see
    `index.stores.faiss_layout`); a store converts its index when it saves, so adds and
    deletes work on any type.
    """

    kind = "faiss"
    INDEX_FILE = "vectors.faiss"
    CODES_FILE = "vectors.codes.faiss"  # IVF: the fast-scan copy (none before scale2)
    IDS_FILE = "id_map.json"

    def __init__(self, dim: int, inner: _IdMapStore | None = None,
                 config: StoreConfig | None = None):
        self.dim = dim
        self.config = config or StoreConfig()
        self._store = inner or _IdMapStore(faiss_index=new_index("flat", dim, 0))
        tune_search(self._index, self._store._codes)

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
        check_batch(ids, vectors, self.dim)
        with omp_threads(self.config.threads):
            self._store.add(text_nodes(ids, vectors))

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
                and len(self) >= IVF_CODES_MIN and code_factory(self.dim, 1) is not None)

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
        target = new_index(layout, self.dim, len(faiss_ids))
        with omp_threads(self.config.threads):
            if layout == "ivf":
                target.train(self._index.reconstruct_batch(training_sample(faiss_ids, target.nlist)))
            for start in range(0, len(faiss_ids), COPY_BATCH):
                batch = faiss_ids[start:start + COPY_BATCH]
                target.add_with_ids(self._index.reconstruct_batch(batch), batch)
        codes = build_codes(target, faiss_ids) if layout == "ivf" else None
        tune_search(target, codes)
        self._store.replace_index(target, codes)

    def _add_codes(self) -> None:
        faiss_ids = np.fromiter(self._store._faiss_id_to_node_id_map, dtype=np.int64)
        with omp_threads(self.config.threads):
            self._store._codes = build_codes(self._index, faiss_ids)

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
