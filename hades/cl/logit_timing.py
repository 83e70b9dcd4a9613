"""Cycle accounting of the logit block: the schedule of docs/ARCHITECTURE.md ("The logit block",
**Schedule**, normative) computed for R rounds at once (numpy arrays over the rounds, a Python
loop over the slot t only).

Cycle 0 is the header beat, draft beats are cycles 1..gamma, and row r of the stream (the model
draft rows, then the gamma + 1 target rows) has its last beat at a_r. One engine runs jobs in
order; a job over row r starts at s = max(f_prev + 1, a_r + 1), reads `words` words and finishes
at f = s + words + 1 (for a job on the same row as its predecessor the max is f_prev + 1):

  stochastic  model drafts: DZ_t (ceil(V/L) words), DS_t (word of x_t + 1) for t < gamma; then
              TZ_0 .. TZ_j (ceil(V/L) each), then RS (ceil(V/L)) and RX (word of the token + 1)
              at a rejection j, or BX (word of the token + 1) when all gamma pass
  filters     before DZ_t (draft side's top-k / top-p on) and before TZ_t (the target's): the
              select passes over that row, ceil(W / b) for top-k, then ceil(W / b) for top-p,
              each ceil(V/L) words plus LogitLayout.select_cycles (the bin scan and commit), the
              last top-p pass plus divide_cycles; after top-k, top-p's first level reads no
              words (top-k's first-level bins) and costs its select cycles + 1
              (LogitLayout.filter_cycles)
  greedy      no engine: x_t is held from a_t + 1, the result is loaded at a_last + 1
  draft x_t   held from f(DS_t) (greedy: a_t + 1); latency = held - a_t
  result      loaded at c = max(f_last + 1, a_last + 1); cycles = c + 2, latency = c + 1 - a_last

so that cycles = input_cycles + latency, input_cycles = a_last + 1 (header to last beat).

Beyond the RTL (CL only): with a buffer of B words smaller than the round needs, the rows that
do not fit (in stream order: draft rows first, then target rows; ceil(B / ceil(V/L)) rows fit)
are written off chip as they arrive, so their input runs at min(L, input bw, off-chip bw)
entries per cycle (hades.cl.timing.row_input_cycles), and every job that reads such a row
(RS and RX: either of their two rows) costs offchip_latency + ceil(words L / min(L, off-chip
bw)) cycles (hades.cl.timing.offchip_read_cycles) instead of `words`. input_bw < L stretches
every row to ceil(V / min(L, input bw)) cycles, as in hades.cl.timing. The buffer B is
TimingConfig.sram_words, else the hardware's sram_words, else LogitLayout.buffer_words (the
RTL's two buffers, every row of a gamma_max round).

Traffic (what a sweep reports as bytes moved): every row is written once, into the buffer or,
when it does not fit, off chip; then each engine job reads its words from each of its rows: DZ_t
ceil(V/L) and DS_t word(x_t) + 1 from draft row t, TZ_t ceil(V/L) from target row t, RS ceil(V/L)
and RX word(token) + 1 from target row j and from draft row j (one-hot drafts: the target row
only), BX word(token) + 1 from the bonus row. Greedy rounds read nothing. A read counts against
the buffer or off-chip memory by where its row lives; words are L bf16 entries (2 L bytes).

Integer range (why int64 never overflows here). The inputs are bounded in hades/limits.py:
V <= 2^24 and L <= 2^24, 0 <= gamma <= 64, tokens in 0..V-1 and 0 <= accepted <= gamma
(checked below), bandwidths >= 2^-8 entries per cycle, off-chip latency <= 2^32. Then per round:
  a row's input <= ceil(2^24 / 2^-8) = 2^32 cycles; rows <= 2 * 64 + 1 = 129
  a_last <= 64 + 129 * 2^32 < 2^40
  a job's cost <= 2^32 + (V + L - 1) * 2^8 + 2^4 + 1 + 25 < 2^34 (words L <= V + L - 1 < 2^25; a select
  pass adds 2^b + 1 + bits(V_max) cycles at b = 4); jobs <= 2 * 64 + 65 + 2 + 129 rows * 2 * 6 select
  passes (W <= 24) < 2^11
  f_last <= a_last + 2^11 * (2^34 + 2) < 2^46;  cycles = c + 2 < 2^46
  traffic <= (129 rows written + 2^11 jobs reading <= 2 rows each) * (ceil(V/L) + 1) words * 2 L bytes < 2^13 * 2^27 = 2^40
and every float step (V / rate, words L / bw) is an integer below 2^34 < 2^53 before its ceil. A
sum of cycles over R <= 2^17 such worst-case rounds is below 2^63 (2^20 without filters).
tests/test_logit_timing.py checks the largest accepted inputs against a Python-int event-by-event run of the schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hades import limits
from hades.cl.timing import TimingConfig, offchip_read_cycles, row_input_cycles
from hades.errors import TraceError
from hades.logit_protocol import BF16_BITS, LogitLayout

MAX_ROWS = 2 * limits.GAMMA.hi + 1   # rows of the largest round: more rows than that fit is "all fit"
NO_MESSAGE = -1                      # draft_cycles / draft_latency of a slot without a draft message


@dataclass
class LogitRoundTiming:
    """Per-round arrays (length R; the draft arrays are [R, G], G the largest gamma).

    cycles, latency           of the result (header to result valid inclusive; from the last
                              input beat), as the RTL's counters report them
    draft_cycles, _latency    per slot: the cycle (header = 0) from which the model draft x_t is
                              held, and that minus a_t; NO_MESSAGE for slots without a message
                              (one-hot drafts, slots past gamma)
    input_cycles              header .. last input beat inclusive; cycles = input_cycles + latency
    draft_job_cycles          the engine's cycles in DZ and DS jobs (issue .. finish inclusive,
    target_job_cycles           words + 2 per job), in TZ jobs, and in the tail jobs RS + RX or
    tail_cycles                 BX. They overlap the input; 0 for greedy rounds
    filter_cycles             the engine's cycles in the top-k / top-p select passes (draft and
                              target rows; words + 2 + select cycles per pass)
    sram_bytes                the round's rows in the buffer: (model draft rows + gamma + 1)
                              ceil(V/L) words of L bf16 entries
    offchip_rows              of those rows, the ones written off chip
    sram_traffic_bytes        bytes written to + read from the on-chip buffer, and to + from
    offchip_traffic_bytes       off-chip memory (module docstring, **Traffic**)
    """
    cycles: np.ndarray
    latency: np.ndarray
    draft_cycles: np.ndarray
    draft_latency: np.ndarray
    input_cycles: np.ndarray
    draft_job_cycles: np.ndarray
    target_job_cycles: np.ndarray
    tail_cycles: np.ndarray
    filter_cycles: np.ndarray
    sram_bytes: np.ndarray
    offchip_rows: np.ndarray
    sram_traffic_bytes: np.ndarray
    offchip_traffic_bytes: np.ndarray


def logit_buffer_words(tc: TimingConfig) -> int:
    """The buffer the CL model prices, in words of L entries (see the module docstring)."""
    if tc.sram_words is not None:
        return tc.sram_words
    if tc.hw.sram_words is not None:
        return tc.hw.sram_words
    return LogitLayout(tc.hw).buffer_words


class _Stream:
    """Row layout of R rounds: which rows stream in, when each row's last beat arrives, which
    rows are off chip, and what a job over a row costs."""

    def __init__(self, tc: TimingConfig, gamma, vocab_size, onehot):
        self.tc = tc
        self.gamma = gamma
        self.words = -(-vocab_size // tc.hw.lanes)                      # ceil(V / L)
        self.fast, self.slow = row_input_cycles(tc, vocab_size)
        self.model_drafts = ~onehot & (gamma > 0)
        self.draft_rows = np.where(self.model_drafts, gamma, 0)
        self.rows = self.draft_rows + gamma + 1
        self.rows_fit = np.minimum(logit_buffer_words(tc) // self.words, MAX_ROWS)

    def last_beat(self, r) -> np.ndarray:
        """a_r: the cycle of row r's last beat (rows 0..r before it, the on-chip ones first)."""
        on = np.minimum(r + 1, self.rows_fit)
        return self.gamma + on * self.fast + (r + 1 - on) * self.slow

    def off(self, r) -> np.ndarray:
        return r >= self.rows_fit

    def cost(self, words, off) -> np.ndarray:
        return np.where(off, offchip_read_cycles(self.tc, words), words)


