"""SanadService: the one door to Sanad. The CLI, the web app (REST, SSE, OpenAI-compatible,
Gradio, widget), the eval and the bench call it, and nothing below it.

It owns the settings, the embedding model, the searcher of the current index generation and
the LLM backend, each loaded once, and hands every question to the answer pipeline
(app/answering). A question is checked here before anything loads; a door that checked it
earlier with `checked_question` passes the checked question on, and it is not checked again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from llama_index.core import Settings as LlamaSettings
from llama_index.core.llms import MockLLM

from app.answering.question import AnswerError, Turn, checked_question
from app.answering.results import AnswerResult, Token
from app.answering.service import AnswerService
from app.batching import BatchingEmbedder
from app.indexing_job import IndexJob, Slot, SlotEmbedder, no_slot
from app.llm import Backend, make_backend
from app.model_lock import LockedBackend
from app.settings import Settings
from index import (
    Article,
    Embedder,
    EmbedderIdentity,
    IndexBusyError,
    IndexError_,
    IndexReport,
    LazyEmbedder,
    Passage,
    Searcher,
    connect_embedder,
    current_folder,
    describe,
    index_paths,
    load_embedder,
    load_index,
    model_text,
)

log = logging.getLogger("sanad")
# What new code imports from here rather than from the answering package.
__all__ = ["AnswerError", "AnswerResult", "SanadService", "Token", "Turn", "checked_question"]


class SanadService:
    def __init__(self, settings: Settings | None = None,
                 embed_model: Embedder | None = None):
        self.settings = settings or Settings()
        self._embed_model = embed_model
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()
        self._answers: AnswerService | None = None  # made with the backend, on first use
        self._answers_lock = threading.Lock()  # loading an LLM must not hold up searcher()
        self._model_lock: threading.Lock | None = None  # set by share_model
        self._batcher: BatchingEmbedder | None = None

    @property
    def embed_model(self) -> Embedder:
        if self._embed_model is None:
            s = self.settings
            if s.embed_backend == "openai":
                text = model_text(s.embed_model, s.models_dir)
                self._embed_model = connect_embedder(
                    s.remote_embed_config(text.query_prompt, text.document_prompt),
                    text.count_tokens)
            else:
                self._embed_model = load_embedder(s.embed_model, s.models_dir,
                                                  dtype=s.embed_dtype,
                                                  batch_size=s.embed_batch_size,
                                                  threads=s.threads,
                                                  query_twin=s.embed_query_twin)
        # llama-index falls back to OpenAI unless told otherwise.
        LlamaSettings.embed_model = self._embed_model.model
        if self._answers is None or self._answers.backend.llm is None:
            LlamaSettings.llm = MockLLM()
        return self._embed_model

    def index(self, paths: list[Path], *, rebuild: bool = False, progress: bool = True,
              log=print) -> IndexReport:
        s = self.settings
        if self._embed_model is not None or s.embed_backend != "local":
            embed = self.embed_model
        else:  # load the model only if some file needs embedding
            info = describe(s.embed_model, s.models_dir)
            embed = (LazyEmbedder(EmbedderIdentity(**info), lambda: self.embed_model)
                     if info["dim"] is not None else self.embed_model)
        report = index_paths(paths, s.index_config(), embed,
                             rebuild=rebuild, progress=progress, log=log)
        with self._lock:
            self._searcher = None
        return report

    def searcher(self) -> Searcher:
        """The searcher for the current index, reloaded when a re-index has replaced it."""
        with self._lock:
            folder = current_folder(self.settings.data_dir)
            if self._searcher is None or self._searcher.data.folder != folder:
                embed = self.embed_model
                config = self.settings.index_config()
                data = load_index(self.settings.data_dir, embed.identity.as_dict(),
                                  config.chunker.as_dict(), config.store)
                self._searcher = Searcher(data, self._answer_embedder(embed),
                                          self.settings.search_config())
            return self._searcher

    def share_model(self, lock: threading.Lock) -> None:
        """Let answers run in several threads at once (the web server does): every model
        call (an embedding batch, an LLM reply) then takes `lock`, and the embeddings of
        answers running together are made in one batch (app/batching.py). Indexing keeps
        the plain model, in the slot its caller gives it."""
        with self._lock:
            if self._batcher is not None:
                self._batcher.close()
            self._model_lock, self._batcher, self._searcher = lock, None, None
        with self._answers_lock:
            if self._answers is not None:
                self._answers.backend = LockedBackend(self._answers.backend, lock)

    def _answer_embedder(self, embed: Embedder) -> Embedder:
        """What answers embed with: the model, batched once share_model was called."""
        if self._model_lock is None:
            return embed
        if self._batcher is None or self._batcher.inner is not embed:
            self._batcher = BatchingEmbedder(embed, self._model_lock,
                                             wait_ms=self.settings.embed_batch_wait_ms,
                                             max_batch=self.settings.embed_batch_max)
        return self._batcher

    def retrieve(self, question: str, k: int | None = None) -> list[Passage]:
        """The top-k retrieved chunks alone, without an answer."""
        question = checked_question(question, self.settings.max_question_chars)
        return self.searcher().search(question, k or self.settings.top_k)

    def warm_up(self) -> None:
        """Load the index, the embedding model and the LLM, and evaluate the fixed parts of
        the LLM's prompts, before the first question."""
        self.searcher()
        self._answer_service().warm_up()

    @property
    def backend(self) -> Backend:
        """The LLM backend the settings choose, loaded on first use (LLMUnavailable if it
        cannot be); its `name` and `notice` say what answers."""
        return self._answer_service().backend

    def answer(self, question: str, history: list[Turn] | None = None,
               k: int | None = None) -> AnswerResult:
        question = checked_question(question, self.settings.max_question_chars)
        return self._answer_service().answer(question, history, k)

    def answer_stream(self, question: str, history: list[Turn] | None = None,
                      k: int | None = None) -> Iterator[Token | AnswerResult]:
        """Text tokens as they are written, then one final AnswerResult. A bad question
        raises AnswerError here, before the first item."""
        question = checked_question(question, self.settings.max_question_chars)
        return self._answer_service().answer_stream(question, history, k)

    def _answer_service(self) -> AnswerService:
        """The answer pipeline with the settings' backend (made once)."""
        with self._answers_lock:
            if self._answers is None:
                backend = make_backend(self.settings)
                if backend.llm is not None:
                    LlamaSettings.llm = backend.llm
                if self._model_lock is not None:
                    backend = LockedBackend(backend, self._model_lock)
                self._answers = AnswerService(self.settings, self.searcher, backend)
            return self._answers

    # -- what the web shows and accepts beside answers ---------------------------------
    _index_job: IndexJob | None = None  # the latest background indexing run

    def articles(self) -> list[dict]:
        """The indexed articles: id, title, chars, sha256 and the file's base name."""
        return [_article_summary(a) for a in self.searcher().data.articles.values()]

    def article(self, article_id: str) -> dict | None:
        """One article with its text (passages' start:end point into it), or None."""
        found = self.searcher().data.articles.get(article_id)
        return None if found is None else {**_article_summary(found), "text": found.text}

    def health(self) -> dict:
        """What is loaded: the configured backend, the one answering, the index generation.

        Nothing is loaded here: before the first question (or warm-up) `index` is None.
        """
        with self._lock:
            searcher, answers = self._searcher, self._answers
        index = None
        if searcher is not None:
            manifest = searcher.data.manifest
            index = {"generation": manifest.generation, "articles": len(manifest.articles),
                     "chunks": manifest.chunk_count}
        return {"backend": self.settings.llm_backend,
                "answering_with": answers.backend.name if answers is not None else None,
                "index": index}

    def add_articles(self, paths: list[Path], *, slot: Slot = no_slot) -> IndexJob:
        """Index `paths` in a background thread; follow the returned job.

        Each embedding batch runs inside `slot()` (the web's model slot), so answers go on
        between batches. One job at a time: a second one is IndexBusyError. Who may add
        articles is the caller's decision (the web asks for the admin token).
        """
        with self._lock:
            if self._index_job is not None and not self._index_job.finished:
                raise IndexBusyError("articles are being indexed; try again when that is done")
            job = IndexJob(files=[Path(p).name for p in paths])
            self._index_job = job

        def run() -> None:
            job.state = "indexing"
            try:
                with slot():  # loaded once per process; a no-op once the server is warm
                    embed = self.embed_model
                report = index_paths(paths, self.settings.index_config(),
                                     SlotEmbedder(embed, slot, job.progress),
                                     progress=False, log=lambda message: None)
                with self._lock:
                    self._searcher = None
                job.summary = f"{report.summary()} in {report.seconds:.1f} s"
                job.problems = [f"skipped {Path(e.path).name if e.path else ''}: {e.reason}"
                                for e in report.errors]
                job.state = "done"
            except Exception as exc:  # noqa: BLE001 - the job reports it; the server goes on
                job.problems = [str(exc) if isinstance(exc, IndexError_)
                                else f"indexing failed ({type(exc).__name__})"]
                job.state = "failed"
                if not isinstance(exc, IndexError_):
                    log.exception("background indexing failed")
            finally:
                job.finished_event.set()

        threading.Thread(target=run, name="sanad-index-job", daemon=True).start()
        return job


def _article_summary(article: Article) -> dict:
    return {"id": article.id, "title": article.title, "chars": len(article.text),
            "sha256": article.sha256, "file": Path(article.source).name}
