"""The embedding model: resolved from settings, loaded once, seen through llama-index."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from index import models
from index.offline import stay_offline
from index.text import WORD


class EmbedderError(RuntimeError):
    """The configured embedding model cannot be found or loaded; the message says why."""


@dataclass(frozen=True)
class EmbedderIdentity:
    """What the manifest records, so an index is never searched with another model."""

    name: str
    hash: str
    dim: int

    def as_dict(self) -> dict:
        return {"name": self.name, "hash": self.hash, "dim": self.dim}


class Embedder:
    """An embedding model as the index uses it: documents, queries, tokens, identity.

    Owns the llama-index model (`model`), what the manifest records of it (`identity`),
    what embeds several questions in one call (`query_model`: a sentence-transformers
    model answering `encode(..., prompt_name="query")`, the model's own or its float32
    twin, `query_twin`) and the token counter that sizes chunks the way the model will
    see them.
    """

    def __init__(self, model: BaseEmbedding, identity: EmbedderIdentity,
                 count_tokens: Callable[[str], int], *, query_model=None,
                 query_twin: bool = False):
        self.model = model
        self.identity = identity
        self._count_tokens = count_tokens
        self._query_model = query_model
        self._query_twin = query_twin and query_model is not None

    @property
    def dim(self) -> int:
        return self.identity.dim

    @property
    def has_query_twin(self) -> bool:
        """Whether queries run on a float32 twin of the model (see `_float32_twin`)."""
        return self._query_twin

    def count_tokens(self, text: str) -> int:
        return self._count_tokens(text)

    def embed_documents(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """One normalised float32 row per text, in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Batches of similar length waste less work on padding; restore the order afterwards.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = self.model.get_text_embedding_batch([texts[i] for i in order],
                                                      show_progress=progress)
        matrix = np.empty((len(texts), len(vectors[0])), dtype=np.float32)
        matrix[order] = to_matrix(vectors)
        return matrix

    def embed_query(self, text: str) -> np.ndarray:
        """The normalised float32 vector of a question."""
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """One normalised float32 row per question, in order, in one model call when the
        query model is there (a server batches the questions that arrive together)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._query_model is None:
            return np.concatenate([to_matrix(self.model.get_query_embedding(t)) for t in texts])
        # What llama-index's HuggingFaceEmbedding does for a query, for all of them at once.
        vectors = self._query_model.encode(list(texts), prompt_name="query",
                                           normalize_embeddings=True, show_progress_bar=False,
                                           batch_size=max(len(texts), 1))
        return to_matrix(vectors)

    def word_vectors(self, texts: list[str]) -> list[dict[str, np.ndarray]] | None:
        """Each text's words (as `index.text.WORD` finds them), each a unit vector: the
        mean of its tokens' vectors as the model reads the whole text, before pooling. A
        word read in its sentence often matches its translation more surely than the word
        alone ("teacher" and المعلّم in "the spiritual teacher", المعلّم الروحي). None
        when the model cannot give token vectors (an embedding server)."""
        model = getattr(self, "_query_model", None)
        if model is None or not texts:
            return None
        tokenizer = model.tokenizer
        outputs = model.encode(list(texts), output_value="token_embeddings",
                               convert_to_numpy=False, show_progress_bar=False,
                               batch_size=max(len(texts), 1))
        result = []
        for text, tokens in zip(texts, outputs, strict=True):
            spans = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
            vectors = tokens.float().cpu().numpy()
            words: dict[str, np.ndarray] = {}
            for match in WORD.finditer(text):
                start, end = match.span()
                rows = [i for i, (a, b) in enumerate(spans[:len(vectors)])
                        if b > a and a < end and b > start]
                if rows and match.group(0) not in words:
                    mean = vectors[rows].mean(axis=0)
                    words[match.group(0)] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            result.append(words)
        return result


class LazyEmbedder(Embedder):
    """An Embedder known by its identity now and loaded by `load` when first used.

    Indexing a folder where nothing changed then never loads the model.
    """

    def __init__(self, identity: EmbedderIdentity, load: Callable[[], Embedder]):
        self.identity = identity
        self._load = load
        self._loaded: Embedder | None = None

    def loaded(self) -> Embedder:
        if self._loaded is None:
            self._loaded = self._load()
            if self._loaded.identity != self.identity:
                raise EmbedderError(f"the model loaded as {self._loaded.identity} was described "
                                    f"as {self.identity}")
        return self._loaded

    @property
    def model(self) -> BaseEmbedding:  # type: ignore[override]
        return self.loaded().model

    def count_tokens(self, text: str) -> int:
        return self.loaded().count_tokens(text)

    def embed_documents(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self.loaded().embed_documents(texts, progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.loaded().embed_query(text)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.loaded().embed_queries(texts)

    def word_vectors(self, texts: list[str]) -> list[dict[str, np.ndarray]] | None:
        return self.loaded().word_vectors(texts)


def resolve_model(ref: str, models_dir: Path) -> tuple[str, str]:
    """(what to load, a hash that identifies it) for a model alias, folder or hub name."""
    if ref in models.SPECS:
        if not models.is_fetched(models_dir, ref):
            raise EmbedderError(
                f"embedding model {ref!r} is not in {models_dir}. Run `sanad models fetch` "
                "(or set SANAD_EMBED_MODEL to a sentence-transformers folder or name)."
            )
        spec = models.SPECS[ref]
        return str(models.model_path(models_dir, ref)), spec.sha256[spec.main_file]
    folder = Path(ref).expanduser()
    if folder.is_dir():
        return str(folder), _folder_fingerprint(folder)
    # A hub name: sentence-transformers resolves it (and fails clearly when offline).
    return ref, hashlib.sha256(ref.encode()).hexdigest()


def _folder_fingerprint(folder: Path) -> str:
    """Cheap identity of a model folder: names and sizes of its files, and its small configs."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        digest.update(f"{rel}\0{path.stat().st_size}\n".encode())
        if path.suffix == ".json" and path.stat().st_size < 1_000_000:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def builtin_prompts(folder: str) -> tuple[str | None, str | None]:
    """The model's own query/document prompts, if its folder declares them."""
    config = Path(folder) / "config_sentence_transformers.json"
    try:
        prompts = json.loads(config.read_text()).get("prompts", {})
    except (OSError, ValueError):
        return None, None
    return prompts.get("query"), prompts.get("document") or prompts.get("passage")


