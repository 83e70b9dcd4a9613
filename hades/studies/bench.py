"""Verification throughput: software on this CPU versus the modeled HADES block.

For the same rounds of a trace (grouped by gamma) this times the verification phase of

  torch     a vectorised CPU implementation shaped like the rejection samplers of production
            servers (vLLM, FlashInfer): float probabilities, one batched accept test over
            every round and position, the residual max(0, q - p) formed for every position
            at once, the first rejection found with a reduction, one inverse-CDF sample per
            round (residual row at the rejection, else the bonus row).
  numpy     the float64 textbook reference (numerics.float_speculative_round), round by round.
  fl        the integer golden model (fl.verifier.verify_round), round by round.
  hades     cycles from the CL timing model (cl.timing.round_timing; equal to the RTL, which
            rtl_cycle_check re-confirms on a few rounds) at a stated clock.

Software times are the median of repeated runs after warm-up and cover only the
verification arithmetic on inputs already in memory (as on a GPU server, where the
probabilities are already on the device); the HADES time covers streaming the rows in, which
is what bounds it. "Verified tokens" are the tokens a round emits: accepted drafts + 1.

From logits (v2 traces, bench_logit_batch): the rounds hold bf16 logit rows, and each path
starts from them:

  (a) torch     torch_from_logits: fp32 conversion, temperature divide, top-k and top-p by a
                stable sort of the row (torch_rank_filter, as vLLM's sampler does), softmax, min-p,
                of the target rows *and of the draft rows*, the draft sample by inverse CDF
                with the trace's draft uniforms (a logit block samples the drafts itself from
                the draft logits, so the software path does that work too; one-hot-draft
                rounds have no draft rows and skip it), then torch_verify. Greedy rounds:
                argmax of the logits.
  (b) today     host_quantize: the host's float softmax (temperature, min-p) of every row the
                v1 block reads, quantised to M = 2^W - 1 (numerics.quantize_rows), plus the v1
                block's modeled cycles on those probability rows with the trace's draft tokens.
  (c) HADES     the logit block's modeled cycles (hades.cl.logit_model.logit_timed_results, equal
                to the RTL's, which logit_rtl_cycle_check re-confirms on a few rounds) at a
                stated clock, with the cycles split by phase and the SRAM the rounds need.
"""
from __future__ import annotations

import csv
import io
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hades import numerics
from hades.cl.model import timed_results
from hades.cl.timing import TimingConfig, round_timing
from hades.config import VerifierConfig
from hades.errors import ConfigError, TraceError
from hades.fl.verifier import verify_logit_round, verify_round
from hades.logit_protocol import check_logit_round, filter_flags
from hades.round import LogitRound, Round
from hades.fileio import atomic_write
from hades.traces.format import Trace

# The seed paper's headline verification-throughput ratios (HADES vs GPU software). They were
# measured on GPUs we do not have; they are reported beside our numbers, never mixed in.
PAPER_QUOTED_RATIOS = (("A100 (paper, quoted, not measured)", 6.99),
                       ("A6000 (paper, quoted, not measured)", 7.74))
# Table I of the paper puts verification at roughly 2 % to 10 % of decode time.
PAPER_VERIFICATION_SHARE_RANGE = (0.02, 0.10)
# Table I software speculative decoding, tokens/s by gamma (GPT-2 124M/1.5B and OPT pairs).
PAPER_TABLE1_TOKENS_PER_S = {"GPT-2 124M/1.5B": {2: 102, 4: 95, 8: 84, 16: 51},
                             "OPT 125M/6.7B": {2: 56, 4: 70, 8: 60, 16: 34}}
# 1 GHz: a round number that a 16-lane datapath of 16-bit adders/comparators meets easily in
# current standard-cell processes (the paper's ASIC-style evaluation is in that range too);
# every hardware figure scales linearly with it and the clock is printed next to it.
DEFAULT_CLOCK_HZ = 1.0e9


# ---- rounds ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoundBatch:
    """Rounds of one gamma from one trace: the unit every implementation is timed on."""
    gamma: int
    vocab_size: int
    row_sum: int
    uniform_bits: int
    greedy: bool
    rounds: tuple[Round, ...]
    source: str

    @property
    def num_rounds(self) -> int:
        return len(self.rounds)


def _rounds_by_gamma(trace_gamma: np.ndarray, gammas: list[int] | None,
                     max_rounds: int | None) -> list[tuple[int, np.ndarray]]:
    """(gamma, round indices) for each requested gamma present in the trace (every gamma
    present when none are requested); TraceError when none of the requested ones is."""
    present = sorted({int(g) for g in trace_gamma if int(g) > 0})
    wanted = present if not gammas else [g for g in gammas if g in present]
    if not wanted:
        raise TraceError(f"the trace has no rounds with gamma in {gammas} (it has gammas {present})")
    return [(g, np.flatnonzero(trace_gamma == g)[: max_rounds or None]) for g in wanted]


def batches_from_trace(trace: Trace, gammas: list[int] | None, max_rounds: int | None,
                       source: str) -> list[RoundBatch]:
    """Group a trace's rounds by gamma (only the requested gammas, when given)."""
    return [RoundBatch(gamma=g, vocab_size=int(trace.vocab_size), row_sum=int(trace.row_sum),
                       uniform_bits=int(trace.uniform_bits), greedy=trace.greedy,
                       rounds=tuple(trace.round(int(i)) for i in idx), source=source)
            for g, idx in _rounds_by_gamma(trace.gamma, gammas, max_rounds)]


def _synthetic_traces(gammas: list[int], rounds: int, vocab_size: int, seed: int, cache_dir,
                      trace_format: int | None = None):
    """(gamma, trace) per gamma from the trace cache (built on the first request)."""
    from hades.traces.cache import TraceRequest, get_trace
    for g in gammas:
        req = TraceRequest(source="synthetic", gamma=g, rounds=rounds, seed=seed, vocab_size=vocab_size,
                           trace_format=trace_format)
        yield g, get_trace(req, cache_dir)


def synthetic_batches(gammas: list[int], rounds: int, vocab_size: int, seed: int = 0,
                      cache_dir: str | Path | None = None) -> list[RoundBatch]:
    """Synthetic stand-in for real traces (cached on disk by hades.traces.cache)."""
    source = f"synthetic (Zipf rows, V={vocab_size}, seed {seed})"
    return [b for g, tr in _synthetic_traces(gammas, rounds, vocab_size, seed, cache_dir)
            for b in batches_from_trace(tr, [g], rounds, source=source)]