class _Engine:
    """The engine's finish register f, one entry per round: jobs run strictly in order. It
    also counts the buffer traffic: the words each job reads, per row, on chip or off chip."""

    def __init__(self, st: _Stream):
        self.st = st
        self.finish = np.full(st.gamma.size, -1, np.int64)     # no job yet: s = a_r + 1
        self.read_on = np.zeros(st.gamma.size, np.int64)
        self.read_off = np.zeros(st.gamma.size, np.int64)

    def job(self, active, last_beat, cost, reads) -> np.ndarray:
        """Run one job where `active`; returns its busy cycles (0 where inactive). reads:
        ((row, words), ...), the words the job reads from each of its rows."""
        start = np.maximum(self.finish + 1, last_beat + 1)
        self.finish = np.where(active, start + cost + 1, self.finish)
        for row, words in reads:
            w = np.where(active, words, 0)
            off = self.st.off(row)
            self.read_on += np.where(off, 0, w)
            self.read_off += np.where(off, w, 0)
        return np.where(active, cost + 2, 0)


def _filter_jobs(st: _Stream, engine: _Engine, active, row, top_k_on, top_p_on) -> np.ndarray:
    """The select passes over `row` before its Z job: top-k levels, then top-p levels; returns
    their busy cycles [R]."""
    lay = LogitLayout(st.tc.hw)
    a, off = st.last_beat(row), st.off(row)
    busy = np.zeros(st.gamma.size, np.int64)
    for on, last_extra, by_sum in ((top_k_on, 0, False), (top_p_on, lay.divide_cycles, True)):
        for level in range(lay.filter_levels):
            extra = lay.select_cycles + (last_extra if level == lay.filter_levels - 1 else 0)
            shared = top_k_on if by_sum and level == 0 else False   # FP_0 after FK: FK_0's bins, no words
            words = np.where(shared, 0, st.words)
            cost = np.where(shared, extra - 1, st.cost(st.words, off) + extra)
            busy += engine.job(active & on, a, cost, ((row, words),))
    return busy


