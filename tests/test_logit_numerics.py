"""Numerics of weight rows and logit rows (docs/NUMERICS.md sections 12-18) and the FL golden
round on logit rows (verify_logit_round).

- bf16 decode (every one of the 65536 bit patterns against Python fractions), the mask,
  refusals, the clamp;
- inverse temperature: T = 1, the limits of T, refusals;
- the exp2 table against an independent decimal computation;
- weights and min-p against a pure Python-int reference (masks, ties, extreme k and x);
- the filters top-k, top-p and min-p against a reference that sorts (ties at the top-k
  threshold and at the top-p crossing, the order of the filters, their edge values, one
  parameter tuple per row);
- weight rows with Z = M decide bit for bit as the v1 functions (random v1 rounds);
- one-hot drafts, greedy on logits, refusals of a round (wrong draft sample, bad rows);
- exact widths at the extremes (V = 65536, W = 16 / 24, U = 32 / 64) against Python ints;
- losslessness: the first emitted token follows the target's filtered w / Z (chi-square),
  and samplers that ignore ZP/ZQ or min-p fail the same test;
- the distance of w / Z from the float softmax on LLM-like rows (a loose bound).
"""
from __future__ import annotations

import decimal
import math
import re
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_numerics import chi2_pvalue   # the suite's chi-square helper (tests/ is on sys.path)

from hades import numerics
from hades.errors import ConfigError, TraceError
from hades.fl.verifier import (draft_tokens_from_logits, logit_weight_rows, verify_logit_round, verify_round,
                               verify_weight_round)
from hades.round import LogitRound, Round

W = 16
M = numerics.default_row_sum(W)
U = 32
OFF = (0, numerics.FRACTION_ONE, 0)   # top_k, top_p, min_p all off
K1 = 94548                             # inverse_temperature(1.0)


# ---------------------------------------------------------------------------------------
# an independent reference in Python ints and fractions
# ---------------------------------------------------------------------------------------

def ref_decode(b: int):
    """bf16 bits -> x (Python int), or None when masked."""
    if b == 0xFF80:
        return None
    assert (b & 0x7F80) != 0x7F80, "NaN / +inf have no value"
    v = struct.unpack("<f", struct.pack("<I", b << 16))[0]
    x = round(Fraction(v) * 256)                          # Fraction rounds half to even
    return max(-(1 << 23), min((1 << 23) - 1, x))


def ref_table(weight_bits: int) -> list[int]:
    """E[f] in decimal at 80 digits (power and quantize, not the implementation's integers)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        c = decimal.Decimal((1 << weight_bits) - 1)
        out = []
        for f in range(256):
            v = c * decimal.Decimal(2) ** (decimal.Decimal(-f) / 256)
            frac = v - int(v)
            assert abs(frac - decimal.Decimal("0.5")) > decimal.Decimal("1e-40")
            out.append(int(v.quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_EVEN)))
    return out


_REF_TABLES: dict[int, list[int]] = {}


def ref_filters(w, top_k: int, top_p: int, min_p: int) -> list[int]:
    """NUMERICS.md section 15 by sorting: the rank order (weight descending, ties to the lower
    id), the first top_k entries, the shortest prefix of those whose sum s has
    s * 2^16 >= top_p * Z', then min-p against the largest weight."""
    w = [int(v) for v in w]
    order = sorted(range(len(w)), key=lambda i: (-w[i], i))
    if top_k:
        order = order[:top_k]
    z_k = sum(w[i] for i in order)
    kept, s = [], 0
    for i in order:
        kept.append(i)
        s += w[i]
        if s * 65536 >= top_p * z_k:
            break
    w_max = max(w)
    out = [0] * len(w)
    for i in kept:
        if w[i] * 65536 >= min_p * w_max:
            out[i] = w[i]
    return out


def ref_weights(bits, k: int, min_p: int, weight_bits: int, top_k: int = 0,
                top_p: int = 65536) -> tuple[list[int], int]:
    if weight_bits not in _REF_TABLES:
        _REF_TABLES[weight_bits] = ref_table(weight_bits)
    E = _REF_TABLES[weight_bits]
    ys = [None if x is None else (x * k) >> 16 for x in (ref_decode(int(b)) for b in bits)]
    m = max(y for y in ys if y is not None)
    w = []
    for y in ys:
        if y is None:
            w.append(0)
            continue
        d = m - y
        e, f = d >> 8, d % 256
        w.append(E[f] >> e if e < weight_bits else 0)
    w = ref_filters(w, top_k, top_p, min_p)
    return w, sum(w)


def ref_sample(w, total: int, r: int, u_bits: int) -> int:
    t = (r * total) >> u_bits
    c = 0
    for i, wi in enumerate(w):
        c += int(wi)
        if c > t:
            return i
    raise AssertionError("no prefix above the threshold")


def ref_round(drafts, P, ZP, Q, ZQ, Ra, Rs, u_bits):
    for t, x in enumerate(drafts):
        if not int(Ra[t]) * int(P[t][x]) * ZQ[t] < int(Q[t][x]) * ZP[t] * (1 << u_bits):
            r = [max(0, int(q) * ZP[t] - int(p) * ZQ[t]) for q, p in zip(Q[t], P[t])]
            return t, ref_sample(r, sum(r), int(Rs), u_bits)
    g = len(drafts)
    return g, ref_sample(Q[g], ZQ[g], int(Rs), u_bits)


def random_logit_rows(rng, shape, mask_frac=0.1, tie_frac=0.1) -> np.ndarray:
    """bf16 rows at mixed scales, with masked entries, exact duplicates and raw bit patterns."""
    V = shape[-1]
    scale = rng.choice([0.01, 0.5, 3.0, 30.0, 3e4], size=shape[:-1] + (1,))
    vals = rng.standard_normal(shape) * scale
    b = numerics.encode_bf16(vals)
    raw = rng.integers(0, 1 << 16, size=shape).astype(np.uint16)
    raw_ok = (raw & 0x7F80) != 0x7F80
    b = np.where((rng.random(shape) < 0.05) & raw_ok, raw, b)
    dup = rng.random(shape) < tie_frac
    b = np.where(dup, np.take_along_axis(b, rng.integers(0, V, size=shape), -1), b)
    b = np.where(rng.random(shape) < mask_frac, np.uint16(0xFF80), b)
    flat = b.reshape(-1, V)
    for row in flat:                                  # keep one unmasked entry per row
        if (row == 0xFF80).all():
            row[int(rng.integers(V))] = numerics.encode_bf16(1.0)
    return flat.reshape(shape)


# ---------------------------------------------------------------------------------------
# bf16 decode
# ---------------------------------------------------------------------------------------

def test_bf16_decode_every_bit_pattern_matches_fractions():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    finite = ((bits & 0x7F80) != 0x7F80) | (bits == 0xFF80)
    x, masked = numerics.decode_bf16(bits[finite])
    assert x.dtype == np.int64 and masked.sum() == 1
    want = [ref_decode(int(b)) for b in bits[finite]]
    assert [None if m else int(v) for v, m in zip(x, masked)] == want


