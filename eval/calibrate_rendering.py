"""Where to set `render_min_similarity`: the embedding model's cross-lingual cosine between
an Arabic answer and its English rendering, on a dataset's aligned gold answers.

Positives are each question's `answers_ar[0]` against its own `answers_en[0]`; negatives
the same Arabic answer against the English answer of another question about the same
article (a near miss: same topic, other fact). For each candidate floor the script prints
the share of positives kept and of negatives let through.

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

from app.settings import Settings  # noqa: E402
from index.embedding import load_embedder  # noqa: E402

FLOORS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6)


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
    print("floor  positives kept  near misses through")
    for floor in FLOORS:
        print(f"{floor:5.2f}  {(positives >= floor).mean():14.3f}  "
              f"{(negatives_array >= floor).mean():19.3f}")


if __name__ == "__main__":
    main()
