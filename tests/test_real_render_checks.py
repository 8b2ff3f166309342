"""The rendering checks with the real embedding model, on renderings judged by hand (slow)."""

import dataclasses
import json
import threading

import pytest

from app.answering.rendering import RenderChecks, grounded_run, rendering_problems
from app.answering.service import _render_checks
from app.batching import BatchingEmbedder
from tests.conftest import DATA

pytestmark = pytest.mark.slow
PAIRS = [json.loads(line) for line in
         (DATA / "rendering-pairs" / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def checks(seeded_service) -> RenderChecks:
    return _render_checks(seeded_service.searcher(), seeded_service.settings)


def problems(pair: dict, checks: RenderChecks) -> list[str]:
    found = rendering_problems(pair["rendering"], pair["source"], pair["question"], "latin",
                               checks)
    return found or checks.problems(pair["rendering"], pair["source"])[0]


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p["rendering"][:40])
def test_a_rendering_is_shown_only_when_faithful(pair, checks):
    assert (problems(pair, checks) == []) is pair["faithful"], problems(pair, checks)


def test_words_read_in_their_sentence_let_through_renderings_words_alone_withhold(checks):
    alone = dataclasses.replace(checks, in_context=None)
    faithful = [p for p in PAIRS if p["faithful"]]
    # three of the four (the fourth, "the spiritual teacher", passes once المعلّم is read
    # as one word, shadda and all)
    withheld_alone = [p["rendering"] for p in faithful if problems(p, alone)]
    assert len(withheld_alone) >= 3, withheld_alone
    assert not any(problems(p, checks) for p in faithful)


def test_the_model_reads_each_word_in_its_own_text(seeded_service):
    embedder = seeded_service.searcher().embedder
    on_friday, in_washington = embedder.word_vectors(
        ["the talks on Friday", "talks in Washington"])
    assert list(on_friday) == ["the", "talks", "on", "Friday"]
    assert list(in_washington) == ["talks", "in", "Washington"]
    same_word = float(on_friday["talks"] @ in_washington["talks"])
    assert 0.5 < same_word < 0.999  # the same word, read in two different sentences
    # the server's embedder (batched, under the model lock) reads words the same way
    served = BatchingEmbedder(embedder, threading.Lock()).word_vectors(["talks in Washington"])
    assert float(served[0]["Washington"] @ in_washington["Washington"]) > 0.999


def test_an_english_answer_is_grounded_in_the_arabic_run_it_renders(checks):
    # written for Sanad: two teams of one city, named alike
    passage = ("تلعب في المدينة فرق كثيرة، مثل لوس أنجلس ليكرز في كرة السلة "
               "(ولوس أنجلس كينغز في هوكي الجليد).")
    run, _ = grounded_run("Los Angeles Kings", passage, "Which hockey team?", "en", checks)
    assert run == "ولوس أنجلس كينغز"
    assert grounded_run("Los Angeles Rams", passage, "Which team?", "en", checks) is None
