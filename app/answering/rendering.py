"""Cross-language answers: the article's answering words rendered into the reader's
language, shown only when the rendering passes checks against those words.

The small local model is good at copying the short run of Arabic words that answers a
question, and bad at turning long Arabic sentences full of names into English. So the
answer is that short span (generation.py, the span prompt), and only the span is rendered,
clause by clause when long: short phrases translate far better. Two candidates are tried in
turn: the phrase alone, then the phrase with its question (whose words the model may reuse).
A rendering is kept when it is in the reader's script, does more than restate the
question, states exactly the span's numbers, has no name that sounds like nothing in the
span or the question, is not much longer than the span, means what the span means (the
embedding model's cross-lingual cosine), has no word without a counterpart in the span
and leaves no word of the span without one in it (the same, word by word, each word alone
and as read in its text); the floors are
calibrated on the dev set's aligned answers and on renderings eval runs showed.
Nothing that fails is streamed or returned, not even inside a label: the label says how
many answer parts were withheld, and a clause withheld from a long part is shown as "…".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from llama_index.core.llms import ChatMessage

from app import prompts
from app.answering.checks import restates_question, with_markers
from app.answering.corpus import (
    AR_CONJUNCTIONS,
    CITATION_MARKERS,
    STOPWORDS,
    normalize,
    script_of,
    strip_clitic,
    tokens,
)
from app.answering.results import AnswerResult, Token
from app.language import LANGUAGE_NAMES, is_yes_no_question
from app.llm import Backend
from app.names import (
    common_words_not_heard,
    names_not_in_source,
    sounds_in_source,
    source_skeletons,
)
from app.numbers import number_words, numbers_in, roman_numerals
from index.text import WORD, light_stem, without_diacritics

# A rendering is a phrase, not a story: at most this many words per word of its source.
MAX_LENGTH_RATIO = 3.0
MAX_EXTRA_WORDS = 4
# The small model renders a short phrase far better than a long sentence: longer answer
# parts are rendered clause by clause, and a clause longer than this is not rendered.
MAX_RENDER_WORDS = 16
_CLAUSE_BREAK = re.compile(r"\s*[,،;؛:]\s+")
# A clause still too long is cut before a word that opens a phrase of its own (a
# preposition or a complementizer: "إلى توزيع 20 مليار دولار…", "to distribute…").
_PHRASE_OPENERS = frozenset(normalize(w) for w in (
    "إلى", "على", "عن", "أن", "بأن", "الذي", "التي", "الذين", "حيث", "بعد", "قبل", "بسبب",
    "to", "that", "which", "who", "after", "before", "because", "while", "when"))
# Words that qualify another clause (a condition, an exception, a concession): shown
# without theirs, the other clauses would say more than the article does, so a span
# holding one is shown whole or not at all.
_QUALIFIERS = frozenset(normalize(w) for w in (
    "إذا", "لو", "لولا", "إلا", "لكن", "لكنه", "لكنها", "سوى", "رغم", "برغم", "بشرط",
    "طالما", "حتى", "مالم", "عدا", "باستثناء", "شريطة",
    "if", "unless", "but", "except", "although", "though", "provided", "only", "even",
    "despite", "until", "however", "whether"))
TOO_FAR_ALONE = "a clause too far in meaning to stand alone"
FAR_FROM_QUESTION = "a clause far from the question, not rendered"
# Of a long answer part, at most this many clauses (those nearest the question) are
# rendered: each costs one or two model calls, after the answer is already shown.
MAX_CLAUSES_RENDERED = 3
# Sampled renderings (`render_clause`) only for an answer part this short (one clause, as
# `clauses` cuts only long parts): on a local xquad run every sampled rendering that passed
# rendered a whole answer of 1 to 5 words; sampling longer clauses too doubled the English
# answers' 95th percentile of total time for none, and sampling the short clauses of long
# parts (a list of names split at its commas) added seconds to the seed's English answers
# for one garbled name.
MAX_SAMPLED_WORDS = 5
_LATIN_RUN = re.compile(r"[A-Za-z\u00C0-\u024F]+")
_LATIN_WORD = re.compile(r"[A-Za-z\u00C0-\u024F][\w'’-]*")

Similarity = Callable[[str, str], float]  # (rendering, source) → cosine
# (rendering words, source words) → their cosines, one row per rendering word
WordSimilarity = Callable[[list[str], list[str]], np.ndarray]
# (rendering, its words, source, its words) → the same cosines with each word read in its
# own text, or None when the model cannot tell
InContextSimilarity = Callable[[str, list[str], str, list[str]], "np.ndarray | None"]
# "Here is the translation:" and the like, which small models put before the text.
_PREAMBLE = re.compile(r"^\s*(here is|here's)[^:\n]*:\s*", re.IGNORECASE)
# "Note: the original uses…": the small model's comments after a translation.
_AFTERWORD = re.compile(r"\n\s*\(?(note|notes|translator's note)\b.*", re.IGNORECASE | re.DOTALL)


@dataclass
class Rendering:
    source: str  # the article's words
    citations: list[int]
    text: str = ""  # the kept rendering, "" when none passed
    problems: list[str] | None = None  # why it, or a clause of it, was withheld
    similarity: float | None = None
    clauses_withheld: int = 0  # clauses of a kept rendering shown as "…"


def render_messages(phrase: str, source: str, target: str) -> list[ChatMessage]:
    """The rendering prompt: worked examples in the asked direction, then the phrase."""
    messages = [ChatMessage(role="system", content=prompts.render(
        "render_system", source=LANGUAGE_NAMES[source], target=LANGUAGE_NAMES[target]))]
    for example in prompts.examples("render"):
        if source in example and target in example:
            messages += [ChatMessage(role="user", content=example[source]),
                         ChatMessage(role="assistant", content=example[target])]
    messages.append(ChatMessage(role="user", content=phrase))
    return messages


def in_context_messages(phrase: str, question: str, source: str, target: str
                        ) -> list[ChatMessage]:
    """The second rendering prompt: the phrase with the question it answers, whose words
    the model may reuse for the same things."""
    messages = [ChatMessage(role="system", content=prompts.render(
        "render_in_context_system", source=LANGUAGE_NAMES[source],
        target=LANGUAGE_NAMES[target]))]
    for example in prompts.examples("render_in_context"):
        if source in example and target in example and f"question_{target}" in example:
            messages += [
                ChatMessage(role="user", content=prompts.render(
                    "render_in_context_user", question=example[f"question_{target}"],
                    phrase=example[source])),
                ChatMessage(role="assistant", content=example[target])]
    messages.append(ChatMessage(role="user", content=prompts.render(
        "render_in_context_user", question=question, phrase=phrase)))
    return messages


def cleaned(reply: str) -> str:
    """The rendering without the small model's preamble and notes, on one line."""
    text = CITATION_MARKERS.sub("", _AFTERWORD.sub("", _PREAMBLE.sub("", reply))).strip()
    text = text.splitlines()[0] if text else ""
    return text.strip().strip('"“”«»').strip()


