"""Milvus-only behaviour: one collection shared by generations, store copy, threads, processes.

The store-independent behaviour (incremental indexing, spans, hybrid search, manifest
checks, crashes) runs on both stores in test_pipeline, test_search and test_crash.
"""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.service import SanadService
from app.settings import Settings
from index.errors import IndexError_, IndexMismatchError
from index.pipeline import IndexConfig, copy_store, index_paths
from index.search import Searcher
from index.storage import current_folder, load_index
from index.stores import StoreConfig, StoreError
from tests.conftest import ROOT, free_port, release_milvus_lite, used_by_generations
from tests.fakes import FakeEmbedder

pytestmark = pytest.mark.slow  # each test starts Milvus Lite (or a Milvus server)
QUESTIONS = ["Does the Rhine reach the North Sea near Rotterdam?", "How long do I bake the loaf?",
             "What did Mexico request?", "ماذا طلبت المكسيك؟", "Danube Black Sea",
             "sanctions on Venezuela", "flour water salt", "الرئيس المكسيكي"]


@pytest.fixture(autouse=True)
def _stop_milvus_lite(tmp_path):
    yield
    release_milvus_lite(tmp_path)


def run(paths, data: Path, embedder, store: StoreConfig | str = "milvus", **kwargs):
    paths = paths if isinstance(paths, list) else [paths]
    return index_paths(paths, IndexConfig(data_dir=data, store=store), embedder, progress=False,
                       log=lambda m: None, **kwargs)


def rows(data: Path, store: StoreConfig | str | None = None) -> set[str]:
    """Every chunk id with a row in the current generation's collection."""
    index = load_index(data, store=store)
    return set(index.store._all_ids(index.store.collection))


def collections(data: Path) -> list[str]:
    return load_index(data).store._client.list_collections()


def crash(*args, **kwargs):
    raise OSError("killed before the switch")


def test_crash_between_insert_and_switch_keeps_the_previous_generation(
        corpus, tmp_path, fake_embedder, monkeypatch):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    before = load_index(data)
    question = QUESTIONS[0]
    expected = Searcher(before, fake_embedder).search(question, 5)
    # The new text matches the question better than anything indexed.
    (corpus / "rivers.md").write_text("# Rivers\n\nDoes the Rhine reach the North Sea near "
                                      "Rotterdam? It does.\n")
    monkeypatch.setattr("index.storage._point_current", crash)
    with pytest.raises(OSError, match="before the switch"):
        run(corpus, data, fake_embedder)
    monkeypatch.undo()

    after_crash = load_index(data)  # loads, and every chunk still has its vector
    assert after_crash.folder == before.folder
    orphans = rows(data) - set(before.chunks)
    assert orphans, "the crashed run inserted its vectors before the switch"
    raw = after_crash.store._store.client.search(
        after_crash.store.collection, data=[fake_embedder.model.get_query_embedding(question)], limit=1)
    assert raw[0][0]["id"] in orphans  # Milvus ranks an orphan first; the store filters it out
    assert Searcher(after_crash, fake_embedder).search(question, 5) == expected

    (corpus / "rivers.md").write_text("# Rivers\n\nThe Seine flows through Paris.\n")
    report = run(corpus, data, fake_embedder)
    assert report.updated == ["rivers"]
    assert not rows(data) & orphans
    assert rows(data) == used_by_generations(data)


def test_a_run_with_nothing_to_write_still_cleans_a_crash(corpus, tmp_path, fake_embedder,
                                                          monkeypatch):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    original = (corpus / "rivers.md").read_text()
    (corpus / "rivers.md").write_text("# Rivers\n\nThe Seine flows through Paris.\n")
    monkeypatch.setattr("index.storage._point_current", crash)
    with pytest.raises(OSError):
        run(corpus, data, fake_embedder)
    monkeypatch.undo()
    assert rows(data) > used_by_generations(data)
    (corpus / "rivers.md").write_text(original)
    report = run(corpus, data, fake_embedder)
    assert not report.written and rows(data) == used_by_generations(data)