@dataclass(frozen=True)
class LogitBatch:
    """Rounds of one gamma from one v2 (logit-row) trace. Rounds may mix greedy and
    stochastic rounds, model and one-hot drafts, and their parameters."""
    gamma: int
    vocab_size: int
    weight_bits: int
    uniform_bits: int
    rounds: tuple[LogitRound, ...]
    source: str

    @property
    def num_rounds(self) -> int:
        return len(self.rounds)


def logit_batches_from_trace(trace, gammas: list[int] | None, max_rounds: int | None,
                             source: str) -> list[LogitBatch]:
    """Group a v2 trace's (hades.traces.format_v2.LogitTrace) rounds by gamma."""
    return [LogitBatch(gamma=g, vocab_size=int(trace.vocab_size), weight_bits=int(trace.weight_bits),
                       uniform_bits=int(trace.uniform_bits), rounds=tuple(trace.round(int(i)) for i in idx),
                       source=source)
            for g, idx in _rounds_by_gamma(trace.gamma, gammas, max_rounds)]


@dataclass(frozen=True)
class RequestSampling:
    """One request's sampling settings for every synthetic round (both sides): temperature,
    top_k (0 = off), top_p (1 = off), min_p (0 = off), e.g. the chat default T = 0.7, top-p 0.9."""
    temperature: float
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0

    def __post_init__(self):
        numerics.sampling_params(self.temperature, self.top_k, self.top_p, self.min_p)   # ConfigError if bad

    def describe(self) -> str:
        parts = [f"T={self.temperature:g}"]
        if self.top_k:
            parts.append(f"top-k {self.top_k}")
        if self.top_p < 1:
            parts.append(f"top-p {self.top_p:g}")
        if self.min_p:
            parts.append(f"min-p {self.min_p:g}")
        return ", ".join(parts)


def synthetic_logit_batches(gammas: list[int], rounds: int, vocab_size: int, seed: int = 0,
                            cache_dir: str | Path | None = None,
                            sampling: RequestSampling | None = None) -> list[LogitBatch]:
    """Synthetic v2 rounds (hades.traces.cache with trace_format=2: LLM-like bf16 logit rows,
    stochastic, a quarter with one-hot drafts, temperature 0.5..1.5 and min-p 0 / 0.05 / 0.1
    per round). With `sampling`, every round uses that one request setting instead (built
    directly from the seed, not cached)."""
    if sampling is None:
        source = f"synthetic logit rows (V={vocab_size}, seed {seed})"
        return [b for g, tr in _synthetic_traces(gammas, rounds, vocab_size, seed, cache_dir, trace_format=2)
                for b in logit_batches_from_trace(tr, [g], rounds, source=source)]
    from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
    source = f"synthetic logit rows (V={vocab_size}, seed {seed}, {sampling.describe()})"
    out = []
    for g in gammas:
        tr = synthetic_logit_trace(LogitSyntheticSpec(
            vocab_size=vocab_size, rounds=rounds, gammas=(g,), seed=seed, greedy_share=0.0,
            temperature_range=(sampling.temperature, sampling.temperature), min_ps=(sampling.min_p,),
            top_ks=(sampling.top_k,), top_ps=(sampling.top_p,)))
        out += logit_batches_from_trace(tr, [g], rounds, source=source)
    return out


# ---- the production-style torch baseline ------------------------------------------------

@dataclass
class TorchInputs:
    """Float tensors as a server holds them after the target's softmax."""
    draft_probs: object      # float [B, g, V]; None: one-hot drafts (P = 1 at x, no draft model)
    target_probs: object     # float [B, g+1, V] (greedy: any order-preserving scores, e.g. the logits)
    draft_tokens: object     # int64 [B, g]
    accept_u: object         # float [B, g] in [0, 1)
    sample_u: object         # float [B]
    greedy: bool


def torch_inputs(batch: RoundBatch, dtype: str = "float32") -> TorchInputs:
    import torch
    td = getattr(torch, dtype)
    scale = 2.0 ** batch.uniform_bits
    stack = lambda f: np.stack([f(r) for r in batch.rounds])  # noqa: E731
    return TorchInputs(
        draft_probs=torch.from_numpy(stack(lambda r: r.draft_probs / batch.row_sum)).to(td),
        target_probs=torch.from_numpy(stack(lambda r: r.target_probs / batch.row_sum)).to(td),
        draft_tokens=torch.from_numpy(stack(lambda r: r.draft_tokens)).long(),
        accept_u=torch.from_numpy(stack(lambda r: r.accept_uniforms / scale)).to(td),
        sample_u=torch.tensor([r.sample_uniform / scale for r in batch.rounds], dtype=td),
        greedy=batch.greedy)


def torch_verify(inp: TorchInputs):
    """Batched speculative sampling; returns (accepted [B], token [B]) int64 tensors.

    Shape of vLLM's / FlashInfer's rejection samplers (ideas only): gather p(x), q(x) for all
    positions, accept where u * p(x) < q(x) (= u < min(1, q/p) without a division), the
    number accepted is the index of the first rejection, the residual is formed for every
    position in one tensor op and the row at the first rejection (or the bonus row) is
    sampled. Sampling uses the trace's uniform by inverse CDF instead of the servers'
    exponential-race trick so that decisions can be compared with the integer model.
    One-hot drafts (draft_probs None: prompt lookup, n-gram, no draft model) have p(x) = 1, so
    the test is u < q(x) and the residual is q with entry x set to 0 (vLLM's "no draft probs").
    """
    import torch
    q, x = inp.target_probs, inp.draft_tokens
    B, _, V = q.shape
    g = x.shape[1]
    rows = torch.arange(B, device=q.device)
    if inp.greedy:
        target_argmax = q.argmax(dim=-1)                       # [B, g+1], ties to lowest index
        ok = x == target_argmax[:, :g]
    else:
        q_x = q[:, :g].gather(-1, x.unsqueeze(-1)).squeeze(-1)
        if inp.draft_probs is None:
            ok = inp.accept_u < q_x
        else:
            p_x = inp.draft_probs.gather(-1, x.unsqueeze(-1)).squeeze(-1)
            ok = inp.accept_u * p_x < q_x
    rejected = ~ok
    any_rejected = rejected.any(dim=1)
    # first rejection = number accepted; argmax over a bool row returns the first True
    accepted = torch.where(any_rejected, rejected.to(torch.int8).argmax(dim=1),
                           torch.full((B,), g, device=q.device))
    if inp.greedy:
        return accepted, target_argmax[rows, accepted]
    if inp.draft_probs is None:                                # max(0, q - onehot(x)) = q without x
        residual = q[:, :g].scatter(-1, x.unsqueeze(-1), 0.0)
    else:                                                      # all positions at once, as servers do
        residual = (q[:, :g] - inp.draft_probs).clamp_min_(0)
    j = accepted.clamp(max=g - 1)
    weights = torch.where(any_rejected.unsqueeze(1), residual[rows, j], q[:, g])
    return accepted, torch_inverse_cdf(weights, inp.sample_u)


