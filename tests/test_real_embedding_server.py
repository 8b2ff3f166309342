"""The openai embedding backend against a test server running the real EmbeddingGemma (slow):
the same chunks as the local model, and vectors within cosine 0.999 of the local ones."""

import shutil

import numpy as np
import pytest

from app.service import SanadService
from app.settings import Settings
from index import RemoteEmbedder, load_index
from tests.conftest import DATA, SEED
from tests.embedding_server import ServerState, running_server, sentence_transformers_encode

pytestmark = pytest.mark.slow
QUESTIONS = ["What did Mexico request?", "ماذا طلبت المكسيك؟"]


def test_indexing_through_a_server_running_the_real_model_matches_the_local_model(tmp_path):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    for article in sorted((DATA / "arcd-sample" / "articles").glob("*.txt"))[:3]:
        shutil.copy(article, corpus / article.name)

    local = SanadService(Settings(data_dir=tmp_path / "local", llm_backend="extractive"))
    local.index([corpus], progress=False, log=lambda m: None)
    st_model = local.embed_model.model._model  # the documents' model (bfloat16), no prompt
    state = ServerState(encode=sentence_transformers_encode(st_model),
                        model=local.settings.embed_model)
    with running_server(state) as url:
        remote = SanadService(Settings(data_dir=tmp_path / "remote", llm_backend="extractive",
                                       embed_backend="openai", embed_url=url,
                                       embed_concurrency=2))
        report = remote.index([corpus], progress=False, log=lambda m: None)
        assert isinstance(remote.embed_model, RemoteEmbedder)
        queries = {q: (local.embed_model.embed_query(q), remote.embed_model.embed_query(q))
                   for q in QUESTIONS}
        top = {q: (local.retrieve(q, 3), remote.retrieve(q, 3)) for q in QUESTIONS}

    mine, theirs = load_index(tmp_path / "local"), load_index(tmp_path / "remote")
    assert report.chunks_embedded == len(mine.chunks) > 11
    assert theirs.chunks == mine.chunks  # the same tokenizer sized the same chunks
    ids = sorted(mine.chunks)
    cosines = np.sum(mine.store.vectors(ids) * theirs.store.vectors(ids), axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    for question, (here, there) in queries.items():
        assert float(here @ there) >= 0.999, question
        assert top[question][0][0].article_id == top[question][1][0].article_id
    # The prompts went with the texts, as the local model applies them.
    sent = [t for batch in state.inputs for t in batch]
    assert any(t.startswith("task: search result | query: ") for t in sent)
    assert all(t.startswith(("title: none | text: ", "task: search result | query: "))
               for t in sent)
    assert theirs.manifest.model["name"] == "embeddinggemma-300m"
    assert theirs.manifest.model["dim"] == mine.manifest.model["dim"] == 768
