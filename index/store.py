"""Vector stores behind one small interface; FAISS (through llama-index) is the default.

A store holds one vector per chunk id and knows nothing else: chunk text and spans live
in the index folder beside it (see `index.storage`). Adding another store (Milvus) means
one more class here and one more name in `STORES`; nothing in app/ changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from llama_index.vector_stores.faiss import FaissMapVectorStore


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


class _IdMapStore(FaissMapVectorStore):
    """llama-index's FAISS map store with two fixes we rely on.

    Upstream numbers new vectors by `ntotal`, which repeats an id still in use once a
    vector has been deleted; and it adds one vector per FAISS call. We number from a
    counter that only grows and add in one batch.
    """

    def add(self, nodes: list, **add_kwargs) -> list[str]:
        if not nodes:
            return []
        start = max(self._faiss_id_to_node_id_map, default=-1) + 1
        faiss_ids = np.arange(start, start + len(nodes), dtype=np.int64)
        matrix = np.asarray([node.get_embedding() for node in nodes], dtype=np.float32)
        self._faiss_index.add_with_ids(matrix, faiss_ids)
        for node, fid in zip(nodes, faiss_ids.tolist()):
            self._node_id_to_faiss_id_map[node.id_] = fid
            self._faiss_id_to_node_id_map[fid] = node.id_
        return [node.id_ for node in nodes]


class FaissStore:
    """Exact inner-product search (vectors are normalised: scores are cosines)."""

    kind = "faiss"
    INDEX_FILE = "vectors.faiss"
    IDS_FILE = "id_map.json"

    def __init__(self, dim: int, inner: _IdMapStore | None = None):
        self.dim = dim
        self._store = inner or _IdMapStore(faiss_index=faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    def __len__(self) -> int:
        return int(self._store._faiss_index.ntotal)

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if len(ids) and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the store {self.dim}")
        self._store.add([TextNode(id_=i, text="", embedding=v.tolist())
                         for i, v in zip(ids, vectors)])

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._store.delete_nodes(node_ids=list(ids))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if len(self) == 0 or k <= 0:
            return []
        result = self._store.query(VectorStoreQuery(
            query_embedding=np.asarray(vector, dtype=np.float32).tolist(),
            similarity_top_k=min(k, len(self)),
        ))
        return [(i, float(s)) for i, s in zip(result.ids, result.similarities)]

    def vectors(self, ids: list[str]) -> np.ndarray:
        index = self._store._faiss_index
        fmap = self._store._node_id_to_faiss_id_map
        return np.stack([index.reconstruct(fmap[i]) for i in ids]) if ids else np.zeros(
            (0, self.dim), dtype=np.float32)

    def ids(self) -> list[str]:
        return list(self._store._node_id_to_faiss_id_map)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # llama-index's persist writes the FAISS file and the id map beside it.
        self._store.persist(persist_path=str(folder / self.INDEX_FILE))
        written = folder / "id_map.json"
        if written.name != self.IDS_FILE:
            os.replace(written, folder / self.IDS_FILE)

    @classmethod
    def load(cls, folder: Path, dim: int) -> FaissStore:
        inner = _IdMapStore.from_persist_path(str(folder / cls.INDEX_FILE))
        if inner._faiss_index.d != dim:
            raise ValueError(f"FAISS index in {folder} has dimension {inner._faiss_index.d}, "
                             f"expected {dim}")
        return cls(dim, inner)


STORES: dict[str, type] = {"faiss": FaissStore}


def create_store(kind: str, dim: int) -> VectorStore:
    try:
        return STORES[kind](dim)
    except KeyError:
        raise ValueError(f"unknown store {kind!r}; available: {', '.join(STORES)}") from None


def load_store(kind: str, folder: Path, dim: int) -> VectorStore:
    try:
        cls = STORES[kind]
    except KeyError:
        raise ValueError(f"unknown store {kind!r}; available: {', '.join(STORES)}") from None
    return cls.load(folder, dim)

