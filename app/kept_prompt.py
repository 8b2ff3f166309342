"""Start every call to llama.cpp's one context from its prompt's fixed part, evaluated alone.

A prompt is a fixed part (the system prompt and worked examples) and the question's part.
llama-cpp-python reuses whatever prefix the previous prompt left evaluated and evaluates
the rest in batches from there, so the same question met different batch boundaries after
different earlier calls, and greedy decoding, sensitive to the last bits of the logits,
wrote a different draft: an answer depended on what was asked before it.

Here the fixed part is evaluated alone, from an empty context, the first time it is met;
its KV cells are copied out (only the cells in use) and copied back whenever
another prompt has replaced them. Every call then evaluates its own part from the same
state, in the same batches: the same question gets the same answer in any order, and the
fixed part is evaluated once, not again after every side call (rewriting a follow-up,
rendering an answer) in the same context.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict

import numpy as np

SEQUENCE = 0  # llama_cpp's Llama keeps everything in sequence 0
KEEP = 8  # fixed parts kept: the span prompt, the answer prompt per language, renderings


class KeptPrefixes:
    """The evaluated fixed parts of the prompts sent to one llama_cpp.Llama."""

    def __init__(self, llama, keep: int = KEEP):
        self._llama = llama
        self._keep = keep
        self._saved: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._in_place: tuple[int, ...] | None = None  # whose cells start the context now
        self._lock = threading.Lock()

    @property
    def saved(self) -> int:
        return len(self._saved)

    def before_call(self, fixed_part: str) -> None:
        """Leave exactly `fixed_part`, evaluated alone, in the context for the next call
        (an empty context when it is "")."""
        llama = self._llama
        with self._lock:
            tokens = tuple(llama.tokenize(fixed_part.encode("utf-8"), add_bos=True,
                                          special=True)) if fixed_part else ()
            if tokens and tokens == self._in_place and self._starts_with(tokens):
                self._truncate(len(tokens))  # only this part's calls ran since it was placed
            elif not tokens:
                self._clear()
            elif not self._restore(tokens):
                self._evaluate(tokens)
            self._in_place = tokens or None

    def _starts_with(self, tokens: tuple[int, ...]) -> bool:
        llama = self._llama
        return (llama.n_tokens >= len(tokens)
                and tuple(llama.input_ids[: len(tokens)].tolist()) == tokens)

    def _truncate(self, length: int) -> None:
        self._llama._ctx.kv_cache_seq_rm(SEQUENCE, length, -1)
        self._set_length(length)

    def _set_length(self, length: int) -> None:
        self._llama.n_tokens = length
        self._llama._requires_eval = True  # the last token's logits are not kept

    def _clear(self) -> None:
        self._llama.reset()
        self._llama._ctx.kv_cache_seq_rm(SEQUENCE, -1, -1)

    def _evaluate(self, tokens: tuple[int, ...]) -> None:
        self._clear()
        self._llama.eval(list(tokens))
        self._save(tokens)

    def _save(self, tokens: tuple[int, ...]) -> None:
        from llama_cpp import llama_cpp as low

        ctx = self._llama._ctx.ctx
        size = low.llama_state_seq_get_size(ctx, SEQUENCE)
        buffer = (ctypes.c_uint8 * size)()
        written = low.llama_state_seq_get_data(ctx, buffer, size, SEQUENCE)
        if written == 0:
            return  # not saved: evaluated again the next time another prompt replaced it
        self._saved[tokens] = bytes(buffer[:written])
        while len(self._saved) > self._keep:
            self._saved.popitem(last=False)

    def _restore(self, tokens: tuple[int, ...]) -> bool:
        """Copy the saved cells of `tokens` back; False when none are saved or they could
        not be restored (then they are forgotten)."""
        from llama_cpp import llama_cpp as low

        state = self._saved.get(tokens)
        if state is None:
            return False
        self._saved.move_to_end(tokens)
        llama = self._llama
        self._clear()
        data = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if low.llama_state_seq_set_data(llama._ctx.ctx, data, len(state), SEQUENCE) == 0:
            del self._saved[tokens]
            return False
        llama.input_ids[: len(tokens)] = np.asarray(tokens)
        self._set_length(len(tokens))
        return True
