"""The lane units (hades/rtl/lanes.py) and the SRAM (hades/rtl/sram.py) on their own.

Each unit runs in the pure-Python PyMTL3 simulator at several lane counts and widths, fed
seeded random inputs, and every output is compared with a numpy reference written from
the unit's documented behaviour (not from its structure). Every test also checks that its
inputs reached the cases that matter (ties, crossings at a boundary, the write-first
bypass, ...), so a reference that always agrees trivially would fail. One small bench with
all of them goes through pymtl3's Verilog translation and Verilator import as well.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from pymtl3 import *

from hades.config import clog2
from hades.rtl.lanes import (Add, AddTree, LaneArgMax, LaneCrossing, LaneResidual, LaneSplit, MaskedAny,
                             MaxPair, OneHotEncoder, PrefixSum)
from hades.rtl.sram import SramR1W1
from harness.units import simulate

LANES = (2, 4, 16)
ANY_LANES = (2, 3, 4, 5, 16)    # the trees are built for any lane count, not only powers of two
VECTORS = 120



def _drive(ports, values):
    for port, v in zip(ports, values):
        port @= int(v)


def _rng(*key):
    return np.random.default_rng([7, *key])


# ---- small building blocks ---------------------------------------------------------------

def test_add_wraps_at_its_width():
    rng = _rng(0)
    m = simulate(Add(6))
    wrapped = 0
    for a, b in rng.integers(0, 64, (VECTORS, 2)):
        _drive([m.a, m.b], [a, b])
        m.sim_eval_combinational()
        assert int(m.out) == (a + b) % 64
        wrapped += a + b >= 64
    assert 0 < wrapped < VECTORS


@pytest.mark.parametrize("nlanes", ANY_LANES)
@pytest.mark.parametrize("nbits", [5, 12])
def test_prefix_sum(nlanes, nbits):
    rng = _rng(1, nlanes, nbits)
    m = simulate(PrefixSum(nlanes, nbits))
    wrapped = 0
    for _ in range(VECTORS):
        x = rng.integers(0, 1 << nbits, nlanes)
        _drive(m.in_, x)
        m.sim_eval_combinational()
        ref = np.cumsum(x) % (1 << nbits)
        assert [int(o) for o in m.out] == ref.tolist()
        wrapped += np.cumsum(x)[-1] >= 1 << nbits
    assert wrapped > 0   # the reference's modulo mattered


@pytest.mark.parametrize("nlanes", ANY_LANES)
@pytest.mark.parametrize("nbits", [5, 12])
def test_add_tree(nlanes, nbits):
    rng = _rng(2, nlanes, nbits)
    m = simulate(AddTree(nlanes, nbits))
    for _ in range(VECTORS):
        x = rng.integers(0, 1 << nbits, nlanes)
        _drive(m.in_, x)
        m.sim_eval_combinational()
        assert int(m.out) == int(x.sum()) % (1 << nbits)


def test_max_pair_keeps_a_on_ties():
    rng = _rng(3)
    m = simulate(MaxPair(4, 3))
    ties = 0
    for va, vb, ia, ib in zip(rng.integers(0, 16, VECTORS), rng.integers(0, 16, VECTORS),
                              rng.integers(0, 8, VECTORS), rng.integers(0, 8, VECTORS)):
        _drive([m.va, m.vb, m.ia, m.ib], [va, vb, ia, ib])
        m.sim_eval_combinational()
        ref = (vb, ib) if vb > va else (va, ia)
        assert (int(m.v), int(m.i)) == ref
        ties += va == vb and ia != ib
    assert ties > 0


@pytest.mark.parametrize("nbits", [1, 4, 16])
def test_masked_any(nbits):
    rng = _rng(4, nbits)
    mask = int(rng.integers(1, 1 << nbits))
    m = simulate(MaskedAny(nbits, mask))
    seen = set()
    for _ in range(VECTORS):
        x = sum(1 << b for b in range(nbits) if rng.random() < 0.15)   # sparse: both outcomes occur
        m.in_ @= x
        m.sim_eval_combinational()
        ref = x & mask != 0
        assert int(m.out) == ref
        seen.add(ref)
    assert seen == {False, True}


@pytest.mark.parametrize("nlanes", ANY_LANES)
def test_one_hot_encoder(nlanes):
    m = simulate(OneHotEncoder(nlanes))
    for k in range(nlanes):
        m.in_ @= 1 << k
        m.sim_eval_combinational()
        assert int(m.out) == k
    m.in_ @= 0
    m.sim_eval_combinational()
    assert int(m.out) == 0   # documented: zero when no bit is set


# ---- lane units --------------------------------------------------------------------------

def check_split(m, word, lanes, nlanes, nbits, rng):
    for _ in range(VECTORS):
        parts = rng.integers(0, 1 << nbits, nlanes)
        word @= sum(int(v) << (i * nbits) for i, v in enumerate(parts))
        m.sim_eval_combinational()
        assert [int(x) for x in lanes] == parts.tolist()


def check_residual(m, q, p, word, total, nlanes, nbits, sum_bits, rng):
    signs = set()
    for k in range(VECTORS):
        qv = rng.integers(0, 1 << nbits, nlanes)
        pv = rng.integers(0, 1 << nbits, nlanes)
        if k % 3 == 0:   # near-equal rows: the clamp at zero and exact equality
            pv = np.clip(qv + rng.integers(-1, 2, nlanes), 0, (1 << nbits) - 1)
        _drive(q, qv)
        _drive(p, pv)
        m.sim_eval_combinational()
        r = np.maximum(qv - pv, 0)
        assert [(int(word) >> (i * nbits)) & ((1 << nbits) - 1) for i in range(nlanes)] == r.tolist()
        assert int(total) == int(r.sum()) % (1 << sum_bits)
        signs |= set(np.sign(qv - pv).tolist())
    assert signs == {-1, 0, 1}   # q < p (clamped), q == p and q > p all occurred


def check_argmax(m, lane, max_val, max_idx, nlanes, nbits, rng):
    tie_mattered = 0
    for k in range(VECTORS):
        hi = 4 if k % 2 else 1 << nbits   # a narrow range gives ties at the maximum
        x = rng.integers(0, hi, nlanes)
        _drive(lane, x)
        m.sim_eval_combinational()
        first = int(np.argmax(x))          # numpy: the first (lowest) index of the maximum
        assert (int(max_val), int(max_idx)) == (int(x.max()), first)
        tie_mattered += first != nlanes - 1 - int(np.argmax(x[::-1]))
    assert tie_mattered > 0


def crossing_inputs(rng, nlanes, nbits, sum_bits, row_like):
    """Lanes, base and threshold without wrap-around of base + the word's sum (the unit's
    operating range: running sums of a valid row stay below 2^sum_bits)."""
    if row_like:   # like the verifier: a row of sum <= M = 2^W - 1, base = the earlier words
        total = int(rng.integers(0, 1 << nbits))
        cuts = np.sort(rng.integers(0, total + 1, nlanes + 1))
        cuts[-1] = total
        base = int(cuts[0])
        x = np.diff(cuts)
    else:
        x = rng.integers(0, 1 << nbits, nlanes)
        base = int(rng.integers(0, (1 << sum_bits) - int(x.sum())))
    prefix = base + np.cumsum(x)
    assert prefix[-1] < 1 << sum_bits
    pick = rng.integers(4)
    if pick == 0:      # exactly at a prefix sum: '>' must not cross there
        t = int(prefix[rng.integers(nlanes)])
    elif pick == 1:    # one below: crosses exactly there
        t = max(int(prefix[rng.integers(nlanes)]) - 1, 0)
    else:
        t = int(rng.integers(0, prefix[-1] + 3))
    return x, base, min(t, (1 << sum_bits) - 1), prefix


def check_crossing(m, lane, base, thresh, found, index, next_base, nlanes, nbits, sum_bits, row_like, rng):
    indices, founds = set(), set()
    for _ in range(VECTORS):
        x, b, t, prefix = crossing_inputs(rng, nlanes, nbits, sum_bits, row_like)
        _drive(lane, x)
        base @= b
        thresh @= t
        m.sim_eval_combinational()
        above = prefix > t
        ref_found = bool(above[-1])
        ref_index = int(np.flatnonzero(above)[0]) if above.any() else 0
        assert (int(found), int(index), int(next_base)) == (ref_found, ref_index, int(prefix[-1]))
        founds.add(ref_found)
        if ref_found:
            indices.add(ref_index)
    assert founds == {False, True}
    assert len(indices) > 1


@pytest.mark.parametrize("nlanes", LANES)
@pytest.mark.parametrize("nbits", [4, 16])
def test_lane_split(nlanes, nbits):
    m = simulate(LaneSplit(nlanes, nbits))
    check_split(m, m.word, m.lane, nlanes, nbits, _rng(10, nlanes, nbits))


@pytest.mark.parametrize("nlanes", LANES)
@pytest.mark.parametrize("nbits, sum_bits", [(4, 5), (8, 9), (16, 17), (8, 14)])
def test_lane_residual(nlanes, nbits, sum_bits):
    m = simulate(LaneResidual(nlanes, nbits, sum_bits))
    check_residual(m, m.q, m.p, m.word, m.total, nlanes, nbits, sum_bits, _rng(11, nlanes, nbits, sum_bits))


@pytest.mark.parametrize("nlanes", LANES)
@pytest.mark.parametrize("nbits", [3, 16])
def test_lane_argmax(nlanes, nbits):
    m = simulate(LaneArgMax(nlanes, nbits))
    check_argmax(m, m.lane, m.max_val, m.max_idx, nlanes, nbits, _rng(12, nlanes, nbits))


@pytest.mark.parametrize("nlanes", LANES)
@pytest.mark.parametrize("nbits, row_like", [(4, True), (16, True), (8, False)])
def test_lane_crossing(nlanes, nbits, row_like):
    sum_bits = nbits + 1 if row_like else nbits + clog2(nlanes) + 1
    m = simulate(LaneCrossing(nlanes, nbits, sum_bits))
    check_crossing(m, m.lane, m.base, m.thresh, m.found, m.index, m.next_base, nlanes, nbits, sum_bits,
                   row_like, _rng(13, nlanes, nbits, int(row_like)))


# ---- SRAM --------------------------------------------------------------------------------

def check_sram(m, nwords, nbits, rng, cycles=300):
    """Reference: rdata is the word at raddr one cycle later; a write to raddr in the same
    cycle is forwarded (write-first); addresses >= nwords read zero and drop their writes."""
    addr_bits = clog2(nwords) + 1
    mem = {}
    seen = {"bypass": 0, "out_of_range_read": 0, "dropped_write": 0, "read_written": 0}
    expect = None
    for cyc in range(nwords + cycles):
        if cyc < nwords:   # fill every word first: the SRAM itself starts undefined
            raddr, wen, waddr = int(rng.integers(0, 1 << addr_bits)), 1, cyc
        else:
            raddr = int(rng.integers(0, 1 << addr_bits))
            wen = int(rng.random() < 0.6)
            waddr = raddr if rng.random() < 0.25 else int(rng.integers(0, 1 << addr_bits))
        wdata = int.from_bytes(rng.bytes(8), "little") & ((1 << nbits) - 1)
        _drive([m.raddr, m.wen, m.waddr, m.wdata], [raddr, wen, waddr, wdata])
        m.sim_eval_combinational()
        if expect is not None:
            assert int(m.rdata) == expect, f"cycle {cyc}"
        if wen and waddr == raddr:
            expect = wdata
            seen["bypass"] += cyc >= nwords
        elif raddr < nwords:
            expect = mem[raddr] if raddr in mem else None
            seen["read_written"] += raddr in mem and expect != 0
        else:
            expect = 0
            seen["out_of_range_read"] += 1
        if wen and waddr < nwords:
            mem[waddr] = wdata
        elif wen:
            seen["dropped_write"] += 1
        m.sim_tick()
    assert all(seen.values()), seen


@pytest.mark.parametrize("nwords, nbits", [(5, 8), (16, 64), (1, 3)])
def test_sram(nwords, nbits):
    m = simulate(SramR1W1(nwords, nbits))
    check_sram(m, nwords, nbits, _rng(20, nwords, nbits))


# ---- all of them through Verilog and Verilator ------------------------------------------

BENCH_LANES, BENCH_BITS, BENCH_SUM, BENCH_WORDS, BENCH_WORD_BITS = 4, 8, 9, 5, 32


class LaneUnitsBench(Component):
    """Every lane unit and the SRAM side by side, their ports brought out under one top, so
    a single Verilator build covers them all."""

    def construct(s, nlanes, nbits, sum_bits, nwords, word_bits):
        s.split = LaneSplit(nlanes, nbits)
        s.residual = LaneResidual(nlanes, nbits, sum_bits)
        s.argmax = LaneArgMax(nlanes, nbits)
        s.crossing = LaneCrossing(nlanes, nbits, sum_bits)
        s.sram = SramR1W1(nwords, word_bits)

        s.split_word = InPort(nlanes * nbits)
        s.split_lane = [OutPort(nbits) for _ in range(nlanes)]
        s.res_q = [InPort(nbits) for _ in range(nlanes)]
        s.res_p = [InPort(nbits) for _ in range(nlanes)]
        s.res_word = OutPort(nlanes * nbits)
        s.res_total = OutPort(sum_bits)
        s.am_lane = [InPort(nbits) for _ in range(nlanes)]
        s.am_val = OutPort(nbits)
        s.am_idx = OutPort(clog2(nlanes))
        s.cr_lane = [InPort(nbits) for _ in range(nlanes)]
        s.cr_base = InPort(sum_bits)
        s.cr_thresh = InPort(sum_bits)
        s.cr_found = OutPort()
        s.cr_index = OutPort(clog2(nlanes))
        s.cr_next = OutPort(sum_bits)
        s.raddr = InPort(clog2(nwords) + 1)
        s.rdata = OutPort(word_bits)
        s.wen = InPort()
        s.waddr = InPort(clog2(nwords) + 1)
        s.wdata = InPort(word_bits)

        s.split.word //= s.split_word
        for i in range(nlanes):
            s.split_lane[i] //= s.split.lane[i]
            s.residual.q[i] //= s.res_q[i]
            s.residual.p[i] //= s.res_p[i]
            s.argmax.lane[i] //= s.am_lane[i]
            s.crossing.lane[i] //= s.cr_lane[i]
        s.res_word //= s.residual.word
        s.res_total //= s.residual.total
        s.am_val //= s.argmax.max_val
        s.am_idx //= s.argmax.max_idx
        s.crossing.base //= s.cr_base
        s.crossing.thresh //= s.cr_thresh
        s.cr_found //= s.crossing.found
        s.cr_index //= s.crossing.index
        s.cr_next //= s.crossing.next_base
        s.sram.raddr //= s.raddr
        s.sram.wen //= s.wen
        s.sram.waddr //= s.waddr
        s.sram.wdata //= s.wdata
        s.rdata //= s.sram.rdata


def _verilated_bench():
    from hades.sim.run import verilate
    m = LaneUnitsBench(BENCH_LANES, BENCH_BITS, BENCH_SUM, BENCH_WORDS, BENCH_WORD_BITS)
    m.elaborate()
    return verilate(m, m, f"LaneUnitsBench_L{BENCH_LANES}", "units")


@pytest.mark.parametrize("backend", [
    "python",
    pytest.param("verilator", marks=pytest.mark.skipif(shutil.which("verilator") is None,
                                                      reason="verilator is not installed")),
])
def test_lane_units_bench(backend):
    if backend == "python":
        m = LaneUnitsBench(BENCH_LANES, BENCH_BITS, BENCH_SUM, BENCH_WORDS, BENCH_WORD_BITS)
    else:
        m = _verilated_bench()
    m = simulate(m)
    L, W, S = BENCH_LANES, BENCH_BITS, BENCH_SUM
    rng = _rng(30)
    try:
        check_split(m, m.split_word, m.split_lane, L, W, rng)
        check_residual(m, m.res_q, m.res_p, m.res_word, m.res_total, L, W, S, rng)
        check_argmax(m, m.am_lane, m.am_val, m.am_idx, L, W, rng)
        check_crossing(m, m.cr_lane, m.cr_base, m.cr_thresh, m.cr_found, m.cr_index, m.cr_next, L, W, S, True, rng)
        check_sram(m, BENCH_WORDS, BENCH_WORD_BITS, rng)
    finally:
        if backend == "verilator":
            m.finalize()
