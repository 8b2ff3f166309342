"""Peer: llama-index's default in-memory VectorStoreIndex vs Sanad on the same articles and
embedding model: ingest time and retrieval latency as ratios.

One EmbeddingGemma is loaded once (index/embedding.py: bf16, the model's own query and
document prompts, the same batch size) and both sides use that object, in one process, so
loading it is charged to neither; a few texts are embedded first to warm it up.
Peer: SimpleDirectoryReader + VectorStoreIndex.from_documents with llama-index's defaults
(SentenceSplitter: 1024 tokens, overlap 200; SimpleVectorStore in memory, nothing written).
Settings.embed_model is set to that model and Settings.llm to MockLLM, so no OpenAI default
can be reached. Sanad: SanadService.index (read, hash, chunk at 256 model tokens, embed,
FAISS, write the generation atomically and fsynced). Query latency: retrieval only, top-5,
the same ARCD questions about the articles used, one at a time; each side embeds the
question itself. Recall@5 (a retrieved chunk overlaps the gold passage) is printed as a
check that both retrieve sensibly, not as a quality comparison: the chunk sizes differ.

    python bench/peer.py [--dataset ../shared/datasets/arcd-dev] [--articles 20] [--questions 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llama_index.core import Settings as LlamaSettings  # noqa: E402
from llama_index.core import SimpleDirectoryReader, VectorStoreIndex  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402

from app.eval.metrics import percentile  # noqa: E402
from app.service import SanadService  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import DEFAULT_ARCD, arcd_questions, copy_articles, hit, machine_load  # noqa: E402
from index.sources import article_id_for  # noqa: E402

TOP_K = 5


@dataclass(frozen=True)
class Span:
    """A retrieved chunk as `bench.common.hit` sees it."""

    article_id: str
    start: int
    end: int


@dataclass
class Side:
    name: str
    ingest_s: float
    chunks: int
    latencies_ms: list[float]
    hits: list[bool]



def timed_retrieval(retrieve, questions: list[dict]) -> tuple[list[float], list[bool]]:
    """(latency of each question in ms, whether its top-k hit the gold passage)."""
    latencies, hits = [], []
    for q in questions:
        started = time.perf_counter()
        spans = retrieve(q["question"])
        latencies.append((time.perf_counter() - started) * 1000)
        hits.append(any(hit(span, q) for span in spans))
    return latencies, hits


def run_sanad(service: SanadService, corpus: Path, questions_of) -> tuple[Side, list[dict]]:
    report = service.index([corpus], progress=False, log=lambda m: None)
    questions = questions_of(service.searcher().data.articles)

    def retrieve(question: str) -> list[Span]:
        return [Span(p.article_id, p.start, p.end) for p in service.retrieve(question, TOP_K)]

    latencies, hits = timed_retrieval(retrieve, questions)
    return Side("sanad", report.seconds, report.chunks_total, latencies, hits), questions


def run_peer(model, corpus: Path, questions: list[dict]) -> Side:
    LlamaSettings.embed_model = model  # the default would be OpenAI
    LlamaSettings.llm = MockLLM()
    started = time.perf_counter()
    documents = SimpleDirectoryReader(str(corpus)).load_data()
    index = VectorStoreIndex.from_documents(documents, embed_model=model)
    ingest = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=TOP_K)

    def retrieve(question: str) -> list[Span]:
        return [Span(article_id_for(Path(n.node.metadata["file_name"])), n.node.start_char_idx,
                     n.node.end_char_idx) for n in retriever.retrieve(question)]

    latencies, hits = timed_retrieval(retrieve, questions)
    return Side("llama-index default", ingest, len(index.docstore.docs), latencies, hits)


def print_table(sides: list[Side], chars: int) -> None:
    header = (f"{'system':20} {'chunks':>6} {'ingest s':>8} {'chars/s':>8} {'query p50 ms':>12} "
              f"{'p95 ms':>7} {'recall@5':>8}")
    print(header)
    print("-" * len(header))
    for s in sides:
        print(f"{s.name:20} {s.chunks:>6} {s.ingest_s:8.1f} {chars / s.ingest_s:8.0f} "
              f"{percentile(s.latencies_ms, 50):12.1f} {percentile(s.latencies_ms, 95):7.1f} "
              f"{sum(s.hits) / len(s.hits):8.3f}")
    sanad, peer = sides
    print(f"ratios sanad/peer: ingest time {sanad.ingest_s / peer.ingest_s:.2f}, query p50 "
          f"{percentile(sanad.latencies_ms, 50) / percentile(peer.latencies_ms, 50):.2f} "
          "(below 1: Sanad is faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_ARCD)
    parser.add_argument("--articles", type=int, default=20, help="the first N articles")
    parser.add_argument("--questions", type=int, default=40, help="at most N questions")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the model")
    args = parser.parse_args()
    print(machine_load())
    with tempfile.TemporaryDirectory(prefix="sanad-peer-") as tmp:
        corpus = Path(tmp) / "articles"
        files = copy_articles(args.dataset, args.articles, corpus)
        chars = sum(len(f.read_text(encoding="utf-8")) for f in files)
        service = SanadService(Settings(data_dir=Path(tmp) / "data", threads=args.threads))
        model = service.embed_model.model
        model.get_text_embedding_batch([f.read_text(encoding="utf-8")[:500] for f in files[:4]])
        print(f"{len(files)} articles ({chars} characters) from {args.dataset}; "
              f"model {service.settings.embed_model} ({service.settings.embed_dtype}, batch "
              f"{service.settings.embed_batch_size}, {args.threads} thread(s))", flush=True)

        def questions_of(articles: dict) -> list[dict]:
            return arcd_questions(args.dataset, articles)[: args.questions]

        sanad, questions = run_sanad(service, corpus, questions_of)
        print(f"sanad done ({sanad.ingest_s:.0f} s ingest); {len(questions)} questions",
              flush=True)
        peer = run_peer(model, corpus, questions)
    print_table([sanad, peer], chars)
    print(f"after: {machine_load()}")


if __name__ == "__main__":
    main()
