#!/usr/bin/env python3
"""Validate eval/questions.jsonl against the article (stdlib only). Exit 1 on error.

    python3 eval/check_questions.py [questions.jsonl]

tests/test_questions.py imports `validate` and runs the same checks under pytest.
"""
import json
import os
import re
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
QUESTIONS = os.path.join(HERE, "questions.jsonl")
SEEDS = os.path.join(HERE, "..", "seeds")

KEYS = ["id", "pair", "lang", "question", "answerable", "article_id", "paragraph",
        "gold_spans", "key_facts", "answer", "type", "follow_up_of", "standalone"]
TYPES = {"factoid", "list", "yesno", "followup"}
# minimums the question set was built to meet
MINIMUMS = [("pairs", 24), ("answerable_pairs", 14), ("unanswerable_pairs", 8),
            ("followup_pairs", 5), ("yesno_pairs", 3)]


# Yes/no verdicts: the eval finds them only as the answer's opening word, so they may be
# outside the article and inside the question.
VERDICTS = {"yes", "no", "نعم", "لا", "كلا", "بلى"}
_ARABIC_MARKS = re.compile("[\u0610-\u061A\u064B-\u065F\u0670\u0640]")
_ALEFS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي"})


def _norm(text):
    return " ".join(_ARABIC_MARKS.sub("", text).translate(_ALEFS).casefold().split())


def occurs_in(fact, text):
    """Whether `fact` occurs in `text` as whole words (an Arabic one perhaps after the
    proclitics و ف ب ك ل ال), roughly as the eval matches key facts (app.eval.matching)."""
    fact = _norm(fact)
    if fact.startswith("ال") and len(fact.split()[0]) >= 5:
        fact = fact[2:]
    prefix = "(?:[وف]?[بكل]?(?:ال)?|[وف]?لل)?" if len(fact.split()[0]) >= 3 else ""
    return re.search(r"(?<!\w)%s%s(?!\w)" % (prefix, re.escape(fact)), _norm(text)) is not None


def paragraphs(text):
    """(start, end) of each non-empty line, numbered from 0."""
    out, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def read_rows(path, errors):
    rows = []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                errors.append("line %d: bad JSON: %s" % (ln, e))
    return rows


def _check_answerable(r, qid, text, paras, err):
    lang = r["lang"]
    p = r["paragraph"]
    if not isinstance(p, int) or not 0 <= p < len(paras):
        err(qid, "bad paragraph %r" % p)
        p = None
    spans = r["gold_spans"]
    if not spans:
        err(qid, "answerable but no gold_spans")
    for sp in spans:
        if not (isinstance(sp, list) and len(sp) == 2 and all(isinstance(x, int) for x in sp)
                and 0 <= sp[0] < sp[1] <= len(text)):
            err(qid, "bad span %r" % (sp,))
            continue
        if text[sp[0]:sp[1]] != text[sp[0]:sp[1]].strip():
            err(qid, "span %r has leading/trailing whitespace" % (sp,))
        if p is not None and not (paras[p][0] <= sp[0] and sp[1] <= paras[p][1]):
            err(qid, "span %r outside paragraph %d" % (sp, p))
    if not r["key_facts"] or not all(isinstance(k, str) and k for k in r["key_facts"]):
        err(qid, "answerable needs non-empty key_facts")
    if not r["answer"].strip():
        err(qid, "answerable needs answer")
    gold = " ".join(text[a:b] for a, b in spans if isinstance(a, int))
    for k in r["key_facts"]:
        if k.lower() not in r["answer"].lower():
            err(qid, "key fact %r not in reference answer" % k)
        verdict = _norm(k) in VERDICTS
        if lang == "ar" and k not in gold and not verdict:
            err(qid, "Arabic key fact %r not inside gold spans" % k)
        if not verdict and occurs_in(k, r["question"]):
            # an answer that only restates the question would be credited with it
            err(qid, "key fact %r occurs in the question" % k)


def _check_pairs(pairs, errors, err):
    for pid, rs in pairs.items():
        langs = sorted(x["lang"] for x in rs)
        if langs != ["ar", "en"]:
            err(pid, "pair languages %s (need en+ar)" % langs)
            continue
        en, ar = sorted(rs, key=lambda x: x["lang"] != "en")
        for k in ("answerable", "article_id", "paragraph", "gold_spans", "type"):
            if en[k] != ar[k]:
                err(pid, "en/ar differ on %s" % k)
        if (en["follow_up_of"] or "")[:-3] != (ar["follow_up_of"] or "")[:-3]:
            err(pid, "en/ar follow_up_of point to different pairs")
        if bool(en["key_facts"]) != bool(ar["key_facts"]):
            err(pid, "en/ar key_facts presence differs")