def _filter_array(filters, R: int, what: str) -> np.ndarray:
    """filters [R, 4] (draft top-k, draft top-p, target top-k, target top-p on; None: none) -> bool."""
    if filters is None:
        return np.zeros((R, 4), bool)
    f = np.asarray(filters, bool).reshape(-1, 4) if np.size(filters) else np.zeros((0, 4), bool)
    if f.shape[0] != R:
        raise TraceError(f"{what}: filters needs one (draft top-k, draft top-p, target top-k, target top-p) per round")
    return f


def _draft_jobs(st: _Stream, engine: _Engine, greedy, draft_tokens, filters):
    """FK/FP passes (draft filters), DZ_t, DS_t for every slot of draft_tokens [R, T]; returns
    (held [R, T], latency [R, T], busy cycles [R], filter busy cycles [R])."""
    R, T = draft_tokens.shape
    L = st.tc.hw.lanes
    held = np.full((R, T), NO_MESSAGE, np.int64)
    latency = np.full((R, T), NO_MESSAGE, np.int64)
    busy = np.zeros(R, np.int64)
    filter_busy = np.zeros(R, np.int64)
    for t in range(T):
        live = st.model_drafts & (t < st.gamma)
        a, off = st.last_beat(t), st.off(t)
        sampled = live & ~greedy
        sample_words = draft_tokens[:, t] // L + 1
        filter_busy += _filter_jobs(st, engine, sampled, t, filters[:, 0], filters[:, 1])
        busy += engine.job(sampled, a, st.cost(st.words, off), ((t, st.words),))            # DZ_t
        busy += engine.job(sampled, a, st.cost(sample_words, off), ((t, sample_words),))    # DS_t
        held[:, t] = np.where(sampled, engine.finish, np.where(live, a + 1, NO_MESSAGE))
        latency[:, t] = np.where(live, held[:, t] - a, NO_MESSAGE)
    return held, latency, busy, filter_busy