def test_removed_chunks_leave_milvus_once_no_generation_on_disk_uses_them(
        corpus, tmp_path, fake_embedder, monkeypatch):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    bread = {c for c, chunk in load_index(data).chunks.items() if chunk.article_id == "bread"}
    (corpus / "bread.html").unlink()
    run(corpus, data, fake_embedder)
    assert bread <= rows(data)  # the previous generation, still on disk, uses them
    assert not bread & set(load_index(data).chunks)
    (corpus / "note.txt").write_text("A note about tea.")

    def no_full_scan(*args):
        raise AssertionError("without a crash, released ids are deleted by name")

    monkeypatch.setattr("index.stores.milvus.MilvusStore._all_ids", no_full_scan)
    run(corpus, data, fake_embedder)  # the generation that had bread is pruned now
    monkeypatch.undo()
    assert not bread & rows(data)
    assert rows(data) == used_by_generations(data)


def test_a_reader_keeps_its_generation_and_the_service_moves_to_the_new_one(
        corpus, tmp_path, fake_embedder):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    service = SanadService(Settings(data_dir=data, store="milvus"), embed_model=fake_embedder)
    question = "Which river is the longest in France, the Loire?"
    old_searcher = service.searcher()
    old_answer = service.retrieve(question)
    assert not any("Loire" in p.text for p in old_answer)
    (corpus / "rivers.md").write_text("# Rivers\n\nThe Loire is the longest river in France.\n")
    run(corpus, data, fake_embedder)
    assert old_searcher.search(question, 5) == old_answer  # its rows are all still there
    new_answer = service.retrieve(question)
    assert service.searcher() is not old_searcher
    assert "Loire" in new_answer[0].text


def test_queries_from_many_threads_get_the_same_answers(corpus, tmp_path, fake_embedder):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    service = SanadService(Settings(data_dir=data, store="milvus"), embed_model=fake_embedder)
    expected = {q: service.retrieve(q, 5) for q in QUESTIONS}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda q: (q, service.retrieve(q, 5)), QUESTIONS * 10))
    assert len(answers) == 80
    assert all(passages == expected[q] for q, passages in answers)
    assert len({p[0].article_id for p in expected.values()}) == 3  # not one answer for all


def test_store_copy_moves_the_index_without_embedding_and_keeps_results(
        corpus, tmp_path, fake_embedder):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store="faiss")
    faiss_index = load_index(data)
    expected = {q: Searcher(faiss_index, fake_embedder).search(q, 5) for q in QUESTIONS}
    embedded = fake_embedder.embedded

    report = copy_store(data, "milvus")
    assert report.vectors == len(faiss_index.chunks) and fake_embedder.embedded == embedded
    model = fake_embedder.identity.as_dict()
    chunker = IndexConfig(data_dir=data).chunker.as_dict()
    milvus_index = load_index(data, model, chunker, "milvus")  # the manifest check passes
    assert milvus_index.manifest.store == "milvus"
    assert milvus_index.folder != faiss_index.folder
    ids = list(faiss_index.chunks)
    assert np.allclose(milvus_index.store.vectors(ids), faiss_index.store.vectors(ids))
    for question, passages in expected.items():
        got = Searcher(milvus_index, fake_embedder).search(question, 5)
        assert [(p.article_id, p.start, p.end, p.text) for p in got] == \
               [(p.article_id, p.start, p.end, p.text) for p in passages]
        assert [p.score for p in got] == pytest.approx([p.score for p in passages], abs=1e-4)

    assert run(corpus, data, fake_embedder, store="milvus").chunks_embedded == 0
    with pytest.raises(IndexMismatchError, match="store copy --to faiss"):
        run(corpus, data, fake_embedder, store="faiss")
    with pytest.raises(IndexError_, match="milvus store already"):
        copy_store(data, "milvus")
    back = copy_store(data, "faiss")  # and back: vectors fetched from Milvus by id
    assert back.target == "faiss"
    assert Searcher(load_index(data), fake_embedder).search(QUESTIONS[0], 5) == \
           expected[QUESTIONS[0]]


def test_each_model_has_its_collection_and_an_unused_one_is_dropped(corpus, tmp_path,
                                                                    fake_embedder):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    first = load_index(data).store.collection
    run(corpus, data, FakeEmbedder(name="another-model"), rebuild=True)
    second = load_index(data).store.collection
    assert second != first and first.startswith("sanad_chunks_")
    assert {first, second} <= set(collections(data))  # the previous generation uses `first`
    (corpus / "note.txt").write_text("A note about tea.")
    run(corpus, data, FakeEmbedder(name="another-model"))
    assert first not in collections(data) and second in collections(data)


