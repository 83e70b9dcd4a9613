"""Design-space sweeps of the verifier with the CL timing model.

A sweep crosses gamma x SRAM size x lanes x probability width W over decode traces and
times every point on the trace's FL decisions with the CL timing of one of the two blocks
(BLOCKS): the logit block on v2 traces (hades.cl.logit_timing.logit_round_timing, bf16 logit
rows) or the probability-row block on v1 traces (hades.cl.timing.round_timing). One CSV
row per point, holding every configuration column and the metrics (SWEEP_COLUMNS).

Work is split into tasks, one per trace (gamma, W): a task fetches the trace's checked
decisions from hades.traces.cache (building the trace when missing, the expensive part)
and times all its hardware points (cheap: a few vectorised numpy passes per point). Tasks
run inline, in local processes, or on a Dask cluster; the same function runs everywhere.

The output CSV is rewritten atomically, sorted, after every finished task, so an
interrupted sweep leaves a valid CSV holding the points it finished; with resume=True
those points are skipped and the final file equals an uninterrupted run's byte for byte.
"""
from __future__ import annotations

import csv
import io
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from hades import limits
from hades.cl.logit_timing import logit_round_timing
from hades.cl.timing import TimingConfig, round_timing
from hades.config import VerifierConfig
from hades.errors import ConfigError
from hades.fileio import atomic_write, check_output_path, is_stream, output_lock
from hades.logit_protocol import BF16_BITS
from hades.traces.cache import (SOURCES, TraceRequest, TraceSummary, cached_summary,
                               get_summaries, get_summary)

DEFAULT_GAMMAS = (1, 2, 3, 4, 6, 8, 12, 16)
# A row of the SmolLM2 vocabulary (49152 x 16 bit) is 96 KiB, so gamma = 16 draft rows need
# 1.5 MiB: these sizes hold 1, 2, 4, 5, 8, 10, 16 and 21 rows and span the knee for every
# default gamma. 128 KiB is also one row of the largest supported vocabulary (65536) at W=16.
DEFAULT_SRAM_KIB = (128, 256, 384, 512, 768, 1024, 1536, 2048)
# The logit block buffers every row of a round, 2 gamma + 1 bf16 rows of 96 KiB at V = 49152
# (33 rows, 3.1 MiB at gamma 16): 3072 and 4096 KiB (32 and 42 rows) put the knee of every
# default gamma on the grid.
DEFAULT_LOGIT_SRAM_KIB = DEFAULT_SRAM_KIB + (3072, 4096)
# The probability-row block's RTL carries a beat in one signal (PyMTL3 signals stop at 1023
# bits), so 32 lanes is its widest at W = 16; the logit block's RTL goes to 256 lanes (lane
# groups, hades/rtl/beats.py): sweep it with --lanes 16,32,64,128,256.
DEFAULT_LANES = (16, 32)
DEFAULT_PROB_BITS = (16,)
DEFAULT_SYNTHETIC_VOCAB = 49152   # SmolLM2's vocabulary: synthetic sweeps put the knee where real ones do
DEFAULT_ROUNDS = 64
EMBEDDED_VOCAB = 49152            # logits width of the embedded SmolLM2-135M-Instruct (real traces)


# ---- the two blocks ----------------------------------------------------------------------------

@dataclass
class PointTiming:
    """A block's CL timing of R rounds as evaluate_point reads it (arrays of length R).
    Traffic is counted in units of traffic_bytes bytes (probability block: entries of W bits;
    logit block: bytes), so that the v1 columns keep their arithmetic bit for bit."""
    cycles: np.ndarray
    latency: np.ndarray
    input_cycles: np.ndarray
    scan_cycles: np.ndarray        # probability: the residual scan; logit: the engine's tail jobs
    offchip_rows: np.ndarray
    sram_traffic: np.ndarray
    offchip_traffic: np.ndarray
    traffic_bytes: float


def _probability_timing(tc: TimingConfig, s: TraceSummary) -> PointTiming:
    t = round_timing(tc, s.gamma, s.vocab_size, s.greedy, s.accepted, s.token)
    return PointTiming(t.cycles, t.latency, t.input_cycles, t.scan_cycles, t.offchip_rows, t.sram_entries,
                       t.offchip_entries, s.prob_bits / 8)


