"""Memory: where one serving process's resident memory goes, stage by stage.

Runs the serving scenario in one process, as `sanad serve` does: the imports (torch,
llama_cpp, Gradio, Sanad), the web app with its chat UI, the embedding model and its float32
query twin, the seed index, the local LLM (one row per llama.cpp context it opens), then an
English question over the Arabic seed (answer, then its translation), an Arabic question and
an Arabic follow-up (history given, so the follow-up is rewritten first). After each stage it
prints VmRSS (resident now), RssAnon (allocated), RssFile (mapped file pages: model files,
libraries) and VmHWM (peak resident, what the 3 GB budget is about), from /proc/self/status.

The seed index is built in a child process first, so that indexing's batches are not
charged to serving. Settings come from the environment like the server's
(SANAD_LLM_SIDE_CONTEXT, SANAD_LLM_EXTRA_BUFFERS, SANAD_THREADS, ...).

    python bench/memory.py [--threads 1] [--no-ui]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")
# An English question over the Arabic seed, an Arabic one, and its follow-up.
SCENARIO = (
    ("English question", "Who is expected to attend Friday's talks in Washington?", False),
    ("Arabic question", "أين ومتى يجتمع المسؤولون الأمريكيون والمكسيكيون لمناقشة الهجرة؟", False),
    ("Arabic follow-up", "وما الذي سيناقشونه هناك؟", True),
)


def memory_mb() -> dict[str, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in FIELDS:
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values


class Stages:
    def __init__(self):
        self.previous = memory_mb()
        print(f"{'stage':46} " + " ".join(f"{f + ' MB':>11}" for f in FIELDS)
              + f" {'+RSS MB':>9}")
        self.record("python", self.previous)

    def record(self, stage: str, now: dict[str, float] | None = None) -> None:
        now = now or memory_mb()
        grown = now["VmRSS"] - self.previous["VmRSS"]
        print(f"{stage:46} " + " ".join(f"{now[f]:11.0f}" for f in FIELDS) + f" {grown:+9.0f}",
              flush=True)
        self.previous = now


def kv_cache_mb(metadata: dict[str, str], n_ctx: int) -> float:
    """The KV cache llama.cpp allocates for n_ctx tokens (f16 keys and values), from the
    GGUF metadata llama_cpp reads."""

    def value(suffix: str) -> int:
        return int(next(v for k, v in metadata.items() if k.endswith(suffix)))

    layers, heads = value(".block_count"), value(".attention.head_count")
    kv_heads, width = value(".attention.head_count_kv"), value(".embedding_length")
    return layers * n_ctx * 2 * kv_heads * (width // heads) * 2 / 1024 ** 2


def build_index(data_dir: Path) -> None:
    env = {**os.environ, "SANAD_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-m", "app.cli", "index", "--quiet", str(ROOT / "seeds")],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def run(data_dir: Path, threads: int | None, ui: bool) -> None:
    stages = Stages()
    import torch  # noqa: F401
    stages.record("import torch")
    import llama_cpp  # noqa: F401
    stages.record("import llama_cpp")
    if ui:
        import gradio  # noqa: F401
        stages.record("import gradio")
    import app.llm
    from app.service import AnswerResult, SanadService, Token, Turn
    from app.settings import Settings
    from app.web.server import create_app
    stages.record("import Sanad (llama-index, FastAPI)")

    overrides = {"data_dir": data_dir, "llm_backend": "local"}
    if threads:
        overrides["threads"] = threads
    settings = Settings(**overrides)
    service = SanadService(settings)
    create_app(settings, service, ui=ui, warm_up=False)
    stages.record("web app" + (" with the Gradio chat" if ui else ""))

    embedder = service.embed_model
    twin = " + float32 query twin" if embedder.has_query_twin else " (no query twin)"
    stages.record(f"embedding model ({settings.embed_dtype}{twin})")
    service.searcher()
    stages.record("seed index loaded")

    make_local = app.llm._make_local
    contexts = []
    repacked = app.llm.extra_buffers_wanted(settings.llm_extra_buffers, app.llm.cpu_flags())
    weights = "repacked" if repacked else "mapped"

    def make_and_record(s):  # one row per llama.cpp context the backend opens
        llm = make_local(s)
        contexts.append(llm)
        stages.record(f"llama.cpp context {len(contexts)} (weights {weights} + KV)")
        return llm

    app.llm._make_local = make_and_record
    try:
        backend = service.backend
    finally:
        app.llm._make_local = make_local
    path = str(backend.llm.model_path)
    kv = kv_cache_mb(backend.llm._model.metadata, settings.llm_context)
    print(f"  (of which the KV cache for n_ctx={settings.llm_context}: {kv:.0f} MB per context; "
          f"model file {Path(path).stat().st_size / 1024 ** 2:.0f} MB)")

    history: list[Turn] = []
    for label, question, follow_up in SCENARIO:
        started, first_token, result, translating = time.perf_counter(), None, None, False
        for item in service.answer_stream(question, history if follow_up else None):
            if isinstance(item, Token) and first_token is None:
                first_token = time.perf_counter() - started
            if isinstance(item, Token) and item.part == "translation" and not translating:
                translating = True
                stages.record(f"{label}: answer")
            if isinstance(item, AnswerResult):
                result = item
        assert result is not None
        stages.record(f"{label}: " + ("translation" if translating else "answer"))
        print(f"  {result.mode}; first token {1000 * (first_token or 0):.0f} ms, "
              f"total {result.timings.get('total_ms', 0):.0f} ms", flush=True)
        history = [Turn(question=question, answer=result.answer)]
    peak = memory_mb()["VmHWM"]
    print(f"peak resident (VmHWM): {peak / 1024:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the models")
    parser.add_argument("--no-ui", dest="ui", action="store_false", help="without Gradio")
    parser.add_argument("--data-dir", type=Path, help="an indexed data folder (else the seeds "
                        "are indexed into a temporary one)")
    args = parser.parse_args()
    one, five, _ = os.getloadavg()
    print(f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores")
    if args.data_dir:
        run(args.data_dir, args.threads, args.ui)
        return
    with tempfile.TemporaryDirectory(prefix="sanad-memory-") as tmp:
        build_index(Path(tmp) / "data")
        run(Path(tmp) / "data", args.threads, args.ui)


if __name__ == "__main__":
    main()