def torch_inverse_cdf(weights, u):
    """The sample of each row of weights [N, V] (any non-negative scale) for uniforms u [N]
    in [0, 1): the smallest k with cdf[k] > u * cdf[-1] (the float twin of the integer
    sampler of NUMERICS.md section 6)."""
    import torch
    cdf = weights.cumsum(dim=-1)
    threshold = (u * cdf[:, -1]).unsqueeze(1)
    return torch.searchsorted(cdf, threshold, right=True).squeeze(1).clamp_(max=weights.shape[-1] - 1)


def decision_margins(batch: RoundBatch, dtype_eps: float) -> np.ndarray:
    """Per round: True when every float comparison the torch baseline makes is farther from
    its decision boundary than the quantisation step plus the float rounding bound, so that
    the float and the integer verifier must agree."""
    M, U = batch.row_sum, batch.uniform_bits
    step = 2.0 / M
    safe = np.ones(batch.num_rounds, bool)
    for i, rnd in enumerate(batch.rounds):
        res = verify_round(rnd, M, U)
        for t in range(min(res.accepted + 1, rnd.gamma)):
            x = int(rnd.draft_tokens[t])
            u = rnd.accept_uniforms[t] / 2.0 ** U
            if rnd.greedy:
                top2 = np.sort(rnd.target_probs[t])[-2:]
                gap = (top2[1] - top2[0]) / M
            else:
                gap = abs(u * rnd.draft_probs[t, x] / M - rnd.target_probs[t, x] / M)
            safe[i] &= gap > step
        if rnd.greedy:
            continue
        if res.accepted < rnd.gamma:
            w = numerics.residual_weights(rnd.target_probs[res.accepted], rnd.draft_probs[res.accepted])
        else:
            w = rnd.target_probs[rnd.gamma]
        cdf = np.cumsum(w) / M
        thr = rnd.sample_uniform / 2.0 ** U * cdf[-1]
        lo = cdf[res.token - 1] if res.token > 0 else 0.0
        gap = min(thr - lo, cdf[res.token] - thr)
        # a float cumsum over V terms can drift by about V * eps of the total mass
        safe[i] &= gap > step + len(w) * dtype_eps * cdf[-1]
    return safe


# ---- timing ------------------------------------------------------------------------------

@dataclass(frozen=True)
class WallTime:
    median_s: float
    min_s: float
    runs: int


def time_median(fn: Callable[[], object], repeats: int, warmup: int = 1) -> WallTime:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return WallTime(statistics.median(samples), min(samples), len(samples))


@dataclass(frozen=True)
class BenchRow:
    gamma: int
    implementation: str
    kind: str               # measured | modeled | quoted
    rounds: int
    tokens: int
    seconds: float | None
    tokens_per_s: float | None
    hades_speedup: float | None   # HADES tokens/s divided by this row's tokens/s
    note: str = ""


@dataclass(frozen=True)
class BenchConfig:
    hw: VerifierConfig
    clock_hz: float = DEFAULT_CLOCK_HZ
    repeats: int = 5
    warmup: int = 1
    torch_dtype: str = "float32"
    torch_threads: int | None = None


@dataclass
class BenchResult:
    rows: list[BenchRow]
    torch_threads: int
    # gamma -> rounds where torch != FL (v1 batches), or gamma -> {path: rounds where that
    # path's decision != verify_logit_round's} (logit batches)
    disagreements: dict = field(default_factory=dict)
    logit_block: dict = field(default_factory=dict)     # gamma -> LogitBlockTime (logit batches)


def hades_seconds(batch: RoundBatch, hw: VerifierConfig, clock_hz: float) -> tuple[int, float]:
    """Total modeled cycles of the batch and the seconds they take at clock_hz."""
    return modeled_seconds(batch.rounds, hw, clock_hz)


def modeled_seconds(rounds, hw: VerifierConfig, clock_hz: float,
                    decisions: list | None = None) -> tuple[int, float]:
    """Total CL cycles of v1 rounds (with their FL decisions, or the given ones) and the
    seconds they take at clock_hz."""
    results = timed_results(TimingConfig(hw=hw, clock_hz=clock_hz), rounds, decisions)
    cycles = sum(r.cycles for r in results)
    return cycles, cycles / clock_hz


def bench_batch(batch: RoundBatch, bc: BenchConfig) -> tuple[list[BenchRow], int]:
    import torch
    M, U = batch.row_sum, batch.uniform_bits
    fl = [verify_round(r, M, U) for r in batch.rounds]
    tokens = sum(r.accepted + 1 for r in fl)
    rows: list[tuple[str, str, float, str]] = []

    inp = torch_inputs(batch, bc.torch_dtype)
    with torch.inference_mode():
        t = time_median(lambda: torch_verify(inp), bc.repeats, bc.warmup)
        acc, tok = torch_verify(inp)
    disagree = sum((int(a), int(k)) != r.decision() for a, k, r in zip(acc, tok, fl))
    rows.append(("torch CPU (vectorised, production-style)", "measured", t.median_s,
                 f"{bc.torch_dtype}, {torch.get_num_threads()} threads, median of {t.runs}"))

    scale = 2.0 ** U
    float_rows = [(r.draft_tokens, r.draft_probs / M, r.target_probs / M, r.accept_uniforms / scale,
                   r.sample_uniform / scale, r.greedy) for r in batch.rounds]
    t = time_median(lambda: [numerics.float_speculative_round(*a[:5], greedy=a[5]) for a in float_rows],
                    bc.repeats, bc.warmup)
    rows.append(("numpy float64 reference", "measured", t.median_s, f"per round, median of {t.runs}"))
    t = time_median(lambda: [verify_round(r, M, U) for r in batch.rounds], bc.repeats, bc.warmup)
    rows.append(("FL integer model (verify_round)", "measured", t.median_s, f"per round, median of {t.runs}"))

    cycles, secs = hades_seconds(batch, bc.hw, bc.clock_hz)
    hades_tps = tokens / secs
    out = [BenchRow(batch.gamma, "HADES modeled (CL cycles)", "modeled", batch.num_rounds, tokens, secs, hades_tps, 1.0,
                    f"L={bc.hw.lanes}, {cycles} cycles at {bc.clock_hz / 1e9:g} GHz")]
    for name, kind, s, note in rows:
        tps = tokens / s
        out.append(BenchRow(batch.gamma, name, kind, batch.num_rounds, tokens, s, tps, hades_tps / tps, note))
    for name, ratio in PAPER_QUOTED_RATIOS:
        out.append(BenchRow(batch.gamma, f"GPU {name}", "quoted", 0, 0, None, None, ratio,
                            "HADES/GPU ratio from the paper"))
    return out, disagree


