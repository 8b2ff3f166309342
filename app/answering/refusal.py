"""The refusal decision: whether the evidence found can answer the question at all.

Decided before the model is asked, from the evidence alone: a refused question costs no LLM
call, and the reason given is one a reader can check against the passages shown.

Two rules (setting `refusal_rule`): "model", a logistic regression over the measurements in
refusal_features, fit by eval/fit_refusal.py on gold-removed dev questions and stored in
refusal_model.json; "threshold", the older fixed cosine cut per language plus two rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from app.answering.corpus import NAME_WORD, STOPWORDS, Passage, Searcher, script_of
from app.answering.refusal_features import amount_without_quantity, measure
from app.language import detect_language
from app.settings import Settings

MODEL_FILE = "refusal_model.json"
# How the drivers of a decision are named in its reason.
FEATURE_LABELS = {
    "top_evidence": "top evidence score", "evidence_margin": "evidence margin",
    "top_chunk": "top passage score", "chunk_margin": "passage margin",
    "chunk_z": "top passage z-score", "overlap": "word overlap", "cross_script": "other script",
    "type_missing": "answer type missing", "terms_missing": "distinguishing terms missing",
    "amount_rule": "amount asked, none stated", "unknown_name": "name never in the articles",
    "lang_ar": "Arabic question",
}


def refusal_threshold(settings: Settings, lang: str) -> float:
    """The evidence score below which the threshold rule refuses a question in `lang`."""
    return settings.refuse_below_ar if lang == "ar" else settings.refuse_below_en


def unknown_names(question: str, evidence: Sequence[Passage], searcher: Searcher) -> list[str]:
    """Names in the question the articles never use (e.g. a country they never mention).
    Only names in Latin script can be told apart from other words, and only checked when the
    evidence is in that script too (else the name may be in the other script's articles)."""
    if not evidence or not script_of(question) == "latin" == script_of(evidence[0].text):
        return []
    names = [m.group(0) for m in NAME_WORD.finditer(question)
             if m.start() > 0 and m.group(0).lower() not in STOPWORDS]
    return searcher.unknown_terms(names)


@dataclass(frozen=True)
class RefusalModel:
    """A logistic regression giving p(answerable) from standardised features; a feature
    that does not apply (None) takes its mean, so it moves nothing."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: dict[str, float]  # refuse below this p(answerable), per question language

    @classmethod
    def from_dict(cls, d: dict) -> RefusalModel:
        return cls(tuple(d["features"]), tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]),
                   float(d["intercept"]), {k: float(v) for k, v in d["threshold"].items()})

    def contributions(self, values: dict[str, float | None]) -> dict[str, float]:
        """Each feature's share of the log-odds, relative to an average question."""
        return {name: 0.0 if values.get(name) is None else c * (values[name] - m) / s
                for name, m, s, c in zip(self.features, self.mean, self.scale, self.coef)}

    def probability(self, values: dict[str, float | None]) -> float:
        logit = self.intercept + sum(self.contributions(values).values())
        return 1.0 / (1.0 + math.exp(-logit))

    def cut(self, lang: str) -> float:
        return self.threshold.get(lang, self.threshold["default"])


class RefusalModelMissing(RuntimeError):
    """refusal_rule is "model" but no model has been fitted into the package."""


@cache
def load_model() -> RefusalModel:
    path = resources.files("app.answering").joinpath(MODEL_FILE)
    if not path.is_file():
        raise RefusalModelMissing(
            f"no refusal model at app/answering/{MODEL_FILE}: fit one with "
            "eval/refusal_features.py and eval/fit_refusal.py, or set refusal_rule=threshold")
    return RefusalModel.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class RefusalDecision:
    """Whether to refuse ("" reason: answer), and the score the rule decided on: p(answerable)
    for the model, the best evidence sentence's cosine for the threshold rule."""

    reason: str
    score: float | None


def model_reason(model: RefusalModel, values: dict[str, float | None], lang: str) -> str:
    """"" when the model finds the question answerable, else why not: p(answerable) against
    the cut for the language, and the features that pulled it down most."""
    p, cut = model.probability(values), model.cut(lang)
    if p >= cut:
        return ""
    pulls = sorted((v, k) for k, v in model.contributions(values).items() if v < 0)[:2]
    drivers = ", ".join(f"{FEATURE_LABELS.get(k, k)} {values[k]:.2f}" for _, k in pulls)
    return (f"p(answerable)={p:.2f} < {cut:.2f} for {lang}"
            + (f"; held down by {drivers}" if drivers else ""))


def threshold_reason(question: str, evidence: Sequence[Passage], settings: Settings,
                     lang: str, names: Sequence[str]) -> str:
    """The older rule: a fixed cosine cut per language, an amount asked for and none stated,
    a Latin name the articles never use."""
    threshold = refusal_threshold(settings, lang)
    if evidence[0].score < threshold:
        return f"best evidence scores {evidence[0].score:.3f}, below {threshold:.3f} for {lang}"
    if amount_without_quantity(question, evidence):
        return "the question asks for an amount and the evidence states none"
    if names:
        return f"the articles never mention: {', '.join(names)}"
    return ""


def decide_refusal(question: str, evidence: list[Passage], settings: Settings,
                   searcher: Searcher, retrieved: Sequence[Passage] = ()) -> RefusalDecision:
    """Whether the articles can answer this. `searcher` is the one the evidence and the
    `retrieved` chunks came from (the same index generation)."""
    if not evidence:
        return RefusalDecision("nothing relevant was retrieved", None)
    lang = detect_language(question)
    names = unknown_names(question, evidence, searcher)
    if settings.refusal_rule == "threshold":
        return RefusalDecision(threshold_reason(question, evidence, settings, lang, names),
                               evidence[0].score)
    model = load_model()
    values = measure(question, lang, retrieved, evidence, names)
    reason = model_reason(model, values, lang)
    # A Latin name the articles never use is checked as a rule beside the model: the dev
    # sets (English questions over Arabic articles) never let it fire, so the fit cannot
    # weigh it.
    if not reason and names:
        reason = f"the articles never mention: {', '.join(names)}"
    return RefusalDecision(reason, round(model.probability(values), 4))