def _logit_timing(tc: TimingConfig, s: TraceSummary) -> PointTiming:
    t = logit_round_timing(tc, s.gamma, s.vocab_size, s.round_greedy, s.onehot, s.accepted, s.token,
                           s.draft_tokens)
    return PointTiming(t.cycles, t.latency, t.input_cycles, t.tail_cycles, t.offchip_rows, t.sram_traffic_bytes,
                       t.offchip_traffic_bytes, 1)


@dataclass(frozen=True)
class Block:
    """What a sweep needs to know of a block: its traces, its buffer words, its timing."""
    name: str
    trace_format: int | None             # TraceRequest.trace_format of its traces
    buffer_entry_bits: int | None        # bits of a buffered entry (None: W, the probability width)
    default_sram_kib: tuple[int, ...]
    check_trace: Callable                # (VerifierConfig, TraceSummary) -> None, raises TraceError
    timing: Callable                     # (TimingConfig, TraceSummary) -> PointTiming

    def entry_bits(self, prob_bits: int) -> int:
        return prob_bits if self.buffer_entry_bits is None else self.buffer_entry_bits


BLOCK_MODELS = {
    # v2 traces, bf16 logit rows: every row of a round is buffered (draft and target rows)
    "logit": Block("logit", 2, BF16_BITS, DEFAULT_LOGIT_SRAM_KIB, VerifierConfig.check_logit_trace, _logit_timing),
    # v1 traces, W-bit probability rows: the gamma draft rows are buffered
    "probability": Block("probability", None, None, DEFAULT_SRAM_KIB, VerifierConfig.check_trace,
                         _probability_timing),
}
BLOCKS = tuple(BLOCK_MODELS)
DEFAULT_BLOCK = "logit"


def block_of(summary: TraceSummary) -> Block:
    return BLOCK_MODELS["logit" if summary.trace_format == 2 else "probability"]


# ---- the CSV schema ------------------------------------------------------------------------
# (name, type, meaning). The type drives parsing on resume, so a re-read row formats to the
# same text as a freshly computed one.
CONFIG_COLUMNS = (
    ("block", str, "logit: the logit block on v2 traces (bf16 logit rows); probability: the probability-row "
                   "block on v1 traces"),
    ("source", str, "trace source: real or synthetic"),
    ("draft_model", str, "draft model of the trace (synthetic: the generator)"),
    ("target_model", str, "target model of the trace"),
    ("mode", str, "stochastic or greedy verification"),
    ("vocab_size", int, "V, entries per probability row"),
    ("rounds", int, "verification rounds in the trace"),
    ("seed", int, "trace seed"),
    ("gamma", int, "draft tokens per round"),
    ("nested_from", int, "0: a trace of its own per gamma; G: rounds cut from one gamma-G trace"),
    ("lanes", int, "L, entries per cycle"),
    ("prob_bits", int, "W, bits per probability entry"),
    ("uniform_bits", int, "U, bits per uniform"),
    ("sram_kib", int, "on-chip buffer, KiB"),
    ("sram_words", int, "on-chip buffer, words of L entries (W bits; logit block: bf16)"),
    ("sram_rows", int, "rows of V entries that fit on chip (probability block: draft rows; logit block: any row)"),
    ("clock_hz", float, "clock for tokens/s"),
    ("offchip_bw", float, "off-chip bandwidth, entries per cycle each way"),
    ("offchip_latency", int, "cycles before the first off-chip word of a scan"),
    ("trace_id", str, "hash of the trace parameters (the trace cache key)"),
)
METRIC_COLUMNS = (
    ("tokens_per_s", float, "verified tokens per second at clock_hz: sum(accepted + 1) / sum(cycles)"),
    ("tokens_per_round", float, "mean accepted + 1"),
    ("accepted_per_round", float, "mean accepted drafts"),
    ("acceptance_rate", float, "sum(accepted) / sum(gamma) (nan at gamma 0)"),
    ("cycles_per_round", float, "mean cycles from the first input beat to the result"),
    ("latency_per_round", float, "mean cycles after the last input beat"),
    ("input_cycles_per_round", float, "phase: input streaming with every row on chip"),
    ("tail_cycles_per_round", float, "phase: post-input tail (residual scan; logit block: the engine's last "
                                     "jobs) with every row on chip"),
    ("offchip_cycles_per_round", float, "phase: extra cycles because rows overflowed off chip"),
    ("scan_cycles_per_round", float, "mean residual-scan cycles (0 in rounds without a scan); logit block: "
                                     "cycles of the engine's tail jobs RS + RX or BX (0 in greedy rounds)"),
    ("offchip_rows_per_round", float, "mean rows kept off chip (probability block: draft rows)"),
    ("sram_bytes_per_round", float, "mean bytes written to + read from the on-chip buffer"),
    ("offchip_bytes_per_round", float, "mean bytes moved to + from off-chip memory"),
)
SWEEP_COLUMNS = tuple(name for name, _, _ in CONFIG_COLUMNS + METRIC_COLUMNS)
# the columns before `block` existed: such a CSV holds probability-block rows (read_csv reads it)
LEGACY_SWEEP_COLUMNS = SWEEP_COLUMNS[1:]
COLUMN_TYPES = {name: typ for name, typ, _ in CONFIG_COLUMNS + METRIC_COLUMNS}
# what makes two rows the same point (everything else is derived from these)
POINT_KEY = ("trace_id", "lanes", "sram_kib", "clock_hz", "offchip_bw", "offchip_latency")
SORT_KEY = ("block", "source", "draft_model", "target_model", "mode", "vocab_size", "rounds", "seed", "nested_from",
            "uniform_bits", "prob_bits", "lanes", "sram_kib", "gamma", "clock_hz", "offchip_bw",
            "offchip_latency", "trace_id")


