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
"""
from __future__ import annotations

import csv
import io
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
from hades.fl.verifier import verify_round
from hades.round import Round
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


def batches_from_trace(trace: Trace, gammas: list[int] | None, max_rounds: int | None,
                       source: str) -> list[RoundBatch]:
    """Group a trace's rounds by gamma (only the requested gammas, when given)."""
    present = sorted({int(g) for g in trace.gamma if int(g) > 0})
    wanted = present if not gammas else [g for g in gammas if g in present]
    if not wanted:
        raise TraceError(f"the trace has no rounds with gamma in {gammas} (it has gammas {present})")
    out = []
    for g in wanted:
        idx = np.flatnonzero(trace.gamma == g)[: max_rounds or None]
        out.append(RoundBatch(gamma=g, vocab_size=int(trace.vocab_size), row_sum=int(trace.row_sum),
                              uniform_bits=int(trace.uniform_bits), greedy=trace.greedy,
                              rounds=tuple(trace.round(int(i)) for i in idx), source=source))
    return out


def synthetic_batches(gammas: list[int], rounds: int, vocab_size: int, seed: int = 0,
                      cache_dir: str | Path | None = None) -> list[RoundBatch]:
    """Synthetic stand-in for real traces (cached on disk by hades.traces.cache)."""
    from hades.traces.cache import TraceRequest, get_trace
    out = []
    for g in gammas:
        req = TraceRequest(source="synthetic", gamma=g, rounds=rounds, seed=seed, vocab_size=vocab_size)
        tr = get_trace(req, cache_dir)
        out += batches_from_trace(tr, [g], rounds, source=f"synthetic (Zipf rows, V={vocab_size}, seed {seed})")
    return out


# ---- the production-style torch baseline ------------------------------------------------

@dataclass
class TorchInputs:
    """Float tensors as a server holds them after the target's softmax."""
    draft_probs: object      # float [B, g, V]
    target_probs: object     # float [B, g+1, V]
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
    """
    import torch
    p, q, x = inp.draft_probs, inp.target_probs, inp.draft_tokens
    B, g, V = p.shape
    rows = torch.arange(B)
    if inp.greedy:
        target_argmax = q.argmax(dim=-1)                       # [B, g+1], ties to lowest index
        ok = x == target_argmax[:, :g]
    else:
        p_x = p.gather(-1, x.unsqueeze(-1)).squeeze(-1)
        q_x = q[:, :g].gather(-1, x.unsqueeze(-1)).squeeze(-1)
        ok = inp.accept_u * p_x < q_x
    rejected = ~ok
    any_rejected = rejected.any(dim=1)
    # first rejection = number accepted; argmax over a bool row returns the first True
    accepted = torch.where(any_rejected, rejected.to(torch.int8).argmax(dim=1), torch.full((B,), g))
    if inp.greedy:
        return accepted, target_argmax[rows, accepted]
    residual = (q[:, :g] - p).clamp_min_(0)                    # all positions at once, as servers do
    j = accepted.clamp(max=g - 1)
    weights = torch.where(any_rejected.unsqueeze(1), residual[rows, j], q[:, g])
    cdf = weights.cumsum(dim=-1)
    threshold = (inp.sample_u * cdf[:, -1]).unsqueeze(1)
    token = torch.searchsorted(cdf, threshold, right=True).squeeze(1).clamp_(max=V - 1)
    return accepted, token


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
    disagreements: dict = field(default_factory=dict)   # gamma -> rounds where torch != FL


def hades_seconds(batch: RoundBatch, hw: VerifierConfig, clock_hz: float) -> tuple[int, float]:
    """Total modeled cycles of the batch and the seconds they take at clock_hz."""
    cycles = sum(r.cycles for r in timed_results(TimingConfig(hw=hw, clock_hz=clock_hz), batch.rounds))
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
    result = BenchResult(rows=[], torch_threads=torch.get_num_threads())
    for b in batches:
        rows, disagree = bench_batch(b, bc)
        result.rows += rows
        result.disagreements[b.gamma] = disagree
        if progress:
            progress(1)
    return result


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
    buf = io.StringIO()
    buf.write(f"{'gamma':>5}  {'implementation':<44} {'kind':<8} {'tokens/s':>12} {'HADES x':>9}  note\n")
    for r in rows:
        tps = f"{r.tokens_per_s:,.0f}" if r.tokens_per_s is not None else "-"
        sp = f"{r.hades_speedup:.2f}" if r.hades_speedup is not None else "-"
        buf.write(f"{r.gamma:>5}  {r.implementation:<44} {r.kind:<8} {tps:>12} {sp:>9}  {r.note}\n")
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
