"""Indexing throughput: the whole pipeline against raw `model.encode` of the same chunk texts.

Both sides embed the same chunks with the same loaded model, in the same process, in
alternating rounds; the figures are medians over the rounds. The pipeline side includes
reading, hashing, chunking, embedding through llama-index, FAISS insertion and the atomic
write of the index, without the sentence vectors evidence is ranked by; one more run with
them says what they add. Also prints peak RSS.

    python bench/ingest_throughput.py [--dataset DIR] [--articles 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.service import SanadService  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import DEFAULT_ARCD, machine_load, median  # noqa: E402
from index.storage import load_index  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_ARCD)
    parser.add_argument("--articles", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = sorted((args.dataset / "articles").glob("*.txt"))[: args.articles]
    if not files:
        sys.exit(f"no articles under {args.dataset}/articles; pass --dataset DIR")
    print(machine_load())
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for f in files:
            shutil.copy(f, corpus / f.name)
        settings = Settings(data_dir=Path(tmp) / "warm")
        service = SanadService(settings)
        model = service.embed_model
        service.index([corpus], progress=False, log=lambda m: None)  # warm-up, and the texts
        texts = [c.text for c in load_index(settings.data_dir).chunks.values()]
        st = model.model._model
        pipeline_s, raw_s = [], []
        for r in range(args.rounds):
            started = time.perf_counter()
            st.encode(texts, prompt_name="text", batch_size=settings.embed_batch_size,
                      normalize_embeddings=True)
            raw_s.append(time.perf_counter() - started)
            # the chunks alone, against encoding the same texts; sentences are timed below
            run = SanadService(Settings(data_dir=Path(tmp) / f"run{r}",
                                        index_sentence_vectors=False), embed_model=model)
            report = run.index([corpus], progress=False, log=lambda m: None)
            assert report.chunks_embedded == len(texts)
            pipeline_s.append(report.seconds)
        whole = SanadService(Settings(data_dir=Path(tmp) / "whole"), embed_model=model).index(
            [corpus], progress=False, log=lambda m: None)
        raw, pipe = median(raw_s), median(pipeline_s)
        n = len(texts)
        chars = sum(map(len, texts))
        print(f"{len(files)} articles, {n} chunks, {chars / n:.0f} chars per chunk on average")
        print(f"raw model.encode : {n / raw:6.2f} chunks/s (median of {args.rounds}: {raw:.1f} s)")
        print(f"whole pipeline   : {n / pipe:6.2f} chunks/s (median of {args.rounds}: {pipe:.1f} s)")
        print(f"ratio pipeline/raw: {raw / pipe:.3f} (goal >= 0.9)")
        print(f"with the {whole.sentences_embedded} sentences evidence is ranked by: "
              f"{whole.seconds:.1f} s ({whole.seconds / pipe:.2f}x the chunks alone)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