@dataclass(frozen=True)
class TimingSettings:
    """CL-only timing parameters applied to every point (see hades.cl.timing.TimingConfig)."""
    clock_hz: float = 1.0e9
    offchip_bw: float = 4.0
    offchip_latency: int = 100

    def check(self) -> None:
        limits.check_fields(self, {"clock_hz": limits.CLOCK_HZ, "offchip_bw": limits.OFFCHIP_BW,
                                   "offchip_latency": limits.OFFCHIP_LATENCY})


@dataclass(frozen=True)
class HwPoint:
    lanes: int
    sram_kib: int


@dataclass(frozen=True)
class SweepSpec:
    """The grid and the trace parameters of a sweep."""
    gammas: tuple[int, ...] = DEFAULT_GAMMAS
    sram_kib: tuple[int, ...] | None = None   # None: the block's default_sram_kib
    lanes: tuple[int, ...] = DEFAULT_LANES
    prob_bits: tuple[int, ...] = DEFAULT_PROB_BITS
    rounds: int = DEFAULT_ROUNDS
    source: str = "real"
    vocab_size: int | None = None      # synthetic only (default DEFAULT_SYNTHETIC_VOCAB)
    seed: int = 0
    mode: str = "stochastic"
    uniform_bits: int = 32
    nested: bool = False               # cut every gamma's rounds from one trace at max(gammas)
    draft: str | None = None           # real only: TraceRequest.draft (None: prompt lookup)
    temperature: float | None = None   # real only: TraceRequest.temperature (None: 0.7)
    timing: TimingSettings = field(default_factory=TimingSettings)
    block: str = DEFAULT_BLOCK         # "logit" (v2 traces) or "probability" (v1 traces)

    def __post_init__(self):
        if self.sram_kib is None and self.block in BLOCK_MODELS:
            object.__setattr__(self, "sram_kib", BLOCK_MODELS[self.block].default_sram_kib)

    @property
    def block_model(self) -> Block:
        return BLOCK_MODELS[self.block]

    def check(self) -> None:
        """Refuse an impossible grid before any work starts, naming the offending value."""
        if self.block not in BLOCK_MODELS:
            raise ConfigError(f"unknown block {self.block!r}; expected one of {', '.join(BLOCKS)}")
        if self.source not in SOURCES:
            raise ConfigError(f"unknown trace source {self.source!r}; expected one of {', '.join(SOURCES)}")
        for name, limit in (("gammas", limits.GAMMA), ("sram_kib", limits.SRAM_KIB), ("lanes", limits.LANES),
                            ("prob_bits", limits.PROB_BITS)):
            if not getattr(self, name):
                raise ConfigError(f"the sweep needs at least one value of {name}")
            object.__setattr__(self, name, limits.check_values(getattr(self, name), limit))
        limits.check_fields(self, {"rounds": limits.ROUNDS, "seed": limits.SEED,
                                   "uniform_bits": limits.UNIFORM_BITS, "vocab_size": limits.VOCAB_MAX},
                            optional=("vocab_size",))
        limits.check_mode(self.mode)
        if not isinstance(self.timing, TimingSettings):
            raise ConfigError(f"timing must be a TimingSettings, got {type(self.timing).__name__}")
        self.timing.check()
        for req in self.trace_requests():
            req.check()
        for w in self.prob_bits:
            for lanes in self.lanes:
                # the hardware's own checks (beat width, field widths), before any trace is built
                VerifierConfig(lanes=lanes, vocab_max=self.vocab or 65536, gamma_max=max(self.gammas),
                               prob_bits=w, uniform_bits=self.uniform_bits)
        # real traces: V is the embedded model's logits width, known for sure only once a trace
        # exists (evaluate_point checks again); refusing a too-small SRAM now saves recording
        expected_vocab = self.vocab if self.vocab is not None else EMBEDDED_VOCAB
        for w in self.prob_bits:
            for lanes in self.lanes:
                for kib in self.sram_kib:
                    check_sram_holds_a_row(kib, lanes, self.block_model.entry_bits(w), expected_vocab)

    @property
    def vocab(self) -> int | None:
        """V when known before any trace exists (synthetic), else None."""
        if self.source == "synthetic":
            return self.vocab_size or DEFAULT_SYNTHETIC_VOCAB
        return None

    def trace_requests(self) -> list[TraceRequest]:
        """One trace per (gamma, W): W changes the quantised (v2: weight) rows and hence the
        decisions. The block's trace format: v2 for the logit block, v1 for the probability one."""
        nested_from = max(self.gammas) if self.nested else None
        return [TraceRequest(source=self.source, gamma=g, rounds=self.rounds, seed=self.seed, mode=self.mode,
                             prob_bits=w, uniform_bits=self.uniform_bits, vocab_size=self.vocab,
                             nested_from=nested_from, trace_format=self.block_model.trace_format,
                             draft=self.draft, temperature=self.temperature)
                for w in self.prob_bits for g in self.gammas]

    def hw_points(self) -> list[HwPoint]:
        return [HwPoint(lanes, kib) for lanes in self.lanes for kib in self.sram_kib]

    def num_points(self) -> int:
        return len(self.gammas) * len(self.prob_bits) * len(self.lanes) * len(self.sram_kib)


