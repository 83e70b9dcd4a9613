"""Cycle accounting of the verifier: the CL model's timing, vectorised over rounds.

With every draft row on chip and the input at full rate (one beat of L entries per cycle)
these formulas equal the RTL cycle for cycle (tests/test_levels.py and tests/test_rtl.py check every round at --level rtl).
Cycle 0 is the header beat; the draft beats follow; then the P rows, then the Q rows:

  k_last = gamma + sum(P row durations) + sum(Q row durations)   last input beat
  c_j    = 1 + gamma + sum(P) + sum(Q_0..Q_j)                     accept test of row j
  result valid at k_r = k_last + 2, or for a stochastic rejection at j whose token lies
  in word k of the residual row: max(k_last + 2, c_j + 3 + scan(k)), scan(k) = k + 1
  cycles = k_r + 1 (inclusive of the header), latency = k_r - k_last.

Beyond the RTL (CL only): a buffer too small for the round's gamma draft rows keeps the
overflowing rows off chip. Such a row is written and read back at the off-chip bandwidth,
so its P and Q rows stream at min(L, input bw, off-chip bw) entries per cycle, and a scan
of it pays the off-chip latency plus its words at the off-chip bandwidth.

Integer range (why int64 never overflows here). The inputs are bounded in hades/limits.py:
V <= 2^24 and 1 <= L <= 2^24 (VOCAB_MAX, LANES), 0 <= gamma <= 64 (GAMMA), 0 <= accepted <=
gamma and 0 <= token < V (checked below), input and off-chip bandwidths b >= 2^-8 entries per
cycle (INPUT_BW, OFFCHIP_BW), off-chip latency <= 2^32 cycles (OFFCHIP_LATENCY), and the
buffer's rows_fit is clamped to gamma's range. Then, for every round:
  fast, slow = ceil(V / rate) <= 2^24 / 2^-8 = 2^32               (rate >= min(L, b) >= 2^-8)
  p_total <= 64 * slow <= 2^38;  q_total <= p_total + fast <= 2^38 + 2^32
  k_last = gamma + p_total + q_total <= 64 + 2^39 + 2^32 < 2^40
  c_j <= 1 + 64 + p_total + 65 * slow < 2^40
  (k + 1) * L <= V - 1 + L < 2^25, so a scan <= 2^32 + 2^25 / 2^-8 + 1 < 2^34
  k_r <= max(k_last + 2, c_j + 3 + scan) < 2^41;  cycles = k_r + 1 <= 2^41
  entries moved <= 3 * 64 * V + 2^25 < 2^33
Every float step (V / rate, the scan's ceil, latency + ceil) stays below 2^34 < 2^53, so its
value is an exact integer before the cast. A sum of cycles over R <= 2^20 rounds (ROUNDS:
the sweep, bench and synth traces) is below 2^61. A trace file's rounds are not bounded
by ROUNDS, but a round costs fewer than 2^15 * V + 2^34 cycles (slow <= 2^8 * V + 1), so a
sum over a file's rounds overflows only for files of at least 2^47 entries or 2^28 rounds,
which verify (it holds every round in memory) cannot load anyway.
tests/test_limits.py checks the largest accepted inputs against a Python-int
re-computation and that one step past each bound is refused.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hades import limits
from hades.config import VerifierConfig
from hades.errors import ConfigError, TraceError

HEADER_AND_RESULT_OVERHEAD = 2   # k_r - k_last for a round without a pending scan
SCAN_START = 3                   # from the accept test to the scan's first data word


@dataclass(frozen=True)
class TimingConfig:
    """CL-only parameters around the hardware configuration.

    sram_words        on-chip buffer in words of L entries (None: hw.sram_depth)
    input_bw          entries per cycle the input link delivers (None: L, full rate)
    offchip_bw        entries per cycle to and from off-chip memory, each direction
    offchip_latency   cycles before the first off-chip word of a scan arrives
    clock_hz          for tokens/s
    """
    hw: VerifierConfig
    sram_words: int | None = None
    input_bw: float | None = None
    offchip_bw: float = 4.0
    offchip_latency: int = 100
    clock_hz: float = 1.0e9

    def __post_init__(self):
        # ranges: hades/limits.py; together they keep every cycle count exact in int64 (above)
        if not isinstance(self.hw, VerifierConfig):
            raise ConfigError(f"hw must be a VerifierConfig, got {type(self.hw).__name__}")
        limits.check_fields(self, {"sram_words": limits.SRAM_WORDS, "input_bw": limits.INPUT_BW,
                                   "offchip_bw": limits.OFFCHIP_BW, "offchip_latency": limits.OFFCHIP_LATENCY,
                                   "clock_hz": limits.CLOCK_HZ}, optional=("sram_words", "input_bw"))

    @property
    def buffer_words(self) -> int:
        return self.hw.sram_depth if self.sram_words is None else self.sram_words

    def as_dict(self) -> dict:
        d = asdict(self)
        d["hw"] = self.hw.as_dict()
        d["sram_words"] = self.buffer_words
        return d


@dataclass
class RoundTiming:
    """Per-round arrays (length R)."""
    cycles: np.ndarray
    latency: np.ndarray
    input_cycles: np.ndarray        # header .. last beat, inclusive
    scan_cycles: np.ndarray         # 0 when no residual scan ran
    offchip_rows: np.ndarray        # draft rows kept off chip
    sram_entries: np.ndarray        # entries written to + read from the on-chip buffer
    offchip_entries: np.ndarray     # entries moved to + from off-chip memory


def row_input_cycles(tc: TimingConfig, vocab_size) -> tuple[np.ndarray, np.ndarray]:
    """Input cycles of a row of V entries (V an int or an array): (on chip, written off chip).
    An on-chip row streams at min(L, input bw) entries per cycle; a row written off chip as it
    arrives at min(L, input bw, off-chip bw). int64, exact (the values stay below 2^34)."""
    lane_rate = tc.hw.lanes if tc.input_bw is None else min(tc.hw.lanes, tc.input_bw)
    v = np.asarray(vocab_size, np.int64)
    return (np.ceil(v / lane_rate).astype(np.int64),
            np.ceil(v / min(lane_rate, tc.offchip_bw)).astype(np.int64))


def offchip_read_cycles(tc: TimingConfig, words) -> np.ndarray:
    """Cycles to read `words` words of L entries back from off-chip memory: the off-chip
    latency, then L entries per word at min(L, off-chip bw) entries per cycle. int64, exact."""
    L = tc.hw.lanes
    w = np.asarray(words, np.int64)
    return (tc.offchip_latency + np.ceil(w * L / min(L, tc.offchip_bw))).astype(np.int64)


def round_timing(tc: TimingConfig, gamma, vocab_size: int, greedy: bool, accepted, token) -> RoundTiming:
    """Timing of R rounds (gamma, accepted, token are arrays of length R)."""
    hw = tc.hw
    L = hw.lanes
    V = limits.VOCAB_SIZE.check(vocab_size)
    gamma = np.asarray(gamma, np.int64)
    accepted = np.asarray(accepted, np.int64)
    token = np.asarray(token, np.int64)
    # the ranges the int64 proof above relies on (a valid trace always satisfies them)
    if gamma.size and not (0 <= gamma.min() and gamma.max() <= limits.GAMMA.hi):
        raise TraceError(f"round_timing: gamma outside 0..{limits.GAMMA.hi}")
    if accepted.shape != gamma.shape or token.shape != gamma.shape:
        raise TraceError("round_timing: gamma, accepted and token need one entry per round")
    if gamma.size and not ((0 <= accepted).all() and (accepted <= gamma).all()
                           and 0 <= token.min() and token.max() < V):
        raise TraceError(f"round_timing: accepted outside 0..gamma or token outside 0..{V - 1}")
    words = -(-V // L)
    fast, slow = row_input_cycles(tc, V)                   # an on-chip row, a row whose P lives off chip
    rows_fit = min(tc.buffer_words // words, limits.GAMMA.hi)   # more rows than gamma's range: all on chip
    off = np.maximum(gamma - rows_fit, 0)                  # the last rows overflow
    on = gamma - off
    p_total = on * fast + off * slow
    q_total = p_total + fast                               # Q_t meets P_t; plus the bonus row
    k_last = gamma + p_total + q_total
    k_r = k_last + HEADER_AND_RESULT_OVERHEAD

    rejected = (accepted < gamma) & (not greedy)
    j = accepted
    j_on = np.minimum(j + 1, on)
    q_upto_j = j_on * fast + (j + 1 - j_on) * slow         # Q_0..Q_j
    c_j = 1 + gamma + p_total + q_upto_j
    k = token // L
    row_off = j >= on
    scan = np.where(row_off, offchip_read_cycles(tc, k + 1), k + 1)
    scan = np.where(rejected, scan, 0).astype(np.int64)
    k_r = np.where(rejected, np.maximum(k_r, c_j + SCAN_START + scan), k_r)

    # traffic: P written (V each), read back against Q (V each), residual written (V each)
    # while no rejection happened, plus the scanned words
    rows_processed = np.minimum(accepted + 1, gamma)       # Q rows that met their P row
    scanned = np.where(rejected, (k + 1) * L, 0)
    on_rows_proc = np.minimum(rows_processed, on)
    off_rows_proc = rows_processed - on_rows_proc
    sram = on * V + 2 * on_rows_proc * V + np.where(rejected & ~row_off, scanned, 0)
    offc = off * V + 2 * off_rows_proc * V + np.where(rejected & row_off, scanned, 0)
    return RoundTiming(cycles=k_r + 1, latency=k_r - k_last, input_cycles=k_last + 1,
                       scan_cycles=scan, offchip_rows=off, sram_entries=sram, offchip_entries=offc)
