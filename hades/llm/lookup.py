"""Prompt-lookup drafts: an n-gram proposer that needs no draft model (docs/MODELS.md
"Prompt-lookup drafts").

As in Hugging Face's prompt lookup decoding (`generate(prompt_lookup_num_tokens=...)`) and
vLLM's n-gram proposer: the last n tokens of the context (the prompt plus the text generated
so far) are searched for earlier in the context, the longest n first (n = ngram_max down to
ngram_min), and the tokens that followed the most recent earlier occurrence are proposed, up
to gamma of them (fewer where the context ends first). No match for any n: no drafts (the
round verifies gamma 0, i.e. one plain target step).

The drafts are one-hot rows (NUMERICS.md section 12: P one-hot at x_t with ZP = 1; in v1
files the same row scaled to the row sum M), so the verifier accepts x_t with probability
Q_t[x_t] / ZQ_t, and greedy verification accepts while x_t is the target's argmax. Pure
Python and numpy: no torch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hades.errors import ConfigError

DEFAULT_NGRAM = (1, 3)   # n from 1 to 3, longest first
MAX_NGRAM = 64


def check_ngram(ngram) -> tuple[int, int]:
    """(ngram_min, ngram_max) with 1 <= ngram_min <= ngram_max <= 64 (ConfigError otherwise)."""
    try:
        lo, hi = (int(v) for v in ngram)
    except (TypeError, ValueError):
        raise ConfigError(f"lookup n-gram range: expected two integers (min, max), got {ngram!r}") from None
    if not 1 <= lo <= hi <= MAX_NGRAM:
        raise ConfigError(f"lookup n-gram range must satisfy 1 <= min <= max <= {MAX_NGRAM}, got {lo}..{hi}")
    return lo, hi


def parse_ngram(text: str) -> tuple[int, int]:
    """'1..3' or '1-3' -> (1, 3); '2' -> (2, 2)."""
    s = str(text).strip()
    sep = ".." if ".." in s else "-" if "-" in s[1:] else None
    parts = s.split(sep, 1) if sep else [s, s]
    try:
        lo, hi = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"lookup n-gram range: cannot parse {text!r} (expected e.g. '1..3' or '2')") from None
    return check_ngram((lo, hi))


def format_ngram(ngram) -> str:
    lo, hi = ngram
    return f"{lo}..{hi}"


def propose(tokens: Sequence[int], gamma: int, ngram=DEFAULT_NGRAM) -> list[int]:
    """Up to gamma draft tokens for the context `tokens` (prompt + generated so far).

    For n from ngram_max down to ngram_min: the suffix s = tokens[-n:]; among the earlier
    occurrences of s (start i with i + n < len(tokens), so at least one token follows and the
    suffix itself does not count) take the most recent one, and propose
    tokens[i + n : i + n + gamma]. The first n with a match wins; none: [].
    """
    lo, hi = check_ngram(ngram)
    if gamma < 0:
        raise ConfigError(f"gamma must be >= 0, got {gamma}")
    t = np.asarray(tokens, np.int64)
    L = t.size
    if gamma == 0 or L < 2:
        return []
    for n in range(min(hi, L - 1), lo - 1, -1):
        # windows[i] = t[i : i + n] for i = 0 .. L - n - 1: every start that leaves a token after it
        windows = sliding_window_view(t[: L - 1], n)
        hits = np.flatnonzero((windows == t[L - n:]).all(axis=1))
        if hits.size:
            i = int(hits[-1]) + n
            return [int(x) for x in t[i: i + gamma]]
    return []
