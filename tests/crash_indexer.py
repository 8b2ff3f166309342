"""Run one indexing pass with the fake embedder; the crash test kills this process."""

import sys
from pathlib import Path

from index.pipeline import IndexConfig, index_paths
from tests.fakes import FakeEmbedder

if __name__ == "__main__":
    corpus, data = Path(sys.argv[1]), Path(sys.argv[2])
    report = index_paths([corpus], IndexConfig(data_dir=data), FakeEmbedder(delay=0.01),
                         progress=False, log=lambda m: None)
    print(report.chunks_total)
