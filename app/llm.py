"""LLM backends behind one switch, all through llama-index's LLM classes.

- local: llama.cpp running the fetched Qwen2.5-Coder-1.5B-Instruct GGUF
- openai: any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, OpenAI)
- ollama: an Ollama server
- extractive: no LLM at all; answers quote the passages (always available)
"""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from llama_index.core.llms import LLM, ChatMessage

from app.kept_prompt import KeptPrefixes
from app.settings import Settings
from index import models

BACKENDS = ("local", "openai", "ollama", "extractive")
# Settings of a sampled reply (`Backend.sample`): other candidates of a short rendering.
SAMPLING = {"temperature": 0.8, "top_p": 0.95}
# Backends strong enough to write the answer directly in the question's language.
STRONG_BACKENDS = {"openai", "ollama"}


class LLMUnavailable(RuntimeError):
    """The configured backend cannot be used; the message says why and what to do."""


@dataclass
class Backend:
    name: str
    llm: LLM | None  # None for extractive
    notice: str = ""
    # For side calls (condensing a follow-up, rendering an answer): another LLM, if any.
    side_llm: LLM | None = None
    # The local backend's one llama.cpp context starts every call from its prompt's fixed
    # part evaluated alone (app/kept_prompt.py): the same answer whatever came before.
    kept_prefixes: KeptPrefixes | None = None

    def stream(self, messages: Sequence[ChatMessage], side: bool = False) -> Iterator[str]:
        """Text deltas of the model's reply; connection problems become LLMUnavailable."""
        llm = self._ready(messages, side)
        with self._reporting_unreachable():
            for chunk in llm.stream_chat(list(messages)):
                if chunk.delta:
                    yield chunk.delta

    def complete(self, messages: Sequence[ChatMessage], side: bool = False) -> str:
        return "".join(self.stream(messages, side)).strip()

    @property
    def can_sample(self) -> bool:
        """Whether `sample` draws replies: llama-index's Ollama client takes sampling
        settings only when it is made, so there a "sample" would be the greedy reply."""
        return self.llm is not None and self.name != "ollama"

    def sample(self, messages: Sequence[ChatMessage], seed: int, side: bool = False) -> str:
        """One reply drawn at SAMPLING's temperature with `seed`: another candidate beside
        the greedy one, the same for the same seed (see `can_sample`)."""
        llm = self._ready(messages, side)
        with self._reporting_unreachable():
            if hasattr(llm, "_model") and hasattr(llm, "generate_kwargs"):
                # llama-index's LlamaCPP drops per-call settings: ask llama.cpp itself
                # (top_k 40, llama.cpp's default, in place of the greedy top_k 1)
                reply = llm._model(prompt=llm.messages_to_prompt(messages),
                                   **{**llm.generate_kwargs, "stream": False,
                                      "max_tokens": llm.max_new_tokens, "seed": seed,
                                      "top_k": 40, **SAMPLING})
                return reply["choices"][0]["text"].strip()
            return (llm.chat(list(messages), seed=seed, **SAMPLING).message.content
                    or "").strip()

    def _ready(self, messages: Sequence[ChatMessage], side: bool) -> LLM:
        """The LLM that answers (the side one, if any, for side calls), prepared."""
        llm = (self.side_llm or self.llm) if side else self.llm
        assert llm is not None
        if llm is self.llm:
            self.prepare(messages)
        return llm

    @contextmanager
    def _reporting_unreachable(self) -> Iterator[None]:
        """A client library's connection error, whatever its type, as LLMUnavailable."""
        try:
            yield
        except LLMUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - every client library has its own errors
            if _looks_like_connection_error(exc):
                raise LLMUnavailable(f"the {self.name} LLM server cannot be reached ({exc}); "
                                     "start it, fix SANAD_LLM_BASE_URL, or set "
                                     "SANAD_LLM_BACKEND=extractive") from exc
            raise

    def prepare(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate the fixed part of prompts like `messages` now, before a question needs
        it (the local backend's one context); other backends have nothing to prepare."""
        if self.kept_prefixes is not None:
            self.kept_prefixes.before_call(chatml_fixed_part(messages))


def _looks_like_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e}
    return bool(names & {"ConnectionError", "ConnectError", "APIConnectionError",
                         "APITimeoutError", "ConnectTimeout", "ReadTimeout", "TimeoutException",
                         "ConnectionRefusedError", "gaierror"})


def _chatml_turn(message: ChatMessage) -> str:
    return f"<|im_start|>{message.role.value}\n{message.content}<|im_end|>\n"


def chatml_prompt(messages: Sequence[ChatMessage]) -> str:
    """Qwen's chat template (ChatML), for llama.cpp through llama-index's completion API."""
    return "".join(map(_chatml_turn, messages)) + "<|im_start|>assistant\n"


def chatml_fixed_part(messages: Sequence[ChatMessage]) -> str:
    """The start of `chatml_prompt(messages)` that does not depend on the question: every
    message before the last (the system prompt and worked examples)."""
    return "".join(map(_chatml_turn, messages[:-1]))


def local_available(settings: Settings) -> tuple[bool, str]:
    if importlib.util.find_spec("llama_cpp") is None:
        return False, "llama-cpp-python is not installed (pip install -e '.[local]')"
    if settings.llm_model_path is None and not models.is_fetched(
            settings.models_dir, models.QWEN_CODER_GGUF):
        return False, f"the local model is not fetched (sanad models fetch {models.QWEN_CODER_GGUF})"
    return True, ""


def _check_reachable(url: str, timeout: float = 3.0) -> None:
    """Fail in seconds, not after a client's long retry loop, when nothing listens."""
    parsed = urlparse(url)
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise LLMUnavailable(
            f"cannot reach the LLM server at {url} ({exc.strerror or exc}); start it, fix "
            "SANAD_LLM_BASE_URL, or use SANAD_LLM_BACKEND=extractive"
        ) from None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty when they cannot be read)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def extra_buffers_wanted(setting: str, flags: set[str]) -> bool:
    """Whether llama.cpp should repack the weights (`auto`: only where that was not measured
    to hurt). With AMX this llama-cpp-python build crashed at the first prompt; on an AVX-512
    CPU the repacked weights evaluated prompts more slowly than the mapped ones
    (docs/benchmarks.md), and cost 0.95 GB more."""
    if setting != "auto":
        return setting == "on"
    return not flags & {"amx_int8", "amx_tile", "avx512f"}


