"""The Gradio chat at `/`: streamed answers, clickable citations, a sources panel, uploads.

The conversation and the sources panel are `gr.HTML` built by `app.web.render`, where every
text is escaped; a click on a citation button sends only (turn, n) back to Python.
Named endpoints for gradio_client: `/ask` (question, top_k → AnswerResult dict), `/chat`.
"""

from __future__ import annotations

import asyncio

import gradio as gr
from pydantic import ValidationError

from app.service import AnswerResult, Token, Turn, checked_question
from app.web.context import WebContext
from app.web.errors import ApiError, as_api_error, log
from app.web.guard import UPLOADS_OFF
from app.web.render import (
    EMPTY_CONVERSATION,
    SOURCES_PLACEHOLDER,
    render_conversation,
    render_source,
)
from app.web.runner import Queued
from app.web.schemas import AskRequest
from app.web.uploads import keep_uploads, received_uploads
from index.sources import SUPPORTED_SUFFIXES

EXAMPLES = ["What did Mexico request?", "ماذا طلبت المكسيك؟", "Who attended the talks?"]

# A click on a citation button tells Python which one; nothing else leaves the page.
CITATION_CLICKS_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest ? event.target.closest('button.sanad-cite') : null;
  if (!button || !element.contains(button)) return;
  event.preventDefault();
  trigger('click', {turn: Number(button.dataset.turn), n: Number(button.dataset.n)});
});
"""

# Bring the highlighted passage into view inside the article box (not the whole page).
CENTRE_MARK_JS = """
watch('value', () => {
  const box = element.querySelector('.sanad-article');
  const mark = element.querySelector('mark');
  if (box && mark) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
  if (mark) element.scrollIntoView({block: 'nearest'});
});
"""

CSS = """
#sanad-conversation { min-height: 340px; }
.sanad-empty, .sanad-sources-empty { color: var(--body-text-color-subdued); padding: 1rem; }
.sanad-conversation { display: flex; flex-direction: column; gap: 1.25rem; padding: .25rem; }
.sanad-q { background: var(--color-accent-soft); border-radius: 12px; padding: .5rem .8rem;
  font-weight: 600; white-space: pre-wrap; }