def _as_rounds(gamma, vocab_size, greedy, onehot, *per_round, what: str):
    """The per-round inputs as arrays of one length, checked against the ranges the int64
    argument relies on (TraceError)."""
    gamma = np.asarray(gamma, np.int64).reshape(-1)
    R = gamma.size
    v = np.asarray(vocab_size, np.int64)
    v = np.full(R, int(v)) if v.ndim == 0 else v.reshape(-1)
    flags = []
    for name, a in (("greedy", greedy), ("onehot", onehot)):
        a = np.asarray(a)
        a = np.full(R, bool(a)) if a.ndim == 0 else a.reshape(-1)
        if a.size and not np.isin(a, (0, 1)).all():
            raise TraceError(f"{what}: {name} must be 0 or 1 per round")
        flags.append(a.astype(bool))
    rest = [np.asarray(a, np.int64).reshape(-1) for a in per_round]
    if any(a.size != R for a in [v, *flags, *rest]):
        raise TraceError(f"{what}: every per-round input needs one entry per round ({R} rounds)")
    if R and not (0 <= gamma.min() and gamma.max() <= limits.GAMMA.hi):
        raise TraceError(f"{what}: gamma outside 0..{limits.GAMMA.hi}")
    if R and not (limits.VOCAB_SIZE.lo <= v.min() and v.max() <= limits.VOCAB_SIZE.hi):
        raise TraceError(f"{what}: vocabulary size outside {limits.VOCAB_SIZE.lo}..{limits.VOCAB_SIZE.hi}")
    return (gamma, v, *flags, *rest)


def _check_draft_tokens(draft_tokens, gamma, vocab_size, live_rounds, what: str, prefix: bool = False) -> np.ndarray:
    """draft_tokens [R, T] -> int64 [R, T] with the tokens of the live slots (slot t < gamma of
    the live rounds, which need T >= gamma unless `prefix`) checked to lie in 0..V-1, 0 elsewhere."""
    d = np.asarray(draft_tokens, np.int64)
    R = gamma.size
    if d.ndim == 1 and d.size == 0:
        d = d.reshape(R, 0)
    if d.ndim != 2 or d.shape[0] != R:
        raise TraceError(f"{what}: draft_tokens must be [rounds, slots], got shape {d.shape}")
    need = int(gamma[live_rounds].max()) if live_rounds.any() and not prefix else 0
    if d.shape[1] < need:
        raise TraceError(f"{what}: draft_tokens has {d.shape[1]} slots, a model-drafted round has gamma {need}")
    live = live_rounds[:, None] & (np.arange(d.shape[1])[None, :] < gamma[:, None])
    if live.any() and not ((d >= 0) & (d < vocab_size[:, None]) | ~live).all():
        raise TraceError(f"{what}: a draft token lies outside 0..V-1")
    return np.where(live, d, 0)


