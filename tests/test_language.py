import pytest

from app.language import (
    asks_for_quantity,
    detect_language,
    is_yes_no_question,
    states_quantity,
    yes_no_contradiction,
)


@pytest.mark.parametrize(("question", "expected"), [
    ("Is the meeting in Washington?", True), ("Did Mexico ask for aid?", True),
    ("هل تتوقع الإدارة إعلانات كبيرة؟", True), ("What did Mexico request?", False),
    ("ماذا طلبت المكسيك؟", False), ("- هل حضر بلينكن؟", True),
])
def test_yes_no_questions(question, expected):
    assert is_yes_no_question(question) is expected


@pytest.mark.parametrize(("question", "expected"), [
    ("How many migrants crossed?", True), ("By what percentage did crossings fall?", True),
    ("كم عدد المهاجرين؟", True), ("بأي نسبة انخفض العدد؟", True), ("ما نسبة الانخفاض؟", True),
    ("What did Mexico request?", False), ("كيف ردت المكسيك؟", False),
])
def test_quantity_questions(question, expected):
    assert asks_for_quantity(question) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("توزيع 20 مليار دولار", True), ("إنفاق عشرين مليار دولار", True), ("50 percent", True),
    ("بدأت في 27 ديسمبر.", False), ("on December 27", True), ("in 2024", False),
    ("no figures here", False), ("في دول نصف الكرة الغربي", False),
])
def test_stated_quantities(text, expected):
    # "December 27": the day follows the month in English, so it reads as a number; Sanad
    # errs toward answering there, and the model's NOT_FOUND remains.
    assert states_quantity(text) is expected


def test_language_detection():
    assert detect_language("ماذا طلبت المكسيك؟") == "ar"
    assert detect_language("What did Mexico request?") == "en"


BASIS_WILL_NOT_STOP = ("على سبيل المثال، لن تتوقف المكسيك عن مساعدة الولايات المتحدة فيما يتصل "
                       "بالهجرة إذا لم تلتزم بإنفاق عشرين مليار دولار في المنطقة.")
BASIS_INTERESTED = "وقال مسؤول إن الولايات المتحدة مهتمة بالعمل مع المكسيك لمعالجة الأسباب الجذرية."


@pytest.mark.parametrize(("question", "answer", "basis", "flagged"), [
    # the flips the small model made on the seed questions
    ("هل ستتوقف المكسيك عن المساعدة إذا لم تلتزم الولايات المتحدة؟",
     "نعم، ستتوقف المكسيك عن مساعدة الولايات المتحدة إذا لم تلتزم بإنفاق عشرين مليار دولار",
     BASIS_WILL_NOT_STOP, True),
    ("Will Mexico stop helping if the US does not commit the money?",
     "نعم، لن تتوقف المكسيك عن مساعدة الولايات المتحدة إذا لم تلتزم", BASIS_WILL_NOT_STOP, True),
    # faithful answers pass
    ("Will Mexico stop helping if the US does not commit the money?",
     "لا، لن تتوقف المكسيك عن مساعدة الولايات المتحدة إذا لم تلتزم", BASIS_WILL_NOT_STOP, False),
    ("هل الولايات المتحدة مهتمة بالعمل مع المكسيك؟",
     "نعم، الولايات المتحدة مهتمة بالعمل مع المكسيك", BASIS_INTERESTED, False),
    ("Is the US interested in working with Mexico?", "No.", BASIS_INTERESTED, True),
])
def test_yes_no_contradictions(question, answer, basis, flagged):
    assert bool(yes_no_contradiction(question, answer, basis)) is flagged
