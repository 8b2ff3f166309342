"""The OpenAI-compatible embedding backend against a real HTTP server (tests/embedding_server.py)
serving the fake model: same chunks and vectors as the local path, prompts, concurrency,
retries, clear errors, and the model identity in the manifest."""

import json
import time

import numpy as np
import pytest

from app.service import SanadService
from app.settings import Settings
from index import (
    EmbedderError,
    EmbeddingServerError,
    IndexMismatchError,
    RemoteConfig,
    RemoteEmbedder,
    connect_embedder,
    current_folder,
    load_index,
)
from index.embedding_remote import ModelText
from index.pipeline import IndexConfig, index_paths
from tests.conftest import free_port
from tests.embedding_server import ServerState, fake_encode, running_server
from tests.fakes import FakeEmbedder

KEY = "sk-test-secret-0123456789"


def count_words(text: str) -> int:
    return len(text.split())  # as FakeEmbedder counts tokens


def config(url: str, **kwargs) -> RemoteConfig:
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("model", "fake-embedder")
    return RemoteConfig(url=url, **kwargs)


def run(corpus, data_dir, embedder, **kwargs):
    return index_paths([corpus], IndexConfig(data_dir=data_dir), embedder, progress=False,
                       log=lambda m: None, **kwargs)


@pytest.fixture
def state() -> ServerState:
    return ServerState(encode=fake_encode)


@pytest.fixture
def server(state):
    with running_server(state) as url:
        yield url


def test_indexing_through_the_server_gives_the_local_chunks_and_vectors(corpus, tmp_path, state,
                                                                        server):
    run(corpus, tmp_path / "local", FakeEmbedder())
    remote = connect_embedder(config(server, batch_size=3, concurrency=3), count_words)
    report = run(corpus, tmp_path / "remote", remote)
    assert report.chunks_embedded > 6  # several batches of 3
    local, served = load_index(tmp_path / "local"), load_index(tmp_path / "remote")
    assert served.chunks == local.chunks
    ids = sorted(local.chunks)
    np.testing.assert_allclose(served.store.vectors(ids), local.store.vectors(ids), atol=1e-6)
    query = "Mexico pledged billion in aid"
    np.testing.assert_allclose(remote.embed_query(query), FakeEmbedder().embed_query(query),
                               atol=1e-6)
    # Every chunk and every ranked sentence once, plus the identity probe and the query.
    assert report.sentences_embedded > report.chunks_embedded
    assert sum(len(b) for b in state.inputs) == (report.chunks_embedded
                                                 + report.sentences_embedded + 2)


def test_prompts_are_applied_as_the_local_model_applies_them(state, server):
    remote = connect_embedder(config(server, query_prompt="task: search result | query: ",
                                     document_prompt="title: none | text: "), count_words)
    state.inputs.clear()
    remote.embed_documents(["The Danube flows east."])
    remote.embed_query("Where does the Danube flow?")
    assert state.inputs == [["title: none | text: The Danube flows east."],
                            ["task: search result | query: Where does the Danube flow?"]]


def test_questions_that_arrive_together_go_in_one_request(state, server):
    remote = connect_embedder(config(server, batch_size=8, query_prompt="query: "), count_words)
    questions = ["Where does the Danube flow?", "Who built the bridge?", "When did it open?"]
    state.inputs.clear()
    vectors = remote.embed_queries(questions)
    assert state.inputs == [sorted((f"query: {q}" for q in questions), key=len)]
    for question, vector in zip(questions, vectors):
        np.testing.assert_allclose(vector, remote.embed_query(question), atol=1e-6)


def test_batches_are_sent_concurrently_and_come_back_in_order(state, server):
    remote = connect_embedder(config(server, batch_size=2, concurrency=4), count_words)
    state.delay = 0.2
    texts = [f"text number {i} " + "word " * (i % 5) for i in range(16)]
    started = time.perf_counter()
    vectors = remote.embed_documents(texts)
    elapsed = time.perf_counter() - started
    assert state.most_in_flight == 4
    assert elapsed < 8 * 0.2  # 8 batches, 4 at a time: about 2 rounds, not 8
    np.testing.assert_allclose(vectors, FakeEmbedder().embed_documents(texts), atol=1e-6)


@pytest.mark.parametrize("status", [503, 429])
def test_overload_and_server_errors_are_retried_with_back_off(state, server, status):
    remote = connect_embedder(config(server, retries=3), count_words)
    state.calls, state.fail_first, state.fail_status = 0, 3, status
    vectors = remote.embed_documents(["one text", "another text"])
    assert state.calls == 4 and vectors.shape == (2, remote.dim)


def test_retry_after_is_honoured(state, server):
    remote = connect_embedder(config(server, retries=1, backoff=0.0), count_words)
    state.calls, state.fail_first, state.fail_status, state.retry_after = 0, 1, 429, "0.5"
    started = time.perf_counter()
    remote.embed_query("anything")
    assert time.perf_counter() - started >= 0.5 and state.calls == 2


def test_a_server_that_keeps_failing_stops_with_the_reason(state, server):
    remote = connect_embedder(config(server, retries=2), count_words)
    state.calls, state.fail_first = 0, 100
    with pytest.raises(EmbeddingServerError, match=r"after 3 attempts: HTTP 503 overloaded"):
        remote.embed_documents(["a text"])
    assert state.calls == 3


