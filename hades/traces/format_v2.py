"""Trace files v2 (`hades-trace/2`, docs/TRACE_FORMAT.md "Trace file v2"): bf16 logit rows
and per-round sampling parameters, held as a `LogitTrace`.

The archive is read by the one reader, hades.traces.format.read_trace (the same bounded zip
directory and .npy header checks as v1); this module holds v2's key tables, its checks and
its in-memory form. Construction validates (validate_logit_trace), so does the writer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from hades import numerics
from hades.fl.verifier import draft_tokens_from_logits
from hades.round import LogitRound
from hades.traces.format import (FormatVersion, _PaddedRounds, _array_layout, _as_int64, _check_draft_tokens,
                                 _check_expected, _check_gamma, _check_layout, _check_positive,
                                 _check_uniform_bits, _check_uniforms, _fail, _padded_rounds, _padding,
                                 _read_scalars, parse_meta)

FORMAT_V2 = "hades-trace/2"
LOGIT_FORMAT = "bf16"
V2_SCALAR_KEYS = ("format", "vocab_size", "logit_format", "weight_bits", "uniform_bits", "logit_frac_bits",
                  "inv_temp_frac_bits", "meta")
V2_ARRAY_KEYS = ("gamma", "greedy", "onehot_draft", "draft_tokens", "draft_logits", "target_logits",
                 "draft_params", "target_params", "draft_uniforms", "accept_uniforms", "sample_uniform",
                 "expected_accepted", "expected_token")
PARAMS_FIELDS = ("k", "top_k", "top_p", "min_p")
_CHUNK_ENTRIES = 1 << 22   # logit entries checked per step (bounds the temporary masks to a few MiB)

# dtype kind (or exact dtypes) and shape of every array key, given R, G, V
_LAYOUT_V2 = {
    "gamma": ("iu", lambda R, G, V: (R,)),
    "greedy": ("iu", lambda R, G, V: (R,)),
    "onehot_draft": ("iu", lambda R, G, V: (R,)),
    "draft_tokens": ("iu", lambda R, G, V: (R, G)),
    "draft_logits": ("u", lambda R, G, V: (R, G, V)),
    "target_logits": ("u", lambda R, G, V: (R, G + 1, V)),
    "draft_params": ("iu", lambda R, G, V: (R, 4)),
    "target_params": ("iu", lambda R, G, V: (R, 4)),
    "draft_uniforms": ("u", lambda R, G, V: (R, G)),
    "accept_uniforms": ("u", lambda R, G, V: (R, G)),
    "sample_uniform": ("u", lambda R, G, V: (R,)),
    "expected_accepted": ("iu", lambda R, G, V: (R,)),
    "expected_token": ("iu", lambda R, G, V: (R,)),
}


@dataclass
class LogitTrace(_PaddedRounds):
    """A validated v2 trace held in memory. Arrays keep the file's shapes (padded to G).

    Rounds of one file may mix greedy and stochastic rounds and model and one-hot drafts;
    each round carries its own (k, top_k, top_p, min_p) per side (numerics.SamplingParams).
    weight_bits is W of the weight rows (NUMERICS.md section 13), the hardware's prob_bits.
    """
    vocab_size: int
    weight_bits: int
    uniform_bits: int
    gamma: np.ndarray
    greedy: np.ndarray
    onehot_draft: np.ndarray
    draft_tokens: np.ndarray
    draft_logits: np.ndarray
    target_logits: np.ndarray
    draft_params: np.ndarray
    target_params: np.ndarray
    draft_uniforms: np.ndarray
    accept_uniforms: np.ndarray
    sample_uniform: np.ndarray
    expected_accepted: np.ndarray
    expected_token: np.ndarray
    meta: dict = field(default_factory=dict)
    logit_format: str = LOGIT_FORMAT
    logit_frac_bits: int = numerics.LOGIT_FRAC_BITS
    inv_temp_frac_bits: int = numerics.INV_TEMP_FRAC_BITS

    format_version = 2

    def __post_init__(self):
        validate_logit_trace(self)

    @property
    def mode(self) -> str:
        """'greedy' or 'stochastic' when every round is, else 'mixed'."""
        g = self.greedy.astype(bool)
        return "greedy" if g.all() else "stochastic" if not g.any() else "mixed"

    def round(self, i: int) -> LogitRound:
        g = int(self.gamma[i])
        return LogitRound(
            greedy=bool(self.greedy[i]), onehot_draft=bool(self.onehot_draft[i]),
            draft_tokens=self.draft_tokens[i, :g].astype(np.int64),
            draft_logits=self.draft_logits[i, :g], target_logits=self.target_logits[i, : g + 1],
            draft_params=tuple(int(v) for v in self.draft_params[i]),
            target_params=tuple(int(v) for v in self.target_params[i]),
            draft_uniforms=self.draft_uniforms[i, :g].astype(np.uint64),
            accept_uniforms=self.accept_uniforms[i, :g].astype(np.uint64),   # U <= 64: never int64
            sample_uniform=int(self.sample_uniform[i]))


# ---- checks ----------------------------------------------------------------------------------

def _check_v2_scalars(vocab_size, logit_format, weight_bits, uniform_bits, logit_frac_bits,
                      inv_temp_frac_bits) -> None:
    _check_positive((("vocab_size", vocab_size), ("weight_bits", weight_bits), ("uniform_bits", uniform_bits),
                     ("logit_frac_bits", logit_frac_bits), ("inv_temp_frac_bits", inv_temp_frac_bits)))
    if logit_format != LOGIT_FORMAT:
        _fail(f"key 'logit_format': expected {LOGIT_FORMAT!r}, got {logit_format!r}")
    lo, hi = numerics.WEIGHT_BITS_RANGE
    if not lo <= weight_bits <= hi:
        _fail(f"key 'weight_bits': expected {lo}..{hi}, got {weight_bits}")
    _check_uniform_bits(uniform_bits)
    for name, v, fixed, what in (("logit_frac_bits", logit_frac_bits, numerics.LOGIT_FRAC_BITS, "F"),
                                 ("inv_temp_frac_bits", inv_temp_frac_bits, numerics.INV_TEMP_FRAC_BITS, "K_F")):
        if v != fixed:
            _fail(f"key '{name}': expected {fixed}, got {v} ({what} is fixed by the format, NUMERICS.md section 13)")


def _check_v2_layout(vocab_size: int, layout: dict) -> tuple[int, int]:
    """Dtypes and shapes of the array keys from {key: (dtype, shape)} (the arrays, or the
    members' .npy headers before anything is read). Returns (R, G)."""
    return _check_layout(vocab_size, layout, V2_ARRAY_KEYS, _LAYOUT_V2,
                         exact_dtypes=((("draft_logits", "target_logits"), np.uint16, "uint16 (bf16 bit patterns)"),),
                         uniform_keys=("draft_uniforms", "accept_uniforms", "sample_uniform"))


def _check_logit_rows(name: str, arr: np.ndarray, mask: np.ndarray, unit: str = "row") -> None:
    """No NaN or +inf and not every entry masked, in the live rows (mask [R, rows]); chunked
    over rounds so the temporary masks stay small. Messages name the row as `unit` (tree
    traces: "node")."""
    R, rows, V = arr.shape
    step = max(1, _CHUNK_ENTRIES // max(1, rows * V))
    for r0 in range(0, R, step):
        b, live = arr[r0: r0 + step], mask[r0: r0 + step]
        if not live.any():
            continue
        exp_ones = (b & 0x7F80) == 0x7F80
        bad = exp_ones & (b != numerics.BF16_NEG_INF) & live[:, :, None]
        if bad.any():
            r, t, i = map(int, np.argwhere(bad)[0])
            code = int(b[r, t, i])
            kind = "+inf" if code == numerics.BF16_POS_INF else "NaN"
            _fail(f"key '{name}', round {r0 + r}, {unit} {t}: entry {i} is {kind} (bf16 0x{code:04x}); "
                  "NaN and +inf make a logit row invalid")
        empty = (b == numerics.BF16_NEG_INF).all(axis=-1) & live
        if empty.any():
            r, t = map(int, np.argwhere(empty)[0])
            _fail(f"key '{name}', round {r0 + r}, {unit} {t}: every entry is masked (-inf); such a row is invalid")


def _check_params(name: str, params: np.ndarray) -> None:
    bad = np.flatnonzero(numerics.bad_sampling_params(_as_int64(params)))
    if bad.size:
        r = int(bad[0])
        numerics.check_sampling_params([int(v) for v in params[r]], f"key '{name}', round {r} ({', '.join(PARAMS_FIELDS)})")


def validate_logit_trace(tr: LogitTrace) -> None:
    """Raise TraceError on the first violation of the v2 contract (docs/TRACE_FORMAT.md)."""
    _check_v2_scalars(tr.vocab_size, tr.logit_format, tr.weight_bits, tr.uniform_bits, tr.logit_frac_bits,
                      tr.inv_temp_frac_bits)
    R, G = _check_v2_layout(tr.vocab_size, _array_layout(tr, V2_ARRAY_KEYS))
    V, W, U = int(tr.vocab_size), int(tr.weight_bits), int(tr.uniform_bits)

    g_arr, live, live_q = _check_gamma(tr.gamma, G)
    for name in ("greedy", "onehot_draft"):
        a = getattr(tr, name)
        bad = np.flatnonzero((a != 0) & (a != 1))
        if bad.size:
            r = int(bad[0])
            _fail(f"key '{name}', round {r}: {int(a[r])} is not 0 or 1")
    greedy, onehot = tr.greedy.astype(bool), tr.onehot_draft.astype(bool)
    live_p = live & ~onehot[:, None]                        # draft rows in use (one-hot drafts have none)

    _check_params("draft_params", tr.draft_params)
    _check_params("target_params", tr.target_params)

    _check_uniforms((("draft_uniforms", tr.draft_uniforms, live),
                     ("accept_uniforms", tr.accept_uniforms, live),
                     ("sample_uniform", tr.sample_uniform, np.ones(R, bool))), U, slots=True)
    toks = _check_draft_tokens(tr.draft_tokens, live, V)

    _check_logit_rows("draft_logits", tr.draft_logits, live_p)
    _check_logit_rows("target_logits", tr.target_logits, live_q)

    _check_expected(tr, g_arr, V)

    # a stochastic model draft must be the draft sample of its row and uniform (NUMERICS.md 16)
    for r in np.flatnonzero(~greedy & ~onehot & (g_arr > 0)):
        r, g = int(r), int(g_arr[r])
        drawn = draft_tokens_from_logits(tr.draft_logits[r, :g], tuple(int(v) for v in tr.draft_params[r]),
                                         tr.draft_uniforms[r, :g], W, U, where=f"round {r}")
        diff = np.flatnonzero(drawn != toks[r, :g])
        if diff.size:
            t = int(diff[0])
            _fail(f"key 'draft_tokens', round {r}, slot {t}: token {int(toks[r, t])} is not the draft sample of "
                  f"its row (D = {int(tr.draft_uniforms[r, t])} draws {int(drawn[t])}); a model draft must come "
                  "from the weights of its own draft row and parameters")


# ---- the reader's steps (hades.traces.format.read_trace) and the writer's arrays -----------------

def logit_scalar_fields(data: dict, fmt: str) -> dict:
    """The scalars every logit-row file (v2, and the tree file v3) holds, read and typed."""
    return _read_scalars(data, fmt, repr(fmt),
                         ("vocab_size", "weight_bits", "uniform_bits", "logit_frac_bits", "inv_temp_frac_bits"),
                         ("logit_format", "meta"))


def check_logit_scalar_fields(fields: dict) -> None:
    _check_v2_scalars(fields["vocab_size"], fields["logit_format"], fields["weight_bits"], fields["uniform_bits"],
                      fields["logit_frac_bits"], fields["inv_temp_frac_bits"])


def logit_scalar_arrays(tr, fmt: str) -> dict:
    """The scalar entries of a logit-row file (format tag, widths, meta bounded as the reader
    bounds it) from a trace object with those fields."""
    meta_text = json.dumps(tr.meta, sort_keys=True)
    parse_meta(meta_text)
    return dict(format=np.array(fmt), vocab_size=np.array(tr.vocab_size), logit_format=np.array(tr.logit_format),
                weight_bits=np.array(tr.weight_bits), uniform_bits=np.array(tr.uniform_bits),
                logit_frac_bits=np.array(tr.logit_frac_bits), inv_temp_frac_bits=np.array(tr.inv_temp_frac_bits),
                meta=np.array(meta_text))


def _v2_fields(data: dict) -> dict:
    return logit_scalar_fields(data, FORMAT_V2)


def _v2_layout(fields: dict, layout: dict) -> None:
    check_logit_scalar_fields(fields)
    _check_v2_layout(fields["vocab_size"], layout)


V2 = FormatVersion(FORMAT_V2, V2_SCALAR_KEYS, V2_ARRAY_KEYS, _v2_fields, _v2_layout,
                   lambda fields, arrays: LogitTrace(**fields, **arrays))


def file_arrays(tr: LogitTrace) -> dict:
    """{key: array} of the file, after validating the trace and bounding its meta like the
    reader does (the writer never writes a file read_trace refuses)."""
    validate_logit_trace(tr)
    arrays = {k: getattr(tr, k) for k in V2_ARRAY_KEYS}
    arrays.update(logit_scalar_arrays(tr, FORMAT_V2))
    return arrays


def params_array(params) -> np.ndarray:
    """(k, top_k, top_p, min_p) as the file's int64 [4] (checked)."""
    return np.array(numerics.check_sampling_params(params), np.int64)


def logit_trace_from_rounds(rounds, decisions, *, vocab_size: int, weight_bits: int, uniform_bits: int,
                            gamma_max: int | None = None, meta: dict | None = None) -> LogitTrace:
    """Pad LogitRounds and their (accepted, token) decisions into a validated LogitTrace: the
    one place where v2 producers (synthetic, the LLM recorder) lay out the file's arrays.
    Entries past a round's gamma stay zero, and so do the draft rows of one-hot rounds."""
    rounds, R, G, u_dtype = _padding(rounds, gamma_max, uniform_bits)
    V = vocab_size
    a = dict(gamma=np.zeros(R, np.int32), greedy=np.zeros(R, np.uint8), onehot_draft=np.zeros(R, np.uint8),
             draft_tokens=np.zeros((R, G), np.int32), draft_logits=np.zeros((R, G, V), np.uint16),
             target_logits=np.zeros((R, G + 1, V), np.uint16), draft_params=np.zeros((R, 4), np.int64),
             target_params=np.zeros((R, 4), np.int64), draft_uniforms=np.zeros((R, G), u_dtype),
             accept_uniforms=np.zeros((R, G), u_dtype), sample_uniform=np.zeros(R, u_dtype),
             expected_accepted=np.zeros(R, np.int32), expected_token=np.zeros(R, np.int32))
    for i, r, g, (acc, tok) in _padded_rounds(rounds, decisions, G):
        a["gamma"][i], a["greedy"][i], a["onehot_draft"][i] = g, bool(r.greedy), bool(r.onehot_draft)
        a["draft_tokens"][i, :g] = r.draft_tokens
        if not r.onehot_draft:
            a["draft_logits"][i, :g] = r.draft_logits
        a["target_logits"][i, : g + 1] = r.target_logits
        a["draft_params"][i] = params_array(r.draft_params)
        a["target_params"][i] = params_array(r.target_params)
        a["draft_uniforms"][i, :g] = r.draft_uniforms
        a["accept_uniforms"][i, :g] = r.accept_uniforms
        a["sample_uniform"][i] = r.sample_uniform
        a["expected_accepted"][i], a["expected_token"][i] = acc, tok
    return LogitTrace(vocab_size=V, weight_bits=weight_bits, uniform_bits=uniform_bits, meta=meta or {}, **a)