def run_bench(batches: list[RoundBatch], bc: BenchConfig, progress=None) -> BenchResult:
    import torch
    if bc.torch_threads:
        torch.set_num_threads(bc.torch_threads)
    for b in batches:
        if b.vocab_size > bc.hw.vocab_max or b.gamma > bc.hw.gamma_max:
            raise ConfigError(f"gamma {b.gamma} / vocabulary {b.vocab_size} exceed the hardware's "
                              f"gamma_max={bc.hw.gamma_max} / vocab_max={bc.hw.vocab_max}")
        if isinstance(b, LogitBatch) and (b.weight_bits, b.uniform_bits) != (bc.hw.prob_bits, bc.hw.uniform_bits):
            raise ConfigError(f"the trace's weight_bits={b.weight_bits} / uniform_bits={b.uniform_bits} differ from "
                              f"the hardware's prob_bits={bc.hw.prob_bits} / uniform_bits={bc.hw.uniform_bits}")
        if isinstance(b, LogitBatch):   # up front: what the block carries
            for i, r in enumerate(b.rounds):
                check_logit_round(bc.hw, r, f"gamma {b.gamma}, round {i} of the batch")
    result = BenchResult(rows=[], torch_threads=torch.get_num_threads())
    for b in batches:
        if isinstance(b, LogitBatch):
            rows, disagree, result.logit_block[b.gamma] = bench_logit_batch(b, bc)
        else:
            rows, disagree = bench_batch(b, bc)
        result.rows += rows
        result.disagreements[b.gamma] = disagree
        if progress:
            progress(1)
    return result


# ---- from logits: torch (a), today's path (b), the HADES logit block (c) ----------------------

LOGIT_TORCH_CPU = "torch CPU from logits (a)"
LOGIT_TORCH_GPU = "torch GPU from logits (a)"
TODAY_HOST = "today (b): host softmax+quantize"
TODAY_BLOCK = "today (b): v1 block on M-rows, modeled"
TODAY_TOTAL = "today (b): host + v1 block"
LOGIT_BLOCK = "HADES logit block (c), modeled"
NO_GPU_NOTE = "not measured (no GPU lent to this session)"


def temperature_of(k: int) -> float:
    """The temperature of an inverse temperature k = 2^16 log2(e) / T (NUMERICS.md section 13)."""
    return (1 << numerics.INV_TEMP_FRAC_BITS) / (int(k) * math.log(2.0))


@dataclass
class LogitGroup:
    """The rounds of a LogitBatch that take one code path (greedy or not, one-hot drafts or
    not), as a server holds them: bf16 logit tensors, and the sampling parameters as one
    value per round and side (per-round temperatures and min-p, vectorised)."""
    index: object               # int64 [b]: the rounds' positions in the batch
    greedy: bool
    onehot: bool
    draft_logits: object        # bf16 [b, g, V]; None for one-hot drafts (no draft model)
    target_logits: object       # bf16 [b, g + 1, V]
    draft_tokens: object        # int64 [b, g]: the trace's (verified by one-hot rounds and by today's path)
    draft_temperature: object   # float [b]
    draft_min_p: object         # float [b], p_min / p_max kept (0 = off)
    target_temperature: object  # float [b]
    target_min_p: object        # float [b]
    draft_top_k: object         # int64 [b] (0 = off)
    draft_top_p: object         # float [b] in (0, 1] (1 = off)
    target_top_k: object        # int64 [b]
    target_top_p: object        # float [b]
    draft_u: object             # float [b, g] in [0, 1): D_t / 2^U
    accept_u: object            # float [b, g]: R_t / 2^U
    sample_u: object            # float [b]: R / 2^U


@dataclass
class TorchLogitInputs:
    num_rounds: int
    dtype: object               # torch dtype the logits are converted to (float32, as vLLM does)
    groups: list[LogitGroup]


def torch_logit_inputs(batch: LogitBatch, dtype: str = "float32", device: str = "cpu") -> TorchLogitInputs:
    """The batch as tensors on `device`, grouped by (greedy, one-hot drafts)."""
    import torch
    td = getattr(torch, dtype)
    scale = 2.0 ** batch.uniform_bits
    kinds: dict[tuple[bool, bool], list[int]] = {}
    for i, r in enumerate(batch.rounds):
        kinds.setdefault((bool(r.greedy), bool(r.onehot_draft)), []).append(i)

    def bf16(rows):
        bits = np.ascontiguousarray(np.stack(rows).astype(np.uint16, copy=False))
        return torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).to(device)

    def floats(values):
        return torch.from_numpy(np.asarray(values, np.float64)).to(device=device, dtype=td)

    def longs(values):
        return torch.from_numpy(np.asarray(values, np.int64)).to(device)

    groups = []
    for (greedy, onehot), idx in sorted(kinds.items()):
        rs = [batch.rounds[i] for i in idx]
        dp = [r.draft_params for r in rs]
        tp = [r.target_params for r in rs]
        frac = float(numerics.FRACTION_ONE)
        groups.append(LogitGroup(
            index=torch.tensor(idx, dtype=torch.int64, device=device), greedy=greedy, onehot=onehot,
            draft_logits=None if onehot else bf16([r.draft_logits for r in rs]),
            target_logits=bf16([r.target_logits for r in rs]),
            draft_tokens=torch.from_numpy(np.stack([np.asarray(r.draft_tokens, np.int64) for r in rs])).to(device),
            draft_temperature=floats([temperature_of(p[0]) for p in dp]), draft_min_p=floats([p[3] / frac for p in dp]),
            target_temperature=floats([temperature_of(p[0]) for p in tp]),
            target_min_p=floats([p[3] / frac for p in tp]),
            draft_top_k=longs([p[1] for p in dp]), draft_top_p=floats([p[2] / frac for p in dp]),
            target_top_k=longs([p[1] for p in tp]), target_top_p=floats([p[2] / frac for p in tp]),
            draft_u=floats([np.asarray(r.draft_uniforms, np.uint64) / scale for r in rs]),
            accept_u=floats([np.asarray(r.accept_uniforms, np.uint64) / scale for r in rs]),
            sample_u=floats([r.sample_uniform / scale for r in rs])))
    return TorchLogitInputs(num_rounds=batch.num_rounds, dtype=td, groups=groups)


