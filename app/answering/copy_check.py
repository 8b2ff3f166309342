"""The copy check: whether an answer sentence is the cited text's own words.

Used for the small local model (see policy.copy_only): a sentence may be at most
`COPY_MAX_PIECES` runs copied from the cited text or the question, plus a few function
words. The small model's inventions were misreadings made of the right sentence's words
("before Friday" for "before the November election"), which only a copy check catches; its
correct answers were nearly all copies of one or two runs of their source.
"""

from __future__ import annotations

import re

from app.answering.corpus import (
    AR_CONJUNCTIONS,
    STOPWORDS,
    lexical_tokens,
    light_stem,
    normalize,
    script_of,
    strip_clitic,
    tokens,
)
from app.language import VERDICT_WORDS
from app.numbers import numbers_in

COPY_MAX_PIECES = 2
# A span that is not quite copied is replaced by the run of the cited text it was made
# from: the run from its first aligned word to its last when that is at most twice the
# span's length plus SNAP_MAX_EXTRA words, else its densest stretch (gaps of at most
# SNAP_MAX_GAP words, at most SNAP_MAX_EXTRA words longer than the span); either must hold
# SNAP_MIN_SHARE of the span's content words.
SNAP_MIN_SHARE = 0.6
SNAP_MAX_GAP = 3
SNAP_MAX_EXTRA = 3
# Words that turn what follows into its opposite or a condition: a run that starts right
# after one of them takes it along ("إذا لم تلتزم بإنفاق…", "if it does not commit to
# spending…", cut after لم, says that it commits). أن/إن and ما are left out: they more
# often mean "that" and "what".
_END_PUNCTUATION = ".,،؛;:!؟?"
REVERSING_WORDS = {normalize(w) for w in """لا لم لن ليس ليست ليسوا ليسا غير عدم دون بدون
إذا لو not no never without unless if nor neither cannot""".split()}
COPY_MAX_FREE_WORDS = 2  # function words a copied sentence may add ("هو", "is")
# Words a copy may add besides the stopwords: copulas and pronouns, the yes/no verdicts.
_FREE_WORDS = STOPWORDS | VERDICT_WORDS | {
    normalize(w) for w in "هو هي هم هما هن انه انها it they".split()}


def _copy_tokens(text: str) -> list[str]:
    """Normalised words, a prefixed Arabic "and" removed ("وأكد" matches "أكد")."""
    return [strip_clitic(w, AR_CONJUNCTIONS, min_rest=3) for w in tokens(text)]


def copy_pieces(sentence: str, sources: list[str]) -> tuple[int, list[str]]:
    """(runs, words found in none): the fewest greedy runs of consecutive words copied from
    one of `sources` that make up `sentence`, and the words none of them has."""
    words = _copy_tokens(sentence)
    texts = [_copy_tokens(s) for s in sources]
    runs, missing, i = 0, [], 0
    while i < len(words):
        longest = 0
        for text in texts:
            for j, word in enumerate(text):
                if word != words[i]:
                    continue
                k = 1
                while i + k < len(words) and j + k < len(text) and words[i + k] == text[j + k]:
                    k += 1
                longest = max(longest, k)
        if longest:
            runs += 1
            i += longest
        else:
            missing.append(words[i])
            i += 1
    return runs, missing


def copy_problem(sentence: str, cited: str, question: str,
                 max_pieces: int = COPY_MAX_PIECES) -> str:
    """Why `sentence` is not the cited text's own words, or "" when it is.

    Runs may come from the question (answers repeat it), but every content word must be
    in the cited text: "السبب في ذلك هو الفساد…" joined the question's "the reason" to a
    clause about something else. A span answer must be one run (`max_pieces` 1): two runs
    made "المكسيك لم تلتزم بإنفاق…" (Mexico did not commit to spending…) of a sentence in
    which the one not committing is the United States."""
    runs, missing = copy_pieces(sentence, [cited, question])
    free = [w for w in missing if w in _FREE_WORDS]
    script = script_of(cited)  # one stemmer for both sides ("NBCNews" in Arabic text)
    cited_words = set(lexical_tokens(cited, script))
    added = [w for w in missing if w not in free] + [
        w for w in tokens(sentence) if w not in _FREE_WORDS
        and any(stem not in cited_words for stem in lexical_tokens(w, script))]
    if added:
        return f"words not in the cited text: {', '.join(list(dict.fromkeys(added))[:5])}"
    if len(free) > COPY_MAX_FREE_WORDS:
        return f"{len(free)} words not in the cited text"
    if runs > max_pieces:
        return f"not the cited text's own words ({runs} pieces)"
    return ""


def _stem(word: str, script: str) -> str | None:
    stems = lexical_tokens(word, script)
    return stems[0] if stems else None


def _same_word(a: str, b: str) -> bool:
    """Equal stems, or one with a one- or two-letter prefix more (كمساعدات, مساعدات): the
    Arabic stemmer leaves "as", "by", "for" on the word."""
    short, long = sorted((a, b), key=len)
    return short == long or (len(short) >= 3 and long.endswith(short)
                             and len(long) - len(short) <= 2)


