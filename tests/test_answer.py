"""The answer service with fake models: citation checks, refusal, yes/no, follow-ups."""

import json
import time

import numpy as np
import pytest
from llama_index.core.llms import ChatMessage

from app import prompts
from app.answering import refusal
from app.answering import service as answer_steps
from app.answering.checks import check_answer
from app.answering.copy_check import copied_run, copy_problem, with_reversal
from app.answering.generation import CopiedPreview
from app.answering.refusal import RefusalModel, decide_refusal
from app.answering.service import AnswerService
from app.llm import Backend, LLMUnavailable, make_backend
from app.service import AnswerError, AnswerResult, SanadService, Token, Turn, checked_question
from app.settings import Settings
from index.pipeline import IndexConfig, index_paths
from index.search import Searcher
from index.storage import load_index
from tests.conftest import free_port
from tests.fakes import FakeLLM

RHINE = "Is the Rhine near Rotterdam?"


@pytest.fixture
def searcher(corpus, tmp_path, fake_embedder) -> Searcher:
    data = tmp_path / "data"
    index_paths([corpus], IndexConfig(data_dir=data), fake_embedder, progress=False,
                log=lambda m: None)
    return Searcher(load_index(data), fake_embedder)


def service(searcher, respond=None, backend="local", **settings) -> AnswerService:
    # The general checks are tested with "support"; the copy check has its own tests. The
    # refusal is the threshold rule's, which the tests set (the model has its own tests).
    settings.setdefault("answer_check", "support")
    settings.setdefault("answer_form", "sentences")
    # the fake embedder's cosines mean nothing across languages: those checks have their own
    settings.setdefault("render_min_similarity", -1)
    settings.setdefault("render_min_word_similarity", -1)
    settings.setdefault("render_min_coverage_similarity", -1)
    settings.setdefault("render_min_clause_similarity", -1)
    settings.setdefault("refusal_rule", "threshold")
    settings = Settings(data_dir=searcher.data.folder, refuse_below_en=-1, refuse_below_ar=-1,
                        **settings)
    llm = FakeLLM(respond) if respond else None
    return AnswerService(settings, lambda: searcher, Backend(backend, llm))


def cite(prompt: str, word: str) -> str:
    """The [n] marker of the numbered passage in `prompt` that contains `word`."""
    for line in prompt.splitlines():
        if line.startswith("[") and word in line:
            return line[: line.index("]") + 1]
    raise AssertionError(f"no passage with {word!r} in the prompt")


def test_out_of_range_marker_is_removed_and_counted(searcher):
    svc = service(searcher, lambda p: f"Yes, it reaches the North Sea near Rotterdam "
                                      f"{cite(p, 'Rotterdam')}[9].")
    result = svc.answer(RHINE)
    assert result.removed_markers == 1
    assert "[9]" not in result.answer and "Rotterdam" in result.answer
    assert all(1 <= n <= len(result.passages) for s in result.sentences for n in s.citations)


def test_a_sentence_left_without_valid_citation_gets_the_passage_that_backs_it(searcher):
    svc = service(searcher, lambda p: "The Rhine starts in the Swiss Alps [9].")
    result = svc.answer("Where does the Rhine start?")
    assert result.removed_markers == 1 and result.corrected_citations == 1
    cited = result.passages[result.sentences[0].citations[0] - 1].text
    assert "Swiss Alps" in cited


def test_an_unsupported_sentence_without_valid_citation_is_dropped(searcher):
    svc = service(searcher, lambda p: "The Rhine carries much coal to Basel [9].")
    result = svc.answer("Where does the Rhine start?")
    assert result.removed_markers == 1
    assert result.dropped and "no citation" in result.dropped[0]["problems"]
    assert "quoted after failed checks" in result.mode  # evidence quoted instead
    assert "coal" not in result.answer
    assert result.sentences and all(s.citations for s in result.sentences)


def test_a_number_not_in_the_source_is_caught(searcher):
    def respond(prompt):
        n = cite(prompt, "Rotterdam")
        return f"The Rhine reaches the North Sea near Rotterdam {n}. It is 1233 kilometres long {n}."

    result = service(searcher, respond).answer("Where near Rotterdam does the Rhine reach the sea?")
    assert len(result.sentences) == 1 and "Rotterdam" in result.sentences[0].text
    assert "1233" not in result.answer
    assert "numbers not in the cited text: 1233" in result.dropped[0]["problems"]


def test_outside_knowledge_is_caught(searcher):
    def respond(prompt):
        return f"Napoleon Bonaparte crossed it near Rotterdam {cite(prompt, 'Rotterdam')}."

    result = service(searcher, respond).answer(RHINE)
    assert "Napoleon" not in result.answer
    assert any("names not in the cited text" in p for d in result.dropped for p in d["problems"])


def test_not_found_from_the_model_is_a_refusal(searcher):
    # evidence just past the refusal threshold: the model's NOT_FOUND stands
    svc = service(searcher, lambda p: "NOT_FOUND")
    question = "How long is the Rhine?"
    _, evidence = svc.prepare_context(question)
    svc.settings.refuse_below_en = evidence[0].score - 0.01
    result = svc.answer(question)
    assert result.refused and result.answer.startswith("The articles don't say")
    assert result.passages  # the closest passages are still shown
    # far past it, the evidence is quoted instead, and said to be a quote
    svc.settings.refuse_below_en = evidence[0].score - svc.settings.quote_margin
    result = svc.answer(question)
    assert not result.refused and "the model found no answer" in result.mode
    assert evidence[0].text.rstrip(".!?") in result.answer