@pytest.mark.parametrize("value, bits_hex, x", [
    (0.0, 0x0000, 0), (-0.0, 0x8000, 0),                      # signed zeros
    (None, 0x0001, 0), (None, 0x8001, 0), (None, 0x007F, 0),  # subnormals
    (None, 0x0080, 0),                                        # smallest normal, 2^-126
    (1.0, 0x3F80, 256), (-1.0, 0xBF80, -256), (0.5, 0x3F00, 128),
    (2.0 ** -9, 0x3B00, 0),                                   # v * 256 = 0.5 -> 0 (half even)
    (3 * 2.0 ** -9, 0x3BC0, 2),                               # 1.5 -> 2
    (5 * 2.0 ** -9, 0x3C20, 2), (-5 * 2.0 ** -9, 0xBC20, -2),  # 2.5 -> 2, -2.5 -> -2
    (32640.0, 0x46FF, 32640 * 256),                           # largest bf16 below 2^15: no clamp
    (32768.0, 0x4700, (1 << 23) - 1),                         # 2^15 * 2^8 = 2^23: clamped
    (-32768.0, 0xC700, -(1 << 23)),                           # -2^23 fits exactly
    (None, 0x7F7F, (1 << 23) - 1), (None, 0xFF7F, -(1 << 23)),  # max finite, clamped
])
def test_bf16_decode_edge_cases(value, bits_hex, x):
    if value is not None:
        assert int(numerics.encode_bf16(value)) == bits_hex
    got, masked = numerics.decode_bf16(np.array([bits_hex], np.uint16))
    assert got.tolist() == [x] and not masked[0]


def test_bf16_minus_inf_is_a_mask():
    b = numerics.encode_bf16([1.0, -np.inf, 2.0])
    assert b[1] == numerics.BF16_NEG_INF
    x, masked = numerics.decode_bf16(b)
    assert masked.tolist() == [False, True, False]
    w, z = numerics.logit_weights(b, (K1,) + OFF, W)
    assert w[1] == 0 and z == w.sum() and w.max() == M


@pytest.mark.parametrize("bad, kind", [(0x7FC0, "NaN"), (0xFFC0, "NaN"), (0x7F81, "NaN"), (0xFF81, "NaN"),
                                       (0x7FFF, "NaN"), (0x7F80, "+inf")])
def test_bf16_nan_and_plus_inf_make_the_row_invalid(bad, kind):
    row = np.array([0x3F80, 0x4000, bad, 0x3F80], np.uint16)
    with pytest.raises(TraceError, match=rf"target row 3: entry 2 is {re.escape(kind)} \(bf16 0x{bad:04x}\)"):
        numerics.decode_bf16(row, "target row 3")
    with pytest.raises(TraceError, match=r"entry \(1, 2\)"):
        numerics.logit_weights(np.stack([row * 0 + 0x3F80, row]), (K1,) + OFF, W)


def test_bf16_decode_dtypes():
    x, _ = numerics.decode_bf16(np.array([0x3F80, 0xFF80], np.int64))   # any integer array in range
    assert x.tolist() == [256, 0]
    for bad in (np.array([1.0]), np.array([-1]), np.array([1 << 16])):
        with pytest.raises(TraceError, match="bf16 bit patterns"):
            numerics.decode_bf16(bad)


def test_encode_bf16_round_trips_and_rounds_to_nearest_even():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    finite = (bits & 0x7F80) != 0x7F80
    vals = (bits[finite].astype(np.uint32) << 16).view(np.float32)
    assert np.array_equal(numerics.encode_bf16(vals), bits[finite])
    one_ulp = 2.0 ** -7
    assert int(numerics.encode_bf16(1 + one_ulp / 2)) == 0x3F80            # tie -> even (1.0)
    assert int(numerics.encode_bf16(1 + 3 * one_ulp / 2)) == 0x3F82        # tie -> even (1 + 2 ulp)
    assert int(numerics.encode_bf16(np.nan)) == numerics.BF16_QUIET_NAN
    assert int(numerics.encode_bf16(-np.inf)) == 0xFF80 and int(numerics.encode_bf16(np.inf)) == 0x7F80


# ---------------------------------------------------------------------------------------
# inverse temperature
# ---------------------------------------------------------------------------------------

def test_inverse_temperature_at_one():
    assert numerics.inverse_temperature(1.0) == K1 == round(65536 * math.log2(math.e))


@pytest.mark.parametrize("T", [0.006, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 10.0, 100.0, 1e4, 1e5])
def test_inverse_temperature_matches_float_away_from_ties(T):
    approx = 65536 * math.log2(math.e) / T
    assert abs(approx - math.floor(approx) - 0.5) > 1e-6
    assert numerics.inverse_temperature(T) == round(approx)


def test_inverse_temperature_limits():
    ln2 = math.log(2)
    t_lo = 65536 / (ln2 * ((1 << 24) - 0.5))        # below: k rounds to 2^24
    t_hi = 65536 / (ln2 * 0.5)                      # above: k rounds to 0
    assert numerics.inverse_temperature(t_lo * (1 + 1e-9)) == (1 << 24) - 1
    assert numerics.inverse_temperature(t_hi * (1 - 1e-9)) == 1
    for T in (t_lo * (1 - 1e-9), t_hi * (1 + 1e-9), 0.0, -1.0, float("nan"), float("inf"), 1e-300):
        with pytest.raises(ConfigError, match="temperature"):
            numerics.inverse_temperature(T)
    ts = np.geomspace(t_lo * 1.0001, t_hi * 0.9999, 200)
    ks = [numerics.inverse_temperature(t) for t in ts]
    assert all(a >= b for a, b in zip(ks, ks[1:]))


# ---------------------------------------------------------------------------------------
# the exp2 table
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("wb", [1, 2, 8, 16, 24, 31])
def test_exp2_table_matches_an_independent_decimal_computation(wb):
    E = numerics.exp2_table(wb)
    assert E.dtype == np.int64 and E.shape == (256,) and not E.flags.writeable
    assert E.tolist() == ref_table(wb)
    assert E[0] == (1 << wb) - 1
    assert all(a >= b for a, b in zip(E[:-1], E[1:]))


def test_exp2_table_spot_values():
    E = numerics.exp2_table(16)
    assert E[:4].tolist() == [65535, 65358, 65181, 65005]
    assert E[128] == 46340            # 65535 / sqrt(2) = 46340.24...
    assert E[255] == 32856            # 65535 * 2^(-255/256) = 32856.3...
    assert all(a > b for a, b in zip(E[:-1], E[1:]))   # strictly decreasing at W = 16
    with pytest.raises(ConfigError):
        numerics.exp2_table(0)
    with pytest.raises(ConfigError):
        numerics.exp2_table(32)


# ---------------------------------------------------------------------------------------
# weights and min-p against the reference
# ---------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.integers(1, 80), st.integers(0, 2**32 - 1),
       st.sampled_from([1, 2, 1000, 47274, K1, 131072, 600000, (1 << 24) - 1]),
       st.sampled_from([0, 1, 3277, 32768, 65535, 65536]), st.sampled_from([2, 8, 16, 24]))
def test_logit_weights_match_the_python_int_reference(V, seed, k, min_p, wb):
    rng = np.random.default_rng(seed)
    bits = random_logit_rows(rng, (V,))
    w, z = numerics.logit_weights(bits, (k, 0, 65536, min_p), wb)
    rw, rz = ref_weights(bits, k, min_p, wb)
    assert w.dtype == np.int64 and w.tolist() == rw and z == rz and isinstance(z, int)
    assert w.max() == (1 << wb) - 1


