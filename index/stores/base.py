"""The one small interface every vector store has, its settings and its errors.

A store holds one vector per chunk id and knows nothing else: chunk text and spans live
in the index folder beside it (see `index.storage`). Both stores go through llama-index
(`FaissMapVectorStore`, `MilvusVectorStore`); nothing in app/ knows which one is in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from llama_index.core.schema import TextNode

from index.errors import IndexError_, IndexMismatchError

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


def check_batch(ids: list[str], vectors: np.ndarray, dim: int) -> None:
    if len(ids) != len(vectors):
        raise ValueError("ids and vectors differ in length")
    if len(ids) and vectors.shape[1] != dim:
        raise ValueError(f"vectors have dimension {vectors.shape[1]}, the store {dim}")


def text_nodes(ids: list[str], vectors: np.ndarray) -> list[TextNode]:
    return [TextNode(id_=i, text="", embedding=v.tolist()) for i, v in zip(ids, vectors)]