def test_two_indexes_cannot_share_one_collection(corpus, tmp_path, fake_embedder):
    shared = StoreConfig(kind="milvus", milvus_uri=str(tmp_path / "shared.db"))
    run(corpus, tmp_path / "a", fake_embedder, store=shared)
    with pytest.raises(IndexMismatchError, match="belongs to another Sanad index"):
        run(corpus, tmp_path / "b", fake_embedder, store=shared)
    elsewhere = replace(shared, milvus_collection="other_index")
    run(corpus, tmp_path / "b", fake_embedder, store=elsewhere)
    assert load_index(tmp_path / "a", store=shared).store.collection.startswith("sanad_chunks_")
    assert load_index(tmp_path / "b", store=elsewhere).store.collection.startswith("other_index_")
    with pytest.raises(IndexMismatchError, match="milvus_collection"):
        load_index(tmp_path / "b", store=shared)


def _wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


def _start_reader(data: Path, uri: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.milvus_reader", str(data), uri],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _ask(reader: subprocess.Popen, question: str) -> dict:
    reader.stdin.write(question + "\n")
    reader.stdin.flush()
    return json.loads(reader.stdout.readline())


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.stdin:
            proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_several_processes_share_one_milvus_server(corpus, tmp_path, fake_embedder):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir",
                               str(tmp_path / "server"), "--host", "127.0.0.1", "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    readers: list[subprocess.Popen] = []
    try:
        _wait_for_port(port)
        uri = f"http://127.0.0.1:{port}"
        data = tmp_path / "data"
        run(corpus, data, fake_embedder, store=StoreConfig(kind="milvus", milvus_uri=uri))
        readers = [_start_reader(data, uri) for _ in range(2)]
        question = "Which river is the longest in France, the Loire?"
        for answer in [_ask(r, question) for r in readers]:
            assert answer.get("generation") == 1, answer
            assert not any("Loire" in t for t in answer["texts"])
        (corpus / "rivers.md").write_text("# Rivers\n\nThe Loire is the longest river in France.\n")
        run(corpus, data, fake_embedder, store=StoreConfig(kind="milvus", milvus_uri=uri))
        for answer in [_ask(r, question) for r in readers]:  # next request: new generation
            assert answer.get("generation") == 2, answer
            assert "Loire" in answer["texts"][0]
    finally:
        _stop(*readers, server)


def test_a_milvus_lite_file_open_in_another_process_gives_a_clear_error(corpus, tmp_path,
                                                                         fake_embedder):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    release_milvus_lite(tmp_path)
    reader = _start_reader(data, str(data / "milvus.db"))
    try:
        assert "texts" in _ask(reader, QUESTIONS[0])  # the reader holds the file now
        with pytest.raises(StoreError, match="one process per file"):
            load_index(data)
    finally:
        _stop(reader)
    assert load_index(data).store.check(list(load_index(data).chunks)) is None


def test_cli_store_copy_status_and_store_option(corpus, tmp_path, fake_embedder, monkeypatch):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store="faiss")
    monkeypatch.setenv("SANAD_DATA_DIR", str(data))
    monkeypatch.delenv("SANAD_STORE", raising=False)
    monkeypatch.setattr("app.service.load_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.setattr("app.service.describe",
                        lambda *a, **k: FakeEmbedder().identity.as_dict())
    from app.cli import cli

    runner = CliRunner()
    ask = ["ask", "--passages", "--json", QUESTIONS[0]]
    before = runner.invoke(cli, ask)
    assert before.exit_code == 0, before.output
    copied = runner.invoke(cli, ["store", "copy", "--to", "milvus"])
    assert copied.exit_code == 0, copied.output
    assert "from faiss to milvus" in copied.output and "--store milvus" in copied.output
    assert "store: milvus (collection sanad_chunks_" in runner.invoke(cli, ["status"]).output
    refused = runner.invoke(cli, ask)
    assert refused.exit_code == 2 and "store copy --to faiss" in refused.output
    after = runner.invoke(cli, [*ask, "--store", "milvus"])
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout) == json.loads(before.stdout)
    again = runner.invoke(cli, ["index", "-q", "--store", "milvus", str(corpus)])
    assert again.exit_code == 0 and "0 chunks embedded" in again.output
    assert current_folder(data) == load_index(data).folder
    bad = runner.invoke(cli, [*ask, "--store", "chroma"])
    assert bad.exit_code == 2 and "unknown store 'chroma'" in bad.output
