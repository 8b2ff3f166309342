"""Embedding through an OpenAI-compatible server (`POST {url}/v1/embeddings`).

Text Embeddings Inference, vLLM and Infinity serve this endpoint, on a GPU when one machine's
CPU is not enough. The server runs the model; Sanad applies the model's query and document
prompts itself, as the local model does, so the vectors match the local model's. Chunks are
still sized with the model's own tokenizer, loaded locally (tokenizer files only).

Documents go out in batches, `concurrency` at a time. Rate limits (429), server errors (5xx)
and broken connections are retried with exponential back-off (the server's Retry-After is
honoured); other 4xx answers (a bad key, an unknown model) and a reply with the wrong number
of vectors or the wrong dimension stop with a message that says which.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import tenacity
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from index.embedding import Embedder, EmbedderError, EmbedderIdentity, builtin_prompts, resolve_model
from index.offline import stay_offline

# Embedded once to learn what the server serves (its model name and dimension).
PROBE_TEXT = "Sanad: which model answers here?"
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After is shortened to this


class EmbeddingServerError(EmbedderError):
    """The embedding server refused, failed or answered something unusable; the message says which."""


@dataclass(frozen=True)
class RemoteConfig:
    """Where the server is and how to talk to it. `api_key` is never recorded or shown."""

    url: str
    model: str  # the name sent in each request
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 4
    batch_size: int = 32
    timeout: float = 60.0
    retries: int = 5  # further attempts after the first
    backoff: float = 0.5  # seconds before the first retry, doubled for each next one
    query_prompt: str = ""
    document_prompt: str = ""

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        base = base.removesuffix("/v1/embeddings").removesuffix("/v1")
        return f"{base}/v1/embeddings"


class _Retryable(Exception):
    """A failure worth another attempt: 429, 5xx or a broken connection."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers["retry-after"]), MAX_RETRY_AFTER_S)
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: the back-off decides


def _server_message(response: httpx.Response) -> str:
    """The server's own explanation, shortened (OpenAI's {"error": {"message": ...}} or text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or error
    return str(error)[:300]


class EmbeddingClient:
    """One HTTP client for the server, shared by the threads that send batches."""

    def __init__(self, config: RemoteConfig):
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(
            headers=headers, timeout=config.timeout,
            limits=httpx.Limits(max_connections=max(config.concurrency, 1) + 1))

    def close(self) -> None:
        self._http.close()

    def embed(self, texts: list[str]) -> tuple[str, np.ndarray]:
        """(the model name the server reports, one float32 row per text), retrying what is
        worth retrying."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=self._wait, stop=tenacity.stop_after_attempt(self.config.retries + 1),
            reraise=True)
        try:
            return retrying(self._post, texts)
        except _Retryable as exc:
            raise EmbeddingServerError(
                f"the embedding server at {self.config.endpoint} still failed after "
                f"{self.config.retries + 1} attempts: {exc.reason}") from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        backoff = self.config.backoff * 2 ** (state.attempt_number - 1)
        outcome = state.outcome.exception() if state.outcome else None
        asked = getattr(outcome, "retry_after", None)
        return max(backoff, asked or 0.0)

    def _post(self, texts: list[str]) -> tuple[str, np.ndarray]:
        endpoint = self.config.endpoint
        try:
            response = self._http.post(endpoint, json={"model": self.config.model, "input": texts,
                                                       "encoding_format": "float"})
        except httpx.TransportError as exc:  # refused, reset, timed out
            raise _Retryable(f"cannot reach it ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status} {_server_message(response)}", _retry_after(response))
        if status in (401, 403):
            raise EmbeddingServerError(
                f"the embedding server at {endpoint} refused the API key (HTTP {status}): set "
                "SANAD_EMBED_API_KEY to a key it accepts")
        if status == 404:
            raise EmbeddingServerError(
                f"the embedding server at {endpoint} answered 404 for model "
                f"{self.config.model!r}: {_server_message(response)}. Check SANAD_EMBED_URL and "
                "SANAD_EMBED_SERVER_MODEL (the name the server serves the model under)")
        if status == 413:
            raise EmbeddingServerError(
                f"the embedding server at {endpoint} found a batch of {len(texts)} texts too "
                "large (HTTP 413): lower SANAD_EMBED_BATCH_SIZE")
        if status >= 400:
            raise EmbeddingServerError(
                f"the embedding server at {endpoint} rejected the request for model "
                f"{self.config.model!r} (HTTP {status}): {_server_message(response)}")
        return self._parse(response, len(texts))

    def _parse(self, response: httpx.Response, expected: int) -> tuple[str, np.ndarray]:
        endpoint = self.config.endpoint
        try:
            body = response.json()
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = [row["embedding"] for row in rows]
            model = str(body.get("model") or self.config.model)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingServerError(
                f"the embedding server at {endpoint} did not answer with OpenAI-style "
                f"embeddings ({type(exc).__name__}: {exc})") from None
        if len(vectors) != expected:
            raise EmbeddingServerError(
                f"the embedding server at {endpoint} returned {len(vectors)} vectors for "
                f"{expected} texts")
        dims = {len(v) if isinstance(v, list) else -1 for v in vectors}
        if len(dims) != 1 or -1 in dims:
            raise EmbeddingServerError(
                f"the embedding server at {endpoint} returned vectors of mixed or unreadable "
                f"dimensions {sorted(dims)} (base64 or another encoding?)")
        return model, np.asarray(vectors, dtype=np.float32)