def test_a_server_nobody_runs_is_reported_after_retries():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EmbeddingServerError, match=r"after 3 attempts: cannot reach it \(Connect"):
        connect_embedder(config(url, retries=2), count_words)


def test_a_bad_key_stops_at_once_and_is_never_shown(state, server):
    state.api_key = KEY
    with pytest.raises(EmbeddingServerError, match="refused the API key") as caught:
        connect_embedder(config(server, api_key="sk-wrong-key-42"), count_words)
    assert "sk-wrong-key-42" not in str(caught.value) and state.calls == 1
    remote = connect_embedder(config(server, api_key=KEY), count_words)
    assert KEY not in repr(remote.client.config)


def test_an_unknown_model_stops_with_the_servers_words(state, server):
    with pytest.raises(EmbeddingServerError, match=r"404 for model 'no-such-model'.*does not exist"):
        connect_embedder(config(server, model="no-such-model"), count_words)
    assert state.calls == 1


def test_a_wrong_dimension_or_count_is_refused(state, server):
    remote = connect_embedder(config(server), count_words)
    state.wrong_dim = True
    with pytest.raises(EmbeddingServerError, match=r"returned 63-d vectors, but 'fake-embedder' "
                                                    r"gave 64-d"):
        remote.embed_documents(["a text"])
    state.wrong_dim, state.drop_one = False, True
    with pytest.raises(EmbeddingServerError, match="returned 1 vectors for 2 texts"):
        remote.embed_documents(["a text", "another"])


def test_the_manifest_records_the_served_model_and_a_mismatch_stops(corpus, tmp_path, state,
                                                                    server):
    data = tmp_path / "data"
    remote = connect_embedder(config(server, api_key=KEY), count_words)
    run(corpus, data, remote)
    manifest_text = (current_folder(data) / "manifest.json").read_text()
    model = json.loads(manifest_text)["model"]
    assert model == remote.identity.as_dict() and model["name"] == "fake-embedder"
    assert model["dim"] == 64 and KEY not in manifest_text and server not in manifest_text
    # The same model under another name, or the local model: another identity.
    state.model = "other-model"
    other = connect_embedder(config(server, model="other-model"), count_words)
    with pytest.raises(IndexMismatchError, match="built with embedding model 'fake-embedder'"):
        run(corpus, data, other)
    with pytest.raises(IndexMismatchError, match="settings use 'other-model'"):
        load_index(data, other.identity.as_dict(), IndexConfig(data_dir=data).chunker.as_dict(),
                   "faiss")
    with pytest.raises(IndexMismatchError):
        run(corpus, data, FakeEmbedder())
    # Other prompts give other vectors: another identity too.
    state.model = "fake-embedder"
    prompted = connect_embedder(config(server, query_prompt="query: "), count_words)
    assert prompted.identity.hash != remote.identity.hash


def test_a_server_that_changes_model_midway_is_caught(state, server):
    remote = connect_embedder(config(server), count_words)
    state.reports = "swapped"
    with pytest.raises(EmbeddingServerError, match="now reports model 'swapped', it reported "
                                                   "'fake-embedder'"):
        remote.embed_documents(["a text"])


def test_settings_need_a_url_and_keep_the_key_secret(monkeypatch):
    with pytest.raises(ValueError, match="needs embed_url"):
        Settings(embed_backend="openai")
    monkeypatch.setenv("SANAD_EMBED_BACKEND", "openai")
    monkeypatch.setenv("SANAD_EMBED_URL", "http://gpu:8080/v1")
    monkeypatch.setenv("SANAD_EMBED_API_KEY", KEY)
    settings = Settings(embed_concurrency=2)
    assert KEY not in repr(settings) and KEY not in settings.model_dump_json()
    remote = settings.remote_embed_config("q: ", "d: ")
    assert remote.endpoint == "http://gpu:8080/v1/embeddings" and remote.api_key == KEY
    assert remote.model == "embeddinggemma-300m" and remote.concurrency == 2


def test_the_service_indexes_and_answers_through_the_server(corpus, tmp_path, state, server,
                                                           monkeypatch):
    # The tokenizer and prompts come from the model's folder, absent in fast tests.
    monkeypatch.setattr("app.service.model_text",
                        lambda ref, models_dir: ModelText(count_words, "", ""))
    monkeypatch.setattr("app.service.load_embedder", pytest.fail)  # never the local model
    settings = Settings(data_dir=tmp_path / "data", embed_backend="openai", embed_url=server,
                        embed_server_model="fake-embedder", llm_backend="extractive")
    service = SanadService(settings)
    assert service.index([corpus], progress=False, log=lambda m: None).chunks_embedded > 0
    assert isinstance(service.embed_model, RemoteEmbedder)
    passages = service.retrieve("Mexico pledged aid")
    assert passages and passages[0].article_id == "us-mexico-migration-talks"


def test_concurrency_below_one_is_refused(server):
    with pytest.raises(EmbedderError, match="at least 1"):
        connect_embedder(config(server, concurrency=0), count_words)