def sram_words_for(kib: int, lanes: int, entry_bits: int) -> int:
    """Words of L entries of entry_bits bits (W; bf16 for the logit block) in kib KiB
    (rounded down: a partial word holds nothing)."""
    return kib * 1024 * 8 // (lanes * entry_bits)


def check_sram_holds_a_row(kib: int, lanes: int, entry_bits: int, vocab: int) -> None:
    words = sram_words_for(kib, lanes, entry_bits)
    row_words = -(-vocab // lanes)
    if words < row_words:
        row_kib = row_words * lanes * entry_bits / 8192
        raise ConfigError(f"SRAM of {kib} KiB is smaller than one row: V={vocab} entries x {entry_bits} bits "
                          f"at {lanes} lanes need {row_kib:g} KiB")


# ---- one point -----------------------------------------------------------------------------

def _model_names(summary: TraceSummary) -> tuple[str, str]:
    meta = summary.meta
    if summary.request.source == "synthetic":
        kind = "logits" if summary.trace_format == 2 else "zipf"   # synthetic_logit_trace / synthetic_trace
        name = f"synthetic-{kind}(V={summary.vocab_size})"
        return name, name
    models = meta.get("models") if isinstance(meta.get("models"), dict) else {}
    draft = meta.get("draft_model") or meta.get("draft") or models.get("draft") or "unknown"
    target = meta.get("target_model") or meta.get("target") or models.get("target") or "unknown"
    return str(draft), str(target)


def evaluate_point(summary: TraceSummary, hw_point: HwPoint, timing: TimingSettings) -> dict:
    """Time every round of the trace on one hardware point with its block's CL timing (the
    logit block for a v2 trace, the probability block for v1); returns one CSV row (typed)."""
    block = block_of(summary)
    V, W = summary.vocab_size, summary.prob_bits
    L, kib = hw_point.lanes, hw_point.sram_kib
    entry_bits = block.entry_bits(W)
    check_sram_holds_a_row(kib, L, entry_bits, V)
    sram_words = sram_words_for(kib, L, entry_bits)
    hw = VerifierConfig(lanes=L, vocab_max=V, gamma_max=summary.gamma_max, prob_bits=W,
                        uniform_bits=summary.uniform_bits, sram_words=sram_words)
    block.check_trace(hw, summary)
    tc = TimingConfig(hw=hw, offchip_bw=timing.offchip_bw, offchip_latency=timing.offchip_latency,
                      clock_hz=timing.clock_hz)
    # the same rounds with every row on chip (the block's full buffer for gamma_max): the
    # reference that splits off-chip cost off
    on_chip = replace(tc, hw=replace(hw, sram_words=None), sram_words=None)
    t = block.timing(tc, summary)
    ideal = block.timing(on_chip, summary)

    gamma = summary.gamma
    tokens = summary.accepted + 1
    R = summary.num_rounds
    draft_model, target_model = _model_names(summary)
    req = summary.request
    row = {
        "block": block.name, "source": req.source, "draft_model": draft_model, "target_model": target_model, "mode": summary.mode,
        "vocab_size": V, "rounds": R, "seed": req.seed, "gamma": int(req.gamma),
        "nested_from": int(req.nested_from or 0), "lanes": L, "prob_bits": W,
        "uniform_bits": summary.uniform_bits, "sram_kib": kib, "sram_words": sram_words,
        "sram_rows": sram_words // hw.row_words, "clock_hz": float(timing.clock_hz),
        "offchip_bw": float(timing.offchip_bw), "offchip_latency": int(timing.offchip_latency),
        "trace_id": summary.trace_id,
        "tokens_per_s": float(tokens.sum() / t.cycles.sum() * timing.clock_hz),
        "tokens_per_round": float(tokens.mean()),
        "accepted_per_round": float(summary.accepted.mean()),
        "acceptance_rate": float(summary.accepted.sum() / gamma.sum()) if gamma.sum() else float("nan"),
        "cycles_per_round": float(t.cycles.mean()),
        "latency_per_round": float(t.latency.mean()),
        "input_cycles_per_round": float(ideal.input_cycles.mean()),
        "tail_cycles_per_round": float(ideal.latency.mean()),
        "offchip_cycles_per_round": float((t.cycles - ideal.cycles).mean()),
        "scan_cycles_per_round": float(t.scan_cycles.mean()),
        "offchip_rows_per_round": float(t.offchip_rows.mean()),
        "sram_bytes_per_round": float(t.sram_traffic.mean() * t.traffic_bytes),
        "offchip_bytes_per_round": float(t.offchip_traffic.mean() * t.traffic_bytes),
    }
    assert tuple(row) == SWEEP_COLUMNS, "evaluate_point and the CSV schema disagree"
    return row


# ---- tasks (one per trace; the unit of distribution and of resume) ----------------------------

@dataclass(frozen=True)
class SweepTask:
    request: TraceRequest
    hw_points: tuple[HwPoint, ...]
    timing: TimingSettings
    cache_dir: str | None = None      # None: the executing machine's default cache
    summary: TraceSummary | None = None   # set when the planner already has the decisions

    @property
    def cost(self) -> int:
        """Relative cost of building the trace: rows generated (for scheduling big ones first)."""
        return self.request.rounds * (2 * self.request.gamma + 1)


@dataclass
class TaskResult:
    rows: list[dict]
    trace_seconds: float       # fetching or building the trace's decisions
    timing_seconds: float      # round_timing over every point
    rounds_timed: int


def run_task(task: SweepTask) -> TaskResult:
    """Runs anywhere (inline, process pool, Dask worker): everything it needs is in task."""
    t0 = time.perf_counter()
    summary = task.summary if task.summary is not None else get_summary(task.request, task.cache_dir)
    t1 = time.perf_counter()
    rows = [evaluate_point(summary, hp, task.timing) for hp in task.hw_points]
    t2 = time.perf_counter()
    return TaskResult(rows, t1 - t0, t2 - t1, summary.num_rounds * len(rows))


# ---- CSV ------------------------------------------------------------------------------------

def format_value(value) -> str:
    if isinstance(value, float):
        return repr(value)      # shortest text that parses back to the same float
    return str(value)


def parse_row(raw: dict) -> dict:
    return {name: COLUMN_TYPES[name](raw[name]) for name in SWEEP_COLUMNS}


# What a row of this version can hold (read_csv refuses anything else, so a plot or a resume
# never works on NaN, negative or out-of-range numbers): the configuration columns are in
# their declared ranges (hades/limits.py), the metrics finite and >= 0 (rates and cycle
# counts > 0), and acceptance_rate is NaN only at gamma 0.
ROW_LIMITS = {
    "vocab_size": limits.VOCAB_MAX, "rounds": limits.ROUNDS, "seed": limits.SEED, "gamma": limits.GAMMA,
    "nested_from": limits.GAMMA, "lanes": limits.LANES, "prob_bits": limits.PROB_BITS,
    "uniform_bits": limits.UNIFORM_BITS, "sram_kib": limits.SRAM_KIB, "sram_words": limits.SRAM_WORDS,
    "sram_rows": limits.IntLimit("sram_rows", 0, 1 << 48, "rows that fit on chip"),
    "clock_hz": limits.CLOCK_HZ, "offchip_bw": limits.OFFCHIP_BW, "offchip_latency": limits.OFFCHIP_LATENCY,
}
_POSITIVE = limits.FloatLimit("metric", 0.0, float("inf"), "rates and cycle counts of a round", lo_open=True)
_NON_NEGATIVE = limits.FloatLimit("metric", 0.0, float("inf"), "counts and bytes")
for _name in ("tokens_per_s", "tokens_per_round", "cycles_per_round", "input_cycles_per_round"):
    ROW_LIMITS[_name] = _POSITIVE
for _name in ("accepted_per_round", "latency_per_round", "tail_cycles_per_round", "offchip_cycles_per_round",
              "scan_cycles_per_round", "offchip_rows_per_round", "sram_bytes_per_round", "offchip_bytes_per_round"):
    ROW_LIMITS[_name] = _NON_NEGATIVE
_RATE = limits.FloatLimit("acceptance_rate", 0.0, 1.0, "accepted / drafted")


def check_row(row: dict) -> None:
    """Refuse a typed row this version could not have written (ConfigError naming the column)."""
    if row["block"] not in BLOCK_MODELS:
        raise ConfigError(f"block {row['block']!r:.100}: expected one of {', '.join(BLOCKS)}")
    for name, limit in ROW_LIMITS.items():
        limit.check(row[name], name)
    limits.check_mode(row["mode"])
    if not (row["gamma"] == 0 and math.isnan(row["acceptance_rate"])):
        _RATE.check(row["acceptance_rate"], "acceptance_rate")


def point_key(row: dict) -> tuple:
    return tuple(row[k] for k in POINT_KEY)


def sort_rows(rows) -> list[dict]:
    return sorted(rows, key=lambda r: tuple(r[k] for k in SORT_KEY))


def write_csv(path: str | Path, rows) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SWEEP_COLUMNS)
    for row in sort_rows(rows):
        w.writerow([format_value(row[c]) for c in SWEEP_COLUMNS])
    text = buf.getvalue()
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), suffix=".csv")


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a sweep CSV, typed. Refuses a file with other columns (another tool or version);
    a CSV written before the `block` column existed holds probability-block rows."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = tuple(reader.fieldnames or ())
            legacy = header == LEGACY_SWEEP_COLUMNS
            if header != SWEEP_COLUMNS and not legacy:
                missing = [c for c in SWEEP_COLUMNS if c not in header]
                raise ConfigError(f"{path}: not a sweep CSV of this version (columns differ"
                                  + (f"; missing {missing[0]!r}" if missing else "") + ")")
            rows = []
            for raw in reader:
                row = parse_row({**raw, "block": "probability"} if legacy else raw)
                try:
                    check_row(row)
                except ConfigError as e:
                    raise ConfigError(f"{path}: line {reader.line_num}: {e} (not a row this version writes)") \
                        from None
                rows.append(row)
            return rows
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except (ValueError, KeyError, TypeError, csv.Error) as e:   # csv.Error: e.g. a field over the size limit
        raise ConfigError(f"{path}: malformed sweep CSV ({e})") from None


