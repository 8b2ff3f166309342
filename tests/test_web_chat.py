"""The Gradio chat on a real server: gradio_client, and Debian's Chromium via Playwright (slow)."""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client
from playwright.sync_api import expect

from tests.web_helpers import SHOTS, SanadServer, ask_in_chat, chat_page, open_first_citation

pytestmark = pytest.mark.slow
MEXICO_EN = "What did Mexico request?"
MEXICO_AR = "ماذا طلبت المكسيك؟"
REQUEST_SENTENCE = "20 مليار دولار"  # what Mexico asked for, in the seed article


@pytest.fixture(scope="module")
def server(seeded_service):
    with SanadServer(seeded_service, rate_limit_per_minute=0) as running:
        yield running


@pytest.fixture
def page(browser, server):
    with chat_page(browser, server) as opened:
        yield opened


def test_gradio_client_asks_through_the_named_endpoint(server):
    client = Client(server.url, verbose=False)
    result = client.predict(MEXICO_EN, 5, api_name="/ask")
    assert "[1]" in result["answer"] and not result["refused"]
    assert any(REQUEST_SENTENCE in p["text"] for p in result["passages"])


def test_gradio_client_chat_endpoint_streams(server):
    client = Client(server.url, verbose=False)
    job = client.submit(MEXICO_AR, 5, api_name="/chat")
    job.result(timeout=120)
    conversations = [out[0] if isinstance(out, (list, tuple)) else out for out in job.outputs()]
    assert any("Searching the articles" in html for html in conversations)  # before the answer
    assert "sanad-cite" in conversations[-1] and REQUEST_SENTENCE in conversations[-1]


def test_the_chat_endpoints_refuse_other_sites(server):
    refused = httpx.post(f"{server.url}/gradio_api/queue/join", json={},
                         headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_origin"


def test_english_question_streams_an_answer_with_a_clickable_citation(page):
    ask_in_chat(page, MEXICO_EN)
    answer = page.locator("#sanad-conversation .sanad-a").last
    assert "[1]" in answer.inner_text()
    # The English intro reads left to right, the Arabic quote after it right to left.
    lines = answer.locator(":scope > div")
    assert lines.first.evaluate("e => e.matches(':dir(ltr)')")
    assert lines.last.evaluate("e => e.matches(':dir(rtl)')")
    marked = open_first_citation(page)
    assert REQUEST_SENTENCE in marked
    assert page.locator("#sanad-sources .sanad-article").inner_text().count(marked) >= 1
    # The mark sits inside the whole article, not alone.
    assert len(page.locator("#sanad-sources .sanad-article").inner_text()) > 3 * len(marked)
    evidence = page.locator("#sanad-conversation .sanad-evidence q").first.inner_text()
    assert REQUEST_SENTENCE in evidence  # the original-language evidence under the answer
    assert page.outside_requests == [] and page.dialogs == []


def test_arabic_question_answer_is_right_to_left_with_highlighted_source(page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ask_in_chat(page, MEXICO_AR)
    answer = page.locator("#sanad-conversation .sanad-a").last
    assert REQUEST_SENTENCE in answer.inner_text()
    assert answer.locator("div").last.evaluate("e => e.matches(':dir(rtl)')")
    evidence = page.locator("#sanad-conversation .sanad-evidence li").first
    assert evidence.evaluate("e => e.matches(':dir(rtl)')")
    marked = open_first_citation(page)
    assert REQUEST_SENTENCE in marked
    article = page.locator("#sanad-sources .sanad-article")
    assert article.evaluate("e => e.matches(':dir(rtl)')")
    # The highlighted passage is scrolled into view inside the article box.
    assert page.locator("#sanad-sources mark").evaluate("""m => {
        const box = m.closest('.sanad-article').getBoundingClientRect();
        const r = m.getBoundingClientRect();
        return r.bottom > box.top && r.top < box.bottom;
    }""")
    page.screenshot(path=str(SHOTS / "chat-arabic-sources.png"), full_page=True)
    assert page.dialogs == []


def test_examples_and_advanced_settings_are_there(page):
    for example in [MEXICO_EN, MEXICO_AR, "Who attended the talks?"]:
        expect(page.get_by_text(example, exact=True).first).to_be_visible()
    page.get_by_text(MEXICO_AR, exact=True).first.click()  # an example fills the question box
    expect(page.locator("#sanad-question textarea")).to_have_value(MEXICO_AR)
    page.get_by_text("Advanced").click()
    expect(page.get_by_label("Passages to retrieve (top-k)").first).to_be_visible()
    # The backend is the server's setting: the chat offers no way to switch it.
    assert page.get_by_label("Answer backend").count() == 0