def test_logit_weights_batched_equal_row_by_row():
    rng = np.random.default_rng(4)
    bits = random_logit_rows(rng, (3, 5, 40))
    w, z = numerics.logit_weights(bits, (60000, 0, 65536, 2000), W)
    assert w.shape == bits.shape and z.shape == (3, 5)
    for idx in np.ndindex(3, 5):
        rw, rz = ref_weights(bits[idx], 60000, 2000, W)
        assert w[idx].tolist() == rw and z[idx] == rz


def test_logit_weights_extreme_logits_and_k():
    big, small = numerics.encode_bf16([3e38, -3e38])
    row = np.array([big, small, 0x0000, big, 0xFF80], np.uint16)
    for k in (1, K1, (1 << 24) - 1):
        w, z = numerics.logit_weights(row, (k,) + OFF, W)
        assert w.tolist() == ref_weights(row, k, 0, W)[0]
        assert w[0] == w[3] == M and w[4] == 0
    # k = 1: y = floor(x / 2^16) is 127 and -128 for x = 2^23 - 1 and -2^23: d = 255, w = E[255]
    w, _ = numerics.logit_weights(row, (1,) + OFF, W)
    assert w[1] == numerics.exp2_table(W)[255]
    # every row masked is invalid
    with pytest.raises(TraceError, match="every entry is masked"):
        numerics.logit_weights(np.full(4, 0xFF80, np.uint16), (K1,) + OFF, W)
    with pytest.raises(TraceError, match=r"every entry is masked.*\(row 1\)"):
        numerics.logit_weights(np.array([[0x3F80, 0xFF80], [0xFF80, 0xFF80]], np.uint16), (K1,) + OFF, W)


def test_weights_of_differences_beyond_w_octaves_are_zero():
    # y differences of exactly e octaves: w = E[0] >> e, and 0 from e = W on
    y = np.array([0] + [-(e << 8) for e in range(1, 20)], np.int64)
    w = numerics.weights_from_scaled(y, np.zeros(y.size, bool), W)
    assert w.tolist() == [M >> e if e < W else 0 for e in range(20)]


def test_min_p_keeps_the_max_and_the_threshold_equality():
    w = np.array([100, 50, 49, 51, 0, 100])
    got = numerics.apply_filters(w, (K1, 0, 65536, 32768))         # keep w * 2^16 >= w_max / 2
    assert got.tolist() == [100, 50, 0, 51, 0, 100]                 # 50 * 2^16 == 32768 * 100 is kept
    assert numerics.apply_filters(w, (K1, 0, 65536, 65536)).tolist() == [100, 0, 0, 0, 0, 100]
    assert numerics.apply_filters(w, (K1,) + OFF).tolist() == w.tolist()
    assert numerics.apply_filters(w, (K1, 0, 65536, 1)).tolist() == w.tolist()
    # from logits: min_p = 1 keeps every non-zero weight, min_p = 2^16 only the ties of the max
    rng = np.random.default_rng(9)
    bits = random_logit_rows(rng, (200,), tie_frac=0.3)
    w0, _ = numerics.logit_weights(bits, (K1,) + OFF, W)
    w1, _ = numerics.logit_weights(bits, (K1, 0, 65536, 1), W)
    wm, zm = numerics.logit_weights(bits, (K1, 0, 65536, 65536), W)
    assert np.array_equal(w0, w1)
    assert np.array_equal(wm, np.where(w0 == M, M, 0)) and zm == M * int((w0 == M).sum())


@pytest.mark.parametrize("params, match", [
    ((K1, (1 << 24) + 1, 65536, 0), "top_k = 16777217 is outside 0..2"),
    ((K1, 0, 65537, 0), "top_p = 65537 is outside 1..65536"),
    ((0, 0, 65536, 0), "inverse temperature k = 0"),
    (((1 << 24), 0, 65536, 0), "outside 1..2"),
    ((K1, -1, 65536, 0), "negative"),
    ((K1, 0, 0, 0), "top_p = 0: top_p must be > 0"),
    ((K1, 0, -5, 0), "top_p = -5: top_p must be > 0"),
    ((K1, 0, 65536, 65537), "min_p = 65537 is outside"),
    ((K1, 0, 65536), "expected 4 integers"),
    ((1.5, 0, 65536, 0), "expected 4 integers"),
])
def test_sampling_params_refused(params, match):
    with pytest.raises(TraceError, match=match):
        numerics.check_sampling_params(params, "target params")


def test_sampling_params_helpers():
    sp = numerics.check_sampling_params(np.array([K1, 0, 65536, 3277], np.int64))
    assert sp == numerics.SamplingParams(K1, min_p=3277) and isinstance(sp.k, int)
    assert numerics.fraction_units(0.05) == 3277 and numerics.fraction_units(1.0) == 65536
    assert numerics.fraction_units(0.5 / 65536) == 0                # half to even
    with pytest.raises(ConfigError):
        numerics.fraction_units(1.5)


def test_sampling_params_accept_the_filters_ranges():
    for params in ((K1, 1, 1, 0), (K1, 1 << 24, 65536, 65536), (K1, 50, 58982, 3277)):
        assert numerics.check_sampling_params(params) == numerics.SamplingParams(*params)
    assert numerics.SamplingParams(K1, 5).rank_filters and numerics.SamplingParams(K1, top_p=1).rank_filters
    assert not numerics.SamplingParams(K1, min_p=3277).rank_filters
    assert numerics.sampling_params(0.7, 50, 0.9, 0.05) == (numerics.inverse_temperature(0.7), 50, 58982, 3277)
    assert numerics.top_p_units(2.0 ** -16) == 1 and numerics.top_p_units(1.0) == 65536
    for bad, match in ((0.0, "top_p must be a finite number in \\(0, 1\\]"), (1e-6, "top_p must be > 0, got 1e-06"),
                       (1.5, "in \\(0, 1\\]"), (float("nan"), "in \\(0, 1\\]")):
        with pytest.raises(ConfigError, match=match):
            numerics.sampling_params(1.0, 0, bad)
    with pytest.raises(ConfigError, match="top_k must be in 0..2\\^24, got -1"):
        numerics.sampling_params(1.0, -1)


# ---------------------------------------------------------------------------------------
# the sampling filters: top-k, top-p, min-p (NUMERICS.md section 15)
# ---------------------------------------------------------------------------------------

def _filtered(w, top_k=0, top_p=65536, min_p=0) -> list[int]:
    return numerics.apply_filters(np.array(w, np.int64), (K1, top_k, top_p, min_p)).tolist()


def test_top_k_keeps_the_lower_token_ids_of_a_tie_at_the_threshold():
    w = [5, 7, 3, 7, 7, 0, 7]
    assert _filtered(w, top_k=2) == [0, 7, 0, 7, 0, 0, 0]
    assert _filtered(w, top_k=4) == [0, 7, 0, 7, 7, 0, 7]
    assert _filtered(w, top_k=5) == [5, 7, 0, 7, 7, 0, 7]
    assert _filtered([4, 4, 4, 4], top_k=3) == [4, 4, 4, 0]
    # the zero weights rank last: a top_k past the non-zero entries changes nothing
    assert _filtered(w, top_k=6) == w and _filtered(w, top_k=7) == w


