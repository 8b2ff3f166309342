"""The attacks of issue 15, each against a real server (fake embedder, extractive answers):
forged upload paths, DNS rebinding, Gradio's door around the key, bounds and backend, uploads
without the admin token, text that is not text, empty answers, pages without headers."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from pydantic import SecretStr

from app.service import SanadService
from app.settings import Settings
from app.textcheck import text_problem
from app.web.uploads import received_uploads
from tests.conftest import SEED
from tests.fakes import FakeEmbedder
from tests.web_helpers import SanadServer

RIVERS = ("# Rivers of Europe\n\nThe Danube flows through ten countries. It ends in the Black Sea."
          "\n\nThe Rhine starts in the Swiss Alps! Does it reach the North Sea? Yes, near "
          "Rotterdam.\n")
QUESTION = "Where does the Rhine end?"
ADMIN = "admin-token-for-tests"
KEY = "pk-test-key"
SURROGATE = "Where does the Rhine end \ud800?"


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> SanadService:
    root = tmp_path_factory.mktemp("security")
    corpus = root / "articles"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    (corpus / "rivers.md").write_text(RIVERS, encoding="utf-8")
    settings = Settings(data_dir=root / "data", llm_backend="extractive", rate_limit_per_minute=0,
                        refuse_below_en=-1, refuse_below_ar=-1)
    svc = SanadService(settings, embed_model=FakeEmbedder())
    svc.index([corpus], progress=False, log=lambda m: None)
    return svc


@pytest.fixture(scope="module")
def open_server(service):
    """Loopback only, no key, no admin token: uploads are on (only this machine reaches it)."""
    with SanadServer(service) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield server, http


def gradio_call(http: httpx.Client, name: str, data: list, headers: dict | None = None
                ) -> tuple[str, object]:
    """(event, data) of a call through Gradio's HTTP API; (status, body) if it is refused."""
    # json.dumps writes a lone surrogate as an escape, as a browser's JSON.stringify does
    call = http.post(f"/gradio_api/call/{name}", content=json.dumps({"data": data}),
                     headers={"Content-Type": "application/json", **(headers or {})})
    if call.status_code != 200:
        return str(call.status_code), call.json()
    events = http.get(f"/gradio_api/call/{name}/{call.json()['event_id']}",
                      headers=headers or {}).text
    # The last event: a generator's "generating" ones come before its "complete".
    last = events.strip().rsplit("event: ", 1)[1]
    kind, data = last.split("\n", 1)
    return kind.strip(), json.loads(data.strip().removeprefix("data: "))