def test_under_the_refusal_model_a_not_found_quotes_only_what_it_is_confident_of(searcher,
                                                                                monkeypatch):
    # one feature, the top evidence score as the logit: p(answerable) = sigmoid(score),
    # between 0.5 and 0.73 for any evidence; the cut 0.1 lets the question through
    model = RefusalModel(("top_evidence",), (0.0,), (1.0,), (1.0,), 0.0, {"default": 0.1})
    monkeypatch.setattr(refusal, "load_model", lambda: model)
    svc = service(searcher, lambda p: "NOT_FOUND", refusal_rule="model", quote_above=0.5)
    result = svc.answer("How long is the Rhine?")
    assert not result.refused and "the model found no answer" in result.mode
    assert 0.5 <= result.refusal_score < 0.75
    assert result.passages[0].text.rstrip(".!?") in result.answer
    # answerable to the refusal model but below quote_above (0.9): NOT_FOUND stands
    svc.settings.quote_above = 0.9
    doubted = svc.answer("How long is the Rhine?")
    assert doubted.refused and doubted.refusal_reason == "the model found no answer in the evidence"
    # what the refusal model finds unanswerable is refused before any model call
    asked = []
    low = RefusalModel(("top_evidence",), (0.99,), (0.01,), (1.0,), 0.0, {"default": 0.5})
    monkeypatch.setattr(refusal, "load_model", lambda: low)
    refused = service(searcher, lambda p: asked.append(p) or "x [1].",
                      refusal_rule="model").answer("How long is the Rhine?")
    assert refused.refused and refused.refusal_reason.startswith("p(answerable)=")
    assert refused.refusal_score < 0.5 and asked == []


def test_unknown_term_is_refused_without_asking_the_model(searcher):
    llm_calls = []
    svc = service(searcher, lambda p: llm_calls.append(p) or "x [1].")
    result = svc.answer("Does the Rhine flow through Vienna near Rotterdam?")
    assert result.refused and "Vienna" in result.refusal_reason
    assert llm_calls == []


def test_amount_question_without_an_amount_in_evidence_is_refused(searcher):
    svc = service(searcher, lambda p: "x [1].")
    result = svc.answer("كم عدد المهاجرين الذين عبروا الحدود؟")
    assert result.refused and "amount" in result.refusal_reason
    assert result.answer == "لا تذكر المقالات ذلك. أقرب المقاطع معروضة أدناه."


def test_low_score_is_refused_per_language(searcher):
    svc = service(searcher, lambda p: "x [1].")
    svc.settings.refuse_below_en = 0.99
    assert svc.answer(RHINE).refused
    assert not svc.answer("ماذا طلبت المكسيك؟").refused  # Arabic threshold is separate


def test_bare_yes_no_gets_its_evidence_sentence(searcher):
    result = service(searcher, lambda p: f"Yes {cite(p, 'Rotterdam')}.").answer(RHINE)
    assert result.yes_no
    assert "Basis:" in result.answer and "«" in result.answer
    basis = result.passages[result.sentences[0].citations[0] - 1].text
    assert basis in result.answer


def test_prompt_fences_article_text_as_untrusted_data(searcher):
    svc = service(searcher, lambda p: "The Rhine reaches the North Sea [1].")
    svc.answer(RHINE)
    prompt = svc.backend.llm.prompts[0]
    assert "untrusted data" in prompt and "<<<PASSAGES" in prompt and "PASSAGES>>>" in prompt
    assert "[1] " in prompt and "Yes, near Rotterdam." in prompt


def passage_with(prompt: str, word: str) -> str:
    """The text of the numbered passage in `prompt` that contains `word`, with its marker."""
    line = next(line for line in prompt.splitlines() if line.startswith("[") and word in line)
    marker, text = line.split(" ", 1)
    return f"{text} {marker}"


def test_a_draft_copied_from_the_evidence_streams_word_by_word_then_one_result(searcher):
    drafts = []
    svc = service(searcher, lambda p: drafts.append(passage_with(p, "Rotter")) or drafts[-1])
    items = list(svc.answer_stream(RHINE))
    assert isinstance(items[-1], AnswerResult)
    tokens = [i for i in items if isinstance(i, Token)]
    assert len(tokens) >= 3 and "".join(t.text for t in tokens) == drafts[0]
    assert "Rotterdam" in items[-1].answer
    timings = items[-1].timings
    assert timings["retrieval_ms"] <= timings["first_token_ms"] <= timings["total_ms"]


def test_words_of_the_models_own_are_not_streamed_before_the_checks(searcher):
    # "It reaches the North Sea" is the model's; the checks replace the sentence by the
    # quoted passage. Only the words copied from the article were previewed.
    svc = service(searcher, lambda p: f"It reaches the North Sea near Rotterdam "
                                      f"{cite(p, 'Rotter')}.")
    items = list(svc.answer_stream(RHINE))
    assert "".join(t.text for t in items if isinstance(t, Token)) == "near Rotterdam [2]."
    assert "It reaches" not in items[-1].answer

    # nothing copied: the checked answer is the one token
    svc = service(searcher, lambda p: f"It flows to the sea by that city {cite(p, 'Rotter')}.")
    items = list(svc.answer_stream(RHINE))
    assert [t.text for t in items if isinstance(t, Token)] == [items[-1].answer]
    assert items[-1].timings["first_token_ms"] <= items[-1].timings["total_ms"]


def preview_of(drafts: list[str], sources: list[str]) -> tuple[list[str], bool]:
    """The pieces a CopiedPreview gives out as the draft grows to each of `drafts`, the last
    one final, and whether it stopped."""
    preview = CopiedPreview(sources)
    pieces = [preview.update(d, final=n == len(drafts) - 1) for n, d in enumerate(drafts)]
    return [p for p in pieces if p], preview.stopped


