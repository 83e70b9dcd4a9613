"""Normative integer numerics of the verifier (docs/NUMERICS.md).

Every level (FL, CL, RTL) and every producer of traces imports these functions; nothing
else in the project re-implements them. All arithmetic on probabilities is integer:
rows are unsigned W-bit integers summing exactly to M, uniforms are U-bit integers.

Bias bound of the samplers: a sample draws T = (R * S) >> U with R uniform on [0, 2^U)
and emits the smallest k whose prefix sum exceeds T. Outcome k owns r_k consecutive values
of T, i.e. the R in an interval of length 2^U * r_k / S, which holds that many integers
give or take one. Hence |Pr[k] - r_k / S| < 2^-U for every outcome (tighter than the
2^-(U - log2 S) often quoted), and the total-variation distance to r/S is below V * 2^-U / 2.
"""
from __future__ import annotations

import decimal
import functools
from typing import NamedTuple

import numpy as np

from hades import limits
from hades.errors import ConfigError, TraceError


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


# ---------------------------------------------------------------------------------------
# Weight rows with their own sums (NUMERICS.md section 12)
# ---------------------------------------------------------------------------------------
#
# A row is a vector of non-negative integer weights w with its sum Z > 0; its distribution
# is w / Z. The probability rows above are the case Z = M, and every function below then
# decides exactly as its v1 counterpart (accept, residual_sample, bonus_sample, and the
# draft sampler of section 3). Scalar products (the accept test, R * S) are Python ints,
# exact at any width; per-entry arrays are int64 where the bound of section 17 fits in 63
# bits and Python-int object arrays where it does not.

INT64_MAX = (1 << 63) - 1


def weighted_accept(r: int, p_x: int, zp: int, q_x: int, zq: int, uniform_bits: int) -> bool:
    """Accept test on weight rows: R * P[x] * ZQ < Q[x] * ZP * 2^U (Python ints, exact)."""
    return int(r) * int(p_x) * int(zq) < (int(q_x) * int(zp)) << uniform_bits


def weighted_residual_weights(q_row: np.ndarray, zq: int, p_row: np.ndarray, zp: int) -> np.ndarray:
    """r_i = max(0, Q[i] * ZP - P[i] * ZQ).

    int64 when Q[i] * ZP, P[i] * ZQ and sum(Q) * ZP (which bounds every prefix sum of r)
    are all below 2^63; otherwise a numpy object array of Python ints (exact at any width).
    """
    q = np.asarray(q_row, np.int64)
    p = np.asarray(p_row, np.int64)
    zq, zp = int(zq), int(zp)
    q_max = int(q.max()) if q.size else 0
    p_max = int(p.max()) if p.size else 0
    if max(q_max * zp, p_max * zq, int(q.sum()) * zp) <= INT64_MAX:
        return np.maximum(q * zp - p * zq, 0)
    wide = q.astype(object) * zp - p.astype(object) * zq
    return np.where(wide > 0, wide, 0).astype(object)


def sample_prefix(weights: np.ndarray, threshold: int) -> int:
    """The smallest k with w_0 + ... + w_k > T (int64 or Python-int object weights)."""
    w = np.asarray(weights)
    if w.dtype != object:
        w = w.astype(np.int64)
    cumsum = np.cumsum(w)
    t = int(threshold)
    if cumsum.size == 0 or int(cumsum[-1]) <= t:
        raise ValueError(f"sample_prefix: threshold {t} is not below the total weight")
    return int(np.searchsorted(cumsum, t, side="right"))


def weighted_sample(weights: np.ndarray, total: int, r: int, uniform_bits: int) -> int:
    """The integer sampler of section 6 with an explicit total S: T = (R * S) >> U, then the
    smallest k whose prefix sum exceeds T."""
    s = int(total)
    if s <= 0:
        raise ValueError("weighted_sample: the total weight must be positive")
    return sample_prefix(weights, sample_threshold(r, s, uniform_bits))


def weighted_residual_sample(q_row: np.ndarray, zq: int, p_row: np.ndarray, zp: int,
                             r: int, uniform_bits: int) -> int:
    """Token emitted at a rejection: sample r_i = max(0, Q[i] * ZP - P[i] * ZQ) with S = sum(r)."""
    res = weighted_residual_weights(q_row, zq, p_row, zp)
    s = int(res.sum())
    if s <= 0:
        raise ValueError("weighted_residual_sample: the residual is all zero (no test can have failed)")
    return weighted_sample(res, s, r, uniform_bits)


