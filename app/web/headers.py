"""Security headers on every HTML page, and the chat page's copy of the widget key.

The chat at `/` is Gradio's page: its configuration is an inline script and its components
evaluate their `js_on_load` code, so its policy allows inline and eval'd scripts from our
own origin only; it loads nothing from elsewhere (no web fonts: offline servers and privacy).
It may not be framed by anyone. `/embed` sets its own, stricter policy (app.web.embed),
framed only by the allowed origins.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings
from app.web.guard import KEY_COOKIE

CHAT_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "media-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
            "frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'")


class PageHeaders:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    self._page(scope, headers)
            await send(message)

        await self.app(scope, receive, with_headers)

    def _page(self, scope: Scope, headers: MutableHeaders) -> None:
        headers.setdefault("Referrer-Policy", "no-referrer")
        if "content-security-policy" in headers:  # /embed: framed by the allowed origins
            return
        headers["Content-Security-Policy"] = CHAT_CSP
        headers["X-Frame-Options"] = "DENY"
        if self.settings.widget_key and scope.get("path") == "/":
            # The chat's own calls to Gradio's API carry the key as this cookie; Strict,
            # so no other site's page can send it.
            headers.append("Set-Cookie", f"{KEY_COOKIE}={self.settings.widget_key}; Path=/; "
                           "HttpOnly; SameSite=Strict")
