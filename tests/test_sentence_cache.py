"""Sentence vectors for evidence ranking, cached in SQLite in the data folder."""

import numpy as np

from app.answering.service import AnswerService
from app.indexing_job import IndexJob
from app.llm import Backend
from app.service import SanadService
from app.settings import Settings
from index.pipeline import IndexConfig, index_paths
from index.search import Searcher
from index.sentence_cache import FILE_NAME, SentenceVectors
from index.storage import load_index


def test_vectors_survive_a_new_instance_and_stay_with_their_model(tmp_path):
    vector = np.arange(4, dtype=np.float32)
    SentenceVectors(tmp_path, "model-a", 4).put({("sha", 0, 10): vector})
    again = SentenceVectors(tmp_path, "model-a", 4)
    assert again.persistent
    assert np.array_equal(again.get([("sha", 0, 10)])[("sha", 0, 10)], vector)
    assert SentenceVectors(tmp_path, "model-b", 4).get([("sha", 0, 10)]) == {}
    # another dimension under the same name (a corrupt row) is not returned
    assert SentenceVectors(tmp_path, "model-a", 8).get([("sha", 0, 10)]) == {}


def test_an_unopenable_file_keeps_the_cache_in_memory(tmp_path):
    (tmp_path / FILE_NAME).mkdir()  # a folder where the database file should be
    cache = SentenceVectors(tmp_path, "m", 2)
    assert not cache.persistent
    cache.put({("s", 0, 1): np.ones(2, dtype=np.float32)})
    assert ("s", 0, 1) in cache.get([("s", 0, 1)])


def test_a_data_folder_that_cannot_be_made_keeps_the_cache_in_memory(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    cache = SentenceVectors(tmp_path / "file" / "data", "m", 2)  # mkdir raises an OSError
    assert not cache.persistent
    cache.put({("s", 0, 1): np.ones(2, dtype=np.float32)})
    assert ("s", 0, 1) in cache.get([("s", 0, 1)])


def test_a_second_service_reuses_the_sentence_vectors_of_the_first(corpus, tmp_path,
                                                                     fake_embedder):
    data = tmp_path / "data"
    index_paths([corpus], IndexConfig(data_dir=data, sentence_vectors=False), fake_embedder,
                progress=False, log=lambda m: None)
    searcher = Searcher(load_index(data), fake_embedder)

    def service() -> AnswerService:
        return AnswerService(Settings(data_dir=data), lambda: searcher,
                             Backend("extractive", None))

    before = fake_embedder.embedded
    first = service().prepare_context("Where does the Rhine start?")[1]
    embedded = fake_embedder.embedded
    assert embedded > before  # not indexed with the index: embedded for the question
    second = service().prepare_context("Where does the Rhine start?")[1]
    assert fake_embedder.embedded == embedded  # nothing embedded again
    assert [(p.text, p.score) for p in first] == [(p.text, p.score) for p in second]
    assert (data / FILE_NAME).exists()


def test_indexing_embeds_the_sentences_a_question_ranks(corpus, tmp_path, fake_embedder):
    """A question embeds nothing but itself: every sentence (and clause of a long sentence)
    of every chunk was embedded while indexing; the same evidence, with the same scores, as
    when the sentences are embedded on first use."""
    report = index_paths([corpus], IndexConfig(data_dir=tmp_path / "a"), fake_embedder,
                         progress=False, log=lambda m: None)
    assert report.sentences_embedded > report.chunks_embedded
    assert f"and {report.sentences_embedded} sentences" in report.summary()
    lazy = index_paths([corpus], IndexConfig(data_dir=tmp_path / "b", sentence_vectors=False),
                       fake_embedder, progress=False, log=lambda m: None)
    assert lazy.sentences_embedded == 0

    def evidence(folder, question):
        searcher = Searcher(load_index(tmp_path / folder), fake_embedder)
        service = AnswerService(Settings(data_dir=tmp_path / folder), lambda: searcher,
                                Backend("extractive", None))
        return [(p.text, p.score) for p in service.prepare_context(question)[1]]

    for question in ("Where does the Rhine start?", "How long is the Nile?"):
        before = fake_embedder.embedded
        indexed = evidence("a", question)
        assert fake_embedder.embedded == before  # the question goes through embed_query
        assert indexed and indexed == evidence("b", question)
    # indexing again embeds nothing new: the vectors are found in the cache
    again = index_paths([corpus], IndexConfig(data_dir=tmp_path / "a"), fake_embedder,
                        rebuild=True, progress=False, log=lambda m: None)
    assert again.chunks_embedded > 0 and again.sentences_embedded == 0


def test_an_upload_job_counts_the_chunks_then_the_sentences(corpus, tmp_path, fake_embedder):
    job = IndexJob(files=["a.md"])
    for done, total in ((0, 4), (4, 4), (0, 10), (8, 10), (0, 3), (3, 3)):
        job.progress(done, total)
        seen = (job.texts_done, job.texts_total)
    assert seen == (17, 17)
    svc = SanadService(Settings(data_dir=tmp_path / "data", llm_backend="extractive"),
                       embed_model=fake_embedder)
    job = svc.add_articles([corpus])
    assert job.wait(60) and job.state == "done", job.problems
    index = load_index(tmp_path / "data")
    assert job.texts_done == job.texts_total > len(index.chunks)
    assert "sentences" in job.summary


def test_sentence_vectors_that_fail_leave_the_written_index_standing(corpus, tmp_path,
                                                                    fake_embedder, monkeypatch):
    import index.pipeline

    def unreachable(*args, **kwargs):
        raise ConnectionError("embedding server went away")

    monkeypatch.setattr(index.pipeline, "embed_chunk_sentences", unreachable)
    said: list[str] = []
    report = index_paths([corpus], IndexConfig(data_dir=tmp_path / "data"), fake_embedder,
                         progress=False, log=said.append)
    assert report.written and report.chunks_embedded > 0 and report.sentences_embedded == 0
    assert any("sentence vectors not embedded (embedding server went away)" in m
               for m in said), said
    searcher = Searcher(load_index(tmp_path / "data"), fake_embedder)
    service = AnswerService(Settings(data_dir=tmp_path / "data"), lambda: searcher,
                            Backend("extractive", None))
    before = fake_embedder.embedded
    assert service.prepare_context("Where does the Rhine start?")[1]
    assert fake_embedder.embedded > before  # embedded on first use instead