def latin_words_changed(rendering: str, source: str) -> list[str]:
    """The Latin-script words of `source` (a site, a term, a foreign name) that `rendering`
    does not keep as written, case and accents aside: they need no translation, and the
    small model garbles them ("Amazonière" for Forêt amazonienne)."""
    kept = {_folded(w) for w in _LATIN_RUN.findall(rendering)}
    return [w for w in _LATIN_RUN.findall(source) if _folded(w) not in kept]


def _plain(word: str) -> str:
    """`word` lower-cased and without Arabic diacritics, as the stopword list has it."""
    return without_diacritics(word).lower()


def _folded(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word.casefold())
                   if not unicodedata.combining(c))


# Sentence connectives a rendering may open with, as the article's ومع ذلك, لذلك or كما,
# which are function words there too: no name ("However, his religious views remain
# unclear" was withheld for a name that sounds like nothing) and no word to match.
_CONNECTIVES = frozenset("""however therefore moreover meanwhile furthermore additionally
thus hence indeed besides consequently""".split())
_FUNCTION_WORDS = STOPWORDS | _CONNECTIVES


def capitalised_words(text: str) -> list[str]:
    """Capitalised Latin words, except a sentence-initial function word ("The", "More",
    "However") and a Roman numeral after a name ("XIV" in "Louis XIV"), which is a number,
    not a name."""
    numerals = roman_numerals(text)
    words = [m.group(0) for m in _LATIN_WORD.finditer(text) if m.group(0)[0].isupper()]
    return [w for w in words if w.lower() not in _FUNCTION_WORDS and w not in numerals]


def clauses(text: str) -> list[str]:
    """`text` as the pieces to render: itself when short, else its comma-separated clauses
    (a clause of fewer than three words joins the one before it), each still too long cut
    before a phrase opener."""
    if len(tokens(text)) <= MAX_RENDER_WORDS:
        return [text]
    pieces: list[str] = []
    for piece in _CLAUSE_BREAK.split(text.strip()):
        if pieces and len(tokens(piece)) < 3:
            pieces[-1] = f"{pieces[-1]}, {piece}"
        elif piece.strip():
            pieces.append(piece.strip())
    return [part for piece in pieces for part in _cut(piece)]


