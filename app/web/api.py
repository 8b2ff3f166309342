"""The HTTP API: thin routes over `SanadService`, run through the model runner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from app.service import AnswerResult, Token, Turn, checked_question
from app.textcheck import text_problem
from app.web.context import WebContext
from app.web.errors import ApiError, as_api_error, error_body, log
from app.web.guard import key_valid, presented_key
from app.web.openai_compat import (
    ChatCompletionRequest,
    CompletionIds,
    full_text,
    question_and_history,
)
from app.web.runner import Queued
from app.web.schemas import (
    ERRORS,
    ArticleSummary,
    ArticleText,
    AskRequest,
    ChatRequest,
    Health,
)

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
SSE_DOC = {200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}}
POST_ONLY = ("/api/ask", "/api/chat", "/v1/chat/completions")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(responses=ERRORS)
    service = ctx.service
    settings = service.settings

    async def answer_guard(
        request: Request,
        x_sanad_key: Annotated[str | None, Header(description="the widget key, when one is set")
                               ] = None,
    ) -> None:
        """The widget key (when set), then the client's rate limit: the same gate as the
        Gradio door's (app.web.guard)."""
        if not key_valid(settings, presented_key(request.headers, request.cookies)):
            raise ApiError(401, "invalid_key", "this server needs a valid X-Sanad-Key header")
        wait = ctx.limiter.acquire(client_address(request))
        if wait:
            message, headers = ctx.limiter.refusal(wait)
            raise ApiError(429, "rate_limited", message, headers)

    Guarded = Depends(answer_guard)

    def check_question(text: str) -> str:
        # The service's own check, here at the door so that a bad question never waits
        # for a model slot (AnswerError is a 400 "bad_question").
        return checked_question(text, settings.max_question_chars)

    def check_history(history: list[Turn]) -> None:
        for turn in history:  # earlier turns reach the LLM too (condensing a follow-up)
            problem = text_problem(turn.question) or text_problem(turn.answer)
            if problem:
                raise ApiError(400, "bad_question", f"an earlier message {problem}")

    async def started(question: str, history: list[Turn], k: int | None
                      ) -> tuple[Queued | Token | AnswerResult,
                                 AsyncIterator[Queued | Token | AnswerResult]]:
        """The first streamed item (a queue position, or the answer's first) and the rest:
        errors before it become HTTP errors."""
        stream = ctx.runner.stream(lambda: service.answer_stream(question, history, k))
        try:
            first = await anext(stream)
        except Exception as exc:
            await stream.aclose()
            mapped = as_api_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return first, stream

    async def items(first, stream) -> AsyncIterator[Queued | Token | AnswerResult]:
        yield first
        async for item in stream:
            yield item

    def error_event(exc: Exception) -> dict:
        mapped = as_api_error(exc)
        if mapped is None:
            log.error("an answer failed while streaming", exc_info=exc)
            mapped = ApiError(500, "internal_error", "the answer failed (an internal error)")
        return error_body(mapped.code, mapped.message)

    @router.post("/api/ask", tags=["answers"], dependencies=[Guarded],
                 response_model=AnswerResult, summary="Answer a question, with cited passages")
    async def ask(body: AskRequest) -> dict:
        """The full `AnswerResult`: `answer` has `[n]` markers, and `[n]` is `passages[n-1]`,
        an exact span (`start`:`end`) of the article `article_id`."""
        question = check_question(body.question)
        result = await ctx.runner.call(lambda: service.answer(question, None, body.k))
        return result.as_dict()

    @router.post("/api/chat", tags=["answers"], dependencies=[Guarded], responses=SSE_DOC,
                 response_class=EventSourceResponse, summary="Chat, streamed as server-sent events")
    async def chat(body: ChatRequest) -> EventSourceResponse:
        """Events: `queue` (`{"position"}`: requests ahead of this one) while it waits for
        its turn, `token` (`{"text", "part"}`, part "answer" or "translation") as the answer
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
                    if isinstance(item, Queued):
                        yield {"event": "queue", "data": json.dumps({"position": item.position})}
                    elif isinstance(item, Token):
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
        check_history(history)
        ids = CompletionIds()
        if not body.stream:
            result = await ctx.runner.call(lambda: service.answer(question, history))
            return ids.completion(result)
        first, stream = await started(question, history, None)

        async def chunks() -> AsyncIterator[dict]:
            try:
                yield {"data": json.dumps(ids.chunk({"role": "assistant", "content": ""}))}
                async for item in items(first, stream):
                    # An OpenAI client keeps every delta and has no event for waiting, nor
                    # a way to replace a preview: only the checked answer is sent.
                    if isinstance(item, Queued | Token):
                        continue
                    text = full_text(item)
                    yield {"data": json.dumps(ids.chunk({"content": text}), ensure_ascii=False)}
                    yield {"data": json.dumps(ids.chunk({}, "stop", sanad={
                        **item.as_dict(), "content": text}), ensure_ascii=False)}
                yield {"data": "[DONE]"}
            except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band
                yield {"data": json.dumps(error_event(exc), ensure_ascii=False)}
            finally:
                await stream.aclose()

        return EventSourceResponse(chunks(), headers=SSE_HEADERS, sep="\n", ping=15)

    @router.get("/api/articles", tags=["articles"], summary="The indexed articles",
                response_model=list[ArticleSummary])
    async def list_articles() -> list[dict]:
        return await run_in_threadpool(service.articles)

    @router.get("/api/articles/{article_id}", tags=["articles"], response_model=ArticleText,
                summary="One article's text, for showing a passage in place")
    async def get_article(article_id: str) -> dict:
        """`text` is the text that passages' `start`:`end` spans point into."""
        article = await run_in_threadpool(service.article, article_id)
        if article is None:
            raise ApiError(404, "not_found", "no article with this id in the index")
        return article

    @router.get("/healthz", tags=["service"], response_model=Health,
                summary="Liveness and what is loaded")
    async def healthz() -> dict:
        return {"status": "ok", **service.health(), "requests_in_model": ctx.runner.admitted,
                "uploads": ctx.uploads_open}

    async def post_only(request: Request) -> None:
        raise ApiError(405, "method_not_allowed", f"{request.url.path} takes POST",
                       {"Allow": "POST"})

    for path in POST_ONLY:  # else Gradio, mounted at /, answers its own 404 body
        router.add_api_route(path, post_only, methods=["GET", "PUT", "PATCH", "DELETE"],
                             include_in_schema=False)

    return router
