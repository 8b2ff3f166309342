"""Fit the refusal model: a logistic regression over the refusal features, p(answerable).

Reads the rows eval/refusal_features.py wrote (answerable dev questions and their
gold-removed copies), scores every row by a model that never saw its article (grouped
cross-validation by article), picks the operating point on those held-out scores, and
writes app/answering/refusal_model.json (the model refit on every row, with the cut) and,
with --plots, the refusal / false-refusal curves per language.

The cut: the highest p(answerable) below which at most --max-false-refusal of the
answerable questions are refused, in every dataset of the language; that is, false refusal
first, then as many gold-removed questions refused as that allows. A cut per language only
where it refuses clearly more than one shared cut (--per-language-gain).

    PYTHONPATH=. python eval/fit_refusal.py /tmp/refusal-features.jsonl --plots /tmp/plots
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

MODEL_PATH = Path(__file__).resolve().parent.parent / "app" / "answering" / "refusal_model.json"
FEATURES = ("top_evidence", "evidence_margin", "top_chunk", "chunk_margin", "chunk_z", "overlap",
            "cross_script", "type_missing", "terms_missing", "amount_rule", "unknown_name",
            "lang_ar")
FOLDS = 5
CUTS = np.round(np.arange(0.0, 1.0001, 0.005), 3)


def read_rows(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for path in paths
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Standardiser:
    """Means and scales of the features over training rows; a missing value takes the mean."""

    def __init__(self, rows: list[dict], features: tuple[str, ...]):
        self.features = features
        columns = [[r["features"][f] for r in rows if r["features"][f] is not None]
                   for f in features]
        self.mean = np.array([np.mean(c) if c else 0.0 for c in columns])
        scale = np.array([np.std(c) if c else 1.0 for c in columns])
        self.scale = np.where(scale > 1e-9, scale, 1.0)

    def matrix(self, rows: list[dict]) -> np.ndarray:
        raw = np.array([[np.nan if r["features"][f] is None else r["features"][f]
                         for f in self.features] for r in rows], dtype=float)
        raw = np.where(np.isnan(raw), self.mean, raw)
        return (raw - self.mean) / self.scale


def fit(rows: list[dict], features: tuple[str, ...], c: float) -> tuple[Standardiser,
                                                                        LogisticRegression]:
    standard = Standardiser(rows, features)
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(standard.matrix(rows), [r["answerable"] for r in rows])
    return standard, model


def held_out_scores(rows: list[dict], features: tuple[str, ...], c: float) -> np.ndarray:
    """p(answerable) of every row from a model fit without the row's article."""
    groups = [f"{r['dataset']}:{r['group']}" for r in rows]
    scores = np.zeros(len(rows))
    for train, test in GroupKFold(FOLDS).split(rows, groups=groups):
        standard, model = fit([rows[i] for i in train], features, c)
        scores[test] = model.predict_proba(standard.matrix([rows[i] for i in test]))[:, 1]
    return scores


def cells(rows: list[dict]) -> dict[tuple[str, str], list[int]]:
    """Row indices per (dataset, language)."""
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        out[(r["dataset"], r["lang"])].append(i)
    return dict(out)


def rates(rows: list[dict], refused: np.ndarray, idx: list[int]) -> dict:
    answerable = [i for i in idx if rows[i]["answerable"]]
    removed = [i for i in idx if not rows[i]["answerable"]]
    return {"answerable": len(answerable), "gold_removed": len(removed),
            "false_refusal": round(float(np.mean(refused[answerable])), 4) if answerable else None,
            "refusal": round(float(np.mean(refused[removed])), 4) if removed else None}


def best_cut(rows: list[dict], scores: np.ndarray, idx: list[int], max_fr: float) -> float:
    """The highest cut whose false refusal is at most max_fr in every dataset of `idx`."""
    by_dataset = defaultdict(list)
    for i in idx:
        if rows[i]["answerable"]:
            by_dataset[rows[i]["dataset"]].append(scores[i])
    ok = [cut for cut in CUTS
          if all(np.mean(np.array(s) < cut) <= max_fr for s in by_dataset.values())]
    return float(max(ok)) if ok else 0.0


def operating_points(rows, scores, max_fr, gain) -> dict[str, float]:
    langs = sorted({r["lang"] for r in rows})
    shared = best_cut(rows, scores, list(range(len(rows))), max_fr)
    cuts = {"default": shared}
    for lang in langs:
        idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
        own = best_cut(rows, scores, idx, max_fr)
        removed = [i for i in idx if not rows[i]["answerable"]]
        if np.mean(scores[removed] < own) - np.mean(scores[removed] < shared) >= gain:
            cuts[lang] = own
    return cuts


