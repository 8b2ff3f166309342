"""Where to set `render_min_similarity`: the embedding model's cross-lingual cosine between
an Arabic answer and its English rendering, on a dataset's aligned gold answers.

Positives are each question's `answers_ar[0]` against its own `answers_en[0]`; negatives
the same Arabic answer against the English answer of another question about the same
article (a near miss: same topic, other fact). For each candidate floor the script prints
the share of positives kept and of negatives let through, for the whole-phrase cosine
(`render_min_similarity`) and for the word check (`render_min_word_similarity`: every
content word of the English answer within the floor of some word of the Arabic one).

The coverage check (`render_min_coverage_similarity`: every content word of the Arabic
answer within the floor of a word of the English one that stands for it, or within the
word floor of any) is measured among the pairs that
pass every other check at the settings' floors. Near misses rarely get that far, and human
translations do not leave words out the way the small model does; so `--shown` also lists,
for reading by hand, the renderings that eval runs showed (their questions.jsonl) which
each coverage floor would withhold.

    python eval/calibrate_rendering.py ../shared/datasets/xquad-ar-dev [--pairs 300]
        [--shown eval/reports/xquad-local-model-s150/questions.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.answering.rendering import (  # noqa: E402
    RenderChecks,
    capitalised_words,
    clauses,
    content_words,
    in_context_from,
    rendering_problems,
)
from app.names import common_words_not_heard, names_not_in_source  # noqa: E402
from app.settings import Settings  # noqa: E402
from index.embedding import load_embedder  # noqa: E402

MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")  # "[1]", "[1, 3]" after a part
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


def near_miss(rows: list[dict], i: int, rng: random.Random) -> int | None:
    """Another question about the same article as `rows[i]`, with another English answer,
    drawn at random (None when there is none): its answer is a near miss for row i's."""
    answer = rows[i]["answers_en"][0].lower()
    others = [j for j, other in enumerate(rows) if other["title"] == rows[i]["title"]
              and other["answers_en"][0].lower() != answer]
    return rng.choice(others) if others else None


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shown", type=Path, nargs="*", default=[],
                        help="eval runs' questions.jsonl: list the English renderings they "
                             "showed that each coverage floor withholds")
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
    for i in range(len(rows)):
        if (j := near_miss(rows, i, rng)) is not None:
            negatives.append(float(arabic[i] @ english[j]))
    negatives_array = np.array(negatives)
    print(f"{len(rows)} aligned pairs, {len(negatives)} near misses (same article)")
    print("phrase cosine floor  positives kept  near misses through")
    for floor in FLOORS:
        print(f"{floor:19.2f}  {(positives >= floor).mean():14.3f}  "
              f"{(negatives_array >= floor).mean():19.3f}")
    word_positives, word_negatives, read_positives, read_negatives = word_scores(embedder, rows,
                                                                                 rng)
    print("word floor  positives kept  near misses through  (words also read in context:)"
          "  kept  through")
    for floor in FLOORS:
        print(f"{floor:10.2f}  {(word_positives >= floor).mean():14.3f}  "
              f"{(word_negatives >= floor).mean():19.3f}  {'':30}"
              f"{(read_positives >= floor).mean():.3f}  {(read_negatives >= floor).mean():7.3f}")
    name_positives, name_negatives, read_positives, read_negatives = name_scores(embedder, rows,
                                                                                 rng)
    print(f"names that sound like no Arabic word: {len(name_positives)} in their own answer, "
          f"{len(name_negatives)} in a near miss")
    print("name floor  positives kept  near misses through  (words also read in context:)"
          "  kept  through")
    for floor in NAME_FLOORS:
        print(f"{floor:10.2f}  {(name_positives >= floor).mean():14.3f}  "
              f"{(name_negatives >= floor).mean():19.3f}  {'':30}"
              f"{(read_positives >= floor).mean():.3f}  {(read_negatives >= floor).mean():7.3f}")
    checks = render_checks(embedder, settings)
    coverage_table(checks, rows, random.Random(args.seed))
    if args.shown:
        shown_renderings(checks, args.shown)