.sanad-a { white-space: pre-wrap; line-height: 1.75; padding: .4rem .8rem 0; }
.sanad-streaming::after { content: "▍"; opacity: .6; }
.sanad-wait { color: var(--body-text-color-subdued); font-style: italic; }
.sanad-refused { color: var(--body-text-color-subdued); font-style: italic; }
.sanad-cite { font: inherit; font-size: .85em; font-weight: 600; color: var(--link-text-color, #2563eb);
  background: var(--color-accent-soft); border: 0; border-radius: 4px; padding: 0 .25em;
  margin: 0 .1em; cursor: pointer; }
.sanad-cite:hover, .sanad-cite:focus { outline: 2px solid var(--color-accent); }
.sanad-translation { white-space: pre-wrap; line-height: 1.7; margin: .5rem .8rem 0;
  border-inline-start: 3px solid #f59e0b; padding-inline-start: .6rem; }
.sanad-mt-label { margin: .2rem .8rem 0; font-size: .8em; color: #b45309; }
.sanad-note { margin: .3rem .8rem 0; font-size: .85em; color: var(--body-text-color-subdued); }
.sanad-error { margin: .3rem .8rem 0; color: #b91c1c; font-weight: 600; }
.sanad-evidence { margin: .4rem .8rem 0; font-size: .9em; }
.sanad-evidence summary { cursor: pointer; color: var(--body-text-color-subdued); }
.sanad-evidence ol { list-style: none; padding: 0; margin: .3rem 0 0; }
.sanad-evidence li { margin: .35rem 0; line-height: 1.7; }
.sanad-evidence q { quotes: "«" "»"; }
.sanad-where { color: var(--body-text-color-subdued); font-size: .9em; }
.sanad-evidence .sanad-where { display: block; }
.sanad-source-head { margin-bottom: .5rem; line-height: 1.6; }
.sanad-source-n { font-weight: 700; color: var(--link-text-color, #2563eb); }
.sanad-article { position: relative; max-height: 68vh; overflow-y: auto; white-space: pre-wrap;
  line-height: 1.85; padding: .75rem; border: 1px solid var(--border-color-primary);
  border-radius: 8px; }
.sanad-article mark { background: #fde047; color: #111; border-radius: 3px; padding: .1em 0; }
"""


def _client(request: gr.Request | None) -> str:
    return request.client.host if request is not None and request.client else "unknown"


def shown_error(exc: Exception) -> gr.Error:
    """The chat's message for a failure: the API's message, never exception text or paths."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        return gr.Error(problems)
    mapped = as_api_error(exc)
    if mapped is None:
        log.error("a chat request failed", exc_info=exc)
        return gr.Error("the server failed (an internal error)")
    return gr.Error(mapped.message)


def build_ui(ctx: WebContext) -> gr.Blocks:
    service = ctx.service
    settings = service.settings

    def admitted(question: str, top_k: float | int | None, request: gr.Request | None
                 ) -> tuple[str, int | None]:
        """The REST API's rules at the Gradio door: the same bounds (AskRequest), the same
        question check, the same rate limit (the key is checked by the gate)."""
        body = AskRequest.model_validate({"question": question, "k": top_k})
        question = checked_question(body.question, settings.max_question_chars)
        wait = ctx.limiter.acquire(_client(request))
        if wait:
            message, headers = ctx.limiter.refusal(wait)
            raise ApiError(429, "rate_limited", message, headers)
        return question, body.k

    async def respond(question: str, turns: list[dict], top_k: float, request: gr.Request):
        if not isinstance(question, str) or not question.strip():
            yield render_conversation(turns), turns, ""
            return
        history = [Turn(t["question"], t["result"]["answer"]) for t in turns if t.get("result")]
        entry = {"question": question, "streamed": "", "streamed_translation": "",
                 "result": None, "error": ""}
        turns = [*turns, entry]
        try:
            question, k = admitted(question, top_k, request)
        except Exception as exc:  # noqa: BLE001 - shown in the chat
            entry["error"] = shown_error(exc).message
            yield render_conversation(turns), turns, question  # kept, to edit or ask again
            return
        entry["question"] = question
        yield render_conversation(turns), turns, ""
        try:
            stream = ctx.runner.stream(lambda: service.answer_stream(question, history, k))
            async for item in stream:
                if isinstance(item, Queued):
                    entry["waiting"] = item.position
                elif isinstance(item, Token):
                    entry.pop("waiting", None)
                    key = "streamed_translation" if item.part == "translation" else "streamed"
                    entry[key] += item.text
                elif isinstance(item, AnswerResult):
                    entry.pop("waiting", None)
                    result = item.as_dict()
                    result.pop("retrieved", None)  # not shown; keeps the page state small
                    entry["result"] = result
                yield render_conversation(turns), turns, ""
        except Exception as exc:  # noqa: BLE001 - shown in the chat, not as a stack trace
            entry["error"] = shown_error(exc).message
            yield render_conversation(turns), turns, ""

    def show_source(turns: list[dict], event: gr.EventData) -> str:
        data = getattr(event, "_data", None) or {}
        turn, n = data.get("turn"), data.get("n")
        if not isinstance(turn, int) or not isinstance(n, int) or not 0 <= turn < len(turns):
            return SOURCES_PLACEHOLDER
        result = turns[turn].get("result") or {}
        passages = result.get("passages", [])
        if not 1 <= n <= len(passages):
            return SOURCES_PLACEHOLDER
        passage = passages[n - 1]
        try:
            article = service.article(passage["article_id"])
        except Exception as exc:  # noqa: BLE001 - the quote alone is still worth showing
            if as_api_error(exc) is None:
                raise
            article = None
        return render_source(passage, article["text"] if article else None)

    async def add_articles(files: list[str] | None, token: str | None = None,
                           progress=gr.Progress()) -> str:
        """Admin only: index uploaded files in the background, reporting progress."""
        if not ctx.may_upload(token):
            raise gr.Error("adding articles needs the admin token (SANAD_ADMIN_TOKEN)"
                           if ctx.uploads_open else UPLOADS_OFF)
        if not files:
            return "No files."
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise gr.Error("expected a list of uploaded files")
        received, refused = received_uploads(files, demo.upload_file_set, demo.GRADIO_CACHE)
        config = settings.index_config()
        max_bytes = min(config.max_file_bytes, int(settings.max_upload_mb * 1024 * 1024))
        saved, skipped = keep_uploads(received, config.data_dir / "uploads", max_bytes)
        skipped = refused + skipped
        if not saved:
            return "\n".join(skipped)
        try:
            job = service.add_articles(saved, slot=ctx.runner.batch_slot)
        except Exception as exc:  # noqa: BLE001 - e.g. another upload is being indexed
            raise shown_error(exc) from exc
        while not await asyncio.to_thread(job.wait, 0.5):
            if job.texts_total:
                progress((job.texts_done, job.texts_total), unit="texts",
                         desc=f"Indexing {len(saved)} file(s)")
        return "\n".join([job.summary or "Indexing failed.", *job.problems, *skipped])

    async def ask(question: str, top_k: int = settings.top_k,
                  request: gr.Request = None) -> dict:
        """Answer a question; returns the AnswerResult as a dict (`answer` cites `passages`)."""
        try:
            question, k = admitted(question, top_k, request)
            result = await ctx.runner.call(lambda: service.answer(question, None, k))
        except Exception as exc:  # noqa: BLE001
            raise shown_error(exc) from exc
        return result.as_dict()

    with gr.Blocks(title="Sanad") as demo:
        turns = gr.State([])
        gr.HTML('<div class="sanad-header"><h1 style="margin:0">Sanad <span dir="rtl">سند</span>'
                '</h1><p style="margin:.2rem 0 0">Answers from your articles, every sentence '
                'backed by a cited passage.</p></div>', js_on_load=None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                conversation = gr.HTML(EMPTY_CONVERSATION, elem_id="sanad-conversation",
                                       js_on_load=CITATION_CLICKS_JS, autoscroll=True,
                                       max_height=620, container=True, padding=True)
                with gr.Row():
                    question = gr.Textbox(show_label=False, scale=6, max_lines=4,
                                          elem_id="sanad-question", autofocus=True,
                                          placeholder="Ask about the articles… / اسأل عن المقالات…")
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80,
                                     elem_id="sanad-ask")
                gr.Examples(EXAMPLES, inputs=[question], label="Examples")
                with gr.Accordion("Advanced", open=False):
                    top_k = gr.Slider(1, 20, value=settings.top_k, step=1,
                                      label="Passages to retrieve (top-k)")
                with gr.Accordion("Add articles (.txt, .md, .html)", open=False,
                                  visible=ctx.uploads_open):
                    admin_token = gr.Textbox(label="Admin token", type="password",
                                             visible=settings.admin_token is not None,
                                             elem_id="sanad-admin-token")
                    files = gr.File(file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                                    label="Articles", elem_id="sanad-upload")
                    index_status = gr.Textbox(label="Indexing", interactive=False, lines=3,
                                              elem_id="sanad-index-status")
                new_chat = gr.Button("New conversation", size="sm")
            with gr.Column(scale=2):
                gr.HTML("<h3 style='margin:0'>Sources</h3>", js_on_load=None)
                sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="sanad-sources",
                                  js_on_load=CENTRE_MARK_JS, container=True, padding=True)

        gr.on([send.click, question.submit], respond,
              inputs=[question, turns, top_k], outputs=[conversation, turns, question],
              api_name="chat", concurrency_limit=None)  # the runner queues (app/web/runner.py)
        conversation.click(show_source, inputs=[turns], outputs=[sources], api_name="source",
                           api_visibility="undocumented")
        # Not the model's concurrency group: indexing takes the model batch by batch.
        files.upload(add_articles, inputs=[files, admin_token], outputs=[index_status],
                     api_name="add_articles", concurrency_limit=1, concurrency_id="uploads")
        new_chat.click(lambda: ([], EMPTY_CONVERSATION, SOURCES_PLACEHOLDER),
                       outputs=[turns, conversation, sources], api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_limit=None)
    # Gradio's queue passes every event on at once; the runner's queue is the one that waits.
    demo.queue(default_concurrency_limit=None)
    return demo