_loading = threading.Lock()  # the defaults are swapped module-wide: one load at a time


@contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """llama-cpp-python's Llama() takes no argument for `use_extra_bufts`: it reads the
    defaults from `llama_model_default_params()`, so that is swapped while a model loads.

    With extra buffers llama.cpp's CPU backend copies the weights into layouts for the CPU
    (AMX tiles, AVX blocks) next to the memory-mapped file, nearly doubling the model's
    memory; without them the weights stay in the mapped file, shared with the page cache,
    and prompts are evaluated more slowly.
    """
    import llama_cpp.llama_cpp as native

    with _loading:
        defaults = native.llama_model_default_params

        def params():
            found = defaults()
            found.use_extra_bufts = use_extra_bufts
            return found

        native.llama_model_default_params = params
        try:
            yield
        finally:
            native.llama_model_default_params = defaults


def _make_local(settings: Settings) -> LLM:
    from llama_index.llms.llama_cpp import LlamaCPP

    path = settings.llm_model_path or models.model_path(settings.models_dir,
                                                        models.QWEN_CODER_GGUF)
    model_kwargs = {"n_threads": settings.threads or None, "n_batch": 256, "seed": 0}
    with _model_params(extra_buffers_wanted(settings.llm_extra_buffers, cpu_flags())):
        return LlamaCPP(
            model_path=str(path), temperature=0.0, max_new_tokens=settings.llm_max_tokens,
            context_window=settings.llm_context, verbose=False,
            generate_kwargs={"top_k": 1, "repeat_penalty": 1.05,
                             "stop": ["<|im_end|>", "<|endoftext|>"]},
            model_kwargs={k: v for k, v in model_kwargs.items() if v is not None},
            messages_to_prompt=chatml_prompt,
            completion_to_prompt=lambda text: chatml_prompt([ChatMessage(role="user",
                                                                         content=text)]),
        )


def make_backend(settings: Settings) -> Backend:
    name = settings.llm_backend
    notice = ""
    if name == "auto":
        ok, why = local_available(settings)
        if ok:
            name = "local"
        else:
            name, notice = "extractive", f"note: answering without an LLM (extractive): {why}"
    if name == "extractive":
        return Backend("extractive", None, notice)
    if name == "local":
        ok, why = local_available(settings)
        if not ok:
            raise LLMUnavailable(f"local backend unavailable: {why}")
        llm = _make_local(settings)
        kept = KeptPrefixes(llm._model) if settings.llm_side_context else None
        return Backend("local", llm, notice, kept_prefixes=kept)
    if name == "openai":
        base = settings.llm_base_url or "http://127.0.0.1:8000/v1"
        _check_reachable(base)
        from llama_index.llms.openai_like import OpenAILike

        llm = OpenAILike(model=settings.llm_model or "default", api_base=base,
                         api_key=settings.llm_api_key or "not-needed", is_chat_model=True,
                         temperature=0.0, max_tokens=settings.llm_max_tokens,
                         timeout=settings.llm_timeout, max_retries=0,
                         context_window=settings.llm_context)
        return Backend("openai", llm, notice)
    if name == "ollama":
        base = settings.llm_base_url or "http://127.0.0.1:11434"
        _check_reachable(base)
        from llama_index.llms.ollama import Ollama

        llm = Ollama(model=settings.llm_model or "qwen2.5:7b-instruct", base_url=base,
                     temperature=0.0, request_timeout=settings.llm_timeout,
                     context_window=settings.llm_context)
        return Backend("ollama", llm, notice)
    raise LLMUnavailable(f"unknown LLM backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