def _counts(rows, pairs):
    complete = [rs for rs in pairs.values() if len(rs) == 2]
    ans = sum(1 for rs in complete if rs[0]["answerable"])
    types = Counter(rs[0]["type"] for rs in complete)
    return {
        "questions": len(rows),
        "pairs": len(complete),
        "answerable_pairs": ans,
        "unanswerable_pairs": len(complete) - ans,
        "followup_pairs": types["followup"],
        "yesno_pairs": types["yesno"],
        "type_counts": dict(types),
        "paragraphs_covered": sorted({rs[0]["paragraph"] for rs in complete
                                      if rs[0]["answerable"]}),
    }


def validate(rows, seeds=SEEDS, minimums=MINIMUMS):
    """(errors, counts) for question rows checked against the articles in `seeds`."""
    errors = []

    def err(qid, msg):
        errors.append("%s: %s" % (qid, msg))

    articles = {}
    seen = {}  # id -> (index, lang)
    pairs = {}
    for idx, r in enumerate(rows):
        qid = r.get("id", "line%d" % (idx + 1))
        if list(r.keys()) != KEYS and set(r.keys()) != set(KEYS):
            err(qid, "keys %s" % sorted(set(r.keys()) ^ set(KEYS)))
            continue
        if qid in seen:
            err(qid, "duplicate id")
        lang = r["lang"]
        if lang not in ("en", "ar"):
            err(qid, "bad lang")
        if qid != "%s-%s" % (r["pair"], lang):
            err(qid, "id must be <pair>-<lang>")
        if not isinstance(r["question"], str) or not r["question"].strip():
            err(qid, "empty question")
        if r["type"] not in TYPES:
            err(qid, "bad type %r" % r["type"])
        if not isinstance(r["answerable"], bool):
            err(qid, "answerable must be bool")
        aid = r["article_id"]
        if aid not in articles:
            path = os.path.join(seeds, aid + ".txt")
            if not os.path.exists(path):
                err(qid, "unknown article %s" % aid)
                continue
            with open(path, encoding="utf-8") as f:
                articles[aid] = f.read()
        text = articles[aid]

        if r["answerable"]:
            _check_answerable(r, qid, text, paragraphs(text), err)
        else:
            if r["paragraph"] is not None or r["gold_spans"] or r["key_facts"] or r["answer"]:
                err(qid, "unanswerable must have paragraph null, [] spans, [] key_facts, '' answer")
            if r["type"] == "followup":
                err(qid, "follow-ups must be answerable")

        if r["type"] == "followup":
            fu = r["follow_up_of"]
            if fu not in seen:
                err(qid, "follow_up_of %r is not an earlier id" % fu)
            elif seen[fu][1] != lang:
                err(qid, "follow_up_of %r has a different language" % fu)
            if not isinstance(r["standalone"], str) or not r["standalone"].strip():
                err(qid, "follow-up needs standalone")
        else:
            if r["follow_up_of"] is not None or r["standalone"] is not None:
                err(qid, "non-follow-up must have follow_up_of/standalone null")
        seen[qid] = (idx, lang)
        pairs.setdefault(r["pair"], []).append(r)

    _check_pairs(pairs, errors, err)
    counts = _counts(rows, pairs)
    for k, m in minimums:
        if counts[k] < m:
            errors.append("count %s=%d < %d" % (k, counts[k], m))
    no_yesno = [x for x in rows if x.get("type") == "yesno" and x.get("lang") == "en"
                and x.get("answer", "").lower().startswith("no")]
    if minimums and not no_yesno:
        errors.append("need at least one yes/no question answered 'no'")
    return errors, counts


def main(argv):
    path = argv[1] if len(argv) > 1 else QUESTIONS
    read_errors = []
    rows = read_rows(path, read_errors)
    errors, counts = validate(rows)
    errors = read_errors + errors
    print(json.dumps(counts, ensure_ascii=False))
    if errors:
        print("FAILED (%d errors)" % len(errors))
        for e in errors:
            print("  " + e)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
