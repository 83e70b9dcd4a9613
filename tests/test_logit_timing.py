"""The logit block's CL timing (hades/cl/logit_timing.py) against the schedule of
docs/ARCHITECTURE.md run job by job in Python integers; the off-chip overflow path; the range
argument at the largest accepted inputs; logit_timed_results."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from hades import limits
from hades.cl.logit_model import logit_timed_results
from hades.cl.logit_timing import (NO_MESSAGE, draft_token_cycles, logit_buffer_words, logit_cycles_bound,
                                   logit_round_timing)
from hades.cl.timing import TimingConfig
from hades.config import VerifierConfig
from hades.errors import TraceError
from hades.fl.verifier import logit_block_output
from hades.logit_protocol import LogitLayout
from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace

SMALL = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)


def _ceil(x: Fraction) -> int:
    return -((-x.numerator) // x.denominator)


def schedule(tc: TimingConfig, gamma, V, greedy, onehot, accepted, token, drafts, buffer_words=None,
             flags=(False,) * 4):
    """The normative schedule, one job at a time in Python integers and fractions:
    (cycles, latency, held cycles, held latencies). flags: (draft top-k, draft top-p, target
    top-k, target top-p) on: the select passes before DZ_t / TZ_t, ceil(W / b) per filter, each
    the row's words plus 2^b scan cycles and a commit, the last top-p pass plus the divider
    (one cycle per count bit); after top-k, top-p's first level reads no words (one finish
    cycle, then its select cycles)."""
    L = tc.hw.lanes
    n = -(-V // L)
    rate = Fraction(L) if tc.input_bw is None else min(Fraction(L), Fraction(tc.input_bw))
    off_rate = min(rate, Fraction(tc.offchip_bw))
    md = not onehot and gamma > 0
    nd = gamma if md else 0
    fit = (logit_buffer_words(tc) if buffer_words is None else buffer_words) // n
    a, beat = [], gamma
    for r in range(nd + gamma + 1):   # draft rows, then target rows; the first `fit` on chip
        beat += _ceil(V / rate) if r < fit else _ceil(V / off_rate)
        a.append(beat)
    f = None

    def job(row, words, off, same_row=False):
        nonlocal f
        cost = tc.offchip_latency + _ceil(Fraction(words * L) / min(Fraction(L), Fraction(tc.offchip_bw))) \
            if off else words
        s = f + 1 if same_row else (a[row] + 1 if f is None else max(f + 1, a[row] + 1))
        f = s + cost + 1

    b = 4
    levels = -(-tc.hw.prob_bits // b)

    def passes(row, off, top_k_on, top_p_on):
        nonlocal f
        for on, divider in ((top_k_on, 0), (top_p_on, tc.hw.vocab_max.bit_length())):
            for level in range(levels if on else 0):
                if divider and level == 0 and top_k_on:
                    f += 1          # top-p's first level after top-k: top-k's bins, straight to its finish
                else:
                    job(row, n, off)
                f += (1 << b) + 1 + (divider if level == levels - 1 else 0)

    if greedy:
        held = [a[t] + 1 for t in range(nd)]
        load = a[-1] + 1
    else:
        held = []
        for t in range(nd):
            passes(t, t >= fit, flags[0], flags[1])
            job(t, n, t >= fit, same_row=flags[0] or flags[1])   # DZ_t
            job(t, drafts[t] // L + 1, t >= fit, same_row=True)   # DS_t
            held.append(f)
        for t in range(accepted + 1):
            passes(nd + t, nd + t >= fit, flags[2], flags[3])
            job(nd + t, n, nd + t >= fit, same_row=flags[2] or flags[3])   # TZ_t
        words = token // L + 1
        if accepted < gamma:
            j = accepted
            off = nd + j >= fit or (md and j >= fit)
            job(nd + j, n, off, same_row=True)                    # RS
            job(nd + j, words, off, same_row=True)                # RX
        else:
            job(nd + gamma, words, nd + gamma >= fit, same_row=True)   # BX
        load = max(f + 1, a[-1] + 1)
    return load + 2, load + 1 - a[-1], held, [h - a[t] for t, h in enumerate(held)]


def _random_rounds(rng, R, vocab_max, gamma_max):
    gamma = rng.integers(0, gamma_max + 1, R)
    V = rng.integers(1, vocab_max + 1, R)
    greedy = rng.random(R) < 0.3
    onehot = rng.random(R) < 0.3
    accepted = np.array([rng.integers(0, g + 1) for g in gamma])
    token = np.array([rng.integers(0, v) for v in V])
    drafts = np.stack([rng.integers(0, v, gamma_max) for v in V]) if R else np.zeros((0, gamma_max), np.int64)
    return gamma, V, greedy, onehot, accepted, token, drafts


def _random_flags(rng, greedy, onehot, gamma):
    """filter_flags as the block sees them: none on greedy rounds, none on the draft side of
    rounds without model drafts."""
    f = rng.random((len(greedy), 4)) < 0.4
    f[:, :2] &= (~onehot & (gamma > 0))[:, None]
    return f & ~greedy[:, None]


TIMINGS = {
    "full_buffer": TimingConfig(hw=SMALL),
    "three_rows": TimingConfig(hw=SMALL, sram_words=3 * 16),
    "one_row_slow_link": TimingConfig(hw=SMALL, sram_words=16, input_bw=1.5, offchip_bw=0.75, offchip_latency=17),
    "no_buffer_fast_offchip": TimingConfig(hw=SMALL, sram_words=1, offchip_bw=64.0, offchip_latency=0),
    "eight_lanes_half_rate": TimingConfig(hw=VerifierConfig(lanes=8, vocab_max=128, gamma_max=8), input_bw=4.0,
                                          sram_words=100),
}


@pytest.mark.parametrize("name", TIMINGS)
def test_vectorised_timing_is_the_schedule(name):
    tc = TIMINGS[name]
    rng = np.random.default_rng(sorted(TIMINGS).index(name))
    gamma, V, greedy, onehot, accepted, token, drafts = _random_rounds(rng, 300, tc.hw.vocab_max, tc.hw.gamma_max)
    flags = _random_flags(rng, greedy, onehot, gamma)
    t = logit_round_timing(tc, gamma, V, greedy, onehot, accepted, token, drafts, flags)
    for i in range(len(gamma)):
        cyc, lat, held, held_lat = schedule(tc, int(gamma[i]), int(V[i]), bool(greedy[i]), bool(onehot[i]),
                                            int(accepted[i]), int(token[i]), drafts[i].tolist(),
                                            flags=tuple(bool(x) for x in flags[i]))
        assert (int(t.cycles[i]), int(t.latency[i])) == (cyc, lat), i
        row = t.draft_cycles[i]
        assert row[: len(held)].tolist() == held and (row[len(held):] == NO_MESSAGE).all(), i
        assert t.draft_latency[i, : len(held)].tolist() == held_lat, i
    assert (t.cycles == t.input_cycles + t.latency).all()
    assert ((t.draft_job_cycles == 0) | (~greedy & ~onehot)).all()
    assert (t.target_job_cycles[greedy] == 0).all() and (t.tail_cycles[greedy] == 0).all()
    assert (t.target_job_cycles[~greedy] > 0).all() and (t.tail_cycles[~greedy] > 0).all()


def test_a_round_by_hand():
    """V = 50, L = 4: n = 13 words per row. One stochastic model draft (gamma 1, x_0 = 38, all
    accepted, bonus token 39): a_0 = 1 + 13 = 14, a_1 = 27, a_2 = 40.
    DZ_0 14+1 .. 15+13+1 = 29; DS_0 30 + 10 + 1 = 41 (x_0 held, latency 27); TZ_0 starts at
    max(42, 28) = 42, finishes 56; TZ_1 57 .. 71; BX (word 9: 10 words) 72 .. 83;
    c = max(84, 41) = 84: cycles 86, latency 45."""
    t = logit_round_timing(TimingConfig(hw=SMALL), [1], 50, False, False, [1], [39], [[38]])
    assert (t.draft_cycles.tolist(), t.draft_latency.tolist()) == ([[41]], [[27]])
    assert (int(t.cycles[0]), int(t.latency[0]), int(t.input_cycles[0])) == (86, 45, 41)
    assert (int(t.draft_job_cycles[0]), int(t.target_job_cycles[0]), int(t.tail_cycles[0])) == (15 + 12, 30, 12)
    assert int(t.sram_bytes[0]) == 3 * 13 * 4 * 2 and int(t.offchip_rows[0]) == 0
    greedy = logit_round_timing(TimingConfig(hw=SMALL), [1], 50, True, False, [1], [39], [[38]])
    assert greedy.draft_cycles.tolist() == [[15]] and int(greedy.cycles[0]) == 40 + 1 + 2


def test_buffer_traffic_by_hand():
    """V = 10, L = 4: n = 3 words of 8 bytes per row. Four rounds of gamma 2, counted by hand:
    stochastic model drafts x = (2, 9) rejected at j = 1 with token 5: rows written 5 x 3 = 15
    words; DZ 3 + DS 1 (x_0 in word 0) + DZ 3 + DS 3 (x_1 in word 2) + TZ_0 3 + TZ_1 3 + RS 3 + 3
    (target and draft row 1) + RX 2 + 2 (token in word 1) = 26 words read; the same with one-hot
    drafts: 3 rows written (9), TZ 3 + 3, RS 3, RX 2 from the target row only (11); all accepted
    (token 9, BX 3 words): 15 + 10 + TZ 3 x 3 + 3 = 37; greedy: 15 written, nothing read.
    With a buffer of 9 words (3 rows) the last two rows of the first round (target rows 1 and 2)
    live off chip: written 6, read by TZ_1 3, RS 3 and RX 2 = 14 words off chip, 27 on chip."""
    args = ([2, 2, 2, 2], 10, [False, False, False, True], [False, True, False, False], [1, 1, 2, 1],
            [5, 5, 9, 5], [[2, 9]] * 4)
    hw = VerifierConfig(lanes=4, vocab_max=10, gamma_max=2)
    t = logit_round_timing(TimingConfig(hw=hw), *args)
    assert (t.sram_traffic_bytes // 8).tolist() == [41, 20, 37, 15]
    assert t.offchip_traffic_bytes.tolist() == [0] * 4
    small = logit_round_timing(TimingConfig(hw=hw, sram_words=9), *args)
    assert (small.offchip_traffic_bytes[0] // 8, small.sram_traffic_bytes[0] // 8) == (14, 27)
    assert ((small.sram_traffic_bytes + small.offchip_traffic_bytes) == t.sram_traffic_bytes).all()
    # one-hot: 3 rows, all fit; all accepted: rows 3, 4 off (6), TZ_1 (row 3) and TZ_2, BX (row 4): 3 + 3 + 3
    assert (small.offchip_traffic_bytes[1:] // 8).tolist() == [0, 6 + 9, 6]


def test_buffer_size_and_overflow():
    tc = TimingConfig(hw=SMALL)
    assert logit_buffer_words(tc) == LogitLayout(SMALL).buffer_words == 9 * 16
    assert logit_buffer_words(TimingConfig(hw=VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=40))) == 40
    assert logit_buffer_words(TimingConfig(hw=SMALL, sram_words=7)) == 7
    rng = np.random.default_rng(3)
    args = _random_rounds(rng, 200, 64, 4)
    full = logit_round_timing(tc, *args)
    gamma, _, _, onehot = args[:4]
    rows = np.where(~onehot & (gamma > 0), 2 * gamma + 1, gamma + 1)
    assert (full.sram_bytes == rows * (-(-args[1] // 4)) * 4 * 2).all() and (full.offchip_rows == 0).all()
    before = full
    for words in (8 * 16, 5 * 16, 2 * 16, 16, 1):   # a smaller buffer never makes a round faster
        t = logit_round_timing(TimingConfig(hw=SMALL, sram_words=words), *args)
        assert (t.cycles >= before.cycles).all() and (t.offchip_rows >= before.offchip_rows).all()
        assert (t.sram_bytes == full.sram_bytes).all()
        before = t
    wide = args[1] > 4                           # rows of more than one word: none fits in one word
    assert (before.offchip_rows[wide] == rows[wide]).all()
    read = wide & ~args[2]                       # ... and the engine pays the off-chip latency on each read
    assert (before.cycles[read] > full.cycles[read]).all()


def test_draft_cycles_depend_on_the_drafts_so_far_only():
    tc = TimingConfig(hw=SMALL, sram_words=40, input_bw=3.0)
    rng = np.random.default_rng(5)
    gamma, V, greedy, _, accepted, token, drafts = _random_rounds(rng, 100, 64, 4)
    gamma = np.maximum(gamma, 1)
    accepted = np.minimum(accepted, gamma)
    full = logit_round_timing(tc, gamma, V, greedy, False, accepted, token, drafts)
    for i in range(len(gamma)):
        for t in range(int(gamma[i])):
            held, lat = draft_token_cycles(tc, [gamma[i]], V[i], greedy[i], [drafts[i, : t + 1]])
            assert (held[0, t], lat[0, t]) == (full.draft_cycles[i, t], full.draft_latency[i, t])


def test_cycles_bound_covers_every_decision():
    tc = TimingConfig(hw=SMALL, sram_words=50)
    rng = np.random.default_rng(9)
    gamma, V, greedy, onehot, accepted, token, drafts = _random_rounds(rng, 300, 64, 4)
    flags = _random_flags(rng, greedy, onehot, gamma)
    t = logit_round_timing(tc, gamma, V, greedy, onehot, accepted, token, drafts, flags)
    assert (logit_cycles_bound(tc, gamma, V, greedy, onehot, flags) >= t.cycles).all()


BW_MIN = limits.OFFCHIP_BW.lo


@pytest.mark.parametrize("lanes", [1, 2 ** 12, 2 ** 24])
@pytest.mark.parametrize("input_bw", [None, BW_MIN])
@pytest.mark.parametrize("sram_words", [1, 2 ** 48])
@pytest.mark.parametrize("filtered", [False, True], ids=["unfiltered", "filtered"])
def test_timing_at_the_largest_accepted_inputs_is_exact(lanes, input_bw, sram_words, filtered):
    V, G = limits.VOCAB_MAX.hi, limits.GAMMA_MAX.hi
    hw = VerifierConfig(lanes=lanes, vocab_max=V, gamma_max=G, prob_bits=24, uniform_bits=40)
    tc = TimingConfig(hw=hw, sram_words=sram_words, input_bw=input_bw, offchip_bw=BW_MIN,
                      offchip_latency=limits.OFFCHIP_LATENCY.hi)
    cases = [(G, acc, V - 1, greedy, onehot) for acc in (0, G - 1, G) for greedy in (False, True)
             for onehot in (False, True)] + [(0, 0, V - 1, False, False), (1, 0, 0, False, False)]
    gamma, accepted, token, greedy, onehot = (np.array(c) for c in zip(*cases))
    drafts = np.full((len(cases), G), V - 1)
    flags = np.full((len(cases), 4), filtered)
    flags[:, :2] &= (~onehot & (gamma > 0))[:, None]
    flags &= ~greedy[:, None]
    t = logit_round_timing(tc, gamma, V, greedy, onehot, accepted, token, drafts, flags)
    assert t.cycles.max() < 2 ** (46 if filtered else 43), "the bound the argument in hades/cl/logit_timing.py gives"
    for i in range(len(cases)):
        cyc, lat, held, _ = schedule(tc, int(gamma[i]), V, bool(greedy[i]), bool(onehot[i]), int(accepted[i]),
                                     int(token[i]), drafts[i].tolist(), flags=tuple(bool(x) for x in flags[i]))
        assert (int(t.cycles[i]), int(t.latency[i])) == (cyc, lat)
        assert t.draft_cycles[i, : len(held)].tolist() == held


@pytest.mark.parametrize("args, match", [
    (dict(gamma=[65]), "gamma outside 0..64"),
    (dict(token=[50]), "token outside 0..V-1"),
    (dict(accepted=[3]), "accepted outside 0..gamma"),
    (dict(vocab_size=0), "vocabulary size outside"),
    (dict(drafts=[[0, 50]]), "draft token lies outside"),
    (dict(drafts=[[0]]), "draft_tokens has 1 slots"),
    (dict(greedy=[2]), "greedy must be 0 or 1"),
    (dict(accepted=[0, 0]), "one entry per round"),
])
def test_bad_inputs_are_refused(args, match):
    a = dict(gamma=[2], vocab_size=50, greedy=False, onehot=False, accepted=[1], token=[5], drafts=[[3, 4]]) | args
    with pytest.raises(TraceError, match=match):
        logit_round_timing(TimingConfig(hw=SMALL), a["gamma"], a["vocab_size"], a["greedy"], a["onehot"],
                           a["accepted"], a["token"], a["drafts"])


# ---- logit_timed_results and the CL component ------------------------------------------------------

MIXED = LogitSyntheticSpec(vocab_size=50, rounds=20, gammas=(0, 1, 2, 3, 4), seed=1)


def test_timed_results_take_a_generator_and_time_the_fl_outputs():
    tr = synthetic_logit_trace(MIXED)
    tc = TimingConfig(hw=SMALL)
    timed = logit_timed_results(tc, (r for r in tr.rounds()))
    fl = [logit_block_output(r, 16, 32) for r in tr.rounds()]
    assert logit_timed_results(tc, list(tr.rounds()), fl) == timed
    for rnd, got, want in zip(tr.rounds(), timed, fl):
        assert got.result.decision() == want.result.decision()
        assert [(d.slot, d.token) for d in got.drafts] == [(d.slot, d.token) for d in want.drafts]
        assert all(d.cycles is not None for d in got.drafts) and got.result.cycles is not None
    assert logit_timed_results(tc, []) == []


def test_timed_results_refuse_rounds_the_block_cannot_carry():
    tr = synthetic_logit_trace(MIXED)
    with pytest.raises(TraceError, match="exceeds vocab_max=32"):
        logit_timed_results(TimingConfig(hw=VerifierConfig(lanes=4, vocab_max=32, gamma_max=4)), tr.rounds())