def _cut(clause: str) -> list[str]:
    """A clause longer than MAX_RENDER_WORDS cut in two, again while too long: before a
    preposition or complementizer if one leaves a first piece short enough, else before a
    word joined by و "and"; as late as leaves that piece short enough (each piece at least
    three words). A wrong guess (وزير, minister, is no "and") only moves the cut: every
    piece is checked on its own."""
    if len(tokens(clause)) <= MAX_RENDER_WORDS:
        return [clause]
    words = clause.split()
    bare = [_bare(w) for w in words]
    inside = range(3, len(words) - 2)
    openers = [i for i in inside if bare[i] in _PHRASE_OPENERS]
    joined = [i for i in inside if len(bare[i]) >= 4 and bare[i][0] == "و"]
    for cuts in (openers, joined):
        fitting = [i for i in cuts if len(tokens(" ".join(words[:i]))) <= MAX_RENDER_WORDS]
        if fitting:
            at = max(fitting)
            break
    else:
        if not openers + joined:
            return [clause]
        at = min(openers + joined)
    return _cut(" ".join(words[:at])) + _cut(" ".join(words[at:]))


def _bare(word: str) -> str:
    return normalize(word.strip(".,،؛;:!?؟«»\"“”()"))


def is_qualified(span: str) -> bool:
    """Whether `span` holds a condition, exception or concession word (also after a
    leading و/ف/ل "and/so/for")."""
    bare = [_bare(w) for w in span.split()]
    return "ما لم" in " ".join(bare) or any(
        w in _QUALIFIERS or (w[:1] in ("و", "ف", "ل") and w[1:] in _QUALIFIERS) for w in bare)


def rendering_problems(rendering: str, source: str, question: str, target_script: str,
                       checks: RenderChecks | None = None) -> list[str]:
    """Why `rendering` cannot be shown as the meaning of `source` (empty when it can).
    With `checks`, a name that sounds like nothing in `source` may still translate a word
    of it; without, names are compared by sound alone."""
    problems = []
    # digits and symbols alone ("1944", "63%") read the same in every language
    if not rendering or script_of(rendering) not in (target_script, "other"):
        return ["not written in the reader's language"]
    # a yes/no answer restates its question by nature ("Yes, the United States is…")
    if not is_yes_no_question(question) and restates_question(rendering, question):
        problems.append("it only restates the question")
    if numbers_in(rendering) != numbers_in(source):
        problems.append("its numbers differ from the article's")
    if target_script == "latin":
        names = capitalised_words(rendering)
        unheard = names_not_in_source(names, source, question, strict=True)
        if checks is not None:
            # A common word ("Council", "Arab") skips the sound check for being common, so
            # it must translate a word of the source instead: "Arab" for الأفرو does not.
            unheard = checks.untranslated(
                unheard + common_words_not_heard(names, source, question), source, rendering)
        if unheard:
            problems.append("a name that sounds like nothing in the article's words")
        if latin_words_changed(rendering, source):
            problems.append("a word in the reader's script not kept as written")
    if len(tokens(rendering)) > MAX_LENGTH_RATIO * len(tokens(source)) + MAX_EXTRA_WORDS:
        problems.append("much longer than the article's words")
    return problems


# Arabic auxiliaries and pronouns that a translation expresses by grammar ("تم نشر", "was
# published") rather than by a word of its own.
_GRAMMATICAL = {normalize(w) for w in """تم يتم قد لقد سوف هناك هو هي هم وهو وهي وهم بأن لأن
كذلك إنها إنهم أنها أنهم لها له لهم لكن ولكن ذو ذات ذوي يوم شهر
بها به بهم فيها فيه فيهم عنها عنه عنهم عليها عليه عليهم إليها إليه إليهم""".split()}
# (a preposition with a pronoun, أدلى بها "made [them]", is English's grammar too; ذو
# "having" is English's "of" or a compound, "high-definition"; يوم and شهر before a
# day or month, يوم الجمعة "on Friday", are written as its name alone. سنة and عام stay
# to cover: "master's agreement in 1992" for معاهدة ماسترخت سنة 1992 leaves out nothing
# else the checks can see.)


_NOT_TO_COVER = STOPWORDS | _GRAMMATICAL


