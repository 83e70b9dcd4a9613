"""One place that hands out decode traces by their parameters, from a disk cache.

    req = TraceRequest(source="synthetic", gamma=4, rounds=64, vocab_size=49152)
    trace = get_trace(req)        # hades.traces.format.Trace, built once, then read from disk
    summary = get_summary(req)    # only what timing needs: gamma, accepted, token per round
    logits = get_trace(replace(req, trace_format=2))   # a v2 LogitTrace (bf16 logit rows)
    get_summary(replace(req, trace_format=2))          # + per-round greedy, one-hot and the block's drafts

Files live under <repo>/.cache/traces/ (or a cache_dir the caller names), keyed by a hash of
every parameter that shapes the trace plus the producer's version, so a changed generator
never serves a stale file. Every file is written atomically (temporary file, then rename):
two processes that build the same trace at once both end with the same complete file.

Sources:
  "synthetic"  hades.traces.synthetic.synthetic_trace (Zipf-shaped rows, reproducible from the seed);
               with trace_format=2, hades.traces.synthetic.synthetic_logit_trace (bf16 logit rows)
  "real"       speculative decoding of a fixed prompt with the embedded SmolLM2-135M target and
               prompt-lookup drafts (draft="layer-skip": the pair's layer-skip draft), T = 0.7,
               recorded by hades.llm.specdec (trace_format=2: bf16
               logit rows and the logit numerics); the model is loaded on the first cache miss
               only (pass a hades.llm.models.PairLoader to share one load).
A nested request (TraceRequest.nested_from) is cut from the trace at a larger gamma.

The summary (a small JSON next to the trace) exists so that sweeps, which need only the
per-round decisions, do not re-read and re-validate hundreds of MB of probability rows on
every run. It is written only after a sample of the recorded decisions has been re-derived
with the FL golden model (verify_round; for v2 traces logit_block_output, which also re-samples
the draft tokens), so a summary on disk is a checked one. Synthetic
traces are a pure function of their seed: get_summary keeps only their summary (writing the
compressed rows would cost as much as generating them); get_trace stores any trace.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hades import limits
from hades.errors import ConfigError, HadesError, TraceError
from hades.fl.verifier import logit_block_output, verify_round
from hades.llm.lookup import DEFAULT_NGRAM
from hades.llm.prompts import GROUNDED
from hades.paths import TRACE_CACHE_DIR

if TYPE_CHECKING:   # the LLM tooling is imported only when a real trace is recorded
    from hades.llm.models import PairLoader
from hades.fileio import atomic_write, build_lock
from hades.traces.format import Trace, read_trace, write_trace
from hades.traces.format_v2 import LogitTrace

SOURCES = ("synthetic", "real")
DEFAULT_CACHE_DIR = TRACE_CACHE_DIR
CACHE_FORMAT = "hades-trace-cache/1"   # bump when the key or the summary layout changes
SUMMARY_FORMAT = "hades-trace-summary/1"
SUMMARY_FORMAT_V2 = "hades-trace-summary/2"   # of v2 traces: v1's fields less row_sum, plus the logit block's


class TraceUnavailable(HadesError):
    """The requested trace source cannot produce traces on this machine."""


# Fields added after the cache format was fixed: left unset they stay out of the key, so the
# keys (and trace ids in sweep CSVs) of every earlier request are unchanged.
_KEY_IF_SET = ("prompt", "trace_format", "draft", "temperature")
_JSON_IF_SET = ("draft", "temperature")

# Drafts of real traces. "lookup" (prompt lookup, hades.llm.lookup, n-gram 1..3, one-hot rows) is
# the default: on the grounded REAL_TRACE_PROMPT it is accepted (0.5-0.8 per token), where the
# 22-layer layer-skip draft was accepted ~0.05-0.2 per draft slot and made every study degenerate.
# "layer-skip" is the embedded pair's layer-skip draft (hades.llm.models.DEFAULT_DRAFT_LAYERS).
REAL_DRAFTS = ("lookup", "layer-skip")
DEFAULT_REAL_DRAFT = "lookup"
# Temperature of real stochastic traces. At T = 1 the 135M target wanders off the passage and the
# lookup's acceptance collapses (0-0.8 accepted drafts per gamma-4 round on the grounded
# prompts); at T = 0.7 it stays on it (1.5 on REAL_TRACE_PROMPT). No top-k / top-p: a request
# has no filter fields, so the summaries (and the sweeps' CL timing, which reads no filter flags)
# hold unfiltered rounds only; `hades trace --top-k/--top-p` records filtered traces when asked.
DEFAULT_REAL_TEMPERATURE = 0.7


@dataclass(frozen=True)
class TraceRequest:
    """Everything that determines a trace. Rounds all use the same gamma.

    vocab_size is a synthetic parameter; real traces come from the embedded model pair, which
    fixes its own vocabulary, so it must be None for them (equal traces, equal keys).

    nested_from: derive the rounds from the trace at gamma = nested_from (same other
    parameters) by keeping each round's first gamma drafts, its first gamma + 1 target rows
    and its uniforms, and re-deciding it with the FL verifier. A gamma-g round cut from a
    longer one is exactly what a gamma-g run would verify in that context (drafts are
    proposed one at a time; q_1..q_{g+1} depend only on the context and x_1..x_g), so the
    statistics per round are unchanged; what changes is that every gamma sees the same
    contexts and uniforms (common random numbers: smoother gamma curves) and that one
    trace is built instead of one per gamma.

    prompt: real traces only, the text decoded (None: REAL_TRACE_PROMPT).

    draft: real traces only, one of REAL_DRAFTS (None: DEFAULT_REAL_DRAFT, filled in, so it is
    always part of a real request's key). A prompt-lookup round proposes at most gamma drafts,
    fewer (possibly none) where the lookup finds fewer: its rounds' gammas are 0..gamma, and a
    nested request cuts each round to min(gamma, its gamma), which is exactly what the lookup
    capped at gamma proposes in that context (it proposes a prefix of the same continuation).

    temperature: real traces only (None: DEFAULT_REAL_TEMPERATURE, filled in); greedy requests
    record plain softmax rows (temperature 1) whatever it says, as `hades trace` does.

    trace_format: None (or 1, stored as None) for v1 probability rows; 2 for a v2 trace of
    bf16 logit rows, with prob_bits as the weight bits W. The synthetic v2 rounds are those of
    LogitSyntheticSpec: mode "stochastic" makes every round stochastic (greedy_share 0; a
    quarter of the rounds have one-hot drafts, a quarter a masked token set, temperature
    0.5..1.5 and min-p 0, 0.05 or 0.1 per round), mode "greedy" every round greedy. Real v2
    traces are recorded at temperature 1, min-p 0 (DecodeConfig(trace_format=2)). A nested v2
    request cuts the logit rows as v1 cuts probability rows and re-decides each round with
    logit_block_output.
    """
    source: str
    gamma: int
    rounds: int
    seed: int = 0
    mode: str = "stochastic"
    prob_bits: int = 16
    uniform_bits: int = 32
    vocab_size: int | None = None
    nested_from: int | None = None
    prompt: str | None = None
    trace_format: int | None = None
    draft: str | None = None
    temperature: float | None = None

    def __post_init__(self):
        if self.source == "real" and self.draft is None:
            object.__setattr__(self, "draft", DEFAULT_REAL_DRAFT)
        if self.source == "real" and self.temperature is None:
            object.__setattr__(self, "temperature", DEFAULT_REAL_TEMPERATURE)
        if self.source == "real" and self.mode == "greedy":   # one key for one trace
            object.__setattr__(self, "temperature", 1.0)
        t = self.temperature
        if isinstance(t, (int, float, np.integer, np.floating)) and not isinstance(t, (bool, np.bool_)):
            object.__setattr__(self, "temperature", float(t))   # 1 and 1.0: one key
        fmt = self.trace_format
        if isinstance(fmt, (int, np.integer)) and not isinstance(fmt, (bool, np.bool_)) and int(fmt) in (1, 2):
            # v1 is the unset default, so that a v1 request has one key whichever way it is written
            object.__setattr__(self, "trace_format", None if int(fmt) == 1 else 2)

    def check(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"unknown trace source {self.source!r}; expected one of {', '.join(SOURCES)}")
        # ranges: hades/limits.py (a cached trace feeds a hardware configuration, so V >= 2)
        limits.check_fields(self, {"gamma": limits.GAMMA, "rounds": limits.ROUNDS, "seed": limits.SEED,
                                   "prob_bits": limits.PROB_BITS, "uniform_bits": limits.TRACE_UNIFORM_BITS,
                                   "nested_from": limits.GAMMA}, optional=("nested_from",))
        limits.check_mode(self.mode)
        if self.source == "synthetic":
            if self.vocab_size is None:
                raise ConfigError("synthetic traces need a vocabulary of at least 2, got None")
            limits.check_fields(self, {"vocab_size": limits.VOCAB_MAX})
        elif self.vocab_size is not None:
            raise ConfigError("real traces take their vocabulary from the model pair; do not set vocab_size")
        if self.source == "synthetic" and self.prompt is not None:
            raise ConfigError("synthetic traces have no prompt")
        if self.source == "synthetic" and self.draft is not None:
            raise ConfigError("synthetic traces have no draft method")
        if self.source == "synthetic" and self.temperature is not None:
            raise ConfigError("synthetic traces have no temperature (their rows are drawn directly)")
        if self.source == "real":
            limits.check_fields(self, {"temperature": limits.TEMPERATURE})
            if self.temperature == 0:
                raise ConfigError("temperature 0 is greedy: set mode='greedy' instead")
        if self.source == "real" and self.draft not in REAL_DRAFTS:
            raise ConfigError(f"unknown draft {self.draft!r} for real traces; expected one of {', '.join(REAL_DRAFTS)}")
        if self.nested_from is not None and self.nested_from < self.gamma:
            raise ConfigError(f"a gamma-{self.gamma} trace cannot be cut from rounds of gamma {self.nested_from}")
        if self.trace_format is not None and (self.trace_format != 2 or type(self.trace_format) is not int):
            raise ConfigError(f"trace_format must be 1 or 2, got {self.trace_format!r}")

    @property
    def variable_gamma(self) -> bool:
        """Rounds may propose fewer than gamma drafts (prompt lookup): their gammas are 0..gamma."""
        return self.draft == "lookup"

    @property
    def base(self) -> "TraceRequest":
        """The request whose rounds a nested request is cut from (itself when not nested)."""
        return self if self.nested_from is None else replace(self, gamma=self.nested_from, nested_from=None)

    def producer_version(self) -> str:
        """Version of the code that builds this source's traces (part of the cache key)."""
        if self.source == "synthetic":
            from hades.traces.synthetic import LOGIT_TOOL_VERSION, TOOL_VERSION
            return LOGIT_TOOL_VERSION if self.trace_format == 2 else TOOL_VERSION
        return _real_recorder_version()

    def key(self) -> str:
        """Stable hash of all parameters and the producer version: the cache file's identity."""
        fields = {k: v for k, v in asdict(self).items() if not (k in _KEY_IF_SET and v is None)}
        payload = {"cache": CACHE_FORMAT, "producer": self.producer_version(), **fields}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return digest[:16]

    def file_stem(self) -> str:
        # readable prefix for people browsing the folder; the hash alone is the identity
        nested = "" if self.nested_from is None else f"-from{self.nested_from}"
        v2 = "" if self.trace_format is None else f"-v{self.trace_format}"
        draft = "" if self.draft is None else f"-{self.draft}"
        return (f"{self.source}{v2}{draft}-{self.mode}-g{self.gamma}{nested}-r{self.rounds}-s{self.seed}-w{self.prob_bits}"
                f"-{self.key()}")


@dataclass
class TraceSummary:
    """The per-round decisions of a trace plus what identifies it (small, picklable).

    A v2 (logit) trace's summary has no row_sum (each weight row carries its own sum) and holds
    what the logit block's timing needs besides: per round greedy and one-hot drafts, and the
    draft tokens the block samples [R, gamma] (for one-hot drafts the given ones)."""
    trace_id: str
    request: TraceRequest
    mode: str
    vocab_size: int
    row_sum: int | None            # None for v2
    prob_bits: int                 # W (v2: the weight rows' weight_bits)
    uniform_bits: int
    gamma_max: int
    gamma: np.ndarray              # int64 [R]
    accepted: np.ndarray           # int64 [R]  (FL decisions, re-derived and checked)
    token: np.ndarray              # int64 [R]
    meta: dict = field(default_factory=dict)
    round_greedy: np.ndarray | None = None   # v2: bool [R]
    onehot: np.ndarray | None = None         # v2: bool [R]
    draft_tokens: np.ndarray | None = None   # v2: int64 [R, gamma]

    @property
    def greedy(self) -> bool:
        return self.mode == "greedy"

    @property
    def trace_format(self) -> int:
        return self.request.trace_format or 1

    @property
    def weight_bits(self) -> int:
        """W under its v2 name (VerifierConfig.check_logit_trace reads it)."""
        return self.prob_bits

    @property
    def num_rounds(self) -> int:
        return len(self.gamma)

    def to_json(self) -> dict:
        # fields added with real drafts stay out when unset (synthetic): the JSON of earlier summaries
        request = {k: v for k, v in asdict(self.request).items() if not (k in _JSON_IF_SET and v is None)}
        d = {"format": SUMMARY_FORMAT, "trace_id": self.trace_id, "request": request,
             "mode": self.mode, "vocab_size": self.vocab_size, "row_sum": self.row_sum,
             "prob_bits": self.prob_bits, "uniform_bits": self.uniform_bits,
             "gamma_max": self.gamma_max, "gamma": self.gamma.tolist(),
             "accepted": self.accepted.tolist(), "token": self.token.tolist(), "meta": self.meta}
        if self.trace_format == 2:
            del d["row_sum"]
            d.update(format=SUMMARY_FORMAT_V2, greedy=self.round_greedy.astype(int).tolist(),
                     onehot=self.onehot.astype(int).tolist(), draft_tokens=self.draft_tokens.tolist())
        return d

    @classmethod
    def from_json(cls, d) -> "TraceSummary":
        """A summary from its JSON, every field checked (types, ranges, lengths, agreement with
        its request): anything else raises TraceError, which callers treat as a cache miss."""
        return _summary_from_json(d)


_SUMMARY_KEYS = {"format", "trace_id", "request", "mode", "vocab_size", "row_sum", "prob_bits", "uniform_bits",
                 "gamma_max", "gamma", "accepted", "token", "meta"}
_SUMMARY_KEYS_V2 = (_SUMMARY_KEYS - {"row_sum"}) | {"greedy", "onehot", "draft_tokens"}
# TraceRequest fields and their JSON types (None allowed for the optional ones)
_REQUEST_TYPES = {"source": str, "gamma": int, "rounds": int, "seed": int, "mode": str, "prob_bits": int,
                  "uniform_bits": int, "vocab_size": (int, None), "nested_from": (int, None), "prompt": (str, None),
                  "trace_format": (int, None), "draft": (str, None),
                  "temperature": (float, None)}
_REQUIRED_REQUEST = ("source", "gamma", "rounds")
_INT64_MAX = (1 << 63) - 1


def _bad_summary(msg: str):
    raise TraceError(f"trace summary: {msg}")


def _is_int(v) -> bool:
    # JSON numbers: a float (1e400 is inf, NaN, 4.0) or a bool is not an integer here
    return type(v) is int and -_INT64_MAX <= v <= _INT64_MAX


def _summary_int(d: dict, key: str, lo: int, hi: int) -> int:
    v = d[key]
    if not _is_int(v) or not lo <= v <= hi:
        _bad_summary(f"{key!r} = {v!r}, expected an integer in {lo}..{hi}")
    return v


def _summary_ints(d: dict, key: str, n: int, lo, hi) -> np.ndarray:
    """A list of n integers; lo and hi are ints or int64 arrays of length n (bounds per entry)."""
    v = d[key]
    if type(v) is not list or len(v) != n:
        _bad_summary(f"{key!r}: expected a list of {n} integers (one per round), got "
                     f"{type(v).__name__}{'' if type(v) is not list else f' of {len(v)}'}")
    if not all(_is_int(x) for x in v):
        _bad_summary(f"{key!r}: entries must be integers")
    arr = np.array(v, np.int64)
    bad = np.flatnonzero((arr < lo) | (arr > hi))
    if bad.size:
        r = int(bad[0])
        _bad_summary(f"{key!r}, round {r}: {int(arr[r])} out of range")
    return arr


def _summary_token_rows(d: dict, key: str, n: int, width: int, vocab_size: int) -> np.ndarray:
    """n lists (one per round) of `width` tokens in 0..V-1, as int64 [n, width]."""
    v = d[key]
    if type(v) is not list or len(v) != n or not all(type(row) is list and len(row) == width for row in v):
        _bad_summary(f"{key!r}: expected {n} lists (one per round) of {width} integers")
    if not all(_is_int(x) for row in v for x in row):
        _bad_summary(f"{key!r}: entries must be integers")
    arr = np.array(v, np.int64).reshape(n, width)
    bad = np.argwhere((arr < 0) | (arr >= vocab_size))
    if bad.size:
        r, t = map(int, bad[0])
        _bad_summary(f"{key!r}, round {r}, slot {t}: token {int(arr[r, t])} outside 0..{vocab_size - 1}")
    return arr


def _summary_request(r) -> TraceRequest:
    if type(r) is not dict or not set(r) <= set(_REQUEST_TYPES) or not all(k in r for k in _REQUIRED_REQUEST):
        _bad_summary(f"'request': expected an object with the TraceRequest fields, got {r!r:.200}")
    for k, v in r.items():
        types = _REQUEST_TYPES[k]
        types = types if isinstance(types, tuple) else (types,)
        ok = any((v is None) if t is None else (_is_int(v) if t is int else type(v) is t) for t in types)
        if not ok:
            _bad_summary(f"'request': field {k!r} = {v!r:.200}")
    req = TraceRequest(**r)
    try:
        req.check()
    except ConfigError as e:
        _bad_summary(f"'request': {e}")
    return req


def _summary_from_json(d) -> TraceSummary:
    if type(d) is not dict:
        _bad_summary(f"expected a JSON object, got {type(d).__name__}")
    if d.get("format") not in (SUMMARY_FORMAT, SUMMARY_FORMAT_V2):
        _bad_summary(f"format {d.get('format')!r:.100}, expected {SUMMARY_FORMAT!r} or {SUMMARY_FORMAT_V2!r}")
    v2 = d["format"] == SUMMARY_FORMAT_V2
    keys = _SUMMARY_KEYS_V2 if v2 else _SUMMARY_KEYS
    if set(d) != keys:
        _bad_summary(f"keys {sorted(set(d) ^ keys)} missing or unexpected")
    req = _summary_request(d["request"])
    if (req.trace_format == 2) != v2:
        _bad_summary(f"format {d['format']!r} but the request's trace_format is {req.trace_format or 1}")
    trace_id = d["trace_id"]
    if type(trace_id) is not str or trace_id != req.key():
        _bad_summary(f"trace_id {trace_id!r:.100} is not the key of its request ({req.key()})")
    if d["mode"] != req.mode:
        _bad_summary(f"mode {d['mode']!r:.100}, but the request says {req.mode!r}")
    prob_bits = _summary_int(d, "prob_bits", req.prob_bits, req.prob_bits)
    uniform_bits = _summary_int(d, "uniform_bits", req.uniform_bits, req.uniform_bits)
    if not (1 <= prob_bits <= 31 and 1 <= uniform_bits <= 64):
        _bad_summary(f"prob_bits={prob_bits} or uniform_bits={uniform_bits} outside the trace format's range")
    row_sum = None if v2 else _summary_int(d, "row_sum", 1, (1 << prob_bits) - 1)
    V = req.vocab_size
    vocab_size = _summary_int(d, "vocab_size", V or 1, V or _INT64_MAX)
    gamma_max = _summary_int(d, "gamma_max", req.gamma, _INT64_MAX)
    R = req.rounds   # every source yields exactly the rounds asked for
    # every round has the request's gamma (prompt lookup: at most that many)
    gamma = _summary_ints(d, "gamma", R, 0 if req.variable_gamma else req.gamma, req.gamma)
    accepted = _summary_ints(d, "accepted", R, 0, gamma)
    token = _summary_ints(d, "token", R, 0, vocab_size - 1)
    if type(d["meta"]) is not dict:
        _bad_summary("'meta': expected a JSON object")
    logit = {}
    if v2:
        greedy = _summary_ints(d, "greedy", R, 0, 1).astype(bool)
        if not (greedy == (req.mode == "greedy")).all():
            _bad_summary(f"'greedy': every round of a {req.mode} request must be {req.mode}")
        logit = dict(round_greedy=greedy, onehot=_summary_ints(d, "onehot", R, 0, 1).astype(bool),
                     draft_tokens=_summary_token_rows(d, "draft_tokens", R, req.gamma, vocab_size))
    return TraceSummary(trace_id=trace_id, request=req, mode=req.mode, vocab_size=vocab_size, row_sum=row_sum,
                        prob_bits=prob_bits, uniform_bits=uniform_bits, gamma_max=gamma_max, gamma=gamma,
                        accepted=accepted, token=token, meta=d["meta"], **logit)


def trace_path(req: TraceRequest, cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or DEFAULT_CACHE_DIR) / f"{req.file_stem()}.npz"


def _summary_path(req: TraceRequest, cache_dir: str | Path | None) -> Path:
    return Path(cache_dir or DEFAULT_CACHE_DIR) / f"{req.file_stem()}.summary.json"


def get_trace(req: TraceRequest, cache_dir: str | Path | None = None,
              pair_loader: PairLoader | None = None) -> Trace | LogitTrace:
    """The trace for req: read from the cache, or built and cached when missing. A nested
    request is cut from its (cached) base trace on the fly: cutting costs less than reading."""
    return _trace_for(req, cache_dir, pair_loader, store=True)


def _trace_for(req: TraceRequest, cache_dir, pair_loader, store: bool) -> Trace | LogitTrace:
    req.check()
    if req.nested_from is not None:
        return cut_trace(_trace_for(req.base, cache_dir, pair_loader, store), req)
    path = trace_path(req, cache_dir)
    # real traces cost an LLM decode: a second process asking for the same one waits for the
    # first's file instead of recording it again (synthetic ones are cheap to make twice)
    lock = build_lock(path.parent, path.name) if store and req.source == "real" else contextlib.nullcontext()
    with lock:
        if path.is_file():
            try:
                return read_trace(path)
            except TraceError:
                # only a bug or a foreign hand could leave a bad file (writes are atomic):
                # rebuilding is the right repair, the key says what it must contain
                path.unlink(missing_ok=True)
        trace = produce_trace(req, pair_loader)
        if store:
            write_trace(path, trace)
    return trace


def _store_traces_for_summaries(req: TraceRequest) -> bool:
    """get_summary keeps the full trace on disk only when it is expensive to rebuild: a real
    trace (an LLM decode, and not bit-reproducible across library versions) yes; a synthetic
    one no (a pure function of its seed, and compressing its rows costs as much as making them)."""
    return req.source == "real"


def cached_summary(req: TraceRequest, cache_dir: str | Path | None = None) -> TraceSummary | None:
    """The cached summary for req, or None when it has not been built yet (never builds)."""
    req.check()
    path = _summary_path(req, cache_dir)
    if not path.is_file():
        return None
    try:
        summary = TraceSummary.from_json(json.loads(path.read_bytes()))
    except (TraceError, ValueError, RecursionError, OSError):
        # unreadable or not what to_json writes (hand-edited, truncated, another version):
        # a miss, and get_summary rebuilds it from the trace. from_json checks every field, so
        # nothing it lets through can fail later.
        return None
    return summary if summary.trace_id == req.key() and summary.request == req else None


def get_summary(req: TraceRequest, cache_dir: str | Path | None = None,
                pair_loader: PairLoader | None = None) -> TraceSummary:
    """The checked per-round decisions of the trace for req (cached next to the trace)."""
    return get_summaries([req], cache_dir, pair_loader)[0]


def get_summaries(reqs: list[TraceRequest], cache_dir: str | Path | None = None,
                  pair_loader: PairLoader | None = None, progress=None) -> list[TraceSummary]:
    """Summaries of several requests; nested requests that share a base trace load or build
    it once. progress(n) is called as summaries become available."""
    out: dict[int, TraceSummary] = {}
    missing: dict[TraceRequest, list[int]] = {}
    for i, req in enumerate(reqs):
        summary = cached_summary(req, cache_dir)
        if summary is not None:
            out[i] = summary
            if progress:
                progress(1)
        else:
            missing.setdefault(req.base, []).append(i)
    for base, idx in missing.items():
        trace = _trace_for(base, cache_dir, pair_loader, store=_store_traces_for_summaries(base))
        for i in idx:
            req = reqs[i]
            if req.nested_from is None:
                out[i] = summarize(trace, req)
            else:   # cut_trace decided every round with the FL verifier already
                out[i] = summarize(cut_trace(trace, req), req, decided_by_fl=True)
            text = json.dumps(out[i].to_json(), sort_keys=True)
            atomic_write(_summary_path(req, cache_dir), lambda tmp, text=text: Path(tmp).write_text(text))
            if progress:
                progress(1)
    return [out[i] for i in range(len(reqs))]


def cut_trace(base: Trace | LogitTrace, req: TraceRequest) -> Trace | LogitTrace:
    """The rounds of base cut to req.gamma drafts (see TraceRequest.nested_from), re-decided
    with the FL verifier: a round that accepted all of its first gamma drafts now ends with
    the bonus sample from q_{gamma+1} instead of going on. v1 and v2 alike: the first gamma
    drafts (tokens, rows, uniforms) and the first gamma + 1 target rows of every round."""
    g = req.gamma
    if not req.variable_gamma and base.gamma.min() < g:
        raise TraceError(f"cannot cut gamma-{g} rounds from a trace with gamma {int(base.gamma.min())} rounds")
    decided = np.zeros(base.num_rounds, base.expected_accepted.dtype)
    # a lookup round that proposed fewer than g keeps all of them (slots past a round's gamma are zero padding)
    gammas = np.minimum(base.gamma, g).astype(base.gamma.dtype)
    common = dict(uniform_bits=base.uniform_bits, gamma=gammas,
                  draft_tokens=base.draft_tokens[:, :g], accept_uniforms=base.accept_uniforms[:, :g],
                  sample_uniform=base.sample_uniform, expected_accepted=decided, expected_token=decided.copy(),
                  meta={**base.meta, "nested": {"cut_to_gamma": g, "from_gamma": int(base.gamma_max)}})
    if isinstance(base, LogitTrace):
        cut = LogitTrace(vocab_size=base.vocab_size, weight_bits=base.weight_bits, greedy=base.greedy,
                         onehot_draft=base.onehot_draft, draft_logits=base.draft_logits[:, :g],
                         target_logits=base.target_logits[:, : g + 1], draft_params=base.draft_params,
                         target_params=base.target_params, draft_uniforms=base.draft_uniforms[:, :g], **common)
    else:
        cut = Trace(mode=base.mode, vocab_size=base.vocab_size, row_sum=base.row_sum, prob_bits=base.prob_bits,
                    draft_probs=base.draft_probs[:, :g], target_probs=base.target_probs[:, : g + 1], **common)
    for i in range(cut.num_rounds):
        decision = fl_decision(cut, i)[0]
        cut.expected_accepted[i], cut.expected_token[i] = decision
        # a round the base rejected before draft g (or one the cut left whole) is unchanged: a free cross-check
        # of the producer's recorded decision
        base_decision = (int(base.expected_accepted[i]), int(base.expected_token[i]))
        untouched = base_decision[0] < gammas[i] or gammas[i] == base.gamma[i]
        if untouched and decision != base_decision:
            raise TraceError(f"base trace of {req.file_stem()}, round {i}: recorded decision {base_decision} but "
                             f"the FL verifier gives {decision}")
    return cut


def fl_decision(trace: Trace | LogitTrace, i: int) -> tuple[tuple[int, int], list[int] | None]:
    """Round i's (accepted, token) by the FL golden model, and for a v2 trace the draft tokens
    the logit block samples (hades.fl.verifier.logit_block_output; None for v1 and for one-hot
    drafts, whose tokens are given)."""
    rnd = trace.round(i)
    if isinstance(trace, LogitTrace):
        out = logit_block_output(rnd, trace.weight_bits, trace.uniform_bits, where=f"round {i}")
        return out.result.decision(), [d.token for d in out.drafts] if out.drafts else None
    return verify_round(rnd, trace.row_sum, trace.uniform_bits).decision(), None


# Rounds whose recorded decision summarize re-derives with the FL verifier. Every producer
# (synthetic_trace, hades.llm.specdec) decides with verify_round itself, so a sample catches a
# foreign or stale producer at a fraction of the cost (converting a full-vocabulary round for
# verify_round takes ~20 ms, as long as timing thousands of rounds).
CHECKED_ROUNDS = 8


def summarize(trace: Trace | LogitTrace, req: TraceRequest, decided_by_fl: bool = False) -> TraceSummary:
    """The per-round decisions, with an evenly spread sample of rounds (first and last
    included) re-derived with the FL golden model and compared with the producer's recorded
    ones: a sweep must time the decisions the verifier really makes. For a v2 trace the sample
    is decided by the logit block's FL model (logit_block_output), whose sampled draft tokens
    must equal the recorded ones too.
    decided_by_fl: the recorded decisions come from the FL model in this process already."""
    accepted = trace.expected_accepted.astype(np.int64)
    token = trace.expected_token.astype(np.int64)
    R = trace.num_rounds
    sample = [] if decided_by_fl else sorted(set(np.linspace(0, R - 1, min(R, CHECKED_ROUNDS)).round().astype(int)))
    for i in map(int, sample):
        decision, drafts = fl_decision(trace, i)
        want = (int(trace.expected_accepted[i]), int(trace.expected_token[i]))
        if decision != want:
            raise TraceError(f"trace {req.file_stem()}, round {i}: recorded decision (accepted, token) = {want} "
                             f"but the FL verifier gives {decision}")
        recorded = trace.draft_tokens[i, : len(drafts or ())].tolist()
        if drafts is not None and drafts != recorded:
            raise TraceError(f"trace {req.file_stem()}, round {i}: recorded draft tokens {recorded} but the "
                             f"logit block samples {drafts}")
    common = dict(trace_id=req.key(), request=req, mode=trace.mode, vocab_size=int(trace.vocab_size),
                  uniform_bits=int(trace.uniform_bits), gamma_max=int(trace.gamma_max),
                  gamma=trace.gamma.astype(np.int64), accepted=accepted, token=token, meta=dict(trace.meta))
    if isinstance(trace, LogitTrace):
        return TraceSummary(row_sum=None, prob_bits=int(trace.weight_bits), round_greedy=trace.greedy.astype(bool),
                            onehot=trace.onehot_draft.astype(bool),
                            draft_tokens=trace.draft_tokens[:, : req.gamma].astype(np.int64), **common)
    return TraceSummary(row_sum=int(trace.row_sum), prob_bits=int(trace.prob_bits), **common)


def produce_trace(req: TraceRequest, pair_loader: PairLoader | None = None) -> Trace | LogitTrace:
    """Produce the trace for req from its source (no cache)."""
    req.check()
    if req.source == "synthetic" and req.trace_format == 2:
        from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
        return synthetic_logit_trace(LogitSyntheticSpec(
            vocab_size=req.vocab_size, rounds=req.rounds, gammas=(req.gamma,), seed=req.seed,
            weight_bits=req.prob_bits, uniform_bits=req.uniform_bits,
            greedy_share=1.0 if req.mode == "greedy" else 0.0))
    if req.source == "synthetic":
        from hades.traces.synthetic import SyntheticSpec, synthetic_trace
        spec = SyntheticSpec(vocab_size=req.vocab_size, rounds=req.rounds, gammas=(req.gamma,),
                             mode=req.mode, seed=req.seed, prob_bits=req.prob_bits,
                             uniform_bits=req.uniform_bits)
        return synthetic_trace(spec)
    return _build_real(req, pair_loader)


# ---- real traces (hades.llm.specdec with the embedded pair of hades.llm.models) ---------------------

# An input-grounded task (summarise a passage, keeping its dates: the first grounded prompt of
# `hades decode --prompt-set grounded`, whose Table I the sweep's speedup figure combines with):
# its answer reuses the passage, which is what prompt-lookup drafts feed on. Real traces run on
# past the end of the answer (stop_at_eos is off), so long traces also hold unaccepted stretches.
REAL_TRACE_PROMPT = dict(GROUNDED)["summarise"]
# torch threads while decoding: part of the key (float reductions may depend on the count).
# One, as `hades trace` / `hades decode` default to: batch-1 decoding of a small model is
# memory-bound, and two threads on a shared 2-core machine were measured far slower.
REAL_TRACE_THREADS = 1
# n-gram lengths the prompt lookup of real traces matches, longest first (part of the key)
REAL_TRACE_NGRAM = DEFAULT_NGRAM


def real_unavailable_reason() -> str | None:
    """Why real traces cannot be recorded here, or None when they can."""
    import importlib.util
    for module in ("hades.llm.specdec", "hades.llm.models", "torch", "transformers"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"the LLM trace recorder needs {module}, which is not installed"
    from hades.llm.models import embedded_gguf_path
    try:
        embedded_gguf_path()
    except HadesError as e:
        return str(e)
    return None


def _real_recorder_version() -> str:
    """Everything besides the request that changes a real trace's bits: the recorder and
    library versions, torch's thread count (float reductions), the model file, the draft's
    layers, the lookup's n-gram range and the default prompt."""
    reason = real_unavailable_reason()
    if reason is not None:
        return "unavailable"
    import importlib.metadata as md

    import torch
    import transformers

    from hades.llm.models import DEFAULT_DRAFT_LAYERS, embedded_gguf_path
    from hades.llm.specdec import TOOL_VERSION
    gguf = embedded_gguf_path()
    return json.dumps({"specdec": TOOL_VERSION, "versions": [torch.__version__, transformers.__version__,
                                                             md.version("numpy")],
                       "threads": REAL_TRACE_THREADS, "model_file": [gguf.name, gguf.stat().st_size],
                       "draft_layers": list(DEFAULT_DRAFT_LAYERS), "lookup_ngram": list(REAL_TRACE_NGRAM),
                       "prompt": REAL_TRACE_PROMPT},
                      sort_keys=True)


def _build_real(req: TraceRequest, pair_loader: PairLoader | None = None) -> Trace | LogitTrace:
    reason = real_unavailable_reason()
    if reason is not None:
        raise TraceUnavailable(f"real traces are unavailable: {reason}")
    from tqdm import tqdm

    from hades.llm.models import PairLoader
    from hades.llm.record import record_trace
    from hades.llm.specdec import DecodeConfig
    pair = (pair_loader or PairLoader()).get()
    # the request's format: 1 (probability rows, the default of a request) or 2 (bf16 logit rows)
    config = DecodeConfig(gammas=(req.gamma,), mode=req.mode, temperature=req.temperature, prob_bits=req.prob_bits,
                          uniform_bits=req.uniform_bits, seed=req.seed, max_new_tokens=None,
                          max_rounds=req.rounds, stop_at_eos=False, record=True,
                          trace_format=req.trace_format or 1,
                          lookup_ngram=REAL_TRACE_NGRAM if req.draft == "lookup" else None)
    # an LLM decode of many rounds takes minutes: show it (on a terminal only, like `hades trace`)
    with tqdm(total=req.rounds, unit="round", desc=f"recording real trace, gamma {req.gamma}", file=sys.stderr,
              disable=None, leave=False) as bar:
        # gamma_max = the request's gamma, also when no lookup round proposed that many (a nested
        # request cuts every gamma up to it from this file)
        trace = record_trace(pair, config, req.prompt or REAL_TRACE_PROMPT, threads=REAL_TRACE_THREADS,
                             on_round=lambda _res: bar.update(1), gamma_max=req.gamma)
    trace.meta["trace_cache"] = {"request": asdict(req), "key": req.key()}
    return trace
