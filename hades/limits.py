"""Every numeric parameter's range, declared once, and the one check that enforces it.

The dataclasses of the API (VerifierConfig, TimingConfig, TimingSettings, SweepSpec,
SyntheticSpec, TraceRequest, DecodeConfig) check their fields with these declarations, and
the command line builds its argparse `type=` functions from the same ones
(`LANES.arg()`), so a value is refused before any work starts, by the same rule and with
the same message at the API and on the command line:

    lanes must be a power of two in 1..2^24, got 2^70
    offchip_bw must be a finite number in [2^-8, 2^24], got 1e-300

A check accepts Python and numpy integers (and returns a Python int), and refuses bools,
floats where an integer is meant, NaN and infinities. Huge values are shown compactly
(2^70, 10^30, 1.181e+21). docs/NUMERICS.md (section 11) tabulates the limits, with the
reason for each; the reason is also kept here, next to the number.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from hades.errors import ConfigError

# ---- showing numbers compactly ---------------------------------------------------------------

_COMPACT_FROM = 10 ** 12


def show(value) -> str:
    """A value for an error message: exact when short, 2^k / 10^k / 1.234e+21 when huge."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if abs(v) < _COMPACT_FROM:
            return str(v)
        sign, a = ("-" if v < 0 else ""), abs(v)
        if a & (a - 1) == 0:
            return f"{sign}2^{a.bit_length() - 1}"
        if (a + 1) & a == 0:
            return f"{sign}2^{a.bit_length()} - 1"
        digits = str(a) if a.bit_length() < 4000 else ""
        if digits and digits.strip("0") == "1":
            return f"{sign}10^{len(digits) - 1}"
        return f"{sign}{float(a):.4g}" if a.bit_length() < 1024 else f"{sign}2^{a.bit_length() - 1}..."
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return repr(v) if v == 0 or (math.isfinite(v) and 1e-4 <= abs(v) < 1e16) else f"{v:g}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bound(v) -> str:
    """A range bound: powers of two (and 2^k - 1) beyond 10^5 as 2^k, so ranges stay readable."""
    if isinstance(v, float):
        if v == math.inf:
            return "inf"
        m, e = math.frexp(v)
        if v > 0 and m == 0.5 and abs(e - 1) >= 8:
            return f"2^{e - 1}"
        if v >= 1e6 and v == int(v) and str(int(v)).strip("0") == "1":
            return f"10^{len(str(int(v))) - 1}"
        return f"{v:g}"
    if v > 100_000 and v & (v - 1) == 0:
        return f"2^{v.bit_length() - 1}"
    if v > 100_000 and (v + 1) & v == 0:
        return f"2^{v.bit_length()} - 1"
    return str(v)


def _arg_type(parse, name: str):
    """An argparse type function: the limit's message, as one line, exit 2."""
    def convert(text):
        try:
            return parse(text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = name
    return convert


# ---- the two kinds of declaration -------------------------------------------------------------

class _Limit:
    """What both kinds share, on top of their check(value, name) and parse(text, name)."""

    def check_optional(self, value, name: str | None = None):
        return None if value is None else self.check(value, name)

    def arg(self, name: str | None = None):
        """argparse type= function for an option holding one such value."""
        return _arg_type(lambda text: self.parse(text, name), name or self.name)


@dataclass(frozen=True)
class IntLimit(_Limit):
    """An integer parameter in lo..hi (inclusive), optionally a power of two."""
    name: str
    lo: int
    hi: int
    why: str
    power_of_two: bool = False

    def describe(self, integer: bool = False) -> str:
        span = f"{_bound(self.lo)}..{_bound(self.hi)}"
        kind = "an integer " if integer else ""
        if self.power_of_two:
            return f"{kind or 'a '}power of two in {span}"
        return f"{kind}in {span}"

    def ok(self, v: int) -> bool:
        return self.lo <= v <= self.hi and not (self.power_of_two and v & (v - 1))

    def check(self, value, name: str | None = None) -> int:
        """value as a Python int, or ConfigError naming the parameter and its range."""
        name = name or self.name
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"{name} must be {self.describe(integer=True)}, got {show(value)}"
                              f" ({type(value).__name__})")
        v = int(value)
        if not self.ok(v):
            raise ConfigError(f"{name} must be {self.describe()}, got {show(v)}")
        return v

    def parse(self, text, name: str | None = None) -> int:
        """Command-line text -> checked int (decimal digits only; no floats, no '2^k')."""
        try:
            v = int(str(text).strip())
        except ValueError:
            raise ConfigError(f"{name or self.name} must be {self.describe(integer=True)}, "
                              f"got {show(str(text))}") from None
        return self.check(v, name)