# ---- the driver ------------------------------------------------------------------------------

@dataclass
class SweepReport:
    rows: list[dict]
    points_run: int
    points_skipped: int
    tasks_run: int
    wall_seconds: float
    trace_seconds: float = 0.0     # summed over tasks (across workers)
    timing_seconds: float = 0.0
    rounds_timed: int = 0


def plan_tasks(spec: SweepSpec, done: set[tuple], cache_dir: str | None) -> list[SweepTask]:
    """Tasks for the points not in done, the most expensive trace first (shorter makespan)."""
    tasks = []
    for req in spec.trace_requests():
        trace_id = req.key()
        todo = tuple(hp for hp in spec.hw_points()
                     if (trace_id, hp.lanes, hp.sram_kib, float(spec.timing.clock_hz),
                         float(spec.timing.offchip_bw), int(spec.timing.offchip_latency)) not in done)
        if todo:
            tasks.append(SweepTask(req, todo, spec.timing, cache_dir))
    return sorted(tasks, key=lambda t: -t.cost)


def run_sweep(spec: SweepSpec, out: str | Path | None = None, **options) -> SweepReport:
    """Run the sweep (options: those of _run_sweep); with out, check it first and hold its
    lock (hades.fileio.output_lock) for the whole run: a second sweep writing the same file
    at the same time is refused at once instead of leaving only one run's rows."""
    if out is None:
        return _run_sweep(spec, None, **options)
    check_output_path(out)
    with output_lock(out):
        return _run_sweep(spec, out, **options)


