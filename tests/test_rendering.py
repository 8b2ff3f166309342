"""The checks a rendering of the article's words must pass before a reader sees it, on
hand-made cases: numbers as values in digits and words, names by sound, length."""

from __future__ import annotations

import numpy as np
import pytest

from app import prompts
from app.answering.rendering import (
    RenderChecks,
    _constructs,
    capitalised_words,
    clauses,
    cleaned,
    content_words,
    coverage_words,
    grounded_run,
    in_context_from,
    is_qualified,
    latin_words_changed,
    render,
    render_clause,
    render_messages,
    rendering_problems,
)
from app.llm import SAMPLING, Backend
from app.numbers import numbers_in
from tests.fakes import FakeLLM

SPAN = "20 مليار دولار كمساعدات لأمريكا اللاتينية ورفع العقوبات عن فنزويلا"


@pytest.mark.parametrize("text, values", [
    ("20 مليار دولار", {20, 10**9}),
    ("$20 billion", {20, 10**9}),
    ("ستة", {6}),
    ("six Grammys", {6}),
    ("بخمسة آلاف", {5, 1000}),
    ("وأربعة", {4}),
    ("1,000 people", {1000}),
    # thousands grouped by a separator written more than once, the decimal point last
    ("حوالي 1.002.000 كيلومتر", {1002000}),
    ("1,002,000", {1002000}),
    ("1.002,5", {1002.5}),
    ("1,002.5", {1002.5}),
    ("36,9%", {36.9}),
    ("3.5 million", {3.5, 10**6}),
    ("عام ١٩٢٣", {1923}),
    ("more than half", {0.5}),
    ("نصف", {0.5}),
    ("Tennessee and Seventh street", set()),  # words holding number words are not numbers
    ("الستار", set()),
    # 11 to 19 in Arabic are a unit then ten, as cardinals and as ordinals
    ("ثلاثة عشر لاعبا", {13}),
    ("الحادية عشرة", {11}),
    ("القرن التاسع عشر", {19}),
    ("the nineteenth century", {19}),
    ("the 19th century", {19}),
    ("عشر سنوات", {10}),
    # "third" is a fraction after a count, a rank (no number, like الثالث) otherwise
    ("a third of the votes", {1 / 3}),
    ("two thirds", {2, 1 / 3}),
    ("the third busiest airport", set()),
    ("الثالث", set()),
    # a Roman numeral after a capitalised word; below 11 a rank, like "second"
    ("Louis XIV", {14}),
    ("Super Bowl XXXIII", {33}),
    ("Super Bowl XLIX's winner", {49}),
    ("World War II", set()),
    ("licensed under CC BY-SA", set()),  # not after a capitalised word
    ("Then I left", set()),
])
def test_numbers_are_read_as_values_from_digits_and_words(text, values):
    assert numbers_in(text) == {round(v, 6) for v in values}


def test_a_faithful_rendering_passes():
    rendering = "20 billion dollars in aid to Latin America and lifting the sanctions on Venezuela"
    assert rendering_problems(rendering, SPAN, "What did Mexico request?", "latin") == []


@pytest.mark.parametrize("rendering, problem", [
    ("30 billion dollars in aid to Latin America", "numbers differ"),
    ("billions in aid to Latin America and Venezuela", "numbers differ"),
    ("20 billion dollars for Michelangelo Buonaparte", "a name"),
    ("20 billion dollars for New York University", "a name"),  # short skeletons, no match
    ("٢٠ مليار دولار", "reader's language"),
    ("", "reader's language"),
    ("20 billion dollars in aid to Latin America and lifting the sanctions on Venezuela, "
     "a plan that the region's leaders have long asked for and that the White House has "
     "refused for many years because of the costs", "much longer"),
])
def test_a_rendering_that_changes_what_the_article_says_fails(rendering, problem):
    problems = rendering_problems(rendering, SPAN, "What did Mexico request?", "latin")
    assert any(problem in p for p in problems)


@pytest.mark.parametrize("rendering, span", [("1944", "عام 1944"), ("63%", "63%"),
                                              ("December 27", "27 ديسمبر")])
def test_numbers_and_dates_render_in_any_script(rendering, span):
    assert rendering_problems(rendering, span, "When?", "latin") == []


