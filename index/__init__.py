"""Sanad's index: articles in, cited passages out. It never imports app/.

The names below are what app/ and bench/ use; the modules behind them are the layout of
DESIGN.md (sources, chunking, embedding, stores/, storage, changes + pipeline, search, text).
"""

from index.changes import Plan, plan
from index.chunking import Chunk, ChunkerConfig
from index.embedding import (
    Embedder,
    EmbedderError,
    EmbedderIdentity,
    LazyEmbedder,
    describe,
    load_embedder,
)
from index.embedding_remote import (
    EmbeddingServerError,
    RemoteConfig,
    RemoteEmbedder,
    connect_embedder,
    model_text,
)
from index.errors import IndexBusyError, IndexError_, IndexMismatchError, NoIndexError
from index.pipeline import IndexConfig, IndexReport, apply, copy_store, index_paths
from index.search import Passage, SearchConfig, Searcher
from index.sources import SUPPORTED_SUFFIXES, Article, SourceError, read_article
from index.storage import IndexData, current_folder, load_index, read_manifest
from index.stores import StoreConfig, StoreError, create_store, describe_store, load_store

__all__ = [
    "Article", "Chunk", "ChunkerConfig", "Embedder", "EmbedderError", "EmbedderIdentity",
    "EmbeddingServerError", "IndexBusyError", "IndexConfig", "IndexData", "IndexError_",
    "IndexMismatchError", "IndexReport", "LazyEmbedder", "NoIndexError", "Passage", "Plan",
    "RemoteConfig", "RemoteEmbedder", "SUPPORTED_SUFFIXES", "SearchConfig", "Searcher",
    "SourceError", "StoreConfig", "StoreError", "apply", "connect_embedder", "copy_store",
    "create_store", "current_folder", "describe", "describe_store", "index_paths",
    "load_embedder", "load_index", "load_store", "model_text", "plan", "read_article",
    "read_manifest",
]
