"""Where to set `render_min_similarity`: the embedding model's cross-lingual cosine between
an Arabic answer and its English rendering, on a dataset's aligned gold answers.

Positives are each question's `answers_ar[0]` against its own `answers_en[0]`; negatives
the same Arabic answer against the English answer of another question about the same
article (a near miss: same topic, other fact). For each candidate floor the script prints
the share of positives kept and of negatives let through, for the whole-phrase cosine
(`render_min_similarity`) and for the word check (`render_min_word_similarity`: every
content word of the English answer within the floor of some word of the Arabic one).

    python eval/calibrate_rendering.py ../shared/datasets/xquad-ar-dev [--pairs 300]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.answering.rendering import capitalised_words, content_words  # noqa: E402
from app.names import common_words_not_heard, names_not_in_source  # noqa: E402
from app.settings import Settings  # noqa: E402
from index.embedding import load_embedder  # noqa: E402

FLOORS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)
NAME_FLOORS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85)


def aligned_pairs(dataset: Path, count: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in
            (dataset / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line]
    rows = [r for r in rows if r.get("answers_ar") and r.get("answers_en")]
    if not rows:
        raise SystemExit(f"{dataset}: no question has both answers_ar and answers_en")
    random.Random(seed).shuffle(rows)
    return rows[:count]


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = aligned_pairs(args.dataset, args.pairs, args.seed)
    settings = Settings()
    embedder = load_embedder(settings.embed_model, settings.models_dir, dtype=settings.embed_dtype,
                             threads=settings.threads)
    arabic = unit(np.asarray(embedder.embed_documents([r["answers_ar"][0] for r in rows])))
    english = unit(np.asarray(embedder.embed_documents([r["answers_en"][0] for r in rows])))
    positives = (arabic * english).sum(axis=1)
    rng = random.Random(args.seed)
    negatives = []
    for i, row in enumerate(rows):
        others = [j for j, other in enumerate(rows) if other["title"] == row["title"]
                  and other["answers_en"][0].lower() != row["answers_en"][0].lower()]
        if others:
            negatives.append(float(arabic[i] @ english[rng.choice(others)]))
    negatives_array = np.array(negatives)
    print(f"{len(rows)} aligned pairs, {len(negatives)} near misses (same article)")
    print("phrase cosine floor  positives kept  near misses through")
    for floor in FLOORS:
        print(f"{floor:19.2f}  {(positives >= floor).mean():14.3f}  "
              f"{(negatives_array >= floor).mean():19.3f}")
    word_positives, word_negatives = word_scores(embedder, rows, rng)
    print("word floor  positives kept  near misses through")
    for floor in FLOORS:
        print(f"{floor:10.2f}  {(word_positives >= floor).mean():14.3f}  "
              f"{(word_negatives >= floor).mean():19.3f}")
    name_positives, name_negatives = name_scores(embedder, rows, rng)
    print(f"names that sound like no Arabic word: {len(name_positives)} in their own answer, "
          f"{len(name_negatives)} in a near miss")
    print("name floor  positives kept  near misses through")
    for floor in NAME_FLOORS:
        print(f"{floor:10.2f}  {(name_positives >= floor).mean():14.3f}  "
              f"{(name_negatives >= floor).mean():19.3f}")


def word_scores(embedder, rows: list[dict], rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the lowest best-match cosine of the English answer's content words to the
    Arabic answer's words: what the word check compares with its floor."""
    english = [content_words(r["answers_en"][0]) for r in rows]
    arabic = [content_words(r["answers_ar"][0]) for r in rows]
    vocabulary = sorted({w for words in english + arabic for w in words})
    vectors = unit(np.asarray(embedder.embed_documents(vocabulary)))
    index = {w: i for i, w in enumerate(vocabulary)}

    def score(en: list[str], ar: list[str]) -> float | None:
        if not en or not ar:
            return None
        cosines = vectors[[index[w] for w in en]] @ vectors[[index[w] for w in ar]].T
        return float(cosines.max(axis=1).min())

    positives, negatives = [], []
    for i, row in enumerate(rows):
        if (s := score(english[i], arabic[i])) is not None:
            positives.append(s)
        others = [j for j, other in enumerate(rows) if other["title"] == row["title"] and j != i
                  and english[j] and set(english[j]) != set(english[i])]
        if others and (s := score(english[rng.choice(others)], arabic[i])) is not None:
            negatives.append(s)
    return np.array(positives), np.array(negatives)


def name_scores(embedder, rows: list[dict], rng: random.Random
                ) -> tuple[np.ndarray, np.ndarray]:
    """The best cosine to the Arabic answer's words of each capitalised word of an English
    answer that fails the sound check against it (common words included, as the rendering
    check does): for the answer's own English (positives) and for another answer's about
    the same article (near misses)."""
    def unheard(english: str, arabic: str) -> list[str]:
        names = capitalised_words(english)
        return (names_not_in_source(names, arabic, strict=True)
                + common_words_not_heard(names, arabic))

    pairs = []  # (words, Arabic words, is positive)
    for i, row in enumerate(rows):
        arabic = row["answers_ar"][0]
        pairs.append((unheard(row["answers_en"][0], arabic), content_words(arabic), True))
        others = [j for j, other in enumerate(rows) if other["title"] == row["title"] and j != i
                  and other["answers_en"][0].lower() != row["answers_en"][0].lower()]
        if others:
            other = rows[rng.choice(others)]["answers_en"][0]
            pairs.append((unheard(other, arabic), content_words(arabic), False))
    pairs = [p for p in pairs if p[0] and p[1]]
    vocabulary = sorted({w for words, arabic, _ in pairs for w in words + arabic})
    vectors = unit(np.asarray(embedder.embed_documents(vocabulary)))
    index = {w: i for i, w in enumerate(vocabulary)}
    positives, negatives = [], []
    for words, arabic, positive in pairs:
        best = (vectors[[index[w] for w in words]] @ vectors[[index[w] for w in arabic]].T
                ).max(axis=1)
        (positives if positive else negatives).extend(best.tolist())
    return np.array(positives), np.array(negatives)


if __name__ == "__main__":
    main()
