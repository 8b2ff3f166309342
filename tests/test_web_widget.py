"""The widget embedded in pages of other sites (other origins), in Chromium (slow)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web_helpers import SHOTS, HostPages, SanadServer, host_page, watched_page

pytestmark = pytest.mark.slow
KEY = "pk-widget-test"
REQUEST_SENTENCE = "20 مليار دولار"


@pytest.fixture(scope="module")
def sites(seeded_service):
    """An allowed host site, a refused one, and the Sanad server that allows only the first."""
    allowed, refused = HostPages(), HostPages()
    sanad = SanadServer(seeded_service, ui=False, cors_origins=[allowed.origin], widget_key=KEY,
                        rate_limit_per_minute=0)
    with allowed, refused, sanad:
        iframe = f'<iframe src="{sanad.url}/embed?key={KEY}&title=Archive" ' \
                 'style="width:420px;height:560px;border:1px solid #ccc"></iframe>'
        for site in (allowed, refused):
            site.pages["/"] = host_page(sanad.url, key=KEY)
            site.pages["/wrong-key"] = host_page(sanad.url, key="not-the-key")
            site.pages["/iframe"] = f"<!doctype html><html><body>{iframe}</body></html>"
        yield allowed, refused, sanad


@pytest.fixture
def page(browser):
    with watched_page(browser, 1200, 800) as watched:
        yield watched


def ask_widget(scope, question: str) -> None:
    """Open the widget (when it has a launcher) and send a question."""
    launcher = scope.locator("sanad-chat .launcher")
    if launcher.is_visible():
        launcher.click()
    box = scope.locator("sanad-chat textarea")
    box.fill(question)
    box.press("Enter")


def test_widget_on_an_allowed_site_streams_an_answer_with_citations(sites, page):
    allowed, _, _ = sites
    page.goto(f"{allowed.origin}/")
    launcher = page.locator("sanad-chat .launcher")
    expect(launcher).to_contain_text("Ask the archive")
    # The host page's `* { color: red; font-family: serif }` and lime buttons stay outside.
    style = launcher.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color,"
                              " getComputedStyle(e).fontFamily]")
    assert style[0] != "rgb(0, 255, 0)" and style[1] != "rgb(255, 0, 0)" and style[2] != "serif"
    assert page.evaluate("document.querySelector('sanad-chat').shadowRoot !== null")

    ask_widget(page, "ماذا طلبت المكسيك؟")
    sources = page.locator("sanad-chat .msg.bot .sources li")
    expect(sources.first).to_be_visible(timeout=120_000)
    answer = page.locator("sanad-chat .msg.bot .answer").last
    expect(answer).to_contain_text(REQUEST_SENTENCE)
    assert answer.locator("div").last.evaluate("e => e.matches(':dir(rtl)')")
    expect(sources.first.locator(".quote")).to_contain_text(REQUEST_SENTENCE)
    answer.locator(".cite").first.click()
    expect(sources.first).to_have_class("active")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "widget-host-page.png"))

    ask_widget(page, "What did Mexico request?")  # a second question in the same conversation
    expect(page.locator("sanad-chat .msg.bot .answer")).to_have_count(2, timeout=120_000)
    expect(page.locator("sanad-chat .msg.bot").last.locator(".sources li").first).to_be_visible(
        timeout=120_000)
    assert page.dialogs == []


def test_widget_on_a_site_that_is_not_allowed_shows_an_error_and_no_answer(sites, page):
    _, refused, _ = sites
    page.goto(f"{refused.origin}/")
    ask_widget(page, "What did Mexico request?")
    error = page.locator("sanad-chat .msg.error")
    expect(error).to_be_visible(timeout=60_000)
    expect(error).to_contain_text("not allowed")
    assert page.locator("sanad-chat .msg.bot").count() == 0
    assert page.locator("sanad-chat .sources").count() == 0


def test_widget_with_a_wrong_key_shows_the_servers_error(sites, page):
    allowed, _, _ = sites
    page.goto(f"{allowed.origin}/wrong-key")
    ask_widget(page, "What did Mexico request?")
    expect(page.locator("sanad-chat .msg.error")).to_contain_text("X-Sanad-Key", timeout=60_000)
    assert page.locator("sanad-chat .msg.bot").count() == 0


def test_iframe_fallback_works_where_allowed_and_is_refused_elsewhere(sites, page):
    allowed, refused, _ = sites
    page.goto(f"{allowed.origin}/iframe")
    frame = page.frame_locator("iframe")
    expect(frame.locator("sanad-chat textarea")).to_be_visible(timeout=30_000)
    ask_widget(frame, "ماذا طلبت المكسيك؟")
    expect(frame.locator("sanad-chat .sources li").first).to_be_visible(timeout=120_000)
    expect(frame.locator("sanad-chat .answer").last).to_contain_text(REQUEST_SENTENCE)

    page.goto(f"{refused.origin}/iframe")
    page.wait_for_timeout(1500)
    # frame-ancestors: the browser does not render Sanad inside a site it does not allow.
    assert page.frame_locator("iframe").locator("sanad-chat").count() == 0
