"""The lane units of the logit front end (hades/rtl/logit_lanes.py), each on its own, against
hades/numerics.py lane by lane (bit-exact): pure-Python simulation at 2, 4 and 16 lanes with
seeded random inputs and the edge cases, one Verilator-imported chain (LaneBf16Scale ->
LaneWeights at 4 lanes) and a `verilator --lint-only -Wall` check of every unit."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from pymtl3 import Bits, Component, InPort, OutPort, mk_bits
from pymtl3.passes import DefaultPassGroup

from hades import numerics as N
from hades.errors import ConfigError
from hades.rtl.logit_lanes import (K_BITS, MIN_P_BITS, X_BITS, Y_BITS, LaneBf16Scale, LaneMax,
                                   LaneWeightedResidual, LaneWeights)
from harness.units import simulate

needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")

LANES = [2, 4, 16]



def _put(port, value):
    """Drive a port with a Python int (negative values as two's complement)."""
    port @= Bits(port.nbits, int(value) & ((1 << port.nbits) - 1))


def _signed(bits) -> int:
    return bits.int()


# ---------------------------------------------------------------------------------------
# LaneBf16Scale
# ---------------------------------------------------------------------------------------

def _scale_expected(bits: np.ndarray, k: int):
    """numerics applied lane by lane: (masked, invalid, x, y); x = y = 0 on masked and
    invalid lanes (the unit's convention; decode_bf16 refuses a row with invalid lanes)."""
    b = np.asarray(bits, np.uint16)
    invalid = ((b & 0x7F80) == 0x7F80) & (b != N.BF16_NEG_INF)
    safe = np.where(invalid, np.uint16(0), b).astype(np.uint16)
    x, masked = N.decode_bf16(safe)
    y = N.scale_logits(x, k)
    return masked, invalid, x, np.where(masked | invalid, 0, y)


def _check_scale(unit, bits, k):
    for i, v in enumerate(bits):
        _put(unit.bits[i], int(v))
    _put(unit.k, k)
    unit.sim_eval_combinational()
    masked, invalid, x, y = _scale_expected(bits, k)
    for i in range(len(bits)):
        got = (int(unit.masked[i]), int(unit.invalid[i]), _signed(unit.x[i]), _signed(unit.y[i]))
        want = (int(masked[i]), int(invalid[i]), int(x[i]), int(y[i]))
        assert got == want, f"lane {i}: bf16 0x{int(bits[i]):04x}, k = {k}: got {got}, want {want}"


def _random_bf16(rng, n):
    """Half uniform over all patterns, half with exponents near the interesting range
    (116..145: rounding to 0, ties, exact shifts, saturation)."""
    uniform = rng.integers(0, 1 << 16, n)
    near = (rng.integers(0, 2, n) << 15) | (rng.integers(116, 146, n) << 7) | rng.integers(0, 128, n)
    return np.where(rng.random(n) < 0.5, uniform, near).astype(np.uint16)


@pytest.mark.parametrize("nlanes", LANES)
def test_bf16_scale_random_matches_numerics(nlanes):
    rng = np.random.default_rng(1000 + nlanes)
    unit = simulate(LaneBf16Scale(nlanes))
    for _ in range(max(40, 800 // nlanes)):
        k = int(rng.choice([1, N.INV_TEMP_MAX, 94548, int(rng.integers(1, 1 << K_BITS))]))
        _check_scale(unit, _random_bf16(rng, nlanes), k)


def test_bf16_scale_every_pattern_in_the_finite_exponent_window():
    """Every pattern with exponent 0 or 110..150 (all rounding and shift cases; beyond 150
    everything saturates like 150, below 110 everything is 0 like 110), both signs."""
    unit = simulate(LaneBf16Scale(16))
    pats = np.array([s << 15 | e << 7 | f for s in (0, 1) for e in [0] + list(range(110, 151))
                     for f in range(128)], np.uint16)
    rng = np.random.default_rng(7)
    for j in range(0, len(pats), 16):
        _check_scale(unit, pats[j:j + 16], int(rng.integers(1, 1 << K_BITS)))


BF16_EDGES = {
    "+0": 0x0000, "-0": 0x8000, "min subnormal": 0x0001, "-max subnormal": 0x807F,
    "min normal": 0x0080, "max finite": 0x7F7F, "-max finite": 0xFF7F,
    "-inf (mask)": 0xFF80, "+inf": 0x7F80, "qNaN": 0x7FC0, "-qNaN": 0xFFC0, "sNaN": 0x7F81,
    "2^-9 (tie to 0)": 0x3B00, "3*2^-9 (tie to 2)": 0x3BC0, "5*2^-9 (tie to 2)": 0x3C20,
    "7*2^-9 (tie to 4)": 0x3C60, "-3*2^-9 (tie to -2)": 0xBBC0, "-5*2^-9": 0xBC20,
    "just above 2^-9": 0x3B01, "1": 0x3F80, "-1": 0xBF80,
    "2^15 (saturates)": 0x4700, "-2^15 (exactly -2^23)": 0xC700,
    "largest below 2^15": 0x46FF, "-largest below 2^15": 0xC6FF, "2^16": 0x4780,
}


@pytest.mark.parametrize("k", [1, 94548, N.INV_TEMP_MAX], ids=["k=1", "k=T1", "k=2^24-1"])
def test_bf16_scale_edge_cases(k):
    unit = simulate(LaneBf16Scale(2))
    for name, a in BF16_EDGES.items():
        for b in (0x0000, 0xFF80, 0xC700, 0x4700):
            _check_scale(unit, np.array([a, b], np.uint16), k)
    # spot values straight from NUMERICS.md section 13
    _check_scale(unit, np.array([0x3BC0, 0xC700], np.uint16), k)
    assert _signed(unit.x[0]) == 2 and _signed(unit.x[1]) == -(1 << 23)
    _check_scale(unit, np.array([0x4700, 0x3B00], np.uint16), k)
    assert _signed(unit.x[0]) == (1 << 23) - 1 and _signed(unit.x[1]) == 0
    # the extremes of x * k at k = 2^24 - 1 reach (not cross) the 48-bit bound
    if k == N.INV_TEMP_MAX:
        assert _signed(unit.y[0]) == (((1 << 23) - 1) * k) >> 16


# ---------------------------------------------------------------------------------------
# LaneMax
# ---------------------------------------------------------------------------------------

def _check_max(unit, vals, masked):
    for i, (v, mk) in enumerate(zip(vals, masked)):
        _put(unit.val[i], int(v))
        _put(unit.masked[i], int(mk))
    unit.sim_eval_combinational()
    live = ~np.asarray(masked, bool)
    if live.any():
        v = np.where(live, np.asarray(vals, np.int64), np.iinfo(np.int64).min)
        want = (int(v.max()), int(np.argmax(v)), 1)
    else:
        want = (0, 0, 0)
    got = (_signed(unit.max_val), int(unit.max_idx), int(unit.any_live))
    assert got == want, f"vals {list(vals)}, masked {list(masked)}: got {got}, want {want}"


@pytest.mark.parametrize("nlanes", LANES)
def test_lane_max_random_matches_numpy(nlanes):
    rng = np.random.default_rng(2000 + nlanes)
    unit = simulate(LaneMax(nlanes, Y_BITS))
    lo, hi = -(1 << (Y_BITS - 1)), (1 << (Y_BITS - 1)) - 1
    for n in range(max(40, 600 // nlanes)):
        if n % 3 == 0:   # few distinct values: ties
            vals = rng.choice([lo, -1, 0, 1, hi], nlanes)
        else:
            vals = rng.integers(lo, hi + 1, nlanes)
        masked = rng.random(nlanes) < rng.choice([0.0, 0.5, 0.9, 1.0])
        _check_max(unit, vals, masked)


@pytest.mark.parametrize("nlanes", LANES)
def test_lane_max_on_x_is_the_greedy_argmax(nlanes):
    """On decoded x, max_idx is numerics.logit_argmax of the word (ties to the lowest lane:
    distinct bf16 values that round or clamp to the same x)."""
    rng = np.random.default_rng(3000 + nlanes)
    scale = simulate(LaneBf16Scale(nlanes))
    unit = simulate(LaneMax(nlanes, X_BITS))
    for _ in range(max(30, 400 // nlanes)):
        pool = np.array([0xFF80, 0x4700, 0x4780, 0x7F7F, 0x3B00, 0x0000, 0x8000, 0xC700,
                         int(rng.integers(0, 0x7F80)), int(rng.integers(0x8000, 0xFF80))], np.uint16)
        bits = rng.choice(pool, nlanes).astype(np.uint16)
        if (bits == N.BF16_NEG_INF).all():
            bits[int(rng.integers(nlanes))] = 0x3F80
        for i, v in enumerate(bits):
            _put(scale.bits[i], int(v))
        _put(scale.k, 1)
        scale.sim_eval_combinational()
        for i in range(nlanes):
            unit.val[i] @= scale.x[i]
            unit.masked[i] @= scale.masked[i]
        unit.sim_eval_combinational()
        assert int(unit.max_idx) == N.logit_argmax(bits)
        x, masked = N.decode_bf16(bits)
        assert _signed(unit.max_val) == int(x[~masked].max())


def test_lane_max_edges():
    unit = simulate(LaneMax(4, Y_BITS))
    lo, hi = -(1 << 31), (1 << 31) - 1
    _check_max(unit, [5, 6, 7, 8], [1, 1, 1, 1])            # all masked: any_live = 0
    _check_max(unit, [lo, lo, lo, lo], [0, 0, 0, 0])        # the minimum, ties to lane 0
    _check_max(unit, [hi, lo, hi, -1], [1, 0, 0, 0])        # a masked maximum is ignored
    _check_max(unit, [lo, -1, 0, hi], [0, 0, 0, 1])
    _check_max(unit, [-1, lo, -2, -1], [1, 0, 0, 0])        # negatives only


# ---------------------------------------------------------------------------------------
# LaneWeights
# ---------------------------------------------------------------------------------------

def _weights_expected(m, y, masked, min_p, W):
    """weights_from_scaled and apply_filters on the word plus one extra live entry y = m
    (so that the row maximum is m, as for a word in the middle of a longer row)."""
    yy = np.append(np.asarray(y, np.int64), m)
    mm = np.append(np.asarray(masked, bool), False)
    w = N.weights_from_scaled(yy, mm, W)
    kept = N.apply_filters(w, (1, 0, N.FRACTION_ONE, int(min_p)))
    return w[:-1], kept[:-1]


def _check_weights(unit, m, y, masked, min_p, W):
    _put(unit.m, m)
    _put(unit.min_p, min_p)
    for i, (v, mk) in enumerate(zip(y, masked)):
        _put(unit.y[i], int(v))
        _put(unit.masked[i], int(mk))
    unit.sim_eval_combinational()
    w, kept = _weights_expected(m, y, masked, min_p, W)
    got_w = [int(unit.w[i]) for i in range(len(y))]
    got_kept = [int(unit.kept[i]) for i in range(len(y))]
    ctx = f"m {m}, y {list(y)}, masked {list(masked)}, min_p {min_p}, W {W}"
    assert got_w == [int(v) for v in w], ctx
    assert got_kept == [int(v) for v in kept], ctx
    # keep is the raw test w * 2^16 >= min_p * (2^W - 1) (masked lanes: w = 0)
    for i in range(len(y)):
        assert int(unit.keep[i]) == int((int(w[i]) << 16) >= min_p * ((1 << W) - 1)), ctx
    assert int(unit.total) == int(kept.sum()), ctx


def _random_word(rng, nlanes, W):
    """y spread over a few octaves below a random maximum, some beyond W octaves, some masked."""
    m = int(rng.integers(-(1 << 31), 1 << 31))
    span = int(rng.choice([256, 256 * W, 256 * (W + 4), 1 << 32]))
    d = rng.integers(0, span, nlanes)
    d[rng.random(nlanes) < 0.2] = 0                       # ties with the maximum
    y = np.maximum(m - d, -(1 << 31))
    masked = rng.random(nlanes) < rng.choice([0.0, 0.3, 1.0])
    # masked lanes carry arbitrary y (the decoder gives 0; anything must give w = 0)
    y = np.where(masked, rng.integers(-(1 << 31), 1 << 31, nlanes), y)
    if rng.random() < 0.5:                                  # the word holds the row maximum
        i = int(rng.integers(nlanes))
        y[i], masked[i] = m, False
    return m, y, masked


@pytest.mark.parametrize("nlanes,W", [(2, 16), (4, 16), (16, 16), (4, 8), (4, 24), (2, 2)])
def test_lane_weights_random_matches_numerics(nlanes, W):
    rng = np.random.default_rng(4000 + 100 * nlanes + W)
    unit = simulate(LaneWeights(nlanes, W))
    for _ in range(max(40, 600 // nlanes)):
        m, y, masked = _random_word(rng, nlanes, W)
        min_p = int(rng.choice([0, N.FRACTION_ONE, 3277, int(rng.integers(0, N.FRACTION_ONE + 1))]))
        _check_weights(unit, m, y, masked, min_p, W)


@pytest.mark.parametrize("W", [16, 24])
def test_lane_weights_edges(W):
    unit = simulate(LaneWeights(4, W))
    E = N.exp2_table(W)
    lo, hi = -(1 << 31), (1 << 31) - 1
    cases = [
        (0, [0, -1, -255, -256], [0, 0, 0, 0]),                                # E[0], E[1], E[255], E[0] >> 1
        (0, [-(256 * W), -(256 * W) + 1, -(256 * W) - 1, 0], [0, 0, 0, 0]),     # exactly W octaves -> 0
        (hi, [lo, lo + 1, hi, hi - 256 * (W - 1)], [0, 0, 0, 0]),               # d = 2^32 - 1
        (lo, [lo, lo, lo, lo], [0, 1, 0, 1]),                                  # ties at the minimum
        (5, [5, 5, 5, 5], [1, 1, 1, 1]),                                       # all masked: w = 0, Z = 0
        (-7, [100, 3, -7, -8], [1, 1, 0, 0]),                                  # masked lanes above m
    ]
    for m, y, masked in cases:
        for min_p in (0, 1, 3277, 32768, N.FRACTION_ONE - 1, N.FRACTION_ONE):
            _check_weights(unit, m, y, masked, min_p, W)
    _check_weights(unit, 0, [0, -255, -(256 * W) + 255, -(256 * (W - 1))], [0, 0, 0, 0], 0, W)
    assert int(unit.w[0]) == (1 << W) - 1 == int(E[0])       # w_max = E[0] = 2^W - 1
    assert int(unit.w[1]) == int(E[255])
    assert int(unit.w[2]) == int(E[255]) >> (W - 1)
    assert int(unit.w[3]) == int(E[0]) >> (W - 1) == 1
    # min_p = 2^16 keeps exactly the ties of the maximum
    _check_weights(unit, 0, [0, -1, 0, -256], [0, 0, 0, 0], N.FRACTION_ONE, W)
    assert [int(unit.keep[i]) for i in range(4)] == [1, 0, 1, 0]


# ---------------------------------------------------------------------------------------
# LaneWeightedResidual
# ---------------------------------------------------------------------------------------

def _check_residual(unit, q, zq, p, zp):
    for i in range(len(q)):
        _put(unit.q[i], int(q[i]))
        _put(unit.p[i], int(p[i]))
    _put(unit.zq, zq)
    _put(unit.zp, zp)
    unit.sim_eval_combinational()
    want = N.weighted_residual_weights(np.asarray(q), zq, np.asarray(p), zp)
    got = [int(unit.r[i]) for i in range(len(q))]
    ctx = f"q {list(q)} zq {zq} p {list(p)} zp {zp}"
    assert got == [int(v) for v in want], ctx
    assert int(unit.total) == sum(int(v) for v in want), ctx


@pytest.mark.parametrize("nlanes", LANES)
def test_weighted_residual_random_matches_numerics(nlanes):
    rng = np.random.default_rng(5000 + nlanes)
    unit = simulate(LaneWeightedResidual(nlanes, 16, 32))
    top = (1 << 16) - 1
    for n in range(max(40, 600 // nlanes)):
        q = rng.integers(0, top + 1, nlanes)
        p = rng.integers(0, top + 1, nlanes) if n % 4 else q.copy()    # equal rows: r = 0
        if n % 5 == 0:
            q[rng.random(nlanes) < 0.5] = 0
        zq = int(rng.choice([1, (1 << 32) - 1, int(rng.integers(1, 1 << 32))]))
        zp = int(rng.choice([1, (1 << 32) - 1, int(rng.integers(1, 1 << 32))]))
        _check_residual(unit, q, zq, p, zp)


def test_weighted_residual_edges():
    unit = simulate(LaneWeightedResidual(4, 16, 32))
    top, zmax = (1 << 16) - 1, (1 << 32) - 1
    _check_residual(unit, [top] * 4, zmax, [0] * 4, zmax)        # the widest products (48 bits)
    assert int(unit.r[0]) == top * zmax
    _check_residual(unit, [0] * 4, zmax, [top] * 4, zmax)        # all negative -> 0
    _check_residual(unit, [1, 0, top, 5], 1, [0, 1, top, 5], 1)  # one-hot style, ZP = ZQ = 1
    _check_residual(unit, [3, 3, 3, 3], 7, [7, 7, 7, 7], 3)      # q zp == p zq exactly -> 0


# ---------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: LaneBf16Scale(1), lambda: LaneMax(4, 1), lambda: LaneWeights(4, 1),
    lambda: LaneWeights(4, 25), lambda: LaneWeights(4, 16, sum_bits=17),
    lambda: LaneWeightedResidual(4, 16, 8), lambda: LaneWeightedResidual(4, 16, 32, sum_bits=48),
    lambda: LaneWeightedResidual(2.0),
], ids=["1 lane", "1-bit max", "W=1", "W=25", "sum too narrow", "z_bits < W", "residual sum too narrow",
        "float lanes"])
def test_units_refuse_bad_parameters(make):
    with pytest.raises(ConfigError):
        make().elaborate()


# ---------------------------------------------------------------------------------------
# Verilog: one Verilator-imported chain and the lint of every unit
# ---------------------------------------------------------------------------------------

class LogitWordChain(Component):
    """Test-only wrapper: LaneBf16Scale feeding LaneWeights (m and min_p from outside)."""

    def construct(s, nlanes, weight_bits):
        s.bits = [InPort(16) for _ in range(nlanes)]
        s.k = InPort(K_BITS)
        s.m = InPort(Y_BITS)
        s.min_p = InPort(MIN_P_BITS)
        s.invalid = [OutPort() for _ in range(nlanes)]
        s.y = [OutPort(Y_BITS) for _ in range(nlanes)]
        s.kept = [OutPort(weight_bits) for _ in range(nlanes)]
        s.total = OutPort(mk_bits(weight_bits + 2))
        s.scale = LaneBf16Scale(nlanes)
        s.weights = LaneWeights(nlanes, weight_bits)
        s.weights.m //= s.m
        s.weights.min_p //= s.min_p
        s.scale.k //= s.k
        for i in range(nlanes):
            s.scale.bits[i] //= s.bits[i]
            s.weights.y[i] //= s.scale.y[i]
            s.weights.masked[i] //= s.scale.masked[i]
            s.invalid[i] //= s.scale.invalid[i]
            s.y[i] //= s.scale.y[i]
            s.kept[i] //= s.weights.kept[i]
        s.total //= s.weights.total


@needs_verilator
def test_verilator_import_scale_then_weights_at_4_lanes():
    from hades.sim.run import verilate
    W, L = 16, 4
    top = LogitWordChain(L, W)
    top.elaborate()
    top = verilate(top, top, f"LogitWordChainL{L}W{W}", "verilator_logit_units")
    top.apply(DefaultPassGroup(linetrace=False))
    top.sim_reset()
    # every pattern of the exponent window at k = 2^16, where y = x: the decoder in Verilog
    pats = np.array([s << 15 | e << 7 | f for s in (0, 1) for e in [0] + list(range(110, 151)) + [255]
                     for f in range(128)], np.uint16)
    _put(top.m, 0)
    _put(top.min_p, 0)
    _put(top.k, 1 << 16)
    for j in range(0, len(pats), L):
        word = pats[j:j + L]
        for i in range(L):
            _put(top.bits[i], int(word[i]))
        top.sim_eval_combinational()
        masked, invalid, x, y = _scale_expected(word, 1 << 16)
        assert [_signed(top.y[i]) for i in range(L)] == [int(v) for v in x]
        assert [int(top.invalid[i]) for i in range(L)] == [int(v) for v in invalid]
    rng = np.random.default_rng(6000)
    for n in range(300):
        bits = _random_bf16(rng, L)
        if n % 7 == 0:
            bits[int(rng.integers(L))] = rng.choice([0xFF80, 0x7FC0, 0x7F80, 0x4700, 0xC700, 0x0001])
        k = int(rng.choice([1, N.INV_TEMP_MAX, int(rng.integers(1, 1 << K_BITS))]))
        min_p = int(rng.choice([0, 3277, N.FRACTION_ONE, int(rng.integers(0, N.FRACTION_ONE + 1))]))
        masked, invalid, x, y = _scale_expected(bits, k)
        live = ~(masked | invalid)
        m = int(y[live].max()) if live.any() else 0
        m = min(m + int(rng.choice([0, 0, 300, 256 * W])), (1 << 31) - 1)
        for i in range(L):
            _put(top.bits[i], int(bits[i]))
        _put(top.k, k)
        _put(top.m, m)
        _put(top.min_p, min_p)
        top.sim_eval_combinational()
        assert [int(top.invalid[i]) for i in range(L)] == [int(v) for v in invalid]
        assert [_signed(top.y[i]) for i in range(L)] == [int(v) for v in y]
        if invalid.any():
            continue   # an invalid lane invalidates the row; its weights are never used
        _, kept = _weights_expected(m, y, masked, min_p, W)
        assert [int(top.kept[i]) for i in range(L)] == [int(v) for v in kept]
        assert int(top.total) == int(kept.sum())


LINT_UNITS = {
    "LaneBf16ScaleL4": lambda: LaneBf16Scale(4),
    "LaneMaxL4N32": lambda: LaneMax(4, Y_BITS),
    "LaneWeightsL4W16": lambda: LaneWeights(4, 16),
    "LaneWeightedResidualL4W16Z32": lambda: LaneWeightedResidual(4, 16, 32),
    "LaneBf16ScaleL16": lambda: LaneBf16Scale(16),
    "LaneMaxL16N24": lambda: LaneMax(16, X_BITS),
    "LaneWeightsL16W24": lambda: LaneWeights(16, 24, sum_bits=40),
    "LaneWeightedResidualL16W16Z32S64": lambda: LaneWeightedResidual(16, 16, 32, sum_bits=64),
}


@needs_verilator
@pytest.mark.parametrize("name", list(LINT_UNITS))
def test_logit_units_lint_clean(tmp_path, name):
    from pymtl3.passes.backends.verilog import VerilogTranslationPass

    from hades.paths import in_dir
    from hades.rtl.emit import lint_verilog
    top = LINT_UNITS[name]()
    top.elaborate()
    top.set_metadata(VerilogTranslationPass.enable, True)
    top.set_metadata(VerilogTranslationPass.explicit_module_name, name)
    with in_dir(tmp_path):
        top.apply(VerilogTranslationPass())
    path = tmp_path / top.get_metadata(VerilogTranslationPass.translated_filename)
    assert f"module {name}" in path.read_text()
    lint_verilog(path, name)   # raises on any warning outside the documented waivers