class RemoteEmbedding(BaseEmbedding):
    """The server as a llama-index embedding model, prompts applied as the local model does."""

    _client: EmbeddingClient = PrivateAttr()

    def __init__(self, client: EmbeddingClient, **kwargs):
        super().__init__(model_name=client.config.model,
                         embed_batch_size=client.config.batch_size, **kwargs)
        self._client = client

    def _one(self, text: str) -> list[float]:
        return self._client.embed([text])[1][0].tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._one(self._client.config.query_prompt + query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._one(self._client.config.document_prompt + text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        prompt = self._client.config.document_prompt
        return self._client.embed([prompt + t for t in texts])[1].tolist()


class RemoteEmbedder(Embedder):
    """An Embedder whose vectors come from an embedding server, batches sent concurrently."""

    def __init__(self, client: EmbeddingClient, identity: EmbedderIdentity,
                 count_tokens: Callable[[str], int]):
        super().__init__(RemoteEmbedding(client), identity, count_tokens)
        self.client = client

    def _vectors(self, texts: list[str]) -> np.ndarray:
        model, matrix = self.client.embed(texts)
        if matrix.shape[1] != self.dim:
            raise EmbeddingServerError(
                f"the embedding server at {self.client.config.endpoint} returned "
                f"{matrix.shape[1]}-d vectors, but {self.identity.name!r} gave {self.dim}-d "
                "ones when Sanad connected: is another model behind the same address?")
        if model != self.identity.name:
            raise EmbeddingServerError(
                f"the embedding server at {self.client.config.endpoint} now reports model "
                f"{model!r}, it reported {self.identity.name!r} when Sanad connected")
        return _normalised(matrix)

    def embed_documents(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._embed_all(texts, self.client.config.document_prompt, progress)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Questions that arrived together (the web's micro-batching) in one request."""
        return self._embed_all(texts, self.client.config.query_prompt)

    def _embed_all(self, texts: list[str], prompt: str, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Batches of similar length pad less on the server; the order is restored afterwards.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        size = self.client.config.batch_size
        batches = [[prompt + texts[i] for i in order[start:start + size]]
                   for start in range(0, len(order), size)]
        if len(batches) == 1:  # a question, or a few: no threads to start
            matrix = np.empty((len(texts), self.dim), dtype=np.float32)
            matrix[order] = self._vectors(batches[0])
            return matrix
        with ThreadPoolExecutor(max_workers=self.client.config.concurrency,
                                thread_name_prefix="sanad-embed") as pool:
            results = pool.map(self._vectors, batches)
            if progress:
                from tqdm import tqdm

                results = tqdm(results, total=len(batches), desc="embedding batches")
            matrix = np.empty((len(texts), self.dim), dtype=np.float32)
            matrix[order] = np.concatenate(list(results))
        return matrix


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def remote_identity(model: str, dim: int, config: RemoteConfig) -> EmbedderIdentity:
    """What the manifest records: the model the server reports, its dimension, and a hash of
    those with the prompts (other prompts give other vectors). Not the address or the key:
    the same model served elsewhere gives the same vectors."""
    recipe = {"backend": "openai", "model": model, "dim": dim,
              "query_prompt": config.query_prompt, "document_prompt": config.document_prompt}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return EmbedderIdentity(name=model, hash=digest, dim=dim)


def connect_embedder(config: RemoteConfig, count_tokens: Callable[[str], int]) -> RemoteEmbedder:
    """Ask the server once what it serves (a probe text), and return the Embedder for it."""
    if config.concurrency < 1 or config.batch_size < 1:
        raise EmbedderError("embed_concurrency and embed_batch_size must be at least 1")
    client = EmbeddingClient(config)
    try:
        model, probe = client.embed([config.document_prompt + PROBE_TEXT])
    except EmbedderError:
        client.close()
        raise
    return RemoteEmbedder(client, remote_identity(model, probe.shape[1], config), count_tokens)


@dataclass(frozen=True)
class ModelText:
    """What the client side needs of the model the server runs: its tokenizer and prompts."""

    count_tokens: Callable[[str], int]
    query_prompt: str
    document_prompt: str


def model_text(ref: str, models_dir: Path) -> ModelText:
    """The tokenizer (only its files are loaded, not the weights) and the query/document
    prompts of the model `ref` (an alias, a folder or a hub name), as the local backend uses them."""
    stay_offline()
    try:
        target, _ = resolve_model(ref, models_dir)
    except EmbedderError as exc:
        raise EmbedderError(
            f"{exc} With SANAD_EMBED_BACKEND=openai Sanad still sizes chunks with the model's "
            "tokenizer: it needs the model's folder (its tokenizer files are enough).") from None
    import transformers

    transformers.logging.set_verbosity_error()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(target)
    except (OSError, ValueError) as exc:
        raise EmbedderError(
            f"cannot load the tokenizer of embedding model {ref!r} ({target}): {exc}. With "
            "SANAD_EMBED_BACKEND=openai, SANAD_EMBED_MODEL must name a fetched model or a "
            "folder with its tokenizer files") from exc
    query_prompt, document_prompt = builtin_prompts(target)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return ModelText(count_tokens, query_prompt or "", document_prompt or "")
