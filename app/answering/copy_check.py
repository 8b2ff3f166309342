"""The copy check: whether an answer sentence is the cited text's own words.

Used for the small local model (see policy.copy_only): a sentence may be at most
`COPY_MAX_PIECES` runs copied from the cited text or the question, plus a few function
words. The small model's inventions were misreadings made of the right sentence's words
("before Friday" for "before the November election"), which only a copy check catches; its
correct answers were nearly all copies of one or two runs of their source.
"""

from __future__ import annotations

from app.answering.corpus import (
    AR_CONJUNCTIONS,
    STOPWORDS,
    lexical_tokens,
    normalize,
    script_of,
    strip_clitic,
    tokens,
)
from app.language import VERDICT_WORDS

COPY_MAX_PIECES = 2
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