def torch_rank_filter(z, top_k, top_p):
    """Top-k, then top-p on what top-k left, of float scores z [b, n, V] (temperature applied),
    as the servers do it (vLLM's sampler sorts the row; so does this): a stable descending sort
    (ties to the lower token id, the rank order of NUMERICS.md section 15), the first top_k [b]
    ranks kept (0 or >= V: all), then the shortest prefix of those whose softmax mass reaches
    top_p [b] (the crossing entry kept; 1: all). Entries outside are set to -inf in place."""
    import torch
    b, n, V = z.shape
    k = torch.where((top_k <= 0) | (top_k >= V), torch.full_like(top_k, V), top_k)
    z_sorted, order = z.sort(dim=-1, descending=True, stable=True)
    rank = torch.arange(V, device=z.device)
    drop = (rank[None, None, :] >= k[:, None, None]).expand(b, n, V).clone()
    z_sorted = z_sorted.masked_fill_(drop, float("-inf"))
    if bool((top_p < 1).any()):
        probs = z_sorted.softmax(dim=-1)
        # the entry at rank j stays while the mass before it is below top_p
        drop |= (probs.cumsum(dim=-1) - probs) >= top_p[:, None, None]
    return z.scatter_(-1, order, z_sorted.masked_fill_(drop, float("-inf")))


def torch_filtered_softmax(logits, temperature, min_p, dtype, top_k=None, top_p=None):
    """Probability rows [b, n, V] from bf16 logits [b, n, V], in vLLM's order: convert to
    dtype, divide by the round's temperature [b], top-k and top-p (torch_rank_filter; top_k
    int64 [b], top_p [b], None: off), softmax, then min-p (keep p >= min_p * p_max, min_p [b],
    0 = off) and renormalise. Masked entries (-inf) get 0."""
    z = logits.to(dtype, copy=True).div_(temperature[:, None, None])
    V = z.shape[-1]
    k_on = top_k is not None and bool(((top_k > 0) & (top_k < V)).any())
    p_on = top_p is not None and bool((top_p < 1).any())
    if k_on or p_on:
        import torch
        b = z.shape[0]
        z = torch_rank_filter(z, top_k if top_k is not None else torch.zeros(b, dtype=torch.int64, device=z.device),
                              top_p if top_p is not None else torch.ones(b, dtype=z.dtype, device=z.device))
    p = z.softmax(dim=-1)
    if bool((min_p > 0).any()):
        p_max = p.amax(dim=-1, keepdim=True)
        p = p.masked_fill_(p < min_p[:, None, None] * p_max, 0.0)
        p = p.div_(p.sum(dim=-1, keepdim=True))
    return p


def _target_probs(grp, dtype):
    return torch_filtered_softmax(grp.target_logits, grp.target_temperature, grp.target_min_p, dtype,
                                  grp.target_top_k, grp.target_top_p)


def _draft_probs(grp, dtype):
    return torch_filtered_softmax(grp.draft_logits, grp.draft_temperature, grp.draft_min_p, dtype,
                                  grp.draft_top_k, grp.draft_top_p)


def torch_from_logits(inp: TorchLogitInputs):
    """(a) Speculative verification from bf16 logits, batched; returns (accepted [B],
    token [B]) int64 tensors in batch order.

    Per group: the target rows through torch_filtered_softmax; for model drafts the draft
    rows too, and the drafts are sampled from them by inverse CDF with the trace's draft
    uniforms (torch_inverse_cdf). A block that starts from logits samples the drafts itself
    from the draft logits, so this software path does the same work: draft softmax and
    draft sampling are part of what is timed. One-hot-draft rounds (no draft model) skip
    the draft softmax and verify the trace's tokens with p(x) = 1. Then torch_verify (accept
    u * p(x) < q(x), residual max(0, q - p) at the first rejection, bonus sample). Greedy
    rounds: no softmax; the drafts are the argmax of the draft logits (the trace's tokens
    for one-hot drafts) and the target's argmax decides.
    """
    import torch
    device = inp.groups[0].target_logits.device
    accepted = torch.empty(inp.num_rounds, dtype=torch.int64, device=device)
    token = torch.empty_like(accepted)
    for grp in inp.groups:
        if grp.greedy:
            x = grp.draft_tokens if grp.onehot else grp.draft_logits.to(inp.dtype).argmax(dim=-1)
            verify = TorchInputs(None, grp.target_logits.to(inp.dtype), x, None, None, greedy=True)
        else:
            q = _target_probs(grp, inp.dtype)
            if grp.onehot:
                p, x = None, grp.draft_tokens
            else:
                p = _draft_probs(grp, inp.dtype)
                b, g, V = p.shape
                x = torch_inverse_cdf(p.reshape(b * g, V), grp.draft_u.reshape(-1)).reshape(b, g)
            verify = TorchInputs(p, q, x, grp.accept_u, grp.sample_u, greedy=False)
        accepted[grp.index], token[grp.index] = torch_verify(verify)
    return accepted, token


def host_quantize(inp: TorchLogitInputs, row_sum: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(b) Today's host step, per group of inp: (draft rows int64 [b, g, V], target rows int64
    [b, g + 1, V]) for the v1 block. Every row is the float softmax of its logits
    (torch_filtered_softmax: temperature, top-k, top-p, min-p) quantised to sum exactly row_sum
    (numerics.quantize_rows); a one-hot draft row is row_sum at x, without a softmax. Greedy
    rounds are converted too: the v1 block reads probability rows in every mode."""
    out = []
    for grp in inp.groups:
        q = numerics.quantize_rows(_target_probs(grp, inp.dtype).cpu().numpy(), row_sum)
        if grp.onehot:
            x = grp.draft_tokens.cpu().numpy()
            p = np.zeros(x.shape + (q.shape[-1],), np.int64)
            np.put_along_axis(p, x[..., None], row_sum, axis=-1)
        else:
            p = numerics.quantize_rows(_draft_probs(grp, inp.dtype).cpu().numpy(), row_sum)
        out.append((p, q))
    return out


def host_rounds(batch: LogitBatch, inp: TorchLogitInputs, quantized) -> list[Round]:
    """The v1 rounds of today's path in batch order: host_quantize's rows with the trace's
    draft tokens and uniforms (the host sampled the drafts, the v1 block verifies them)."""
    out: list[Round | None] = [None] * batch.num_rounds
    for grp, (p, q) in zip(inp.groups, quantized):
        for k, i in enumerate(grp.index.tolist()):
            r = batch.rounds[i]
            out[i] = Round(greedy=bool(r.greedy), draft_tokens=np.asarray(r.draft_tokens, np.int64),
                           draft_probs=p[k], target_probs=q[k], accept_uniforms=r.accept_uniforms,
                           sample_uniform=r.sample_uniform)
    return out


def today_round_batch(batch: LogitBatch, row_sum: int, dtype: str = "float32") -> RoundBatch:
    """Today's path's v1 rounds of a logit batch (host_quantize, host_rounds) as a RoundBatch,
    e.g. for rtl_cycle_check of the v1 block's cycles on them."""
    inp = torch_logit_inputs(batch, dtype)
    rounds = host_rounds(batch, inp, host_quantize(inp, row_sum))
    return RoundBatch(gamma=batch.gamma, vocab_size=batch.vocab_size, row_sum=row_sum,
                      uniform_bits=batch.uniform_bits, greedy=all(r.greedy for r in rounds), rounds=tuple(rounds),
                      source=f"{batch.source}, quantised by today's host path")


