"""The web layer's parts, fast: escaping, limits, conversations, the model runner, the API
over a fake embedder (no real model, no Gradio)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.service import SanadService, Turn
from app.settings import Settings
from app.web.conversations import ConversationStore
from app.web.guard import RateLimiter
from app.web.openai_compat import ChatMessageIn, question_and_history
from app.web.render import linked_text, render_conversation, render_source
from app.web.runner import Busy, ModelRunner, Queued
from app.web.server import create_app

PAYLOAD = '<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))'


def run_async(scenario) -> None:
    """asyncio.run in its own thread: Playwright's sync API (browser tests in the same
    session) keeps an event loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- rendering ------------------------------------------------------------------------------
def test_answer_text_is_escaped_and_only_real_citations_become_buttons():
    passages = [{"title": 'T "1" <b>'}, {"title": "T2"}]
    html = linked_text(f"{PAYLOAD} first [1], second [2], none [3] [0].", 4, passages)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x" in html
    assert html.count('class="sanad-cite"') == 2
    assert 'data-turn="4" data-n="1"' in html and 'data-n="2"' in html
    assert "none [3] [0]." in html  # out of range: left as text
    assert 'title="source 1: T &quot;1&quot; &lt;b&gt;"' in html


def test_a_waiting_question_shows_its_place_in_the_queue_until_words_come():
    def shown(**entry) -> str:
        return render_conversation([{"question": "q", "result": None, **entry}])

    assert "3 ahead of you" in shown(waiting=3)
    assert "you are next" in shown(waiting=0)
    assert "Searching the articles" in shown()
    assert "ahead of you" not in shown(waiting=3, streamed="The Rhine")


def test_conversation_renders_question_answer_translation_and_evidence_escaped():
    passage = {"n": 1, "article_id": "a", "title": "<i>t</i>", "paragraph": 2, "start": 0,
               "end": 5, "text": f"quote {PAYLOAD}", "score": 0.5}
    result = {"answer": f"Answer {PAYLOAD} [1].", "passages": [passage], "refused": False,
              "sentences": [{"text": "Answer", "citations": [1], "support": 1.0}],
              "evidence": [{"n": 1, "quote": passage["text"], "lang": "en"}],
              "translation": {"text": "ترجمة [1]", "label": "Machine <translation>", "lang": "ar"},
              "dropped": [], "removed_markers": 0, "notice": ""}
    html = render_conversation([{"question": f"Q {PAYLOAD}", "result": result}])
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert html.count('class="sanad-cite"') == 3  # answer, translation, evidence
    assert "Machine &lt;translation&gt;" in html and 'dir="auto"' in html
    streaming = render_conversation([{"question": "q", "streamed": PAYLOAD, "result": None}])
    assert "<script" not in streaming and "&lt;img" in streaming


def test_source_panel_marks_the_exact_span_inside_the_escaped_article():
    text = "مقدمة <b>قبل</b>.\n\nالجملة المقتبسة هنا.\n\n<script>alert(1)</script> بعد."
    start = text.index("الجملة")
    end = start + len("الجملة المقتبسة هنا.")
    passage = {"n": 2, "article_id": "a", "title": "عنوان", "paragraph": 2, "start": start,
               "end": end, "text": text[start:end], "score": 0.61}
    html = render_source(passage, text)
    assert '<mark class="sanad-mark">الجملة المقتبسة هنا.</mark>' in html
    assert "&lt;b&gt;قبل&lt;/b&gt;" in html and "&lt;script&gt;" in html
    assert "<script" not in html and "<b>" not in html
    assert 'class="sanad-article" dir="auto"' in html
    assert "has changed" in render_source(passage, "other text")
    assert "no longer in the index" in render_source(passage, None)


# -- limits -----------------------------------------------------------------------------------
def test_rate_limiter_counts_per_client_and_its_message_agrees_with_retry_after():
    limiter = RateLimiter.per_minute(2)
    assert [limiter.acquire("a"), limiter.acquire("a")] == [0, 0]
    wait = limiter.acquire("a")
    assert 1 <= wait <= 60 and limiter.acquire("b") == 0  # another client has its own count
    message, headers = limiter.refusal(wait)
    assert f"try again in {wait} s" in message and headers == {"Retry-After": str(wait)}
    assert "2 a minute" in message
    off = RateLimiter.per_minute(0)
    assert all(off.acquire("a") == 0 for _ in range(100))