def coverage_words(text: str) -> list[str]:
    """The words of the article's text that a rendering must account for: its content words,
    less number words (the number check compares values) and grammatical words."""
    numbered = number_words(text)
    return [w for w in content_words(text) if _to_cover(w, numbered)]


def _to_cover(word: str, numbered: set[str]) -> bool:
    """Whether a rendering must account for the article's `word`; `numbered` are the
    article's words that are part of a number the number check compares (التاسع عشر)."""
    return (normalize(word) not in _NOT_TO_COVER and not _prefixed_function_word(word)
            and not numbers_in(word) and word not in numbered)


def _prefixed_function_word(word: str) -> bool:
    """A function word after a prefixed "and"/"so" (والذي "and which", ولم "and did not"),
    which English writes with function words too: nothing a rendering must cover. It may
    still be what a rendering word stands for (وما in وما إلى ذلك, "and so on")."""
    plain = normalize(word)
    rest = strip_clitic(plain, AR_CONJUNCTIONS, min_rest=1)
    return rest != plain and rest in _NOT_TO_COVER and plain not in _NAMES_LIKE_PREFIXED


# فان is "Van" (فان نويس, Van Nuys) as often as فإن "for indeed".
_NAMES_LIKE_PREFIXED = {"فان"}


# Currency words a rendering may write as a symbol ("$20 billion" for 20 مليار دولار).
_CURRENCY_SYMBOLS = {light_stem(w): symbol for w, symbol in
                     (("دولار", "$"), ("يورو", "€"), ("جنيه", "£"))}


# Multiplier words, which the embedding pairs across languages too weakly for the word
# floors (أضعاف and "times" at 0.42-0.48: "ten times its weight" for عشرة أضعاف وزنها was
# withheld). Counterparts by this list, as a currency word is by its symbol.
_MULTIPLIERS = ({light_stem(w) for w in ("ضعف", "أضعاف", "ضعفي", "مرات", "مرة")},
                {"times", "time", "fold", "twice", "double", "doubled", "triple", "tripled"})


def _fixed_pairs(words: list[str], source_words: list[str]) -> np.ndarray:
    """Which of `words` (rows) render which of `source_words` (columns) by `_MULTIPLIERS`."""
    arabic, english = _MULTIPLIERS
    rows = np.array([w.lower() in english for w in words], dtype=bool)
    columns = np.array([light_stem(w) in arabic for w in source_words], dtype=bool)
    return rows[:, None] & columns[None, :]


def _as_symbol(word: str, rendering: str) -> bool:
    symbol = _CURRENCY_SYMBOLS.get(light_stem(word))
    return symbol is not None and symbol in rendering


def _heard_in(word: str, names: list[str]) -> bool:
    """Whether the article's `word` sounds like one of the rendering's capitalised words
    (a name written as it sounds: أليسيا as "Alicia")."""
    skeletons = source_skeletons(word, min_length=1)
    return any(sounds_in_source(name, skeletons, strict=True) for name in names)


def content_words(text: str) -> list[str]:
    """The words a rendering must account for: no function words, numbers or markers. A
    Roman numeral above ten is a number the number check compares ("Louis XIV"); one below
    stands for an ordinal (هنري الثالث, "Henry III") and is compared as a word."""
    counted = {w for w, value in roman_numerals(text).items() if value > 10}
    words = WORD.findall(CITATION_MARKERS.sub("", text))
    return list(dict.fromkeys(w for w in words if _plain(w) not in _FUNCTION_WORDS
                              and len(w) > 1 and w not in counted))


def in_context_from(word_vectors: Callable[[list[str]], list[dict[str, np.ndarray]] | None]
                    ) -> InContextSimilarity:
    """The in-context cosines of RenderChecks from a model's `word_vectors` (each text's
    words as it reads them in that text; None when it cannot). A candidate's name check and
    word checks read the same pair of texts: the model reads each pair once."""
    seen: dict[tuple[str, str], list[dict[str, np.ndarray]] | None] = {}

    def in_context(text: str, words: list[str], source: str, source_words: list[str]
                   ) -> np.ndarray | None:
        if (text, source) not in seen:
            seen[(text, source)] = word_vectors([text, source])
        read = seen[(text, source)]
        if read is None:
            return None
        return _word_matrix(read[0], words) @ _word_matrix(read[1], source_words).T
    return in_context