def describe(ref: str, models_dir: Path) -> dict:
    """{name, hash, dim} of a model without loading it (dim from its folder's config)."""
    target, model_hash = resolve_model(ref, models_dir)
    dim = None
    dense = sorted(Path(target).glob("*_Dense/config.json")) if Path(target).is_dir() else []
    try:
        if dense:
            dim = json.loads(dense[-1].read_text())["out_features"]
        else:
            dim = json.loads((Path(target) / "config.json").read_text())["hidden_size"]
    except (OSError, ValueError, KeyError):
        pass
    name = ref if ref in models.SPECS else Path(target).name or ref
    return {"name": name, "hash": model_hash, "dim": dim}


def load_embedder(ref: str, models_dir: Path, *, dtype: str = "bfloat16",
                  batch_size: int = 32, threads: int | None = None,
                  query_twin: bool = False) -> Embedder:
    """The model `ref` through llama-index, running sentence-transformers on the CPU.

    Questions are embedded by the sentence-transformers model itself, several in one call;
    `query_twin` adds a float32 copy of a bfloat16 model's layers for them
    (`_float32_twin`): slightly faster queries for about 0.6 GB more memory.
    """
    stay_offline()
    import torch
    import transformers
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    if threads:
        torch.set_num_threads(threads)
    target, model_hash = resolve_model(ref, models_dir)
    query_prompt, doc_prompt = builtin_prompts(target)
    torch_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}.get(dtype)
    if torch_dtype is None:
        raise EmbedderError(f"embed_dtype must be bfloat16 or float32, not {dtype!r}")
    try:
        model = HuggingFaceEmbedding(
            model_name=target,
            device="cpu",
            query_instruction=query_prompt,
            text_instruction=doc_prompt,
            embed_batch_size=batch_size,
            model_kwargs={"dtype": torch_dtype},
        )
    except OSError as exc:
        raise EmbedderError(f"cannot load embedding model {ref!r} ({target}): {exc}") from exc
    st_model = model._model
    dim_of = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    name = ref if ref in models.SPECS else Path(target).name or ref
    tokenizer = st_model.tokenizer

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    twin = (_float32_twin(st_model) if query_twin and torch_dtype is not torch.float32
            else None)
    return Embedder(model, EmbedderIdentity(name=name, hash=model_hash, dim=dim_of()),
                    count_tokens, query_model=st_model if twin is None else twin,
                    query_twin=twin is not None)


def _float32_twin(st_model):
    """A float32 copy of a bfloat16 model for single queries, sharing its token table.

    One short query is a few dozen tokens: its matrix products are bound by reading the
    weights, and this CPU (AVX-512, no AMX) multiplies bfloat16 no faster than float32,
    so the bfloat16 model spent more time converting: 134 ms per seed question on one
    thread against 110 ms in float32 (91 and 81 ms on two; bench/faiss_scale.py). The
    bfloat16 weights convert to float32 exactly, and the query vectors stay within
    cosine 0.9999 of the bfloat16 model's (the documents' model). The token table (2/3
    of the parameters, only looked up) stays shared and bfloat16; only the layers,
    ~0.4 GB in float32, are copied. Returns None (queries use the model itself) when the
    model is not built the way this expects.
    """
    import torch

    class Float32Lookup(torch.nn.Module):
        """The shared token table, its rows handed on in float32 (exact from bfloat16)."""

        def __init__(self, table: torch.nn.Module):
            super().__init__()
            self.table = table

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.table(ids).float()

    try:
        inner = st_model[0].auto_model
        table = inner.get_input_embeddings()
    except (AttributeError, IndexError, KeyError, TypeError, NotImplementedError):
        return None
    if table is None:
        return None
    twin = copy.deepcopy(st_model, memo={id(table): table})
    shared = {id(p) for p in table.parameters()} | {id(b) for b in table.buffers()}
    for module in twin.modules():
        for key, param in module._parameters.items():
            if param is not None and id(param) not in shared and param.is_floating_point():
                module._parameters[key] = torch.nn.Parameter(param.detach().float(),
                                                             requires_grad=False)
        for key, buffer in module._buffers.items():
            if buffer is not None and id(buffer) not in shared and buffer.is_floating_point():
                module._buffers[key] = buffer.float()
    twin[0].auto_model.set_input_embeddings(Float32Lookup(table))
    twin.eval()
    return twin


def to_matrix(vectors: list[list[float]]) -> np.ndarray:
    """Float32, L2-normalised rows for inner-product search."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms
