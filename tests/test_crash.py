"""kill -9 during indexing: the previous index always loads and a rerun completes."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.pipeline import IndexConfig, index_paths
from index.storage import load_index
from tests.conftest import ROOT, release_milvus_lite, used_by_generations
from tests.fakes import FakeEmbedder

pytestmark = pytest.mark.slow  # tens of indexing subprocesses killed and rerun

SENTENCES = ["The river rises in spring.", "Prices fell again this week.", "ارتفع منسوب النهر.",
             "The council met on Friday.", "انخفضت الأسعار هذا الأسبوع.", "Trains were late."]


def write_corpus(folder: Path, version: int) -> None:
    folder.mkdir(exist_ok=True)
    rng = random.Random(version)
    for i in range(40):
        paragraphs = [" ".join(rng.choice(SENTENCES) for _ in range(6)) for _ in range(4)]
        (folder / f"doc{i:02d}.txt").write_text(f"Doc {i} v{version}\n\n" + "\n\n".join(paragraphs))


def check_consistent(data: Path, clean: bool = False) -> int:
    index = load_index(data)
    ids = [c for c in index.chunks]
    assert len(ids) == len(set(ids)) == len(index.store) == index.manifest.chunk_count
    assert set(index.store.ids()) == set(ids)
    assert index.store.check(ids) is None  # Milvus: every chunk has its vector
    for chunk in index.chunks.values():
        assert index.articles[chunk.article_id].text[chunk.start:chunk.end] == chunk.text
    if clean and index.store.kind == "milvus":  # no leftovers of the killed runs
        assert set(index.store._all_ids(index.store.collection)) == used_by_generations(data)
    return len(ids)


def reference_count(corpus: Path, tmp: Path) -> int:
    return index_paths([corpus], IndexConfig(data_dir=tmp), FakeEmbedder(), progress=False,
                       log=lambda m: None).chunks_total


@pytest.mark.parametrize("store_kind,trials", [("faiss", 10), ("milvus", 6)])
def test_kill_9_during_reindex(tmp_path: Path, store_kind: str, trials: int):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    write_corpus(corpus, 0)
    index_paths([corpus], IndexConfig(data_dir=data, store=store_kind), FakeEmbedder(),
                progress=False, log=lambda m: None)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(42)
    killed_mid_run = 0
    for trial in range(1, trials + 1):
        before = check_consistent(data)
        release_milvus_lite(tmp_path)  # Milvus Lite: one process per file
        write_corpus(corpus, trial)  # every file changes: a full re-embed and rewrite
        proc = subprocess.Popen([sys.executable, "-m", "tests.crash_indexer", str(corpus),
                                 str(data), store_kind], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # "embedding N chunks": the index is loaded, work begins
        time.sleep(rng.uniform(0.0, 3.0))  # embedding takes ~2 s, then insert and write
        if proc.poll() is None:
            killed_mid_run += 1
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        after = check_consistent(data)  # old or new generation, never a broken one
        assert after in (before, reference_count(corpus, tmp_path / f"ref{trial}"))
        rerun = index_paths([corpus], IndexConfig(data_dir=data, store=store_kind),
                            FakeEmbedder(), progress=False, log=lambda m: None)
        assert rerun.chunks_total == check_consistent(data, clean=True)
        assert rerun.chunks_total == reference_count(corpus, tmp_path / f"ref{trial}b")
    assert killed_mid_run >= trials // 2  # the kills really landed while indexing ran
    release_milvus_lite(tmp_path)