def _run_sweep(spec: SweepSpec, out: str | Path | None = None, *, jobs: int = 2, scheduler: str | None = None,
               resume: bool = False, cache_dir: str | Path | None = None, progress: bool = False,
               max_tasks: int | None = None, pair_loader=None) -> SweepReport:
    """Run the sweep; with out, keep the CSV there up to date after every finished task
    (a stream such as /dev/stdout or a FIFO is written once, at the end).

    resume: keep the rows already in out (any grid) and skip the points they cover.
    max_tasks: stop after that many tasks (a deliberately partial sweep, for tests).
    pair_loader: a hades.llm.models.PairLoader to record missing real traces with (None: one
    is made, and the model loaded, only if a real trace is missing).
    progress: tqdm bars on stderr (shown when stderr is a terminal).
    """
    spec.check()
    jobs = limits.JOBS.check(jobs)
    start = time.perf_counter()
    stream = out is not None and is_stream(out)
    rows: dict[tuple, dict] = {}
    if resume and out is not None and not stream and Path(out).is_file():
        rows = {point_key(r): r for r in read_csv(out)}
    cache = str(cache_dir) if cache_dir is not None else None
    tasks = plan_tasks(spec, set(rows), cache)
    if max_tasks is not None:
        tasks = tasks[:max_tasks]
    todo_points = sum(len(t.hw_points) for t in tasks)
    report = SweepReport(rows=[], points_run=0, points_skipped=spec.num_points() - todo_points,
                         tasks_run=0, wall_seconds=0.0)
    t0 = time.perf_counter()
    tasks = _attach_summaries(tasks, cache, progress, pair_loader)
    report.trace_seconds += time.perf_counter() - t0

    from tqdm import tqdm
    bar = tqdm(total=todo_points, unit="pt", desc="sweep", file=sys.stderr,
               disable=None if progress else True,   # None: only on a terminal (project convention)
               dynamic_ncols=True)

    def finished(result: TaskResult):
        for row in result.rows:
            rows[point_key(row)] = row
        report.points_run += len(result.rows)
        report.tasks_run += 1
        report.trace_seconds += result.trace_seconds
        report.timing_seconds += result.timing_seconds
        report.rounds_timed += result.rounds_timed
        if out is not None and not stream:
            write_csv(out, rows.values())   # atomic: an interrupt leaves the last good file
        bar.update(len(result.rows))

    try:
        for result in _execute(tasks, jobs, scheduler):
            finished(result)
    finally:
        bar.close()
    if out is not None and (stream or not report.tasks_run):
        write_csv(out, rows.values())       # nothing was missing: still leave a sorted, complete file
    report.rows = sort_rows(rows.values())
    report.wall_seconds = time.perf_counter() - start
    return report