def test_a_number_from_eleven_to_nineteen_is_compared_whole():
    source = "حتى الربع الثاني من القرن التاسع عشر"
    assert rendering_problems("until the second quarter of the 19th century", source,
                              "How long did it last?", "latin") == []
    assert rendering_problems("3 players", "ثلاثة عشر لاعبا", "How many?", "latin")
    # its words are the number check's: no word of the rendering must stand for them
    assert coverage_words(source) == ["حتى", "الثاني", "القرن"]


def test_a_roman_numeral_is_a_number_not_a_name():
    assert rendering_problems("Louis XIV", "لويس الرابع عشر", "Which king?", "latin") == []
    assert rendering_problems("Super Bowl XXXIII", "السوبر بول 33", "Which?", "latin") == []
    assert rendering_problems("Louis XV", "لويس الرابع عشر", "Which king?", "latin")
    assert content_words("Louis XIV and Henry III") == ["Louis", "Henry", "III"]


def test_a_short_name_must_match_the_source_exactly():
    assert rendering_problems("Apple in 1998", "أبلين سنة 1998", "Where?", "latin")
    assert rendering_problems("Ali in 1998", "علي سنة 1998", "Who?", "latin") == []
    assert rendering_problems("Tokyo in 1998", "طوكيو سنة 1998", "Where?", "latin") == []


def test_a_name_from_the_question_is_not_an_invention():
    # "Marlee Matlin" may be written as the reader asked it, even if the span spells it
    # in a way the skeleton match misses
    assert rendering_problems("the anthem that Marlee Matlin signed", "النشيد الذي ترجمته",
                              "What did Marlee Matlin translate?", "latin") == []


def test_a_rendering_that_only_restates_the_question_fails():
    assert "it only restates the question" in rendering_problems(
        "what Mexico did after those talks", "عمليات ترحيل الفنزويليين",
        "What did Mexico do after those talks?", "latin")


def test_latin_words_of_the_span_are_kept_as_written():
    source = "وبالفرنسية: Forêt amazonienne، وبالألمانية: Amazoneregenwoud"
    assert latin_words_changed("in French, Amazonière, in German, Amazoneregenwoud",
                               source) == ["Forêt", "amazonienne"]
    assert "a word in the reader's script not kept as written" in rendering_problems(
        "in French, Amazonière, in German, Amazoneregenwoud", source, "What is it called?",
        "latin")
    # case and accents aside
    assert latin_words_changed("in French, foret Amazonienne, in German, Amazoneregenwoud",
                               source) == []
    assert latin_words_changed("published on NBCNews.com",
                               "تم النشر على موقع NBCNews.com") == []


def test_a_yes_no_answer_may_restate_its_question():
    assert rendering_problems("Yes, the United States is interested in working with Mexico",
                              "نعم، الولايات المتحدة مهتمة بالعمل مع المكسيك",
                              "Is the United States interested in working with Mexico?",
                              "latin") == []


def test_a_long_answer_is_rendered_clause_by_clause():
    long = ("في وقت سابق من هذا الشهر، دعا الرئيس المكسيكي الولايات المتحدة علنا إلى توزيع "
            "20 مليار دولار كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي، ورفع "
            "العقوبات عن فنزويلا")
    # the middle clause, still too long, is cut before the phrase its preposition opens
    assert clauses(long) == LONG_CLAUSES
    assert clauses("واشنطن يوم الجمعة") == ["واشنطن يوم الجمعة"]
    # with no preposition late enough, before a word joined by "and" (as late as fits)
    aid = ("إلى توزيع 20 مليار دولار كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي "
           "وتعليق العقوبات المفروضة على فنزويلا")
    assert clauses(aid) == [aid[:aid.index(" وتعليق")], aid[aid.index("وتعليق"):]]
    no_opener = " ".join(["كلمة"] * 20)
    assert clauses(f"{no_opener}، ثم شيء آخر هنا") == [no_opener, "ثم شيء آخر هنا"]


LONG_CLAUSES = ["في وقت سابق من هذا الشهر",
                "دعا الرئيس المكسيكي الولايات المتحدة علنا",
                "إلى توزيع 20 مليار دولار كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي",
                "ورفع العقوبات عن فنزويلا"]


class ClauseBackend:
    """Renders each clause as `renderings` says (the model's second try gets the same)."""

    def __init__(self, renderings: dict[str, str]):
        self.renderings = renderings
        self.asked: list[str] = []

    def complete(self, messages, side=False):
        clause = messages[-1].content.rsplit("\n", 1)[-1].strip()
        clause = next(c for c in self.renderings if clause.endswith(c))
        self.asked.append(clause)
        return self.renderings[clause]


