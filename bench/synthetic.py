"""Synthetic unit vectors for the scale benchmarks, generated in blocks from a seed.

Two kinds of database:

- uniform: independent uniform points on the sphere. In 768-d every pair is nearly
  orthogonal and there are no neighbourhoods, so approximate indexes (IVF, HNSW) find
  the true neighbours worst here: a lower bound, unlike real embeddings.
- clustered: a mixture on the sphere, closer to embeddings of real text, where chunks of
  one article or topic sit near each other. One centre per `VECTORS_PER_CENTRE` vectors,
  uniform on the sphere; each vector is its centre plus Gaussian noise of the same norm
  (cosine about 0.7 to its centre, 0.5 to another member of its cluster, about 0 to
  other clusters), normalised.

Queries are database vectors plus a smaller noise (cosine about 0.9 to the vector they
come from), normalised, so each query has a true nearest neighbour and its other
neighbours are members of the same cluster. Blocks are generated one at a time, never the
whole database at once; the same (seed, size, kind) gives the same vectors every run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK = 20_000  # vectors generated (and added) at a time
VECTORS_PER_CENTRE = 1_000
CLUSTER_SPREAD = 1.0  # noise norm / centre norm: cosine to the centre ~ 1/sqrt(1 + spread^2)
QUERY_NOISE = 0.5  # noise norm / vector norm of a query: cosine ~ 0.9 to its vector
KINDS = ("clustered", "uniform")


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Gaussian noise whose rows have a norm of about `scale`."""
    return scale * rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[-1])


def centres(seed: int, size: int, dim: int) -> np.ndarray:
    rng = np.random.default_rng([seed, size, 1])
    count = max(1, size // VECTORS_PER_CENTRE)
    return _normalised(rng.standard_normal((count, dim), dtype=np.float32))


def vector_block(kind: str, seed: int, block: int, rows: int, dim: int,
                 centre_vectors: np.ndarray | None = None) -> np.ndarray:
    """Block number `block` of the database (`centre_vectors` for the clustered kind)."""
    rng = np.random.default_rng([seed, block])
    if kind == "uniform":
        return _normalised(rng.standard_normal((rows, dim), dtype=np.float32))
    if kind != "clustered" or centre_vectors is None:
        raise ValueError(f"unknown data kind {kind!r} (or no centres): {', '.join(KINDS)}")
    members = centre_vectors[rng.integers(len(centre_vectors), size=rows)]
    return _normalised(members + _noise(rng, (rows, dim), CLUSTER_SPREAD))


def _centres_for(kind: str, seed: int, size: int, dim: int) -> np.ndarray | None:
    return centres(seed, size, dim) if kind == "clustered" else None


def blocks(kind: str, size: int, dim: int, seed: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, vectors) blocks of the database; ids look like chunk ids."""
    centre_vectors = _centres_for(kind, seed, size, dim)
    for number, start in enumerate(range(0, size, BLOCK)):
        rows = min(BLOCK, size - start)
        ids = [f"{i:020x}" for i in range(start, start + rows)]
        yield ids, vector_block(kind, seed, number, rows, dim, centre_vectors)


def queries(kind: str, size: int, dim: int, seed: int, count: int) -> np.ndarray:
    """`count` database vectors with noise added, normalised (each block generated once)."""
    rng = np.random.default_rng([seed, 999_999])
    picks = np.sort(rng.choice(size, count, replace=False))
    centre_vectors = _centres_for(kind, seed, size, dim)
    out = []
    for number in sorted({int(p) // BLOCK for p in picks}):
        rows = min(BLOCK, size - number * BLOCK)
        base = vector_block(kind, seed, number, rows, dim, centre_vectors)
        chosen = base[picks[picks // BLOCK == number] % BLOCK]
        out.append(_normalised(chosen + _noise(rng, chosen.shape, QUERY_NOISE)))
    return np.concatenate(out)
