"""Keep the answer prompt's evaluated state in llama.cpp's one context across side calls.

llama.cpp reuses only the previous prompt's evaluated prefix. A side call (rewriting a
follow-up, translating an answer) in the same context replaces that prefix, and the next
answer would evaluate its system prompt again. So before the first side call the answer
prompt's KV cells are copied out (only the cells in use, a few megabytes), and before the
next answer they are copied back; one context serves both, instead of a second context
that loads the weights again.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

SEQUENCE = 0  # llama_cpp's Llama keeps everything in sequence 0


class KeptPrompt:
    """Saves and restores the evaluated prompt of one llama_cpp.Llama."""

    def __init__(self, llama):
        self._llama = llama
        self._saved: tuple[bytes, np.ndarray] | None = None
        self._lock = threading.Lock()

    @property
    def holding(self) -> bool:
        """Whether an answer prompt is saved and not yet restored."""
        return self._saved is not None

    def before_side_call(self) -> None:
        """Save the answer prompt's state, unless a side call came first and it is saved."""
        from llama_cpp import llama_cpp as low

        with self._lock:
            llama = self._llama
            if self._saved is not None or llama.n_tokens == 0:
                return
            ctx = llama._ctx.ctx
            size = low.llama_state_seq_get_size(ctx, SEQUENCE)
            buffer = (ctypes.c_uint8 * size)()
            written = low.llama_state_seq_get_data(ctx, buffer, size, SEQUENCE)
            if written == 0:
                return  # nothing could be saved: the next answer evaluates its prompt again
            self._saved = (bytes(buffer[:written]), llama.input_ids[: llama.n_tokens].copy())

    def before_answer(self) -> None:
        """Put the saved answer prompt back in place of the side call's."""
        from llama_cpp import llama_cpp as low

        with self._lock:
            if self._saved is None:
                return
            state, tokens = self._saved
            self._saved = None
            llama = self._llama
            llama._ctx.kv_cache_seq_rm(SEQUENCE, -1, -1)
            data = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
            if low.llama_state_seq_set_data(llama._ctx.ctx, data, len(state), SEQUENCE) == 0:
                llama.reset()  # not restored: start from an empty context, as without it
                llama._ctx.kv_cache_seq_rm(SEQUENCE, -1, -1)
                return
            llama.input_ids[: len(tokens)] = tokens
            llama.n_tokens = len(tokens)
            llama._requires_eval = True  # the last token's logits are not kept