def test_conversations_are_capped_in_number_age_and_length():
    clock = Clock()
    store = ConversationStore(max_count=2, max_age=60, max_turns=2, clock=clock)
    first = store.get_or_create(None)
    assert store.valid_id(first.id)
    for i in range(3):
        store.add_turn(first.id, Turn(f"q{i}", f"a{i}"))
    assert [t.question for t in store.history(first.id)] == ["q1", "q2"]
    assert store.get_or_create(first.id).id == first.id
    store.get_or_create(None)
    store.get_or_create(None)
    assert len(store) == 2 and store.history(first.id) == []  # the oldest went
    kept = store.get_or_create(None)
    clock.now += 61
    assert store.get_or_create(kept.id).id != kept.id  # expired: a new conversation
    assert store.get_or_create("made-up-by-the-client-0000").id != "made-up-by-the-client-0000"


def test_openai_messages_become_question_and_history():
    messages = [ChatMessageIn(role="system", content="be brief"),
                ChatMessageIn(role="user", content="q1"),
                ChatMessageIn(role="assistant", content="a1"),
                ChatMessageIn(role="user", content=[{"type": "text", "text": "q2"}])]
    question, history = question_and_history(messages)
    assert question == "q2" and history == [Turn("q1", "a1")]


def test_cors_origins_setting_is_parsed_and_checked(monkeypatch):
    monkeypatch.setenv("SANAD_CORS_ORIGINS", "https://News.example/, http://127.0.0.1:8080")
    assert Settings().cors_origins == ["https://news.example", "http://127.0.0.1:8080"]
    monkeypatch.setenv("SANAD_CORS_ORIGINS", "*")
    with pytest.raises(ValueError, match="not an origin"):
        Settings()


# -- the model runner ---------------------------------------------------------------------------
async def occupied(runner: ModelRunner) -> tuple[threading.Event, asyncio.Future]:
    """A call holding one of the runner's workers until the event is set."""
    release = threading.Event()
    running = asyncio.ensure_future(runner.call(release.wait, 5))
    await asyncio.sleep(0.02)
    return release, running


def test_runner_runs_answers_at_once_up_to_its_workers_and_starts_the_rest_in_order():
    async def scenario():
        runner = ModelRunner(workers=2, deadline_s=30)
        release = threading.Event()
        lock = threading.Lock()
        active, most, started = [0], [0], []

        def answer(tag):
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
                started.append(tag)
            release.wait(5)
            with lock:
                active[0] -= 1
            return tag

        calls = []
        for tag in range(6):
            calls.append(asyncio.ensure_future(runner.call(answer, tag)))
            await asyncio.sleep(0.01)  # they arrive in this order
        await asyncio.sleep(0.05)
        assert runner.admitted == 6 and started == [0, 1]
        release.set()
        assert await asyncio.gather(*calls) == list(range(6))
        assert started == list(range(6))  # first come, first served
        assert most[0] == 2 and runner.admitted == 0
        runner.shutdown()

    run_async(scenario)


def test_runner_refuses_at_once_only_when_the_deadline_cannot_be_met():
    async def scenario():
        runner = ModelRunner(workers=1, deadline_s=0.5)
        await runner.call(time.sleep, 0.2)  # the recent service time: about 0.2 s
        release, running = await occupied(runner)
        # Estimated starts: 0.2 s and 0.4 s (within 0.5 s), then 0.6 s (past it).
        waiting = [asyncio.ensure_future(runner.call(time.sleep, 0.01)) for _ in range(2)]
        await asyncio.sleep(0.02)
        began = time.perf_counter()
        with pytest.raises(Busy) as refused:
            await runner.call(time.sleep, 0.01)
        assert time.perf_counter() - began < 0.1  # told at once, not after the deadline
        assert refused.value.retry_after >= 1 and "try again in" in str(refused.value).lower()
        release.set()
        await asyncio.gather(running, *waiting)
        runner.shutdown()

    run_async(scenario)


