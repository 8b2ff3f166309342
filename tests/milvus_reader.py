"""A serving process for the multi-process tests: one JSON line per question read from stdin.

    python -m tests.milvus_reader DATA_DIR MILVUS_URI
"""

import json
import sys

from app.service import SanadService
from app.settings import Settings
from tests.fakes import FakeEmbedder

if __name__ == "__main__":
    data_dir, uri = sys.argv[1], sys.argv[2]
    service = SanadService(Settings(data_dir=data_dir, store="milvus", milvus_uri=uri),
                           embed_model=FakeEmbedder())
    for line in sys.stdin:
        try:
            passages = service.retrieve(line.strip(), 3)
            answer = {"generation": service.searcher().data.manifest.generation,
                      "texts": [p.text for p in passages]}
        except Exception as exc:  # reported to the test, which decides
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer, ensure_ascii=False), flush=True)