def test_the_preview_is_one_run_of_the_articles_words():
    sources = ["the talks began in December\nin Mexico City"]
    # a word still being written waits; the run goes on across the source's line break
    assert preview_of(["the tal", "the talks beg", "the talks began in",
                       "the talks began in Dece", "the talks began in December in Mexico"],
                      sources) == (["the", " talks", " began", " in", " December in Mexico"],
                                   False)
    # citation markers and punctuation are not words: "[1]" after copied words comes with
    # them, and a comma the model leaves out does not stop the run
    assert preview_of(["the talks began [1]"], sources) == (["the talks began [1]"], False)
    assert preview_of(["in Mexico, City"], ["in Mexico City"]) == (["in Mexico, City"], False)
    # the model's own words before the run are left out; the first word of its own after
    # the run stops the preview for good
    assert preview_of(["He said the talks began in Mexico City"], sources) == \
        (["the talks began in"], True)
    # past the draft's first word, one common word is no run; nothing copied, nothing shown
    assert preview_of(["Briefly in short: talks ended"], sources) == ([], False)
    assert preview_of(["in brief"], sources) == (["in"], True)
    assert preview_of(["NOT_FOUND"], sources) == ([], False)


def test_follow_up_is_condensed_before_retrieval(searcher):
    def respond(prompt):
        if "Standalone question" in prompt:
            return "Where does the Rhine start?"
        return f"The Rhine starts in the Swiss Alps {cite(prompt, 'Swiss')}."

    svc = service(searcher, respond)
    history = [Turn("Does the Rhine reach the North Sea?", "Yes, near Rotterdam [1].")]
    result = svc.answer("And where does it start?", history)
    # the model's rewrite, or the previous question joined to the follow-up when that
    # finds stronger evidence
    assert result.standalone_question in ("Where does the Rhine start?",
                                          f"{history[0].question} And where does it start?")
    assert "Swiss Alps" in result.answer
    assert "Does the Rhine reach the North Sea?" in svc.backend.llm.prompts[0]


def test_condensed_question_in_another_language_is_ignored(searcher):
    svc = service(searcher, lambda p: "Where is it?" if "Standalone" in p else "x [1].")
    history = [Turn("ماذا طلبت المكسيك؟", "...")]
    assert svc.condense("ومتى؟", history) == "ومتى؟"


def test_a_rewrite_that_is_not_a_question_is_ignored(searcher):
    svc = service(searcher, lambda p: "Mexico did not attend the talks." if "Standalone" in p
                  else "x [1].")
    history = [Turn("Who attended the talks?", "...")]
    assert svc.condense("And Mexico?", history) == "And Mexico?"


def test_a_rewrite_that_drops_what_the_follow_up_asks_about_is_ignored(searcher):
    svc = service(searcher, lambda p: "Who attended the talks?" if "Standalone" in p
                  else "x [1].")
    history = [Turn("Who attended the talks?", "..."), Turn("And Mexico's moves?", "...")]
    assert svc.condense("What did those moves lead to?", history) == (
        "What did those moves lead to?")


def test_an_answer_that_only_restates_the_question_is_replaced_by_the_evidence(searcher):
    svc = service(searcher, lambda p: f"The Rhine starts {cite(p, 'Swiss')}.")
    result = svc.answer("Where does the Rhine start?")
    assert result.dropped and result.dropped[0]["problems"] == ["only restates the question"]
    assert "Swiss Alps" in result.answer and "quoted after failed checks" in result.mode


def test_extractive_backend_quotes_evidence(searcher):
    svc = service(searcher, backend="extractive")
    result = svc.answer(RHINE)
    assert result.mode == "extractive" and not result.refused
    quoted = result.passages[0].text
    assert quoted.rstrip(".!?") in result.answer and "[1]" in result.answer
    # without a model a follow-up is not rewritten; an unrelated new question is not mixed
    # with the previous one
    assert svc.condense("And where does it start?", [Turn(RHINE, result.answer)]) == (
        "And where does it start?")
    other = svc.answer("How long do you bake the loaf?", [Turn(RHINE, result.answer)])
    assert other.standalone_question == "How long do you bake the loaf?"
    assert "forty minutes" in other.answer


MEXICO_EN = "Mexican president called for billion aid, Venezuela sanctions?"


def _span_then(rendering: str):
    """A fake model that copies the Arabic span, and renders it as `rendering`."""
    def respond(prompt):
        if "You translate" in prompt:
            return rendering
        return f"20 مليار دولار كمساعدات {cite(prompt, '20 مليار')}"
    return respond


def test_cross_language_answer_is_the_span_and_its_checked_rendering(searcher):
    svc = service(searcher, _span_then("Here is the translation: 20 billion dollars in aid\n\n"
                                       "Note: literal."),
                  answer_form="span")
    result = svc.answer(MEXICO_EN)
    assert result.mode == "local, evidence_first"
    # the answer is the article's short span, the whole sentence stays as the evidence
    assert "20 مليار دولار كمساعدات [" in result.answer and "الرئيس" not in result.answer
    cited = result.sentences[0].citations[0]
    assert "الرئيس" in result.passages[cited - 1].text
    assert result.translation["text"] == f"20 billion dollars in aid [{cited}]"
    assert result.translation["withheld"] == 0 and "checked" in result.translation["label"]


@pytest.mark.parametrize("rendering", [
    "Pedro Gomez gave 20 billion dollars in aid",  # a name like nothing in the span
    "30 billion dollars in aid",  # a number the span does not state
    "billions of dollars in aid",  # the span's 20 left out
    "ستة",  # not in the reader's language
    "20 billion dollars in aid, which the United Nations and the Red Cross will hand out "
    "to every country in the region over the next ten years",  # not a rendering
])
def test_a_rendering_that_fails_a_check_is_withheld_and_never_shown(searcher, rendering):
    svc = service(searcher, _span_then(rendering), answer_form="span")
    items = list(svc.answer_stream(MEXICO_EN))
    result = items[-1]
    assert result.translation["text"] == "" and result.translation["withheld"] == 1
    assert "No reliable English rendering" in result.translation["label"]
    shown = json.dumps(result.as_dict(), ensure_ascii=False) + "".join(
        t.text for t in items[:-1])
    assert rendering.split(",")[0] not in shown