def test_top_p_keeps_the_crossing_entry_and_stops_at_equality():
    # Z' = 10: top_p = 1/2 needs s >= 5, met by the first entry exactly (equality stops there)
    assert _filtered([5, 3, 2], top_p=32768) == [5, 0, 0]
    # one unit more needs s > 5: the entry that crosses (3) is kept
    assert _filtered([5, 3, 2], top_p=32769) == [5, 3, 0]
    assert _filtered([2, 3, 5], top_p=52428) == [0, 3, 5]        # 52428 * 10 / 2^16 = 7.99996: 5 + 3
    assert _filtered([2, 3, 5], top_p=52429) == [2, 3, 5]        # 8.00003 needs the 2 as well
    # ties at the crossing: the rank order takes the lower ids first
    assert _filtered([4, 4, 4, 4], top_p=32768) == [4, 4, 0, 0]
    assert _filtered([4, 4, 4, 4], top_p=32769) == [4, 4, 4, 0]
    assert _filtered([1, 6, 1, 6, 1, 6], top_p=37449) == [0, 6, 0, 6, 0, 0]   # 11.99996 of Z' = 21
    assert _filtered([1, 6, 1, 6, 1, 6], top_p=37450) == [0, 6, 0, 6, 0, 6]   # 12.00001
    # the smallest top_p keeps the first entry of the rank order; 1 (65536) keeps every non-zero one
    assert _filtered([3, 9, 9, 1], top_p=1) == [0, 9, 0, 0]
    assert _filtered([3, 9, 9, 1, 0], top_p=65536) == [3, 9, 9, 1, 0]


def test_filters_apply_in_order_top_k_then_top_p_on_what_is_left_then_min_p():
    # top-p on Z' after top-k: 4 entries of 5, top_k = 2 leaves Z' = 10, top_p = 1/2 keeps one;
    # top-p on the whole sum (20) would keep two
    assert _filtered([5, 5, 5, 5], top_k=2, top_p=32768) == [5, 0, 0, 0]
    # top-p before min-p: Z' = 20 keeps 10 + 6; min-p (1/2 of 10) keeps 6 too. min-p first would
    # leave [10, 6] and top-p 0.6 of 16 would keep 10 alone
    assert _filtered([10, 6, 1, 1, 1, 1], top_p=39322, min_p=32768) == [10, 6, 0, 0, 0, 0]
    assert _filtered([10, 6, 1, 1, 1, 1], top_k=1, top_p=1, min_p=65536) == [10, 0, 0, 0, 0, 0]


def test_top_k_one_is_the_greedy_argmax_of_the_weights():
    rng = np.random.default_rng(41)
    bits = random_logit_rows(rng, (50, 30), tie_frac=0.4)
    for k in (K1, 20000, 500000):
        w, _ = numerics.logit_weights(bits, (k, 0, 65536, 0), W)
        w1, z1 = numerics.logit_weights(bits, (k, 1, 65536, 0), W)
        best = np.argmax(w, axis=-1)                                   # ties to the lowest index
        assert ((w1 > 0).sum(axis=-1) == 1).all() and (np.argmax(w1, axis=-1) == best).all()
        assert (z1 == w.max(axis=-1)).all()
    # a stochastic round under top_k = 1 emits that argmax whatever its uniforms
    row = bits[:1]
    w, _ = numerics.logit_weights(row[0], (K1,) + OFF, W)
    for rs in (0, 1 << 31, (1 << 32) - 1):
        assert verify_logit_round(_lround(row, tparams=(K1, 1, 65536, 0), rs=rs), W, U).token == int(np.argmax(w))


def test_top_k_at_or_past_v_and_top_p_one_keep_every_entry():
    rng = np.random.default_rng(42)
    bits = random_logit_rows(rng, (20, 25))
    w, z = numerics.logit_weights(bits, (K1,) + OFF, W)
    for params in ((K1, 25, 65536, 0), (K1, 26, 65536, 0), (K1, 1 << 24, 65536, 0), (K1, 0, 65536, 0)):
        got, gz = numerics.logit_weights(bits, params, W)
        assert np.array_equal(got, w) and np.array_equal(gz, z)