def test_runner_refuses_a_request_still_waiting_at_its_deadline():
    async def scenario():
        runner = ModelRunner(workers=1, deadline_s=0.3)
        release, running = await occupied(runner)  # no estimate of the service time yet
        began = time.perf_counter()
        with pytest.raises(Busy):
            await runner.call(time.sleep, 0.01)
        assert 0.25 <= time.perf_counter() - began < 2
        assert runner.admitted == 1  # the refused one left the queue
        release.set()
        await running
        runner.shutdown()

    run_async(scenario)


def test_runner_serves_a_burst_that_fits_its_deadline_without_refusing_any():
    async def scenario():
        runner = ModelRunner(workers=2, deadline_s=5)
        results = await asyncio.gather(*(runner.call(time.sleep, 0.02) for _ in range(40)),
                                       return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)]
        runner.shutdown()

    run_async(scenario)


def test_runner_stream_reports_the_queue_position_then_the_items():
    async def scenario():
        runner = ModelRunner(workers=1, deadline_s=30)
        release, running = await occupied(runner)
        second_may_finish = threading.Event()

        def second_answer():
            yield "second"
            second_may_finish.wait(5)

        second = runner.stream(second_answer)
        third = runner.stream(lambda: iter(["third"]))
        assert await anext(second) == Queued(0)
        assert await anext(third) == Queued(1)
        release.set()
        assert await anext(second) == "second"
        assert await anext(third) == Queued(0)  # moved up when the first finished
        second_may_finish.set()
        assert [item async for item in second] == []
        assert [item async for item in third] == ["third"]
        await running
        runner.shutdown()

    run_async(scenario)


def test_runner_forgets_a_request_that_left_while_waiting():
    async def scenario():
        runner = ModelRunner(workers=1, deadline_s=30)
        release, running = await occupied(runner)
        leaving = runner.stream(lambda: iter(["never"]))
        assert await anext(leaving) == Queued(0)
        await leaving.aclose()
        waiting = asyncio.ensure_future(runner.call(time.sleep, 0.01))
        await asyncio.sleep(0.02)
        assert runner.admitted == 2
        release.set()
        await asyncio.gather(running, waiting)
        assert runner.admitted == 0
        runner.shutdown()

    run_async(scenario)


def test_runner_stream_yields_items_and_raises_the_producers_error():
    async def scenario():
        runner = ModelRunner(workers=1)

        def produce():
            yield "a"
            yield "b"
            raise ValueError("broken")

        got = []
        with pytest.raises(ValueError, match="broken"):
            async for item in runner.stream(produce):
                got.append(item)
        assert got == ["a", "b"] and runner.admitted == 0

        stopped = threading.Event()

        def endless():
            try:
                while True:
                    yield 1
                    time.sleep(0.01)
            finally:
                stopped.set()

        stream = runner.stream(endless)
        assert await anext(stream) == 1
        await stream.aclose()  # the consumer left: the producer stops too
        assert await asyncio.to_thread(stopped.wait, 5)
        runner.shutdown()

    run_async(scenario)


def test_background_batches_yield_to_answers_but_are_not_starved():
    async def scenario():
        runner = ModelRunner(workers=1)  # so one answer always runs and two wait
        asking = True

        async def asker():
            while asking:
                await runner.call(time.sleep, 0.02)

        askers = [asyncio.create_task(asker()) for _ in range(3)]
        await asyncio.sleep(0.1)

        def one_batch() -> float:
            started = time.perf_counter()
            with runner.batch_slot(longest_wait=0.3):
                return time.perf_counter() - started

        waited = await asyncio.to_thread(one_batch)  # questions never stop: it waits 0.3 s
        asking = False
        await asyncio.gather(*askers)
        assert 0.29 <= waited < 3
        assert await asyncio.to_thread(one_batch) < 0.1  # no questions: at once
        runner.shutdown()

    run_async(scenario)


# -- the API over a fake embedder -----------------------------------------------------------------
@pytest.fixture
def fake_service(corpus, tmp_path, fake_embedder) -> SanadService:
    settings = Settings(data_dir=tmp_path / "data", llm_backend="extractive",
                        refuse_below_en=-1, refuse_below_ar=-1, rate_limit_per_minute=0)
    service = SanadService(settings, embed_model=fake_embedder)
    service.index([corpus], progress=False, log=lambda m: None)
    return service


def api(service: SanadService, **web) -> TestClient:
    return TestClient(create_app(service.settings.model_copy(update=web), service, ui=False,
                                 warm_up=False))


