"""The HTTP API: thin routes over the answer service, run through the model runner."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from app.service import AnswerResult, Token, Turn, checked_question
from app.web.context import WebContext
from app.web.errors import ApiError, as_api_error, error_body, log
from app.web.openai_compat import (
    ChatCompletionRequest,
    CompletionIds,
    full_text,
    question_and_history,
)
from index.storage import current_folder, read_manifest

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
SSE_DOC = {200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}}


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., description="the question, in any language",
                          examples=["What did Mexico request?"])
    k: int | None = Field(None, ge=1, le=50, description="passages to retrieve (default: top_k)")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(..., examples=["ماذا طلبت المكسيك؟"])
    conversation_id: str | None = Field(
        None, description="from an earlier `result` event, to ask a follow-up; an unknown or "
        "expired one starts a new conversation")
    k: int | None = Field(None, ge=1, le=50)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_router(ctx: WebContext) -> APIRouter:
    router = APIRouter()
    settings = ctx.settings
    max_question_chars = ctx.service.settings.max_question_chars

    async def answer_guard(
        request: Request,
        x_sanad_key: Annotated[str | None, Header(description="the widget key, when one is set")
                               ] = None,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> None:
        """The widget key (when set), then the client's rate limit."""
        if settings.widget_key:
            given = x_sanad_key
            if given is None and authorization and authorization.lower().startswith("bearer "):
                given = authorization[7:].strip()  # how OpenAI clients send their key
            if not given or not secrets.compare_digest(given.encode(), settings.widget_key.encode()):
                raise ApiError(401, "invalid_key", "this server needs a valid X-Sanad-Key header")
        wait = ctx.limiter.acquire(client_address(request))
        if wait > 0:
            raise ApiError(429, "rate_limited",
                           f"too many questions; the limit is {settings.rate_limit_per_minute} "
                           f"a minute, try again in {wait:.0f} s",
                           {"Retry-After": str(max(1, round(wait)))})

    Guarded = Depends(answer_guard)

    def check_question(text: str) -> str:
        # Checked here too, so a bad question never waits for a model slot (AnswerError
        # is a 400 "bad_question").
        return checked_question(text, max_question_chars)

    async def started(question: str, history: list[Turn], k: int | None
                      ) -> tuple[Token | AnswerResult, AsyncIterator[Token | AnswerResult]]:
        """The first streamed item and the rest: errors before it become HTTP errors."""
        stream = ctx.runner.stream(lambda: ctx.answer_stream(question, history, k))
        try:
            first = await anext(stream)
        except Exception as exc:
            await stream.aclose()
            mapped = as_api_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return first, stream

    async def items(first, stream) -> AsyncIterator[Token | AnswerResult]:
        yield first
        async for item in stream:
            yield item

    def error_event(exc: Exception) -> dict:
        mapped = as_api_error(exc)
        if mapped is None:
            log.error("an answer failed while streaming", exc_info=exc)
            mapped = ApiError(500, "internal_error", f"the answer failed ({type(exc).__name__})")
        return error_body(mapped.code, mapped.message)

    @router.post("/api/ask", tags=["answers"], dependencies=[Guarded],
                 summary="Answer a question, with cited passages")
    async def ask(body: AskRequest) -> dict:
        """The full `AnswerResult`: `answer` has `[n]` markers, and `[n]` is `passages[n-1]`,
        an exact span (`start`:`end`) of the article `article_id`."""
        question = check_question(body.question)
        result = await ctx.runner.call(lambda: ctx.answers().answer(question, None, body.k))
        return result.as_dict()

    @router.post("/api/chat", tags=["answers"], dependencies=[Guarded], responses=SSE_DOC,
                 response_class=EventSourceResponse, summary="Chat, streamed as server-sent events")
    async def chat(body: ChatRequest) -> EventSourceResponse:
        """Events: `token` (`{"text", "part"}`, part "answer" or "translation") as the answer
        is written, then one `result` (the AnswerResult plus `conversation_id`), or `error`
        (`{"error": {"code", "message"}}`) if it fails midway. Send `conversation_id` back
        to ask a follow-up."""
        question = check_question(body.message)
        if body.conversation_id is not None and not ctx.conversations.valid_id(body.conversation_id):
            raise ApiError(400, "invalid_request", "conversation_id is not one Sanad gave out")
        conv = ctx.conversations.get_or_create(body.conversation_id)
        history = ctx.conversations.history(conv.id)
        first, stream = await started(question, history, body.k)

        async def events() -> AsyncIterator[dict]:
            try:
                async for item in items(first, stream):
                    if isinstance(item, Token):
                        yield {"event": "token", "data": json.dumps(
                            {"text": item.text, "part": item.part}, ensure_ascii=False)}
                    else:
                        ctx.conversations.add_turn(conv.id, Turn(question, item.answer))
                        yield {"event": "result", "data": json.dumps(
                            {**item.as_dict(), "conversation_id": conv.id}, ensure_ascii=False)}
            except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band
                yield {"event": "error", "data": json.dumps(error_event(exc), ensure_ascii=False)}
            finally:
                await stream.aclose()

        return EventSourceResponse(events(), headers=SSE_HEADERS, sep="\n", ping=15)

    @router.post("/v1/chat/completions", tags=["OpenAI-compatible"], dependencies=[Guarded],
                 summary="OpenAI-compatible chat completions (stream or not)")
    async def chat_completions(body: ChatCompletionRequest):
        """The last user message is the question; earlier user/assistant messages are the
        history. `sanad` in the response (in the last chunk when streaming) carries the
        passages, verified sentences and evidence behind the answer's `[n]` markers."""
        question, history = question_and_history(body.messages)
        question = check_question(question)
        ids = CompletionIds()
        if not body.stream:
            result = await ctx.runner.call(lambda: ctx.answers().answer(question, history))
            return ids.completion(result)
        first, stream = await started(question, history, None)

        async def chunks() -> AsyncIterator[dict]:
            part = "answer"
            try:
                yield {"data": json.dumps(ids.chunk({"role": "assistant", "content": ""}))}
                async for item in items(first, stream):
                    if isinstance(item, Token):
                        text = item.text if item.part == part else f"\n\n{item.text}"
                        part = item.part
                        yield {"data": json.dumps(ids.chunk({"content": text}), ensure_ascii=False)}
                    else:
                        if item.translation:  # its label was not part of the streamed text
                            yield {"data": json.dumps(ids.chunk(
                                {"content": f"\n({item.translation['label']})"}),
                                ensure_ascii=False)}
                        yield {"data": json.dumps(ids.chunk({}, "stop", sanad={
                            **item.as_dict(), "content": full_text(item)}), ensure_ascii=False)}
                yield {"data": "[DONE]"}
            except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band
                yield {"data": json.dumps(error_event(exc), ensure_ascii=False)}
            finally:
                await stream.aclose()

        return EventSourceResponse(chunks(), headers=SSE_HEADERS, sep="\n", ping=15)

    async def articles() -> dict:
        return await run_in_threadpool(lambda: ctx.service.searcher().data.articles)

    @router.get("/api/articles", tags=["articles"], summary="The indexed articles")
    async def list_articles() -> list[dict]:
        return [{"id": a.id, "title": a.title, "chars": len(a.text), "sha256": a.sha256,
                 "file": Path(a.source).name} for a in (await articles()).values()]

    @router.get("/api/articles/{article_id}", tags=["articles"],
                summary="One article's text, for showing a passage in place")
    async def get_article(article_id: str) -> dict:
        """`text` is the text that passages' `start`:`end` spans point into."""
        article = (await articles()).get(article_id)
        if article is None:
            raise ApiError(404, "not_found", f"no article {article_id!r} in the index")
        return {"id": article.id, "title": article.title, "text": article.text,
                "chars": len(article.text), "sha256": article.sha256,
                "file": Path(article.source).name}

    @router.get("/healthz", tags=["service"], summary="Liveness and what is loaded")
    async def healthz() -> dict:
        folder = current_folder(ctx.service.settings.data_dir)
        index = None
        if folder is not None:
            manifest = read_manifest(folder)
            index = {"generation": manifest.generation, "articles": len(manifest.articles),
                     "chunks": manifest.chunk_count}
        return {"status": "ok", "backend": ctx.default_backend,
                "answering_with": ctx.answering_with,  # null until the backend is loaded
                "index": index, "requests_in_model": ctx.runner.admitted}

    return router