@dataclass(frozen=True)
class FloatLimit(_Limit):
    """A finite real parameter in [lo, hi] (either end may be open; hi = inf: no upper bound)."""
    name: str
    lo: float
    hi: float
    why: str
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        if self.hi == math.inf:
            return f"a finite number {'>' if self.lo_open else '>='} {_bound(self.lo)}"
        return (f"a finite number in {'(' if self.lo_open else '['}{_bound(self.lo)}, "
                f"{_bound(self.hi)}{')' if self.hi_open else ']'}")

    def ok(self, v: float) -> bool:
        return (math.isfinite(v) and (v > self.lo if self.lo_open else v >= self.lo)
                and (v < self.hi if self.hi_open else v <= self.hi))

    def check(self, value, name: str | None = None) -> float:
        name = name or self.name
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ConfigError(f"{name} must be {self.describe()}, got {show(value)} ({type(value).__name__})")
        try:
            v = float(value)
        except OverflowError:
            raise ConfigError(f"{name} must be {self.describe()}, got {show(value)}") from None
        if not self.ok(v):
            raise ConfigError(f"{name} must be {self.describe()}, got {show(v)}")
        return v

    def parse(self, text, name: str | None = None) -> float:
        try:
            v = float(str(text).strip())
        except ValueError:
            raise ConfigError(f"{name or self.name} must be {self.describe()}, got {show(str(text))}") from None
        return self.check(v, name)


# ---- the hardware (VerifierConfig; every level) ----------------------------------------------

VOCAB_MAX = IntLimit("vocab_max", 2, 1 << 24,
                     "token ids and the vocabulary field of the header are at most 24 bits wide")
LANES = IntLimit("lanes", 1, 1 << 24,
                 "a beat of more lanes than the largest vocabulary carries only padding", power_of_two=True)
GAMMA_MAX = IntLimit("gamma_max", 0, 64, "drafts per round the block is built for")
GAMMA = IntLimit("gamma", 0, 64, "drafts in one round: no hardware verifies more than gamma_max <= 64")
PROB_BITS = IntLimit("prob_bits", 2, 24,
                     "W: rows sum to 2^W - 1; R * P needs U + W <= 64 bits at the widest U")
UNIFORM_BITS = IntLimit("uniform_bits", 1, 40, "U: with W <= 24 every product fits 64 bits")
SRAM_WORDS = IntLimit("sram_words", 1, 1 << 48,
                      "beyond any buffer; keeps every derived count (words, rows, bytes) far inside int64")
RTL_SRAM_WORDS = IntLimit("the RTL's buffer depth sram_words", 1, 1 << 20,
                          "PyMTL3 elaborates one signal per word (measured ~56 us and ~1.3 KB per word: "
                          "2^20 words is about a minute and 1.5 GB before simulating); use the CL model")
TREE_NODES_MAX = IntLimit("nodes_max", 2, 4096,
                          "N_max, nodes per tree round the tree block is built for (a synthetic tree has at most 4096)")
TREE_CHILDREN_MAX = IntLimit("children_max", 1, 64,
                             "k_max, children per node: the widths of a_i, b_i and S_i grow by z bits per child "
                             "(docs/TREES.md section 8)")
SRAM_KIB = IntLimit("sram_kib", 1, 1 << 32,
                    "sweep buffer sizes: 2^32 KiB is at most 2^44 words, inside sram_words' range")

# ---- trace producers (synthetic generator, LLM recorder, the trace cache) ---------------------

VOCAB_SIZE = IntLimit("vocab_size", 1, 1 << 24, "a trace no hardware (vocab_max <= 2^24) can verify is refused")
TRACE_UNIFORM_BITS = IntLimit("uniform_bits", 1, 64,
                              "the trace format's range (uint64 uniforms); the hardware takes 1..40 and "
                              "verify refuses a trace whose U differs from its own")
ROUNDS = IntLimit("rounds", 1, 1 << 20,
                  "rounds per trace; with the CL bounds every sum of cycles over rounds stays below 2^62")
