"""Bad input, each a clear error and nothing else lost: questions and files through the CLI
and through the chat's upload (a real server), over an index whose articles must all
still be there afterwards."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.service import SanadService
from app.settings import Settings
from index.storage import load_index
from tests.fakes import FakeEmbedder
from tests.web_helpers import SanadServer

MAX_FILE_MB = 0.001  # 1048 bytes, so that "too large" needs no large file
GOOD_ARTICLES = {
    "rivers.md": "# Rivers of Europe\n\nThe Danube flows through ten countries.\n",
    "bread.txt": "Baking bread\n\nBake the loaf for forty minutes.\n",
}
# (file name, content, what the CLI says, what the chat's upload says)
BAD_FILES = [
    pytest.param("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00IHDR", "binary", "binary", id="binary"),
    pytest.param("latin1.txt", "café au lait".encode("latin-1"), "not valid UTF-8",
                 "not valid UTF-8", id="invalid-utf8"),
    pytest.param("empty.txt", b"", "is empty", "is empty", id="zero-bytes"),
    pytest.param("huge.txt", b"word " * 1000, "over the limit", "maximum allowed size",
                 id="over-size-limit"),
    pytest.param("notes.pdf", b"%PDF-1.4 text", "unsupported file type", "Invalid file type",
                 id="unsupported-extension"),
]


def index_state(data: Path) -> tuple[int, dict[str, str]]:
    """(generation, article id -> sha256) of the current index."""
    index = load_index(data)
    return index.manifest.generation, {aid: a.sha256 for aid, a in index.articles.items()}


@pytest.fixture
def indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data folder of an index of GOOD_ARTICLES, which the CLI (with the fake model) uses."""
    corpus, data = tmp_path / "articles", tmp_path / "data"
    corpus.mkdir()
    for name, text in GOOD_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    SanadService(Settings(data_dir=data), embed_model=FakeEmbedder()).index(
        [corpus], progress=False, log=lambda m: None)
    monkeypatch.setenv("SANAD_DATA_DIR", str(data))
    monkeypatch.setenv("SANAD_MAX_FILE_MB", str(MAX_FILE_MB))
    monkeypatch.setenv("SANAD_LLM_BACKEND", "extractive")
    monkeypatch.setattr("app.service.load_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.setattr("app.service.describe", lambda *a, **k: FakeEmbedder().identity.as_dict())
    return data


@pytest.mark.parametrize("name,content,cli_says,upload_says", BAD_FILES)
def test_cli_index_names_a_bad_file_and_keeps_the_index(indexed, tmp_path, name, content,
                                                         cli_says, upload_says):
    before = index_state(indexed)
    bad = tmp_path / "incoming" / name
    bad.parent.mkdir()
    bad.write_bytes(content)
    done = CliRunner().invoke(cli, ["index", "-q", str(bad)])
    assert done.exit_code == 1
    assert name in done.output and cli_says in done.output
    assert "Traceback" not in done.output
    assert index_state(indexed) == before  # nothing rewritten, every article still there


def test_cli_paths_with_dotdot_name_the_same_files(indexed, tmp_path):
    before = index_state(indexed)
    runner = CliRunner()
    same = runner.invoke(cli, ["index", "-q", str(tmp_path / "articles" / ".." / "articles"
                                                   / "rivers.md")])
    assert same.exit_code == 0 and "0 chunks embedded" in same.output
    missing = runner.invoke(cli, ["index", "-q", str(tmp_path / "articles" / ".." / "gone.txt")])
    assert missing.exit_code == 1 and "gone.txt: no such file or folder" in missing.output
    assert index_state(indexed) == before


@pytest.mark.parametrize("command", [["ask"], ["ask", "--passages", "--json"]])
@pytest.mark.parametrize("question,says", [
    ("", "the question is empty"),
    (" \n\t ", "the question is empty"),
    ("x" * 100_000, "the question is 100000 characters long; the limit is 2000"),
    ("clear \x1b[2J screen?", "holds a control character (U+001B) at character 7"),
    ("Where \ud800 now?", "holds a lone surrogate (U+D800) at character 7"),
])
def test_cli_refuses_bad_questions_and_still_answers(indexed, command, question, says):
    runner = CliRunner()
    refused = runner.invoke(cli, [*command, question])
    assert refused.exit_code == 2 and says in refused.output
    assert runner.invoke(cli, [*command, "Where does the Danube flow?"]).exit_code == 0


# -- the chat's upload, on a real server --------------------------------------------------------
@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("uploads")
    corpus = root / "articles"
    corpus.mkdir()
    for name, text in GOOD_ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    service = SanadService(Settings(data_dir=root / "data", llm_backend="extractive",
                                    max_file_mb=MAX_FILE_MB, max_upload_mb=MAX_FILE_MB,
                                    rate_limit_per_minute=0),
                           embed_model=FakeEmbedder())
    service.index([corpus], progress=False, log=lambda m: None)
    with SanadServer(service) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield server, http, root


def upload_and_index(http: httpx.Client, name: str, content: bytes) -> str:
    """What the chat shows after uploading one file: Gradio's refusal of the upload, or the
    status line of the "Add articles" handler (through Gradio's HTTP API)."""
    uploaded = http.post("/gradio_api/upload", files=[("files", (name, content, "text/plain"))])
    if uploaded.status_code != 200:
        return f"{uploaded.status_code} {uploaded.text}"
    file_data = {"path": uploaded.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}
    # No admin token: the server listens on loopback only.
    call = http.post("/gradio_api/call/add_articles", json={"data": [[file_data], ""]})
    events = http.get(f"/gradio_api/call/add_articles/{call.json()['event_id']}").text
    assert events.startswith(("event: complete", "event: error")), events
    return events.split("data: ", 1)[1].strip()


def articles(http: httpx.Client) -> dict[str, str]:
    return {a["id"]: a["sha256"] for a in http.get("/api/articles").json()}


@pytest.mark.parametrize("name,content,cli_says,upload_says", BAD_FILES)
def test_upload_of_a_bad_file_is_refused_and_the_index_kept(chat_server, name, content,
                                                            cli_says, upload_says):
    _, http, root = chat_server
    before = articles(http)
    shown = upload_and_index(http, name, content)
    assert upload_says in shown
    # Gradio refuses a file too large or of another type itself, naming the limit or types
    assert name in shown or upload_says in ("maximum allowed size", "Invalid file type")
    assert articles(http) == before
    assert not (root / "data" / "uploads" / name).exists()  # refused before it was kept


def test_a_bad_upload_never_replaces_a_good_one_of_the_same_name(chat_server):
    _, http, root = chat_server
    assert "1 added" in upload_and_index(http, "harbour.txt", b"Harbour notes\n\nShips dock.\n")
    kept = articles(http)
    shown = upload_and_index(http, "harbour.txt", b"\x00\x01 binary now")
    assert "skipped harbour.txt: looks like a binary file" in shown
    assert articles(http) == kept
    assert (root / "data" / "uploads" / "harbour.txt").read_bytes().startswith(b"Harbour notes")


@pytest.mark.parametrize("name,kept", [
    ("../../escape.txt", True), ("sub/../../escape.txt", True), ("/etc/escape.txt", True),
    ("..\\..\\escape.txt", False),  # "....escape.txt" once Gradio drops the backslashes
])
def test_upload_names_cannot_leave_the_uploads_folder(chat_server, name, kept):
    _, http, root = chat_server
    before = articles(http)
    shown = upload_and_index(http, name, b"Escape notes\n\nThe tide was high at noon.\n")
    if kept:
        assert "1 added" in shown or "unchanged" in shown, shown
    else:
        assert "not a .txt, .md or .html file" in shown
    after = articles(http)
    assert ("escape" in after) == (kept or "escape" in before)
    assert {k: v for k, v in after.items() if k != "escape"} == \
        {k: v for k, v in before.items() if k != "escape"}
    written = [p.relative_to(root).as_posix() for p in root.rglob("*escape*")]
    assert written == (["data/uploads/escape.txt"] if "escape" in after else [])


def test_uploaded_html_loses_its_script_and_onerror_payloads(chat_server):
    _, http, _ = chat_server
    before = articles(http)
    page = (b"<html><body><p>Harbour log: the ferry left at dawn.</p>"
            b"<script>alert(1)</script><img src=x onerror=alert(2)></body></html>")
    assert "1 added" in upload_and_index(http, "harbour-log.html", page)
    text = http.get("/api/articles/harbour-log").json()["text"]
    assert text == "Harbour log: the ferry left at dawn."  # nothing of the payloads is kept
    assert {k: v for k, v in articles(http).items() if k != "harbour-log"} == before
