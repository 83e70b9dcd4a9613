"""Normative integer numerics of the verifier (DESIGN.md section 2).

Every level (FL, CL, RTL) and every producer of traces imports these functions; nothing
else in the project re-implements them. All arithmetic on probabilities is integer:
rows are unsigned W-bit integers summing exactly to M, uniforms are U-bit integers.

Bias bound of the samplers: a sample draws T = (R * S) >> U with R uniform on [0, 2^U)
and emits the smallest k whose prefix sum exceeds T. Outcome k owns r_k consecutive values
of T, i.e. the R in an interval of length 2^U * r_k / S, which holds that many integers
give or take one. Hence |Pr[k] - r_k / S| < 2^-U for every outcome (tighter than the
2^-(U - log2 S) of DESIGN.md), and the total-variation distance to r/S is below V * 2^-U / 2.
"""
from __future__ import annotations

import numpy as np

from hades.errors import TraceError


def default_row_sum(prob_bits: int) -> int:
    """M = 2^W - 1: the largest constant for which a one-hot row still fits in W bits."""
    return (1 << prob_bits) - 1


def quantize_rows(probs: np.ndarray, row_sum: int) -> np.ndarray:
    """Float probabilities [..., V] -> integers [..., V] (int64) that sum exactly to row_sum.

    Largest-remainder rounding: floor(p * M / sum(p)), then the missing units go to the
    entries with the largest fractional parts, ties to the lowest index. Rows must be
    finite, non-negative and have a positive sum.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise TraceError("quantize_rows: need at least one entry per row")
    if not np.all(np.isfinite(p)):
        raise TraceError("quantize_rows: probabilities contain NaN or infinity")
    if np.any(p < 0):
        raise TraceError("quantize_rows: probabilities contain negative entries")
    totals = p.sum(axis=-1, keepdims=True)
    if np.any(totals <= 0):
        raise TraceError("quantize_rows: a row has zero total probability")
    if not np.all(np.isfinite(totals)):
        raise TraceError("quantize_rows: a row's total overflows float64 (normalise it first)")
    scaled = p / totals * row_sum
    floors = np.floor(scaled)
    frac = scaled - floors
    q = floors.astype(np.int64)
    deficit = row_sum - q.sum(axis=-1)
    flat_q = q.reshape(-1, q.shape[-1])
    flat_frac = frac.reshape(-1, q.shape[-1])
    flat_deficit = deficit.reshape(-1)
    for row in range(flat_q.shape[0]):
        d = int(flat_deficit[row])
        if d > 0:
            # the d largest remainders, ties to the lowest index (what a stable sort on
            # -frac would pick, at partition cost: rows have up to 65536 entries)
            f = flat_frac[row]
            thr = np.partition(f, f.size - d)[f.size - d]
            above = np.flatnonzero(f > thr)
            ties = np.flatnonzero(f == thr)[: d - above.size]
            flat_q[row, above] += 1
            flat_q[row, ties] += 1
        elif d < 0:
            # float rounding overshot (only reachable for M near 2^52): take units back from
            # the smallest remainders among entries that have one to give, ties to the lowest index
            candidates = np.flatnonzero(flat_q[row] > 0)
            order = candidates[np.argsort(flat_frac[row][candidates], kind="stable")][: -d]
            flat_q[row, order] -= 1
    return flat_q.reshape(q.shape)


def _uniform(r, uniform_bits: int) -> int:
    """R as an exact Python int, refused (ValueError) unless 0 <= R < 2^U. Python ints make the
    U x W products exact at every width the trace format admits (U <= 64, W <= 31); the range
    check turns a uniform that was wrapped negative by a signed cast into an error instead of
    an always-passing accept test."""
    v = int(r)
    if v < 0 or v >> uniform_bits:
        raise ValueError(f"uniform {v} outside 0..2^{uniform_bits} - 1")
    return v


def accept(r: int, p_x: int, q_x: int, uniform_bits: int) -> bool:
    """Accept test: R * P[x] < Q[x] * 2^U (no division, no float; Python ints, so exact)."""
    return _uniform(r, uniform_bits) * int(p_x) < (int(q_x) << uniform_bits)


def sample_threshold(r: int, total: int, uniform_bits: int) -> int:
    """T = (R * S) >> U, the threshold that a sample's prefix sum must exceed (exact)."""
    return (_uniform(r, uniform_bits) * int(total)) >> uniform_bits


def sample_from_weights(weights: np.ndarray, r: int, uniform_bits: int, total: int | None = None) -> int:
    """Smallest k with w_0 + ... + w_k > T, T = (R * S) >> U, S = sum(w) unless given."""
    # W <= 31 and V < 2^32: entries and prefix sums fit int64 exactly; T < S fits too
    w = np.asarray(weights, dtype=np.int64)
    cumsum = np.cumsum(w)
    s = int(cumsum[-1]) if total is None else int(total)
    if s <= 0:
        raise ValueError("sample_from_weights: total weight must be positive")
    t = sample_threshold(r, s, uniform_bits)
    return int(np.searchsorted(cumsum, t, side="right"))


def residual_weights(q_row: np.ndarray, p_row: np.ndarray) -> np.ndarray:
    """r_i = max(0, Q[i] - P[i])."""
    return np.maximum(np.asarray(q_row, np.int64) - np.asarray(p_row, np.int64), 0)


def residual_sample(q_row: np.ndarray, p_row: np.ndarray, r: int, uniform_bits: int) -> int:
    """Token emitted at a rejection: sample from norm(max(0, Q - P))."""
    return sample_from_weights(residual_weights(q_row, p_row), r, uniform_bits)


def bonus_sample(q_row: np.ndarray, r: int, uniform_bits: int, row_sum: int) -> int:
    """Token emitted when every draft was accepted: sample from Q_{gamma+1} with S = M."""
    return sample_from_weights(q_row, r, uniform_bits, total=row_sum)


def greedy_argmax(row: np.ndarray) -> int:
    """argmax with ties to the lowest index (numpy's argmax already does exactly that)."""
    return int(np.argmax(np.asarray(row)))


# ---------------------------------------------------------------------------------------
# Float reference (the textbook algorithm, no quantisation) to compare the integer path to
# ---------------------------------------------------------------------------------------

def float_speculative_round(draft_tokens, draft_probs, target_probs, accept_u, sample_u,
                            greedy: bool = False) -> tuple[int, int]:
    """Speculative sampling in float64 (Leviathan et al., Chen et al.).

    draft_probs [gamma, V] and target_probs [gamma+1, V] are float distributions,
    accept_u [gamma] and sample_u are uniforms in [0, 1). Returns (accepted, token).
    """
    gamma = len(draft_tokens)
    q = np.asarray(target_probs, np.float64)
    p = np.asarray(draft_probs, np.float64)
    for t in range(gamma):
        x = int(draft_tokens[t])
        if greedy:
            ok = x == int(np.argmax(q[t]))
        else:
            ok = accept_u[t] * p[t, x] < q[t, x]
        if not ok:
            if greedy:
                return t, int(np.argmax(q[t]))
            res = np.maximum(q[t] - p[t], 0.0)
            return t, _float_inverse_cdf(res, sample_u)
    if greedy:
        return gamma, int(np.argmax(q[gamma]))
    return gamma, _float_inverse_cdf(q[gamma], sample_u)


def _float_inverse_cdf(weights: np.ndarray, u: float) -> int:
    c = np.cumsum(weights)
    k = int(np.searchsorted(c, u * c[-1], side="right"))
    return min(k, len(weights) - 1)
