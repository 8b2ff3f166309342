"""The FAISS index types (flat, IVF, HNSW): the choice by size, and the store's contract on each."""

import numpy as np
import pytest

from app.settings import Settings
from bench.synthetic import blocks, queries
from index.pipeline import IndexConfig, index_paths
from index.storage import current_folder, load_index
from index.stores import FaissStore, StoreConfig
from index.stores import faiss_layout as layout_module
from index.stores.base import text_nodes
from index.stores.faiss_layout import (
    FLAT_MAX_VECTORS,
    faiss_layout,
    ivf_lists,
    ivf_probes,
    omp_threads,
)

DIM = 32
LAYOUTS = ["flat", "ivf", "hnsw"]


def clustered(size: int, dim: int = DIM) -> tuple[list[str], np.ndarray]:
    ids, vectors = zip(*blocks("clustered", size, dim, seed=3))
    return [i for part in ids for i in part], np.concatenate(vectors)


def filled(layout: str, size: int = 3000) -> tuple[FaissStore, list[str], np.ndarray]:
    ids, vectors = clustered(size)
    store = FaissStore(DIM, config=StoreConfig(faiss_index=layout))
    store.add(ids, vectors)
    return store, ids, vectors


def test_auto_is_flat_up_to_the_threshold_and_ivf_above():
    assert faiss_layout(0) == faiss_layout(FLAT_MAX_VECTORS) == "flat"
    assert faiss_layout(FLAT_MAX_VECTORS + 1) == "ivf"
    assert faiss_layout(10, "hnsw") == "hnsw" and faiss_layout(10**7, "flat") == "flat"
    assert ivf_lists(1_000_000) == 1024 and ivf_probes(1024) == 128
    assert ivf_lists(200) == 4  # never fewer than 50 training vectors per cell
    with pytest.raises(ValueError, match="unknown FAISS index"):
        StoreConfig(faiss_index="lsh")


def test_the_settings_reach_the_store_config():
    config = Settings(faiss_index="ivf", threads=1).store_config()
    assert (config.faiss_index, config.threads) == ("ivf", 1)
    assert Settings().store_config().faiss_index == "auto"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_index_adds_deletes_searches_and_reloads(tmp_path, layout):
    store, ids, vectors = filled(layout)
    store.delete(ids[:100])
    store.add(["late"], vectors[:1])  # the vector of a deleted id, under a new id
    store.save(tmp_path / "s")
    loaded = FaissStore.load(tmp_path / "s", DIM, StoreConfig(faiss_index=layout))
    assert loaded.layout == layout and loaded.outdated() is None
    assert len(loaded) == len(ids) - 100 + 1
    assert sorted(loaded.ids()) == sorted([*ids[100:], "late"])
    assert loaded.search(vectors[0], 1)[0][0] == "late"
    assert loaded.search(vectors[500], 1) == [(ids[500], pytest.approx(1.0, abs=1e-5))]
    assert np.allclose(loaded.vectors([ids[700], "late"]), vectors[[700, 0]], atol=1e-6)

    loaded.delete(["late", ids[500]])  # hnsw: "late" has the highest FAISS id, now a tombstone
    loaded.add(["later"], vectors[500:501])
    assert loaded.search(vectors[500], 1)[0][0] == "later"
    loaded.save(tmp_path / "again")
    again = FaissStore.load(tmp_path / "again", DIM)
    assert again.layout == layout and len(again) == len(ids) - 100
    hits = {i for i, _ in again.search(vectors[0], 50)}
    assert "late" not in hits and ids[500] not in hits


@pytest.mark.parametrize("wanted,layout", [("auto", "ivf"), ("hnsw", "hnsw")])
def test_an_approximate_store_finds_almost_what_flat_finds_on_clustered_data(
        tmp_path, monkeypatch, wanted, layout):
    monkeypatch.setattr(layout_module, "FLAT_MAX_VECTORS", 1000)  # auto: IVF at this size
    exact, ids, vectors = filled("flat", 8000)
    approximate = FaissStore(DIM, config=StoreConfig(faiss_index=wanted))
    approximate.add(ids, vectors)
    assert approximate.outdated() is not None
    approximate.save(tmp_path / "s")  # converts to the wanted index
    assert approximate.layout == layout and approximate.outdated() is None
    recalls = []
    for query in queries("clustered", 8000, DIM, seed=3, count=100):
        truth = {i for i, _ in exact.search(query, 10)}
        recalls.append(len(truth & {i for i, _ in approximate.search(query, 10)}) / 10)
    assert np.mean(recalls) >= 0.95


def test_hnsw_deletes_leave_tombstones_until_a_tenth_is_deleted(tmp_path):
    store, ids, vectors = filled("hnsw", 1000)
    store.save(tmp_path / "built")  # a new store fills flat, and saving builds the graph
    store.delete(ids[:100])  # a tenth: not yet rebuilt
    assert store.layout == "hnsw" and store.outdated() is None and len(store) == 900
    store.save(tmp_path / "s")
    loaded = FaissStore.load(tmp_path / "s", DIM, StoreConfig(faiss_index="hnsw"))
    assert loaded._index.ntotal == 1000 and len(loaded) == 900
    assert loaded.check(ids[100:]) is None
    assert ids[5] not in {i for i, _ in loaded.search(vectors[5], 20)}
    loaded.delete([ids[100]])
    assert "deleted" in loaded.outdated()
    loaded.save(tmp_path / "rebuilt")
    assert loaded._index.ntotal == len(loaded) == 899 and loaded.outdated() is None
    assert loaded.search(vectors[200], 1)[0][0] == ids[200]


