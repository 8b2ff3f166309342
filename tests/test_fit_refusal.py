"""The refusal model's fit script: standardising, the operating point, grouped held-out
scores, on hand-made rows."""

import importlib.util

import numpy as np
import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("fit_refusal", ROOT / "eval" / "fit_refusal.py")
fit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit)


def row(dataset, lang, answerable, group="g", variant=None, **features):
    return {"dataset": dataset, "lang": lang, "answerable": answerable, "group": group,
            "variant": variant or ("asked" if answerable else "gold-removed"),
            "threshold_refused": False, "features": features}


def test_a_missing_value_takes_the_training_mean():
    rows = [row("d", "en", True, a=1.0), row("d", "en", False, a=3.0), row("d", "en", True, a=None)]
    standard = fit.Standardiser(rows, ("a",))
    assert standard.mean.tolist() == [2.0] and standard.scale.tolist() == [1.0]
    assert standard.matrix(rows).ravel().tolist() == [-1.0, 1.0, 0.0]


def test_the_cut_keeps_false_refusal_within_the_limit_in_every_dataset():
    # answerable scores: d1 0.1 0.5 0.6 0.7 0.8; d2 0.3 0.9 -> at most 1/5 and 1/2 refused
    rows = [row("d1", "ar", True) for _ in range(5)] + [row("d2", "ar", True) for _ in range(2)]
    scores = np.array([0.1, 0.5, 0.6, 0.7, 0.8, 0.3, 0.9])
    idx = list(range(len(rows)))
    # max 0.2: d1 may lose 0.1 (cut up to 0.5), d2 nothing (cut up to 0.3)
    assert fit.best_cut(rows, scores, idx, 0.2) == pytest.approx(0.3)
    assert fit.best_cut(rows, scores, idx, 0.5) == pytest.approx(0.6)  # d1: 2 of 5
    assert fit.best_cut(rows, scores, idx, 0.0) == pytest.approx(0.1)


def test_rates_count_both_sides_and_each_unanswerable_variant():
    rows = [row("d", "en", True), row("d", "en", True), row("d", "en", False),
            row("d", "en", False), row("d", "en", False, variant="passage-removed")]
    refused = np.array([True, False, True, True, False])
    assert fit.rates(rows, refused, [0, 1, 2, 3, 4]) == {
        "answerable": 2, "false_refusal": 0.5, "gold-removed": {"n": 2, "refusal": 1.0},
        "passage-removed": {"n": 1, "refusal": 0.0}}


def test_a_cut_per_language_only_where_it_refuses_clearly_more():
    rows = ([row("d", "en", True) for _ in range(4)] + [row("d", "en", False) for _ in range(4)]
            + [row("d", "ar", True) for _ in range(4)] + [row("d", "ar", False) for _ in range(4)])
    scores = np.array([0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4,   # en: separable at 0.6
                       0.2, 0.7, 0.8, 0.9, 0.1, 0.1, 0.1, 0.1])  # ar: one low answerable
    cuts = fit.operating_points(rows, scores, 0.0, 0.02)
    assert cuts["default"] == pytest.approx(0.2) and cuts["en"] == pytest.approx(0.6)
    assert "ar" not in cuts  # its own cut (0.2) refuses no more than the shared one


def test_held_out_scores_never_see_the_rows_article():
    rng = np.random.default_rng(0)
    rows = [row("d", "en", bool(i % 2), group=f"a{i % 10}", x=float(i % 2) + rng.normal(0, 0.1))
            for i in range(60)]
    scores = fit.held_out_scores(rows, ("x",), 1.0, lambda r: True)
    answerable = np.array([r["answerable"] for r in rows])
    assert scores[answerable].min() > 0.5 > scores[~answerable].max()


def test_rows_the_fit_leaves_out_are_scored_but_never_trained_on():
    # passage-removed rows that look answerable (x = 1) would pull the model down if fit
    rows = ([row("d", "en", True, group=f"a{i % 5}", x=1.0) for i in range(20)]
            + [row("d", "en", False, group=f"a{i % 5}", x=0.0) for i in range(20)]
            + [row("d", "en", False, group=f"a{i % 5}", variant="passage-removed", x=1.0)
               for i in range(40)])
    kept = fit.held_out_scores(rows, ("x",), 1.0, lambda r: r["variant"] != "passage-removed")
    every = fit.held_out_scores(rows, ("x",), 1.0, lambda r: True)
    assert kept[:20].min() > 0.9 and kept[40:].min() > 0.9  # scored, like answerable ones
    assert every[:20].max() < 0.5  # trained on, they drag the answerable down