def upload(http: httpx.Client, name: str, content: bytes, headers: dict | None = None) -> dict:
    uploaded = http.post("/gradio_api/upload", files=[("files", (name, content, "text/plain"))],
                         headers=headers or {})
    assert uploaded.status_code == 200, uploaded.text
    return {"path": uploaded.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


# -- 1. a forged FileData.path reads no server file ----------------------------------------------
@pytest.mark.parametrize("gradio_checks", [True, False])
def test_a_forged_upload_path_is_refused_and_nothing_is_indexed(open_server, tmp_path,
                                                                 monkeypatch, gradio_checks):
    """Refused by Gradio's own check (on since we set `has_launched`), and by the handler
    when that check returns early, as it does on a mounted app upstream."""
    _, http = open_server
    if not gradio_checks:
        import gradio.processing_utils

        monkeypatch.setattr(gradio.processing_utils, "_check_allowed", lambda *a, **k: None)
    secret = tmp_path / "server-secret.txt"
    secret.write_text("Server secret\n\nThe database password is hunter2.\n", encoding="utf-8")
    before = http.get("/api/articles").json()
    forged = {"path": str(secret), "orig_name": "x.txt", "meta": {"_type": "gradio.FileData"}}
    kind, data = gradio_call(http, "add_articles", [[forged], ""])
    if gradio_checks:
        assert kind == "error"
    else:
        assert kind == "complete" and "not a file uploaded to this server" in data[0]
    assert str(tmp_path) not in str(data)
    assert http.get("/api/articles").json() == before
    assert http.get("/api/articles/server-secret").status_code == 404


def test_only_files_recorded_as_uploads_inside_the_upload_folder_pass(tmp_path):
    folder = tmp_path / "gradio"
    (folder / "abc").mkdir(parents=True)
    uploaded = folder / "abc" / "a.txt"
    uploaded.write_text("x")
    copied = folder / "def" / "b.txt"  # what Gradio makes of a forged path: a fresh copy
    received, refused = received_uploads([str(uploaded), str(copied), "/etc/hostname"],
                                         {str(uploaded), "/etc/hostname"}, str(folder))
    assert received == [str(uploaded)] and len(refused) == 2


def test_a_real_upload_is_indexed_in_the_background(open_server):
    _, http = open_server
    file_data = upload(http, "harbour.txt", b"Harbour notes\n\nThe ferry docks at dawn.\n")
    kind, data = gradio_call(http, "add_articles", [[file_data], ""])
    assert kind == "complete" and "1 added" in data[0], data
    assert "The ferry docks at dawn." in http.get("/api/articles/harbour").json()["text"]
    assert http.get("/healthz").json()["uploads"] is True


# -- 2. DNS rebinding: the Host header is not our origin ------------------------------------------
def test_a_rebound_host_or_origin_is_refused_on_every_door(open_server):
    server, http = open_server
    rebound = f"rebind.attacker.example:{server.port}"
    for path in ("/api/ask", "/gradio_api/call/ask", "/v1/chat/completions"):
        response = http.post(path, json={}, headers={"Host": rebound,
                                                      "Origin": f"http://{rebound}"})
        assert response.status_code == 400, path  # TrustedHostMiddleware
        response = http.post(path, json={}, headers={"Origin": f"http://{rebound}"})
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden_origin"
    ours = http.post("/api/ask", json={"question": QUESTION}, headers={"Origin": server.url})
    assert ours.status_code == 200


# -- 3. Gradio's API: the same key, bounds, limits; no backend switch -----------------------------
def test_gradio_api_needs_the_widget_key_when_one_is_set(service):
    with SanadServer(service, widget_key=KEY) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        for name, data in [("ask", [QUESTION, 3]), ("chat", [QUESTION, 3])]:
            status, body = gradio_call(http, name, data)
            assert status == "401" and body["error"]["code"] == "invalid_key"
        assert http.post("/gradio_api/queue/join", json={}).status_code == 401
        kind, data = gradio_call(http, "ask", [QUESTION, 3], {"X-Sanad-Key": KEY})
        assert kind == "complete" and "[1]" in data[0]["answer"]
        # The chat page carries the key as a SameSite=Strict cookie set with the page.
        page = http.get("/")
        assert "SameSite=Strict" in page.headers["set-cookie"]
        kind, _ = gradio_call(http, "ask", [QUESTION, 3])  # the client now has the cookie
        assert kind == "complete"


@pytest.mark.parametrize("top_k", [10**9, -5, 0, 51])
def test_gradio_top_k_outside_the_api_bounds_is_refused(open_server, top_k):
    _, http = open_server
    kind, data = gradio_call(http, "ask", [QUESTION, top_k])
    assert kind == "error" and "k" in str(data)


def test_gradio_questions_get_the_api_size_limit(open_server):
    _, http = open_server
    kind, data = gradio_call(http, "ask", ["x" * 3000, 3])
    assert kind == "error" and "limit is 2000" in str(data)


def test_the_backend_is_not_a_visitors_choice(open_server):
    _, http = open_server
    info = http.get("/gradio_api/info").json()["named_endpoints"]
    chat = [p["parameter_name"] for p in info["/chat"]["parameters"]]
    assert not any("backend" in name for name in chat)
    refused = http.post("/api/ask", json={"question": QUESTION, "backend": "openai"})
    assert refused.status_code == 400
    chat_refused = http.post("/api/chat", json={"message": QUESTION, "backend": "openai"})
    assert chat_refused.status_code == 400


def test_gradio_answers_share_the_api_rate_limit(service):
    with SanadServer(service, rate_limit_per_minute=2) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/api/ask", json={"question": QUESTION}).status_code == 200
        assert gradio_call(http, "ask", [QUESTION, 3])[0] == "complete"
        kind, data = gradio_call(http, "ask", [QUESTION, 3])
        assert kind == "error" and "too many questions" in str(data)
        limited = http.post("/api/ask", json={"question": QUESTION})
        assert limited.status_code == 429
        wait = limited.headers["retry-after"]
        assert f"try again in {wait} s" in limited.json()["error"]["message"]


# -- 4. writes need the admin token ----------------------------------------------------------------
def test_uploads_need_the_admin_token(service):
    with SanadServer(service, admin_token=SecretStr(ADMIN)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        file_data = upload(http, "tide.txt", b"Tide tables\n\nHigh water at noon.\n")
        for token in ("", "wrong"):
            kind, data = gradio_call(http, "add_articles", [[file_data], token])
            assert kind == "error" and "admin token" in str(data)
        assert http.get("/api/articles/tide").status_code == 404
        kind, data = gradio_call(http, "add_articles", [[file_data], ADMIN])
        assert kind == "complete" and "1 added" in data[0]


def test_without_a_token_uploads_are_off_on_a_public_address(service):
    with SanadServer(service, listen_on="0.0.0.0") as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        refused = http.post("/gradio_api/upload", files=[("files", ("a.txt", b"x", "text/plain"))])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "uploads_off"
        assert http.get("/healthz").json()["uploads"] is False


def test_uploads_are_size_capped_and_rate_limited(service):
    with SanadServer(service, max_upload_mb=0.01, uploads_per_hour=2) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        big = http.post("/gradio_api/upload",
                        files=[("files", ("big.txt", b"word " * 4000, "text/plain"))])
        assert big.status_code == 413
        http.post("/gradio_api/upload", files=[("files", ("a.txt", b"x", "text/plain"))])
        limited = http.post("/gradio_api/upload", files=[("files", ("a.txt", b"x", "text/plain"))])
        assert limited.status_code == 429 and limited.headers["retry-after"]


# -- 5. text that is not text ------------------------------------------------------------------------
@pytest.mark.parametrize("text,problem", [
    ("\ud800", "lone surrogate"), ("a\x00b", "control character"), ("a\x1b[2Jb", "control"),
    ("\u202eevil", "bidi override"), ("ok\ttab\nnewline\r\n", ""), ("مرحبا\u200f \u2067x\u2069", ""),
])
def test_text_problems(text, problem):
    found = text_problem(text)
    assert (problem in found) if problem else found == ""
    assert "\ud800" not in found


def test_a_lone_surrogate_is_a_400_on_every_endpoint(open_server):
    _, http = open_server
    bodies = [("/api/ask", {"question": SURROGATE}), ("/api/chat", {"message": SURROGATE}),
              ("/v1/chat/completions", {"messages": [{"role": "user", "content": SURROGATE}]}),
              ("/v1/chat/completions", {"messages": [
                  {"role": "user", "content": SURROGATE}, {"role": "assistant", "content": "a"},
                  {"role": "user", "content": QUESTION}]})]
    for path, body in bodies:
        # json.dumps escapes the surrogate as \ud800, as a browser's JSON.stringify does
        response = http.post(path, content=json.dumps(body),
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["code"] == "bad_question"
    kind, data = gradio_call(http, "ask", [SURROGATE, 3])
    assert kind == "error" and "lone surrogate" in str(data)


# -- 6. smaller ones ------------------------------------------------------------------------------
def test_an_exact_title_gets_a_cited_answer_or_a_refusal(open_server):
    _, http = open_server
    titles = ["Rivers of Europe", SEED.read_text(encoding="utf-8").splitlines()[0]]
    for title in titles:
        result = http.post("/api/ask", json={"question": title}).json()
        assert result["answer"].strip()
        assert result["refused"] or ("[1]" in result["answer"] and result["sentences"])


def test_every_html_page_has_security_headers(service):
    with SanadServer(service, cors_origins=["https://news.example"]) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        page = http.get("/")
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        embed = http.get("/embed")
        assert embed.headers["x-content-type-options"] == "nosniff"
        policy = embed.headers["content-security-policy"]
        assert "frame-ancestors https://news.example" in policy and "x-frame-options" not in embed.headers
        assert http.get("/healthz").headers["x-content-type-options"] == "nosniff"


def test_wrong_methods_get_the_error_shape(open_server):
    _, http = open_server
    for path in ("/api/ask", "/api/chat", "/v1/chat/completions"):
        response = http.get(path)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_openapi_documents_the_typed_responses(open_server):
    _, http = open_server
    spec = http.get("/openapi.json").json()
    ask = spec["paths"]["/api/ask"]["post"]["responses"]
    answer = ask["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = spec["components"]["schemas"][answer]["properties"]
    assert {"passages", "sentences", "evidence", "refused", "answer"} <= set(fields)
    assert ask["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    for path in ("/api/articles", "/api/articles/{article_id}", "/healthz"):
        assert "schema" in spec["paths"][path]["get"]["responses"]["200"]["content"][
            "application/json"]
    # the JSON shape did not change: the same keys as AnswerResult.as_dict()
    result = http.post("/api/ask", json={"question": QUESTION}).json()
    assert set(result) == set(fields)


def test_gradio_errors_carry_no_exception_text_or_paths(open_server, monkeypatch):
    server, http = open_server
    service = server.app.state.sanad.service if hasattr(server.app, "state") else None
    assert service is not None

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire at /srv/secret/path")

    monkeypatch.setattr(service, "answer", broken)
    kind, data = gradio_call(http, "ask", [QUESTION, 3])
    assert kind == "error" and "disk on fire" not in str(data) and "/srv" not in str(data)
    response = http.post("/api/ask", json={"question": QUESTION})
    assert response.status_code == 500 and "disk on fire" not in response.text


def test_a_question_waits_at_most_one_batch_while_articles_are_indexed(tmp_path):
    """The indexing job takes the model slot per batch: an answer goes in between."""
    import asyncio
    import threading
    import time

    from app.web.runner import ModelRunner
    from tests.test_web_units import run_async

    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "rivers.md").write_text(RIVERS, encoding="utf-8")
    slow = FakeEmbedder(delay=0.02)  # 8 texts a batch: 0.16 s a batch
    svc = SanadService(Settings(data_dir=tmp_path / "data", llm_backend="extractive",
                                refuse_below_en=-1, refuse_below_ar=-1), embed_model=slow)
    svc.index([corpus], progress=False, log=lambda m: None)
    big = tmp_path / "big.txt"
    big.write_text("Big article\n\n" + "\n\n".join(
        f"Paragraph {i} tells of harbour {i} and its ferries." for i in range(400)))
    runner = ModelRunner(4)
    waits: list[float] = []

    async def scenario():
        job = svc.add_articles([big], slot=runner.batch_slot)
        while job.texts_done == 0 and not job.finished:
            await asyncio.sleep(0.01)
        for _ in range(3):
            asked = time.perf_counter()
            await runner.call(lambda: None)  # the model slot, as an answer takes it
            waits.append(time.perf_counter() - asked)
        assert not job.finished  # the questions were answered during indexing
        await asyncio.to_thread(job.wait, 120)
        assert job.state == "done" and "1 added" in job.summary, job.problems
        runner.shutdown()

    run_async(scenario)
    assert max(waits) < 0.16 * 3, waits  # one batch, with room for a slow CI machine
    assert threading.active_count() < 50
