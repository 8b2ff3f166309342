"""Incremental indexing: read and hash the files, `plan` the changes, `apply` them (chunk and
embed only what changed, reuse what is already indexed, write a generation atomically)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.changes import Plan, plan, unique_ids
from index.chunking import Chunk, Chunker, ChunkerConfig, chunk_id
from index.embedding import Embedder
from index.sentence_cache import SentenceVectors, embed_chunk_sentences
from index.sources import DEFAULT_MAX_FILE_BYTES, Article, SourceError, discover, read_article
from index.storage import (
    IndexData,
    IndexError_,
    Manifest,
    NoIndexError,
    load_index,
    prune,
    release_unused,
    write_generation,
    writer_lock,
)
from index.stores import StoreConfig, as_store_config, create_store


@dataclass(frozen=True)
class IndexConfig:
    data_dir: Path
    store: StoreConfig | str = field(default_factory=StoreConfig)  # a name stands for its defaults
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # Embed the sentences evidence is ranked by while indexing, not when a question first
    # retrieves their chunk (which then waits for them).
    sentence_vectors: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", as_store_config(self.store))


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    chunks_total: int = 0
    written: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated",
                 f"{len(self.removed)} removed", f"{len(self.unchanged)} unchanged"]
        line = f"{', '.join(parts)}; embedded {self.chunks_embedded} chunks"
        if self.sentences_embedded:
            line += f" and {self.sentences_embedded} sentences"
        line += f"; index holds {self.chunks_total} chunks"
        if not self.written:
            line += " (nothing changed, index not rewritten)"
        if self.errors:
            line += f"; {len(self.errors)} file(s) skipped with errors"
        return line


def index_paths(paths: Iterable[Path | str], config: IndexConfig, embedder: Embedder, *,
                rebuild: bool = False, progress: bool = True, log=print) -> IndexReport:
    """Bring the index in line with the files under `paths`: read them, `plan`, `apply`.

    Files already indexed with the same content hash are not embedded again; changed files
    replace their chunks; files that were indexed from one of `paths` and are gone now are
    removed. Files that cannot be read are reported and skipped; the rest is indexed.
    A `LazyEmbedder` loads its model only when something needs embedding.
    """
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    model_info = embedder.identity.as_dict()
    with writer_lock(config.data_dir):
        current: IndexData | None = None
        if not rebuild:
            with contextlib.suppress(NoIndexError):
                current = load_index(config.data_dir, model_info, config.chunker.as_dict(),
                                     config.store)
        files, errors = discover(paths)
        scanned: list[Article] = []
        for path in files:
            try:
                scanned.append(read_article(path, config.max_file_bytes))
            except SourceError as err:
                errors.append(err)
        for err in errors:
            log(f"error: {err}")
        manifest = current.manifest if current else None
        scanned = unique_ids(scanned, manifest.articles if manifest else {})
        scope = [p.resolve() for p in paths if p.exists()]
        failed_sources = {str(Path(e.path).resolve()) for e in errors}
        report = apply(plan(manifest, scanned, scope, failed_sources), current, config, embedder,
                       rebuild=rebuild, progress=progress, log=log)
    report.errors[:0] = errors
    report.seconds = time.perf_counter() - started
    return report


def apply(changes: Plan, current: IndexData | None, config: IndexConfig, embedder: Embedder, *,
          rebuild: bool = False, progress: bool = True, log=print) -> IndexReport:
    """Do what `changes` says to `current` (None: a new index) and write the next generation.

    Call under `writer_lock(config.data_dir)`, with `current` loaded under it. Nothing is
    written when nothing changed (then only a crashed run's Milvus leftovers are released).
    """
    report = IndexReport(added=list(changes.added), updated=list(changes.updated),
                         removed=list(changes.removed), unchanged=list(changes.unchanged))
    model_info = embedder.identity.as_dict()
    known = dict(current.articles) if current else {}
    articles = dict(known)
    chunks = dict(current.chunks) if current else {}
    store = current.store if current else create_store(
        config.store, model_info["dim"], config.data_dir, model_info["hash"])
    chunks_of: dict[str, list[str]] = {}
    for cid, chunk in chunks.items():
        chunks_of.setdefault(chunk.article_id, []).append(cid)
    for art in changes.relabelled:
        articles[art.id] = art

    copied: list[tuple[Chunk, np.ndarray]] = []
    for art, original in changes.reused:
        old_ids = sorted(chunks_of[original], key=lambda cid: chunks[cid].start)
        for old, vector in zip(old_ids, store.vectors(old_ids)):
            c = chunks[old]
            copied.append((Chunk(id=chunk_id(art, c.start, c.end), article_id=art.id,
                                 paragraph=c.paragraph, start=c.start, end=c.end,
                                 text=c.text), vector))
    if copied:
        store.add([c.id for c, _ in copied], np.stack([v for _, v in copied]))
        for c, _ in copied:
            chunks[c.id] = c
        log(f"reused the vectors of {len(copied)} chunks of already indexed text")

    for aid in changes.replaced:
        old_ids = chunks_of.pop(aid, [])
        store.delete(old_ids)
        for cid in old_ids:
            del chunks[cid]
        articles.pop(aid, None)
    for art, _ in changes.reused:
        articles[art.id] = art

    new_chunks: list[Chunk] = []
    chunker = Chunker(config.chunker, embedder.count_tokens) if changes.to_embed else None
    for art in changes.to_embed:
        pieces = chunker.chunk(art)
        if not pieces:
            report.errors.append(SourceError(art.source, "produced no chunks"))
            continue
        articles[art.id] = art
        new_chunks.extend(pieces)
    if new_chunks:
        log(f"embedding {len(new_chunks)} chunks from {len(changes.to_embed)} article(s)")
        vectors = embedder.embed_documents([c.text for c in new_chunks], progress)
        store.add([c.id for c in new_chunks], vectors)
    for c in new_chunks:
        chunks[c.id] = c
    report.chunks_embedded = len(new_chunks)
    report.chunks_total = len(chunks)

    # E.g. a FAISS index that has outgrown flat, or whose type the settings changed.
    outdated = store.outdated() if current is not None else None
    if outdated:
        log(f"writing the index again: {outdated}")
    changed = bool(changes.changes_content or rebuild or current is None or outdated
                   or len(articles) != len(known)
                   or any(articles[a] != known.get(a) for a in articles))
    if changed and (articles or current is not None):
        counts: dict[str, int] = {}
        for c in chunks.values():
            counts[c.article_id] = counts.get(c.article_id, 0) + 1
        manifest = Manifest(
            model=model_info, chunker=config.chunker.as_dict(), store=config.store.kind,
            articles={a.id: {"source": a.source, "title": a.title, "sha256": a.sha256,
                             "chunks": counts.get(a.id, 0)} for a in articles.values()},
        )
        write_generation(config.data_dir, manifest, articles, chunks, store)
        report.written = True
        if new_chunks and config.sentence_vectors:
            report.sentences_embedded = _embed_sentences(config, embedder, articles,
                                                         new_chunks, progress, log)
    elif current is not None:
        # Nothing to write, but an earlier run may have crashed and left a folder being
        # removed, or Milvus rows.
        prune(config.data_dir)
        release_unused(config.data_dir, current.store)
    return report


def _embed_sentences(config: IndexConfig, embedder: Embedder, articles: dict[str, Article],
                     new_chunks: list[Chunk], progress: bool, log) -> int:
    """Embed the sentences of the new chunks that evidence is ranked by, once the index is
    written: if this fails, the index stands and questions embed them on first use."""
    model = embedder.identity
    cache = SentenceVectors(config.data_dir, model.hash, model.dim)
    try:
        return embed_chunk_sentences(
            cache, embedder.embed_documents,
            [(articles[c.article_id].sha256, articles[c.article_id].text, c.text, c.start)
             for c in new_chunks], progress=progress)
    except Exception as exc:  # noqa: BLE001 - an optional speed-up; the index is written
        log(f"warning: sentence vectors not embedded ({exc}); questions will embed them "
            "when they first need them")
        return 0


@dataclass
class CopyReport:
    source: str
    target: str
    vectors: int
    folder: Path
    seconds: float

    def summary(self) -> str:
        return (f"copied {self.vectors} vectors from {self.source} to {self.target} "
                f"without embedding; {self.folder.name} is current")


def copy_store(data_dir: Path, target: StoreConfig | str, batch_size: int = 1000) -> CopyReport:
    """Write the current generation again with its vectors in another store.

    Nothing is embedded: vectors are read back from the current store (FAISS reconstructs
    them from its flat index, Milvus fetches them by id), in batches to bound memory. The
    new generation's manifest names the target store, so runs with that store setting use
    it; the old generation stays on disk as the previous one.
    """
    started = time.perf_counter()
    target = as_store_config(target)
    with writer_lock(data_dir):
        current = load_index(data_dir, store=target)
        source = current.manifest.store
        if source == target.kind:
            raise IndexError_(f"the index at {current.folder} is a {source} store already")
        model = current.manifest.model
        store = create_store(target, model["dim"], data_dir, model["hash"])
        ids = list(current.chunks)
        for start in range(0, len(ids), batch_size):
            part = ids[start:start + batch_size]
            store.add(part, current.store.vectors(part))
        manifest = dataclasses.replace(current.manifest, store=target.kind)
        folder = write_generation(data_dir, manifest, current.articles, current.chunks, store)
    return CopyReport(source=source, target=target.kind, vectors=len(ids), folder=folder,
                      seconds=time.perf_counter() - started)
