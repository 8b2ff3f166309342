"""A Milvus collection through llama-index's `MilvusVectorStore`.

Milvus is one external collection shared by all generations, so it follows different
rules, chosen so that every generation on disk stays loadable and correct whatever
happens to the writer:

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

import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.vector_stores.types import VectorStoreQuery

from index.stores.base import (
    REBUILD,
    StoreConfig,
    StoreError,
    StoreMismatchError,
    check_batch,
    text_nodes,
)

INDEX_ID_FILE = ".index-id"


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
        check_batch(ids, vectors, self.dim)
        present = self._present(ids)
        fresh = [n for n, i in enumerate(ids) if i not in present]
        for batch in _batches(fresh, self.BATCH):
            self._call(self._store.add, text_nodes([ids[n] for n in batch], vectors[batch]))
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