def test_a_clause_that_fails_is_an_ellipsis_and_the_label_counts_it(searcher):
    sentence = ("دعا الرئيس المكسيكي أندريس مانويل لوبيز أوبرادور الولايات المتحدة علنا إلى "
                "توزيع 20 مليار دولار كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي "
                "وتعليق العقوبات المفروضة على فنزويلا")

    def respond(prompt):  # the first and last clauses get a number the article lacks
        if "You translate" in prompt:
            phrase = prompt.rsplit("user:", 1)[1]
            if "دعا" in phrase:
                return "the Mexican president called on the United States 7 times"
            if "فنزويلا" in phrase:
                return "and 3 sanctions on Venezuela"
            return "to distribute $20 billion in aid to Latin America and the Caribbean"
        return f"{sentence} {cite(prompt, '20 مليار')}"

    items = list(service(searcher, respond, answer_form="span").answer_stream(MEXICO_EN))
    result = items[-1]
    cited = result.sentences[0].citations[0]
    # the marker after the closing ellipsis, which stands for a clause, not a full stop
    assert result.translation["text"] == (
        f"… to distribute $20 billion in aid to Latin America and the Caribbean … [{cited}]")
    assert result.translation["withheld"] == 0 and result.translation["clauses_withheld"] == 2
    assert "2 clause(s) had no reliable English rendering" in result.translation["label"]
    shown = json.dumps(result.as_dict(), ensure_ascii=False) + "".join(
        t.text for t in items[:-1])
    assert "7 times" not in shown and "3 sanctions" not in shown


def test_a_dropped_sentence_leaves_through_the_api_as_reasons_only(searcher):
    made = "الحصول على مساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي"
    svc = service(searcher, lambda p: f"{made} {cite(p, '20 مليار')}", answer_form="span",
                  answer_check="copy")
    result = svc.answer("إلامَ دعا الرئيس المكسيكي الولايات المتحدة؟")
    assert result.dropped[0]["text"] == made  # kept for the eval's records
    given = result.as_dict()
    assert given["dropped"] == [{"citations": result.dropped[0]["citations"],
                                 "problems": ["words not in the cited text"]}]
    assert "الحصول" not in json.dumps(given, ensure_ascii=False)


def test_a_second_candidate_with_the_question_is_tried_when_the_first_fails(searcher):
    prompts_seen = []

    def respond(prompt):
        if "You translate" in prompt:
            prompts_seen.append(prompt)
            return ("20 billion dollars in aid" if "Question:" in prompt.rsplit("user:", 1)[1]
                    else "30 billion dollars in aid")
        return f"20 مليار دولار كمساعدات {cite(prompt, '20 مليار')}"

    result = service(searcher, respond, answer_form="span").answer(MEXICO_EN)
    assert len(prompts_seen) == 2 and MEXICO_EN in prompts_seen[1]
    assert result.translation["text"].startswith("20 billion dollars in aid")


def test_a_rendering_far_in_meaning_from_the_span_is_withheld(searcher):
    svc = service(searcher, _span_then("20 billion dollars in aid"), answer_form="span",
                  render_min_similarity=1.0)
    result = svc.answer(MEXICO_EN)
    assert result.translation["text"] == ""
    rendering = result.translation["renderings"][0]
    assert rendering["problems"] == ["its meaning is too far from the article's words"]
    assert rendering["similarity"] < 1.0


@pytest.mark.parametrize("floor, problem", [
    ("render_min_word_similarity", "no counterpart"),  # a word the span does not hold
    ("render_min_coverage_similarity", "left out"),  # a word of the span not rendered
])
def test_a_rendering_whose_words_do_not_match_the_span_is_withheld(searcher, floor, problem):
    svc = service(searcher, _span_then("20 billion dollars in aid"), answer_form="span",
                  **{floor: 1.0})
    result = svc.answer(MEXICO_EN)
    assert result.translation["text"] == ""
    assert problem in result.translation["renderings"][0]["problems"][0]


def test_a_same_language_answer_is_the_span_cited_even_when_the_model_forgets_the_number(
        searcher):
    svc = service(searcher, lambda p: "20 مليار دولار كمساعدات", answer_form="span")
    result = svc.answer("إلامَ دعا الرئيس المكسيكي الولايات المتحدة؟")
    assert result.translation is None and not result.refused
    assert result.sentences[0].text == "20 مليار دولار كمساعدات"
    assert "20 مليار" in result.passages[result.sentences[0].citations[0] - 1].text


@pytest.mark.parametrize("form, quoted", [("span", True), ("sentences", False)])
def test_a_span_must_be_one_copied_run(searcher, form, quoted):
    two_runs = "الرئيس المكسيكي 20 مليار دولار كمساعدات"  # two pieces of one sentence
    svc = service(searcher, lambda p: f"{two_runs} {cite(p, '20 مليار')}", answer_form=form,
                  answer_check="copy")
    result = svc.answer("إلامَ دعا الرئيس المكسيكي الولايات المتحدة؟")
    assert (result.sentences[0].text != two_runs) == quoted
    assert ("quoted where the model paraphrased" in result.mode) == quoted


def test_a_span_almost_copied_is_shown_as_the_run_it_was_made_from(searcher):
    # the local model's real span for "What did Mexico request?": "obtaining" added and the
    # "as" prefix of كمساعدات dropped
    made = "الحصول على مساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي"
    svc = service(searcher, lambda p: f"{made} {cite(p, '20 مليار')}", answer_form="span",
                  answer_check="copy")
    result = svc.answer("إلامَ دعا الرئيس المكسيكي الولايات المتحدة؟")
    assert [s.text for s in result.sentences] == [
        "كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي"]
    assert result.dropped[0]["text"] == made
    assert "quoted where the model paraphrased" in result.mode


def test_a_span_not_found_is_asked_again_with_the_sentence_prompt(searcher):
    seen = []

    def respond(prompt):
        seen.append("span" if "shortest run of words" in prompt else "sentences")
        if seen[-1] == "span":
            return "NOT_FOUND"
        return f"دعا إلى توزيع 20 مليار دولار كمساعدات {cite(prompt, '20 مليار')}."

    result = service(searcher, respond, answer_form="span").answer(
        "إلامَ دعا الرئيس المكسيكي الولايات المتحدة؟")
    assert seen == ["span", "sentences"] and not result.refused
    assert "20 مليار" in result.answer


