"""One settings object, from defaults, an optional sanad.toml and SANAD_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from index import ChunkerConfig, IndexConfig, RemoteConfig, SearchConfig, StoreConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    # In a source checkout the index lives beside the code (git-ignored `data/`); an
    # installed copy keeps it in the user's data folder.
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "data"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "sanad"


def _default_models_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sanad" / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SANAD_", toml_file=os.environ.get("SANAD_CONFIG", "sanad.toml"),
        extra="forbid",
    )

    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="where the built index lives")
    models_dir: Path = Field(default_factory=_default_models_dir,
                             description="user-level cache of fetched models")
    embed_model: str = Field("embeddinggemma-300m", description=(
        "a fetched model alias, a sentence-transformers folder, or a hub name"))
    embed_dtype: Literal["bfloat16", "float32"] = "bfloat16"
    # a float32 copy of the bfloat16 model's layers for queries: a little faster, 0.6 GB more
    embed_query_twin: bool = False
    # measured here: batches of 4-8 embed faster than 32 on 2 CPU threads
    embed_batch_size: int = Field(8, ge=1, le=1024)
    embed_backend: Literal["local", "openai"] = Field("local", description=(
        "local: the model runs in this process; openai: an OpenAI-compatible /v1/embeddings "
        "server (Text Embeddings Inference, vLLM, Infinity) at embed_url"))
    embed_url: str | None = Field(None, description="the embedding server, e.g. http://gpu:8080")
    embed_api_key: SecretStr | None = Field(None, description="bearer key for the embedding server")
    embed_server_model: str | None = Field(None, description=(
        "the model name sent to the embedding server; default: embed_model"))
    embed_concurrency: int = Field(4, ge=1, le=64, description=(
        "batches sent to the embedding server at once"))
    embed_timeout: float = Field(60.0, gt=0, description="seconds per embedding request")
    embed_retries: int = Field(5, ge=0, le=20, description=(
        "further attempts after a 429, 5xx or broken connection, with exponential back-off"))
    threads: int | None = Field(None, ge=1, description=(
        "CPU threads for the models and for building FAISS indexes"))
    chunk_size: int = Field(256, ge=16, le=2048, description="chunk size in model tokens")
    store: Literal["faiss", "milvus"] = "faiss"
    faiss_index: Literal["auto", "flat", "ivf", "hnsw"] = Field("auto", description=(
        "FAISS index type; auto: exact flat up to 20k vectors, IVF above"))
    milvus_uri: str | None = Field(None, description=(
        "a Milvus server (http://host:19530) or a Milvus Lite file ending in .db; "
        "default: milvus.db in the data folder"))
    milvus_token: SecretStr | None = Field(None, description="user:password or API key")
    milvus_collection: str = Field("sanad_chunks", max_length=200,
                                   pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description=(
        "collection name (one per index); the model's fingerprint is appended"))
    hybrid: Literal["auto", "off"] = "auto"
    lexical_weight: float = Field(0.5, ge=0.0, le=1.0)
    top_k: int = Field(5, ge=1, le=50)
    max_file_mb: float = Field(20.0, gt=0)
    # embed, while indexing, the sentences evidence is ranked by (else: on a question's
    # first retrieval of their chunk, which then waits for them)
    index_sentence_vectors: bool = True

    # answering
    llm_backend: Literal["auto", "local", "openai", "ollama", "extractive"] = Field(
        "auto", description="auto: local when its model and runtime are installed, else extractive")
    llm_model_path: Path | None = Field(None, description="a GGUF file for the local backend")
    llm_model: str | None = Field(None, description="model name on an openai/ollama server")
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = Field(120.0, gt=0)
    llm_context: int = Field(4096, ge=512)
    llm_max_tokens: int = Field(256, ge=16)
    # Start every call in the one llama.cpp context from its prompt's fixed part evaluated
    # alone and kept (app/kept_prompt.py): the same answer whatever was asked before, and
    # no system prompt evaluated again after a side call. docs/answering.md.
    llm_side_context: bool = True
    # llama.cpp's extra weight buffers (AMX tiles, CPU repacking). On CPUs with AMX the
    # llama-cpp-python build crashed (SIGSEGV) decoding any prompt of more than one token,
    # and on an AVX-512 CPU prompts evaluated faster without them, so auto turns them off
    # there and keeps them on older CPUs. On: the weights take about 0.95 GB more; off:
    # they stay in the mapped file.
    llm_extra_buffers: Literal["auto", "on", "off"] = "auto"
    # evidence_first: with the small local model, a question in another language than the
    # articles gets the answer in the articles' language plus a labelled machine translation;
    # direct: answer in the question's language; auto: direct only for openai/ollama.
    cross_language: Literal["auto", "evidence_first", "direct"] = "auto"
    # copy: an answer sentence must be its cited passage's own words (in at most two
    # pieces) or that passage is quoted instead; support: at least half its words are in
    # the cited passage. auto: copy for the small local model, support for openai/ollama.
    answer_check: Literal["auto", "copy", "support"] = "auto"
    # span: the small local model copies the shortest run of the evidence's words that
    # answers (the whole sentence stays beside it as evidence), and a cross-language answer
    # renders only that span; sentences: one to three answer sentences. auto: span for the
    # small local model, sentences for openai/ollama.
    answer_form: Literal["auto", "span", "sentences"] = "auto"
    # A rendering of the article's words into the reader's language is shown only when the
    # embedding model's cross-lingual cosine to those words reaches this (eval/
    # calibrate_rendering.py: aligned dev-set answers against other answers of their article).
    render_min_similarity: float = Field(0.5, ge=-1, le=1)
    # ...and when each of its content words is within this cosine of some word of the
    # article's words (a word with no counterpart there is an invention).
    render_min_word_similarity: float = Field(0.6, ge=-1, le=1)
    # A capitalised word that sounds like nothing in the article's words is still no
    # invention when it translates one of them ("Sweden" for السويد, "Court" for المحكمة):
    # its cosine to that word reaches this (same calibration; other names stay below it).
    render_min_name_similarity: float = Field(0.75, ge=-1, le=1)
    # ...and when each content word of the article's words is within this cosine of some
    # word of the rendering, or sounds like one of its names: a rendering that leaves a word
    # out ("if you have not spent" for "if it does not commit to spending") says something
    # else (read off the renderings local eval runs showed: below this, wrong ones get
    # through; above, right ones are lost; eval/reports/rendering-calibration).
    render_min_coverage_similarity: float = Field(0.5, ge=-1, le=1)
    # A clause of a long answer part shown beside "…" (its other clauses withheld) has no
    # sentence around it that passed: it needs this cosine to its own words (read off the
    # clauses a local xquad run showed that way; eval/reports/xquad-local-span-s150).
    render_min_clause_similarity: float = Field(0.7, ge=-1, le=1)
    # An answer part of at most five words whose two greedy renderings both fail the checks
    # gets this many sampled ones (fixed seeds), which meet the same checks; 0 turns
    # sampling off. Each costs one short model call after the answer is shown.
    render_sampled_candidates: int = Field(3, ge=0, le=8)
    evidence_sentences: int = Field(3, ge=1, le=10)
    history_turns: int = Field(3, ge=0, le=20)
    max_question_chars: int = Field(2000, ge=10)
    # threshold: refuse when the best evidence sentence's cosine is below the cuts below (set
    # per question language on the seed questions with EmbeddingGemma); model: a logistic
    # regression over measurements of the evidence (refusal_model.json, fit on the dev sets
    # and their gold-removed copies by eval/fit_refusal.py): far fewer false refusals, but
    # it answers near-topic traps the threshold refuses (docs/answering.md#refusal).
    refusal_rule: Literal["model", "threshold"] = "threshold"
    refuse_below_en: float = Field(0.40, ge=-1, le=1)
    refuse_below_ar: float = Field(0.50, ge=-1, le=1)
    # A model's NOT_FOUND is overruled (the evidence is quoted) when the best evidence
    # scores this far above the refusal threshold (threshold rule), or when p(answerable)
    # is at least quote_above (model rule); otherwise it refuses.
    quote_margin: float = Field(0.13, ge=0, le=2)
    quote_above: float = Field(0.9, ge=0, le=1)

    # web server (`sanad serve`): the chat, the API and the embeddable widget
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description=(
        "origins (scheme://host[:port]) allowed to call the API from a browser, besides the "
        "server's own; comma-separated in SANAD_CORS_ORIGINS"))
    widget_key: str | None = Field(None, pattern=r"^[A-Za-z0-9._~+/=-]{1,200}$", description=(
        "a public key the widget sends as X-Sanad-Key; when set, /api/ask, /api/chat, "
        "/v1/chat/completions and Gradio's API require it (the chat page gets it as a cookie)"))
    public_url: str | None = Field(None, description=(
        "the address visitors use (https://sanad.example.org), when it is not the one "
        "`sanad serve` listens on (behind a proxy); requests naming another host are refused"))
    admin_token: SecretStr | None = Field(None, description=(
        "needed to add articles through the web; without it web uploads are off unless "
        "the server listens on loopback only"))
    max_upload_mb: float = Field(2.0, gt=0, description="largest file the web upload takes")
    uploads_per_hour: int = Field(20, ge=0, description="web uploads per client IP; 0: off")
    rate_limit_per_minute: int = Field(30, ge=0, description="answer requests per client IP; 0: off")
    max_request_kb: int = Field(64, ge=1, description="largest API request body")
    concurrent_answers: int = Field(8, ge=1, le=64, description=(
        "answers the server works on at once; their model calls still run one at a time, "
        "and their embeddings are batched"))
    queue_deadline_s: float = Field(30.0, gt=0, description=(
        "the longest a request waits for its turn; when it could not start by then, the "
        "API answers 503 busy with an honest Retry-After"))
    embed_batch_wait_ms: float = Field(5.0, ge=0, le=100, description=(
        "how long the server gathers concurrent answers' embeddings into one batch"))
    embed_batch_max: int = Field(16, ge=1, le=256, description=(
        "the most texts the server gathers into one embedding batch"))
    max_conversations: int = Field(1000, ge=1)
    conversation_minutes: int = Field(60, ge=1, description="a conversation idle this long is forgotten")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        return value

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _normalise_origins(cls, value: list[str]) -> list[str]:
        origins = []
        for raw in value:
            parts = urlsplit(raw.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
                raise ValueError(f"{raw!r} is not an origin like https://example.org")
            origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return origins

    @field_validator("public_url", mode="after")
    @classmethod
    def _public_origin(cls, value: str | None) -> str | None:
        return None if value is None else cls._normalise_origins([value])[0]

    @model_validator(mode="after")
    def _embed_server_needs_url(self) -> Settings:
        if self.embed_backend == "openai" and not self.embed_url:
            raise ValueError("embed_backend 'openai' needs embed_url (SANAD_EMBED_URL), the "
                             "embedding server's address, e.g. http://gpu-host:8080")
        return self

    @field_validator("data_dir", "models_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings,
                                   env_settings, dotenv_settings, file_secret_settings,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls),
                file_secret_settings)

    def store_config(self) -> StoreConfig:
        token = self.milvus_token.get_secret_value() if self.milvus_token else None
        return StoreConfig(kind=self.store, milvus_uri=self.milvus_uri, milvus_token=token,
                           milvus_collection=self.milvus_collection,
                           faiss_index=self.faiss_index, threads=self.threads)

    def remote_embed_config(self, query_prompt: str = "",
                            document_prompt: str = "") -> RemoteConfig:
        """How to reach the embedding server (embed_backend "openai")."""
        key = self.embed_api_key.get_secret_value() if self.embed_api_key else None
        return RemoteConfig(url=self.embed_url or "", model=self.embed_server_model or self.embed_model,
                            api_key=key, concurrency=self.embed_concurrency,
                            batch_size=self.embed_batch_size, timeout=self.embed_timeout,
                            retries=self.embed_retries, query_prompt=query_prompt,
                            document_prompt=document_prompt)

    def index_config(self) -> IndexConfig:
        return IndexConfig(
            data_dir=self.data_dir, store=self.store_config(),
            chunker=ChunkerConfig(chunk_size=self.chunk_size),
            max_file_bytes=int(self.max_file_mb * 1024 * 1024),
            sentence_vectors=self.index_sentence_vectors,
        )

    def search_config(self) -> SearchConfig:
        return SearchConfig(hybrid=self.hybrid, lexical_weight=self.lexical_weight)