PASS_ALL = RenderChecks(lambda a, b: 1.0, lambda a, b: np.ones((len(a), len(b))),
                        0.5, 0.55, 0.75, 0.5)


def near_question(similarity: float = 0.9):
    """Cosines by hand: "in a month" is far from the question, "lifting" near its clause
    at `similarity`, everything else near at 0.9."""
    def cosine(a, b):
        return 0.3 if "الشهر" in a else similarity if "lifting" in a else 0.9
    return RenderChecks(cosine, PASS_ALL.word_similarity, 0.5, 0.55, 0.75, 0.5, 0.7)


def test_a_clause_that_fails_is_shown_as_an_ellipsis_beside_those_that_pass():
    backend = ClauseBackend(dict(zip(LONG_CLAUSES, [
        "earlier this month",
        "the president called on the United States 5 times",  # a number not there
        "to distribute $20 billion in aid to Latin America and the Caribbean",
        "and lifting the sanctions on Venezuela"])))
    rendering = render(backend, "، ".join(LONG_CLAUSES), [1],
                       "What did he call for?", "ar", "en", PASS_ALL)
    assert rendering.text == ("earlier this month … to distribute $20 billion in aid to Latin "
                              "America and the Caribbean …")
    # only the three clauses nearest the question are rendered (all equally near here)
    assert backend.asked.count(LONG_CLAUSES[3]) == 0
    assert rendering.clauses_withheld == 2 and "times" not in rendering.text
    assert "number" in rendering.problems[0]
    backend.asked.clear()
    rendering = render(backend, "، ".join(LONG_CLAUSES), [1], "What did he call for?", "ar",
                       "en", near_question())
    assert rendering.text == ("… to distribute $20 billion in aid to Latin America and the "
                              "Caribbean, and lifting the sanctions on Venezuela")
    assert LONG_CLAUSES[0] not in backend.asked and rendering.clauses_withheld == 2
    # beside "…", a clause needs the stricter clause floor on its own
    rendering = render(backend, "، ".join(LONG_CLAUSES), [1], "What did he call for?", "ar",
                       "en", near_question(0.65))
    assert rendering.text.endswith("the Caribbean …") and rendering.clauses_withheld == 3
    assert "a clause too far in meaning to stand alone" in rendering.problems


def test_a_span_with_a_condition_is_rendered_whole_or_not_at_all():
    main = "لن تتوقف المكسيك عن مساعدة الولايات المتحدة فيما يتصل بالهجرة"
    condition = "إذا لم تلتزم بإنفاق عشرين مليار دولار في المنطقة"
    assert is_qualified(f"{main} {condition}") and is_qualified("ما لم تلتزم")
    assert not is_qualified(main) and is_qualified("ولكن المسؤولين")
    backend = ClauseBackend({main: "Mexico will not stop helping the United States on migration",
                             condition: "if it does not spend 30 billion dollars"})
    rendering = render(backend, f"{main}، {condition}", [1], "Would Mexico stop?", "ar", "en",
                       PASS_ALL)
    assert rendering.text == "" and rendering.clauses_withheld == 0
    assert len(rendering.problems) == 1 and "number" in rendering.problems[0]
    # without the condition, the clause that passes is shown beside an ellipsis
    backend.renderings[condition] = backend.renderings[main]
    unqualified = condition.replace("إذا لم تلتزم", "مع الالتزام")
    backend.renderings[unqualified] = "if it does not spend 30 billion dollars"
    assert render(backend, f"{main}، {unqualified}", [1], "Would Mexico stop?", "ar", "en",
                  PASS_ALL).text.endswith("on migration …")


def test_the_small_models_wrapping_is_cleaned_off():
    assert cleaned('Here is the translation: "20 billion dollars" [1]\n\nNote: literal.') \
        == "20 billion dollars"


def test_render_prompt_shows_examples_in_the_asked_direction():
    to_english = render_messages("عام 1923", "ar", "en")
    to_arabic = render_messages("in 1923", "en", "ar")
    pairs = len(prompts.examples("render"))
    assert len(to_english) == len(to_arabic) == 1 + 2 * pairs + 1
    assert to_english[1].content == to_arabic[2].content  # the same pair, turned round
    assert to_english[-1].content == "عام 1923" and "from Arabic into English" in \
        to_english[0].content


