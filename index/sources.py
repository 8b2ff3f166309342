"""Read article files (.txt, .md, .html) into `Article`s, one clear error per bad file."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

SUPPORTED_SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown",
                      ".html": "html", ".htm": "html"}
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024

# Elements whose content is never article text.
_DROP_TAGS = ["script", "style", "noscript", "template", "iframe", "object", "embed", "svg",
              "canvas", "head", "nav", "form", "button", "select", "textarea"]
# Elements that start a new paragraph in the extracted text.
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "footer", "aside", "h1", "h2",
               "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre",
               "table", "tr", "td", "th", "figure", "figcaption", "hr", "br", "address",
               "details", "summary"}


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    text: str
    sha256: str
    source: str  # resolved path of the file it came from


class SourceError(ValueError):
    """A file that cannot become an article. The message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def article_id_for(path: Path) -> str:
    """A stable, readable id from the file name: lower-case, words joined by '-'."""
    stem = unicodedata.normalize("NFC", path.stem).lower()
    slug = re.sub(r"[^\w]+", "-", stem, flags=re.UNICODE).strip("-_")
    return slug or "article"


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise SourceError(path, "looks like a binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(
            path, f"is not valid UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 4]!r}); "
            "save it as UTF-8 and index it again"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _html_to_text(html: str) -> tuple[str, str]:
    """Visible text of an HTML page with one paragraph per block element, and its title."""
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    tree.strip_tags(_DROP_TAGS)
    root = tree.body or tree.root
    if root is None:
        return "", title
    pieces: list[str] = []

    def walk(node) -> None:
        child = node.child
        while child is not None:
            tag = child.tag
            if tag == "-text":
                pieces.append(child.text_content or "")
            elif tag in _BLOCK_TAGS:
                pieces.append("\n\n")
                walk(child)
                pieces.append("\n\n")
            elif not tag.startswith("-"):  # skip comments and doctype
                walk(child)
            child = child.next

    walk(root)
    paragraphs = []
    for block in re.split(r"\n\s*\n", "".join(pieces)):
        line = re.sub(r"\s+", " ", block).strip()
        if line:
            paragraphs.append(line)
    if not title:
        heading = tree.css_first("h1")
        title = heading.text(strip=True) if heading else ""
    return "\n\n".join(paragraphs), title


def _first_line_title(text: str, markdown: bool) -> str:
    for line in text.split("\n"):
        line = line.strip()
        if line:
            if markdown:
                line = line.lstrip("#").strip()
            return line[:200]
    return ""


def read_article(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Article:
    path = Path(path)
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SourceError(path, f"unsupported file type {path.suffix or '(none)'}; "
                          f"Sanad indexes {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SourceError(path, f"is {size / 1e6:.1f} MB, over the limit of "
                              f"{max_bytes / 1e6:.1f} MB (setting max_file_mb)")
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise SourceError(path, "is empty")
    text = _decode(path, data)
    if kind == "html":
        text, title = _html_to_text(text)
        title = title or path.stem
    else:
        title = _first_line_title(text, markdown=kind == "markdown")
    if not text.strip():
        raise SourceError(path, "has no text content")
    return Article(
        id=article_id_for(path),
        title=title or path.stem,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        source=str(path.resolve()),
    )


def discover(paths: Iterable[Path | str]) -> tuple[list[Path], list[SourceError]]:
    """Files to index under the given files and folders (recursively), sorted."""
    files: list[Path] = []
    errors: list[SourceError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            errors.append(SourceError(path, "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique, errors
