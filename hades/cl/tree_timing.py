"""Cycle accounting of the tree block: the schedule of docs/ARCHITECTURE.md ("The tree block",
**Schedule**, normative), one round at a time in Python integers.

Cycle 0 is the header beat, node beats are cycles 1..N, and row r of the stream
(hades.tree_protocol.stream_rows: node by node, a sampled internal node's draft row before its
target row) has its last beat at a_r = N + (r + 1) ceil(V / L) (full rate, every row on chip).
One engine runs jobs in order; a job whose rows end at a_r starts at s = max(f_prev + 1, a_r + 1),
reads `words` words and finishes at f = s + words + 1, as in the logit block. The walk visits the
nodes of the result's path, root first; at a visited node n with children c_1 < ... < c_k:

  greedy         no engine: each target row's argmax is taken as it streams in
  deterministic  TZ_n (ceil(V/L): ZQ_n), TX_n (word of y + 1: y, the sample of Q_n with T_n),
                 then y is matched against the children's tokens at TX_n's finish
  sampled, leaf  TZ_n, BX_n (word of the token + 1: the sample of Q_n with T_n)
  sampled, k > 0 DZ_n (ceil(V/L) over the draft row: ZP_n, P_n[tok(c_1)] kept); TZ_n (the
                 target row: ZQ_n = S_0, Q_n[tok(c_1)] kept; child 1's test at the finish); for
                 each rejection i = 1..: RS_n^i (ceil(V/L) over both rows with a_i, b_i: S_i,
                 P_n[x] and r_i[x] of the next child's token x kept; that child's test at the
                 finish); after k rejections RX_n (word of the token + 1: the sample of r_k with
                 S_k and T_n)
  filters        before DZ_n the draft side's select passes over the draft row, before TZ_n the
                 target side's over the target row: the logit block's FK_l / FP_l, each
                 ceil(V/L) words plus LogitLayout.select_cycles (LogitLayout.filter_cycles)

The result is loaded at c = max(f_last + 1, a_last + 1) (greedy: a_last + 1); cycles = c + 2,
latency = c + 1 - a_last, so cycles = input_cycles + latency with input_cycles = a_last + 1.

Beyond the RTL (CL only), as the logit block: with a buffer of B words smaller than the round's
rows, floor(B / ceil(V/L)) rows fit in stream order; the others are written off chip as they
arrive (input at min(L, input bw, off-chip bw) entries per cycle) and every job reading one of
them costs offchip_latency + ceil(words L / min(L, off-chip bw)) instead of `words`. B is
TimingConfig.sram_words, else the hardware's sram_words, else TreeLayout.buffer_words.

Integer range: Python integers throughout, exact at any size.
"""
from __future__ import annotations

from dataclasses import dataclass

from hades.cl.timing import TimingConfig, offchip_read_cycles, row_input_cycles
from hades.config import TreeConfig
from hades.errors import ConfigError, TraceError
from hades.logit_protocol import BF16_BITS, LogitLayout
from hades.round import TREE_SCHEMES, children_lists
from hades.tree_protocol import DRAFT_ROW, TARGET_ROW, TreeLayout, stream_rows


@dataclass(frozen=True)
class TreeJob:
    """One engine job: its name (DZ, TZ, RS, RX, BX, TX, FK, FP), the node, the cycle it issues
    its first read, the cycle it finishes (its result registered from then on), the words read."""
    name: str
    node: int
    start: int
    finish: int
    words: int


@dataclass(frozen=True)
class TreeRoundTiming:
    """One tree round's schedule.

    cycles, latency      of the result (header to result valid inclusive; from the last input beat)
    input_cycles         header .. last input beat inclusive; cycles = input_cycles + latency
    engine_cycles        busy cycles of the engine's jobs (words + 2 each, filter passes included)
    filter_cycles        ... of which in the top-k / top-p select passes
    residual_passes      RS jobs (rejected sampled children whose residual sum was recomputed)
    jobs                 every job in order
    rows                 rows streamed in (target rows + the draft rows of sampled internal nodes)
    sram_bytes           those rows in words of L bf16 entries
    offchip_rows         of those rows, the ones written off chip (CL only)
    sram_traffic_bytes   bytes written to + read from the on-chip buffer, and to + from
    offchip_traffic_bytes  off-chip memory: every row written once, then the words each job reads
                         from each of its rows (RS and RX read both of their node's rows)
    """
    cycles: int
    latency: int
    input_cycles: int
    engine_cycles: int
    filter_cycles: int
    residual_passes: int
    jobs: tuple[TreeJob, ...]
    rows: int
    sram_bytes: int
    offchip_rows: int
    sram_traffic_bytes: int
    offchip_traffic_bytes: int


def tree_buffer_words(tree: TreeConfig, timing: TimingConfig) -> int:
    """The buffer the CL model prices, in words of L entries (module docstring)."""
    if timing.sram_words is not None:
        return timing.sram_words
    if timing.hw.sram_words is not None:
        return timing.hw.sram_words
    return TreeLayout(tree).buffer_words


def _check_walk(scheme, parents, tokens, vocab_size, path, token, what):
    if scheme not in TREE_SCHEMES:
        raise TraceError(f"{what}: unknown tree scheme {scheme!r}; expected one of {TREE_SCHEMES}")
    N = len(parents)
    if N < 1 or len(tokens) != N or int(parents[0]) != -1 or any(not 0 <= int(parents[n]) < n for n in range(1, N)):
        raise TraceError(f"{what}: parents must be -1 then earlier nodes, one token per node")
    prev = 0
    for n in path:
        if not 0 < int(n) < N or int(parents[int(n)]) != prev:
            raise TraceError(f"{what}: path {tuple(path)} is not a walk down from the root")
        prev = int(n)
    if not 0 <= int(token) < int(vocab_size):
        raise TraceError(f"{what}: token {token} outside 0..{vocab_size - 1}")


