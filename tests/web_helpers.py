"""Real servers for the web tests: uvicorn with the Sanad app, and tiny host-page servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import uvicorn

from app.service import SanadService
from app.web.guard import Listen
from app.web.server import create_app
from tests.conftest import free_port

SHOTS = Path("/tmp/sanad-shots")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


class SanadServer:
    """The Sanad web app on uvicorn, on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, service: SanadService, ui: bool = True, listen_on: str = "127.0.0.1",
                 **web_settings):
        settings = service.settings.model_copy(update=web_settings)
        self.port = free_port()
        # `listen_on` is what the app is told it serves on (its own origin and hosts);
        # the test server itself always listens on 127.0.0.1.
        self.app = create_app(settings, service, ui=ui, warm_up=False,
                              listen=Listen(listen_on, self.port))
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> SanadServer:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Sanad test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


class HostPages:
    """Another site: serves fixed HTML pages from 127.0.0.1 on its own port (another origin)."""

    def __init__(self, pages: dict[str, str] | None = None):
        self.pages = dict(pages or {})
        pages_ref = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                body = pages_ref.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HostPages:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def host_page(sanad_url: str, key: str = "", title: str = "Ask the archive") -> str:
    """A host site's page with the README's embed snippet and CSS that must not leak in."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Host site</title>
<style>* {{ font-family: serif !important; color: red !important; }}
button {{ background: lime !important; }}</style></head>
<body><h1>A news site</h1><p>Some article the widget sits beside.</p>
<script src="{sanad_url}/widget.js" data-sanad-key="{key}" data-title="{title}"></script>
</body></html>"""


@contextmanager
def watched_page(browser, width: int, height: int) -> Iterator:
    """A fresh page that records (and dismisses) every dialog: an XSS payload that runs
    shows up in `page.dialogs`."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    try:
        yield page
    finally:
        context.close()


@contextmanager
def chat_page(browser, server: SanadServer) -> Iterator:
    """A watched page (dialogs recorded) on the server's chat, also recording requests to
    other hosts (`page.outside_requests`)."""
    with watched_page(browser, 1400, 1000) as page:
        page.outside_requests = []
        page.on("request", lambda request: None if request.url.startswith(server.url)
                or request.url.startswith("data:") else page.outside_requests.append(request.url))
        page.goto(server.url)
        page.locator("#sanad-question textarea").wait_for()
        yield page


def ask_in_chat(page, question: str) -> None:
    # Record whether the answer area was ever in its streaming state before the result.
    page.evaluate("""() => {
        window.sanadSawStreaming = false;
        const target = document.querySelector('#sanad-conversation');
        new MutationObserver(() => {
            if (target.querySelector('.sanad-streaming')) window.sanadSawStreaming = true;
        }).observe(target, {childList: true, subtree: true, characterData: true});
    }""")
    page.locator("#sanad-question textarea").fill(question)
    page.locator("#sanad-ask").click()
    page.locator("#sanad-conversation .sanad-a:not(.sanad-streaming) button.sanad-cite").first.wait_for(
        timeout=120_000)
    assert page.evaluate("window.sanadSawStreaming")


def open_first_citation(page) -> str:
    """Click the answer's first [n]; returns the highlighted text in the sources panel."""
    page.locator("#sanad-conversation .sanad-a button.sanad-cite").first.click()
    mark = page.locator("#sanad-sources .sanad-article mark")
    mark.wait_for(timeout=30_000)
    return mark.inner_text()
