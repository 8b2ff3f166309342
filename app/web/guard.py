"""What stands between a browser on another site and the model: origins, sizes, rates."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.errors import error_body

API_PREFIXES = ("/api/", "/v1/")
# The chat's own calls (Gradio's queue, uploads) run the model too: same origin rule, but
# Gradio keeps its own upload size limit.
ORIGIN_CHECKED_PREFIXES = (*API_PREFIXES, "/gradio_api/")


class RateLimiter:
    """A token bucket per client: `per_minute` requests a minute, bursts up to the same number."""

    def __init__(self, per_minute: int, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate
            self._buckets[client] = (tokens, now)  # most recently seen last
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def own_origin(scope: Scope) -> str:
    """The origin this request was addressed to (scheme and Host header)."""
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return f"{scope.get('scheme', 'http')}://{host}"


def origin_allowed(origin: str, scope: Scope, allowed: list[str]) -> bool:
    origin = origin.rstrip("/").lower()
    return origin == own_origin(scope) or origin in allowed


class ApiGuard:
    """Refuse other sites' origins (403) on the API and the chat's endpoints, and oversized
    bodies (413) on the API.

    CORS alone only stops a browser from reading the answer; the request would still cost a
    model call. So an Origin header that is neither ours nor allowed is refused outright.
    """

    def __init__(self, app: ASGIApp, allowed_origins: list[str], max_body_bytes: int):
        self.app = app
        self.allowed = allowed_origins
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(ORIGIN_CHECKED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin")
        if origin is not None and not origin_allowed(origin.decode("latin-1"), scope, self.allowed):
            await _send_error(send, 403, "forbidden_origin",
                              f"requests from {origin.decode('latin-1')} are not allowed; add it to "
                              "cors_origins (SANAD_CORS_ORIGINS) to embed Sanad there")
            return
        if not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _send_error(send, 413, "too_large", self._too_large())
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge(self._too_large())
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await _send_error(send, 413, "too_large", self._too_large())

    def _too_large(self) -> str:
        return f"the request is larger than {self.max_body // 1024} KB (setting max_request_kb)"


class _BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing lets it through as a 413 and not a 400.
    def __init__(self, message: str):
        super().__init__(413, message)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
