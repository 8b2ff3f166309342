"""The embeddable widget: /widget.js and /widget.css, and the iframe page /embed."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse

from app.settings import Settings

WIDGET_DIR = Path(__file__).resolve().parent / "widget"
# Sites embed the script from their own pages: it must load cross-site and may be cached.
STATIC_HEADERS = {"Cache-Control": "public, max-age=300",
                  "Cross-Origin-Resource-Policy": "cross-origin",
                  "X-Content-Type-Options": "nosniff"}


def embed_csp(settings: Settings) -> str:
    """Only our own scripts, styles and API; framed only by the allowed origins."""
    ancestors = " ".join(settings.cors_origins) or "'none'"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            f"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}")


def build_embed_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["widget"])
    page = (WIDGET_DIR / "embed.html").read_text(encoding="utf-8")

    @router.get("/widget.js", summary="The chat widget script", response_class=FileResponse)
    async def widget_js() -> FileResponse:
        return FileResponse(WIDGET_DIR / "widget.js", media_type="text/javascript; charset=utf-8",
                            headers=STATIC_HEADERS)

    @router.get("/widget.css", summary="The widget's styles (inside its Shadow DOM)",
                response_class=FileResponse)
    async def widget_css() -> FileResponse:
        return FileResponse(WIDGET_DIR / "widget.css", media_type="text/css; charset=utf-8",
                            headers=STATIC_HEADERS)

    @router.get("/embed", response_class=HTMLResponse,
                summary="The chat as a page, for an <iframe> where a script cannot go")
    async def embed(key: str = Query("", max_length=200),
                    title: str = Query("Ask Sanad", max_length=120)) -> HTMLResponse:
        values = {"title": escape(title, quote=True), "key": escape(key, quote=True)}
        html = re.sub(r"\{\{(title|key)\}\}", lambda m: values[m.group(1)], page)
        return HTMLResponse(html, headers={"Content-Security-Policy": embed_csp(settings),
                                           "X-Content-Type-Options": "nosniff",
                                           "Referrer-Policy": "no-referrer"})

    return router
