import json
import shutil
import socket
import sys
from pathlib import Path

import pytest

from index.offline import stay_offline
from index.storage import store_folders
from tests.fakes import FakeEmbedder

stay_offline()

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "us-mexico-migration-talks.txt"
DATA = Path(__file__).resolve().parent / "data"


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def used_by_generations(data: Path) -> set[str]:
    """Chunk ids of every generation on disk (what a Milvus collection may keep)."""
    return {json.loads(line)["id"] for folder in store_folders(data)
            for line in (folder.parent / "chunks.jsonl").read_text().splitlines()}


def release_milvus_lite(folder: Path) -> None:
    """Stop this process's Milvus Lite servers for `.db` files under `folder`.

    Milvus Lite runs in the process that opened the file and holds a lock on it until
    stopped; tests stop it to free threads, or to let a child process open the file.
    """
    manager = sys.modules.get("milvus_lite.server_manager")
    if manager is not None:
        for db in Path(folder).rglob("*.db"):
            manager.server_manager_instance.release_server(str(db))


@pytest.fixture(params=["faiss", pytest.param("milvus", marks=pytest.mark.slow)])
def store_kind(request, tmp_path: Path):
    """Each store in turn; Milvus is Milvus Lite in a file under tmp_path (data/milvus.db),
    started for each test: slow."""
    yield request.param
    release_milvus_lite(tmp_path)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder with the seed article and two small English articles."""
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    (folder / "rivers.md").write_text(
        "# Rivers of Europe\n\nThe Danube flows through ten countries. It ends in the Black Sea.\n\n"
        "The Rhine starts in the Swiss Alps! Does it reach the North Sea? Yes, near Rotterdam.\n",
        encoding="utf-8")
    (folder / "bread.html").write_text(
        "<html><head><title>Baking bread</title><style>p{color:red}</style></head><body>"
        "<h1>Baking bread</h1><p>Flour, water and salt make dough.<script>alert(1)</script></p>"
        "<p>Bake the loaf for forty minutes.</p></body></html>", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def seeded_service(tmp_path_factory):
    """The real embedding model and a real index of seeds/, built once for the web tests."""
    from app.service import SanadService
    from app.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("web") / "data", llm_backend="extractive")
    service = SanadService(settings)
    report = service.index([ROOT / "seeds"], progress=False, log=lambda m: None)
    assert report.chunks_embedded > 0
    return service


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright (never a downloaded browser build)."""
    from playwright.sync_api import sync_playwright

    from tests.web_helpers import BROWSER_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=BROWSER_ARGS)
        yield chromium
        chromium.close()
