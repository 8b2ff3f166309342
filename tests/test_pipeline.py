import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.chunking import ChunkerConfig
from index.embedding import EmbedderError, LazyEmbedder
from index.pipeline import IndexConfig, index_paths
from index.storage import (
    IndexMismatchError,
    NoIndexError,
    current_folder,
    load_index,
    store_folders,
)
from index.stores import FaissStore
from tests.conftest import used_by_generations
from tests.fakes import FakeEmbedder


def run(corpus, data_dir, embedder, store="faiss", **kwargs):
    return index_paths([corpus], IndexConfig(data_dir=data_dir, store=store), embedder,
                       progress=False, log=lambda m: None, **kwargs)


def stored_rows(index) -> set[str]:
    """Chunk ids that really have a vector in the store (all rows of a Milvus collection)."""
    if index.store.kind == "milvus":
        return set(index.store._all_ids(index.store.collection))
    return set(index.store.ids())


def test_first_run_indexes_all_and_second_embeds_nothing(corpus, tmp_path, fake_embedder,
                                                          store_kind):
    data = tmp_path / "data"
    first = run(corpus, data, fake_embedder, store_kind)
    assert sorted(first.added) == ["bread", "rivers", "us-mexico-migration-talks"]
    assert first.chunks_embedded == first.chunks_total > 11
    embedded = fake_embedder.embedded
    second = run(corpus, data, fake_embedder, store_kind)
    assert second.chunks_embedded == 0 and not second.written
    assert fake_embedder.embedded == embedded
    assert len(second.unchanged) == 3
    index = load_index(data)
    assert index.manifest.store == store_kind
    assert len(index.store) == len(index.chunks) == first.chunks_total
    assert stored_rows(index) == set(index.chunks)
    for chunk in index.chunks.values():
        assert index.articles[chunk.article_id].text[chunk.start:chunk.end] == chunk.text


def test_a_lazy_embedder_loads_its_model_only_when_something_needs_embedding(corpus, tmp_path):
    model, loads = FakeEmbedder(), []

    def load() -> FakeEmbedder:
        loads.append(1)
        return model

    lazy = LazyEmbedder(model.identity, load)
    data = tmp_path / "data"
    assert run(corpus, data, lazy).chunks_embedded > 0 and len(loads) == 1
    again = LazyEmbedder(model.identity, load)
    assert not run(corpus, data, again).written and len(loads) == 1  # nothing to embed
    # A model that loads as another than it was described would write a wrong manifest.
    other = LazyEmbedder(FakeEmbedder("described-as-another").identity, load)
    with pytest.raises(EmbedderError, match="described"):
        run(corpus, tmp_path / "other", other)


def test_changed_file_replaces_its_chunks_and_removed_file_goes(corpus, tmp_path, fake_embedder,
                                                                store_kind):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store_kind)
    before = load_index(data)
    (corpus / "rivers.md").write_text("# Rivers\n\nThe Loire is the longest river in France.\n")
    (corpus / "bread.html").unlink()
    report = run(corpus, data, fake_embedder, store_kind)
    assert report.updated == ["rivers"] and report.removed == ["bread"]
    assert report.chunks_embedded == 2
    after = load_index(data)
    assert set(after.articles) == {"rivers", "us-mexico-migration-talks"}
    texts = [c.text for c in after.chunks.values()]
    assert "The Loire is the longest river in France." in texts
    assert not any("Danube" in t or "Flour" in t for t in texts)
    gone = sum(c.article_id in ("rivers", "bread") for c in before.chunks.values())
    assert len(after.store) == len(after.chunks) == len(before.chunks) - gone + 2
    assert set(after.store.ids()) == set(after.chunks)
    # Milvus may still hold the removed chunks (the previous generation uses them), never less.
    assert set(after.chunks) <= stored_rows(after) <= set(after.chunks) | set(before.chunks)
    top = after.store.search(np.asarray(fake_embedder.model.get_query_embedding("Danube Flour")), 5)
    assert top and all(cid in after.chunks for cid, _ in top)


