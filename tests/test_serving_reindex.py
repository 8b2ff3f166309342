"""Index updates while serving: queries keep working during re-indexes and each one sees the
old or the new generation, never a mix and never a broken index.

The writer is a second service on the same data folder, as `sanad index` in another process
would be; the server notices the new `current` on its next request.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding

from app.service import SanadService
from app.settings import Settings
from index import storage
from index.storage import load_index
from tests.fakes import FakeEmbedder
from tests.web_helpers import SanadServer

QUESTION = "What did the river survey measure?"
REINDEXES = 6


def corpus_files(revision: int) -> dict[str, str]:
    """The articles at `revision`: one changes every time, one comes and goes, one is new
    each time (and removed the next), one never changes."""
    def text(title: str, rev: int) -> str:
        return "\n\n".join([f"{title} revision {rev}"] + [
            f"The river survey of {title} measured level {rev * 10 + n} at station {n}. "
            f"Crews logged revision {rev} findings for {title}." for n in range(4)])

    files = {"survey.txt": text("Survey", revision), "stable.txt": text("Stable", 0),
             f"extra-{revision}.txt": text(f"Extra {revision}", revision)}
    if revision % 2 == 0:
        files["archive.md"] = text("Archive", revision)
    return files


def write_corpus(folder: Path, revision: int) -> None:
    files = corpus_files(revision)
    for old in folder.glob("*"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def settings_for(data: Path) -> Settings:
    return Settings(data_dir=data, llm_backend="extractive", refuse_below_en=-1,
                    refuse_below_ar=-1, rate_limit_per_minute=0)


def snapshot(data: Path) -> tuple[int, dict[str, str]]:
    """(generation, article id -> text) of the current index, read straight from disk."""
    index = load_index(data)
    return index.manifest.generation, {aid: a.text for aid, a in index.articles.items()}


def generations_matching(result: dict, snapshots: dict[int, dict[str, str]]) -> set[int]:
    """The generations in which every retrieved and cited passage is exactly its article's
    text at its span."""
    passages = result["retrieved"] + result["passages"]
    return {gen for gen, articles in snapshots.items()
            if all(p["article_id"] in articles
                   and articles[p["article_id"]][p["start"]:p["end"]] == p["text"]
                   for p in passages)}


class QueryLoop:
    """Clients asking (and listing articles) over and over until stopped."""

    def __init__(self, url: str, clients: int = 2):
        self.url = url
        self.answers: list[tuple[int, dict]] = []
        self.listings: list[tuple[int, list]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                asked = http.post("/api/ask", json={"question": QUESTION, "k": 8})
                self.answers.append((asked.status_code, asked.json()))
                listed = http.get("/api/articles")
                self.listings.append((listed.status_code, listed.json()))

    def wait_for_answers(self, more: int, timeout: float = 30) -> None:
        target, deadline = len(self.answers) + more, time.monotonic() + timeout
        while len(self.answers) < target and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> QueryLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.slow)])
def embedders(request) -> tuple[BaseEmbedding, BaseEmbedding]:
    """(the writer's, the server's) embedding model: the fake, or the real one shared."""
    if request.param == "real":
        model = request.getfixturevalue("seeded_service").embed_model
        return model, model
    # The writer's is slowed a little so that queries keep arriving while each write runs.
    return FakeEmbedder(delay=0.005), FakeEmbedder()


def test_queries_during_reindexes_see_the_old_or_the_new_generation(tmp_path: Path, embedders):
    corpus, data = tmp_path / "articles", tmp_path / "data"
    corpus.mkdir()
    write_corpus(corpus, 0)
    writer_model, server_model = embedders
    writer = SanadService(settings_for(data), embed_model=writer_model)
    writer.index([corpus], progress=False, log=lambda m: None)
    snapshots = dict([snapshot(data)])
    serving = SanadService(settings_for(data), embed_model=server_model)
    with SanadServer(serving, ui=False) as server, QueryLoop(server.url) as loop:
        loop.wait_for_answers(3)
        for revision in range(1, REINDEXES + 1):
            write_corpus(corpus, revision)
            report = writer.index([corpus], progress=False, log=lambda m: None)
            assert report.updated and report.added and report.removed
            generation, articles = snapshot(data)
            snapshots[generation] = articles
            loop.wait_for_answers(3)  # some questions are answered from this generation

    assert len(snapshots) == REINDEXES + 1
    assert loop.answers and all(status == 200 for status, _ in loop.answers), \
        [body for status, body in loop.answers if status != 200][:3]
    matched = [generations_matching(body, snapshots) for _, body in loop.answers]
    assert all(matched), "an answer mixed generations or cited text no generation had"
    # Every generation is told apart by its text: the loop really saw them change.
    seen = {next(iter(gens)) for gens in matched if len(gens) == 1}
    assert len(seen) >= REINDEXES // 2 + 1 and max(seen) == max(snapshots)
    id_sets = [set(articles) for articles in snapshots.values()]
    for status, listed in loop.listings:
        assert status == 200 and {a["id"] for a in listed} in id_sets


def test_a_generation_pruned_while_it_loads_gives_way_to_the_new_current(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two writes during one load remove the generation being read (only the newest two
    stay on disk): the reader loads the new current instead of failing."""
    corpus, data = tmp_path / "articles", tmp_path / "data"
    corpus.mkdir()
    write_corpus(corpus, 0)
    writer = SanadService(settings_for(data), embed_model=FakeEmbedder())
    writer.index([corpus], progress=False, log=lambda m: None)
    read_jsonl = storage._read_jsonl
    writes_done = threading.Event()

    def read_while_two_writes_land(path: Path):
        if not writes_done.is_set():
            writes_done.set()
            for revision in (1, 2):
                write_corpus(corpus, revision)
                writer.index([corpus], progress=False, log=lambda m: None)
            assert not path.exists()  # the generation this reader opened is gone
        return read_jsonl(path)

    monkeypatch.setattr(storage, "_read_jsonl", read_while_two_writes_land)
    reader = SanadService(settings_for(data), embed_model=FakeEmbedder())
    passages = reader.retrieve(QUESTION, 8)
    assert reader.searcher().data.manifest.generation == 3
    assert any("revision 2" in p.text for p in passages)