def _word_matrix(vectors: dict[str, np.ndarray], words: list[str]) -> np.ndarray:
    """One row per word: its vector as read in its text, zeros for a word not found there
    (then its cosine alone decides)."""
    dim = len(next(iter(vectors.values()))) if vectors else 1
    return np.array([vectors.get(w, np.zeros(dim, dtype=np.float32)) for w in words],
                    dtype=np.float32).reshape(len(words), dim)


def _rows_below(words: list[str], cosines: np.ndarray, floor: float) -> list[str]:
    """Those of `words` (the rows of `cosines`) whose best cosine is under `floor`."""
    return [w for w, best in zip(words, cosines.max(axis=1), strict=True) if best < floor]


@dataclass(frozen=True)
class RenderChecks:
    """The embedding model's checks of a rendering, and their floors."""

    similarity: Similarity
    word_similarity: WordSimilarity
    min_similarity: float
    min_word_similarity: float
    min_name_similarity: float
    min_coverage_similarity: float
    min_clause_similarity: float = 0.7  # a clause shown beside "…" (see `render`)
    in_context: InContextSimilarity | None = None

    def cosines(self, words: list[str], source_words: list[str], rendering: str = "",
                source: str = "") -> np.ndarray:
        """Each of `words` (rows) against each of `source_words`: the better of the two
        words' cosine alone and, given the texts they come from, read in those texts. A
        word alone is a weak cue across languages ("teacher" and المعلّم 0.53); read in
        "the spiritual teacher" and المعلّم الروحي it is a stronger one. Floors stay those
        calibrated on words alone: a pair passes when either reading reaches them."""
        alone = np.asarray(self.word_similarity(words, source_words))
        fixed = _fixed_pairs(words, source_words)
        alone = np.where(fixed, 1.0, alone) if fixed.any() else alone
        if self.in_context is None or not rendering or not source:
            return alone
        read = self.in_context(rendering, words, source, source_words)
        return alone if read is None else np.maximum(alone, read)

    def untranslated(self, names: list[str], source: str, rendering: str = "") -> list[str]:
        """The `names` (single words of `rendering`) that translate no word of `source`
        either: none of its words is within `min_name_similarity` cosine of them."""
        source_words = content_words(source)
        if not names or not source_words:
            return names
        return _rows_below(names, self.cosines(names, source_words, rendering, source),
                           self.min_name_similarity)

    def problems(self, rendering: str, source: str) -> tuple[list[str], float]:
        """(why the rendering cannot be shown, its cosine to the source): its meaning as a
        whole, every word of it against the source's words, and every word of the source
        against the rendering's: a rendering that leaves out a word of the source ("if you
        have not spent" for "if it does not commit to spending") says something else."""
        score = round(self.similarity(rendering, source), 3)
        if score < self.min_similarity:
            return ["its meaning is too far from the article's words"], score
        rendered, source_words = content_words(rendering), content_words(source)
        if not rendered or not source_words:
            return [], score
        # one matrix serves both directions: rows are the rendering's words, columns the
        # source's
        cosines = self.cosines(rendered, source_words, rendering, source)
        unmatched = _rows_below(rendered, cosines, self.min_word_similarity)
        if unmatched:
            return [f"{len(unmatched)} word(s) with no counterpart in the article's words"], score
        left_out = self._left_out(rendering, rendered, source, source_words, cosines)
        if left_out:
            return [f"{len(left_out)} of the article's words left out"], score
        return [], score

    def unmatched(self, rendering: str, source: str) -> list[str]:
        """The rendering's content words with no word of the source they could translate:
        none of the source's words is within the word floor of them ("diet" in a rendering
        of أجندة طموحة, "ambitious agenda")."""
        rendered, source_words = content_words(rendering), content_words(source)
        if not rendered or not source_words:
            return []
        return _rows_below(rendered, self.cosines(rendered, source_words, rendering, source),
                           self.min_word_similarity)

    def uncovered(self, rendering: str, source: str) -> list[str]:
        """The source's content words that no word of the rendering is within the coverage
        floor of, sound like none of its names and are no currency it writes as a symbol.
        A rendering of digits alone ("1923" for عام 1923) has no words to compare: the
        number check compares values."""
        rendered, source_words = content_words(rendering), content_words(source)
        if not rendered or not source_words:
            return []
        return self._left_out(rendering, rendered, source, source_words,
                              self.cosines(rendered, source_words, rendering, source))

    def _left_out(self, rendering: str, rendered: list[str], source: str,
                  source_words: list[str], cosines: np.ndarray) -> list[str]:
        """`uncovered`, given the cosines of the rendering's content words, `rendered`
        (rows), to the source's, `source_words` (columns). A source word is covered by a rendering word
        within the word floor of it, or within the coverage floor when it is what that
        word stands for (`_counterparts`): a word that renders one word of the source
        cannot also vouch weakly for another ("American" for الأميركيون does not cover
        الجارية, "ongoing", at 0.54)."""
        names = capitalised_words(rendering)
        numbered = number_words(source)
        to_cover = np.array([_to_cover(w, numbered) for w in source_words])
        own = _counterparts(rendered, source_words, to_cover, source, cosines)
        strong = max(self.min_word_similarity, self.min_coverage_similarity)
        covered = ((cosines >= strong)
                   | ((cosines >= self.min_coverage_similarity) & own)).any(axis=0)
        return [w for w, needed, done in zip(source_words, to_cover, covered, strict=True)
                if needed and not done and not _heard_in(w, names)
                and not _as_symbol(w, rendering)]