def test_the_span_prompt_fences_the_passages_and_shows_worked_examples(searcher):
    seen = []
    svc = service(searcher, lambda p: seen.append(p) or "NOT_FOUND", answer_form="span")
    svc.answer("Which city does the Rhine reach near the North Sea?")
    prompt = seen[0]
    assert "shortest run of words" in prompt and "<<<PASSAGES" in prompt
    assert prompt.count("Question:") == len(prompts.examples("span")) + 1


def test_cross_language_strong_backend_answers_directly(searcher):
    prompts_seen = []

    def respond(prompt):
        prompts_seen.append(prompt)
        return f"The Mexican president called for 20 billion dollars in aid {cite(prompt, '20')}."

    result = service(searcher, respond, backend="openai").answer(
        "Mexican president called for billion aid, Venezuela sanctions?")
    assert result.mode == "openai, direct" and result.translation is None
    assert "Write the answer in English" in prompts_seen[0]


def test_bad_questions(searcher):
    svc = service(searcher, backend="extractive")
    with pytest.raises(AnswerError, match="empty"):
        svc.answer("   ")
    with pytest.raises(AnswerError, match="limit"):
        svc.answer("x" * 100_000)


def test_unreachable_server_fails_fast_and_clearly(tmp_path):
    port = free_port()  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable, match="cannot reach"):
        make_backend(Settings(data_dir=tmp_path, llm_backend="openai",
                              llm_base_url=f"http://127.0.0.1:{port}/v1"))
    # nothing listens: a refused connection, reported at once rather than after a client's
    # retry loop (the bound is generous for a loaded machine; the clients' own is minutes)
    assert time.perf_counter() - started < 10


def test_auto_backend_without_local_model_is_extractive_with_notice(tmp_path):
    backend = make_backend(Settings(data_dir=tmp_path, llm_backend="auto",
                                    models_dir=tmp_path / "no-models"))
    assert backend.name == "extractive" and "extractive" in backend.notice


def test_yes_no_answer_that_contradicts_its_basis_is_replaced_by_the_basis(searcher):
    svc = service(searcher, lambda p: f"No, it is not near Rotterdam {cite(p, 'Rotterdam')}.")
    result = svc.answer(RHINE)
    assert result.sentences == [] and "not near" not in result.answer
    assert result.answer.startswith("The articles say: «Yes, near Rotterdam.»")
    assert "negation" in result.dropped[-1]["problems"][0]


def test_a_long_sentence_is_scored_by_its_best_clause(tmp_path, fake_embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "visit.txt").write_text(
        "Marseille has a busy harbour.\n\n"
        "The visitors were the mayor of Lyon, the bishop of Tours, the harbour master of "
        "Marseille, the head librarian of Dijon, the rector of Grenoble and the chief baker "
        "of Nantes, who all arrived together on the morning train from Paris.\n",
        encoding="utf-8")
    data = tmp_path / "data"
    index_paths([folder], IndexConfig(data_dir=data), fake_embedder, progress=False,
                log=lambda m: None)
    svc = service(Searcher(load_index(data), fake_embedder))
    question = "Who is the harbour master of Marseille?"
    _, evidence = svc.prepare_context(question)
    assert evidence[0].text.startswith("The visitors were")
    # Its score is its best clause's, above that of the sentence as a whole.
    query = np.asarray(fake_embedder.model.get_query_embedding(question))

    def cosine(text: str) -> float:
        return float(query @ np.asarray(fake_embedder.model.get_text_embedding(text)))

    clause = cosine("the harbour master of Marseille")
    assert evidence[0].score == pytest.approx(clause, abs=1e-3)
    assert cosine(evidence[0].text) < clause


def test_a_yes_no_question_the_model_cannot_settle_gets_its_evidence_quoted(searcher):
    # (quote_margin out of reach: only the yes/no rule can overrule the model)
    result = service(searcher, lambda p: "NOT_FOUND", quote_margin=2.0).answer(RHINE)
    assert not result.refused and "the model found no answer" in result.mode
    assert result.passages[0].text.rstrip("?!.") in result.answer
    # nothing but the article's own sentences
    assert result.sentences and all(any(s.text.rstrip("?!.") in p.text for p in result.passages)
                                    for s in result.sentences)
    # the quoted basis is not repeated under a "Basis:" line
    assert result.answer.count(result.sentences[0].text.rstrip("?!.")) == 1


# -- copy check (answer_check="copy", the default for the small local model) ---------------

DANUBE = "How many countries does the Danube flow through?"


def copying(searcher, respond) -> AnswerService:
    return service(searcher, respond, answer_check="auto")  # auto: copy for "local"


def test_a_copied_answer_stands_as_the_model_wrote_it(searcher):
    svc = copying(searcher, lambda p: f"It flows through ten countries {cite(p, 'Danube')}.")
    result = svc.answer(DANUBE)
    assert [s.text for s in result.sentences] == ["It flows through ten countries."]
    assert "paraphrased" not in result.mode and not result.dropped


def test_a_misreading_made_of_the_sources_words_is_replaced_by_the_quoted_passage(searcher):
    # Every word is in the passage, in the wrong order: three pieces.
    svc = copying(searcher, lambda p: f"Ten countries flows through the Danube {cite(p, 'Danube')}.")
    result = svc.answer(DANUBE)
    assert "Ten countries flows" not in result.answer
    assert "The Danube flows through ten countries" in result.answer
    assert "quoted where the model paraphrased" in result.mode
    assert result.dropped[0]["text"] == "Ten countries flows through the Danube."
    assert "3 pieces" in result.dropped[0]["problems"][0]
    assert all(s.support == 1.0 for s in result.sentences)


def test_an_added_word_is_not_a_copy(searcher):
    svc = copying(searcher, lambda p: f"The Danube flows quickly through ten countries "
                                      f"{cite(p, 'Danube')}.")
    result = svc.answer(DANUBE)
    assert "quickly" not in result.answer and "quickly" in result.dropped[0]["problems"][0]