def test_examples_files_are_parsed_into_blocks(tmp_path, monkeypatch):
    (tmp_path / "demo_examples.txt").write_text(
        "# a comment\nq: one\nq: two\na: x\n\n\nq: three\na: y\n", encoding="utf-8")
    monkeypatch.setattr(prompts, "_file", lambda name: tmp_path / name)
    prompts.examples.cache_clear()
    try:
        assert prompts.examples("demo") == ({"q": "one\ntwo", "a": "x"}, {"q": "three", "a": "y"})
        (tmp_path / "bad_examples.txt").write_text("no key here\n", encoding="utf-8")
        with pytest.raises(ValueError, match="key: value"):
            prompts.examples("bad")
    finally:
        prompts.examples.cache_clear()


# Cosines a cross-lingual model might give, by hand: each English word with each Arabic one.
WORD_COSINES = {("ambitious", "طموحة"): 0.7, ("agenda", "أجندة"): 0.8,
                ("healthy", "طموحة"): 0.3, ("diet", "أجندة"): 0.35,
                ("sweden", "السويد"): 0.9, ("norway", "السويد"): 0.68,
                ("african", "الأفرو"): 0.8, ("arab", "الأفرو"): 0.7,
                ("council", "المجلس"): 0.85,
                ("spend", "بإنفاق"): 0.76, ("spend", "تلتزم"): 0.4, ("commit", "تلتزم"): 0.7,
                ("region", "المنطقة"): 0.78, ("alicia", "أليسيا"): 0.3,
                ("billion", "مليار"): 0.84, ("if", "إذا"): 0.75}


def cosines_from(table: dict[tuple[str, str], float]):
    """Word cosines from `table`, in either order (English, Arabic) or (Arabic, English),
    0.1 for any other pair."""
    def cosines(words, other_words):
        def cosine(a, b):
            return table.get((a.lower(), b), table.get((b.lower(), a), 0.1))

        return np.array([[cosine(w, o) for o in other_words] for w in words])
    return cosines


hand_made_cosines = cosines_from(WORD_COSINES)


def test_every_content_word_of_a_rendering_needs_a_counterpart_in_the_span():
    checks = RenderChecks(lambda a, b: 1.0, hand_made_cosines, 0.5, 0.55, 0.75, 0.5)
    assert checks.unmatched("an ambitious agenda", "أجندة طموحة") == []
    assert checks.unmatched("a healthy agenda", "أجندة طموحة") == ["healthy"]
    assert checks.unmatched("a healthy diet", "أجندة طموحة") == ["healthy", "diet"]
    assert checks.problems("a healthy diet", "أجندة طموحة")[0] \
        == ["2 word(s) with no counterpart in the article's words"]


def test_content_words_leave_out_function_words_numbers_and_markers():
    assert content_words("The 20 billion dollars in aid [1]") == ["billion", "dollars", "aid"]
    # diacritics stay inside their word (\w alone would cut المعلّم at its shadda), and a
    # function word with them is still one
    assert content_words("المعلّم الروحي مِن high-definition") \
        == ["المعلّم", "الروحي", "high-definition"]
    # a function word after a prefixed "and" needs no cover ("which remained black and
    # white"); فان does: it is as often "Van" (فان نويس)
    assert coverage_words("والذي بقى بالأبيض والأسود ولم يتغير") \
        == ["بقى", "بالأبيض", "والأسود", "يتغير"]
    assert coverage_words("ومطار فان نويس") == ["ومطار", "فان", "نويس"]


class NoModel:
    def complete(self, messages, side=False):
        raise AssertionError("the model was asked to render text already in the reader's script")


@pytest.mark.parametrize("span", ["Amazoneregenwoud", "19.3%", "Apollo 11"])
def test_a_span_in_the_readers_script_or_digits_is_its_own_rendering(span):
    rendering = render(NoModel(), span, [2], "What is the Dutch name?", "ar", "en", PASS_ALL)
    assert (rendering.text, rendering.problems, rendering.citations) == (span, [], [2])


def test_a_name_that_translates_a_word_of_the_span_is_no_invention():
    checks = RenderChecks(lambda a, b: 1.0, hand_made_cosines, 0.5, 0.55, 0.75, 0.5)
    # "Sweden" does not sound like السويد, but translates it; "Norway" is only near it
    assert rendering_problems("Sweden", "السويد", "Where is it based?", "latin")
    assert rendering_problems("Sweden", "السويد", "Where is it based?", "latin", checks) == []
    assert rendering_problems("Norway", "السويد", "Where is it based?", "latin", checks)


