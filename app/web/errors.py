"""Every API error is JSON `{"error": {"code", "message"}}` with a status code that fits."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.llm import LLMUnavailable
from app.service import AnswerError
from app.web.runner import Busy
from index.embedding import EmbedderError
from index.storage import IndexBusyError, IndexError_, IndexMismatchError, NoIndexError

log = logging.getLogger("sanad.web")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict | None = None
                   ) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


# What a visitor is told when the server itself is not ready: the exception's own text
# names server folders and settings, so it goes to the log (for the operator) instead.
_SERVER_PROBLEMS: list[tuple[type[BaseException], str, str, dict[str, str]]] = [
    (LLMUnavailable, "llm_unavailable", "the answer model cannot be reached right now", {}),
    (NoIndexError, "no_index", "no articles are indexed yet", {}),
    (IndexMismatchError, "index_mismatch", "the index does not match the server's settings", {}),
    (IndexBusyError, "index_busy", "the index is being written; try again shortly",
     {"Retry-After": "30"}),
    (IndexError_, "index_error", "the index cannot be read right now", {}),
    (EmbedderError, "model_unavailable", "the embedding model is not available right now", {}),
]


def as_api_error(exc: BaseException) -> ApiError | None:
    """The API error for an exception of the answer service, or None if it is a bug.

    Messages are ours: a bad question's message names its problem, a server problem only
    its kind (the details are logged)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AnswerError):
        return ApiError(400, "bad_question", str(exc))
    if isinstance(exc, Busy):
        return ApiError(503, "busy", str(exc), {"Retry-After": str(exc.retry_after)})
    for kind, code, message, headers in _SERVER_PROBLEMS:
        if isinstance(exc, kind):
            log.warning("%s: %s", code, exc)
            return ApiError(503, code, f"{message} (see the server's log)", dict(headers))
    return None


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 415: "unsupported_media_type", 429: "rate_limited"}


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        mapped = as_api_error(exc)
        assert mapped is not None
        return error_response(mapped.status, mapped.code, mapped.message, mapped.headers)

    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors())
        return error_response(400, "invalid_request", problems or "invalid request")

    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"),
                              str(exc.detail), getattr(exc, "headers", None))

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback; the client gets JSON without internals.
        return error_response(500, "internal_error", "the server failed (an internal error)")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, unexpected)
    for kind in (AnswerError, Busy, LLMUnavailable, IndexError_, EmbedderError):
        app.add_exception_handler(kind, service_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
