"""The answer queue seen from the browser: with the one answer slot busy, a second and third
visitor see their place in the line (the Gradio chat and the widget), then get their answers.

Everything is real (uvicorn, the runner's queue, Gradio's stream, /api/chat's SSE, Chromium,
the embedding model and the extractive backend) except the gate in front of each answer,
which keeps the slot busy for as long as the test needs instead of a slow LLM (slow).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from tests.web_helpers import HostPages, SanadServer, host_page, watched_page

pytestmark = pytest.mark.slow
MEXICO_EN = "What did Mexico request?"
MEXICO_AR = "ماذا طلبت المكسيك؟"
REQUEST_SENTENCE = "20 مليار دولار"  # what Mexico asked for, in the seed article
NEXT = "Waiting: you are next…"
ONE_AHEAD = "Waiting for a turn: 1 ahead of you…"
HOLD_AT_MOST_S = 60.0  # a gate left shut by a failing test lets its answer go after this
SHOWN_WITHIN_MS = 30_000


class AnswerGate:
    """Holds each answer at its start, in its worker, until the test lets it through: with
    one answer slot, the held answer keeps the slot busy while later questions queue."""

    def __init__(self) -> None:
        self._state = threading.Condition()
        self.arrived = 0  # answers that reached the gate (each one held the slot)
        self._passes = 0
        self._open = False

    def wrap(self, answer_stream: Callable[..., Iterator]) -> Callable[..., Iterator]:
        def gated(question, history=None, k=None):
            with self._state:
                self.arrived += 1
                self._state.notify_all()
                let_through = self._state.wait_for(lambda: self._open or self._passes > 0,
                                                   HOLD_AT_MOST_S)
                if let_through and not self._open:
                    self._passes -= 1
            yield from answer_stream(question, history, k)

        return gated

    def wait_arrived(self, count: int) -> None:
        with self._state:
            assert self._state.wait_for(lambda: self.arrived >= count, SHOWN_WITHIN_MS / 1000), \
                f"{count} answer(s) should have started, {self.arrived} did"

    def let_one_through(self) -> None:
        with self._state:
            self._passes += 1
            self._state.notify_all()

    def open(self) -> None:
        with self._state:
            self._open = True
            self._state.notify_all()


@pytest.fixture(scope="module")
def sites(seeded_service):
    """A Sanad server answering one question at a time, and a site that embeds its widget."""
    site = HostPages()
    sanad = SanadServer(seeded_service, concurrent_answers=1, queue_deadline_s=120,
                        rate_limit_per_minute=0, cors_origins=[site.origin])
    with site, sanad:
        site.pages["/"] = host_page(sanad.url)
        sanad.app.state.sanad.warm_up()  # the index is loaded before any answer is held
        yield site, sanad


@pytest.fixture
def gate(sites, monkeypatch):
    _, sanad = sites
    service = sanad.app.state.sanad.service
    answer_gate = AnswerGate()
    monkeypatch.setattr(service, "answer_stream", answer_gate.wrap(service.answer_stream))
    yield answer_gate
    answer_gate.open()  # nothing stays held after the test


def chat_page(pages: ExitStack, browser, url: str):
    page = pages.enter_context(watched_page(browser, 1200, 900))
    page.goto(url)
    page.locator("#sanad-question textarea").wait_for()
    return page


def ask_chat(page, question: str) -> None:
    page.locator("#sanad-question textarea").fill(question)
    page.locator("#sanad-ask").click()


def chat_waiting(page):
    return page.locator("#sanad-conversation .sanad-streaming .sanad-wait")


def expect_chat_answer(page) -> None:
    """The verified answer, citing the passage with Mexico's request, and no queue text."""
    answer = page.locator("#sanad-conversation .sanad-a:not(.sanad-streaming)")
    expect(answer.locator("button.sanad-cite").first).to_be_visible(timeout=SHOWN_WITHIN_MS)
    expect(page.locator("#sanad-conversation .sanad-evidence q").first).to_contain_text(
        REQUEST_SENTENCE)
    assert page.locator("#sanad-conversation .sanad-wait").count() == 0
    assert page.locator("#sanad-conversation .sanad-error").count() == 0
    assert page.dialogs == []


def test_chat_shows_each_waiting_visitor_its_place_then_answers(sites, gate, browser):
    _, sanad = sites
    runner = sanad.app.state.sanad.runner
    with ExitStack() as pages:
        first, second, third = (chat_page(pages, browser, sanad.url) for _ in range(3))
        ask_chat(first, MEXICO_EN)
        gate.wait_arrived(1)  # the first answer holds the only slot
        expect(chat_waiting(first)).to_have_text("Searching the articles…")  # not queued
        ask_chat(second, MEXICO_AR)
        expect(chat_waiting(second)).to_have_text(NEXT, timeout=SHOWN_WITHIN_MS)
        ask_chat(third, MEXICO_EN)
        expect(chat_waiting(third)).to_have_text(ONE_AHEAD, timeout=SHOWN_WITHIN_MS)
        assert runner.admitted == 3
        expect(chat_waiting(second)).to_have_text(NEXT)  # still waiting, still next

        gate.let_one_through()
        expect_chat_answer(first)
        gate.wait_arrived(2)  # the second answer has the slot now
        expect(chat_waiting(third)).to_have_text(NEXT, timeout=SHOWN_WITHIN_MS)  # moved up

        gate.open()
        expect_chat_answer(second)
        expect_chat_answer(third)
    assert runner.admitted == 0


def widget_page(pages: ExitStack, browser, site: HostPages):
    page = pages.enter_context(watched_page(browser, 1200, 800))
    page.goto(f"{site.origin}/")
    page.locator("sanad-chat .launcher").click()
    return page


def ask_widget(page, question: str) -> None:
    box = page.locator("sanad-chat textarea")
    box.fill(question)
    box.press("Enter")


def widget_waiting(page):
    return page.locator("sanad-chat .msg.bot .waiting")


def expect_widget_answer(page) -> None:
    sources = page.locator("sanad-chat .msg.bot .sources li")
    expect(sources.first).to_be_visible(timeout=SHOWN_WITHIN_MS)
    expect(sources.first.locator(".quote")).to_contain_text(REQUEST_SENTENCE)
    assert widget_waiting(page).count() == 0
    assert page.locator("sanad-chat .msg.error").count() == 0
    assert page.dialogs == []


def test_widget_shows_each_waiting_visitor_its_place_then_answers(sites, gate, browser):
    site, sanad = sites
    with ExitStack() as pages:
        first, second, third = (widget_page(pages, browser, site) for _ in range(3))
        ask_widget(first, MEXICO_AR)
        gate.wait_arrived(1)
        ask_widget(second, MEXICO_EN)
        expect(widget_waiting(second)).to_have_text(NEXT, timeout=SHOWN_WITHIN_MS)
        ask_widget(third, MEXICO_AR)
        expect(widget_waiting(third)).to_have_text(ONE_AHEAD, timeout=SHOWN_WITHIN_MS)
        assert widget_waiting(first).count() == 0  # the one being answered is not told to wait

        gate.let_one_through()
        expect_widget_answer(first)
        gate.wait_arrived(2)
        expect(widget_waiting(third)).to_have_text(NEXT, timeout=SHOWN_WITHIN_MS)

        gate.open()
        expect_widget_answer(second)
        expect_widget_answer(third)
    assert sanad.app.state.sanad.runner.admitted == 0
