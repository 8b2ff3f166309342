"""Prompts and fixed phrases live in the top-level `prompts` package as text files, loaded by
name through importlib.resources, so an installed wheel finds them as a checkout does."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from string import Template

PROMPTS_PACKAGE = "prompts"


def _file(name: str) -> Traversable:
    return files(PROMPTS_PACKAGE).joinpath(name)


EXAMPLES_SUFFIX = "_examples.txt"


def names() -> list[str]:
    """Every prompt template's name (the .txt files besides messages.txt and examples)."""
    return sorted(f.name.removesuffix(".txt") for f in files(PROMPTS_PACKAGE).iterdir()
                  if f.name.endswith(".txt") and f.name != "messages.txt"
                  and not f.name.endswith(EXAMPLES_SUFFIX))


@cache
def _template(name: str) -> Template:
    path = _file(f"{name}.txt")
    if not path.is_file():
        raise FileNotFoundError(f"prompt {name!r} not found in the {PROMPTS_PACKAGE!r} package")
    return Template(path.read_text(encoding="utf-8").strip())


def render(name: str, **values: str) -> str:
    """Fill a prompt's ${placeholders}; a missing value is an error, not a silent blank."""
    return _template(name).substitute(**values)


def placeholders(name: str) -> set[str]:
    """The ${placeholders} a prompt expects."""
    return set(_template(name).get_identifiers())


@cache
def _messages() -> dict[tuple[str, str], str]:
    table = {}
    for line in _file("messages.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, lang, text = line.split("\t", 2)
            table[key, lang] = text.strip()
    return table


def message(key: str, lang: str) -> str:
    """A fixed phrase in `lang`, English when there is none in that language."""
    table = _messages()
    return table.get((key, lang)) or table[key, "en"]


def message_keys() -> set[str]:
    """Every fixed phrase's key."""
    return {key for key, _ in _messages()}


@cache
def examples(name: str) -> tuple[dict[str, str], ...]:
    """The worked examples in `<name>_examples.txt`: blocks separated by blank lines, each
    line `key: value`; a key repeated within a block continues its value on a new line."""
    path = _file(f"{name}{EXAMPLES_SUFFIX}")
    if not path.is_file():
        raise FileNotFoundError(f"examples {name!r} not found in the {PROMPTS_PACKAGE!r} package")
    blocks, block = [], {}
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if block:
                blocks.append(block)
            block = {}
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"{path.name}: not a 'key: value' line: {line!r}")
        key, value = key.strip(), value.strip()
        block[key] = f"{block[key]}\n{value}" if key in block else value
    return tuple(blocks)
