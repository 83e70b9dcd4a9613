"""The top-k / top-p filter of the logit block on its own (hades/rtl/logit_filter.py): the Python
model of the select (numerics.radix_select) against section 15's sorting definition
(numerics.apply_filters) on random rows with many ties; LaneRadixBins, RadixSelect and
LaneRankKeep in the pure-Python simulator against that model, bit-exact, at several lane
counts, weight widths and radix widths (weights whose width is not a multiple of b included);
`verilator --lint-only -Wall` of each unit."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from pymtl3 import Bits

from hades import numerics as N
from hades.config import VerifierConfig
from hades.logit_protocol import LogitLayout
from hades.rtl.logit_filter import LaneRadixBins, LaneRankKeep, RadixSelect, radix_widths
from harness.units import simulate

needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")


def _put(port, value):
    port @= Bits(port.nbits, int(value) & ((1 << port.nbits) - 1))


def _tied_row(rng, V, W):
    """A row with many ties: a few distinct weights, zeros, the maximum 2^W - 1 at least once."""
    top = (1 << W) - 1
    kind = rng.integers(3)
    if kind == 0:
        w = rng.integers(0, top + 1, V)
    elif kind == 1:
        w = rng.choice(rng.integers(0, top + 1, 4), V)
    else:
        w = rng.choice([0, 1, top, top // 2, top // 2 + 1], V)
    w[rng.integers(V)] = top
    return w.astype(np.int64)


def _params(rng, V):
    top_k = int(rng.choice([0, 1, 2, 3, V - 1, V, V + 5, int(rng.integers(0, V + 2))]))
    top_p = int(rng.choice([1, 2, 1000, 30000, 58982, 65535, 65536, int(rng.integers(1, 65537))]))
    return max(top_k, 0), top_p


# ---- the model --------------------------------------------------------------------------

@pytest.mark.parametrize("radix_bits", [1, 2, 3, 4, 5])
def test_radix_select_keeps_what_the_sorting_definition_keeps(radix_bits):
    """The kept set of (tau, c) is apply_filters' on rows with many ties, for every b, W and
    parameters at the edges (top_k 1, >= V, off; top_p one unit, 1)."""
    rng = np.random.default_rng(radix_bits)
    for _ in range(600):
        V, W = int(rng.integers(1, 70)), int(rng.choice([2, 3, 5, 8, 12, 16, 24]))
        w = _tied_row(rng, V, W)
        top_k, top_p = _params(rng, V)
        cut = N.radix_select(w, top_k, top_p, W, radix_bits)
        want = N.apply_filters(w, (1, top_k, top_p, 0))
        assert np.array_equal(np.where(N.radix_keep(w, cut), w, 0), want), (w.tolist(), top_k, top_p, cut)


def test_radix_select_cuts_ties_at_both_thresholds():
    """w = (5, 9, 5, 5, 9, 5): top_k 3 keeps both 9s and the lowest-id 5 (c = 1 of four tied);
    top-p on what is left (Z' = 23): top_p just above 19/23 (t = 20) keeps the 9s and one 5; t = 18 the
    9s alone; top_p of one unit the first 9 alone (c = 1 of two tied at tau = 9)."""
    w = np.array([5, 9, 5, 5, 9, 5])
    assert N.radix_select(w, 3, 65536, 4) == (5, 1)
    assert N.radix_select(w, 3, -(-19 * 65536 // 23), 4) == (5, 1)
    assert N.radix_select(w, 3, 18 * 65536 // 23, 4) == (9, 2)
    assert N.radix_select(w, 0, 1, 4) == (9, 1)
    assert N.radix_select(w, 6, 65536, 4) == (0, 6) and N.radix_select(w, 0, 65536, 4) == (0, 6)


# ---- LaneRadixBins -------------------------------------------------------------------------

def test_radix_bins_count_and_sum_the_matching_digits():
    rng = np.random.default_rng(1)
    L, W, B = 4, 12, 5
    lay = LogitLayout(VerifierConfig(lanes=L, vocab_max=64, gamma_max=1, prob_bits=W), radix_bits=B)
    PW, SHB, _, _ = radix_widths(lay)
    unit = simulate(LaneRadixBins(L, W, B, PW, SHB))
    levels = lay.filter_levels
    for _ in range(200):
        w = rng.integers(0, 1 << W, L)
        w[rng.random(L) < 0.5] = w[0]
        live = rng.random(L) < 0.8
        level = int(rng.integers(levels))
        shift = (levels - 1 - level) * B
        prefix = (int(rng.choice(w)) >> (shift + B)) << (shift + B)
        mask = ((1 << PW) - 1) ^ ((1 << (shift + B)) - 1)
        for i in range(L):
            _put(unit.w[i], w[i])
            _put(unit.live[i], live[i])
        _put(unit.prefix, prefix)
        _put(unit.hi_mask, mask)
        _put(unit.shift, shift)
        unit.sim_eval_combinational()
        match = live & ((w >> (shift + B)) == (prefix >> (shift + B)))
        digit = (w >> shift) & ((1 << B) - 1)
        for j in range(1 << B):
            sel = match & (digit == j)
            assert (int(unit.count[j]), int(unit.total[j])) == (int(sel.sum()), int(w[sel].sum())), j


# ---- RadixSelect, driven as the control drives it -----------------------------------------

def _run_select(unit, lay, w, top_k, top_p):
    """The passes of one row as LogitCtrl sequences them (top-k levels, then top-p levels;
    each: clear, one add per word, prep, the select cycles; top-p's first level after top-k
    prep and select only); returns (tau, c)."""
    L = len(unit.w)
    V = len(w)
    top_k_on, top_p_on = 0 < top_k < V, top_p < N.FRACTION_ONE
    words = -(-V // L)
    padded = np.zeros(words * L, np.int64)
    padded[:V] = w
    _put(unit.top_k, top_k if top_k_on else 0)
    _put(unit.top_k_on, top_k_on)
    _put(unit.top_p, top_p)
    for by_sum, on in ((0, top_k_on), (1, top_p_on)):
        for level in range(lay.filter_levels if on else 0):
            _put(unit.by_sum, by_sum)
            _put(unit.level, level)
            if not (by_sum and level == 0 and top_k_on):   # else: top-k's first-level bins, no pass
                _put(unit.clear, 1)
                unit.sim_tick()
                _put(unit.clear, 0)
                _put(unit.add, 1)
                for k in range(words):
                    for i in range(L):
                        _put(unit.w[i], padded[k * L + i])
                        _put(unit.live[i], k * L + i < V)
                    unit.sim_tick()
                _put(unit.add, 0)
            _put(unit.prep, 1)
            unit.sim_tick()
            _put(unit.prep, 0)
            _put(unit.selecting, 1)
            last = by_sum and level == lay.filter_levels - 1
            for sel in range(lay.select_cycles + (lay.divide_cycles if last else 0)):
                _put(unit.sel, sel)
                unit.sim_tick()
            _put(unit.selecting, 0)
    return int(unit.tau), int(unit.c)


@pytest.mark.parametrize("L,W,B,vocab_max", [(4, 16, 4, 64), (2, 8, 3, 40), (8, 12, 5, 128), (4, 6, 2, 16)])
def test_radix_select_unit_finds_the_models_cut(L, W, B, vocab_max):
    rng = np.random.default_rng(L * 100 + W)
    lay = LogitLayout(VerifierConfig(lanes=L, vocab_max=vocab_max, gamma_max=1, prob_bits=W), radix_bits=B)
    unit = simulate(RadixSelect(L, lay))
    checked = 0
    for _ in range(24):
        V = int(rng.integers(1, vocab_max + 1))
        w = _tied_row(rng, V, W)
        top_k, top_p = _params(rng, V)
        if not (0 < top_k < V or top_p < N.FRACTION_ONE):
            continue
        assert _run_select(unit, lay, w, top_k, top_p) == tuple(N.radix_select(w, top_k, top_p, W, B)), \
            (w.tolist(), top_k, top_p)
        checked += 1
    assert checked > 12


# ---- LaneRankKeep ---------------------------------------------------------------------------

@pytest.mark.parametrize("L", [2, 4, 16])
def test_rank_keep_is_the_cut_with_min_p_over_the_words_of_a_row(L):
    """Word by word with the tie count running across words: kept = radix_keep and min-p's
    keep, total = their sum; lanes past V are not counted as ties."""
    rng = np.random.default_rng(L)
    W, CB = 16, 8
    unit = simulate(LaneRankKeep(L, W, CB, W + 8))
    for _ in range(30):
        V = int(rng.integers(1, 100))
        w = _tied_row(rng, V, W)
        cut = N.radix_select(w, *_params(rng, V), W)
        minp = rng.random(V) < 0.8
        want = np.where(N.radix_keep(w, cut) & minp, w, 0)
        words = -(-V // L)
        _put(unit.tau, cut.tau)
        _put(unit.c, min(cut.c, (1 << CB) - 1))
        _put(unit.clear, 1)
        unit.sim_tick()
        _put(unit.clear, 0)
        _put(unit.advance, 1)
        for k in range(words):
            for i in range(L):
                t = k * L + i
                _put(unit.w[i], w[t] if t < V else 0)
                _put(unit.live[i], t < V)
                _put(unit.minp_keep[i], minp[t] if t < V else 1)
            unit.sim_eval_combinational()
            got = [int(unit.kept[i]) for i in range(L)]
            exp = [int(want[k * L + i]) if k * L + i < V else 0 for i in range(L)]
            assert got == exp and int(unit.total) == sum(exp), (k, w.tolist(), cut)
            unit.sim_tick()


# ---- lint ------------------------------------------------------------------------------------

_LAY = LogitLayout(VerifierConfig(lanes=4, vocab_max=64, gamma_max=1))
_PW, _SHB, _, _ = radix_widths(_LAY)
LINT_UNITS = {
    "LaneRadixBinsL4W16B4": lambda: LaneRadixBins(4, 16, 4, _PW, _SHB),
    "RadixSelectL4V64W16B4": lambda: RadixSelect(4, _LAY),
    "RadixSelectL8V128W12B5": lambda: RadixSelect(8, LogitLayout(VerifierConfig(lanes=8, vocab_max=128, gamma_max=1,
                                                                                prob_bits=12), radix_bits=5)),
    "LaneRankKeepL16W16C17": lambda: LaneRankKeep(16, 16, 17, 32),
}


@needs_verilator
@pytest.mark.parametrize("name", list(LINT_UNITS))
def test_filter_units_lint_clean(tmp_path, name):
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
    lint_verilog(path, name)