def test_a_common_word_must_translate_a_word_of_the_span_when_it_sounds_like_none():
    checks = RenderChecks(lambda a, b: 1.0, hand_made_cosines, 0.5, 0.55, 0.75, 0.5)
    source = "العائلات الأفرو أمريكية"
    # "Arab" and "American" are common words: without the embedding checks they pass
    assert rendering_problems("Arab-American families", source, "Who?", "latin") == []
    assert rendering_problems("Arab-American families", source, "Who?", "latin", checks) \
        == ["a name that sounds like nothing in the article's words"]
    # "American" sounds like أمريكية, "African" translates الأفرو
    assert rendering_problems("African American families", source, "Who?", "latin",
                              checks) == []
    assert rendering_problems("the Council", "المجلس", "Who?", "latin", checks) == []
    # asked about in the question: nothing to check
    assert rendering_problems("Arab families", source, "Were they Arab?", "latin",
                              checks) == []


def test_a_rendering_must_account_for_every_content_word_of_the_span():
    checks = RenderChecks(lambda a, b: 1.0, hand_made_cosines, 0.5, 0.55, 0.75, 0.5)
    source = "إذا لم تلتزم بإنفاق عشرين مليار دولار في المنطقة"
    # "spend" is near بإنفاق, but nothing renders تلتزم (commit): the condition changed
    assert checks.uncovered("if it did not spend $20 billion in the region", source) \
        == ["تلتزم"]
    assert checks.problems("if it did not spend $20 billion in the region", source)[0] \
        == ["1 of the article's words left out"]
    assert checks.problems("if it does not commit to spend $20 billion in the region",
                           source)[0] == []


def test_coverage_skips_numbers_and_grammar_and_hears_names():
    checks = RenderChecks(lambda a, b: 1.0, hand_made_cosines, 0.5, 0.55, 0.75, 0.5)
    # number words are compared by value, تم is grammar, a name may be written as it sounds
    assert coverage_words("تم إنفاق عشرين مليار دولار") == ["إنفاق", "دولار"]
    assert checks.uncovered("Alicia", "أليسيا") == []
    assert checks.uncovered("Alice", "أليسيا بارسينا") == ["بارسينا"]
    # digits alone have no words to compare
    assert checks.uncovered("1923", "عام 1923") == []


def test_multiplier_words_are_counterparts_by_the_list_and_nothing_else_is():
    checks = RenderChecks(lambda a, b: 1.0, cosines_from({("weight", "وزنها"): 0.8,
                                                          ("price", "وزنها"): 0.3,
                                                          ("ten", "عشرة"): 0.9}),
                          0.5, 0.6, 0.75, 0.5)
    source = "عشرة أضعاف وزنها"
    assert checks.problems("ten times its weight", source)[0] == []
    assert checks.problems("tenfold its weight", source)[0] != []  # not in the list
    assert checks.unmatched("ten times its price", source) == ["price"]
    # the list pairs multipliers only: "times" covers nothing else, and nothing else covers
    # أضعاف
    assert checks.unmatched("ten times its weight", "عشرة كيلوغرامات وزنها") == ["times"]
    assert checks.uncovered("ten its weight", source) == ["أضعاف"]


def test_a_sentence_connective_is_no_name_and_no_word_to_match():
    assert capitalised_words("However, his views remain unclear") == []
    assert content_words("However, his views remain unclear") == ["views", "remain", "unclear"]
    assert capitalised_words("Hamilton, his views") == ["Hamilton"]
    # a preposition with a pronoun (أدلى بها, "made [them]") is grammar in English
    assert coverage_words("تصريحات أدلى بها") == ["تصريحات", "أدلى"]


def in_context_by_hand(read: dict[tuple[str, str], float]):
    """Cosines of words read in their texts, by hand; None when a text holds "?" (a model
    that cannot give them)."""
    def in_context(text, words, source, source_words):
        if "?" in text:
            return None
        return np.array([[read.get((w.lower(), s), 0.0) for s in source_words]
                         for w in words])
    return in_context


