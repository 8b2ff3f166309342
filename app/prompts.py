"""Prompts and fixed phrases live in prompts/ as text files, loaded by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@cache
def _template(name: str) -> Template:
    path = PROMPTS_DIR / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"prompt {name!r} not found at {path}")
    return Template(path.read_text(encoding="utf-8").strip())


def render(name: str, **values: str) -> str:
    """Fill a prompt's ${placeholders}; a missing value is an error, not a silent blank."""
    return _template(name).substitute(**values)


@cache
def _messages() -> dict[tuple[str, str], str]:
    table = {}
    for line in (PROMPTS_DIR / "messages.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, lang, text = line.split("\t", 2)
            table[key, lang] = text.strip()
    return table


def message(key: str, lang: str) -> str:
    """A fixed phrase in `lang`, English when there is none in that language."""
    table = _messages()
    return table.get((key, lang)) or table[key, "en"]