def _attach_summaries(tasks: list[SweepTask], cache_dir: str | None, progress: bool,
                      pair_loader=None) -> list[SweepTask]:
    """Give every task the decisions this machine already has, so that workers (or a Dask
    cluster without this cache) only time. Missing decisions are made here, in one process,
    when parallel workers would only waste work on them: real traces (one model load for all;
    torch already uses every core, and each worker would hold its own copy of the model) and
    nested gammas (one base trace serves every gamma; each worker would rebuild it).
    Synthetic traces of their own gamma are left to the tasks, which build them in parallel."""
    from tqdm import tqdm
    out = [replace(task, summary=cached_summary(task.request, cache_dir)) for task in tasks]
    here = [i for i, t in enumerate(out) if t.summary is None
            and (t.request.source == "real" or t.request.nested_from is not None)]
    if here:
        from hades.llm.models import PairLoader
        loader = pair_loader
        if loader is None and any(out[i].request.source == "real" for i in here):
            loader = PairLoader()
        with tqdm(total=len(here), unit="trace", desc="preparing traces", file=sys.stderr,
                  disable=None if progress else True) as bar:
            summaries = get_summaries([out[i].request for i in here], cache_dir, loader, progress=bar.update)
        for i, summary in zip(here, summaries):
            out[i] = replace(out[i], summary=summary)
    return out