def test_a_word_passes_when_either_alone_or_in_its_sentence_it_meets_the_floor():
    source = "مسؤول كبير في الإدارة"
    alone = {("senior", "كبير"): 0.7, ("administration", "الإدارة"): 0.8,
             ("official", "مسؤول"): 0.42}

    def cosines(words, other_words):
        return np.array([[alone.get((w.lower(), o), 0.1) for o in other_words]
                         for w in words])

    floors = (0.5, 0.55, 0.75, 0.5, 0.7)
    without = RenderChecks(lambda a, b: 1.0, cosines, *floors)
    assert without.problems("a senior official in the administration", source)[0] \
        == ["1 word(s) with no counterpart in the article's words"]
    read = in_context_by_hand({("official", "مسؤول"): 0.6, ("minister", "مسؤول"): 0.3})
    checks = RenderChecks(lambda a, b: 1.0, cosines, *floors, in_context=read)
    assert checks.problems("a senior official in the administration", source)[0] == []
    # low both ways: still no counterpart; and the word of the span is still left out
    assert checks.problems("a senior minister in the administration", source)[0] \
        == ["1 word(s) with no counterpart in the article's words"]
    assert checks.uncovered("a senior in the administration", source) == ["مسؤول"]
    # a model that cannot read words in context: the cosine alone decides
    assert checks.problems("a senior official in the administration?", source)[0] \
        == ["1 word(s) with no counterpart in the article's words"]


def test_a_name_may_translate_a_word_of_the_span_as_read_in_context():
    source = "المحكمة العليا"
    alone = {("court", "المحكمة"): 0.8, ("supreme", "العليا"): 0.5}

    def cosines(words, other_words):
        return np.array([[alone.get((w.lower(), o), 0.1) for o in other_words]
                         for w in words])

    floors = (0.5, 0.55, 0.75, 0.5, 0.7)
    question = "Which court ruled?"
    assert rendering_problems("the Supreme Court", source, question, "latin",
                              RenderChecks(lambda a, b: 1.0, cosines, *floors)) \
        == ["a name that sounds like nothing in the article's words"]
    read = in_context_by_hand({("supreme", "العليا"): 0.8})
    assert rendering_problems("the Supreme Court", source, question, "latin",
                              RenderChecks(lambda a, b: 1.0, cosines, *floors,
                                           in_context=read)) == []


def test_a_candidate_is_read_in_context_once_for_all_its_checks():
    reads = []

    def word_vectors(texts):
        reads.append(tuple(texts))
        return [{w: np.ones(2) / np.sqrt(2) for w in content_words(t)} for t in texts]

    checks = RenderChecks(lambda a, b: 1.0, lambda a, b: np.zeros((len(a), len(b))),
                          0.5, 0.55, 0.75, 0.5, 0.7, in_context=in_context_from(word_vectors))
    source = "المحكمة العليا"
    assert rendering_problems("the Supreme Court", source, "Which court?", "latin",
                              checks) == []
    assert checks.problems("the Supreme Court", source)[0] == []
    assert checks.uncovered("the Supreme Court", source) == []
    assert reads == [("the Supreme Court", source)]


def test_a_word_that_renders_one_word_of_the_span_does_not_vouch_weakly_for_another():
    cosines_by_hand = {("americans", "الأميركيون"): 0.93, ("americans", "الجارية"): 0.54,
                       ("content", "المحتوى"): 0.81, ("high-definition", "الدقة"): 0.54,
                       ("high-definition", "العالية"): 0.68, ("patents", "الاختراع"): 0.7,
                       ("patents", "براءات"): 0.55, ("constitution", "الدستور"): 0.86,
                       ("constitution", "الفيكتوري"): 0.5}

    def cosines(words, other_words):
        return np.array([[cosines_by_hand.get((w.lower(), o), 0.1) for o in other_words]
                         for w in words])

    checks = RenderChecks(lambda a, b: 1.0, cosines, 0.5, 0.6, 0.75, 0.5)
    # "Americans" renders الأميركيون: at 0.54 it does not also cover الجارية (ongoing)
    assert checks.uncovered("the Americans", "الأميركيون الجارية") == ["الجارية"]
    # ...nor "Constitution" the adjective beside its noun (الفيكتوري, Victorian)
    assert checks.uncovered("the Constitution", "الدستور الفيكتوري") == ["الفيكتوري"]
    # a compound stands for one word per part; ذو (having) is grammar
    assert checks.uncovered("high-definition content", "المحتوى ذو الدقة العالية") == []
    # a construct (an indefinite noun before a definite one) is often one English word
    assert checks.uncovered("patents", "براءات الاختراع") == []
    assert _constructs("تحوي كاليفورنيا الجنوبية مطار لوس أنجلس الدولي") \
        == {"أنجلس": {"الدولي"}, "الدولي": {"أنجلس"}}  # كاليفورنيا is no ك+ال
    # غير makes one English word of the word after it ("uncertain" for غير مؤكدة)
    assert _constructs("تبقى آراؤه غير مؤكدة")["غير"] == {"مؤكدة"}
    # within the word floor, one word may cover two
    strong = {**cosines_by_hand, ("americans", "الجارية"): 0.62}
    checks = RenderChecks(lambda a, b: 1.0, lambda w, o: np.array(
        [[strong.get((x.lower(), y), 0.1) for y in o] for x in w]), 0.5, 0.6, 0.75, 0.5)
    assert checks.uncovered("the Americans", "الأميركيون الجارية") == []