def test_strong_backends_may_paraphrase(searcher):
    svc = service(searcher, lambda p: f"Ten countries flows through the Danube {cite(p, 'Danube')}.",
                  backend="openai", answer_check="auto")
    assert "Ten countries flows" in svc.answer(DANUBE).answer


SEED_SENTENCE = ("يجتمع مسؤولون من الولايات المتحدة والمكسيك في واشنطن يوم الجمعة لمناقشة سبل ردع "
                 "الهجرة غير الشرعية مع تزايد الضغوط على إدارة بايدن لمعالجة القضية قبل "
                 "الانتخابات الرئاسية في نوفمبر.")


@pytest.mark.parametrize("answer, ok", [
    # the local model's real answers (eval/reports/baseline-local, seed-007-ar and others)
    ("قبل يوم الجمعة، عندما يجتمع مسؤولون من الولايات المتحدة والمكسيك في واشنطن، تزايد "
     "الضغوط على إدارة بايدن لمعالجة قضية الهجرة غير الشرعية.", False),
    ("قبل الانتخابات الرئاسية في نوفمبر.", True),
    ("نعم، يجتمع مسؤولون من الولايات المتحدة والمكسيك في واشنطن يوم الجمعة.", True),
    ("وتزايد الضغوط على إدارة بايدن.", True),  # a prefixed "and" is not a new word
    ("المتحدثين في المفاوضات قالوا إن المسؤولين يجتمعون يوم الجمعة.", False),
])
def test_copy_check_on_the_seed(answer, ok):
    question = "قبل أي حدث تتزايد الضغوط على إدارة بايدن لمعالجة قضية الهجرة غير الشرعية؟"
    assert (copy_problem(answer, SEED_SENTENCE, question) == "") is ok


REQUEST_SENTENCE = ("دعا الرئيس المكسيكي الولايات المتحدة علنا إلى توزيع 20 مليار دولار "
                    "كمساعدات لدول أمريكا اللاتينية ومنطقة البحر الكاريبي.")


def test_a_run_keeps_the_articles_prefixes():
    assert copied_run("الحصول على مساعدات لدول أمريكا اللاتينية", REQUEST_SENTENCE) \
        == "كمساعدات لدول أمريكا اللاتينية"


@pytest.mark.parametrize("span, run", [
    ("مسؤولون من الولايات المتحدة والمكسيك يجتمعون في واشنطن",
     "مسؤولون من الولايات المتحدة والمكسيك في واشنطن"),
    # pieces far apart in the sentence are no one run
    ("مسؤولون من الولايات المتحدة الانتخابات الرئاسية في نوفمبر", ""),
    ("اجتماع في طوكيو حول التجارة", ""),  # words the sentence does not have
])
def test_the_run_a_span_was_made_from(span, run):
    assert copied_run(span, SEED_SENTENCE) == run


CONDITION_SENTENCE = ("على سبيل المثال، لن تتوقف المكسيك عن مساعدة الولايات المتحدة فيما يتصل "
                      "بالهجرة إذا لم تلتزم بإنفاق عشرين مليار دولار في المنطقة.")


def test_a_run_keeps_the_negation_and_condition_before_it():
    # cut after لم, the run would say that the United States commits to spending
    cut = "تلتزم بإنفاق عشرين مليار دولار في المنطقة"
    assert copied_run(cut, CONDITION_SENTENCE).startswith("إذا لم تلتزم")
    assert with_reversal(cut, CONDITION_SENTENCE) == f"إذا لم {cut}"
    assert with_reversal("المكسيك", CONDITION_SENTENCE) == "المكسيك"  # "not" is not before it
    assert with_reversal("expect any results", "They do not expect any results.") \
        == "not expect any results"


def test_a_span_of_two_parts_is_shown_as_the_run_that_holds_both():
    sentence = ("وقال مسؤول كبير في الإدارة الأمريكية تحدث إلى الصحفيين يوم الخميس: “لا نتوقع أي "
                "إعلانات كبيرة غدًا”.")
    assert copied_run("مسؤول كبير في الإدارة الأمريكية يوم الخميس", sentence) == \
        "مسؤول كبير في الإدارة الأمريكية تحدث إلى الصحفيين يوم الخميس"


def test_a_span_points_at_the_tightest_run_that_holds_its_words():
    # seed-023: not the وزير of the foreign minister's title, with a name between
    sentence = ("تعد المحادثات، التي سيحضرها وزير الخارجية أنتوني بلينكن، ووزير الأمن الداخلي "
                "أليخاندرو مايوركاس، امتدادًا للمناقشات.")
    assert copied_run("وزير الأمن الداخلي", sentence) == "ووزير الأمن الداخلي"
    # nor a later word that spreads the same words across the sentence (xquad, Fresno)
    fresno = ("وبامتداد جادة كيرني نصف ميل بين شارع فريسنو وشارع العرش، فقد كانت الحي المفضل "
              "للعائلات الراقية بمدينة فريسنو.")
    assert copied_run("في شارع فريسنو", fresno) == "شارع فريسنو"
    # a prefixed ل the stemmer keeps (لملك → لمل) does not hide the word
    assert copied_run("ملك فرنسا", "جاء البيان في تقرير لملك فرنسا إذ تعزى فيه") == "لملك فرنسا"


PLAY_PASSAGES = {1: "قام ميلر بتجريد الكرة من نيوتن.",
                 2: "تم إبقاء هجوم دنفر خارج منطقة النهاية لـ ثلاثة لعبات.",
                 3: "كان هناك 30547 (19.3%) من العائلات بها ربة بيت.",
                 4: "بميزانية قدرها 230000 دولاراً، تم تجميع بيانات Apollo 11 بواسطة نافزجير."}


