"""Vector stores behind one small interface (`VectorStore`): FAISS files (default, see
`index.stores.faiss` and `faiss_layout`) or a Milvus collection (`index.stores.milvus`).
This module picks the store a setting or a manifest names."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from index.stores.base import (
    FAISS_INDEXES,
    StoreConfig,
    StoreError,
    StoreMismatchError,
    VectorStore,
    as_store_config,
)
from index.stores.faiss import FaissStore
from index.stores.milvus import MilvusStore

__all__ = ["FAISS_INDEXES", "STORES", "FaissStore", "MilvusStore", "StoreConfig", "StoreError",
           "StoreMismatchError", "VectorStore", "as_store_config", "create_store",
           "describe_store", "load_store"]

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