# A passage written for Sanad: two teams of one city, named alike.
TEAMS = ("تلعب في المدينة فرق كثيرة، مثل لوس أنجلس ليكرز في كرة السلة "
         "(ولوس أنجلس كينغز في هوكي الجليد).")
TEAM_COSINES = {("team", "فرق"): 0.8, ("basketball", "السلة"): 0.7, ("city", "المدينة"): 0.9,
                ("los", "لوس"): 0.8, ("los", "ولوس"): 0.8, ("angeles", "أنجلس"): 0.8,
                ("kings", "كينغز"): 0.8, ("lakers", "ليكرز"): 0.8}
team_cosines = cosines_from(TEAM_COSINES)


def test_an_answer_in_the_readers_language_is_grounded_in_the_tightest_run_it_renders():
    checks = RenderChecks(lambda a, b: 1.0, team_cosines, 0.5, 0.6, 0.75, 0.5)
    # Los and Angeles are also the Lakers' words: the run holding all three is the
    # Kings' own, without its bracket
    assert grounded_run("Los Angeles Kings", TEAMS, "Which hockey team?", "en", checks) \
        == ("ولوس أنجلس كينغز", 1.0)
    # a word with no counterpart in the passage is the model's own knowledge
    assert grounded_run("Los Angeles Rams", TEAMS, "Which team?", "en", checks) is None
    # an answer in the articles' script is no rendering
    assert grounded_run("لوس أنجلس كينغز", TEAMS, "Which team?", "en", checks) is None


def test_a_grounded_answer_is_its_own_rendering_once_checked_again():
    checks = RenderChecks(lambda a, b: 1.0, team_cosines, 0.5, 0.6, 0.75, 0.5)
    rendering = render(NoModel(), "لوس أنجلس كينغز", [1], "Which hockey team?", "ar", "en",
                       checks, own="Los Angeles Kings")
    assert (rendering.text, rendering.problems) == ("Los Angeles Kings", [])
    # one that fails the checks against the span is not shown: the model renders anew
    backend = ClauseBackend({"لوس أنجلس كينغز": "Los Angeles Kings"})
    rendering = render(backend, "لوس أنجلس كينغز", [1], "Which hockey team?", "ar", "en",
                       checks, own="the Los Angeles Kings team")
    assert rendering.text == "Los Angeles Kings" and backend.asked


class SamplingBackend:
    """Greedy replies from `greedy` (one per prompt, in turn), sampled ones by seed."""

    def __init__(self, greedy: list[str], sampled: dict[int, str]):
        self.greedy, self.sampled = list(greedy), sampled
        self.seeds: list[int] = []

    def complete(self, messages, side=False):
        return self.greedy.pop(0)

    def sample(self, messages, seed, side=False):
        self.seeds.append(seed)
        return self.sampled[seed]


STEELERS = "بيتسبرغ ستيلرز"
BEAT = "Who did the Broncos beat?"
# words paired above the word floor, below the name floor: a name must sound like the
# article's words to pass
BY_SOUND = RenderChecks(lambda a, b: 0.8, lambda a, b: np.full((len(a), len(b)), 0.7),
                        0.5, 0.55, 0.75, 0.5)