def _execute(tasks: list[SweepTask], jobs: int, scheduler: str | None):
    """Yield TaskResults as tasks finish: inline, in a process pool, or on a Dask cluster."""
    if not tasks:
        return
    if scheduler is not None:
        yield from _execute_dask(tasks, scheduler)
    elif jobs == 1 or len(tasks) == 1 or all(t.summary is not None for t in tasks):
        # decisions at hand: timing them takes milliseconds, less than starting a process
        for task in tasks:
            yield run_task(task)
    else:
        import concurrent.futures as cf
        import multiprocessing
        # spawn: workers start clean (no inherited threads or locks from the parent)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx) as pool:
            futures = [pool.submit(run_task, t) for t in tasks]
            try:
                for fut in cf.as_completed(futures):
                    yield fut.result()
            finally:
                for fut in futures:
                    fut.cancel()


def _execute_dask(tasks: list[SweepTask], address: str):
    try:
        from dask.distributed import Client, as_completed
    except ImportError as e:  # pragma: no cover - dask is a declared dependency
        raise ConfigError(f"--scheduler needs dask.distributed ({e})") from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError) as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({type(e).__name__}: {e})") from None
    try:
        # pure=False: a task's result depends on the worker's cache only in speed, but we
        # never want Dask to merge or reuse tasks behind our back
        futures = [client.submit(run_task, t, pure=False, priority=t.cost) for t in tasks]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.cancel(futures)
    finally:
        client.close()


def summarize_rows(rows: list[dict]) -> dict:
    """A few headline numbers of a sweep (for the command's closing line)."""
    if not rows:
        return {}
    best = max(rows, key=lambda r: r["tokens_per_s"])
    return {"points": len(rows), "best_tokens_per_s": best["tokens_per_s"],
            "best_point": {k: best[k] for k in ("block", "gamma", "lanes", "sram_kib", "prob_bits")}}

