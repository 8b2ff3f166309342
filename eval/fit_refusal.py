"""Fit the refusal model: a logistic regression over the refusal features, p(answerable).

Reads the rows eval/refusal_features.py wrote (answerable dev questions and their
unanswerable copies), scores every row by a model that never saw its article (grouped
cross-validation by article), picks the operating point on those held-out scores, and
writes app/answering/refusal_model.json (the model refit on every training row, with the
cut) and, with --plots, the refusal / false-refusal curves per language. The model is fit
on the answerable and gold-removed rows (--train); the passage-removed rows, near-topic
traps, are only measured: a check of how the decision carries to questions it was not
fit for.

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
from collections.abc import Callable
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


def held_out_scores(rows: list[dict], features: tuple[str, ...], c: float,
                    trains: Callable[[dict], bool]) -> np.ndarray:
    """p(answerable) of every row from a model fit without the row's article, on the rows
    `trains` accepts."""
    groups = [f"{r['dataset']}:{r['group']}" for r in rows]
    scores = np.zeros(len(rows))
    for train, test in GroupKFold(FOLDS).split(rows, groups=groups):
        standard, model = fit([rows[i] for i in train if trains(rows[i])], features, c)
        scores[test] = model.predict_proba(standard.matrix([rows[i] for i in test]))[:, 1]
    return scores


def cells(rows: list[dict]) -> dict[tuple[str, str], list[int]]:
    """Row indices per (dataset, language)."""
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        out[(r["dataset"], r["lang"])].append(i)
    return dict(out)


def variant(row: dict) -> str:
    """asked, gold-removed or passage-removed (rows of older dumps have no variant)."""
    return row.get("variant") or ("asked" if row["answerable"] else "gold-removed")


def rates(rows: list[dict], refused: np.ndarray, idx: list[int]) -> dict:
    """False refusal of the answerable rows in `idx`, refusal of each unanswerable variant."""
    by_variant: dict[str, list[int]] = defaultdict(list)
    for i in idx:
        by_variant[variant(rows[i])].append(i)
    out: dict = {}
    for name, members in sorted(by_variant.items()):
        share = round(float(np.mean(refused[members])), 4)
        if name == "asked":
            out.update(answerable=len(members), false_refusal=share)
        else:
            out[name] = {"n": len(members), "refusal": share}
    return out


def best_cut(rows: list[dict], scores: np.ndarray, idx: list[int], max_fr: float) -> float:
    """The highest cut whose false refusal is at most max_fr in every dataset and language
    of `idx`."""
    by_dataset = defaultdict(list)
    for i in idx:
        if rows[i]["answerable"]:
            by_dataset[(rows[i]["dataset"], rows[i]["lang"])].append(scores[i])
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
        removed = [i for i in idx if variant(rows[i]) == "gold-removed"]
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
            curve = [rates(rows, scores < c, idx) for c in CUTS]
            line = ax.plot(CUTS, [r["false_refusal"] for r in curve], linestyle="--",
                           label=f"{dataset}: answerable refused")[0]
            for name, style in (("gold-removed", "-"), ("passage-removed", ":")):
                if name in curve[0]:
                    ax.plot(CUTS, [r[name]["refusal"] for r in curve], linestyle=style,
                            color=line.get_color(), label=f"{dataset}: {name} refused")
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
             f"refusal <= {stored['fit']['max_false_refusal']} in every dataset and language. "
             f"Fit on: {', '.join(stored['fit']['trained_on'])}.", "",
             "| dataset/lang | rule | answerable | false refusal | gold-removed refused | "
             "passage-removed refused |", "|---|---|---|---|---|---|"]
    for cell, both in stored["fit"]["held_out"].items():
        for rule in ("model", "threshold_rule"):
            r = both[rule]
            lines.append(f"| {cell} | {rule} | {r['answerable']} | {r['false_refusal']} | "
                         + " | ".join(f"{r[v]['refusal']} (of {r[v]['n']})" if v in r else "–"
                                      for v in ("gold-removed", "passage-removed")) + " |")
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
    parser.add_argument("--train", default="asked,gold-removed",
                        help="the variants the model is fit on; the others are only measured "
                             "(passage-removed: a held-out check on near-topic traps)")
    args = parser.parse_args()
    rows = read_rows(args.features)
    fitted = set(args.train.split(","))

    def trains(row: dict) -> bool:
        return variant(row) in fitted

    scores = held_out_scores(rows, FEATURES, args.c, trains)
    cuts = operating_points(rows, scores, args.max_false_refusal, args.per_language_gain)
    refused = refused_at(rows, scores, cuts)
    old = np.array([r["threshold_refused"] for r in rows])
    report = {f"{d}/{lang}": {"model": rates(rows, refused, idx),
                              "threshold_rule": rates(rows, old, idx)}
              for (d, lang), idx in sorted(cells(rows).items())}
    standard, model = fit([r for r in rows if trains(r)], FEATURES, args.c)
    stored = {
        "features": list(FEATURES), "mean": standard.mean.round(6).tolist(),
        "scale": standard.scale.round(6).tolist(), "coef": model.coef_[0].round(6).tolist(),
        "intercept": round(float(model.intercept_[0]), 6), "threshold": cuts,
        "fit": {"rows": len(rows), "datasets": sorted({r["dataset"] for r in rows}),
                "trained_on": sorted(fitted), "c": args.c, "folds": FOLDS,
                "max_false_refusal": args.max_false_refusal,
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
