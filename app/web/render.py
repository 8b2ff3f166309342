"""HTML for the chat: every piece of article or answer text goes through `html.escape`.

Nothing here passes text through Markdown either: an article may contain `<script>`,
`[x](javascript:...)` or `&lt;img onerror&gt;`, and all of it must show as the characters it is.
Citation markers `[n]` become buttons that carry only two integers (turn, n).
"""

from __future__ import annotations

from html import escape

from index.text import CITATION_MARKER


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def cite_button(turn: int, n: int, title: str = "") -> str:
    label = f"source {n}: {title}" if title else f"source {n}"
    return (f'<button type="button" class="sanad-cite" data-turn="{turn}" data-n="{n}" '
            f'title="{_attr(label)}" aria-label="{_attr(label)}">[{n}]</button>')


def linked_text(text: str, turn: int, passages: list[dict]) -> str:
    """`text` escaped, with each `[n]` that names a passage turned into a citation button."""
    out, pos = [], 0
    for match in CITATION_MARKER.finditer(text):
        n = int(match.group(1))
        if 1 <= n <= len(passages):
            out.append(escape(text[pos:match.start()]))
            out.append(cite_button(turn, n, passages[n - 1].get("title", "")))
            pos = match.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def linked_lines(text: str, turn: int, passages: list[dict]) -> str:
    """Like `linked_text`, a block per line, each with its own direction: an English intro
    line followed by an Arabic quote must not lay the Arabic out left to right."""
    return "".join(f'<div dir="auto">{linked_text(line, turn, passages)}</div>'
                   for line in text.split("\n"))


def _cited_numbers(result: dict) -> list[int]:
    cited = [n for s in result.get("sentences", []) for n in s.get("citations", [])]
    cited += [int(m) for m in CITATION_MARKER.findall(result.get("answer", ""))]
    numbers = sorted({n for n in cited if 1 <= n <= len(result.get("passages", []))})
    return numbers or [p["n"] for p in result.get("passages", [])]


def evidence_list(turn: int, result: dict) -> str:
    """The quoted evidence behind an answer, in the articles' own language."""
    passages = result.get("passages", [])
    if not passages:
        return ""
    langs = {e["n"]: e.get("lang", "") for e in result.get("evidence", [])}
    heading = "Closest passages" if result.get("refused") else "Evidence (original language)"
    items = []
    for n in _cited_numbers(result):
        p = passages[n - 1]
        # The item takes its direction from the quote (children with their own `dir` would
        # be skipped by dir="auto", leaving an Arabic quote laid out left to right).
        items.append(
            f'<li dir="auto">{cite_button(turn, n, p["title"])} '
            f'<q lang="{_attr(langs.get(n, ""))}">{escape(p["text"])}</q> '
            f'<span class="sanad-where">— {escape(p["title"])}, '
            f'paragraph {int(p["paragraph"])}</span></li>')
    return (f'<details class="sanad-evidence" open><summary>{heading}</summary>'
            f'<ol>{"".join(items)}</ol></details>')


def waiting_text(entry: dict) -> str:
    """What the reader sees before the first word: the queue position, or the search."""
    ahead = entry.get("waiting")
    if isinstance(ahead, int):
        return f"Waiting for a turn: {ahead} ahead of you…" if ahead else "Waiting: you are next…"
    return "Searching the articles…"


def render_turn(turn: int, entry: dict) -> str:
    """One question and its answer: streamed text while it comes, then the verified result."""
    question = f'<div class="sanad-q" dir="auto">{escape(entry["question"])}</div>'
    result = entry.get("result")
    parts = []
    if result is None:
        streamed = entry.get("streamed", "")
        translation = entry.get("streamed_translation", "")
        body = escape(streamed) if streamed else f'<span class="sanad-wait">{waiting_text(entry)}</span>'
        parts.append(f'<div class="sanad-a sanad-streaming" dir="auto">{body}</div>')
        if translation:
            parts.append(f'<div class="sanad-translation" dir="auto">{escape(translation)}</div>')
    else:
        passages = result.get("passages", [])
        refused = " sanad-refused" if result.get("refused") else ""
        parts.append(f'<div class="sanad-a{refused}">'
                     f'{linked_lines(result["answer"], turn, passages)}</div>')
        if result.get("translation"):
            tr = result["translation"]
            parts.append(f'<div class="sanad-translation" lang="{_attr(tr.get("lang", ""))}">'
                         f'{linked_lines(tr["text"], turn, passages)}</div>'
                         f'<div class="sanad-mt-label" dir="auto">{escape(tr["label"])}</div>')
        if result.get("dropped") or result.get("removed_markers"):
            parts.append(f'<div class="sanad-note">{len(result.get("dropped", []))} sentence(s) '
                         f'removed by the citation checks, {int(result.get("removed_markers", 0))} '
                         'invalid citation marker(s) removed</div>')
        if result.get("notice"):
            parts.append(f'<div class="sanad-note">{escape(result["notice"])}</div>')
        parts.append(evidence_list(turn, result))
    if entry.get("error"):
        parts.append(f'<div class="sanad-error" role="alert">{escape(entry["error"])}</div>')
    return f'<div class="sanad-turn" data-turn="{turn}">{question}{"".join(parts)}</div>'


EMPTY_CONVERSATION = ('<div class="sanad-empty">Ask a question about the indexed articles, in '
                      'English or Arabic. Every answer cites its passages: click a [n] to see '
                      'it in its article.</div>')


def render_conversation(turns: list[dict]) -> str:
    if not turns:
        return EMPTY_CONVERSATION
    return ('<div class="sanad-conversation">'
            + "".join(render_turn(i, t) for i, t in enumerate(turns)) + "</div>")


SOURCES_PLACEHOLDER = ('<div class="sanad-sources-empty">Click a citation [n] in an answer to '
                       'see its passage highlighted in the article.</div>')


def render_source(passage: dict, text: str | None) -> str:
    """The cited passage marked inside its article's full `text` (escaped, never Markdown);
    `text` is None when the article is no longer in the index."""
    header = (f'<div class="sanad-source-head" dir="auto"><span class="sanad-source-n">'
              f'[{int(passage["n"])}]</span> <strong>{escape(passage["title"])}</strong> '
              f'<span class="sanad-where">paragraph {int(passage["paragraph"])}, characters '
              f'{int(passage["start"])}–{int(passage["end"])}, similarity '
              f'{float(passage["score"]):.2f}</span></div>')
    start, end = int(passage["start"]), int(passage["end"])
    if text is None or text[start:end] != passage["text"]:
        why = ("the article is no longer in the index" if text is None
               else "the article has changed since this answer")
        return (f'{header}<div class="sanad-note">{why}; the quote as cited:</div>'
                f'<div class="sanad-article" dir="auto"><mark>{escape(passage["text"])}</mark></div>')
    return (f'{header}<div class="sanad-article" dir="auto">{escape(text[:start])}'
            f'<mark class="sanad-mark">{escape(text[start:end])}</mark>{escape(text[end:])}</div>')