def word_scores(embedder, rows: list[dict], rng: random.Random
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pair, the lowest best-match cosine of the English answer's content words to the
    Arabic answer's words: what the word check compares with its floor. (positives, near
    misses) with each word alone, then the same with the better of that and the two words
    as read in their answers (what the check uses when the model gives word vectors)."""
    english = [content_words(r["answers_en"][0]) for r in rows]
    arabic = [content_words(r["answers_ar"][0]) for r in rows]
    vocabulary = sorted({w for words in english + arabic for w in words})
    vectors = unit(np.asarray(embedder.embed_documents(vocabulary)))
    index = {w: i for i, w in enumerate(vocabulary)}
    read = in_context_from(embedder.word_vectors)

    def scores(i: int, j: int) -> tuple[float, float] | None:
        """(alone, in context too) for English answer j against Arabic answer i."""
        if not english[j] or not arabic[i]:
            return None
        alone = vectors[[index[w] for w in english[j]]] @ vectors[[index[w] for w in arabic[i]]].T
        both = read(rows[j]["answers_en"][0], english[j], rows[i]["answers_ar"][0], arabic[i])
        both = alone if both is None else np.maximum(alone, both)
        return float(alone.max(axis=1).min()), float(both.max(axis=1).min())

    positives, negatives = [], []
    for i, row in enumerate(rows):
        if (s := scores(i, i)) is not None:
            positives.append(s)
        others = [j for j, other in enumerate(rows) if other["title"] == row["title"] and j != i
                  and english[j] and set(english[j]) != set(english[i])]
        if others and (s := scores(i, rng.choice(others))) is not None:
            negatives.append(s)
    positives_array, negatives_array = np.array(positives), np.array(negatives)
    return (positives_array[:, 0], negatives_array[:, 0], positives_array[:, 1],
            negatives_array[:, 1])


def name_scores(embedder, rows: list[dict], rng: random.Random
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The best cosine to the Arabic answer's words of each capitalised word of an English
    answer that fails the sound check against it (common words included, as the rendering
    check does): for the answer's own English (positives) and for another answer's about
    the same article (near misses); each word alone, then also as read in its answer."""
    def unheard(english: str, arabic: str) -> list[str]:
        names = capitalised_words(english)
        return (names_not_in_source(names, arabic, strict=True)
                + common_words_not_heard(names, arabic))

    pairs = []  # (words, Arabic words, English, Arabic, is positive)
    for i, row in enumerate(rows):
        arabic = row["answers_ar"][0]
        english = row["answers_en"][0]
        pairs.append((unheard(english, arabic), content_words(arabic), english, arabic, True))
        if (j := near_miss(rows, i, rng)) is not None:
            other = rows[j]["answers_en"][0]
            pairs.append((unheard(other, arabic), content_words(arabic), other, arabic, False))
    pairs = [p for p in pairs if p[0] and p[1]]
    vocabulary = sorted({w for words, arabic, *_ in pairs for w in words + arabic})
    vectors = unit(np.asarray(embedder.embed_documents(vocabulary)))
    index = {w: i for i, w in enumerate(vocabulary)}
    read = in_context_from(embedder.word_vectors)
    found: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    for words, arabic_words, english, arabic, positive in pairs:
        alone = (vectors[[index[w] for w in words]]
                 @ vectors[[index[w] for w in arabic_words]].T)
        both = read(english, words, arabic, arabic_words)
        both = alone if both is None else np.maximum(alone, both)
        found[positive][0].extend(alone.max(axis=1).tolist())
        found[positive][1].extend(both.max(axis=1).tolist())
    return (np.array(found[True][0]), np.array(found[False][0]), np.array(found[True][1]),
            np.array(found[False][1]))


def render_checks(embedder, settings: Settings) -> RenderChecks:
    """The rendering checks at the settings' floors, with the embedding model's word
    cosines (the whole-phrase cosine has its own table above)."""
    vectors: dict[str, np.ndarray] = {}

    def word_similarity(words: list[str], others: list[str]) -> np.ndarray:
        new = [w for w in dict.fromkeys(words + others) if w not in vectors]
        if new:
            vectors.update(zip(new, unit(np.asarray(embedder.embed_documents(new))),
                               strict=True))
        return np.array([vectors[w] for w in words]) @ np.array([vectors[w] for w in others]).T

    return RenderChecks(lambda a, b: 1.0, word_similarity, settings.render_min_similarity,
                        settings.render_min_word_similarity,
                        settings.render_min_name_similarity,
                        settings.render_min_coverage_similarity,
                        settings.render_min_clause_similarity,
                        in_context_from(embedder.word_vectors))