@dataclass(frozen=True)
class LogitBlockTime:
    """(c) for one batch: the modeled cycles and what they are made of (means per round)."""
    cycles: int
    seconds: float
    results: list                 # RoundResult per round (FL decisions with CL counters)
    input_cycles: float           # header .. last input beat
    draft_job_cycles: float       # engine busy in DZ/DS (overlaps the input)
    target_job_cycles: float      # ... in TZ
    tail_cycles: float            # ... in RS + RX or BX
    filter_cycles: float          # ... in the top-k / top-p select passes (FK, FP)
    latency: float                # result after the last input beat
    sram_bytes: int               # the largest round's buffered rows


def logit_block_seconds(batch: LogitBatch, hw: VerifierConfig, clock_hz: float) -> LogitBlockTime:
    """(c): the logit block's modeled time of the batch (hades.cl.logit_model.logit_timed_results,
    the schedule the RTL implements) and its split by phase (hades.cl.logit_timing)."""
    from hades.cl.logit_model import logit_timed_results
    from hades.cl.logit_timing import logit_round_timing
    tc = TimingConfig(hw=hw, clock_hz=clock_hz)
    rounds = list(batch.rounds)
    outputs = logit_timed_results(tc, rounds)
    cycles = sum(int(o.result.cycles) for o in outputs)
    G = max((r.gamma for r in rounds), default=0)
    drafts = np.zeros((len(rounds), G), np.int64)
    for i, o in enumerate(outputs):
        for d in o.drafts:
            drafts[i, d.slot] = d.token
    t = logit_round_timing(tc, [r.gamma for r in rounds], [r.vocab_size for r in rounds], [r.greedy for r in rounds],
                           [r.onehot_draft for r in rounds], [o.result.accepted for o in outputs],
                           [o.result.token for o in outputs], drafts, [filter_flags(r) for r in rounds])
    assert int(t.cycles.sum()) == cycles, "logit_timed_results and logit_round_timing disagree"
    return LogitBlockTime(cycles=cycles, seconds=cycles / clock_hz, results=[o.result for o in outputs],
                          input_cycles=float(t.input_cycles.mean()), draft_job_cycles=float(t.draft_job_cycles.mean()),
                          target_job_cycles=float(t.target_job_cycles.mean()), tail_cycles=float(t.tail_cycles.mean()),
                          filter_cycles=float(t.filter_cycles.mean()),
                          latency=float(t.latency.mean()), sram_bytes=int(t.sram_bytes.max()))


def _torch_gpu_seconds(batch: LogitBatch, bc: BenchConfig) -> tuple[float | None, str]:
    """(a) on a CUDA device when there is one: (median seconds, note); else (None, why not)."""
    import torch
    if not torch.cuda.is_available():
        return None, NO_GPU_NOTE
    inp = torch_logit_inputs(batch, bc.torch_dtype, device="cuda")

    def run():
        torch_from_logits(inp)
        torch.cuda.synchronize()
    with torch.inference_mode():
        t = time_median(run, bc.repeats, max(1, bc.warmup))
    return t.median_s, f"{torch.cuda.get_device_name()}, {bc.torch_dtype}, median of {t.runs}"


def bench_logit_batch(batch: LogitBatch, bc: BenchConfig) -> tuple[list[BenchRow], dict[str, int], "LogitBlockTime"]:
    """The from-logits rows of one gamma: (a) torch CPU (and GPU when present), (b) today's
    path as host part, modeled v1 block and their sum, (c) the logit block, modeled.
    Verified tokens come from the FL decisions (verify_logit_round); the second value counts
    per path the rounds whose decision differs from FL's; the third is (c)'s split by phase."""
    import torch
    W, U, M = batch.weight_bits, batch.uniform_bits, bc.hw.row_sum
    fl = [verify_logit_round(r, W, U, where=f"gamma {batch.gamma} round {i}") for i, r in enumerate(batch.rounds)]
    want = [r.decision() for r in fl]
    tokens = sum(r.accepted + 1 for r in fl)

    inp = torch_logit_inputs(batch, bc.torch_dtype)
    with torch.inference_mode():
        t_a = time_median(lambda: torch_from_logits(inp), bc.repeats, bc.warmup)
        acc, tok = torch_from_logits(inp)
        t_host = time_median(lambda: host_quantize(inp, M), bc.repeats, bc.warmup)
        quantized = host_quantize(inp, M)
    rounds_b = host_rounds(batch, inp, quantized)
    decided_b = [verify_round(r, M, U) for r in rounds_b]
    cycles_b, secs_b = modeled_seconds(rounds_b, bc.hw, bc.clock_hz, decided_b)
    block_c = logit_block_seconds(batch, bc.hw, bc.clock_hz)
    gpu_s, gpu_note = _torch_gpu_seconds(batch, bc)

    def differ(decisions) -> int:
        return sum(tuple(d) != w for d, w in zip(decisions, want))
    disagree = {"torch (a)": differ(zip(acc.tolist(), tok.tolist())),
                "today's path (b)": differ(r.decision() for r in decided_b)}
    disagree["logit block (c)"] = differ(r.decision() for r in block_c.results)
    c_tps = tokens / block_c.seconds

    ghz = f"{bc.clock_hz / 1e9:g} GHz"
    ranked = "top-k/top-p by sort, " if any(any(filter_flags(r)) for r in batch.rounds) else ""
    threads = f"{bc.torch_dtype}, {torch.get_num_threads()} threads, median of {t_a.runs}"
    spec = [(LOGIT_TORCH_CPU, "measured", t_a.median_s,
             f"{threads}; {ranked}target and draft softmax, draft sampling, accept/residual/bonus"),
            (LOGIT_TORCH_GPU, "measured" if gpu_s is not None else "not measured", gpu_s, gpu_note),
            (TODAY_HOST, "measured", t_host.median_s,
             f"float softmax (T, {ranked}min-p) of every row + quantize_rows to M={M}, median of {t_host.runs}"),
            (TODAY_BLOCK, "modeled", secs_b, f"L={bc.hw.lanes}, {cycles_b} CL cycles at {ghz}"),
            (TODAY_TOTAL, "measured+modeled", t_host.median_s + secs_b, "host median + modeled block")]
    spec.append((LOGIT_BLOCK, "modeled", block_c.seconds, f"L={bc.hw.lanes}, {block_c.cycles} CL cycles at {ghz}"))
    rows = []
    for name, kind, secs, note in spec:
        tps = tokens / secs if secs else None
        rows.append(BenchRow(batch.gamma, name, kind, batch.num_rounds, tokens, secs, tps,
                             c_tps / tps if c_tps and tps else None, note))
    return rows, disagree, block_c


