"""Run one indexing pass with the fake embedder; the crash test kills this process.

    python -m tests.crash_indexer CORPUS DATA_DIR [faiss|milvus]
Prints each log line as it happens, so the test can kill it while it indexes.
"""

import sys
from pathlib import Path

from index.pipeline import IndexConfig, index_paths
from tests.fakes import FakeEmbedder

if __name__ == "__main__":
    corpus, data = Path(sys.argv[1]), Path(sys.argv[2])
    store = sys.argv[3] if len(sys.argv) > 3 else "faiss"
    report = index_paths([corpus], IndexConfig(data_dir=data, store=store),
                         FakeEmbedder(delay=0.01), progress=False,
                         log=lambda m: print(m, flush=True))
    print(report.chunks_total, flush=True)
