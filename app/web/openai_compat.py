"""The OpenAI chat-completions shape over Sanad's answers, so OpenAI clients can ask Sanad.

The last user message is the question and earlier user/assistant turns are the history.
Citations ride along in an extra `sanad` field (the whole AnswerResult: passages, verified
sentences, evidence), which OpenAI clients keep as an extra attribute.
"""

from __future__ import annotations

import secrets
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.service import AnswerResult, Turn
from app.web.errors import ApiError


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    # Sampling options (temperature, max_tokens...) are accepted and ignored: answers are
    # quoted or generated deterministically from the cited passages.
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, description="ignored; responses name the model 'sanad'")
    messages: list[ChatMessageIn] = Field(..., min_length=1)
    stream: bool = False


def _text(message: ChatMessageIn) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(p.text or "" for p in message.content or [] if p.type == "text")


def question_and_history(messages: list[ChatMessageIn]) -> tuple[str, list[Turn]]:
    dialogue = [(m.role, _text(m)) for m in messages if m.role in ("user", "assistant")]
    last_user = max((i for i, (role, _) in enumerate(dialogue) if role == "user"), default=None)
    if last_user is None:
        raise ApiError(400, "invalid_request", "messages hold no user message to answer")
    history: list[Turn] = []
    pending: str | None = None
    for role, text in dialogue[:last_user]:
        if role == "user":
            pending = text
        elif pending is not None:
            history.append(Turn(question=pending, answer=text))
            pending = None
    return dialogue[last_user][1], history


def full_text(result: AnswerResult) -> str:
    """The answer as a chat message: the verified answer, then any checked rendering into
    the reader's language with its label (the label alone when every rendering was withheld)."""
    text = result.answer
    if result.translation:
        rendering = result.translation["text"]
        text += f"\n\n{rendering}\n" if rendering else "\n\n"
        text += f"({result.translation['label']})"
    return text


class CompletionIds:
    def __init__(self) -> None:
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())

    def completion(self, result: AnswerResult) -> dict:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": "sanad",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": full_text(result)}}],
            "sanad": result.as_dict(),
        }

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra) -> dict:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": "sanad",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
