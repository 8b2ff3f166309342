"""What an indexing run must do, decided without touching disk or model: `plan()`.

Given what the index holds (its manifest) and the articles just read, it says which are
added, updated, removed or unchanged, which only changed file name or title, which repeat
text already indexed (their vectors are reused), and which need embedding.
`index.pipeline.apply` then does it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from index.sources import Article
from index.storage import Manifest


@dataclass(frozen=True)
class Plan:
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: list[str]
    relabelled: list[Article]  # unchanged text from another file name or with another title
    reused: list[tuple[Article, str]]  # new text already indexed as that article id: copy it
    to_embed: list[Article]  # new text to chunk and embed
    replaced: list[str]  # article ids whose chunks go: removed, updated, or indexed anew

    @property
    def changes_content(self) -> bool:
        return bool(self.removed or self.reused or self.to_embed)


def _scope_contains(scope: list[Path], source: str) -> bool:
    src = Path(source)
    return any(src == s or s in src.parents for s in scope)


def unique_ids(articles: list[Article], known: dict[str, dict]) -> list[Article]:
    """Give two files with the same name different ids (the first keeps the plain one).

    `known` is the manifest's articles: id -> {source, ...}.
    """
    by_source = {entry["source"]: aid for aid, entry in known.items()}
    taken = {aid: entry["source"] for aid, entry in known.items()}
    result = []
    for art in articles:
        wanted = by_source.get(art.source, art.id)
        candidate, n = wanted, 2
        while taken.get(candidate, art.source) != art.source:
            candidate, n = f"{wanted}-{n}", n + 1
        taken[candidate] = art.source
        result.append(art if candidate == art.id else Article(
            id=candidate, title=art.title, text=art.text, sha256=art.sha256, source=art.source))
    return result


def plan(manifest: Manifest | None, scanned: list[Article], scope: list[Path],
         failed_sources: Collection[str] = ()) -> Plan:
    """The changes that bring an index with `manifest` (None: no index yet) in line with
    `scanned`, the articles read under `scope` (resolved paths that exist).

    An indexed article from inside the scope that was not scanned is removed, unless its
    file is among `failed_sources` (resolved paths that could not be read): a file that
    turned bad keeps its indexed version. `scanned` must already carry unique ids
    (`unique_ids`).
    """
    known = manifest.articles if manifest else {}
    seen = {a.id for a in scanned}
    removed = [aid for aid, entry in known.items()
               if aid not in seen and _scope_contains(scope, entry["source"])
               and entry["source"] not in failed_sources]
    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    relabelled: list[Article] = []
    changed: list[Article] = []
    for art in scanned:
        old = known.get(art.id)
        if old is not None and old["sha256"] == art.sha256:
            unchanged.append(art.id)
            if old["source"] != art.source or old["title"] != art.title:
                relabelled.append(art)
        else:
            (updated if old is not None else added).append(art.id)
            changed.append(art)
    # Content-hash dedup: an article whose exact text is already indexed (a moved or
    # copied file) takes that article's chunks and vectors instead of being embedded.
    indexed_by_sha = {entry["sha256"]: aid for aid, entry in known.items() if entry["chunks"]}
    return Plan(
        added=added, updated=updated, removed=removed, unchanged=unchanged,
        relabelled=relabelled,
        reused=[(a, indexed_by_sha[a.sha256]) for a in changed if a.sha256 in indexed_by_sha],
        to_embed=[a for a in changed if a.sha256 not in indexed_by_sha],
        replaced=[*removed, *(a.id for a in changed)],
    )