@pytest.mark.parametrize("draft, text, citations", [
    # digits for a number the article writes in words: the article's word, where it is
    ("3 [1]", "ثلاثة", [2]),
    # digits alone read the same in any passage: cited wrongly, they are cited rightly
    ("19.3% [1]", "19.3%", [3]),
    # the article's own words in another script are no switch of language
    ("Apollo 11 [1]", "Apollo 11", [4]),
])
def test_a_span_answer_is_the_articles_own_words_where_they_are(draft, text, citations):
    checked = check_answer(draft, PLAY_PASSAGES, "How many plays?", required_script="arabic",
                           copy_only=True, max_pieces=1, snap=True)
    assert [(s.text, s.citations) for s in checked.kept] == [(text, citations)]


def test_a_draft_unsupported_by_its_citation_is_not_cut_from_another_passage():
    # seed-014 (run seed-x21): the model's misreading, made of a neighbour sentence's words
    passages = {1: REQUEST_SENTENCE,
                2: "وقال مسؤول كبير إن الولايات المتحدة مهتمة بالعمل مع المكسيك لمعالجة "
                   "الأسباب الجذرية."}
    checked = check_answer("العمل مع المكسيك لمعالجة الأسباب الجذرية [1]", passages,
                           "إلامَ دعا الرئيس المكسيكي الولايات المتحدة؟", copy_only=True,
                           max_pieces=1, snap=True)
    assert checked.kept == []  # the service quotes the evidence instead


def test_an_answer_in_another_script_the_article_does_not_have_is_dropped():
    for draft in ("Apollo 12 [4]", "Los Angeles Kings [1]", "5 [2]"):
        checked = check_answer(draft, PLAY_PASSAGES, "Which team?", required_script="arabic",
                               copy_only=True, max_pieces=1, snap=True)
        assert checked.kept == [], draft


def test_a_copied_span_keeps_the_negation_before_it(searcher):
    svc = service(searcher, lambda p: f"تلتزم بإنفاق عشرين مليار دولار {cite(p, 'عشرين مليار')}",
                  answer_form="span", answer_check="copy")
    result = svc.answer("لماذا لن تتوقف المكسيك عن مساعدة الولايات المتحدة؟")
    assert result.sentences[0].text == "إذا لم تلتزم بإنفاق عشرين مليار دولار"


def test_question_words_are_no_support():
    # seed-017-ar: "the reason for that" from the question, joined to a clause about
    # something else; every run is a copy, but "السبب" is not in the cited sentence.
    cited = ("ومن بين أولويات المكسيك إقناع الولايات المتحدة بالموافقة على تخصيص مبالغ كبيرة "
             "لمكافحة الهجرة من خلال “معالجة الأسباب الجذرية”، أي الفساد السياسي والعنف والفقر "
             "في دول نصف الكرة الغربي.")
    answer = "السبب في ذلك هو الفساد السياسي والعنف والفقر في دول نصف الكرة الغربي."
    assert "السبب" in copy_problem(answer, cited, "وما السبب في ذلك؟")
    assert copy_problem("الفساد السياسي والعنف والفقر في دول نصف الكرة الغربي.", cited,
                        "وما المقصود بالأسباب الجذرية؟") == ""


def _mexico_answer(prompt: str) -> str:
    return f"توزيع 20 مليار دولار كمساعدات {cite(prompt, '20 مليار')}"


def _condensed_or_translated(prompt: str) -> str:
    if "Standalone question" in prompt:
        return "Mexican president called for billion aid, Venezuela sanctions?"
    return "distributing 20 billion dollars in aid [1]."


def test_side_calls_keep_out_of_the_answer_context(searcher):
    """Condensing and translating go to the side context, so the answer context's last
    prompt (whose prefix llama.cpp reuses) is always an answer prompt."""
    main_llm, side_llm = FakeLLM(_mexico_answer), FakeLLM(_condensed_or_translated)
    settings = Settings(data_dir=searcher.data.folder, refuse_below_en=-1, refuse_below_ar=-1,
                        render_min_similarity=-1, render_min_word_similarity=-1,
                        render_min_coverage_similarity=-1)
    svc = AnswerService(settings, lambda: searcher, Backend("local", main_llm, side_llm=side_llm))
    result = svc.answer("And Venezuela sanctions?", [Turn("Mexican president called for aid?",
                                                          "He called for aid [1].")])
    assert "20 billion" in result.translation["text"], result.translation["renderings"]
    assert main_llm.prompts and all("You find the answer" in p for p in main_llm.prompts)
    assert len(side_llm.prompts) == 2  # the condense call and the rendering
    assert not any("You find the answer" in p for p in side_llm.prompts)


class RecordingPrefixes:
    """Stands in for KeptPrefixes: records the fixed part each call puts in place."""

    def __init__(self, record: list):
        self.record = record

    def before_call(self, fixed_part):
        self.record.append(fixed_part)


def test_one_context_starts_every_call_from_its_prompts_fixed_part(searcher):
    """With one llama.cpp context, each call first puts its prompt's fixed part in place:
    the system prompt and worked examples, never the question or the passages."""
    events = []

    def reply(prompt):
        events.append("answer" if "You find the answer" in prompt else "side")
        return _mexico_answer(prompt) if events[-1] == "answer" else _condensed_or_translated(prompt)

    settings = Settings(data_dir=searcher.data.folder, refuse_below_en=-1, refuse_below_ar=-1,
                        render_min_similarity=-1, render_min_word_similarity=-1,
                        render_min_coverage_similarity=-1)
    backend = Backend("local", FakeLLM(reply), kept_prefixes=RecordingPrefixes(events))
    AnswerService(settings, lambda: searcher, backend).answer(
        "And Venezuela sanctions?", [Turn("Mexican president called for aid?", "He called for aid [1].")])
    condense, _, answer, _, render, _ = events
    assert events[1::2] == ["side", "answer", "side"]
    assert condense == ""  # one message: nothing of it is fixed
    assert answer.startswith("<|im_start|>system\nYou find the answer") and answer.endswith(
        "<|im_end|>\n")
    # the worked examples' questions, not this one's nor its passages
    assert answer.count("<|im_start|>user") == len(prompts.examples("span"))
    assert "Venezuela" not in answer and "Mexic" not in answer
    assert render.startswith("<|im_start|>system\nYou translate")