def test_sampled_renderings_are_tried_only_when_both_greedy_ones_fail():
    backend = SamplingBackend(["Pittsburgh Steelers"], {})
    assert render_clause(backend, STEELERS, BEAT, "ar", "en", BY_SOUND, 3)[0] \
        == "Pittsburgh Steelers"
    assert backend.seeds == []
    backend = SamplingBackend(["Bisbee Stilwell", "Denver Broncos"],
                              {1: "Birmingham", 2: "Pittsburgh Steelers", 3: "Birmingham"})
    text, score, problems = render_clause(backend, STEELERS, BEAT, "ar", "en", BY_SOUND, 3)
    assert (text, problems) == ("Pittsburgh Steelers", []) and backend.seeds == [1, 2, 3]
    # with sampling off, the failures stand: nothing unchecked is shown
    backend = SamplingBackend(["Bisbee Stilwell", "Denver Broncos"], {})
    text, score, problems = render_clause(backend, STEELERS, BEAT, "ar", "en", BY_SOUND, 0)
    assert text == "" and any("name" in p for p in problems) and backend.seeds == []


def test_of_the_sampled_renderings_that_pass_the_nearest_in_meaning_is_kept():
    def cosine(a, b):
        return 0.6 if "Steeler" in a and "the" in a else 0.8
    checks = RenderChecks(cosine, BY_SOUND.word_similarity, 0.5, 0.55, 0.75, 0.5)
    backend = SamplingBackend(["Denver Broncos", "Denver Broncos"],
                              {1: "the Pittsburgh Steelers", 2: "Pittsburgh Steelers",
                               3: "Bisbee Stilwell"})
    text, score, _ = render_clause(backend, STEELERS, BEAT, "ar", "en", checks, 3)
    assert (text, score) == ("Pittsburgh Steelers", 0.8)


def test_when_no_sampled_rendering_passes_none_is_shown():
    backend = SamplingBackend(["Denver Broncos", "Denver Broncos"],
                              {1: "Birmingham Stirling", 2: "Denver Broncos", 3: "Steel City"})
    rendering = render(backend, STEELERS, [1], BEAT, "ar", "en", BY_SOUND, samples=3)
    assert rendering.text == "" and rendering.problems


def test_a_sampled_reply_asks_the_client_for_sampling_with_its_seed():
    seen: list[dict] = []

    class Recording(FakeLLM):
        def complete(self, prompt, formatted=False, **kwargs):
            seen.append(kwargs)
            return super().complete(prompt)

    backend = Backend("openai", Recording(lambda prompt: "cars"))
    messages = render_messages("السيارات", "ar", "en")
    assert backend.sample(messages, 2, side=True) == "cars"
    assert seen == [{"seed": 2, **SAMPLING}] and SAMPLING["temperature"] > 0


def test_a_long_clause_gets_no_sampled_renderings():
    clause = "تتكون كاليفورنيا الجنوبية من مجال إحصائي مشترك"
    backend = SamplingBackend(["Bisbee Stilwell", "Denver Broncos"], {})
    rendering = render(backend, clause, [1], BEAT, "ar", "en", BY_SOUND, samples=3)
    assert rendering.text == "" and rendering.problems and backend.seeds == []


def test_the_short_clauses_of_a_long_part_get_no_sampled_renderings():
    backend = SamplingBackend(["Denver Broncos"] * 2 * len(LONG_CLAUSES), {})
    rendering = render(backend, "، ".join(LONG_CLAUSES), [1], BEAT, "ar", "en", BY_SOUND,
                       samples=3)
    assert rendering.text == "" and backend.seeds == []


def test_a_sampled_reply_the_same_as_a_greedy_one_is_not_checked_again():
    asked: list[str] = []

    def cosine(a, b):
        asked.append(a)
        return 0.8 if a == "Pittsburgh Steelers" else 0.4  # half a name is too far

    checks = RenderChecks(cosine, BY_SOUND.word_similarity, 0.5, 0.55, 0.75, 0.5)
    backend = SamplingBackend(["Pittsburgh", "Steelers"],
                              {1: "Pittsburgh", 2: "Steelers", 3: "Pittsburgh Steelers"})
    assert render_clause(backend, STEELERS, BEAT, "ar", "en", checks, 3)[0] \
        == "Pittsburgh Steelers"
    assert asked.count("Pittsburgh") == 1 and asked.count("Steelers") == 1


def test_only_clients_that_draw_replies_are_asked_for_samples():
    assert Backend("openai", FakeLLM(lambda prompt: "")).can_sample
    assert Backend("local", FakeLLM(lambda prompt: "")).can_sample
    assert not Backend("ollama", FakeLLM(lambda prompt: "")).can_sample
    assert not Backend("extractive", None).can_sample