SEED = IntLimit("seed", 0, (1 << 63) - 1, "numpy and torch seeds, JSON and CSV cells: a non-negative int64")
NEW_TOKENS = IntLimit("max_new_tokens", 1, 1 << 20, "tokens per decode")
TEMPERATURE = FloatLimit("temperature", 0.0, 1e6, "0 means greedy; beyond 10^6 every row is uniform anyway")
TOP_K = IntLimit("top_k", 0, 1 << 24, "0 is off; top_k >= V keeps every entry (the trace stores 0..2^24)")
TOP_P = FloatLimit("top_p", 0.0, 1.0, "a fraction, stored in units of 2^-16: 1 is off, 0 keeps nothing (refused)",
                   lo_open=True)
SHAPE = FloatLimit("shape parameter", 0.0, 100.0,
                   "synthetic row shapes (Zipf exponent, draft noise and power); beyond, softmax underflows")
TRACE_ENTRIES_MAX = 1 << 30     # probability entries a synthetic trace may hold in memory (~10 GiB)

# ---- the CL timing model (TimingConfig, TimingSettings) -----------------------------------------
# These bounds make the int64 arithmetic of hades.cl.timing exact for every accepted input;
# the proof is in hades/cl/timing.py.

OFFCHIP_BW = FloatLimit("offchip_bw", 2.0 ** -8, float(1 << 24),
                        "entries per cycle; a row then streams in at most 2^32 cycles")
INPUT_BW = FloatLimit("input_bw", 2.0 ** -8, float(1 << 24), "entries per cycle, as offchip_bw")
OFFCHIP_LATENCY = IntLimit("offchip_latency", 0, 1 << 32, "cycles; a round then takes fewer than 2^41 cycles")
CLOCK_HZ = FloatLimit("clock_hz", 1.0, 1e12, "1 Hz .. 1 THz, for tokens/s")

# ---- running the tools ------------------------------------------------------------------------

JOBS = IntLimit("jobs", 1, 1024, "local worker processes")
THREADS = IntLimit("threads", 1, 1024, "torch CPU threads")
THREADS_OR_DEFAULT = IntLimit("threads", 0, 1024, "torch CPU threads; 0: torch's default")
REPEATS = IntLimit("repeats", 1, 1000, "timed runs per implementation")
BENCH_GAMMA = IntLimit("gamma", 1, 64, "a benchmark needs at least one draft per round")
CHECK_ROUNDS = IntLimit("rtl_check_rounds", 0, 1 << 20, "rounds co-simulated (0: none)")
BATCH = IntLimit("batch", 1, 1 << 20, "rounds per RTL simulation run")
STALL_PROBABILITY = FloatLimit("stall probability", 0.0, 1.0,
                               "per beat or cycle; at 1 the stream never moves", hi_open=True)
SYNTH_TIMEOUT = FloatLimit("timeout", 0.0, 7 * 86400.0, "seconds per Yosys run (at most a week)", lo_open=True)
LIST_VALUES_MAX = 4096          # values one list option may expand to (1-16, 1-4,8, ...)

# ---- verification modes ---------------------------------------------------------------------------

MODES = ("stochastic", "greedy")


def check_mode(value, name: str = "mode") -> str:
    if not isinstance(value, str) or value not in MODES:
        raise ConfigError(f"{name} must be {' or '.join(MODES)}, got {value!r}")
    return value


def check_fields(obj, limits: dict, optional: tuple = ()) -> None:
    """Check obj's fields against their limits and store the normalised values (Python ints
    and floats instead of numpy scalars), also on frozen dataclasses. Fields named in
    optional may be None."""
    for field_name, limit in limits.items():
        value = getattr(obj, field_name)
        if value is None and field_name in optional:
            continue
        object.__setattr__(obj, field_name, limit.check(value, field_name))


def check_values(values, limit, name: str | None = None) -> tuple:
    """A non-empty sequence of values, each checked, as a tuple of Python numbers."""
    name = name or limit.name
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{name} must be a sequence of values {limit.describe()}, got {show(values)}")
    out = tuple(limit.check(v, name) for v in values)
    if not out:
        raise ConfigError(f"{name} needs at least one value {limit.describe()}")
    return out


def check_trace_size(rounds: int, gamma_max: int, vocab_size: int) -> None:
    """A synthetic trace is built in memory: R rounds x (2G + 1) rows x V entries."""
    entries = rounds * (2 * gamma_max + 1) * vocab_size
    if entries > TRACE_ENTRIES_MAX:
        raise ConfigError(f"a trace of {rounds} rounds x {2 * gamma_max + 1} rows x {vocab_size} entries "
                          f"({show(entries)} entries) is above the {_bound(TRACE_ENTRIES_MAX)} entries built "
                          "in memory; use fewer rounds or a smaller vocabulary")
