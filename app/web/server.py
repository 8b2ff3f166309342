"""The web app: the API, the widget and the Gradio chat on one FastAPI app, served by uvicorn."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app.service import SanadService
from app.settings import Settings
from app.web.api import build_router
from app.web.context import WebContext
from app.web.embed import build_embed_router
from app.web.errors import as_api_error, install_error_handlers
from app.web.guard import ApiGuard, Listen, trusted_hosts
from app.web.headers import PageHeaders

log = logging.getLogger("sanad.web")
# System fonts only: the page's CSP loads nothing from other sites.
FONTS = ("ui-sans-serif", "system-ui", "sans-serif")


def create_app(settings: Settings, service: SanadService | None = None, *, ui: bool = True,
               warm_up: bool = True, listen: Listen | None = None) -> FastAPI:
    """The whole web app. `service` may be shared (tests share one loaded model); with
    other settings than its own, a service with these settings shares its embedding model.
    `listen` is the address `sanad serve` listens on: it names our own origin and hosts."""
    if service is None:
        service = SanadService(settings)
    elif service.settings != settings:
        service = SanadService(settings, embed_model=service.embed_model)
    ctx = WebContext(service, listen)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        task = asyncio.create_task(_warm_up(ctx)) if warm_up else None
        yield
        if task is not None:
            task.cancel()
        ctx.runner.shutdown()

    app = FastAPI(title="Sanad", version="0.1.0", lifespan=lifespan, redoc_url=None,
                  description="Answers from your articles; every answer cites its passages. "
                  "Errors are `{\"error\": {\"code\", \"message\"}}`.")
    app.state.sanad = ctx
    install_error_handlers(app)
    app.include_router(build_router(ctx))
    app.include_router(build_embed_router(settings))
    if ui:
        import gradio as gr

        from app.web.ui import CSS, build_ui

        blocks = build_ui(ctx)
        app = gr.mount_gradio_app(app, blocks, path="/", css=CSS,
                                  theme=gr.themes.Soft(primary_hue="teal", font=FONTS),
                                  max_file_size=int(settings.max_upload_mb * 1024 * 1024),
                                  footer_links=["api"], ssr_mode=False, show_error=False)
        # Gradio checks that a FileData path was uploaded only once `has_launched` is set,
        # which mount_gradio_app never does (see app.web.uploads).
        blocks.has_launched = True
    # Added last = runs first: hosts, then page headers, then CORS (which answers
    # preflights), then our gate.
    app.add_middleware(ApiGuard, settings=settings, own=ctx.own_origins,
                       uploads_open=ctx.uploads_open, upload_limiter=ctx.upload_limiter)
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                       allow_methods=["GET", "POST"], allow_credentials=False,
                       allow_headers=["Content-Type", "X-Sanad-Key", "Authorization"],
                       max_age=600)
    app.add_middleware(PageHeaders, settings=settings)
    hosts = trusted_hosts(settings, listen)
    if hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    return app


async def _warm_up(ctx: WebContext) -> None:
    """Load the index and models in the background, so the first question is not slow."""
    try:
        await ctx.runner.call(ctx.warm_up)
        log.info("Sanad is ready (answers by: %s)", ctx.service.health()["answering_with"])
    except Exception as exc:  # noqa: BLE001 - the server still starts; requests report it
        mapped = as_api_error(exc)
        if mapped is None:
            log.exception("warming up failed")
        else:
            log.warning("not ready yet (%s)", mapped.code)  # as_api_error logged why


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    app = create_app(settings, listen=Listen(host, port))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"Sanad is serving the chat at http://{shown}:{port}/  "
          f"(API docs: http://{shown}:{port}/docs, widget: http://{shown}:{port}/widget.js)",
          flush=True)
    ctx: WebContext = app.state.sanad
    uploads = ("on, with the admin token" if settings.admin_token is not None
               else "on: only this machine can reach the server" if ctx.uploads_open
               else "off (set SANAD_ADMIN_TOKEN to allow them)")
    print(f"Adding articles through the web: {uploads}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