def test_top_p_of_one_unit_keeps_the_first_entry_of_the_rank_order():
    rng = np.random.default_rng(43)
    bits = random_logit_rows(rng, (30, 40), tie_frac=0.5)
    w, _ = numerics.logit_weights(bits, (K1,) + OFF, W)
    wp, zp = numerics.logit_weights(bits, (K1, 0, 1, 0), W)
    first = np.argmax(w, axis=-1)
    assert ((wp > 0).sum(axis=-1) == 1).all() and (np.argmax(wp, axis=-1) == first).all() and (zp == M).all()
    # so does it on a full vocabulary (V <= 2^16: Z' <= 2^16 w_max), a flat row included
    flat = np.full(1 << 16, numerics.encode_bf16(1.0), np.uint16)
    wf, zf = numerics.logit_weights(flat, (K1, 0, 1, 0), W)
    assert zf == M and wf[0] == M


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 50), st.integers(0, 2**32 - 1), st.sampled_from([3, 16, 1 << 16, 1 << 31]))
def test_filters_match_the_sorting_reference_on_random_rows(V, seed, top):
    """Random weights (many ties when `top` is small), random top_k / top_p / min_p per row,
    the rows filtered together with one tuple per row: each row is the reference's."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    w = rng.integers(0, top, size=(n, V))
    w[rng.random((n, V)) < 0.2] = 0
    params = np.stack([np.full(n, K1),
                       rng.choice([0, 1, 2, 3, V - 1, V, V + 1, int(rng.integers(0, V + 2))], size=n),
                       rng.choice([1, 2, 32768, 32769, 58982, 65535, 65536, int(rng.integers(1, 65537))], size=n),
                       rng.choice([0, 0, 1, 3277, 32768, 65536], size=n)], axis=1)
    params[:, 1] = np.maximum(params[:, 1], 0)
    got = numerics.apply_filters(w, params)
    for i in range(n):
        _, tk, tp, mp = (int(v) for v in params[i])
        want = ref_filters(w[i], tk, tp, mp)
        assert got[i].tolist() == want, (w[i].tolist(), tk, tp, mp)
        assert numerics.apply_filters(w[i], tuple(params[i])).tolist() == want


def test_logit_weights_with_one_parameter_tuple_per_row():
    rng = np.random.default_rng(44)
    bits = random_logit_rows(rng, (3, 4, 33), tie_frac=0.3)
    params = np.stack(np.broadcast_arrays(rng.choice([K1, 30000, 300000], size=(3, 4)),
                                          rng.choice([0, 1, 5, 40], size=(3, 4)),
                                          rng.choice([1, 40000, 65536], size=(3, 4)),
                                          rng.choice([0, 3277], size=(3, 4))), axis=-1)
    w, z = numerics.logit_weights(bits, params, W)
    for i in range(3):
        for j in range(4):
            wi, zi = numerics.logit_weights(bits[i, j], tuple(int(v) for v in params[i, j]), W)
            rw, rz = ref_weights(bits[i, j], *(int(params[i, j, c]) for c in (0, 3)), W,
                                 *(int(params[i, j, c]) for c in (1, 2)))
            assert w[i, j].tolist() == wi.tolist() == rw and z[i, j] == zi == rz
    bad = params.copy()
    bad[2, 1, 2] = 0
    with pytest.raises(TraceError, match=r"logit row \(row \(2, 1\)\): top_p = 0: top_p must be > 0"):
        numerics.logit_weights(bits, bad, W)
    with pytest.raises(TraceError, match="expected one .* per row"):
        numerics.logit_weights(bits, params[:2], W)
    with pytest.raises(TraceError, match="expected integers"):
        numerics.logit_weights(bits, params.astype(float), W)


def test_top_p_threshold_is_exact_at_large_sums():
    """ceil(top_p * Z' / 2^16) from the split Z' = hi 2^16 + lo in int64, against Python ints, at
    Z' up to 2^55 (V = 2^24 entries of 2^31 - 1)."""
    rng = np.random.default_rng(45)
    for _ in range(200):
        V = int(rng.integers(1, 9))
        top = int(rng.choice([1 << 16, 1 << 31, (1 << 55) // V]))     # entries in rank order, sums up to 2^55
        w = sorted((int(v) for v in rng.integers(0, top, size=V, dtype=np.int64)), reverse=True)
        cs = np.cumsum(np.array(w, np.int64))
        top_k = int(rng.integers(0, V + 2))
        top_p = int(rng.choice([1, 65535, 65536, int(rng.integers(1, 65537))]))
        n = int(numerics.rank_prefix_lengths(cs, top_k, top_p))
        n_k = top_k if 0 < top_k < V else V
        z = int(cs[n_k - 1])
        want = next(j + 1 for j in range(n_k) if int(cs[j]) * 65536 >= top_p * z)
        assert n == want, (w, top_k, top_p)


def test_draft_rows_use_the_drafts_own_filters():
    """A draft sampled under its own top-k never proposes a token outside that top-k; a round
    whose draft came from the target's (wider) filters instead is refused; the decisions of
    rounds whose two sides differ are the reference's."""
    rng = np.random.default_rng(46)
    V = 20
    target = numerics.encode_bf16(rng.standard_normal((3, V)))
    draft = numerics.encode_bf16(rng.standard_normal((2, V)) * 0.5)
    dparams, tparams = (K1, 3, 65536, 0), (60000, 0, 45000, 0)
    P = [ref_weights(draft[t], K1, 0, W, 3) for t in range(2)]
    Q = [ref_weights(target[t], 60000, 0, W, 0, 45000) for t in range(3)]
    seen = set()
    for i in range(300):
        D = [int(v) for v in rng.integers(0, 1 << U, size=2)]
        Ra = [int(v) for v in rng.integers(0, 1 << U, size=2)]
        rs = int(rng.integers(0, 1 << U))
        drafts = draft_tokens_from_logits(draft, dparams, D, W, U)
        assert all(P[t][0][x] > 0 for t, x in enumerate(drafts))
        seen.update((t, int(x)) for t, x in enumerate(drafts))
        got = verify_logit_round(_lround(target, draft, drafts, tparams=tparams, dparams=dparams, D=D, Ra=Ra, rs=rs),
                                 W, U)
        assert got.decision() == ref_round(list(drafts), [p for p, _ in P], [z for _, z in P], [q for q, _ in Q],
                                           [z for _, z in Q], Ra, rs, U)
        assert Q[got.accepted][0][got.token] > 0                     # never outside the target's kept set
    assert len(seen) == 6                                            # 3 tokens per draft row, each proposed
    wide = draft_tokens_from_logits(draft, (K1,) + OFF, [int(v) for v in rng.integers(0, 1 << U, size=2)], W, U)
    for _ in range(50):
        D = [int(v) for v in rng.integers(0, 1 << U, size=2)]
        wide = draft_tokens_from_logits(draft, (K1,) + OFF, D, W, U)
        if any(P[t][0][x] == 0 for t, x in enumerate(wide)):
            with pytest.raises(TraceError, match="is not the draft sample"):
                verify_logit_round(_lround(target, draft, wide, tparams=tparams, dparams=dparams, D=D), W, U)
            break
    else:
        raise AssertionError("no draft outside the draft's top-k was drawn")


# ---------------------------------------------------------------------------------------
# Z = M: the weight-row functions decide exactly as the v1 functions
# ---------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(2, 60), st.integers(1, 6), st.integers(0, 2**32 - 1), st.sampled_from([(16, 32), (8, 8), (24, 40), (4, 3)]))
def test_weight_rows_with_z_equal_m_are_the_v1_round(V, G, seed, wu):
    wb, ub = wu
    m = numerics.default_row_sum(wb)
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.full(V, 0.5), size=G + 1)
    p = 0.6 * q[:G] + 0.4 * rng.dirichlet(np.full(V, 0.5), size=G)
    Q, P = numerics.quantize_rows(q, m), numerics.quantize_rows(p, m)
    for _ in range(20):
        D = rng.integers(0, 1 << ub, size=G)
        drafts = [numerics.sample_from_weights(P[t], int(D[t]), ub, total=m) for t in range(G)]
        assert drafts == [numerics.draft_sample(P[t], m, int(D[t]), ub) for t in range(G)]
        Ra = rng.integers(0, 1 << ub, size=G)
        Ra[rng.random(G) < 0.3] = (1 << ub) - 1
        rs = int(rng.integers(0, 1 << ub))
        old = verify_round(Round(False, np.array(drafts), P, Q, Ra, rs), m, ub)
        new = verify_weight_round(drafts, P, [m] * G, Q, [m] * (G + 1), Ra, rs, ub)
        assert new == old
        for t in range(G):
            x = drafts[t]
            assert numerics.weighted_accept(Ra[t], P[t, x], m, Q[t, x], m, ub) == \
                numerics.accept(Ra[t], P[t, x], Q[t, x], ub)
            if numerics.residual_weights(Q[t], P[t]).sum() > 0:
                assert numerics.weighted_residual_sample(Q[t], m, P[t], m, rs, ub) == \
                    numerics.residual_sample(Q[t], P[t], rs, ub)
        assert numerics.weighted_bonus_sample(Q[G], m, rs, ub) == numerics.bonus_sample(Q[G], rs, ub, m)


def test_weight_rows_with_z_equal_m_exhaustive_over_uniforms():
    """Every R at U = 10: accept counts and residual / bonus samples equal v1 for Z = M."""
    ub, m = 10, M
    Q = np.array([[5, 0, 30000, 35530 - 5, 0], [1, 1, 1, 1, M - 4]])
    P = np.array([[10000, 9, 20000, 0, 35526]])
    for r in range(1 << ub):
        for x in range(5):
            assert numerics.weighted_accept(r, P[0, x], m, Q[0, x], m, ub) == numerics.accept(r, P[0, x], Q[0, x], ub)
        assert numerics.weighted_residual_sample(Q[0], m, P[0], m, r, ub) == numerics.residual_sample(Q[0], P[0], r, ub)
        assert numerics.weighted_bonus_sample(Q[1], m, r, ub) == numerics.bonus_sample(Q[1], r, ub, m)


# ---------------------------------------------------------------------------------------
# the accept test and residual on unequal sums
# ---------------------------------------------------------------------------------------

def test_weighted_accept_count_is_exactly_q_over_p():
    ub = 8
    for p_x, zp, q_x, zq in [(3, 7, 5, 11), (1, 1, 2, 9), (7, 7, 1, 1), (5, 20, 0, 3), (9, 10, 9, 10)]:
        count = sum(numerics.weighted_accept(r, p_x, zp, q_x, zq, ub) for r in range(1 << ub))
        ratio = Fraction(q_x * zp, p_x * zq)
        assert count == min(1 << ub, math.ceil(ratio * (1 << ub)))


def test_weighted_residual_is_proportional_to_the_ideal_residual():
    Q, zq = np.array([0, 10, 30, 60]), 100
    P, zp = np.array([5, 5, 0, 10]), 20
    r = numerics.weighted_residual_weights(Q, zq, P, zp)
    ideal = [max(Fraction(0), Fraction(int(a), zq) - Fraction(int(b), zp)) for a, b in zip(Q, P)]
    assert r.dtype == np.int64 and [Fraction(int(v), zp * zq) for v in r] == ideal
    with pytest.raises(ValueError):
        numerics.weighted_residual_sample(Q, zq, Q, zq, 0, U)   # p == q: nothing to sample
    with pytest.raises(ValueError):
        numerics.weighted_sample(Q, 0, 0, U)


# ---------------------------------------------------------------------------------------
# one-hot drafts and greedy rounds
# ---------------------------------------------------------------------------------------

def _lround(target, draft=None, drafts=(), greedy=False, onehot=False, tparams=(K1,) + OFF, dparams=(K1,) + OFF,
            D=None, Ra=None, rs=0) -> LogitRound:
    target = np.asarray(target, np.uint16)
    g = len(drafts)
    if draft is None:
        draft = np.zeros((g, target.shape[1]), np.uint16)
    return LogitRound(greedy=greedy, onehot_draft=onehot, draft_tokens=np.asarray(drafts, np.int64).reshape(g),
                      draft_logits=np.asarray(draft, np.uint16).reshape(g, target.shape[1]), target_logits=target,
                      draft_params=dparams, target_params=tparams,
                      draft_uniforms=np.zeros(g, np.int64) if D is None else np.asarray(D),
                      accept_uniforms=np.zeros(g, np.int64) if Ra is None else np.asarray(Ra),
                      sample_uniform=rs)


def test_onehot_draft_accepts_with_q_over_zq_and_residual_is_q_without_x():
    rng = np.random.default_rng(12)
    V = 9
    target = random_logit_rows(rng, (2, V), mask_frac=0.2)
    Q, ZQ = numerics.logit_weights(target, (50000, 0, 65536, 2000), W)
    row, z = numerics.onehot_draft_row(3, V)
    assert z == 1 and row.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0]
    res = numerics.weighted_residual_weights(Q[0], ZQ[0], row, 1)
    assert res.tolist() == [0 if i == 3 else int(Q[0, i]) for i in range(V)]
    ub = 9
    count = sum(numerics.weighted_accept(r, 1, 1, Q[0, 3], ZQ[0], ub) for r in range(1 << ub))
    assert count == min(1 << ub, math.ceil(Fraction(int(Q[0, 3]), int(ZQ[0])) * (1 << ub)))
    # through the round: draft logits, draft params and draft uniforms are ignored
    junk = np.full((1, V), 0x7FC0, np.uint16)
    for ra in (0, 1 << 31, (1 << 32) - 1):
        for rs in (0, 12345, (1 << 32) - 1):
            rnd = _lround(target, junk, [3], onehot=True, tparams=(50000, 0, 65536, 2000), dparams=(0, 9, 9, 9),
                          D=[-5], Ra=[ra], rs=rs)
            want = ref_round([3], [row], [1], Q, [int(z) for z in ZQ], [ra], rs, U)
            assert verify_logit_round(rnd, W, U).decision() == want
    with pytest.raises(TraceError):
        numerics.onehot_draft_row(V, V)


def test_greedy_on_logits_ties_and_masks():
    vals = numerics.encode_bf16
    # 0.001 and 0.0012 both decode to x = 0: a tie, the lowest index wins
    row_tie = vals([-1.0, 0.001, 0.0012, -np.inf])
    assert numerics.logit_argmax(row_tie) == 1
    # a masked entry is never the argmax, even when every other entry is very negative
    row_mask = np.array([vals(-3e38), 0xFF80, vals(-1e30)], np.uint16)
    assert numerics.logit_argmax(row_mask) == 0                   # both clamp to -2^23: tie -> 0
    assert numerics.logit_argmax(np.array([vals(1e30), vals(3e38)], np.uint16)) == 0   # clamp tie
    # argmax is over x, before temperature: at k = 1 the weights of 5.0 and 5.1 tie, x does not
    row_k = vals([5.0, 5.1, 0.0, 0.0])
    w, _ = numerics.logit_weights(row_k, (1,) + OFF, W)
    assert w[0] == w[1] and numerics.logit_argmax(row_k) == 1
    assert numerics.logit_argmax(np.stack([row_tie, row_k])).tolist() == [1, 1]
    with pytest.raises(TraceError, match="every entry is masked"):
        numerics.logit_argmax(np.full(3, 0xFF80, np.uint16))


def test_greedy_logit_rounds():
    vals = numerics.encode_bf16
    target = np.stack([vals([1.0, 5.0, 5.0, -np.inf]),      # argmax 1 (tie with 2)
                       vals([0.0, 0.0, 2.0, 1.0]),          # argmax 2
                       vals([-np.inf, -1.0, -1.0, -2.0])])  # argmax 1
    bad_params = (0, 7, 7, 7)                               # greedy ignores parameters and uniforms
    for onehot in (False, True):
        kw = dict(greedy=True, onehot=onehot, tparams=bad_params, dparams=bad_params, D=[-1, -1], Ra=[-1, -1], rs=-1)
        assert verify_logit_round(_lround(target, drafts=[1, 2], **kw), W, U).decision() == (2, 1)
        assert verify_logit_round(_lround(target, drafts=[1, 3], **kw), W, U).decision() == (1, 2)
        assert verify_logit_round(_lround(target, drafts=[2, 2], **kw), W, U).decision() == (0, 1)
        assert verify_logit_round(_lround(target[:1], drafts=[], **kw), W, U).decision() == (0, 1)
    # greedy draft tokens from draft logits are their argmaxes
    assert draft_tokens_from_logits(target[:2], None, None, W, U, greedy=True).tolist() == [1, 2]
    # a greedy model draft still needs valid rows
    draft = np.stack([target[0], np.full(4, 0x7F80, np.uint16)])
    with pytest.raises(TraceError, match=r"round 5: draft row 1: entry 0 is \+inf"):
        verify_logit_round(_lround(target, draft, [1, 2], greedy=True), W, U, where="round 5")


# ---------------------------------------------------------------------------------------
# stochastic logit rounds: drafts, refusals, the reference round
# ---------------------------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(st.integers(2, 40), st.integers(0, 4), st.integers(0, 2**32 - 1), st.sampled_from([(16, 32), (24, 64), (8, 12)]))
def test_stochastic_logit_rounds_match_the_reference(V, G, seed, wu):
    wb, ub = wu
    rng = np.random.default_rng(seed)
    target = random_logit_rows(rng, (G + 1, V))
    draft = random_logit_rows(rng, (G, V))
    def filters():   # top_k, top_p: off, tight, at or past V, a unit; each side its own
        return int(rng.choice([0, 0, 1, 2, V, V + 7])), int(rng.choice([65536, 65536, 1, 32768, 58982]))
    tparams = (int(rng.choice([K1, 40000, 200000])), *filters(), int(rng.choice([0, 3277, 40000])))
    dparams = (int(rng.choice([K1, 60000])), *filters(), int(rng.choice([0, 1000])))
    D = [int(v) for v in rng.integers(0, 1 << min(ub, 62), size=G)]
    drafts = draft_tokens_from_logits(draft, dparams, D, wb, ub)
    Ra = np.array([int(v) for v in rng.integers(0, 1 << min(ub, 62), size=G)], np.uint64)
    if ub == 64 and G:
        Ra[0] = np.uint64((1 << 64) - 1)                    # uniforms above 2^63 stay exact
    rs = int(rng.integers(0, 1 << min(ub, 62)))
    rnd = _lround(target, draft, drafts, tparams=tparams, dparams=dparams, D=D, Ra=Ra, rs=rs)
    got = verify_logit_round(rnd, wb, ub)
    P = [ref_weights(draft[t], dparams[0], dparams[3], wb, dparams[1], dparams[2]) for t in range(G)]
    Q = [ref_weights(target[t], tparams[0], tparams[3], wb, tparams[1], tparams[2]) for t in range(G + 1)]
    for t in range(G):
        assert drafts[t] == ref_sample(P[t][0], P[t][1], D[t], ub)
    want = ref_round(list(drafts), [p for p, _ in P], [z for _, z in P], [q for q, _ in Q], [z for _, z in Q],
                     [int(r) for r in Ra], rs, ub)
    assert got.decision() == want


def test_a_model_draft_that_is_not_its_rows_sample_is_refused():
    rng = np.random.default_rng(21)
    V = 12
    target = random_logit_rows(rng, (3, V), mask_frac=0.0)
    draft = random_logit_rows(rng, (2, V), mask_frac=0.0)
    dparams = (K1,) + OFF
    D = [123456789, 3000000000]
    drafts = draft_tokens_from_logits(draft, dparams, D, W, U)
    ok = _lround(target, draft, drafts, D=D, Ra=[0, 0], dparams=dparams)
    assert verify_logit_round(ok, W, U).accepted >= 0
    wrong = drafts.copy()
    wrong[1] = (wrong[1] + 1) % V
    with pytest.raises(TraceError, match=rf"round 17: draft slot 1: token {wrong[1]} is not the draft sample"):
        verify_logit_round(_lround(target, draft, wrong, D=D, Ra=[0, 0], dparams=dparams), W, U, where="round 17")
    with pytest.raises(TraceError, match="draft slot 1"):
        logit_weight_rows(_lround(target, draft, wrong, D=D, Ra=[0, 0], dparams=dparams), W, U)
    # the same token drawn under other draft parameters than the round's is refused too
    hot = (K1 * 4, 0, 65536, 0)
    drafts_hot = draft_tokens_from_logits(draft, hot, D, W, U)
    if not np.array_equal(drafts_hot, drafts):
        with pytest.raises(TraceError, match="is not the draft sample"):
            verify_logit_round(_lround(target, draft, drafts_hot, D=D, Ra=[0, 0], dparams=dparams), W, U)


@pytest.mark.parametrize("mutate, match", [
    (lambda k: k.update(target=np.where(np.arange(6) == 4, 0x7FC0, k["target"]).astype(np.uint16)),
     r"round: target row 0: entry \(?4"),
    (lambda k: k.update(tparams=(K1, 3, 0, 0)), "target row 0: top_p = 0: top_p must be > 0"),
    (lambda k: k.update(drafts=[6]), "token 6 is outside 0..5"),
    (lambda k: k.update(Ra=[1 << 32]), "accept uniform of slot 0"),
    (lambda k: k.update(rs=-1), "sample uniform"),
    (lambda k: k.update(D=[1 << 40]), "draft uniform of slot 0"),
    (lambda k: k.update(draft=np.zeros((1, 5), np.uint16)), "draft_logits has shape"),
])
def test_bad_logit_rounds_are_refused(mutate, match):
    rng = np.random.default_rng(2)
    kw = dict(target=random_logit_rows(rng, (2, 6), mask_frac=0.0), draft=random_logit_rows(rng, (1, 6), mask_frac=0.0),
              drafts=None, D=[77], Ra=[0], rs=5, tparams=(K1,) + OFF)
    kw["drafts"] = list(draft_tokens_from_logits(kw["draft"], (K1,) + OFF, [77], W, U))
    mutate(kw)
    target, draft, drafts = kw.pop("target"), kw.pop("draft"), kw.pop("drafts")
    if draft.shape != (1, 6):
        rnd = LogitRound(False, False, np.array(drafts), draft, target, (K1,) + OFF, kw["tparams"], np.array(kw["D"]),
                         np.array(kw["Ra"]), kw["rs"])
    else:
        rnd = _lround(target, draft, drafts, **kw)
    with pytest.raises(TraceError, match=match):
        verify_logit_round(rnd, W, U)


# ---------------------------------------------------------------------------------------
# exact widths at the extremes
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("wb, ub", [(16, 32), (16, 64), (24, 32), (24, 64)])
def test_widths_at_the_extremes_are_exact(wb, ub):
    """V = 65536 rows whose every weight is 2^W - 1 (equal logits): Z = V (2^W - 1), and
    ZP * ZQ > 2^63 at both W, so the residual takes the Python-int path; R up to 2^U - 1."""
    V = 1 << 16
    wmax = (1 << wb) - 1
    flat = np.full(V, numerics.encode_bf16(3.0), np.uint16)
    Q, zq = numerics.logit_weights(flat, (K1,) + OFF, wb)
    assert zq == V * wmax and (Q == wmax).all()
    rng = np.random.default_rng(wb + ub)
    # a draft row that is flat except for 16 masked entries: ZP = (V - 16) (2^W - 1)
    draft = flat.copy()
    draft[rng.permutation(V)[:16]] = 0xFF80
    P, zp = numerics.logit_weights(draft, (K1,) + OFF, wb)
    assert zp == (V - 16) * wmax and zp * zq > numerics.INT64_MAX
    r = numerics.weighted_residual_weights(Q, zq, P, zp)
    assert r.dtype == object
    ref_r = [max(0, wmax * zp - int(p) * zq) for p in P]
    assert r.tolist() == ref_r
    top = (1 << ub) - 1
    for R in (0, 1, top // 3, top - 1, top):
        x = int(np.flatnonzero(P)[0])
        assert numerics.weighted_accept(R, P[x], zp, Q[x], zq, ub) == (R * int(P[x]) * zq < int(Q[x]) * zp * 2 ** ub)
        assert numerics.weighted_residual_sample(Q, zq, P, zp, R, ub) == ref_sample(ref_r, sum(ref_r), R, ub)
        assert numerics.weighted_bonus_sample(Q, zq, R, ub) == ref_sample(Q.tolist(), zq, R, ub)
        assert numerics.draft_sample(P, zp, R, ub) == ref_sample(P.tolist(), zp, R, ub)
    # the int64 path where it fits, checked against the same Python ints
    n = 64                     # sum(Q) * ZP < 64 * 2^24 * 64 * 2^24 = 2^60
    zq_s, zp_s = int(Q[:n].sum()), int(P[:n].sum())
    small = numerics.weighted_residual_weights(Q[:n], zq_s, P[:n], zp_s)
    assert small.dtype == np.int64
    assert small.tolist() == [max(0, int(q) * zp_s - int(p) * zq_s) for q, p in zip(Q[:n], P[:n])]


def test_extreme_logit_round_at_v_65536_and_u_64():
    V, wb, ub = 1 << 16, 24, 64
    rng = np.random.default_rng(64)
    target = numerics.encode_bf16(rng.normal(0, 0.02, size=(2, V)))      # nearly flat: Z near V * 2^W
    draft = numerics.encode_bf16(rng.normal(0, 0.02, size=(1, V)))
    D = [(1 << 64) - 1]
    drafts = draft_tokens_from_logits(draft, (K1,) + OFF, D, wb, ub)
    for ra in ((1 << 64) - 1, 1 << 63, 0):
        rnd = _lround(target, draft, drafts, D=np.array(D, np.uint64), Ra=np.array([ra], np.uint64),
                      rs=(1 << 64) - 2)
        got = verify_logit_round(rnd, wb, ub)
        P, ZP, Q, ZQ = logit_weight_rows(rnd, wb, ub)
        assert ZP[0] * ZQ[0] > numerics.INT64_MAX
        want = ref_round(list(drafts), [p.tolist() for p in P], ZP, [q.tolist() for q in Q], ZQ, [ra], (1 << 64) - 2, ub)
        assert got.decision() == want


# ---------------------------------------------------------------------------------------
# losslessness on logit rows (chi-square), and samplers that get it wrong
# ---------------------------------------------------------------------------------------

def _chi_rows():
    """Fixed rows, V = 16: a peaked target at T = 0.8 with min-p 0.05 (a cut tail and a masked
    token), a flat draft at T = 2.5 without filters that proposes tokens the target never emits.
    The sums differ by a factor of about 3."""
    t = np.array([4.0, 3.5, 3.0, 2.0, 1.0, 0.5, 0.0, -1.0, -2.0, -3.0, -np.inf, 2.5, 1.5, -0.5, -5.0, 3.2])
    target = numerics.encode_bf16(np.stack([t, np.roll(t, 3), t[::-1]]))
    d = np.array([3.0, 3.5, 1.0, 2.5, 1.5, 0.0, 0.5, 0.0, -1.0, 0.2, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0])
    draft = numerics.encode_bf16(np.stack([d, np.roll(d, 5)]))
    tparams = (numerics.inverse_temperature(0.8), 0, 65536, numerics.fraction_units(0.05))
    dparams = (numerics.inverse_temperature(2.5), 0, 65536, 0)
    return target, draft, tparams, dparams


def _run_rounds(P, ZP, Q, ZQ, drafts, Ra, Rs):
    out = [verify_weight_round(drafts[i], P, ZP, Q, ZQ, Ra[i], int(Rs[i]), U) for i in range(len(Rs))]
    return np.array([r.accepted for r in out]), np.array([r.token for r in out])


def test_first_emitted_token_follows_the_filtered_target_and_wrong_samplers_fail():
    N = 20_000
    target, draft, tparams, dparams = _chi_rows()
    Q, ZQ = numerics.logit_weights(target, tparams, W)
    P, ZP = numerics.logit_weights(draft, dparams, W)
    ZQ, ZP = [int(z) for z in ZQ], [int(z) for z in ZP]
    assert (Q[0] == 0).sum() >= 4 and ZP[0] > 2.5 * ZQ[0]
    Q_unfiltered, ZQ_unfiltered = numerics.logit_weights(target, tparams[:3] + (0,), W)
    assert (Q_unfiltered[0] > 0).sum() > (Q[0] > 0).sum()
    rng = np.random.default_rng(31)
    D = rng.integers(0, 1 << U, size=(N, 2))
    Ra = rng.integers(0, 1 << U, size=(N, 2))
    Rs = rng.integers(0, 1 << U, size=N)
    drafts = np.stack([np.searchsorted(np.cumsum(P[t]), (D[:, t] * ZP[t]) >> U, side="right") for t in range(2)], 1)
    # the vectorised draft sampler above is the numerics one, and the FL round agrees on a sample
    for i in range(300):
        rnd = _lround(target, draft, drafts[i], tparams=tparams, dparams=dparams, D=D[i], Ra=Ra[i], rs=int(Rs[i]))
        assert draft_tokens_from_logits(draft, dparams, D[i], W, U).tolist() == drafts[i].tolist()
        assert verify_logit_round(rnd, W, U) == verify_weight_round(drafts[i], P, ZP, Q, ZQ, Ra[i], int(Rs[i]), U)
    n, tok = _run_rounds(P, ZP, Q, ZQ, drafts, Ra, Rs)
    first = np.where(n > 0, drafts[:, 0], tok)
    assert (Q[0][first] > 0).all()                                   # never outside the support
    assert chi2_pvalue(first, Q[0]) > 1e-3
    bonus = tok[n == 2]
    assert bonus.size > 500 and (Q[2][bonus] > 0).all() and chi2_pvalue(bonus, Q[2]) > 1e-3
    # a sampler that ignores ZP / ZQ (the v1 test R * P < Q * 2^U and residual max(0, Q - P))
    n, tok = _run_rounds(P, [1, 1], Q, [1, 1, ZQ[2]], drafts, Ra, Rs)
    assert chi2_pvalue(np.where(n > 0, drafts[:, 0], tok), Q[0]) < 1e-6
    # a verifier that ignores the target's min-p (unfiltered target rows)
    n, tok = _run_rounds(P, ZP, Q_unfiltered, [int(z) for z in ZQ_unfiltered], drafts, Ra, Rs)
    wrong = np.where(n > 0, drafts[:, 0], tok)
    assert (Q[0][wrong] == 0).any() and chi2_pvalue(wrong, Q[0]) < 1e-6


# ---------------------------------------------------------------------------------------
# distance of w / Z from the float softmax (a measurement; docs/NUMERICS.md section 18)
# ---------------------------------------------------------------------------------------

def llm_like_rows(rng, n: int, V: int = 49152) -> np.ndarray:
    """Gaussian logits (sd 1.5-3.5) with a few boosted tokens, as bf16."""
    sd = rng.uniform(1.5, 3.5, size=(n, 1))
    logits = rng.standard_normal((n, V)) * sd
    for i in range(n):
        logits[i, rng.integers(0, V, size=3)] += rng.uniform(0, 15) * np.array([1.0, 0.8, 0.6])
    return numerics.encode_bf16(logits)


def test_softmax_distance_on_llm_like_rows():
    rng = np.random.default_rng(77)
    bits = llm_like_rows(rng, 6)
    for T in (0.7, 1.0, 1.5):
        tv16 = numerics.logit_weights_tv_distance(bits, T, 16)
        tv24 = numerics.logit_weights_tv_distance(bits, T, 24)
        tv_mp = numerics.logit_weights_tv_distance(bits, T, 16, numerics.fraction_units(0.05))
        assert tv16.shape == (6,)
        assert tv16.max() < 0.25 and tv24.max() < 2e-3 and tv_mp.max() < 2e-3, (T, tv16, tv24, tv_mp)
    # the measurement itself: identical distributions give 0, a peaked row is far from exact only
    # through its fixed-point logits
    one = numerics.encode_bf16(np.r_[20.0, np.zeros(99)])
    assert numerics.logit_weights_tv_distance(one, 1.0, 16) < 1e-6
