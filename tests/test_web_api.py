"""The HTTP API on a real uvicorn server, the real model and a real index of seeds/ (slow)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from index.sources import read_article
from tests.conftest import SEED
from tests.web_helpers import SanadServer

pytestmark = pytest.mark.slow
ALLOWED = "http://127.0.0.1:9"  # an origin allowed in settings (nothing needs to listen there)
REFUSED = "http://evil.example"
MEXICO = "What did Mexico request?"


@pytest.fixture(scope="module")
def server(seeded_service):
    with SanadServer(seeded_service, ui=False, cors_origins=[ALLOWED],
                     rate_limit_per_minute=0) as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def sse_events(response: httpx.Response) -> list[tuple[str, str]]:
    events, event, data = [], "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    return events


def assert_cites_exact_spans(result: dict, http: httpx.Client) -> None:
    assert "[1]" in result["answer"]
    for passage in result["passages"]:
        article = http.get(f"/api/articles/{passage['article_id']}").json()
        assert article["text"][passage["start"]:passage["end"]] == passage["text"]


def test_ask_returns_an_answer_citing_exact_passages(http):
    response = http.post("/api/ask", json={"question": MEXICO, "k": 5})
    assert response.status_code == 200
    result = response.json()
    assert result["question"] == MEXICO and not result["refused"]
    assert any("20 مليار" in p["text"] for p in result["passages"])
    assert_cites_exact_spans(result, http)


def test_chat_streams_tokens_then_a_result_and_follow_ups_use_the_history(http):
    with http.stream("POST", "/api/chat", json={"message": "ماذا طلبت المكسيك؟"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "result" and kinds[:-1] and set(kinds[:-1]) == {"token"}
    streamed = "".join(json.loads(data)["text"] for kind, data in events if kind == "token")
    result = json.loads(events[-1][1])
    assert "20 مليار" in streamed and "[1]" in result["answer"]
    conversation = result["conversation_id"]

    # A follow-up too vague to find evidence alone is answered through the history (the
    # previous question joins it for retrieval); without the history it is refused.
    with http.stream("POST", "/api/chat", json={"message": "وماذا أيضًا؟",
                                                "conversation_id": conversation}) as response:
        follow_up = json.loads(sse_events(response)[-1][1])
    assert follow_up["conversation_id"] == conversation
    assert not follow_up["refused"] and "20 مليار" in follow_up["answer"]

    with http.stream("POST", "/api/chat", json={"message": "وماذا أيضًا؟"}) as response:
        fresh = json.loads(sse_events(response)[-1][1])
    assert fresh["conversation_id"] != conversation
    assert fresh["refused"]


def test_openai_client_non_streaming(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    completion = client.chat.completions.create(
        model="sanad", messages=[{"role": "system", "content": "ignored"},
                                 {"role": "user", "content": MEXICO}])
    content = completion.choices[0].message.content
    sanad = completion.model_extra["sanad"]
    assert "[1]" in content and content.startswith(sanad["answer"])
    assert sanad["passages"][0]["text"].rstrip(".") in content  # quoted, then cited
    assert sanad["sentences"][0]["citations"]


def test_openai_client_streaming_with_history(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="sanad", stream=True,
        messages=[{"role": "user", "content": MEXICO},
                  {"role": "assistant", "content": "Mexico asked for aid."},
                  {"role": "user", "content": "And what else?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    sanad = final.model_extra["sanad"]
    # too vague alone: answered only because the earlier turns were passed as history
    assert not sanad["refused"] and "20 مليار" in sanad["answer"]
    assert text and "[1]" in text and sanad["passages"]
    # an OpenAI client keeps every delta: only the checked answer is ever sent
    assert text == sanad["content"]
    alone = client.chat.completions.create(
        model="sanad", messages=[{"role": "user", "content": "And what else?"}])
    assert alone.model_extra["sanad"]["refused"]


def test_articles_list_and_text(http):
    listed = http.get("/api/articles").json()
    assert [a["id"] for a in listed] == ["us-mexico-migration-talks"]
    article = http.get("/api/articles/us-mexico-migration-talks").json()
    assert article["text"] == read_article(SEED).text
    assert article["chars"] == len(article["text"]) and article["title"]
    missing = http.get("/api/articles/no-such-article")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_healthz_and_docs(http):
    http.post("/api/ask", json={"question": MEXICO})
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["index"]["articles"] == 1
    assert health["backend"] == health["answering_with"] == "extractive"
    assert health["requests_in_model"] == 0
    assert http.get("/docs").status_code == 200
    assert "/api/chat" in http.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("question,status,code", [
    ("", 400, "bad_question"),
    ("   ", 400, "bad_question"),
    ("x" * 3000, 400, "bad_question"),  # under the request size limit, over the question limit
    ("x" * 100_000, 413, "too_large"),
])
def test_bad_questions_get_json_errors(http, question, status, code):
    for path, body in [("/api/ask", {"question": question}), ("/api/chat", {"message": question}),
                       ("/v1/chat/completions", {"messages": [{"role": "user",
                                                               "content": question}]})]:
        response = http.post(path, json=body)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]
    # nothing else lost: the index and the answers are as before
    assert [a["id"] for a in http.get("/api/articles").json()] == ["us-mexico-migration-talks"]
    assert http.post("/api/ask", json={"question": MEXICO}).status_code == 200


def test_malformed_requests_are_400(http):
    assert http.post("/api/ask", content=b"{not json",
                     headers={"content-type": "application/json"}).status_code == 400
    assert http.post("/api/ask", json={"q": "missing field"}).json()["error"]["code"] == \
        "invalid_request"
    assert http.post("/api/chat", json={"message": "hi", "conversation_id": "../x"}
                     ).status_code == 400


def test_a_chunked_body_over_the_limit_is_413(http):
    def body():
        for _ in range(100):
            yield b"x" * 1024
    response = http.post("/api/ask", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_cors_allows_the_configured_origin(http):
    preflight = http.options("/api/chat", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-sanad-key"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    asked = http.post("/api/ask", json={"question": MEXICO}, headers={"Origin": ALLOWED})
    assert asked.status_code == 200
    assert asked.headers["access-control-allow-origin"] == ALLOWED


def test_cors_refuses_other_origins(http, server):
    preflight = http.options("/api/chat", headers={
        "Origin": REFUSED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    for path in ["/api/ask", "/api/articles"]:
        refused = http.request("POST" if path == "/api/ask" else "GET", path,
                               json={"question": MEXICO} if path == "/api/ask" else None,
                               headers={"Origin": REFUSED})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden_origin"
    # The server's own origin (its chat page) is always allowed.
    assert http.get("/api/articles", headers={"Origin": server.url}).status_code == 200


@pytest.fixture(scope="module")
def strict_server(seeded_service):
    """A widget key and a small rate limit."""
    with SanadServer(seeded_service, ui=False, widget_key="pk-test-123",
                     rate_limit_per_minute=3) as running:
        yield running


def test_widget_key_is_enforced(strict_server):
    with httpx.Client(base_url=strict_server.url, timeout=120) as http:
        for headers in [{}, {"X-Sanad-Key": "wrong"}]:
            for path, body in [("/api/ask", {"question": MEXICO}), ("/api/chat", {"message": MEXICO})]:
                response = http.post(path, json=body, headers=headers)
                assert response.status_code == 401
                assert response.json()["error"]["code"] == "invalid_key"
        ok = http.post("/api/ask", json={"question": MEXICO}, headers={"X-Sanad-Key": "pk-test-123"})
        assert ok.status_code == 200 and "[1]" in ok.json()["answer"]


def test_rate_limit_answers_429_with_retry_after(strict_server):
    key = {"X-Sanad-Key": "pk-test-123"}
    with httpx.Client(base_url=strict_server.url, timeout=120) as http:
        statuses = [http.post("/api/ask", json={"question": ""}, headers=key).status_code
                    for _ in range(6)]
        assert 429 in statuses and statuses.count(400) <= 3
        limited = http.post("/api/ask", json={"question": MEXICO}, headers=key)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
