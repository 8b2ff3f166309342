"""Incremental indexing: read, hash, chunk and embed only what changed, then write atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from index.chunking import Chunk, Chunker, ChunkerConfig, chunk_id
from index.embedding import embed_documents, identity, token_counter
from index.sources import DEFAULT_MAX_FILE_BYTES, Article, SourceError, discover, read_article
from index.storage import (
    IndexData,
    IndexError_,
    Manifest,
    NoIndexError,
    load_index,
    release_unused,
    write_generation,
    writer_lock,
)
from index.store import StoreConfig, as_store_config, create_store


@dataclass(frozen=True)
class IndexConfig:
    data_dir: Path
    store: StoreConfig | str = field(default_factory=StoreConfig)  # a name stands for its defaults
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

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
    chunks_total: int = 0
    written: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated",
                 f"{len(self.removed)} removed", f"{len(self.unchanged)} unchanged"]
        line = (f"{', '.join(parts)}; embedded {self.chunks_embedded} chunks; "
                f"index holds {self.chunks_total} chunks")
        if not self.written:
            line += " (nothing changed, index not rewritten)"
        if self.errors:
            line += f"; {len(self.errors)} file(s) skipped with errors"
        return line


def _scope_contains(scope: list[Path], source: str) -> bool:
    src = Path(source)
    return any(src == s or s in src.parents for s in scope)


def _unique_ids(articles: list[Article], known: dict[str, Article]) -> list[Article]:
    """Give two files with the same name different ids (the first keeps the plain one)."""
    by_source = {a.source: a.id for a in known.values()}
    taken = {a.id: a.source for a in known.values()}
    result = []
    for art in articles:
        wanted = by_source.get(art.source, art.id)
        candidate, n = wanted, 2
        while taken.get(candidate, art.source) != art.source:
            candidate, n = f"{wanted}-{n}", n + 1
        taken[candidate] = art.source
        result.append(art if candidate == art.id else Article(
            id=candidate, title=art.title, text=art.text, sha256=art.sha256, source=art.source))
    return result


def index_paths(paths: Iterable[Path | str], config: IndexConfig,
                embed_model: BaseEmbedding | Callable[[], BaseEmbedding],
                model_info: dict | None = None, *, rebuild: bool = False,
                progress: bool = True, log=print) -> IndexReport:
    """Bring the index in line with the files under `paths`.

    Files already indexed with the same content hash are not embedded again; changed files
    replace their chunks; files that were indexed from one of `paths` and are gone now are
    removed. Files that cannot be read are reported and skipped; the rest is indexed.
    `embed_model` may be a factory, called only when something needs embedding; then
    `model_info` ({name, hash, dim}) identifies the model without loading it.
    """
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    report = IndexReport()
    get_model = embed_model if callable(embed_model) and not isinstance(
        embed_model, BaseEmbedding) else (lambda: embed_model)
    model_info = model_info or identity(get_model()).as_dict()
    chunker_info = config.chunker.as_dict()
    with writer_lock(config.data_dir):
        current: IndexData | None = None
        if not rebuild:
            with contextlib.suppress(NoIndexError):
                current = load_index(config.data_dir, model_info, chunker_info, config.store)

        files, report.errors = discover(paths)
        scanned: list[Article] = []
        for path in files:
            try:
                scanned.append(read_article(path, config.max_file_bytes))
            except SourceError as err:
                report.errors.append(err)
        for err in report.errors:
            log(f"error: {err}")

        known = dict(current.articles) if current else {}
        scanned = _unique_ids(scanned, known)
        articles = dict(known)
        chunks = dict(current.chunks) if current else {}
        store = current.store if current else create_store(
            config.store, model_info["dim"], config.data_dir, model_info["hash"])
        chunks_of: dict[str, list[str]] = {}
        for cid, chunk in chunks.items():
            chunks_of.setdefault(chunk.article_id, []).append(cid)

        scope = [p.resolve() for p in paths if p.exists()]
        seen = {a.id for a in scanned}
        failed_sources = {str(Path(e.path).resolve()) for e in report.errors}
        for aid, art in known.items():
            if (aid not in seen and _scope_contains(scope, art.source)
                    and art.source not in failed_sources):
                report.removed.append(aid)

        to_embed: list[Article] = []
        for art in scanned:
            old = known.get(art.id)
            if old is not None and old.sha256 == art.sha256:
                report.unchanged.append(art.id)
                if old.source != art.source or old.title != art.title:
                    articles[art.id] = art
            else:
                (report.updated if old is not None else report.added).append(art.id)
                to_embed.append(art)

        # Content-hash dedup: an article whose exact text is already indexed (a moved or
        # copied file) takes that article's chunks and vectors instead of being embedded.
        replaced = [*report.removed, *(a.id for a in to_embed)]
        indexed_by_sha = {a.sha256: aid for aid, a in known.items() if chunks_of.get(aid)}
        copied: list[tuple[Chunk, np.ndarray]] = []
        copied_articles = [a for a in to_embed if a.sha256 in indexed_by_sha]
        for art in copied_articles:
            old_ids = sorted(chunks_of[indexed_by_sha[art.sha256]],
                             key=lambda cid: chunks[cid].start)
            for old, vector in zip(old_ids, store.vectors(old_ids)):
                c = chunks[old]
                copied.append((Chunk(id=chunk_id(art, c.start, c.end), article_id=art.id,
                                     paragraph=c.paragraph, start=c.start, end=c.end,
                                     text=c.text), vector))
        to_embed = [a for a in to_embed if a.sha256 not in indexed_by_sha]
        if copied:
            store.add([c.id for c, _ in copied], np.stack([v for _, v in copied]))
            for c, _ in copied:
                chunks[c.id] = c
            log(f"reused the vectors of {len(copied)} chunks of already indexed text")

        for aid in replaced:
            old_ids = chunks_of.pop(aid, [])
            store.delete(old_ids)
            for cid in old_ids:
                del chunks[cid]
            articles.pop(aid, None)
        for art in copied_articles:
            articles[art.id] = art

        new_chunks: list[Chunk] = []
        chunker = Chunker(config.chunker, token_counter(get_model())) if to_embed else None
        for art in to_embed:
            pieces = chunker.chunk(art)
            if not pieces:
                report.errors.append(SourceError(art.source, "produced no chunks"))
                continue
            articles[art.id] = art
            new_chunks.extend(pieces)
        if new_chunks:
            log(f"embedding {len(new_chunks)} chunks from {len(to_embed)} article(s)")
            vectors = embed_documents(get_model(), [c.text for c in new_chunks], progress)
            store.add([c.id for c in new_chunks], vectors)
        for c in new_chunks:
            chunks[c.id] = c
        report.chunks_embedded = len(new_chunks)
        report.chunks_total = len(chunks)

        # E.g. a FAISS index that has outgrown flat, or whose type the settings changed.
        outdated = store.outdated() if current is not None else None
        if outdated:
            log(f"writing the index again: {outdated}")
        changed = bool(report.removed or to_embed or copied or rebuild or current is None
                       or outdated or len(articles) != len(known)
                       or any(articles[a] != known.get(a) for a in articles))
        if changed and (articles or current is not None):
            counts: dict[str, int] = {}
            for c in chunks.values():
                counts[c.article_id] = counts.get(c.article_id, 0) + 1
            manifest = Manifest(
                model=model_info, chunker=chunker_info, store=config.store.kind,
                articles={a.id: {"source": a.source, "title": a.title, "sha256": a.sha256,
                                 "chunks": counts.get(a.id, 0)} for a in articles.values()},
            )
            write_generation(config.data_dir, manifest, articles, chunks, store)
            report.written = True
        elif current is not None:
            # Nothing to write, but an earlier run may have crashed and left Milvus rows.
            release_unused(config.data_dir, current.store)
    report.seconds = time.perf_counter() - started
    return report


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
