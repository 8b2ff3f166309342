"""kill -9 during indexing: the previous index always loads and a rerun completes."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from index.pipeline import IndexConfig, index_paths
from index.storage import load_index
from tests.conftest import ROOT
from tests.fakes import FakeEmbedder

SENTENCES = ["The river rises in spring.", "Prices fell again this week.", "ارتفع منسوب النهر.",
             "The council met on Friday.", "انخفضت الأسعار هذا الأسبوع.", "Trains were late."]


def write_corpus(folder: Path, version: int) -> None:
    folder.mkdir(exist_ok=True)
    rng = random.Random(version)
    for i in range(40):
        paragraphs = [" ".join(rng.choice(SENTENCES) for _ in range(6)) for _ in range(4)]
        (folder / f"doc{i:02d}.txt").write_text(f"Doc {i} v{version}\n\n" + "\n\n".join(paragraphs))


def check_consistent(data: Path) -> int:
    index = load_index(data)
    ids = [c for c in index.chunks]
    assert len(ids) == len(set(ids)) == len(index.store) == index.manifest.chunk_count
    assert set(index.store.ids()) == set(ids)
    for chunk in index.chunks.values():
        assert index.articles[chunk.article_id].text[chunk.start:chunk.end] == chunk.text
    return len(ids)


def reference_count(corpus: Path, tmp: Path) -> int:
    return index_paths([corpus], IndexConfig(data_dir=tmp), FakeEmbedder(), progress=False,
                       log=lambda m: None).chunks_total


def test_kill_9_during_reindex_ten_times(tmp_path: Path):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    write_corpus(corpus, 0)
    index_paths([corpus], IndexConfig(data_dir=data), FakeEmbedder(), progress=False,
                log=lambda m: None)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(42)
    killed_mid_run = 0
    for trial in range(1, 11):
        before = check_consistent(data)
        write_corpus(corpus, trial)  # every file changes: a full re-embed and rewrite
        proc = subprocess.Popen([sys.executable, "-m", "tests.crash_indexer", str(corpus),
                                 str(data)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 4.0))
        if proc.poll() is None:
            killed_mid_run += 1
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        after = check_consistent(data)  # old or new generation, never a broken one
        assert after in (before, reference_count(corpus, tmp_path / f"ref{trial}"))
        rerun = index_paths([corpus], IndexConfig(data_dir=data), FakeEmbedder(),
                            progress=False, log=lambda m: None)
        assert rerun.chunks_total == check_consistent(data)
        assert rerun.chunks_total == reference_count(corpus, tmp_path / f"ref{trial}b")
    assert killed_mid_run >= 5  # the kills really landed while indexing ran
