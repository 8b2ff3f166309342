"""The API's typed requests and responses, so /docs and /openapi.json describe them.

The answer itself is `AnswerResult` (a dataclass FastAPI documents as it is); these are the
rest: errors, articles, health.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., description="the question, in any language",
                          examples=["What did Mexico request?"])
    k: int | None = Field(None, ge=1, le=50, description="passages to retrieve (default: top_k)")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(..., examples=["ماذا طلبت المكسيك؟"])
    conversation_id: str | None = Field(
        None, max_length=100, description="from an earlier `result` event, to ask a follow-up; "
        "an unknown or expired one starts a new conversation")
    k: int | None = Field(None, ge=1, le=50)


class ErrorDetail(BaseModel):
    code: str = Field(..., examples=["bad_question"])
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class ArticleSummary(BaseModel):
    id: str
    title: str
    chars: int
    sha256: str
    file: str = Field(..., description="the base name of the file it was indexed from")


class ArticleText(ArticleSummary):
    text: str = Field(..., description="the text that passages' `start`:`end` spans point into")


class IndexSummary(BaseModel):
    generation: int
    articles: int
    chunks: int


class Health(BaseModel):
    status: str = "ok"
    backend: str = Field(..., description="the configured answer backend")
    answering_with: str | None = Field(..., description="the backend loaded; null until then")
    index: IndexSummary | None = Field(..., description="the loaded index; null until loaded")
    requests_in_model: int = Field(..., description="answers running or waiting for the model")
    uploads: bool = Field(..., description="whether articles may be added through the web")


ERRORS = {status: {"model": ErrorBody, "description": description} for status, description in {
    400: "bad question or request", 401: "missing or wrong key", 403: "origin not allowed",
    405: "wrong method", 413: "request too large", 429: "rate limited (see Retry-After)",
    503: "busy, no index or model unavailable (see Retry-After when busy)"}.items()}
