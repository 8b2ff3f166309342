"""The prompts load by name, and the wheel carries them (and the widget) to an installed copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app import prompts

ROOT = Path(__file__).resolve().parent.parent
PROMPT_FILES = sorted(p.name for p in (ROOT / "prompts").glob("*.txt"))
WIDGET_FILES = sorted(p.name for p in (ROOT / "app" / "web" / "widget").iterdir() if p.is_file())


def test_every_prompt_file_loads_and_renders():
    examples = {f.removesuffix(prompts.EXAMPLES_SUFFIX) for f in PROMPT_FILES
                if f.endswith(prompts.EXAMPLES_SUFFIX)}
    assert {f"{name}.txt" for name in prompts.names()} | {"messages.txt"} | {
        f"{name}{prompts.EXAMPLES_SUFFIX}" for name in examples} == set(PROMPT_FILES)
    for name in examples:  # every example has the keys its prompt shows
        keys = {frozenset(example) for example in prompts.examples(name)}
        assert len(keys) == 1 and all(prompts.examples(name)[0].values())
    for name in prompts.names():
        values = {key: f"<{key}>" for key in prompts.placeholders(name)}
        text = prompts.render(name, **values)
        assert text and "${" not in text
        assert all(value in text for value in values.values())


def test_a_missing_placeholder_or_prompt_is_an_error():
    name = next(n for n in prompts.names() if prompts.placeholders(n))
    with pytest.raises(KeyError):
        prompts.render(name)
    with pytest.raises(FileNotFoundError):
        prompts.render("no_such_prompt")


def test_every_message_has_english_and_falls_back_to_it():
    for key in prompts.message_keys():
        assert prompts.message(key, "en")
        assert prompts.message(key, "xx") == prompts.message(key, "en")
    assert prompts.message("refusal", "ar") != prompts.message("refusal", "en")


# Run in the installed copy, put first on sys.path so that it, not the checkout's editable
# install, answers the imports (the dependencies come from site-packages): every prompt
# rendered, every message read.
LOAD_ALL = """
import sys
target = sys.argv[1]
sys.path.insert(0, target)
from app import prompts
import prompts as package
assert prompts.__file__.startswith(target) and package.__file__.startswith(target)
for name in prompts.names():
    prompts.render(name, **{key: "x" for key in prompts.placeholders(name)})
for key in prompts.message_keys():
    prompts.message(key, "ar")
for name in ("span", "render", "render_in_context"):
    assert prompts.examples(name)
print(len(prompts.names()), len(prompts.message_keys()))
"""


@pytest.mark.slow
def test_the_wheel_ships_prompts_and_widget_and_loads_every_prompt(tmp_path: Path):
    # Built from a copy, so the build's egg-info and build/ folders stay out of the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("app", "index", "prompts"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(wheels), str(source)],
                   check=True, timeout=300)
    [wheel] = wheels.glob("sanad-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"prompts/{f}" for f in PROMPT_FILES} | {"prompts/__init__.py"} <= names
    assert {f"app/web/widget/{f}" for f in WIDGET_FILES} <= names

    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)], check=True, timeout=300)
    loaded = subprocess.run([sys.executable, "-c", LOAD_ALL, str(target)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    templates, keys = map(int, loaded.stdout.split())
    examples = [f for f in PROMPT_FILES if f.endswith(prompts.EXAMPLES_SUFFIX)]
    assert templates == len(PROMPT_FILES) - 1 - len(examples)
    assert keys == len(prompts.message_keys())
