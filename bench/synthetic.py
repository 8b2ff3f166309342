"""Synthetic unit vectors for the scale benchmarks, generated in blocks from a seed.

Two kinds of database:

- uniform: independent uniform points on the sphere. In 768-d every pair is nearly
  orthogonal and there are no neighbourhoods, so approximate indexes (IVF, HNSW) find
  the true neighbours worst here: a lower bound, unlike real embeddings.
- clustered: a mixture on the sphere, closer to embeddings of real text, where chunks of
  one article or topic sit near each other: one centre per `VECTORS_PER_CENTRE` vectors,
  uniform on the sphere, and each vector is its centre plus noise of the same norm,
  normalised. The noise is anisotropic, as real embeddings are: its variance along the
  i-th of a fixed set of random orthogonal directions falls as 1/i, so clusters overlap
  along the few strong directions and neighbourhoods run from one cluster into the next.
  (With isotropic noise every cluster is a separate ball and IVF finds every neighbour
  even when it scans 1/64 of its cells: too easy to choose parameters with.)

Queries are database vectors plus a smaller isotropic noise (cosine about 0.9 to the
vector they come from), normalised, so each query has a true nearest neighbour and its
other neighbours are mostly members of the same cluster. Blocks are generated one at a
time, never the whole database at once; the same (kind, size, seed) gives the same
vectors every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BLOCK = 20_000  # vectors generated (and added) at a time
VECTORS_PER_CENTRE = 100
CLUSTER_SPREAD = 1.0  # noise norm / centre norm: cosine to the centre ~ 1/sqrt(1 + spread^2)
QUERY_NOISE = 0.5  # noise norm / vector norm of a query: cosine ~ 0.9 to its vector
KINDS = ("clustered", "uniform")


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Gaussian noise whose rows have a norm of about `scale`."""
    return scale * rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[-1])


@dataclass(frozen=True)
class Mixture:
    centres: np.ndarray  # (count, dim) unit vectors
    directions: np.ndarray  # (dim, dim) orthonormal rows: the noise's axes
    scales: np.ndarray  # (dim,) noise standard deviation along each axis


def mixture(seed: int, size: int, dim: int) -> Mixture:
    rng = np.random.default_rng([seed, size, 1])
    count = max(1, size // VECTORS_PER_CENTRE)
    centres = _normalised(rng.standard_normal((count, dim), dtype=np.float32))
    directions, _ = np.linalg.qr(rng.standard_normal((dim, dim), dtype=np.float32))
    scales = np.arange(1, dim + 1, dtype=np.float32) ** -0.5  # variance ~ 1/i
    return Mixture(centres, directions.T, CLUSTER_SPREAD * scales / np.linalg.norm(scales))


def vector_block(kind: str, seed: int, block: int, rows: int, dim: int,
                 clusters: Mixture | None = None) -> np.ndarray:
    """Block number `block` of the database (`clusters` for the clustered kind)."""
    rng = np.random.default_rng([seed, block])
    if kind == "uniform":
        return _normalised(rng.standard_normal((rows, dim), dtype=np.float32))
    if kind != "clustered" or clusters is None:
        raise ValueError(f"unknown data kind {kind!r} (or no mixture): {', '.join(KINDS)}")
    members = clusters.centres[rng.integers(len(clusters.centres), size=rows)]
    noise = (rng.standard_normal((rows, dim), dtype=np.float32) * clusters.scales) @ clusters.directions
    return _normalised(members + noise)


def _mixture_for(kind: str, seed: int, size: int, dim: int) -> Mixture | None:
    return mixture(seed, size, dim) if kind == "clustered" else None


def blocks(kind: str, size: int, dim: int, seed: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, vectors) blocks of the database; ids look like chunk ids."""
    clusters = _mixture_for(kind, seed, size, dim)
    for number, start in enumerate(range(0, size, BLOCK)):
        rows = min(BLOCK, size - start)
        ids = [f"{i:020x}" for i in range(start, start + rows)]
        yield ids, vector_block(kind, seed, number, rows, dim, clusters)


def queries(kind: str, size: int, dim: int, seed: int, count: int) -> np.ndarray:
    """`count` database vectors with noise added, normalised.

    They are picked from the first block only: every block is drawn from the same
    distribution, and generating the other blocks again would cost minutes at 1M.
    """
    rng = np.random.default_rng([seed, 999_999])
    rows = min(BLOCK, size)
    base = vector_block(kind, seed, 0, rows, dim, _mixture_for(kind, seed, size, dim))
    chosen = base[np.sort(rng.choice(rows, count, replace=False))]
    return _normalised(chosen + _noise(rng, chosen.shape, QUERY_NOISE))
