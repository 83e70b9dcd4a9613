"""Trace files v1 (docs/TRACE_FORMAT.md): the one reader and the one writer.

The writer is atomic (temporary file in the target folder, then rename). The reader checks
every key and refuses a bad file with a TraceError that names the key, the round and what
was expected.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hades.errors import TraceError
from hades.fileio import atomic_write
from hades.round import Round

FORMAT = "hades-trace/1"
MODES = ("stochastic", "greedy")
ARRAY_KEYS = ("gamma", "draft_tokens", "draft_probs", "target_probs", "accept_uniforms",
              "sample_uniform", "expected_accepted", "expected_token")
SCALAR_KEYS = ("format", "mode", "vocab_size", "row_sum", "prob_bits", "uniform_bits", "meta")


@dataclass
class Trace:
    """A validated trace held in memory. Arrays keep the file's shapes (padded to G)."""
    mode: str
    vocab_size: int
    row_sum: int
    prob_bits: int
    uniform_bits: int
    gamma: np.ndarray
    draft_tokens: np.ndarray
    draft_probs: np.ndarray
    target_probs: np.ndarray
    accept_uniforms: np.ndarray
    sample_uniform: np.ndarray
    expected_accepted: np.ndarray
    expected_token: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        validate(self)

    @property
    def num_rounds(self) -> int:
        return len(self.gamma)

    @property
    def gamma_max(self) -> int:
        return self.draft_tokens.shape[1]

    @property
    def greedy(self) -> bool:
        return self.mode == "greedy"

    def round(self, i: int) -> Round:
        g = int(self.gamma[i])
        return Round(
            greedy=self.greedy,
            draft_tokens=self.draft_tokens[i, :g].astype(np.int64),
            draft_probs=self.draft_probs[i, :g].astype(np.int64),
            target_probs=self.target_probs[i, : g + 1].astype(np.int64),
            accept_uniforms=self.accept_uniforms[i, :g].astype(np.int64),
            sample_uniform=int(self.sample_uniform[i]),
        )

    def rounds(self):
        for i in range(self.num_rounds):
            yield self.round(i)


def _fail(msg: str):
    raise TraceError(msg)


def _check_array(name, arr, kinds, shape):
    if not isinstance(arr, np.ndarray):
        _fail(f"key '{name}': expected a numpy array, got {type(arr).__name__}")
    if arr.dtype.kind not in kinds:
        want = {"u": "unsigned integer", "i": "integer", "iu": "integer", "ui": "integer"}.get(kinds, kinds)
        _fail(f"key '{name}': expected {want} dtype, got {arr.dtype}")
    if arr.shape != shape:
        _fail(f"key '{name}': expected shape {shape}, got {arr.shape}")