def tree_round_timing(tree: TreeConfig, scheme: str, parents, tokens, vocab_size: int, path, token: int,
                      filters=(False, False, False, False), timing: TimingConfig | None = None) -> TreeRoundTiming:
    """The schedule of one tree round (module docstring): the round's structure (scheme,
    parents, tokens, V), its result (path: the accepted nodes below the root, token: the
    emitted token, as hades.round.TreeResult), the select passes its rows get
    (hades.tree_protocol.tree_filter_flags) and the CL-only timing parameters (None:
    TimingConfig(hw=tree.hw), every row on chip at full rate). Nothing here reads a row: the
    cycles depend on the shape, the walk and the tokens sampled on it only."""
    what = "tree_round_timing"
    tc = timing if timing is not None else TimingConfig(hw=tree.hw)
    if tc.hw != tree.hw:
        raise ConfigError(f"{what}: the timing's hardware {tc.hw} differs from the tree block's {tree.hw}")
    _check_walk(scheme, parents, tokens, vocab_size, path, token, what)
    L, N, V = tree.hw.lanes, len(parents), int(vocab_size)
    words = -(-V // L)
    fast, slow = (int(x) for x in row_input_cycles(tc, V))
    rows = stream_rows(scheme, parents)
    index = {row: r for r, row in enumerate(rows)}
    fit = tree_buffer_words(tree, tc) // words
    last_beat = [N + min(r + 1, fit) * fast + max(0, r + 1 - fit) * slow for r in range(len(rows))]
    off = [r >= fit for r in range(len(rows))]
    lay = LogitLayout(tree.hw)
    d_k, d_p, t_k, t_p = (bool(f) for f in filters)
    kids = children_lists(parents)

    jobs: list[TreeJob] = []
    reads_on = reads_off = 0
    finish = -1

    def job(name, node, row_keys, n_words, extra=0):
        """Run one job over the rows row_keys (it waits for the last of them), reading n_words
        words from each; extra: cycles after the reads (a select's scan)."""
        nonlocal finish, reads_on, reads_off
        rs = [index[k] for k in row_keys]
        any_off = any(off[r] for r in rs)
        cost = (int(offchip_read_cycles(tc, n_words)) if any_off and n_words else n_words) + extra
        start = max(finish + 1, max(last_beat[r] for r in rs) + 1)
        finish = start + cost + 1
        jobs.append(TreeJob(name, node, start, finish, n_words))
        for r in rs:
            if off[r]:
                reads_off += n_words
            else:
                reads_on += n_words

    def select_passes(node, row_key, top_k_on, top_p_on):
        for on, name, last_extra in ((top_k_on, "FK", 0), (top_p_on, "FP", lay.divide_cycles)):
            if not on:
                continue
            for level in range(lay.filter_levels):
                extra = lay.select_cycles + (last_extra if level == lay.filter_levels - 1 else 0)
                if name == "FP" and level == 0 and top_k_on:   # FP_0 after FK: FK_0's bins, no words
                    job(name, node, (row_key,), 0, extra - 1)
                else:
                    job(name, node, (row_key,), words, extra)

    visited = (0,) + tuple(int(n) for n in path)
    for depth, n in enumerate(visited):
        stop = depth == len(visited) - 1
        nxt = None if stop else visited[depth + 1]
        emitted = int(token) if stop else int(tokens[nxt])
        sample_words = emitted // L + 1
        t_row, d_row = (TARGET_ROW, n), (DRAFT_ROW, n)
        if scheme == "greedy":
            continue
        if scheme == "deterministic":
            select_passes(n, t_row, t_k, t_p)
            job("TZ", n, (t_row,), words)
            job("TX", n, (t_row,), sample_words)
            continue
        if not kids[n]:                                      # a sampled leaf: the bonus sample
            select_passes(n, t_row, t_k, t_p)
            job("TZ", n, (t_row,), words)
            job("BX", n, (t_row,), sample_words)
            continue
        select_passes(n, d_row, d_k, d_p)
        job("DZ", n, (d_row,), words)
        select_passes(n, t_row, t_k, t_p)
        job("TZ", n, (t_row,), words)
        rejections = len(kids[n]) if stop else kids[n].index(nxt)
        for _ in range(rejections):
            job("RS", n, (d_row, t_row), words)
        if stop:
            job("RX", n, (d_row, t_row), sample_words)

    a_last = last_beat[-1]
    load = max(finish + 1, a_last + 1) if jobs else a_last + 1
    word_bytes = L * BF16_BITS // 8
    rows_off = sum(off)
    busy = sum(j.finish - j.start + 1 for j in jobs)
    return TreeRoundTiming(
        cycles=load + 2, latency=load + 1 - a_last, input_cycles=a_last + 1, engine_cycles=busy,
        filter_cycles=sum(j.finish - j.start + 1 for j in jobs if j.name in ("FK", "FP")),
        residual_passes=sum(j.name == "RS" for j in jobs), jobs=tuple(jobs), rows=len(rows),
        sram_bytes=len(rows) * words * word_bytes, offchip_rows=rows_off,
        sram_traffic_bytes=((len(rows) - rows_off) * words + reads_on) * word_bytes,
        offchip_traffic_bytes=(rows_off * words + reads_off) * word_bytes)
