"""The index on disk: generations written atomically, a manifest, and a writer lock.

Layout of the data folder:
    current -> gen-000007      symlink, swapped atomically with os.replace
    gen-000007/manifest.json   model, chunker, store and article hashes
    gen-000007/articles.jsonl  article texts (chunk spans point into these)
    gen-000007/chunks.jsonl    chunk id, article id, paragraph, start, end, text
    gen-000007/store/          the vector store's own files (FAISS: the vectors; Milvus:
                               the collection's name and the chunk ids it holds for us)
    milvus.db/                 Milvus Lite's files, if the Milvus store uses the default URI
    .index-id                  this data folder's id, marking the Milvus collections it owns
A writer builds the next generation in a temporary folder, fsyncs it, renames it to its
final name and only then moves `current`. A crash at any point leaves `current` pointing
at a complete generation, so the previous index always loads. Old generations are
renamed to `.deleting-gen-*` before they are removed, so every gen-* folder is whole.
Milvus vectors live outside the folder; `index.stores.milvus` explains how they are
inserted before the switch and released after it, so that this stays true.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.chunking import Chunk
from index.errors import IndexBusyError, IndexError_, IndexMismatchError, NoIndexError
from index.sources import Article
from index.stores import StoreConfig, StoreError, VectorStore, as_store_config, load_store

MANIFEST_VERSION = 1
CURRENT = "current"
DELETING = ".deleting-"  # prefix of a generation folder being removed
LOAD_ATTEMPTS = 3  # loads of a newer current after a generation vanished mid-load


__all__ = ["IndexBusyError", "IndexError_", "IndexMismatchError", "NoIndexError"]  # re-exported


@dataclass
class Manifest:
    model: dict
    chunker: dict
    store: str
    articles: dict[str, dict] = field(default_factory=dict)  # id -> {source, title, sha256, chunks}
    version: int = MANIFEST_VERSION
    generation: int = 0
    created: float = 0.0

    @property
    def chunk_count(self) -> int:
        return sum(a["chunks"] for a in self.articles.values())


@dataclass
class IndexData:
    """A loaded generation: everything search needs."""

    folder: Path
    manifest: Manifest
    articles: dict[str, Article]
    chunks: dict[str, Chunk]
    store: VectorStore


def _read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def current_folder(data_dir: Path) -> Path | None:
    link = Path(data_dir) / CURRENT
    if not link.exists():
        return None
    return link.resolve()


def read_manifest(folder: Path) -> Manifest:
    raw = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if raw.get("version") != MANIFEST_VERSION:
        raise IndexMismatchError(
            f"index at {folder} has format version {raw.get('version')}, this Sanad reads "
            f"{MANIFEST_VERSION}; rebuild it with `sanad index --rebuild PATH...`"
        )
    return Manifest(**raw)


def check_compatible(manifest: Manifest, model: dict, chunker: dict,
                     store: StoreConfig | str, folder: Path) -> None:
    fix = "rebuild it with `sanad index --rebuild PATH...` (or change the settings back)"
    if manifest.model.get("hash") != model["hash"] or manifest.model.get("dim") != model["dim"]:
        raise IndexMismatchError(
            f"the index at {folder} was built with embedding model {manifest.model.get('name')!r} "
            f"({manifest.model.get('dim')}-d), but the settings use {model['name']!r} "
            f"({model['dim']}-d); {fix}"
        )
    if manifest.chunker != chunker:
        raise IndexMismatchError(
            f"the index at {folder} was built with chunker settings {manifest.chunker}, the "
            f"settings now say {chunker}; {fix}"
        )
    kind = as_store_config(store).kind
    if manifest.store != kind:
        raise IndexMismatchError(
            f"the index at {folder} is a {manifest.store!r} store, the settings say {kind!r}; "
            f"move it with `sanad store copy --to {kind}`, or {fix}"
        )


def load_index(data_dir: Path, model: dict | None = None, chunker: dict | None = None,
               store: StoreConfig | str | None = None) -> IndexData:
    """The current generation. With model, chunker and store given, first check that the
    index was built with them. `store` also says how to reach Milvus (default: the Milvus
    Lite file in `data_dir`); the manifest says which store the generation uses."""
    for _ in range(LOAD_ATTEMPTS - 1):
        folder = _current_or_fail(data_dir)
        try:
            return _load_generation(folder, data_dir, model, chunker, store)
        except Exception:
            # Two writes while this one read can prune the generation it opened (only the
            # newest two stay on disk). Then `current` has moved on to a complete one: load
            # that. A failure with `current` unmoved is the index's own.
            if current_folder(data_dir) == folder:
                raise
    return _load_generation(_current_or_fail(data_dir), data_dir, model, chunker, store)


def _current_or_fail(data_dir: Path) -> Path:
    folder = current_folder(data_dir)
    if folder is None:
        raise NoIndexError(
            f"no index in {data_dir}; build one with `sanad index PATH...` (e.g. `sanad index seeds/`)"
        )
    return folder


def _load_generation(folder: Path, data_dir: Path, model: dict | None, chunker: dict | None,
                     store: StoreConfig | str | None) -> IndexData:
    manifest = read_manifest(folder)
    if model is not None and chunker is not None and store is not None:
        check_compatible(manifest, model, chunker, store, folder)
    articles = {}
    for row in _read_jsonl(folder / "articles.jsonl"):
        articles[row["id"]] = Article(**row)
    chunks = {row["id"]: Chunk(**row) for row in _read_jsonl(folder / "chunks.jsonl")}
    vector_store = load_store(manifest.store, folder / "store", manifest.model["dim"],
                              as_store_config(store), data_dir, chunk_ids=chunks)
    # FAISS: as many vectors as chunks; Milvus (which may hold more): a vector for each chunk.
    problem = vector_store.check(list(chunks))
    if problem is None and manifest.chunk_count != len(chunks):
        problem = f"the manifest counts {manifest.chunk_count} chunks, chunks.jsonl {len(chunks)}"
    if problem:
        raise IndexError_(
            f"index at {folder} is inconsistent ({problem}); rebuild it with "
            "`sanad index --rebuild PATH...`"
        )
    return IndexData(folder=folder, manifest=manifest, articles=articles, chunks=chunks,
                     store=vector_store)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _point_current(data_dir: Path, generation: Path) -> None:
    """The switch: one rename makes `generation` current."""
    link_tmp = data_dir / f".{CURRENT}.tmp"
    link_tmp.unlink(missing_ok=True)
    link_tmp.symlink_to(generation.name)
    os.replace(link_tmp, data_dir / CURRENT)


def write_generation(data_dir: Path, manifest: Manifest, articles: dict[str, Article],
                     chunks: dict[str, Chunk], store: VectorStore) -> Path:
    """Write a complete new generation and make it current, atomically."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = current_folder(data_dir)
    manifest.generation = (read_manifest(previous).generation + 1) if previous else 1
    manifest.created = time.time()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-gen-", dir=data_dir))
    try:
        store.save(tmp / "store")
        _write_jsonl(tmp / "articles.jsonl", (asdict(a) for a in articles.values()))
        _write_jsonl(tmp / "chunks.jsonl", (asdict(c) for c in chunks.values()))
        (tmp / "manifest.json").write_text(
            json.dumps(asdict(manifest), ensure_ascii=False, indent=1), encoding="utf-8")
        for path in tmp.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        for sub in [tmp / "store", tmp]:
            _fsync_dir(sub)
        final = data_dir / f"gen-{manifest.generation:06d}"
        if final.exists():  # left by a crash after rename but before the switch
            shutil.rmtree(final)
        os.rename(tmp, final)
        _point_current(data_dir, final)
        _fsync_dir(data_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(data_dir)
    try:
        release_unused(data_dir, store)
    except StoreError as exc:
        raise StoreError(f"{final.name} is written and current, but releasing unused vectors "
                         f"failed: {exc}; the next `sanad index` run tries again") from exc
    return final


def store_folders(data_dir: Path) -> list[Path]:
    """The store folders of the current generation and the older ones still on disk.

    A generation newer than current was never current (a crash between its rename and
    the switch): no reader has it, and the next write replaces it, so it holds nothing.
    """
    current = current_folder(data_dir)
    if current is None:
        return []
    return [gen / "store" for gen in sorted(Path(data_dir).glob("gen-*"))
            if gen.name <= current.name]


def release_unused(data_dir: Path, store: VectorStore) -> None:
    """Let the store drop what no generation on disk uses (Milvus rows; FAISS: nothing).

    Only under the writer lock. The generation before current stays on disk (see `prune`),
    so rows of chunks removed now go at the next write, when no reader can still use them.
    """
    store.after_switch(store_folders(data_dir))


def prune(data_dir: Path, keep: int = 2) -> None:
    """Remove leftovers of crashed writes and all but the newest `keep` generations.

    The one before current stays so that a reader that opened it a moment ago still
    finds its files.
    """
    data_dir = Path(data_dir)
    current = current_folder(data_dir)
    for tmp in data_dir.glob(".tmp-gen-*"):
        if time.time() - tmp.stat().st_mtime > 5:  # not one being written right now
            shutil.rmtree(tmp, ignore_errors=True)
    for doomed in data_dir.glob(f"{DELETING}gen-*"):  # a crash stopped their removal
        shutil.rmtree(doomed, ignore_errors=True)
    gens = sorted(data_dir.glob("gen-*"))
    for old in gens[:-keep]:
        if old != current:
            # Renamed first, so a crash mid-delete never leaves a gen-* folder with half
            # its files for `store_folders` (and Milvus's sweep) to read.
            doomed = data_dir / f"{DELETING}{old.name}"
            os.rename(old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)


@contextlib.contextmanager
def writer_lock(data_dir: Path, wait: bool = False) -> Iterator[None]:
    """One indexer at a time per data folder (readers never wait)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".writer.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise IndexBusyError(
                f"another `sanad index` is writing to {data_dir}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