def _counterparts(rendered: list[str], source_words: list[str], to_cover: np.ndarray,
                  source: str, cosines: np.ndarray) -> np.ndarray:
    """Which of the source's words to cover (columns) each rendering word (rows) stands
    for: its nearest one; one per part of a compound ("high-definition" for الدقة
    العالية); and with it the other noun of a construct, which English often writes as
    one word (براءات الاختراع, "patents"; درجات الحرارة, "temperatures")."""
    own = np.zeros(cosines.shape, dtype=bool)
    if not to_cover.any():
        return own
    column = {w: j for j, w in enumerate(source_words)}
    constructs = _constructs(source)
    ranked = np.argsort(-np.where(to_cover[None, :], cosines, -np.inf), axis=1)
    for i, word in enumerate(rendered):
        for j in ranked[i, :len([part for part in word.split("-") if part])]:
            own[i, j] = True
            for partner in constructs.get(source_words[j], ()):
                if partner in column:
                    own[i, column[partner]] = True
    return own


# A construct's second noun follows its first directly, so it carries ال with no clitic
# before it; a first noun with any ال-like start (كاليفورنيا reads as ك+ال) is not taken
# for one.
_DEFINITE_NOUN = re.compile(r"^ال")
_MAYBE_DEFINITE = re.compile(r"^(?:[وفبكل]?ال|لل)")
_ARABIC_WORD = re.compile(r"^[\u0600-\u06FF]+$")


# غير and عدم before a word make one English word of it: غير مؤكدة "uncertain", عدم
# الاستقرار "instability".
_NEGATING = {normalize(w) for w in ("غير", "عدم")}


def _constructs(source: str) -> dict[str, set[str]]:
    """The adjacent Arabic words of `source` that form a construct, an indefinite noun
    before a definite one (براءات الاختراع), or a negated word (غير مؤكدة), each word to
    its partners."""
    words = WORD.findall(CITATION_MARKERS.sub("", source))
    partners: dict[str, set[str]] = {}
    for first, second in zip(words, words[1:]):
        if _ARABIC_WORD.match(first) and _ARABIC_WORD.match(second) and (
                normalize(first) in _NEGATING
                or (not _MAYBE_DEFINITE.match(normalize(first))
                    and _DEFINITE_NOUN.match(normalize(second)))):
            partners.setdefault(first, set()).add(second)
            partners.setdefault(second, set()).add(first)
    return partners


_EDGE_PUNCTUATION = ".,،؛;:!?؟«»\"“”()[]"


def grounded_run(answer: str, passage: str, question: str, target: str,
                 checks: RenderChecks) -> tuple[str, float] | None:
    """(run, cosine): the shortest run of `passage`'s words that `answer`, written in the
    reader's language instead of copied ("Los Angeles Kings" for لوس أنجلس كينغز), renders:
    each of its content words has a counterpart in the run (a word within the word floor
    of it, or a word its name sounds like), and it passes every check of a rendering of
    the run. None when no run does: then it was the model's own knowledge, not the
    article's."""
    words = content_words(answer)
    passage_words = passage.split()
    bare = [word.strip(_EDGE_PUNCTUATION) for word in passage_words]
    positions = [i for i, word in enumerate(bare) if word and _plain(word) not in STOPWORDS]
    if not words or not positions or script_of(answer) != script_of_language(target):
        return None
    candidates = [bare[i] for i in positions]
    cosines = np.asarray(checks.word_similarity(words, candidates))
    matches = [{positions[j] for j, candidate in enumerate(candidates)
                if cosines[i, j] >= checks.min_word_similarity
                or (word[:1].isupper() and sounds_in_source(
                    word, source_skeletons(candidate, min_length=1), strict=True))}
               for i, word in enumerate(words)]
    if not all(matches):
        return None
    # every word's counterpart inside one window: the tightest window from each start
    longest = 2 * len(tokens(answer)) + 2
    runs = []
    for start in sorted(set().union(*matches)):
        ends = [min((p for p in found if p >= start), default=None) for found in matches]
        if None not in ends and max(ends) - start < longest:
            runs.append((start, max(ends)))
    for start, end in sorted(runs, key=lambda r: r[1] - r[0]):
        run = " ".join(passage_words[start:end + 1]).strip(_EDGE_PUNCTUATION + " ")
        problems, score = checked(answer, run, question, target, checks)
        if not problems:
            return run, score
    return None