def test_indexing_one_folder_keeps_articles_from_another(corpus, tmp_path, fake_embedder,
                                                         store_kind):
    data = tmp_path / "data"
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text("A note about tea.")
    run(corpus, data, fake_embedder, store_kind)
    run(other, data, fake_embedder, store_kind)
    index = load_index(data)
    assert "note" in index.articles and "bread" in index.articles
    assert stored_rows(index) >= set(index.chunks)


def test_bad_file_is_reported_and_the_rest_indexed(corpus, tmp_path, fake_embedder):
    (corpus / "broken.txt").write_bytes(b"\xff\xfe\xfa not utf8")
    (corpus / "empty.md").write_bytes(b"")
    report = run(corpus, tmp_path / "data", fake_embedder)
    assert sorted(Path(e.path).name for e in report.errors) == ["broken.txt", "empty.md"]
    assert len(report.added) == 3


def test_a_file_that_turns_bad_keeps_its_indexed_version(corpus, tmp_path, fake_embedder,
                                                         store_kind):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store_kind)
    (corpus / "rivers.md").write_bytes(b"\xff\xfe broken now")
    report = run(corpus, data, fake_embedder, store_kind)
    assert report.removed == [] and len(report.errors) == 1
    assert "rivers" in load_index(data).articles


def test_other_model_chunker_or_store_gives_clear_error(corpus, tmp_path, fake_embedder,
                                                        store_kind):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store_kind)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        run(corpus, data, FakeEmbedder(name="another-model"), store_kind)
    with pytest.raises(IndexMismatchError, match="chunker"):
        index_paths([corpus], IndexConfig(data_dir=data, store=store_kind,
                                          chunker=ChunkerConfig(chunk_size=32)),
                    fake_embedder, progress=False, log=lambda m: None)
    other_store = "faiss" if store_kind == "milvus" else "milvus"
    with pytest.raises(IndexMismatchError, match=f"store copy --to {other_store}"):
        run(corpus, data, fake_embedder, other_store)
    report = run(corpus, data, FakeEmbedder(name="another-model"), store_kind, rebuild=True)
    assert report.chunks_embedded == report.chunks_total
    rebuilt = load_index(data)
    assert rebuilt.manifest.model["name"] == "another-model"
    assert stored_rows(rebuilt) == set(rebuilt.chunks)


def test_crash_while_writing_leaves_previous_index(corpus, tmp_path, fake_embedder, monkeypatch,
                                                   store_kind):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store_kind)
    previous = current_folder(data)
    (corpus / "rivers.md").write_text("# Rivers\n\nChanged text about the Seine.\n")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("index.storage._point_current", crash)  # the switch fails
    with pytest.raises(OSError, match="disk full"):
        run(corpus, data, fake_embedder, store_kind)
    monkeypatch.undo()
    assert current_folder(data) == previous
    index = load_index(data)
    assert any("Danube" in c.text for c in index.chunks.values())
    assert not list(data.glob(".tmp-gen-*"))
    report = run(corpus, data, fake_embedder, store_kind)
    assert report.updated == ["rivers"]


def test_crash_while_removing_an_old_generation_leaves_no_half_generation(
        corpus, tmp_path, fake_embedder, monkeypatch, store_kind):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store_kind)
    for text in ["Changed text about the Seine.", "About the Loire."]:
        (corpus / "rivers.md").write_text(f"# Rivers\n\n{text}\n")
        run(corpus, data, fake_embedder, store_kind)
    real_rmtree = shutil.rmtree

    def killed_mid_delete(path, *args, **kwargs):  # removes one file, then the process dies
        next(f for f in Path(path).rglob("*.jsonl")).unlink()
        raise KeyboardInterrupt

    (corpus / "rivers.md").write_text("# Rivers\n\nAbout the Rhone.\n")
    monkeypatch.setattr("index.storage.shutil.rmtree", killed_mid_delete)
    with pytest.raises(KeyboardInterrupt):
        run(corpus, data, fake_embedder, store_kind)
    monkeypatch.setattr("index.storage.shutil.rmtree", real_rmtree)
    for folder in store_folders(data):  # every generation listed is whole
        assert (folder.parent / "chunks.jsonl").exists()
    assert list(data.glob(".deleting-gen-*"))
    report = run(corpus, data, fake_embedder, store_kind)  # nothing changed: only cleans up
    assert not report.written
    assert not list(data.glob(".deleting-gen-*"))
    assert len(list(data.glob("gen-*"))) == 2
    if store_kind == "milvus":
        assert stored_rows(load_index(data)) == used_by_generations(data)