# ---- RTL cross-check of the modeled cycles ------------------------------------------------

@dataclass(frozen=True)
class RtlCheck:
    module: str
    gamma: int
    rounds: int
    rtl_cycles: tuple[int, ...]
    cl_cycles: tuple[int, ...]
    decisions_match: bool
    seconds: float

    @property
    def cycles_match(self) -> bool:
        return self.rtl_cycles == self.cl_cycles


def rtl_check_config(batch: RoundBatch, lanes: int) -> VerifierConfig:
    # large vocabularies: vocab_max 65536 / gamma_max 4 reuses the Verilator build the test
    # suite already made; small ones get a small buffer so that elaboration stays quick
    fit = max(2 * lanes, 1 << (batch.vocab_size - 1).bit_length())
    vocab_max = max(fit, 65536) if batch.vocab_size > 4096 else fit
    return VerifierConfig(lanes=lanes, vocab_max=vocab_max, gamma_max=max(4, batch.gamma))


def rtl_cycle_check(batch: RoundBatch, lanes: int = 32, n_rounds: int = 2, backend: str = "verilator") -> RtlCheck:
    """Co-simulate the first rounds of the batch and compare them with FL + CL timing."""
    from hades.sim.compare import compare_levels
    from hades.sim.run import SimOptions, run_rounds
    cfg = rtl_check_config(batch, lanes)
    rounds = list(batch.rounds[:n_rounds])
    t0 = time.perf_counter()
    got = run_rounds("rtl", cfg, rounds, SimOptions(backend=backend))
    secs = time.perf_counter() - t0
    model = timed_results(TimingConfig(hw=cfg), rounds)
    return RtlCheck(module=cfg.module_name(), gamma=batch.gamma, rounds=len(rounds),
                    rtl_cycles=tuple(int(r.cycles) for r in got), cl_cycles=tuple(r.cycles for r in model),
                    decisions_match=not any(d.kind == "decision" for d in compare_levels("rtl", cfg, rounds, got)),
                    seconds=secs)


def logit_rtl_cycle_check(batch: LogitBatch, lanes: int = 16, n_rounds: int = 2,
                          backend: str = "verilator") -> RtlCheck:
    """Co-simulate the first rounds of a from-logits batch on the logit block's RTL and compare
    results, sampled drafts and every message's cycles with FL + the CL schedule."""
    from hades.cl.logit_model import logit_timed_results
    from hades.sim.compare import compare_logit_levels
    from hades.sim.run import SimOptions, run_logit_rounds
    fit = max(2 * lanes, 1 << (batch.vocab_size - 1).bit_length())
    vocab_max = max(fit, 65536) if batch.vocab_size > 4096 else fit
    cfg = VerifierConfig(lanes=lanes, vocab_max=vocab_max, gamma_max=max(4, batch.gamma),
                         prob_bits=batch.weight_bits, uniform_bits=batch.uniform_bits)
    rounds = list(batch.rounds[:n_rounds])
    t0 = time.perf_counter()
    got = run_logit_rounds("rtl", cfg, rounds, SimOptions(backend=backend))
    secs = time.perf_counter() - t0
    model = logit_timed_results(TimingConfig(hw=cfg), rounds)
    from hades.logit_protocol import LogitLayout
    return RtlCheck(module=LogitLayout(cfg).module_name(), gamma=batch.gamma, rounds=len(rounds),
                    rtl_cycles=tuple(int(o.result.cycles) for o in got),
                    cl_cycles=tuple(int(o.result.cycles) for o in model),
                    decisions_match=not compare_logit_levels("rtl", cfg, rounds, got), seconds=secs)


def format_logit_phases(blocks: dict, lanes: int, clock_hz: float) -> str:
    """(c)'s cycles per round by phase and the SRAM the rounds need, one line per gamma."""
    lines = [f"Logit block (c) per round, L={lanes} at {clock_hz / 1e9:g} GHz (means; engine phases overlap the input):",
             f"{'gamma':>5} {'cycles':>9} {'input':>9} {'FK+FP':>9} {'DZ+DS':>9} {'TZ':>9} {'RS+RX|BX':>9} "
             f"{'latency':>8} {'SRAM need':>10}"]
    for g, b in sorted(blocks.items()):
        per = b.cycles / max(1, len(b.results))
        lines.append(f"{g:>5} {per:>9.0f} {b.input_cycles:>9.0f} {b.filter_cycles:>9.0f} {b.draft_job_cycles:>9.0f} "
                     f"{b.target_job_cycles:>9.0f} {b.tail_cycles:>9.0f} {b.latency:>8.0f} {b.sram_bytes / 1024:>8.0f}KiB")
    return "\n".join(lines) + "\n"


# ---- end-to-end projection (Amdahl) -------------------------------------------------------

@dataclass(frozen=True)
class Projection:
    verification_share: float
    verification_speedup: float
    end_to_end_speedup: float
    source: str


def amdahl(share: float, speedup: float) -> float:
    """Whole-decode speedup when only the verification share runs `speedup` times faster."""
    return 1.0 / ((1.0 - share) + share / speedup)