def checked(rendering: str, source: str, question: str, target: str, checks: RenderChecks
            ) -> tuple[list[str], float | None]:
    """(problems, cosine): every check of `rendering` as the meaning of `source`, the
    embedding model's last; the cosine is None when the checks before it failed."""
    problems = rendering_problems(rendering, source, question, script_of_language(target),
                                  checks)
    if problems:
        return problems, None
    return checks.problems(rendering, source)


def render_clause(backend: Backend, clause: str, question: str, source: str, target: str,
                  checks: RenderChecks, samples: int = 0) -> tuple[str, float | None, list[str]]:
    """(rendering, its cosine, problems): the first of two greedy candidates (the phrase
    alone, then with its question) that passes every check; when neither does, of
    `samples` sampled ones (the two prompts in turn, fixed seeds; `render` asks for them
    only for a short part) the passing one nearest the phrase in meaning. A small model's
    greedy reply to a short phrase is often one wrong word ("roads" for السيارات) where a
    sampled one is right ("cars"); every candidate meets the same checks. Else "", the
    best cosine measured (None when no candidate got that far) and every problem met."""
    problems: list[str] = []
    best: float | None = None
    asked = (render_messages(clause, source, target),
             in_context_messages(clause, question, source, target))
    tried: set[str] = set()  # a sampled reply the same as one already checked is skipped
    for messages in asked:
        candidate = cleaned(backend.complete(messages, side=True))
        tried.add(candidate)
        found, score = checked(candidate, clause, question, target, checks)
        if not found:
            return candidate, score, []
        if score is not None:
            best = score if best is None else max(best, score)
        problems += [p for p in found if p not in problems]
    passed: dict[str, float] = {}
    for seed in range(1, samples + 1):
        candidate = cleaned(backend.sample(asked[(seed - 1) % 2], seed, side=True))
        if candidate in tried:
            continue
        tried.add(candidate)
        found, score = checked(candidate, clause, question, target, checks)
        if not found and score is not None:
            passed[candidate] = score
        elif score is not None:
            best = score if best is None else max(best, score)
    if passed:
        chosen = max(passed, key=lambda c: passed[c])
        return chosen, passed[chosen], []
    return "", best, problems


def render(backend: Backend, span: str, citations: list[int], question: str, source: str,
           target: str, checks: RenderChecks, own: str = "", samples: int = 0) -> Rendering:
    """One answer part rendered into `target`, clause by clause when long, and checked.
    `own` is the model's answer in the reader's language that the span was grounded in
    (`grounded_run`): checked again, it is the rendering, with no model call. A part of
    at most MAX_SAMPLED_WORDS words gets `samples` sampled renderings when its greedy
    ones fail (`render_clause`).

    A clause that fails is shown as "…" beside the ones that pass, which then need
    `min_clause_similarity` to their words (no passing sentence stands around them),
    unless the span holds a condition, an exception or a concession: then every clause
    must pass, since a clause shown without its condition says more than the article
    does."""
    result = Rendering(source=span, citations=citations, problems=[])
    if script_of(span) in (script_of_language(target), "other"):
        # already in the reader's script, or digits alone: the article's words are their
        # own rendering ("Amazoneregenwoud", "19.3%")
        result.text, result.similarity = span, 1.0
        return result
    if own:
        problems, score = checked(own, span, question, target, checks)
        if not problems:
            result.text, result.similarity = own, score
            return result
    parts = clauses(span)
    whole_only = len(parts) > 1 and is_qualified(span)
    if len(tokens(span)) > MAX_SAMPLED_WORDS:
        samples = 0
    pieces: list[str] = []
    scores: list[float] = []
    failed_scores: list[float] = []
    kept: list[int] = []  # where in `pieces` each of `scores` belongs
    chosen = _clauses_to_render(parts, question, checks, whole_only)
    for i, clause in enumerate(parts):
        if len(tokens(clause)) > MAX_RENDER_WORDS:
            text, score, problems = "", None, ["too long to render reliably"]
        elif i not in chosen:
            text, score, problems = "", None, [FAR_FROM_QUESTION]
        else:
            text, score, problems = render_clause(backend, clause, question, source,
                                                  target, checks, samples)
        result.problems += [p for p in problems if p not in result.problems]
        if problems:
            pieces.append("")
            if score is not None:
                failed_scores.append(score)
            if whole_only:
                break
        else:
            kept.append(len(pieces))
            pieces.append(text)
            scores.append(score)
    if "" in pieces and not whole_only:
        # a clause that stands alone beside "…" must mean its words more surely
        for at, score in zip(kept, scores):
            if score < checks.min_clause_similarity:
                pieces[at] = ""
                failed_scores.append(score)
                if TOO_FAR_ALONE not in result.problems:
                    result.problems.append(TOO_FAR_ALONE)
        scores = [score for at, score in zip(kept, scores) if pieces[at]]
    if not scores or (whole_only and result.problems):
        result.similarity = max(failed_scores, default=None)
        return result
    result.similarity = min(scores)
    result.clauses_withheld = pieces.count("")
    result.text = _joined(pieces)
    return result