def test_no_index_error_says_how_to_build(tmp_path):
    with pytest.raises(NoIndexError, match="sanad index"):
        load_index(tmp_path / "nothing")


def test_manifest_records_model_chunker_store_and_hashes(corpus, tmp_path, fake_embedder,
                                                         store_kind):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder, store_kind)
    manifest = json.loads((current_folder(data) / "manifest.json").read_text())
    assert manifest["store"] == store_kind
    assert manifest["model"]["name"] == "fake-embedder" and manifest["model"]["dim"] == 64
    assert manifest["chunker"]["chunk_size"] == 256
    assert len(manifest["articles"]["rivers"]["sha256"]) == 64
    assert os.path.islink(data / "current")


def test_faiss_store_never_reuses_an_id_after_delete(tmp_path):
    store = FaissStore(dim=4)
    eye = np.eye(4, dtype=np.float32)
    store.add(["a", "b", "c"], eye[:3])
    store.delete(["a"])
    store.add(["d"], eye[3:])
    assert sorted(store.ids()) == ["b", "c", "d"]
    assert store.search(eye[2], 1) == [("c", 1.0)]
    store.save(tmp_path / "s")
    loaded = FaissStore.load(tmp_path / "s", 4)
    assert loaded.search(eye[3], 1) == [("d", 1.0)] and len(loaded) == 3


def test_a_copied_file_reuses_vectors_instead_of_embedding(corpus, tmp_path, fake_embedder):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    embedded = fake_embedder.embedded
    other = tmp_path / "copy"
    other.mkdir()
    (other / "rivers-copy.md").write_text((corpus / "rivers.md").read_text())
    report = index_paths([other], IndexConfig(data_dir=data), fake_embedder, progress=False,
                         log=lambda m: None)
    assert report.added == ["rivers-copy"] and report.chunks_embedded == 0
    assert fake_embedder.embedded == embedded
    index = load_index(data)
    copy = [c for c in index.chunks.values() if c.article_id == "rivers-copy"]
    original = [c for c in index.chunks.values() if c.article_id == "rivers"]
    assert [(c.start, c.end, c.text) for c in sorted(copy, key=lambda c: c.start)] == [
        (c.start, c.end, c.text) for c in sorted(original, key=lambda c: c.start)]
    assert np.allclose(index.store.vectors([c.id for c in copy]),
                       index.store.vectors([c.id for c in original]))
    assert len(index.store) == len(index.chunks)


def test_an_update_to_text_already_indexed_replaces_the_old_chunks(corpus, tmp_path,
                                                                   fake_embedder):
    data = tmp_path / "data"
    run(corpus, data, fake_embedder)
    (corpus / "bread.html").unlink()
    (corpus / "bread.md").write_text((corpus / "rivers.md").read_text())  # same text, new id
    (corpus / "rivers.md").write_text("# Rivers\n\nNow about the Elbe.\n")
    report = run(corpus, data, fake_embedder)
    assert report.removed == ["bread"] and report.updated == ["rivers"]
    index = load_index(data)
    # bread.md gets its own id while bread.html, removed in the same run, still holds "bread"
    assert set(index.articles) == {"bread-2", "rivers", "us-mexico-migration-talks"}
    assert len(index.store) == len(index.chunks) == index.manifest.chunk_count
    assert any("Danube" in c.text for c in index.chunks.values())  # kept via the copy
    assert any("Elbe" in c.text for c in index.chunks.values())
