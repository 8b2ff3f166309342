"""The index on disk: generations written atomically, a manifest, and a writer lock.

Layout of the data folder:
    current -> gen-000007      symlink, swapped atomically with os.replace
    gen-000007/manifest.json   model, chunker, store and article hashes
    gen-000007/articles.jsonl  article texts (chunk spans point into these)
    gen-000007/chunks.jsonl    chunk id, article id, paragraph, start, end, text
    gen-000007/store/          the vector store's own files
A writer builds the next generation in a temporary folder, fsyncs it, renames it to its
final name and only then moves `current`. A crash at any point leaves `current` pointing
at a complete generation, so the previous index always loads.
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
from index.sources import Article
from index.store import VectorStore, load_store

MANIFEST_VERSION = 1
CURRENT = "current"


class IndexError_(RuntimeError):
    """Base class for problems with the index on disk."""


class NoIndexError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    """The index was built with another model or chunker than the settings ask for."""


class IndexBusyError(IndexError_):
    pass


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


def check_compatible(manifest: Manifest, model: dict, chunker: dict, store: str,
                     folder: Path) -> None:
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
    if manifest.store != store:
        raise IndexMismatchError(
            f"the index at {folder} is a {manifest.store!r} store, the settings say {store!r}; {fix}"
        )


def load_index(data_dir: Path, model: dict | None = None, chunker: dict | None = None,
               store: str | None = None) -> IndexData:
    folder = current_folder(data_dir)
    if folder is None:
        raise NoIndexError(
            f"no index in {data_dir}; build one with `sanad index PATH...` (e.g. `sanad index seeds/`)"
        )
    manifest = read_manifest(folder)
    if model is not None and chunker is not None and store is not None:
        check_compatible(manifest, model, chunker, store, folder)
    articles = {}
    for row in _read_jsonl(folder / "articles.jsonl"):
        articles[row["id"]] = Article(**row)
    chunks = {row["id"]: Chunk(**row) for row in _read_jsonl(folder / "chunks.jsonl")}
    vector_store = load_store(manifest.store, folder / "store", manifest.model["dim"])
    if len(vector_store) != len(chunks) or manifest.chunk_count != len(chunks):
        raise IndexError_(
            f"index at {folder} is inconsistent ({len(vector_store)} vectors, {len(chunks)} "
            "chunks); rebuild it with `sanad index --rebuild PATH...`"
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
        link_tmp = data_dir / f".{CURRENT}.tmp"
        link_tmp.unlink(missing_ok=True)
        link_tmp.symlink_to(final.name)
        os.replace(link_tmp, data_dir / CURRENT)
        _fsync_dir(data_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(data_dir)
    return final


def prune(data_dir: Path, keep: int = 2) -> None:
    """Remove leftovers of crashed writes and all but the newest `keep` generations.

    The one before current stays so that a reader that opened it a moment ago still
    finds its files.
    """
    current = current_folder(data_dir)
    for tmp in Path(data_dir).glob(".tmp-gen-*"):
        if time.time() - tmp.stat().st_mtime > 5:  # not one being written right now
            shutil.rmtree(tmp, ignore_errors=True)
    gens = sorted(Path(data_dir).glob("gen-*"))
    for old in gens[:-keep]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


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
