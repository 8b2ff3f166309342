"""Articles that carry script payloads as text: chat, sources panel and widget show the
characters and run nothing (no dialog ever opens). Real model, real browser (slow)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.service import SanadService
from app.settings import Settings
from tests.web_helpers import SHOTS, HostPages, SanadServer, host_page, watched_page

pytestmark = pytest.mark.slow
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
TEMPLATE = "${alert(1)} {{constructor.constructor('alert(1)')()}}"  # template engines' syntax
LIGHTHOUSE_TXT = f"""Notes from the lighthouse

The lighthouse keeper painted the words {SCRIPT} on the wall of the lamp room.

Next to those words he painted {IMG} and {TEMPLATE} in red.

The keeper left the island in the spring of 1952 and never came back.
"""
LIGHTHOUSE_Q = "What words did the lighthouse keeper paint on the wall of the lamp room?"
# In HTML the payload is escaped markup, so its text is the literal tag.
MUSEUM_HTML = """<html><head><title>Museum note</title></head><body>
<p>Every morning the museum guard finds a note taped to the glass case.</p>
<p>The note says &lt;img src=x onerror=alert(1)&gt; in large letters.</p>
</body></html>"""
MUSEUM_Q = "What does the note say in large letters?"


@pytest.fixture(scope="module")
def sites(seeded_service, tmp_path_factory):
    """A Sanad server over an index holding the .txt payload article, and an allowed host."""
    folder = tmp_path_factory.mktemp("xss")
    (folder / "lighthouse.txt").write_text(LIGHTHOUSE_TXT, encoding="utf-8")
    (folder / "museum-note.html").write_text(MUSEUM_HTML, encoding="utf-8")
    service = SanadService(Settings(data_dir=folder / "data", llm_backend="extractive"),
                           embed_model=seeded_service.embed_model)
    service.index([folder / "lighthouse.txt"], progress=False, log=lambda m: None)
    host = HostPages()
    sanad = SanadServer(service, cors_origins=[host.origin], rate_limit_per_minute=0)
    with host, sanad:
        host.pages["/"] = host_page(sanad.url)
        yield sanad, host, folder


@pytest.fixture
def page(browser):
    with watched_page(browser, 1400, 1000) as watched:
        yield watched


def no_injected_elements(scope) -> None:
    assert scope.locator("script").count() == 0
    assert scope.locator("img").count() == 0


def ask_and_open_source(page, question: str):
    """Ask, wait for the verified answer, open its last evidence citation; returns the turn."""
    turns = page.locator("#sanad-conversation .sanad-turn")
    before = turns.count()
    page.locator("#sanad-question textarea").fill(question)
    page.locator("#sanad-ask").click()
    expect(turns).to_have_count(before + 1, timeout=30_000)
    turn = turns.last
    turn.locator(".sanad-a:not(.sanad-streaming) button.sanad-cite").first.wait_for(timeout=120_000)
    turn.locator(".sanad-evidence button.sanad-cite").last.click()
    expect(page.locator("#sanad-sources .sanad-source-head")).to_contain_text(
        turn.locator(".sanad-evidence .sanad-where").last.inner_text().split(",")[0].strip("— "))
    return turn


def test_chat_and_sources_panel_show_payloads_as_text(sites, page):
    sanad, _, folder = sites
    page.goto(sanad.url)
    page.locator("#sanad-question textarea").wait_for()

    # The .html article goes in through the chat's upload, indexed incrementally.
    page.get_by_text("Add articles").click()
    page.locator("#sanad-upload input[type=file]").set_input_files(str(folder / "museum-note.html"))
    status = page.locator("#sanad-index-status textarea")
    expect(status).to_have_value(re.compile(r"^1 added, 0 updated"), timeout=120_000)

    turn = ask_and_open_source(page, LIGHTHOUSE_Q)
    conversation = page.locator("#sanad-conversation")
    assert SCRIPT in turn.locator(".sanad-a").inner_text()
    sources = page.locator("#sanad-sources")
    article_text = sources.locator(".sanad-article").inner_text()
    for payload in [SCRIPT, IMG, TEMPLATE]:
        assert payload in article_text
    no_injected_elements(conversation)
    no_injected_elements(sources)

    # A new conversation: without an LLM, a follow-up is condensed with the previous question.
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#sanad-conversation .sanad-turn")).to_have_count(0)
    turn = ask_and_open_source(page, MUSEUM_Q)
    assert IMG in turn.locator(".sanad-a").inner_text()
    assert IMG in sources.locator("mark").inner_text()
    no_injected_elements(conversation)
    no_injected_elements(sources)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "xss-chat-sources.png"), full_page=True)
    page.wait_for_timeout(500)  # an <img onerror> would have fired by now
    assert page.dialogs == []


def test_widget_shows_payloads_as_text(sites, page):
    _, host, _ = sites
    page.goto(f"{host.origin}/")
    page.locator("sanad-chat .launcher").click()
    box = page.locator("sanad-chat textarea")
    box.fill(LIGHTHOUSE_Q)
    box.press("Enter")
    bot = page.locator("sanad-chat .msg.bot").last
    expect(bot.locator(".sources li").first).to_be_visible(timeout=120_000)
    assert SCRIPT in bot.locator(".answer").inner_text()
    assert any(IMG in q or SCRIPT in q for q in bot.locator(".quote").all_inner_texts())
    shadow_elements = page.evaluate("""() => [...document.querySelector('sanad-chat')
        .shadowRoot.querySelectorAll('script, img, iframe')].length""")
    assert shadow_elements == 0
    page.wait_for_timeout(500)
    assert page.dialogs == []