def validate(tr: Trace) -> None:
    """Raise TraceError on the first violation of the trace contract."""
    if tr.mode not in MODES:
        _fail(f"key 'mode': expected one of {MODES}, got {tr.mode!r}")
    for name in ("vocab_size", "row_sum", "prob_bits", "uniform_bits"):
        v = getattr(tr, name)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            _fail(f"key '{name}': expected a positive integer, got {v!r}")
    if not 1 <= tr.prob_bits <= 31:
        _fail(f"key 'prob_bits': expected 1..31, got {tr.prob_bits}")
    if not 1 <= tr.uniform_bits <= 64:
        _fail(f"key 'uniform_bits': expected 1..64, got {tr.uniform_bits}")
    if tr.row_sum >= (1 << tr.prob_bits):
        _fail(f"key 'row_sum': {tr.row_sum} does not fit prob_bits={tr.prob_bits} (one-hot rows must fit)")
    g_arr = tr.gamma
    if not isinstance(g_arr, np.ndarray) or g_arr.ndim != 1:
        _fail("key 'gamma': expected a 1-D integer array [R]")
    R = len(g_arr)
    if R == 0:
        _fail("key 'gamma': the trace has no rounds")
    if tr.draft_tokens.ndim != 2:
        _fail(f"key 'draft_tokens': expected shape [R, G], got {tr.draft_tokens.shape}")
    G = tr.draft_tokens.shape[1]
    V = int(tr.vocab_size)
    _check_array("gamma", g_arr, "iu", (R,))
    _check_array("draft_tokens", tr.draft_tokens, "iu", (R, G))
    _check_array("draft_probs", tr.draft_probs, "u", (R, G, V))
    _check_array("target_probs", tr.target_probs, "u", (R, G + 1, V))
    _check_array("accept_uniforms", tr.accept_uniforms, "u", (R, G))
    _check_array("sample_uniform", tr.sample_uniform, "u", (R,))
    _check_array("expected_accepted", tr.expected_accepted, "iu", (R,))
    _check_array("expected_token", tr.expected_token, "iu", (R,))
    for name in ("accept_uniforms", "sample_uniform"):
        if getattr(tr, name).dtype not in (np.uint32, np.uint64):
            _fail(f"key '{name}': expected uint32 or uint64, got {getattr(tr, name).dtype}")

    bad = np.flatnonzero((g_arr < 0) | (g_arr > G))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'gamma', round {r}: gamma {int(g_arr[r])} outside 0..{G} (G = gamma_max of the file)")
    t_idx = np.arange(G)[None, :]
    live = t_idx < g_arr[:, None]                         # [R, G] draft slots in use
    live_q = np.arange(G + 1)[None, :] <= g_arr[:, None]  # [R, G+1] target rows in use

    limit_u = 1 << tr.uniform_bits
    for name, arr, mask in (("accept_uniforms", tr.accept_uniforms, live),
                            ("sample_uniform", tr.sample_uniform, np.ones(R, bool))):
        if tr.uniform_bits < 64:
            over = np.argwhere(mask & (arr.astype(np.uint64) >= np.uint64(limit_u)))
            if over.size:
                r = int(over[0][0])
                _fail(f"key '{name}', round {r}: uniform wider than uniform_bits={tr.uniform_bits}")

    toks = tr.draft_tokens.astype(np.int64)
    bad = np.argwhere(live & ((toks < 0) | (toks >= V)))
    if bad.size:
        r, t = map(int, bad[0])
        _fail(f"key 'draft_tokens', round {r}, slot {t}: token id {int(toks[r, t])} outside 0..{V - 1}")

    M = int(tr.row_sum)
    limit_w = 1 << tr.prob_bits
    for name, arr, mask in (("draft_probs", tr.draft_probs, live), ("target_probs", tr.target_probs, live_q)):
        if arr.dtype.itemsize * 8 > tr.prob_bits and arr.size:
            big = np.argwhere(mask & (arr.max(axis=-1) >= limit_w))
            if big.size:
                r, t = map(int, big[0])
                _fail(f"key '{name}', round {r}, row {t}: entry wider than prob_bits={tr.prob_bits}")
        sums = arr.sum(axis=-1, dtype=np.int64)
        bad = np.argwhere(mask & (sums != M))
        if bad.size:
            r, t = map(int, bad[0])
            _fail(f"key '{name}', round {r}, row {t}: row sums to {int(sums[r, t])}, expected row_sum={M}")
    if tr.mode == "stochastic" and G > 0:
        px = np.take_along_axis(tr.draft_probs, np.clip(toks, 0, V - 1)[:, :, None], axis=2)[:, :, 0]
        bad = np.argwhere(live & (px == 0))
        if bad.size:
            r, t = map(int, bad[0])
            _fail(f"key 'draft_probs', round {r}, slot {t}: draft token {int(toks[r, t])} has zero draft "
                  "probability (drafts must be sampled from the quantised draft row)")
    ea = tr.expected_accepted.astype(np.int64)
    bad = np.flatnonzero((ea < 0) | (ea > g_arr))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'expected_accepted', round {r}: {int(ea[r])} outside 0..gamma={int(g_arr[r])}")
    et = tr.expected_token.astype(np.int64)
    bad = np.flatnonzero((et < 0) | (et >= V))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'expected_token', round {r}: token id {int(et[r])} outside 0..{V - 1}")
    if not isinstance(tr.meta, dict):
        _fail("key 'meta': expected a JSON object")