def test_warming_up_evaluates_the_rendering_prompts_then_the_span_prompt(searcher):
    prepared = []
    settings = Settings(data_dir=searcher.data.folder)
    backend = Backend("local", FakeLLM(lambda prompt: "NOT_FOUND"),
                      kept_prefixes=RecordingPrefixes(prepared))
    AnswerService(settings, lambda: searcher, backend).warm_up()
    assert len(prepared) == 5 and len(set(prepared)) == 5
    assert all(p.startswith("<|im_start|>system\nYou translate") for p in prepared[:4])
    assert prepared[-1].startswith("<|im_start|>system\nYou find the answer")
    # nothing to prepare without a local context
    AnswerService(settings, lambda: searcher, Backend("openai", FakeLLM(str))).warm_up()
    assert len(prepared) == 5


# -- one pass per question: one check, one index generation, one refusal per evidence ---------

VIENNA = "Does the Rhine flow through Vienna near Rotterdam?"


def test_a_checked_question_is_not_checked_again():
    question = checked_question("  Where does the Rhine start?  ", 100)
    assert question == "Where does the Rhine start?"
    # a door that checked early passes the checked question on: a later call returns it
    # as it is (a fresh check against a limit of 5 characters would fail)
    assert checked_question(question, 5) is question
    with pytest.raises(AnswerError, match="limit"):
        checked_question(str(question), 5)


def test_one_index_generation_serves_the_whole_answer(searcher, corpus, tmp_path, fake_embedder):
    # A re-index switches to a generation that mentions Vienna while the answer runs: the
    # names check must still judge by the generation the evidence came from.
    (corpus / "vienna.md").write_text("# Vienna\n\nVienna lies on the Danube.\n",
                                      encoding="utf-8")
    later_data = tmp_path / "later"
    index_paths([corpus], IndexConfig(data_dir=later_data), fake_embedder, progress=False,
                log=lambda m: None)
    later = Searcher(load_index(later_data), fake_embedder)
    assert later.unknown_terms(["Vienna"]) == [] and searcher.unknown_terms(["Vienna"])
    resolved = []

    def current_generation() -> Searcher:
        resolved.append(len(resolved))
        return searcher if len(resolved) == 1 else later

    settings = Settings(data_dir=searcher.data.folder, refuse_below_en=-1, refuse_below_ar=-1)
    svc = AnswerService(settings, current_generation, Backend("extractive", None))
    result = svc.answer(VIENNA)
    assert resolved == [0]
    assert result.refused and "Vienna" in result.refusal_reason
    assert all(p.article_id != "vienna" for p in result.retrieved + result.passages)


def test_a_follow_up_judges_each_evidence_set_once(searcher, monkeypatch):
    judged = []

    def judging(question, evidence, settings, searcher_, retrieved=()):
        judged.append(evidence)
        return decide_refusal(question, evidence, settings, searcher_, retrieved)

    monkeypatch.setattr(answer_steps, "decide_refusal", judging)
    resolved = []
    settings = Settings(data_dir=searcher.data.folder, refuse_below_en=0.5, refuse_below_ar=0.5,
                        refusal_rule="threshold")
    svc = AnswerService(settings, lambda: resolved.append(1) or searcher,
                        Backend("extractive", None))
    # The follow-up alone finds too little; joined to the previous question it finds the
    # source, and each of the two evidence sets is judged exactly once.
    result = svc.answer("And where does it start?",
                        [Turn("Does the Rhine reach the North Sea?", "Yes, near Rotterdam [1].")])
    assert not result.refused and any("Swiss Alps" in p.text for p in result.passages)
    assert len(judged) == 2 and judged[0] is not judged[1] and judged[1] is result.passages
    assert len(resolved) == 1
    judged.clear()
    assert svc.answer("Where does the Rhine start?").passages is judged[0]
    assert len(judged) == 1


def test_the_facade_checks_once_and_resolves_the_generation_once(corpus, tmp_path,
                                                                  fake_embedder, monkeypatch):
    sanad = SanadService(Settings(data_dir=tmp_path / "data", llm_backend="extractive",
                                  refuse_below_en=-1, refuse_below_ar=-1), fake_embedder)
    sanad.index([corpus], progress=False, log=lambda m: None)
    resolved, checked = [], []
    searcher_of = sanad.searcher
    monkeypatch.setattr(sanad, "searcher", lambda: resolved.append(1) or searcher_of())
    real_check = answer_steps.checked_question
    monkeypatch.setattr(answer_steps, "checked_question",
                        lambda q, limit: checked.append(type(q).__name__) or real_check(q, limit))
    result = sanad.answer(VIENNA, [Turn("Where does the Rhine start?", "In the Swiss Alps [1].")])
    assert result.refused and "Vienna" in result.refusal_reason
    assert resolved == [1]
    # the pipeline gets the question the facade checked, and returns it unchecked again
    assert checked == ["Question"]
    with pytest.raises(AnswerError, match="empty"):
        sanad.answer_stream("  ")  # at the call, before anything streams
    assert sanad.backend.name == "extractive"


def test_a_server_gone_after_start_is_reported_as_unavailable_by_every_call():
    def gone(prompt):
        raise ConnectionRefusedError("connection refused")

    backend = Backend("openai", FakeLLM(gone))
    messages = [ChatMessage(role="user", content="What did Mexico request?")]
    with pytest.raises(LLMUnavailable, match="cannot be reached"):
        backend.complete(messages)
    with pytest.raises(LLMUnavailable, match="cannot be reached"):
        backend.sample(messages, 1, side=True)
    backend = Backend("openai", FakeLLM(lambda prompt: 1 / 0))  # not a connection problem
    with pytest.raises(ZeroDivisionError):
        backend.sample(messages, 1)