def verification_share_from_csv(path: str | Path) -> tuple[float, str]:
    """Verification share of decode time from a `hades decode` CSV: a column with a share
    (name contains 'verification' and 'share'), else verification seconds over total."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--decode-csv {path}: no such file")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ConfigError(f"--decode-csv {path}: no data rows")
    cols = list(rows[0])
    share_cols = [c for c in cols if "verif" in c.lower() and "share" in c.lower()]
    try:
        if share_cols:
            vals = [float(r[share_cols[0]]) for r in rows if r[share_cols[0]] not in ("", None)]
            return float(np.mean(vals)), f"{path.name}: mean of column {share_cols[0]}"
        ver = [c for c in cols if "verif" in c.lower()]
        tot = [c for c in cols if "total" in c.lower()]
        if ver and tot:
            v = sum(float(r[ver[0]]) for r in rows)
            t = sum(float(r[tot[0]]) for r in rows)
            return v / t, f"{path.name}: sum({ver[0]}) / sum({tot[0]})"
    except ValueError as e:
        raise ConfigError(f"--decode-csv {path}: non-numeric value ({e})") from None
    raise ConfigError(f"--decode-csv {path}: need a column with 'verification' and 'share' in its name, "
                      f"or verification and total seconds; found {', '.join(cols)}")


def projections(shares: list[float], speedups: dict[str, float], source: str) -> list[Projection]:
    return [Projection(s, v, amdahl(s, v), f"{source}; speedup vs {name}")
            for s in shares for name, v in speedups.items()]


# ---- output ------------------------------------------------------------------------------

def rows_to_csv(rows: list, path: str | Path) -> Path:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            if not rows:
                return
            w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in asdict(r).items()})
    return atomic_write(path, write)


def format_table(rows: list[BenchRow]) -> str:
    """The table as text; a row without a time (not measured, not built) shows '-' and says
    why in its note."""
    buf = io.StringIO()
    kw = max([8] + [len(r.kind) for r in rows])
    buf.write(f"{'gamma':>5}  {'implementation':<44} {'kind':<{kw}} {'ms':>10} {'tokens/s':>12} {'HADES x':>9}  "
              "note\n")
    for r in rows:
        ms = f"{r.seconds * 1e3:.4g}" if r.seconds is not None else "-"
        tps = f"{r.tokens_per_s:,.0f}" if r.tokens_per_s is not None else "-"
        sp = f"{r.hades_speedup:.2f}" if r.hades_speedup is not None else "-"
        buf.write(f"{r.gamma:>5}  {r.implementation:<44} {r.kind:<{kw}} {ms:>10} {tps:>12} {sp:>9}  {r.note}\n")
    return buf.getvalue()


def plot_bench(rows: list[BenchRow], path: str | Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    measured = [r for r in rows if r.tokens_per_s is not None]
    impls = list(dict.fromkeys(r.implementation for r in measured))
    gammas = sorted({r.gamma for r in measured})
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    width = 0.8 / max(1, len(impls))
    for k, name in enumerate(impls):
        ys = [next((r.tokens_per_s for r in measured if r.gamma == g and r.implementation == name), np.nan)
              for g in gammas]
        ax.bar(np.arange(len(gammas)) + (k - (len(impls) - 1) / 2) * width, ys, width, label=name)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(gammas)), [f"gamma={g}" for g in gammas])
    ax.set_ylabel("verified tokens/s (log)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, format="png")
    try:
        return atomic_write(path, write)
    finally:
        plt.close(fig)


# ---- simulation speed -------------------------------------------------------------------

@dataclass(frozen=True)
class SimSpeedRow:
    simulator: str
    module: str
    vocab_size: int
    gamma: int
    rounds: int
    cycles: int             # modeled hardware cycles of these rounds (CL timing == RTL)
    seconds: float
    rounds_per_s: float
    cycles_per_s: float
    note: str = ""


def _speed_row(name, cfg, batch, seconds, note="") -> SimSpeedRow:
    cycles = sum(r.cycles for r in timed_results(TimingConfig(hw=cfg), batch.rounds))
    return SimSpeedRow(name, cfg.module_name(), batch.vocab_size, batch.gamma, batch.num_rounds, cycles, seconds,
                       batch.num_rounds / seconds, cycles / seconds, note)


def sim_speed(full: RoundBatch, small: RoundBatch, lanes: int = 32, repeats: int = 3,
              with_verilator: bool = True, with_python_rtl: bool = True) -> list[SimSpeedRow]:
    """Wall-clock speed of each simulator on the same rounds (full vocabulary), except the
    pure-Python RTL, which runs the `small` (small-vocabulary) rounds because it is slow.
    PyMTL3 runs include elaboration and, for Verilator, importing the cached build: that is
    what a user waits for, and the note says so."""
    from hades.sim.run import SimOptions, run_rounds
    cfg = rtl_check_config(full, lanes)
    M, U = full.row_sum, full.uniform_bits
    out = []
    t = time_median(lambda: [verify_round(r, M, U) for r in full.rounds], repeats)
    out.append(_speed_row("FL function (verify_round)", cfg, full, t.median_s, f"median of {t.runs}"))
    res = [verify_round(r, M, U) for r in full.rounds]
    tc = TimingConfig(hw=cfg)
    args = ([r.gamma for r in full.rounds], full.vocab_size, full.greedy,
            [x.accepted for x in res], [x.token for x in res])
    t = time_median(lambda: round_timing(tc, *args), repeats)
    out.append(_speed_row("CL round_timing (vectorised, decisions given)", cfg, full, t.median_s,
                          f"timing only, median of {t.runs}"))
    for level in ("fl", "cl"):
        t0 = time.perf_counter()
        run_rounds(level, cfg, list(full.rounds), SimOptions())
        out.append(_speed_row(f"{level.upper()} PyMTL3 component (run_rounds)", cfg, full,
                              time.perf_counter() - t0, "one run incl. elaboration"))
    if with_python_rtl:
        small_cfg = rtl_check_config(small, lanes)
        t0 = time.perf_counter()
        run_rounds("rtl", small_cfg, list(small.rounds), SimOptions(backend="python"))
        out.append(_speed_row("RTL pure-Python simulation", small_cfg, small, time.perf_counter() - t0,
                              "small vocabulary only (slow); one run incl. elaboration"))
    if with_verilator:
        # the first run may compile the model; time the second, which imports the cached build
        run_rounds("rtl", cfg, list(full.rounds[:1]), SimOptions())
        t0 = time.perf_counter()
        run_rounds("rtl", cfg, list(full.rounds), SimOptions())
        out.append(_speed_row("RTL Verilator co-simulation", cfg, full, time.perf_counter() - t0,
                              "one run incl. elaboration + import of the cached build"))
        # the same Verilog with the C++ batch driver (compiled once, cached)
        run_rounds("rtl", cfg, list(full.rounds[:1]), SimOptions(backend="batch"))
        t = time_median(lambda: run_rounds("rtl", cfg, list(full.rounds), SimOptions(backend="batch")), repeats)
        out.append(_speed_row("RTL Verilator, C++ batch driver", cfg, full, t.median_s,
                              f"incl. packing beats in Python; median of {t.runs}"))
    return out


def format_sim_speed(rows: list[SimSpeedRow]) -> str:
    buf = io.StringIO()
    buf.write(f"{'simulator':<48} {'V':>6} {'g':>2} {'rounds':>6} {'cycles':>8} {'seconds':>9} "
              f"{'rounds/s':>10} {'cycles/s':>12}  note\n")
    for r in rows:
        buf.write(f"{r.simulator:<48} {r.vocab_size:>6} {r.gamma:>2} {r.rounds:>6} {r.cycles:>8} {r.seconds:>9.4f} "
                  f"{r.rounds_per_s:>10.3g} {r.cycles_per_s:>12.4g}  {r.note}\n")
    return buf.getvalue()
