"""Answering: from a checked question to a cited answer or an honest refusal.

Callers outside this package use `app.service.SanadService` (and the names it re-exports);
the modules here, in the order a question meets them:

- question: the question checked once (`checked_question`), conversation turns
- corpus: everything answering takes from index/ (searching, embeddings, text helpers)
- followup: a follow-up rewritten as a standalone question
- evidence: the numbered evidence sentences, scored against the question
- refusal: whether the evidence can answer at all, and why not
- policy: the answer's language and the strictness of the checks, by backend
- generation: the draft answer (the LLM's, or quoted without one)
- checks, copy_check: each sentence checked against the passage it cites
- render: what the reader sees (markers, yes/no basis, evidence-first lead-in, refusal)
- translation: the labelled machine translation of an evidence-first answer
- results: the streamed tokens and the final AnswerResult
- service: AnswerService, the steps above in order
"""