def passes_but_coverage(checks: RenderChecks, english: str, arabic: str) -> bool:
    problems = (rendering_problems(english, arabic, "", "latin", checks)
                or checks.problems(english, arabic)[0])
    return all(p.endswith("left out") for p in problems)


def coverage_table(checks: RenderChecks, rows: list[dict], rng: random.Random) -> None:
    pairs = []  # (English, Arabic, is positive)
    for i, row in enumerate(rows):
        pairs.append((row["answers_en"][0], row["answers_ar"][0], True))
        if (j := near_miss(rows, i, rng)) is not None:
            pairs.append((rows[j]["answers_en"][0], row["answers_ar"][0], False))
    passing = [p for p in pairs if passes_but_coverage(checks, p[0], p[1])]
    positives = sum(1 for p in pairs if p[2])
    negatives = len(pairs) - positives
    print(f"coverage floor (after every other check; {positives} positives, {negatives} near "
          "misses)  positives kept  near misses through")
    for floor in (None, *FLOORS):
        floored = (replace(checks, min_coverage_similarity=floor) if floor is not None
                   else replace(checks, min_coverage_similarity=-1, min_word_similarity=-1))
        kept = [p for p in passing if not floored.uncovered(p[0], p[1])]
        label = "off" if floor is None else f"{floor:.2f}"
        print(f"{label:>14}  {sum(p[2] for p in kept) / positives:14.3f}  "
              f"{sum(not p[2] for p in kept) / negatives:19.3f}")


def shown_renderings(checks: RenderChecks, runs: list[Path]) -> None:
    """The English renderings the runs showed, one per answer part, and for each coverage
    floor those it would withhold, with the article's words it finds left out."""
    shown = []  # (question id, article's words, rendering, gold answer)
    for run in runs:
        for line in run.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("lang") != "en" or not row.get("translation"):
                continue
            gold = (row.get("gold_answers") or [""])[0]
            if "renderings_shown" in row:
                shown += [(row["id"], r["source"], r["text"], gold)
                          for r in row["renderings_shown"]]
                continue
            # runs before renderings_shown was stored: pair the parts by their markers
            parts = [p.strip() for p in MARKER.split(row["translation"])
                     if p.strip(" .،,")]  # a sentence's full stop after its marker
            spans = [s["text"] for s in row.get("sentences") or []]
            if len(parts) == len(spans):  # else a part was withheld: no way to pair them
                shown += [(row["id"], s, p, gold) for s, p in zip(spans, parts, strict=True)]
    print(f"{len(shown)} renderings shown in {len(runs)} run(s), "
          f"{len({(s, p) for _, s, p, _ in shown})} different")
    for floor in FLOORS:
        floored = replace(checks, min_coverage_similarity=floor)
        withheld = [(row_id, span, text, gold, left_out) for row_id, span, text, gold in shown
                    if (left_out := clause_coverage(floored, text, span))]
        different = len({(span, text) for _, span, text, _, _ in withheld})
        print(f"coverage floor {floor:.2f}: withholds {len(withheld)} ({different} different)")
        for row_id, span, text, gold, left_out in withheld:
            print(f"  {row_id}: {span} → {text} (gold: {gold[:60]}; left out: "
                  f"{', '.join(left_out)})")


def clause_coverage(checks: RenderChecks, text: str, span: str) -> list[str]:
    """The span's words the rendering leaves out, clause by clause as it was rendered."""
    pieces, sources = text.split(", "), clauses(span)
    if len(sources) == 1 or len(pieces) != len(sources):
        pieces, sources = [text], [span]
    return [w for piece, source in zip(pieces, sources, strict=True)
            for w in checks.uncovered(piece, source)]


if __name__ == "__main__":
    main()