def test_an_ivf_index_is_trained_again_when_the_corpus_grows_sixteen_fold(tmp_path):
    store, ids, vectors = filled("ivf", 2000)
    store.save(tmp_path / "small")
    assert store._index.nlist == ivf_lists(2000) == 32
    more_ids, more = clustered(32_000)
    store.add([f"x{i}" for i in more_ids], more)
    assert "cells" in store.outdated()
    store.save(tmp_path / "large")
    assert store._index.nlist == ivf_lists(34_000) == 256 and store.outdated() is None


def test_an_unchanged_index_is_rewritten_when_its_faiss_index_should_change(
        corpus, tmp_path, fake_embedder):
    data = tmp_path / "data"

    def run(faiss_index: str):
        messages = []
        config = IndexConfig(data_dir=data, store=StoreConfig(faiss_index=faiss_index))
        report = index_paths([corpus], config, fake_embedder, progress=False,
                             log=messages.append)
        return report, messages

    run("auto")
    old = current_folder(data)
    report, messages = run("ivf")
    assert report.written and report.chunks_embedded == 0
    assert any("flat" in m and "ivf" in m for m in messages)
    index = load_index(data)
    assert index.store.layout == "ivf" and current_folder(data) != old
    assert load_index(data).store.check(list(index.chunks)) is None
    assert not run("ivf")[0].written  # nothing to change any more


def test_omp_threads_sets_and_restores_the_calling_threads_count():
    import faiss

    before = faiss.omp_get_max_threads()
    with omp_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before
    with omp_threads(None):
        assert faiss.omp_get_max_threads() == before


def test_a_flat_file_written_before_index_types_existed_still_loads(tmp_path):
    import faiss
    from llama_index.vector_stores.faiss import FaissMapVectorStore

    ids, vectors = clustered(300)
    old = FaissMapVectorStore(faiss_index=faiss.IndexIDMap2(faiss.IndexFlatIP(DIM)))
    old.add(text_nodes(ids, vectors))  # upstream's own add, one vector at a time
    old.persist(persist_path=str(tmp_path / FaissStore.INDEX_FILE))
    loaded = FaissStore.load(tmp_path, DIM)
    assert loaded.layout == "flat" and loaded.outdated() is None and len(loaded) == 300
    assert loaded.search(vectors[7], 1)[0][0] == ids[7]
    assert np.allclose(loaded.vectors(ids[:3]), vectors[:3])


def test_ivf_searches_its_fast_scan_codes_and_keeps_them_in_step(tmp_path):
    store, ids, vectors = filled("ivf")
    store.save(tmp_path / "s")
    codes = store._store._codes
    assert codes is not None and codes.ntotal == len(ids)
    assert (tmp_path / "s" / FaissStore.CODES_FILE).exists()
    exact = FaissStore(DIM)
    exact.add(ids, vectors)
    hits = store.search(vectors[42], 10)
    truth = exact.search(vectors[42], 10)
    assert hits[0] == (ids[42], pytest.approx(1.0, abs=1e-5))  # exact scores, not PQ's
    assert {i for i, _ in hits} <= {i for i, _ in exact.search(vectors[42], 40)}
    assert [s for _, s in hits][:3] == pytest.approx([s for _, s in truth][:3], abs=1e-5)

    store.delete(ids[:10])
    store.add(["new"], vectors[:1])
    assert store._index.ntotal == len(ids) - 9  # the codes keep the deleted: stale
    assert store._store._codes.ntotal == len(ids) + 1 and store.outdated() is None
    assert store.search(vectors[0], 1)[0][0] == "new"
    assert ids[3] not in {i for i, _ in store.search(vectors[3], 20)}
    store.delete(ids[10:400])  # over a tenth of the codes stale: rebuilt at save
    assert "deleted" in store.outdated()
    store.save(tmp_path / "again")
    assert store._store._codes.ntotal == store._index.ntotal == len(ids) - 399
    assert store.outdated() is None and store.search(vectors[500], 1)[0][0] == ids[500]


def test_an_ivf_file_written_without_codes_loads_and_gets_them_when_saved(tmp_path):
    store, ids, vectors = filled("ivf")
    store.save(tmp_path / "s")
    (tmp_path / "s" / FaissStore.CODES_FILE).unlink()  # the layout before scale2
    old = FaissStore.load(tmp_path / "s", DIM, StoreConfig(faiss_index="ivf"))
    assert old.layout == "ivf" and old._store._codes is None
    assert old.search(vectors[9], 1)[0][0] == ids[9]  # full vectors, scanned as before
    assert "fast-scan codes" in old.outdated()
    nlist = old._index.nlist
    old.save(tmp_path / "again")
    again = FaissStore.load(tmp_path / "again", DIM, StoreConfig(faiss_index="ivf"))
    assert again._store._codes is not None and again.outdated() is None
    assert again._index.nlist == nlist and again.search(vectors[9], 1)[0][0] == ids[9]