def logit_round_timing(tc: TimingConfig, gamma, vocab_size, greedy, onehot, accepted, token,
                       draft_tokens, filters=None) -> LogitRoundTiming:
    """The schedule of R rounds. gamma, accepted (the result's accepted drafts) and token (its
    token) are arrays of length R; vocab_size, greedy and onehot arrays of length R or one value
    for all; draft_tokens [R, >= max gamma] holds the drafts x_t the block samples (read for
    model-drafted stochastic rounds: DS_t reads up to x_t's word; ignored elsewhere); filters
    [R, 4] says which select passes each round's rows get (logit_protocol.filter_flags; None:
    none; the draft pair is read for model-drafted stochastic rounds, the target pair for
    stochastic rounds)."""
    what = "logit_round_timing"
    gamma, V, greedy, onehot, accepted, token = _as_rounds(gamma, vocab_size, greedy, onehot, accepted, token,
                                                           what=what)
    if gamma.size and not ((0 <= accepted) & (accepted <= gamma) & (0 <= token) & (token < V)).all():
        raise TraceError(f"{what}: accepted outside 0..gamma or token outside 0..V-1")
    st = _Stream(tc, gamma, V, onehot)
    R, L = gamma.size, tc.hw.lanes
    G = int(gamma.max()) if R else 0
    x = np.zeros((R, G), np.int64)
    given = _check_draft_tokens(draft_tokens, gamma, V, st.model_drafts & ~greedy, what)
    x[:, : min(G, given.shape[1])] = given[:, :G]
    engine = _Engine(st)
    flt = _filter_array(filters, R, what)
    held, held_latency, draft_busy, filter_busy = _draft_jobs(st, engine, greedy, x, flt)
    stochastic = ~greedy
    target_busy = np.zeros(R, np.int64)
    for t in range(G + 1):                                           # TZ_0 .. TZ_j (j = accepted)
        r = st.draft_rows + t
        filter_busy += _filter_jobs(st, engine, stochastic & (t <= accepted), r, flt[:, 2], flt[:, 3])
        target_busy += engine.job(stochastic & (t <= accepted), st.last_beat(r), st.cost(st.words, st.off(r)),
                                  ((r, st.words),))
    rejected = stochastic & (accepted < gamma)
    tail_row = st.draft_rows + accepted                              # target row j, or the bonus row
    tail_off = st.off(tail_row) | (rejected & st.model_drafts & st.off(accepted))   # RS/RX: draft row j too
    token_words = token // L + 1
    a_tail = st.last_beat(tail_row)
    # RS and RX read draft row j too, unless the drafts are one-hot (no draft rows): no words there
    residual_draft = np.where(st.model_drafts, 1, 0)
    tail_busy = engine.job(rejected, a_tail, st.cost(st.words, tail_off),                      # RS
                           ((tail_row, st.words), (accepted, residual_draft * st.words)))
    tail_busy += engine.job(stochastic, a_tail, st.cost(token_words, tail_off),                # RX or BX
                            ((tail_row, token_words), (accepted, np.where(rejected, residual_draft, 0) * token_words)))
    a_last = st.last_beat(st.rows - 1)
    load = np.where(stochastic, np.maximum(engine.finish + 1, a_last + 1), a_last + 1)
    entry_bytes = BF16_BITS // 8
    rows_off = np.maximum(st.rows - st.rows_fit, 0)
    word_bytes = L * entry_bytes
    return LogitRoundTiming(
        cycles=load + 2, latency=load + 1 - a_last, draft_cycles=held, draft_latency=held_latency,
        input_cycles=a_last + 1, draft_job_cycles=draft_busy, target_job_cycles=target_busy,
        tail_cycles=tail_busy, filter_cycles=filter_busy, sram_bytes=st.rows * st.words * word_bytes, offchip_rows=rows_off,
        # traffic: every row written once (on chip or off chip), then what the jobs read
        sram_traffic_bytes=((st.rows - rows_off) * st.words + engine.read_on) * word_bytes,
        offchip_traffic_bytes=(rows_off * st.words + engine.read_off) * word_bytes)


def draft_token_cycles(tc: TimingConfig, gamma, vocab_size, greedy, draft_tokens,
                       filters=None) -> tuple[np.ndarray, np.ndarray]:
    """(held cycle, latency) [R, T] of the first T model drafts of model-drafted rounds, from
    x_0 .. x_T-1 alone (T <= gamma) and the draft side's filters (filters [R, 4] as for
    logit_round_timing; only the draft pair is read): slot t's cycle depends on nothing later in
    the round, so a stream component can present x_t before the round's last row has arrived.
    The same values as logit_round_timing's draft_cycles and draft_latency."""
    what = "draft_token_cycles"
    gamma, V, greedy, onehot = _as_rounds(gamma, vocab_size, greedy, False, what=what)
    d = np.asarray(draft_tokens, np.int64)
    if d.ndim != 2 or d.shape[0] != gamma.size or (gamma.size and d.shape[1] > gamma.min()):
        raise TraceError(f"{what}: draft_tokens must be [rounds, T] with T <= gamma, got shape {d.shape}")
    st = _Stream(tc, gamma, V, onehot)
    x = _check_draft_tokens(d, gamma, V, st.model_drafts, what, prefix=True)
    held, latency, _, _ = _draft_jobs(st, _Engine(st), greedy, x, _filter_array(filters, gamma.size, what))
    return held, latency


def logit_cycles_bound(tc: TimingConfig, gamma, vocab_size, greedy, onehot, filters=None) -> np.ndarray:
    """An upper bound on each round's cycles whatever its tokens and decision: every sampler
    reads its whole row, and the decision is the longer of a rejection at the last draft and
    all accepted (a later rejection never finishes earlier). For simulation time-outs."""
    gamma, V, greedy, onehot = _as_rounds(gamma, vocab_size, greedy, onehot, what="logit_cycles_bound")
    last = np.full((gamma.size, int(gamma.max()) if gamma.size else 0), 0) + (V - 1)[:, None]
    worst = [logit_round_timing(tc, gamma, V, greedy, onehot, acc, V - 1, last, filters).cycles
             for acc in (np.maximum(gamma - 1, 0), gamma)]
    return np.maximum(*worst)