def weighted_bonus_sample(q_row: np.ndarray, zq: int, r: int, uniform_bits: int) -> int:
    """Token emitted when every draft was accepted: sample Q_{gamma+1} with S = ZQ_{gamma+1}."""
    return weighted_sample(q_row, zq, r, uniform_bits)


def draft_sample(p_row: np.ndarray, zp: int, d: int, uniform_bits: int) -> int:
    """The draft sampler: x = the smallest k with P[0] + ... + P[k] > (D * ZP) >> U."""
    return weighted_sample(p_row, zp, d, uniform_bits)


def onehot_draft_row(token: int, vocab_size: int) -> tuple[np.ndarray, int]:
    """A draft without a draft model (prompt lookup, n-gram): P one-hot at x, ZP = 1."""
    if not 0 <= int(token) < vocab_size:
        raise TraceError(f"one-hot draft token {int(token)} is outside 0..{vocab_size - 1}")
    row = np.zeros(vocab_size, np.int64)
    row[int(token)] = 1
    return row, 1


# ---------------------------------------------------------------------------------------
# From logits to weights (NUMERICS.md sections 13-16)
# ---------------------------------------------------------------------------------------

LOGIT_FRAC_BITS = 8                 # F: x = v * 2^F in fixed point
INV_TEMP_FRAC_BITS = 16             # K_F: k = 2^K_F * log2(e) / T
INV_TEMP_MAX = (1 << 24) - 1        # 1 <= k < 2^24
LOGIT_MIN, LOGIT_MAX = -(1 << 23), (1 << 23) - 1   # the clamp of x (24 bits, signed)
FRACTION_BITS = 16                  # top_p and min_p are in units of 2^-16
FRACTION_ONE = 1 << FRACTION_BITS   # top_p = FRACTION_ONE is off
TOP_K_MAX = limits.TOP_K.hi          # top_k = 0..2^24 (0 is off; top_k >= V keeps every entry)
WEIGHT_BITS_RANGE = (1, 31)         # W of the logit path in this module (hardware: 2..24)
BF16_NEG_INF = 0xFF80               # the mask
BF16_POS_INF = 0x7F80
BF16_QUIET_NAN = 0x7FC0


class SamplingParams(NamedTuple):
    """(k, top_k, top_p, min_p) of one row side, as the v2 trace stores them (int64 [4]).

    k: inverse temperature (`inverse_temperature(T)`), 1..2^24-1; top_k: 0..2^24, 0 = off;
    top_p: 1..2^16 in units of 2^-16, 2^16 = off; min_p: 0..2^16 in units of 2^-16, 0 = off
    (NUMERICS.md section 15).
    """
    k: int
    top_k: int = 0
    top_p: int = FRACTION_ONE
    min_p: int = 0

    @property
    def rank_filters(self) -> bool:
        """True when top-k or top-p is on (the filters that need the rank order of a row)."""
        return self.top_k != 0 or self.top_p != FRACTION_ONE