def test_ask_and_chat_over_the_fake_index(fake_service):
    with api(fake_service) as client:
        result = client.post("/api/ask", json={"question": "Where does the Rhine end?"}).json()
        assert "[1]" in result["answer"] and result["passages"]
        text = client.get(f"/api/articles/{result['passages'][0]['article_id']}").json()["text"]
        p = result["passages"][0]
        assert text[p["start"]:p["end"]] == p["text"]
        with client.stream("POST", "/api/chat", json={"message": "Where does the Rhine end?"}) as r:
            body = "".join(r.iter_text())
        assert "event: token" in body and "event: result" in body


def test_no_index_is_503_naming_no_server_folder(tmp_path, fake_embedder):
    service = SanadService(Settings(data_dir=tmp_path / "empty", llm_backend="extractive"),
                           embed_model=fake_embedder)
    with api(service) as client:
        response = client.post("/api/ask", json={"question": "anything"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "no_index"
        assert str(tmp_path) not in response.text  # the folder goes to the log only
        assert client.get("/api/articles").json()["error"]["code"] == "no_index"
        assert client.get("/healthz").json()["index"] is None


def test_unreachable_llm_is_503_and_busy_is_503(fake_service, monkeypatch):
    with api(fake_service) as client:
        ctx = client.app.state.sanad
        unreachable = fake_service.settings.model_copy(update={
            "llm_backend": "openai", "llm_base_url": "http://127.0.0.1:9/v1"})
        ctx.service.settings = unreachable
        ctx.service._answers = None
        response = client.post("/api/ask", json={"question": "Where does the Rhine end?"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "llm_unavailable"

        # Every worker busy, and answers lately took far longer than the queue's deadline.
        monkeypatch.setattr(ctx.runner, "_running", ctx.runner.workers)
        monkeypatch.setattr(ctx.runner, "_service_s", 1000.0 * ctx.runner.workers)
        for path, body in [("/api/ask", {"question": "q"}), ("/api/chat", {"message": "q"})]:
            busy = client.post(path, json=body)
            assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
            assert "busy" in busy.json()["error"]["message"] and busy.headers["retry-after"]


def test_chat_tells_a_waiting_request_its_place_before_the_answer(fake_service, monkeypatch):
    release = threading.Event()
    with api(fake_service, concurrent_answers=1) as client:
        service = client.app.state.sanad.service
        runner = client.app.state.sanad.runner
        answer = service.answer

        def held(question, history=None, k=None):
            release.wait(10)
            return answer(question, history, k)

        monkeypatch.setattr(service, "answer", held)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/api/ask", json={"question": "Where does the Rhine end?"})
            deadline = time.monotonic() + 5
            while runner.admitted < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            threading.Timer(0.5, release.set).start()
            with client.stream("POST", "/api/chat", json={"message": "Where does the Rhine end?"}) as r:
                assert r.status_code == 200
                body = "".join(r.iter_text())
            assert first.result().status_code == 200
    assert 'event: queue\ndata: {"position": 0}' in body
    assert body.index("event: queue") < body.index("event: token") < body.index("event: result")


def test_a_failure_after_streaming_started_is_an_error_event(fake_service, monkeypatch):
    answer_stream = fake_service.answer_stream  # the real one, before the patch below

    def broken(question, history=None, k=None):
        yield from answer_stream(question, history, k)
        raise RuntimeError("disk on fire")

    with api(fake_service) as client:
        monkeypatch.setattr(client.app.state.sanad.service, "answer_stream",
                            lambda q, h=None, k=None: broken(q, h, k))
        with client.stream("POST", "/api/chat", json={"message": "Where does the Rhine end?"}) as r:
            assert r.status_code == 200
            body = "".join(r.iter_text())
    error = json.loads(body.split("event: error\ndata: ")[1].split("\n")[0])
    assert error["error"]["code"] == "internal_error" and "disk on fire" not in body


def test_an_unexpected_failure_is_a_json_500(fake_service, monkeypatch):
    def broken(*args):
        raise RuntimeError("disk on fire /secret/path")

    app = create_app(fake_service.settings, fake_service, ui=False, warm_up=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        monkeypatch.setattr(client.app.state.sanad.service, "answer", broken)
        response = client.post("/api/ask", json={"question": "Where does the Rhine end?"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "disk on fire" not in response.text

