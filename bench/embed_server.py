"""Indexing through an OpenAI-compatible embedding server with 1, 2, 4 concurrent batches.

The server is the test suite's (tests/embedding_server.py: FastAPI + uvicorn on 127.0.0.1, in
a thread of this process) running the real EmbeddingGemma as the local backend does (bf16,
the same batch size, the texts as sent: the client applies the prompts; one forward pass at
a time, as a model server queues batches). Each run indexes the
same articles into a fresh data folder through `SanadService.index` with embed_backend
"openai" (read, chunk with the model's tokenizer, embed over HTTP, FAISS, write), and the
local backend runs once first on the same articles as the reference. Chunks/s counts the
chunks embedded over the whole indexing run. The model is loaded once, before any timing.

On a CPU machine the server and the client share the cores, so more concurrent batches can
only overlap the HTTP and JSON work with the model's; against a GPU server they keep it busy.

    python bench/embed_server.py [--articles 10] [--concurrency 1,2,4] [--batch-size 8]
    python bench/embed_server.py --fake     # the fake model: the client's own overhead
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.service import SanadService  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import DEFAULT_ARCD, copy_articles, machine_load  # noqa: E402
from index import connect_embedder, load_index  # noqa: E402
from tests.embedding_server import (  # noqa: E402
    ServerState,
    fake_encode,
    running_server,
    sentence_transformers_encode,
)
from tests.fakes import FakeEmbedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_ARCD)
    parser.add_argument("--articles", type=int, default=10, help="the first N articles")
    parser.add_argument("--concurrency", default="1,2,4", help="comma-separated")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--fake", action="store_true", help="the fake model instead of the real")
    args = parser.parse_args()
    print(machine_load(), flush=True)

    with tempfile.TemporaryDirectory(prefix="sanad-embed-server-") as tmp:
        root = Path(tmp)
        corpus = root / "articles"
        count = len(copy_articles(args.dataset, args.articles, corpus))
        # chunks only: the sentence vectors would be the same texts' work for both sides
        base = dict(llm_backend="extractive", embed_batch_size=args.batch_size,
                    index_sentence_vectors=False)
        local = SanadService(Settings(data_dir=root / "local", **base),
                             embed_model=FakeEmbedder() if args.fake else None)
        if args.fake:
            encode, served_as = fake_encode, "fake-embedder"
        else:
            st_model = local.embed_model.model._model  # loaded here, outside any timing
            st_model.encode(["warm-up"] * 4)
            encode, served_as = sentence_transformers_encode(st_model), local.settings.embed_model
        reference = local.index([corpus], progress=False, log=lambda m: None)
        rows = [("local (in process)", reference.chunks_embedded, reference.seconds)]
        print(f"{count} articles, {reference.chunks_embedded} chunks; model {served_as}, "
              f"batch {args.batch_size}\n  local: {reference.seconds:.1f} s", flush=True)
        expected = load_index(root / "local")
        ids = sorted(expected.chunks)
        min_cosine = 1.0
        with running_server(ServerState(encode=encode, model=served_as)) as url:
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                data = root / f"remote-{concurrency}"
                settings = Settings(data_dir=data, embed_backend="openai", embed_url=url,
                                    embed_server_model=served_as,
                                    embed_concurrency=concurrency, **base)
                # The fake model counts words as tokens: it has no tokenizer folder.
                embed = connect_embedder(settings.remote_embed_config(),
                                         FakeEmbedder().count_tokens) if args.fake else None
                report = SanadService(settings, embed_model=embed).index(
                    [corpus], progress=False, log=lambda m: None)
                rows.append((f"server, {concurrency} concurrent", report.chunks_embedded,
                             report.seconds))
                got = load_index(data)
                assert got.chunks == expected.chunks, "the chunks differ from the local ones"
                cosines = np.sum(got.store.vectors(ids) * expected.store.vectors(ids), axis=1)
                min_cosine = min(min_cosine, float(cosines.min()))
                print(f"  {rows[-1][0]}: {report.seconds:.1f} s", flush=True)

    print(f"\n{'indexing':24} {'chunks':>6} {'seconds':>8} {'chunks/s':>9}")
    for name, chunks, seconds in rows:
        print(f"{name:24} {chunks:>6} {seconds:8.1f} {chunks / seconds:9.2f}")
    print(f"same chunks as local in every run; lowest cosine to the local vectors {min_cosine:.5f}")
    print(f"after: {machine_load()}")


if __name__ == "__main__":
    main()
