"""The chat in Debian's Chromium over the real local model (slow): an English question over
the Arabic seed article gets the Arabic span with its citation and, beside it, an English
rendering that passed its checks; the rendering's citation highlights the Arabic evidence."""

from __future__ import annotations

import re

import pytest

from app import prompts
from app.service import SanadService
from app.settings import Settings
from tests.conftest import ROOT
from tests.web_helpers import SanadServer, ask_in_chat, chat_page

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp", reason="make test installs the local extra")

ARABIC = re.compile(r"[\u0600-\u06FF]")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("local-web") / "data",
                        llm_backend="local")
    service = SanadService(settings)
    service.index([ROOT / "seeds"], progress=False, log=lambda m: None)
    with SanadServer(service, rate_limit_per_minute=0) as running:
        yield running


@pytest.fixture
def page(browser, server):
    with chat_page(browser, server) as opened:
        yield opened


def test_english_question_gets_a_checked_english_rendering_of_the_arabic_span(page):
    # seed-005: a short span whose rendering every local run has shown. "What did Mexico
    # request?" depends on the model's span: on some machines it holds the Venezuela
    # sanctions too, and no rendering of that longer span passes the checks (issue 14).
    ask_in_chat(page, "Where and when are US and Mexican officials meeting to discuss "
                      "migration?")
    turn = page.locator("#sanad-conversation .sanad-turn").last
    span = turn.locator(".sanad-a").inner_text()
    assert ARABIC.search(span) and re.search(r"\[\d\]", span)
    rendering = turn.locator(".sanad-translation")
    english = rendering.inner_text()
    assert re.search(r"[A-Za-z]{3}", english) and not ARABIC.search(english), english
    assert re.search(r"\[\d\]", english)
    label = turn.locator(".sanad-mt-label").inner_text()
    assert label == prompts.message("rendering_label", "en")  # nothing withheld
    # The rendering's citation opens the Arabic evidence it was rendered from.
    rendering.locator("button.sanad-cite").first.click()
    mark = page.locator("#sanad-sources .sanad-article mark")
    mark.wait_for(timeout=30_000)
    assert "واشنطن" in mark.inner_text()
