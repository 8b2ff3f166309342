"""plan(): which articles an indexing run adds, updates, removes, relabels, reuses, embeds."""

from pathlib import Path

from index.changes import plan, unique_ids
from index.sources import Article
from index.storage import Manifest

ROOT = Path("/corpus")


def article(name: str, text: str, title: str = "", folder: Path = ROOT) -> Article:
    return Article(id=Path(name).stem, title=title or name, text=text, sha256=f"sha-{text}",
                   source=str(folder / name))


def manifest(*entries: tuple[Article, int]) -> Manifest:
    """A manifest indexing each article with that many chunks."""
    return Manifest(model={}, chunker={}, store="faiss", articles={
        a.id: {"source": a.source, "title": a.title, "sha256": a.sha256, "chunks": chunks}
        for a, chunks in entries})


def test_a_first_run_embeds_everything():
    rivers, bread = article("rivers.md", "Danube"), article("bread.txt", "Flour")
    changes = plan(None, [rivers, bread], [ROOT])
    assert changes.added == ["rivers", "bread"] and changes.to_embed == [rivers, bread]
    assert changes.updated == changes.removed == changes.unchanged == []
    assert changes.reused == [] and changes.relabelled == [] and changes.changes_content
    assert changes.replaced == ["rivers", "bread"]  # nothing indexed under those ids yet


def test_nothing_changed_means_nothing_to_do():
    rivers = article("rivers.md", "Danube")
    changes = plan(manifest((rivers, 2)), [rivers], [ROOT])
    assert changes.unchanged == ["rivers"] and not changes.changes_content
    assert changes.added == changes.updated == changes.removed == changes.replaced == []


def test_new_text_updates_and_a_missing_file_in_scope_is_removed():
    rivers, bread = article("rivers.md", "Danube"), article("bread.txt", "Flour")
    new_rivers = article("rivers.md", "Danube and Rhine")
    changes = plan(manifest((rivers, 2), (bread, 1)), [new_rivers], [ROOT])
    assert changes.updated == ["rivers"] and changes.removed == ["bread"]
    assert changes.to_embed == [new_rivers] and changes.replaced == ["bread", "rivers"]


def test_articles_outside_the_scope_or_whose_file_failed_stay():
    other = article("sea.txt", "Waves", folder=Path("/elsewhere"))
    broken = article("bread.txt", "Flour")
    changes = plan(manifest((other, 1), (broken, 1)), [], [ROOT], {broken.source})
    assert changes.removed == [] and not changes.changes_content


def test_a_renamed_title_is_relabelled_without_embedding():
    rivers = article("rivers.md", "Danube", title="Rivers")
    retitled = article("rivers.md", "Danube", title="Rivers of Europe")
    changes = plan(manifest((rivers, 2)), [retitled], [ROOT])
    assert changes.unchanged == ["rivers"] and changes.relabelled == [retitled]
    assert changes.to_embed == [] and not changes.changes_content


def test_text_already_indexed_reuses_its_vectors():
    rivers = article("rivers.md", "Danube")
    copy = article("copy.md", "Danube")
    empty = article("empty.md", "Nothing")  # indexed without chunks: nothing to reuse
    again = article("again.md", "Nothing")
    changes = plan(manifest((rivers, 2), (empty, 0)), [rivers, copy, again, empty], [ROOT])
    assert changes.added == ["copy", "again"] and changes.reused == [(copy, "rivers")]
    assert changes.to_embed == [again] and changes.replaced == ["copy", "again"]


def test_a_moved_file_takes_the_vectors_of_its_old_place():
    old = article("rivers.md", "Danube")
    moved = article("rivers.md", "Danube", folder=ROOT / "europe")
    changes = plan(manifest((old, 2)), unique_ids([moved], manifest((old, 2)).articles), [ROOT])
    # The old file is gone from the scope; the moved one is new, under another id.
    assert changes.removed == ["rivers"] and changes.added == ["rivers-2"]
    assert [(a.id, original) for a, original in changes.reused] == [("rivers-2", "rivers")]
    assert changes.to_embed == []


def test_two_files_with_one_name_get_two_ids_and_keep_them():
    first = article("notes.txt", "One", folder=ROOT / "a")
    second = article("notes.txt", "Two", folder=ROOT / "b")
    assert [a.id for a in unique_ids([first, second], {})] == ["notes", "notes-2"]
    # Next run: the second file keeps its id even when read first.
    known = manifest((first, 1), (Article("notes-2", "notes.txt", "Two", "sha-Two",
                                          second.source), 1)).articles
    assert [a.id for a in unique_ids([second, first], known)] == ["notes-2", "notes"]
