"""The Gradio chat at `/`: streamed answers, clickable citations, a sources panel, uploads.

The conversation and the sources panel are `gr.HTML` built by `app.web.render`, where every
text is escaped; a click on a citation button sends only (turn, n) back to Python.
Named endpoints for gradio_client: `/ask` (question, top_k → AnswerResult dict), `/chat`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr

from app.service import AnswerResult, Token, Turn
from app.web.context import BACKEND_CHOICES, WebContext
from app.web.errors import as_api_error
from app.web.render import (
    EMPTY_CONVERSATION,
    SOURCES_PLACEHOLDER,
    render_conversation,
    render_source,
)
from index.sources import SUPPORTED_SUFFIXES, SourceError, read_article

EXAMPLES = ["What did Mexico request?", "ماذا طلبت المكسيك؟", "Who attended the talks?"]
UPLOAD_TYPES = list(SUPPORTED_SUFFIXES)

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


def keep_uploads(files: list[str], uploads: Path, max_bytes: int) -> tuple[list[Path], list[str]]:
    """(copies in `uploads` of the files that read as articles, a line for each other one).

    A copy takes the upload's base name, so a `../` in a name cannot leave the folder, and
    the same name again updates that article. A file that cannot be indexed is refused
    before it is copied: it never replaces a good upload of the same name.
    """
    uploads.mkdir(parents=True, exist_ok=True)
    saved, refused = [], []
    for raw in files:
        name = Path(raw).name
        if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            refused.append(f"skipped {name}: not a .txt, .md or .html file")
            continue
        try:
            read_article(Path(raw), max_bytes)
        except SourceError as err:
            refused.append(f"skipped {name}: {err.reason}")
            continue
        target = uploads / name
        shutil.copyfile(raw, target)
        saved.append(target)
    return saved, refused


def _client(request: gr.Request | None) -> str:
    return request.client.host if request is not None and request.client else "unknown"


def build_ui(ctx: WebContext) -> gr.Blocks:
    settings = ctx.settings

    def rate_limited(request: gr.Request | None) -> str:
        wait = ctx.limiter.acquire(_client(request))
        return f"Too many questions; try again in {wait:.0f} s." if wait > 0 else ""

    async def respond(question: str, turns: list[dict], top_k: float, backend: str,
                      request: gr.Request):
        question = (question or "").strip()
        if not question:
            yield render_conversation(turns), turns, ""
            return
        history = [Turn(t["question"], t["result"]["answer"]) for t in turns if t.get("result")]
        entry = {"question": question, "streamed": "", "streamed_translation": "",
                 "result": None, "error": ""}
        turns = [*turns, entry]
        if problem := rate_limited(request):
            entry["error"] = problem
            yield render_conversation(turns), turns, question
            return
        yield render_conversation(turns), turns, ""
        try:
            stream = ctx.runner.stream(
                lambda: ctx.answer_stream(question, history, int(top_k), backend))
            async for item in stream:
                if isinstance(item, Token):
                    key = "streamed_translation" if item.part == "translation" else "streamed"
                    entry[key] += item.text
                elif isinstance(item, AnswerResult):
                    result = item.as_dict()
                    result.pop("retrieved", None)  # not shown; keeps the page state small
                    entry["result"] = result
                yield render_conversation(turns), turns, ""
        except Exception as exc:  # noqa: BLE001 - shown in the chat, not as a stack trace
            mapped = as_api_error(exc)
            if mapped is None:
                raise
            entry["error"] = mapped.message
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
            article = ctx.service.searcher().data.articles.get(passage["article_id"])
        except Exception as exc:  # noqa: BLE001 - the quote alone is still worth showing
            if as_api_error(exc) is None:
                raise
            article = None
        return render_source(passage, article)

    async def add_articles(files: list[str] | None, progress=gr.Progress(track_tqdm=True)) -> str:
        if not files:
            return "No files."
        config = ctx.service.settings.index_config()
        saved, skipped = keep_uploads(files, config.data_dir / "uploads", config.max_file_bytes)
        if not saved:
            return "\n".join(skipped)
        progress(0, desc=f"Indexing {len(saved)} file(s)")
        log: list[str] = []
        try:
            report = await ctx.runner.call(
                lambda: ctx.service.index(saved, progress=True, log=log.append))
        except Exception as exc:  # noqa: BLE001 - reported in the status box
            mapped = as_api_error(exc)
            if mapped is None:
                raise
            return f"Indexing failed: {mapped.message}"
        lines = [f"{report.summary()} in {report.seconds:.1f} s"]
        lines += [f"skipped {e.path and Path(e.path).name}: {e.reason}" for e in report.errors]
        lines += skipped
        return "\n".join(lines)

    async def ask(question: str, top_k: int = settings.top_k,
                  request: gr.Request = None) -> dict:
        """Answer a question; returns the AnswerResult as a dict (`answer` cites `passages`)."""
        if problem := rate_limited(request):
            raise gr.Error(problem)
        try:
            result = await ctx.runner.call(
                lambda: ctx.answers().answer(question, None, int(top_k)))
        except Exception as exc:  # noqa: BLE001
            mapped = as_api_error(exc)
            if mapped is None:
                raise
            raise gr.Error(mapped.message) from exc
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
                    backend = gr.Dropdown(list(BACKEND_CHOICES), value=ctx.default_backend,
                                          label="Answer backend")
                with gr.Accordion("Add articles (.txt, .md, .html)", open=False):
                    files = gr.File(file_count="multiple", file_types=UPLOAD_TYPES,
                                    label="Articles", elem_id="sanad-upload")
                    index_status = gr.Textbox(label="Indexing", interactive=False, lines=3,
                                              elem_id="sanad-index-status")
                new_chat = gr.Button("New conversation", size="sm")
            with gr.Column(scale=2):
                gr.HTML("<h3 style='margin:0'>Sources</h3>", js_on_load=None)
                sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="sanad-sources",
                                  js_on_load=CENTRE_MARK_JS, container=True, padding=True)

        gr.on([send.click, question.submit], respond,
              inputs=[question, turns, top_k, backend], outputs=[conversation, turns, question],
              api_name="chat", concurrency_limit=1, concurrency_id="model")
        conversation.click(show_source, inputs=[turns], outputs=[sources], api_name="source",
                           api_visibility="undocumented")
        files.upload(add_articles, inputs=[files], outputs=[index_status],
                     api_name="add_articles", concurrency_limit=1, concurrency_id="model")
        new_chat.click(lambda: ([], EMPTY_CONVERSATION, SOURCES_PLACEHOLDER),
                       outputs=[turns, conversation, sources], api_visibility="private")
        gr.api(ask, api_name="ask")
    demo.queue(max_size=max(2, settings.max_waiting_answers * 2))
    return demo