def _clauses_to_render(parts: list[str], question: str, checks: RenderChecks,
                       whole_only: bool) -> set[int]:
    """Which clauses to render: each short enough, and of a long part (when not shown
    whole-or-nothing) only the MAX_CLAUSES_RENDERED nearest the question, since every
    clause costs the model one or two calls after the answer is already shown."""
    short = [i for i, clause in enumerate(parts) if len(tokens(clause)) <= MAX_RENDER_WORDS]
    if whole_only or len(short) <= MAX_CLAUSES_RENDERED:
        return set(short)
    nearest = sorted(short, key=lambda i: checks.similarity(parts[i], question),
                     reverse=True)
    return set(nearest[:MAX_CLAUSES_RENDERED])


def _joined(pieces: list[str]) -> str:
    """The clauses rendered, "…" standing for each run of withheld ones."""
    text = ""
    for piece in pieces:
        if not piece:
            if not text.endswith("…"):
                text += " …" if text else "…"
        elif text:
            text += (" " if text.endswith("…") else ", ") + piece
        else:
            text = piece
    return text


def _marked(rendering: Rendering) -> str:
    """The rendering with its [n]: after a closing "…", which stands for clauses, not
    before it as before a full stop."""
    if rendering.text.endswith("…"):
        return f"{rendering.text} " + "".join(f"[{n}]" for n in rendering.citations)
    return with_markers(rendering.text, rendering.citations)


def script_of_language(lang: str) -> str:
    return "arabic" if lang == "ar" else "latin"


def render_answer(backend: Backend, result: AnswerResult, source: str, target: str,
                  checks: RenderChecks, own: dict[int, str] | None = None,
                  samples: int = 0) -> Iterator[Token]:
    """Render each answer sentence from `source` into `target`; set `result.translation`
    to the kept renderings (with their citations) and the count withheld. Yields the kept
    text once, after the checks: nothing unchecked is streamed. `own` holds, by sentence,
    the model's answers in `target` that a sentence was grounded in (`grounded_run`)."""
    own = own or {}
    renderings = [render(backend, s.text, s.citations, result.standalone_question, source,
                         target, checks, own.get(i, ""), samples)
                  for i, s in enumerate(result.sentences)]
    kept = [r for r in renderings if r.text]
    withheld = len(renderings) - len(kept)
    clauses_withheld = sum(r.clauses_withheld for r in kept)
    text = " ".join(_marked(r) for r in kept)
    if kept:
        label = prompts.message("rendering_label", target)
        if withheld:
            label += " " + prompts.message("rendering_withheld", target).format(n=withheld)
        if clauses_withheld:
            label += " " + prompts.message("clauses_withheld", target).format(
                n=clauses_withheld)
    else:
        label = prompts.message("no_rendering", target)
    result.translation = {"text": text, "lang": target, "label": label, "withheld": withheld,
                          "clauses_withheld": clauses_withheld,
                          "renderings": [{"source": r.source, "text": r.text,
                                          "citations": r.citations, "similarity": r.similarity,
                                          "clauses_withheld": r.clauses_withheld,
                                          "problems": r.problems or []} for r in renderings]}
    if text:
        yield Token(text, part="translation")
