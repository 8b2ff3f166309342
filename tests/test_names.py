"""Names in a machine translation checked against the Arabic original by their sound."""

import pytest

from app.names import (
    arabic_skeletons,
    common_words_not_heard,
    latin_skeletons,
    names_not_in_source,
)
from index.sources import read_article
from tests.conftest import SEED


@pytest.mark.parametrize(("latin", "arabic"), [
    ("Blinken", "بلينكن"), ("Mayorkas", "مايوركاس"), ("Bárcena", "بارسينا"),
    ("Venezuela", "فنزويلا"), ("Mexico", "المكسيك"), ("Elizabeth", "إليزابيث"),
])
def test_a_name_and_its_arabic_spelling_share_a_skeleton(latin, arabic):
    assert latin_skeletons(latin) & arabic_skeletons(arabic)


@pytest.mark.parametrize(("latin", "arabic"), [
    ("John", "جون"), ("Michael", "مايكل"), ("Charles", "تشارلز"), ("George", "جورج"),
    ("Gilbert", "غيلبرت"), ("Ahmad", "أحمد"), ("Rose", "روز"), ("Pittsburgh", "بيتسبرغ"),
])
def test_every_reading_of_an_ambiguous_spelling_is_tried(latin, arabic):
    assert names_not_in_source([latin], arabic, strict=True) == []


@pytest.mark.parametrize(("latin", "arabic"), [
    ("Apple", "أبلين"), ("New York", "نيوكاسل"), ("Michael", "ماجد"), ("George", "جون"),
])
def test_the_readings_do_not_let_a_different_name_through(latin, arabic):
    assert names_not_in_source([latin], arabic, strict=True) == [latin]


def test_garbled_names_pass_and_invented_ones_are_caught_against_the_seed():
    source = read_article(SEED).text
    # the small model's renderings of names that are in the article: garbled, but not invented
    garbled = ["Anthony Blinken", "Mayurkash", "Elizabeth Shirowood Randall", "Barreña",
               "López Obrador", "Washington", "Biden", "Guatemala", "Latin America",
               "NBCNews", "United States", "December",
               # titles, translated rather than transliterated (seed-001-en's rendering
               # lost its whole sentence to "Assistant Secretary")
               "Assistant Secretary", "Deputy Chief", "National Security Council"]
    invented = ["Michelangelo Buonaparte", "Donald Trump", "Bloomberg News"]
    assert names_not_in_source(garbled + invented, source) == invented


def test_a_name_from_the_question_is_not_held_against_the_translation():
    assert names_not_in_source(["Pedro Gomez"], "قال المسؤول", "Did Pedro Gomez speak?") == []


def test_common_words_that_sound_like_nothing_in_the_source_are_listed_for_another_check():
    source = "مجلس الاتحاد والعائلات الأفرو أمريكية"
    names = ["Council", "Arab-American", "Friday"]
    assert names_not_in_source(names, source, strict=True) == []
    # American sounds like أمريكية; Council (مجلس) and Arab do not, nor Friday (الجمعة)
    # unless the question has it
    assert common_words_not_heard(names, source) == ["Council", "Arab", "Friday"]
    assert common_words_not_heard(names, source, "What happened on Friday?") == \
        ["Council", "Arab"]
