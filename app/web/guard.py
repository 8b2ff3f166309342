"""The one gate in front of every door: REST, SSE, OpenAI-compatible, Gradio's API and queue,
and the widget (which talks to /api/chat).

Starlette's TrustedHostMiddleware refuses requests naming a host we do not serve (the
DNS-rebinding shape), CORSMiddleware answers browsers' preflights, and `limits` counts
rates. What is ours stays here: the origin rule (compared with the configured origins and
the address the server was told to serve on, never with the request's own Host header),
the widget key on every door, the body size on the JSON API, and who may upload.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings
from app.web.errors import error_body

API_PREFIXES = ("/api/", "/v1/")
GRADIO_PREFIX = "/gradio_api/"
GRADIO_UPLOAD = "/gradio_api/upload"
ORIGIN_CHECKED_PREFIXES = (*API_PREFIXES, GRADIO_PREFIX)
KEY_HEADER = "x-sanad-key"
KEY_COOKIE = "sanad_key"  # the chat page's copy of the widget key (SameSite=Strict)
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Listen:
    """The address `sanad serve` was told to listen on."""

    host: str
    port: int

    @property
    def loopback_only(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def names(self) -> list[str]:
        """Host names (with IPv6 in brackets) under which this address is reached."""
        if self.loopback_only:
            return list(LOOPBACK_NAMES)
        if self.host in WILDCARD_HOSTS:
            found = {socket.gethostname()}
            with contextlib.suppress(OSError):
                found.update(socket.gethostbyname_ex(socket.gethostname())[2])
            return [*LOOPBACK_NAMES, *sorted(found)]
        return [f"[{self.host}]" if ":" in self.host else self.host]


def own_origins(settings: Settings, listen: Listen | None) -> list[str]:
    """Our own origins: the public URL and the listening address (never a request's Host)."""
    origins = [settings.public_url] if settings.public_url else []
    if listen is not None:
        origins += [f"http://{name}:{listen.port}".lower() for name in listen.names()]
    return origins


def trusted_hosts(settings: Settings, listen: Listen | None) -> list[str] | None:
    """Host header values to accept (TrustedHostMiddleware), or None for any.

    Listening on all interfaces without a public URL, the names visitors use are unknown:
    any Host is accepted, and the origin rule still refuses other sites' pages. (Starlette
    compares the Host header up to its first colon, so bracketed IPv6 names cannot be listed.)
    """
    if listen is None or (listen.host in WILDCARD_HOSTS and not settings.public_url):
        return None
    names = list(LOOPBACK_NAMES) if listen.host in WILDCARD_HOSTS else listen.names()
    if settings.public_url:
        names.append(urlsplit(settings.public_url).hostname or "")
    return sorted({n for n in names if n and not n.startswith("[")})


def presented_key(headers: Mapping[str, str] | Headers, cookies: Mapping[str, str]) -> str | None:
    """The widget key a request carries: X-Sanad-Key, `Authorization: Bearer` (OpenAI
    clients), or the chat page's cookie."""
    given = headers.get(KEY_HEADER)
    authorization = headers.get("authorization") or ""
    if given is None and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    return given if given is not None else cookies.get(KEY_COOKIE)


def key_valid(settings: Settings, given: str | None) -> bool:
    if not settings.widget_key:
        return True
    return bool(given) and secrets.compare_digest(given.encode(), settings.widget_key.encode())


def token_valid(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())


class RateLimiter:
    """Requests per client in a moving window (the `limits` package, in memory)."""

    def __init__(self, item: RateLimitItem | None, namespace: str):
        self.item = item
        self.namespace = namespace
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @classmethod
    def per_minute(cls, count: int, namespace: str = "answers") -> RateLimiter:
        return cls(RateLimitItemPerMinute(count) if count > 0 else None, namespace)

    @classmethod
    def per_hour(cls, count: int, namespace: str = "uploads") -> RateLimiter:
        return cls(RateLimitItemPerHour(count) if count > 0 else None, namespace)

    def acquire(self, client: str) -> int:
        """0 when the request may go ahead, else the whole seconds until one could."""
        if self.item is None or self._limiter.hit(self.item, self.namespace, client):
            return 0
        reset = self._limiter.get_window_stats(self.item, self.namespace, client).reset_time
        return max(1, math.ceil(reset - time.time()))

    def refusal(self, wait: int, what: str = "questions") -> tuple[str, dict[str, str]]:
        """The 429 message and headers: the message names the same seconds as Retry-After."""
        amount = self.item.amount if self.item else 0
        per = "an hour" if isinstance(self.item, RateLimitItemPerHour) else "a minute"
        return (f"too many {what}; the limit is {amount} {per}, try again in {wait} s",
                {"Retry-After": str(wait)})


class ApiGuard:
    """Origins (403) on the API and Gradio's endpoints, the widget key (401) on Gradio's
    endpoints (the REST routes check it as a dependency, so /docs shows the header), uploads
    (403 when off, 429 past the rate), and oversized bodies (413) on the JSON API.

    CORS alone only stops a browser from reading the answer; the request would still cost a
    model call. So an Origin header that is neither ours nor allowed is refused outright.
    """

    def __init__(self, app: ASGIApp, settings: Settings, own: list[str], uploads_open: bool,
                 upload_limiter: RateLimiter):
        self.app = app
        self.settings = settings
        self.allowed = {*own, *settings.cors_origins}
        self.max_body = settings.max_request_kb * 1024
        self.uploads_open = uploads_open
        self.upload_limiter = upload_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(ORIGIN_CHECKED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/").lower() not in self.allowed:
            await send_error(send, 403, "forbidden_origin",
                             "requests from this origin are not allowed; add it to "
                             "cors_origins (SANAD_CORS_ORIGINS) to embed Sanad there")
            return
        if path.startswith(GRADIO_PREFIX):
            await self._gradio(scope, receive, send, headers)
            return
        await self._limited_body(scope, receive, send, headers)

    async def _gradio(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        if not key_valid(self.settings, presented_key(headers, cookie_parser(headers.get("cookie", "")))):
            await send_error(send, 401, "invalid_key", "this server needs a valid X-Sanad-Key header")
            return
        if scope["path"].startswith(GRADIO_UPLOAD) and scope.get("method") == "POST":
            if not self.uploads_open:
                await send_error(send, 403, "uploads_off", UPLOADS_OFF)
                return
            client = scope.get("client")
            wait = self.upload_limiter.acquire(client[0] if client else "unknown")
            if wait:
                message, extra = self.upload_limiter.refusal(wait, "uploads")
                await send_error(send, 429, "rate_limited", message, extra)
                return
        await self.app(scope, receive, send)

    async def _limited_body(self, scope: Scope, receive: Receive, send: Send,
                            headers: Headers) -> None:
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await send_error(send, 413, "too_large", self._too_large())
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
                await send_error(send, 413, "too_large", self._too_large())

    def _too_large(self) -> str:
        return f"the request is larger than {self.max_body // 1024} KB (setting max_request_kb)"


UPLOADS_OFF = ("adding articles through the web is off: set SANAD_ADMIN_TOKEN (or serve on "
               "loopback only)")


class _BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing lets it through as a 413 and not a 400.
    def __init__(self, message: str):
        super().__init__(413, message)


async def send_error(send: Send, status: int, code: str, message: str,
                     headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())]})
    await send({"type": "http.response.body", "body": body})