def fraction_units(p: float) -> int:
    """A fraction in [0, 1] -> units of 2^-16 (round half to even; p * 2^16 is exact in float64)."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"a top-p / min-p fraction must lie in [0, 1], got {p}")
    return int(np.rint(p * FRACTION_ONE))


def top_p_units(p: float) -> int:
    """top-p as a fraction in (0, 1] -> units of 2^-16 (`fraction_units`); refused (ConfigError)
    unless it is at least one unit (p > 2^-17; 2^-17 itself rounds half to even, to 0)."""
    v = fraction_units(p)
    if v == 0:
        below = f" ({float(p)!r} rounds to 0 units of 2^-16)" if float(p) > 0 else ""
        raise ConfigError(f"top_p must be > 0, got {float(p)!r}{below}")
    return v


def sampling_params(temperature: float, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> SamplingParams:
    """The (k, top_k, top_p, min_p) of a request's settings, as every producer records them:
    k = inverse_temperature(T), top_k as given (0..2^24, 0 = off), top_p and min_p fractions
    in units of 2^-16 (`top_p_units`, `fraction_units`). ConfigError on a bad setting."""
    sp = SamplingParams(inverse_temperature(temperature), limits.TOP_K.check(top_k),
                        top_p_units(limits.TOP_P.check(top_p)), fraction_units(min_p))
    return check_sampling_params(sp)


def inverse_temperature(temperature: float) -> int:
    """k = round_half_even(2^16 * log2(e) / T) = round_half_even(2^16 / (T * ln 2)).

    T is taken as the exact value of its float64. The quotient is computed in decimal at 60
    significant digits (ln 2 and the division are correctly rounded there); it is irrational,
    so it is never a tie, and it is checked to lie more than 1e-30 from one. T = 1 gives
    94548. A T whose k falls outside 1..2^24-1 (T outside about 0.005636..189097) is
    refused with ConfigError; so are T <= 0, NaN and infinity.
    """
    t = float(temperature)
    if not (np.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be finite and > 0, got {temperature}")
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        exact = decimal.Decimal(1 << INV_TEMP_FRAC_BITS) / (decimal.Decimal(t) * decimal.Decimal(2).ln())
        k = int(exact.to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
        if 1 <= k <= INV_TEMP_MAX:
            assert abs(exact - k) < decimal.Decimal("0.5") - decimal.Decimal("1e-30"), "tie in k"
    if not 1 <= k <= INV_TEMP_MAX:
        ln2 = float(np.log(2.0))
        t_lo = (1 << INV_TEMP_FRAC_BITS) / (ln2 * (INV_TEMP_MAX + 0.5))
        t_hi = (1 << INV_TEMP_FRAC_BITS) / (ln2 * 0.5)
        raise ConfigError(f"temperature {t!r} gives inverse temperature k = {k}, outside "
                          f"1..2^24-1 (T must lie in about {t_lo:.6g}..{t_hi:.6g})")
    return k


def check_sampling_params(params, what: str = "sampling parameters") -> SamplingParams:
    """Validate one (k, top_k, top_p, min_p) (TraceError naming `what` and the field): k in
    1..2^24-1, top_k in 0..2^24, top_p in 1..2^16 (> 0), min_p in 0..2^16."""
    try:
        vals = [int(v) for v in params]
    except (TypeError, ValueError):
        raise TraceError(f"{what}: expected 4 integers (k, top_k, top_p, min_p), got {params!r}") from None
    if len(vals) != 4 or any(v != p for v, p in zip(vals, params)):
        raise TraceError(f"{what}: expected 4 integers (k, top_k, top_p, min_p), got {params!r}")
    sp = SamplingParams(*vals)
    if not 1 <= sp.k <= INV_TEMP_MAX:
        raise TraceError(f"{what}: inverse temperature k = {sp.k} is outside 1..2^24-1")
    if sp.top_k < 0:
        raise TraceError(f"{what}: top_k = {sp.top_k} is negative (0 is off)")
    if sp.top_k > TOP_K_MAX:
        raise TraceError(f"{what}: top_k = {sp.top_k} is outside 0..2^24 (0 is off)")
    if sp.top_p <= 0:
        raise TraceError(f"{what}: top_p = {sp.top_p}: top_p must be > 0 (units of 2^-16, 1..65536; 65536 is off)")
    if sp.top_p > FRACTION_ONE:
        raise TraceError(f"{what}: top_p = {sp.top_p} is outside 1..65536 (units of 2^-16; 65536 is off)")
    if not 0 <= sp.min_p <= FRACTION_ONE:
        raise TraceError(f"{what}: min_p = {sp.min_p} is outside 0..65536 (units of 2^-16; 0 is off)")
    return sp


def bad_sampling_params(params: np.ndarray) -> np.ndarray:
    """The rows of an int64 array [..., 4] that check_sampling_params refuses (bool [...],
    vectorised; the message of a bad row comes from check_sampling_params)."""
    p = np.asarray(params, np.int64)
    k, top_k, top_p, min_p = (p[..., i] for i in range(4))
    return ((k < 1) | (k > INV_TEMP_MAX) | (top_k < 0) | (top_k > TOP_K_MAX) | (top_p < 1) | (top_p > FRACTION_ONE)
            | (min_p < 0) | (min_p > FRACTION_ONE))


def sampling_param_rows(params, lead_shape: tuple[int, ...], what: str = "sampling parameters") -> np.ndarray:
    """(k, top_k, top_p, min_p) per row as int64 [*lead_shape, 4], checked: `params` is one
    tuple for every row, or an integer array [*lead_shape, 4] with one tuple per row (a bad
    row raises TraceError naming `what` and the row)."""
    a = np.asarray(params)
    lead_shape = tuple(lead_shape)
    if a.ndim <= 1:
        return np.broadcast_to(np.array(check_sampling_params(params, what), np.int64), lead_shape + (4,))
    if a.shape != lead_shape + (4,):
        raise TraceError(f"{what}: expected one (k, top_k, top_p, min_p) per row, shape {lead_shape + (4,)}, "
                         f"got {a.shape}")
    if a.dtype.kind not in "iu":
        raise TraceError(f"{what}: expected integers (k, top_k, top_p, min_p), got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and int(a.max()) > INT64_MAX:
        bad = (a > INT64_MAX).any(axis=-1)
    else:
        a = a.astype(np.int64)
        bad = bad_sampling_params(a)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        check_sampling_params(a[i].tolist(), f"{what} (row {i[0] if len(i) == 1 else i})")
        raise AssertionError("bad_sampling_params and check_sampling_params disagree")   # pragma: no cover
    return a


def _index_text(bad: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return str(idx[0]) if len(idx) == 1 else str(idx)


def decode_bf16(bits: np.ndarray, what: str = "logit row") -> tuple[np.ndarray, np.ndarray]:
    """bf16 bit patterns [..., V] -> (x int64 [..., V], masked bool [..., V]).

    -inf (0xFF80) marks a masked entry (x = 0 there; its weight will be 0); NaN or +inf make
    the row invalid (TraceError naming the entry). A finite v becomes
    x = clamp(round_half_even(v * 2^8), -2^23, 2^23 - 1): bf16 -> float32 -> float64 and
    v * 2^8 are exact, np.rint rounds half to even, the clamp acts before the integer cast.
    """
    b = np.asarray(bits)
    if b.dtype != np.uint16:
        if b.dtype.kind not in "iu" or (b.size and (int(b.min()) < 0 or int(b.max()) > 0xFFFF)):
            raise TraceError(f"{what}: logits must be bf16 bit patterns (uint16), got {b.dtype}")
        b = b.astype(np.uint16)
    exp_ones = (b & 0x7F80) == 0x7F80
    bad = exp_ones & (b != BF16_NEG_INF)
    if bad.any():
        i = _index_text(bad)
        code = int(b[tuple(np.argwhere(bad)[0])])
        kind = "+inf" if code == BF16_POS_INF else "NaN"
        raise TraceError(f"{what}: entry {i} is {kind} (bf16 0x{code:04x}); NaN and +inf make a logit row invalid")
    masked = b == BF16_NEG_INF
    v = (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    v[masked] = 0.0
    x = np.clip(np.rint(v * (1 << LOGIT_FRAC_BITS)), LOGIT_MIN, LOGIT_MAX).astype(np.int64)
    return x, masked


def encode_bf16(values: np.ndarray) -> np.ndarray:
    """float -> bf16 bit patterns (uint16): float32 first, then round to nearest even on the
    top 16 bits (what torch's .to(torch.bfloat16) does); -inf -> 0xFF80, NaN -> 0x7FC0.
    For producers and tests; the block only decodes."""
    f = np.asarray(values, np.float64).astype(np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(f), np.uint16(BF16_QUIET_NAN), rounded).astype(np.uint16)


def scale_logits(x: np.ndarray, k) -> np.ndarray:
    """Temperature: y = floor(x * k / 2^16) (an arithmetic shift; |x * k| < 2^47 in int64)."""
    return (np.asarray(x, np.int64) * np.asarray(k, np.int64)) >> INV_TEMP_FRAC_BITS


def _check_weight_bits(weight_bits: int) -> int:
    lo, hi = WEIGHT_BITS_RANGE
    if not lo <= int(weight_bits) <= hi:
        raise ConfigError(f"weight bits W must be in {lo}..{hi}, got {weight_bits}")
    return int(weight_bits)


@functools.lru_cache(maxsize=None)
def _exp2_table(weight_bits: int) -> np.ndarray:
    c = (1 << weight_bits) - 1
    steps = 1 << LOGIT_FRAC_BITS
    big = (2 * c) ** steps
    table = np.empty(steps, np.int64)
    for f in range(steps):
        # n = round(c * 2^(-f/256)) iff (2n - 1)^256 * 2^f < (2c)^256 < (2n + 1)^256 * 2^f
        # (exact integers; c * 2^(-f/256) is irrational for 0 < f < 256, so never a tie)
        n = int(round(c * 2.0 ** (-f / steps)))
        while (2 * n + 1) ** steps << f <= big:
            n += 1
        while n > 0 and (2 * n - 1) ** steps << f >= big:
            n -= 1
        table[f] = n
    table.setflags(write=False)
    return table


def exp2_table(weight_bits: int) -> np.ndarray:
    """E[f] = round_half_even((2^W - 1) * 2^(-f / 2^8)) for f = 0..255 (int64, read-only).

    Computed exactly: a float64 guess is corrected until the integer inequalities
    (2n - 1)^256 * 2^f < (2^(W+1) - 2)^256 < (2n + 1)^256 * 2^f hold, which say that n is
    the nearest integer (no ties: the value is irrational for f > 0, an integer for f = 0).
    E[0] = 2^W - 1, and E is non-increasing.
    """
    return _exp2_table(_check_weight_bits(weight_bits))


def weights_from_scaled(y: np.ndarray, masked: np.ndarray, weight_bits: int,
                        what: str = "logit row") -> np.ndarray:
    """y [..., V] (int64, temperature applied) -> weights w [..., V] (int64, before filters).

    m = max of y over the unmasked entries (TraceError if a row has none), d = m - y,
    e = d >> 8, f = d & 255, w = E[f] >> e if e < W else 0 (E[f] < 2^W, so E[f] >> min(e, W)
    is the same), masked entries 0. The largest weight of a row is E[0] = 2^W - 1.
    """
    W = _check_weight_bits(weight_bits)
    y = np.asarray(y, np.int64)
    masked = np.asarray(masked, bool)
    live = ~masked
    empty = ~live.any(axis=-1)
    if np.any(empty):
        where = "" if empty.ndim == 0 else f" (row {_index_text(empty)})"
        raise TraceError(f"{what}: every entry is masked (-inf){where}; such a row is invalid")
    m = np.where(live, y, np.iinfo(np.int64).min).max(axis=-1, keepdims=True)
    d = np.where(live, m - y, 0)
    e = d >> LOGIT_FRAC_BITS
    f = d & ((1 << LOGIT_FRAC_BITS) - 1)
    w = exp2_table(W)[f] >> np.minimum(e, W)
    return np.where(live, w, 0)


def rank_order(weights: np.ndarray) -> np.ndarray:
    """The rank order of each row [..., V]: token ids by weight descending, ties to the lower
    token id first (int64 [..., V]). A stable sort of the negated weights; rows whose weights
    fit 16 bits sort as uint16 keys (radix sort, the same order)."""
    w = np.asarray(weights, np.int64)
    if w.size and int(w.min()) >= 0 and int(w.max()) < (1 << 16):
        key = ((1 << 16) - 1 - w).astype(np.uint16)
    else:
        key = -w
    return np.argsort(key, axis=-1, kind="stable").astype(np.int64)


def rank_prefix_lengths(sorted_cumsum: np.ndarray, top_k, top_p) -> np.ndarray:
    """How many entries of the rank order top-k then top-p keep (int64 [...]).

    sorted_cumsum [..., V] holds the prefix sums of each row's weights in rank order; top_k and
    top_p [...] are the rows' parameters. n_k = top_k if 0 < top_k < V, else V; Z' = the sum
    of the first n_k; the kept prefix is the shortest one whose sum s satisfies
    s * 2^16 >= top_p * Z', i.e. s >= t = ceil(top_p * Z' / 2^16), computed exactly in int64
    as top_p * (Z' >> 16) + ceil(top_p * (Z' mod 2^16) / 2^16). Since 1 <= top_p <= 2^16,
    t <= Z' (the prefix ends within the first n_k) and, for Z' > 0, t >= 1."""
    cs = np.asarray(sorted_cumsum, np.int64)
    V = cs.shape[-1]
    top_k = np.asarray(top_k, np.int64)
    top_p = np.asarray(top_p, np.int64)
    n_k = np.where((top_k > 0) & (top_k < V), top_k, V)
    z_k = np.take_along_axis(cs, (n_k - 1)[..., None], -1)[..., 0]
    t = top_p * (z_k >> FRACTION_BITS) + ((top_p * (z_k & (FRACTION_ONE - 1)) + FRACTION_ONE - 1) >> FRACTION_BITS)
    return (cs < t[..., None]).sum(axis=-1) + 1


def apply_filters(weights: np.ndarray, params) -> np.ndarray:
    """The sampling filters of NUMERICS.md section 15 on W-bit weights [..., V] (W <= 31), in
    this order: top-k, top-p on the sum left after top-k, min-p. `params` is one (k, top_k,
    top_p, min_p) for every row or one per row ([..., 4]); k is not used here.

    top-k and top-p keep a prefix of the rank order (`rank_order`: weight descending, ties to
    the lower token id): the first n entries, n from `rank_prefix_lengths` (the entry whose
    prefix sum crosses top_p * Z' is kept). Only rows with top-k or top-p on are ranked.
    min-p then keeps w_i with w_i * 2^16 >= min_p * w_max (w_max: the row's largest weight,
    which every filter keeps). Returns int64 weights, the filtered entries set to 0; their sum
    is the row's Z."""
    w = np.asarray(weights, np.int64)
    V = w.shape[-1]
    p = sampling_param_rows(params, w.shape[:-1])
    top_k, top_p, min_p = p[..., 1], p[..., 2], p[..., 3]
    ranked = ((top_k > 0) & (top_k < V)) | (top_p < FRACTION_ONE)
    if ranked.any():
        flat = w.reshape(-1, V).copy()
        rows = np.flatnonzero(ranked.reshape(-1))
        sub = flat[rows]
        order = rank_order(sub)
        cs = np.cumsum(np.take_along_axis(sub, order, -1), axis=-1)
        n = rank_prefix_lengths(cs, top_k.reshape(-1)[rows], top_p.reshape(-1)[rows])
        keep = np.zeros(sub.shape, bool)
        np.put_along_axis(keep, order, np.arange(V) < n[:, None], -1)
        flat[rows] = np.where(keep, sub, 0)
        w = flat.reshape(w.shape)
    if (min_p > 0).any():
        w_max = w.max(axis=-1, keepdims=True)
        w = np.where(w << FRACTION_BITS >= min_p[..., None] * w_max, w, 0)
    return w


FILTER_RADIX_BITS = 4     # b: the logit block's radix select takes b weight bits per pass (2^b bins)


class RadixCut(NamedTuple):
    """The kept prefix of one row as the block finds it: every entry with w > tau, and the c
    lowest token ids among the entries with w == tau (NUMERICS.md section 15)."""
    tau: int
    c: int


def radix_level_select(weights: np.ndarray, target: int, by_sum: bool, weight_bits: int,
                       radix_bits: int = FILTER_RADIX_BITS) -> tuple[int, int, int]:
    """The largest weight value v with C(>= v) >= target (counts) or S(>= v) >= target (sums)
    over one row, found without sorting, digit by digit as the block's passes do: ceil(W / b)
    passes, each binning the entries whose top bits equal the prefix found so far by their
    next b bits ((count, sum) per bin), then scanning the 2^b bins from the top for the first
    digit d with above + sum_{j >= d} bin_j >= target, the bins above d joining `above`.
    Requires 1 <= target <= C(>= 0) (S(>= 0)). Returns (v, C(> v), S(> v))."""
    w = np.asarray(weights, np.int64)
    b, nb = int(radix_bits), 1 << int(radix_bits)
    levels = -(-int(weight_bits) // b)
    prefix = above_c = above_s = 0
    for level in range(levels):
        shift = (levels - 1 - level) * b
        match = (w >> (shift + b)) == (prefix >> (shift + b))
        digit = (w >> shift) & (nb - 1)
        cnt = np.bincount(digit[match], minlength=nb)
        sm = np.array([int(w[match & (digit == j)].sum()) for j in range(nb)], dtype=object)
        run_c = run_s = 0
        for d in range(nb - 1, -1, -1):
            reach = (above_s + run_s + int(sm[d])) if by_sum else (above_c + run_c + int(cnt[d]))
            if reach >= target:
                break
            run_c, run_s = run_c + int(cnt[d]), run_s + int(sm[d])
        else:
            raise ValueError(f"radix_level_select: target {target} exceeds the row's total")
        prefix |= d << shift
        above_c, above_s = above_c + run_c, above_s + run_s
    return prefix, above_c, above_s


def top_p_target(top_p: int, z: int) -> int:
    """t = ceil(top_p * Z' / 2^16), exactly (Python ints)."""
    return (int(top_p) * int(z) + FRACTION_ONE - 1) >> FRACTION_BITS


def radix_select(weights: np.ndarray, top_k: int, top_p: int, weight_bits: int,
                 radix_bits: int = FILTER_RADIX_BITS) -> RadixCut:
    """Section 15's top-k then top-p on one row of W-bit weights without a sort, as the block
    computes it (section 19): with n_k = top_k if 0 < top_k < V, the top-k cut is
    tau_k = the largest v with C(>= v) >= n_k and c_k = n_k - C(> tau_k), and
    Z' = S(> tau_k) + c_k tau_k (else Z' = the row's total); with top_p < 2^16 and
    t = ceil(top_p Z' / 2^16), the top-p cut is tau_p = the largest v with S(>= v) >= t over the
    whole row and c_p = ceil((t - S(> tau_p)) / tau_p) (it lies within the top-k prefix since
    t <= Z'). A row with neither filter on gives (0, V): every entry kept."""
    w = np.asarray(weights, np.int64)
    V = w.shape[-1]
    cut = RadixCut(0, V)
    z = int(w.sum())
    if 0 < int(top_k) < V:
        tau, above_c, above_s = radix_level_select(w, int(top_k), False, weight_bits, radix_bits)
        c = int(top_k) - above_c
        cut, z = RadixCut(tau, c), above_s + c * tau
    if int(top_p) < FRACTION_ONE:
        t = top_p_target(top_p, z)
        tau, _, above_s = radix_level_select(w, t, True, weight_bits, radix_bits)
        cut = RadixCut(tau, (t - above_s - 1) // tau + 1)
    return cut


def radix_keep(weights: np.ndarray, cut: RadixCut) -> np.ndarray:
    """The kept entries of one row under a RadixCut: w > tau, or w == tau and fewer than c
    entries equal to tau at lower ids (bool [V])."""
    w = np.asarray(weights, np.int64)
    eq = w == cut.tau
    before = np.cumsum(eq) - eq
    return (w > cut.tau) | (eq & (before < cut.c))


def logit_weights(bits: np.ndarray, params, weight_bits: int, what: str = "logit row"):
    """bf16 logit rows [..., V] and (k, top_k, top_p, min_p) -> (w int64 [..., V], Z).

    decode_bf16, scale_logits with k, weights_from_scaled, apply_filters, Z = sum(w). `params`
    is one tuple for every row or one per row ([..., 4], `sampling_param_rows`).
    Z is an int for one row and an int64 array for several (Z < V * 2^W < 2^55).
    """
    b = np.asarray(bits)
    p = sampling_param_rows(params, b.shape[:-1], what)
    x, masked = decode_bf16(b, what)
    w = apply_filters(weights_from_scaled(scale_logits(x, p[..., :1]), masked, weight_bits, what), p)
    z = w.sum(axis=-1)
    return w, (int(z) if w.ndim == 1 else z)


def logit_argmax(bits: np.ndarray, what: str = "logit row"):
    """Greedy on logit rows: argmax over the converted logits x (before temperature), masked
    entries excluded, ties to the lowest index. An int for one row, an array for several."""
    x, masked = decode_bf16(bits, what)
    live = ~masked
    empty = ~live.any(axis=-1)
    if np.any(empty):
        where = "" if empty.ndim == 0 else f" (row {_index_text(empty)})"
        raise TraceError(f"{what}: every entry is masked (-inf){where}; such a row is invalid")
    a = np.argmax(np.where(live, x, np.iinfo(np.int64).min), axis=-1)
    return int(a) if x.ndim == 1 else a


def logit_weights_tv_distance(bits: np.ndarray, temperature: float, weight_bits: int = 16,
                              min_p: int = 0) -> np.ndarray:
    """Measurement, not numerics: total-variation distance between w / Z (the integer path
    with k = inverse_temperature(T)) and the float64 softmax of v / T of the same bf16 rows
    (masked entries 0; with min_p, the float rows keep p_i >= min_p * 2^-16 * p_max and are
    renormalised). One value per row [...]."""
    b = np.asarray(bits, np.uint16)
    w, z = logit_weights(b, (inverse_temperature(temperature), 0, FRACTION_ONE, int(min_p)), weight_bits)
    v = (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    s = v / float(temperature)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    if min_p:
        p = np.where(p >= min_p / FRACTION_ONE * p.max(axis=-1, keepdims=True), p, 0.0)
    p /= p.sum(axis=-1, keepdims=True)
    q = w / np.asarray(z, np.float64)[..., None]
    return 0.5 * np.abs(q - p).sum(axis=-1)
