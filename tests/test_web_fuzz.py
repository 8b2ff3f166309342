"""Fuzzing the doors: random JSON bodies and nasty strings (lone surrogates, controls, bidi
marks, 64 KB) at the REST, OpenAI-compatible and Gradio endpoints; no 5xx, ever, and every
refusal in the documented error shape.

A seeded generator (hypothesis is not installed in the project's environment), bounded to a
few hundred requests against a real server over the fake embedder.
"""

from __future__ import annotations

import json
import random

import httpx
import pytest

from tests.test_web_security import QUESTION, gradio_call, service  # noqa: F401 - fixture
from tests.web_helpers import SanadServer

PIECES = ["\ud800", "\udfff", "\x00", "\x1b[31m", "\x7f", "\x85", "\u202e", "\u2066", "\u200f",
          "\ufeff", "\uffff", "مرحبا", "😀", "<script>alert(1)</script>", "[1]", "NOT_FOUND",
          "{{title}}", "\\", '"', "\n", "\t", " ", "Rhine", "?", "؟", "%00", "../../etc/passwd"]


def nasty_string(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(PIECES) * (64 * 1024 // 2)  # about 64 KB and more
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


def nasty_value(rng: random.Random, depth: int = 0):
    makers = [lambda: None, lambda: True, lambda: rng.choice([0, -5, 51, 10**12, 3]),
              lambda: 2.5, lambda: nasty_string(rng), lambda: nasty_string(rng)]
    if depth < 2:
        makers += [
            lambda: [nasty_value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            lambda: {nasty_string(rng)[:8]: nasty_value(rng, depth + 1) for _ in range(2)},
            lambda: [{"role": rng.choice(["user", "assistant", "system", "tool", "x"]),
                      "content": nasty_value(rng, depth + 1)} for _ in range(rng.randint(0, 3))],
        ]
    return rng.choice(makers)()


def bodies(rng: random.Random, fields: list[str], count: int) -> list[object]:
    out: list[object] = []
    for _ in range(count):
        if rng.random() < 0.1:
            out.append(nasty_value(rng))  # not even an object
            continue
        body = {name: nasty_value(rng) if rng.random() < 0.5 else nasty_string(rng)
                for name in fields if rng.random() < 0.8}
        if rng.random() < 0.2:
            body[nasty_string(rng)[:10]] = nasty_value(rng)
        out.append(body)
    return out


@pytest.fixture(scope="module")
def fuzz_server(service):  # noqa: F811 - the fixture imported above
    with SanadServer(service) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


@pytest.mark.parametrize("path,fields", [
    ("/api/ask", ["question", "k"]),
    ("/api/chat", ["message", "conversation_id", "k"]),
    ("/v1/chat/completions", ["messages", "stream", "model"]),
])
def test_json_endpoints_never_fail_with_5xx(fuzz_server, path, fields):
    rng = random.Random(f"sanad-fuzz {path}")
    for body in bodies(rng, fields, 60):
        # json.dumps writes lone surrogates as escapes, as browsers do
        response = fuzz_server.post(path, content=json.dumps(body),
                                    headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (body, response.text[:300])
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message"}
        elif response.headers["content-type"].startswith("text/event-stream"):
            assert "internal_error" not in response.text


def test_raw_bytes_are_refused_cleanly(fuzz_server):
    rng = random.Random("sanad-fuzz bytes")
    for _ in range(30):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        for path in ("/api/ask", "/v1/chat/completions"):
            response = fuzz_server.post(path, content=raw,
                                        headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (raw, response.text[:300])


def test_gradio_endpoints_answer_or_refuse_with_a_message(fuzz_server):
    rng = random.Random("sanad-fuzz gradio")
    for _ in range(40):
        question = nasty_string(rng) if rng.random() < 0.8 else nasty_value(rng)
        top_k = nasty_value(rng) if rng.random() < 0.5 else rng.randint(1, 20)
        kind, data = gradio_call(fuzz_server, "ask", [question, top_k])
        assert kind in ("complete", "error", "413", "400"), (question, kind, data)
        if kind == "error":  # a refusal says why; an internal failure would say nothing
            assert data and "internal error" not in str(data), (question, top_k, data)
    for _ in range(15):  # the chat shows refusals in the conversation itself
        question = nasty_string(rng) if rng.random() < 0.8 else nasty_value(rng)
        kind, data = gradio_call(fuzz_server, "chat", [question, rng.randint(1, 20)])
        assert kind in ("complete", "413", "400"), (question, kind, data)
        assert "internal error" not in str(data)
    kind, data = gradio_call(fuzz_server, "ask", [QUESTION, 3])
    assert kind == "complete"