def refused_at(rows, scores, cuts) -> np.ndarray:
    return np.array([s < cuts.get(r["lang"], cuts["default"]) for r, s in zip(rows, scores)])


def plot_curves(rows, scores, cuts, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for lang in sorted({r["lang"] for r in rows}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for (dataset, cell_lang), idx in sorted(cells(rows).items()):
            if cell_lang != lang:
                continue
            fr = [rates(rows, scores < c, idx)["false_refusal"] for c in CUTS]
            rr = [rates(rows, scores < c, idx)["refusal"] for c in CUTS]
            ax.plot(CUTS, rr, label=f"{dataset}: gold-removed refused")
            ax.plot(CUTS, fr, linestyle="--", label=f"{dataset}: answerable refused")
        cut = cuts.get(lang, cuts["default"])
        ax.axvline(cut, color="grey", linewidth=1)
        ax.axhline(0.05, color="red", linewidth=0.5)
        ax.set(xlabel="refuse below p(answerable)", ylabel="share refused",
               title=f"refusal by the model, {lang} questions (held-out; cut {cut:.3f})")
        ax.legend(fontsize=7)
        path = folder / f"refusal_curve_{lang}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(folder: Path, stored: dict, plots: list[Path]) -> Path:
    """report.md beside the curves: the operating point and both rules per dataset and
    language, on held-out folds."""
    lines = ["# Refusal model: held-out figures", "",
             f"Rows: {stored['fit']['rows']} ({', '.join(stored['fit']['datasets'])}), "
             f"{stored['fit']['folds']}-fold cross-validation grouped by article. Operating "
             f"point (refuse below p(answerable)): {stored['threshold']}, chosen for false "
             f"refusal <= {stored['fit']['max_false_refusal']} in every dataset.", "",
             "| dataset/lang | answerable | gold-removed | false refusal (model) | "
             "refusal (model) | false refusal (threshold rule) | refusal (threshold rule) |",
             "|---|---|---|---|---|---|---|"]
    for cell, both in stored["fit"]["held_out"].items():
        m, t = both["model"], both["threshold_rule"]
        lines.append(f"| {cell} | {m['answerable']} | {m['gold_removed']} | "
                     f"{m['false_refusal']} | {m['refusal']} | {t['false_refusal']} | "
                     f"{t['refusal']} |")
    lines += ["", "| feature | coefficient (standardised) |", "|---|---|"]
    lines += [f"| {f} | {c:+.3f} |" for f, c in zip(stored["features"], stored["coef"])]
    lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--max-false-refusal", type=float, default=0.05)
    parser.add_argument("--per-language-gain", type=float, default=0.02)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--plots", type=Path, help="folder for the refusal curves")
    args = parser.parse_args()
    rows = read_rows(args.features)
    scores = held_out_scores(rows, FEATURES, args.c)
    cuts = operating_points(rows, scores, args.max_false_refusal, args.per_language_gain)
    refused = refused_at(rows, scores, cuts)
    old = np.array([r["threshold_refused"] for r in rows])
    report = {f"{d}/{lang}": {"model": rates(rows, refused, idx),
                              "threshold_rule": rates(rows, old, idx)}
              for (d, lang), idx in sorted(cells(rows).items())}
    standard, model = fit(rows, FEATURES, args.c)
    stored = {
        "features": list(FEATURES), "mean": standard.mean.round(6).tolist(),
        "scale": standard.scale.round(6).tolist(), "coef": model.coef_[0].round(6).tolist(),
        "intercept": round(float(model.intercept_[0]), 6), "threshold": cuts,
        "fit": {"rows": len(rows), "datasets": sorted({r["dataset"] for r in rows}),
                "c": args.c, "folds": FOLDS, "max_false_refusal": args.max_false_refusal,
                "held_out": report},
    }
    args.out.write_text(json.dumps(stored, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"threshold": cuts, "held_out": report,
                      "coef": dict(zip(FEATURES, stored["coef"]))}, indent=1))
    if args.plots:
        plots = plot_curves(rows, scores, cuts, args.plots)
        print(f"wrote {write_report(args.plots, stored, plots)}")


if __name__ == "__main__":
    main()