def trace_from_rounds(rounds, decisions, *, mode: str, vocab_size: int, row_sum: int, prob_bits: int,
                      uniform_bits: int, gamma_max: int | None = None, meta: dict | None = None) -> Trace:
    """Pad Round-like objects (gamma, draft_tokens, draft_probs, target_probs, accept_uniforms,
    sample_uniform) and their (accepted, token) decisions into a validated Trace.
    The one place where producers (synthetic, the LLM recorder) lay out the file's arrays."""
    rounds = list(rounds)
    R = len(rounds)
    G = max((r.gamma for r in rounds), default=0) if gamma_max is None else gamma_max
    V = vocab_size
    pd = prob_dtype(prob_bits)
    u_dtype = np.uint32 if uniform_bits <= 32 else np.uint64
    arrays = dict(gamma=np.zeros(R, np.int32), draft_tokens=np.zeros((R, G), np.int32),
                  draft_probs=np.zeros((R, G, V), pd), target_probs=np.zeros((R, G + 1, V), pd),
                  accept_uniforms=np.zeros((R, G), u_dtype), sample_uniform=np.zeros(R, u_dtype),
                  expected_accepted=np.zeros(R, np.int32), expected_token=np.zeros(R, np.int32))
    for i, (r, (acc, tok)) in enumerate(zip(rounds, decisions, strict=True)):
        g = r.gamma
        if g > G:
            raise TraceError(f"round {i}: gamma {g} above gamma_max {G}")
        arrays["gamma"][i] = g
        arrays["draft_tokens"][i, :g] = r.draft_tokens
        arrays["draft_probs"][i, :g] = r.draft_probs
        arrays["target_probs"][i, : g + 1] = r.target_probs
        arrays["accept_uniforms"][i, :g] = r.accept_uniforms
        arrays["sample_uniform"][i] = r.sample_uniform
        arrays["expected_accepted"][i], arrays["expected_token"][i] = acc, tok
    return Trace(mode=mode, vocab_size=V, row_sum=row_sum, prob_bits=prob_bits, uniform_bits=uniform_bits,
                 meta=meta or {}, **arrays)


def prob_dtype(prob_bits: int):
    return np.uint8 if prob_bits <= 8 else np.uint16 if prob_bits <= 16 else np.uint32


def write_trace(path: str | os.PathLike, tr: Trace) -> Path:
    validate(tr)
    arrays = {k: getattr(tr, k) for k in ARRAY_KEYS}
    arrays.update(format=np.array(FORMAT), mode=np.array(tr.mode),
                  vocab_size=np.array(tr.vocab_size), row_sum=np.array(tr.row_sum),
                  prob_bits=np.array(tr.prob_bits), uniform_bits=np.array(tr.uniform_bits),
                  meta=np.array(json.dumps(tr.meta, sort_keys=True)))

    def _write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return atomic_write(path, _write)


def read_trace(path: str | os.PathLike) -> Trace:
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such trace file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, ValueError, OSError, EOFError, KeyError) as e:
        raise TraceError(f"{path}: not a readable .npz trace ({type(e).__name__}: {e})") from None
    try:
        return trace_from_arrays(data)
    except TraceError as e:
        raise TraceError(f"{path}: {e}") from None


def trace_from_arrays(data: dict) -> Trace:
    missing = [k for k in SCALAR_KEYS + ARRAY_KEYS if k not in data]
    if missing:
        _fail(f"missing key '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    fmt = data["format"]
    if fmt.shape != () or str(fmt) != FORMAT:
        _fail(f"key 'format': expected {FORMAT!r}, got {str(fmt)!r}")
    scalars = {}
    for k in ("vocab_size", "row_sum", "prob_bits", "uniform_bits"):
        a = data[k]
        if a.shape != () or a.dtype.kind not in "iu":
            _fail(f"key '{k}': expected an integer scalar, got dtype {a.dtype} shape {a.shape}")
        scalars[k] = int(a)
    for k in ("mode", "meta"):
        if data[k].shape != () or data[k].dtype.kind != "U":
            _fail(f"key '{k}': expected a string scalar")
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError as e:
        raise TraceError(f"key 'meta': not valid JSON ({e})") from None
    return Trace(mode=str(data["mode"]), meta=meta, **scalars, **{k: data[k] for k in ARRAY_KEYS})
