"""A small OpenAI-compatible embedding server for tests and bench/embed_server.py.

It serves `POST /v1/embeddings` with any `encode(texts) -> matrix` (the fake bag of words, or
the real EmbeddingGemma without prompts: the client applies them) on 127.0.0.1 in a thread
(uvicorn). It can fail the first calls (503 or 429), require a key, serve under another name,
or answer with a wrong dimension or count, and it records what it was sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tests.conftest import free_port
from tests.fakes import BagOfWords


class EmbeddingRequest(BaseModel):
    model: str
    input: str | list[str]
    encoding_format: str = "float"


@dataclass
class ServerState:
    """What the server does (set before or during a test) and what it saw."""

    encode: Callable[[list[str]], np.ndarray]
    model: str = "fake-embedder"
    reports: str | None = None  # the model name in replies, when not `model`
    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    api_key: str | None = None
    wrong_dim: bool = False
    drop_one: bool = False
    delay: float = 0.0
    calls: int = 0
    inputs: list[list[str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    model_lock: threading.Lock = field(default_factory=threading.Lock)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}},
                        status_code=status, headers=headers)


def embedding_app(state: ServerState) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/embeddings")
    def embeddings(request: EmbeddingRequest, authorization: str | None = Header(None)):
        # A plain def: FastAPI runs it in its thread pool, so requests overlap as on a real server.
        with state.lock:
            state.calls += 1
            call = state.calls
        if state.api_key and authorization != f"Bearer {state.api_key}":
            return _error(401, "Incorrect API key provided")
        if request.model != state.model:
            return _error(404, f"The model `{request.model}` does not exist")
        if call <= state.fail_first:
            headers = {"Retry-After": state.retry_after} if state.retry_after else None
            return _error(state.fail_status, "overloaded, try again", headers)
        texts = [request.input] if isinstance(request.input, str) else request.input
        with state.lock:
            state.inputs.append(texts)
            state.in_flight += 1
            state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            if state.delay:
                time.sleep(state.delay)
            # One forward pass at a time, as a model server queues its batches: concurrent
            # torch calls on a CPU only fight over its cores.
            with state.model_lock:
                vectors = np.asarray(state.encode(texts), dtype=np.float32)
        finally:
            with state.lock:
                state.in_flight -= 1
        if state.wrong_dim:
            vectors = vectors[:, :-1]
        if state.drop_one:
            vectors = vectors[:-1]
        return {"object": "list", "model": state.reports or state.model,
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    return app


@contextmanager
def running_server(state: ServerState) -> Iterator[str]:
    """The server's base URL while the block runs; stopped and joined afterwards."""
    server = uvicorn.Server(uvicorn.Config(embedding_app(state), host="127.0.0.1",
                                           port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="embedding-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test embedding server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def fake_encode(texts: list[str]) -> np.ndarray:
    """The fake model's vectors, as the local FakeEmbedder computes them."""
    model = BagOfWords(model_name="fake-embedder")
    return np.asarray([model._vector(t) for t in texts], dtype=np.float32)


def sentence_transformers_encode(st_model) -> Callable[[list[str]], np.ndarray]:
    """A real sentence-transformers model as the server runs it: the texts as sent, no prompt."""

    def encode(texts: list[str]) -> np.ndarray:
        return st_model.encode(texts, normalize_embeddings=True, show_progress_bar=False)

    return encode