def _word_forms(word: str, script: str) -> tuple[str, str] | None:
    """(stem, light stem) of a content word, None for a function word. The stemmer alone
    leaves a prefixed ل on some words (لملك → لمل, ملك → ملك); the light stem strips it."""
    stem = _stem(word, script)
    return (stem, light_stem(word)) if stem else None


def _same_forms(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return _same_word(a[0], b[0]) or a[1] == b[1]


def copied_run(span: str, cited: str) -> str:
    """The run of `cited`'s own words that `span` was made from, or "" when there is none.

    The small model often answers with the right words of its evidence, slightly changed: a
    prefix dropped, a word of its own added ("الحصول على مساعدات لدول أمريكا اللاتينية" for
    the passage's "كمساعدات لدول أمريكا اللاتينية"). Its content words are aligned in order
    with the passage's; the run from the first aligned word to the last (a span in two
    parts gets both, with the words between), or else the densest stretch, is the run it
    points at, shown exactly as the article has it, with a negation just before it."""
    word = _number_in_words(span, cited) if script_of(span) == "other" else ""
    if word:
        return word
    script = script_of(cited)
    words = list(re.finditer(r"\S+", cited))
    cited_stems = [_word_forms(m.group(0), script) for m in words]
    span_stems = [f for f in (_word_forms(w, script) for w in span.split()) if f]
    if not span_stems:
        return ""
    # longest common subsequence of the span's content words and the passage's words
    rows, cols = len(span_stems), len(cited_stems)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            if cited_stems[j] and _same_forms(span_stems[i], cited_stems[j]):
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    # of the alignments with the most words, the tightest ("وزير الأمن الداخلي" points at
    # "ووزير الأمن الداخلي", not at the وزير of an earlier title with a name between)
    starts = [k for k in range(cols) if table[0][k] == table[0][0] > 0]
    alignments = [_aligned(table, span_stems, cited_stems, k) for k in starts]
    aligned = min(alignments, key=lambda a: a[-1] - a[0], default=[])
    length = len(span.split())
    if aligned and aligned[-1] - aligned[0] + 1 <= 2 * length + SNAP_MAX_EXTRA:
        best = aligned  # every part the span took, with the words between them
    else:
        best = _densest_stretch(aligned)
        if best and best[-1] - best[0] + 1 > length + SNAP_MAX_EXTRA:
            return ""
    if not best or len(best) < SNAP_MIN_SHARE * len(span_stems):
        return ""
    start = _reversal_start(words, best[0])
    return cited[words[start].start():words[best[-1]].end()].rstrip(_END_PUNCTUATION)


def _aligned(table: list[list[int]], span_stems: list[tuple[str, str]],
             cited_stems: list[tuple[str, str] | None], start: int) -> list[int]:
    """The passage positions of the longest common subsequence traced from `start`."""
    aligned, i, j = [], 0, start
    while i < len(span_stems) and j < len(cited_stems):
        if cited_stems[j] and _same_forms(span_stems[i], cited_stems[j]):
            aligned.append(j)
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return aligned


def _number_in_words(span: str, cited: str) -> str:
    """The word of `cited` that states in letters the number `span` states in digits
    ("3" for ثلاثة), or ""."""
    values = numbers_in(span)
    for match in re.finditer(r"\S+", cited):
        word = match.group(0).strip(_END_PUNCTUATION + "\"“”«»()")
        if values and not re.search(r"\d", word) and numbers_in(word) == values:
            return word
    return ""


def _densest_stretch(aligned: list[int]) -> list[int]:
    """The longest stretch of aligned word positions with gaps of at most SNAP_MAX_GAP."""
    stretches: list[list[int]] = []
    for j in aligned:
        if stretches and j - stretches[-1][-1] <= SNAP_MAX_GAP + 1:
            stretches[-1].append(j)
        else:
            stretches.append([j])
    return max(stretches, key=len, default=[])


def _reversal_start(words: list[re.Match], start: int) -> int:
    """`start`, or that of the reversing words just before it ("إذا لم", "لم")."""
    while start > 0 and normalize(words[start - 1].group(0).strip(
            ".,،؛;:\"“”«»()")) in REVERSING_WORDS:
        start -= 1
    return start


def with_reversal(span: str, cited: str) -> str:
    """`span` with the negation or condition that stands just before it in `cited`, if any:
    a copied run must not drop the "not" its words depend on."""
    bare = span.strip().rstrip(_END_PUNCTUATION)
    at = cited.find(bare) if bare else -1
    if at < 0:
        return span
    words = list(re.finditer(r"\S+", cited))
    first = next((i for i, m in enumerate(words) if m.end() > at), None)
    if first is None or words[first].start() != at:
        return span  # the span begins inside a word
    start = _reversal_start(words, first)
    return span if start == first else cited[words[start].start():at] + span
