"""Trace files (docs/TRACE_FORMAT.md): the one reader and the one writer, for v1 (probability
rows, `Trace`, here) and v2 (bf16 logit rows, `LogitTrace`, hades/traces/format_v2.py).

The writer is atomic (temporary file in the target folder, then rename). The reader checks
the archive's directory and headers before reading (shared by both versions), picks the key
table by the `format` key, checks every key and refuses a bad file with a TraceError that
names the key, the round and what was expected.
"""
from __future__ import annotations

import json
import math
import os
import struct
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


class _PaddedRounds:
    """What the in-memory traces of both versions share: R rounds padded to G draft slots
    (gamma [R], draft_tokens [R, G]), read one round at a time by round(i)."""

    @property
    def num_rounds(self) -> int:
        return len(self.gamma)

    @property
    def gamma_max(self) -> int:
        return self.draft_tokens.shape[1]

    def rounds(self):
        for i in range(self.num_rounds):
            yield self.round(i)


@dataclass
class Trace(_PaddedRounds):
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

    format_version = 1   # LogitTrace: 2

    def __post_init__(self):
        validate(self)

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
            accept_uniforms=self.accept_uniforms[i, :g].astype(np.uint64),   # U <= 64: never int64
            sample_uniform=int(self.sample_uniform[i]),
        )


def _fail(msg: str):
    raise TraceError(msg)


_KIND_NAMES = {"u": "unsigned integer", "i": "integer", "iu": "integer", "ui": "integer"}
# dtype kind and shape of every array key, given R, G, V
_LAYOUT = {
    "gamma": ("iu", lambda R, G, V: (R,)),
    "draft_tokens": ("iu", lambda R, G, V: (R, G)),
    "draft_probs": ("u", lambda R, G, V: (R, G, V)),
    "target_probs": ("u", lambda R, G, V: (R, G + 1, V)),
    "accept_uniforms": ("u", lambda R, G, V: (R, G)),
    "sample_uniform": ("u", lambda R, G, V: (R,)),
    "expected_accepted": ("iu", lambda R, G, V: (R,)),
    "expected_token": ("iu", lambda R, G, V: (R,)),
}


def _check_array(name, arr, kinds, shape):
    if not isinstance(arr, np.ndarray):
        _fail(f"key '{name}': expected a numpy array, got {type(arr).__name__}")
    _check_dtype_shape(name, arr.dtype, arr.shape, kinds, shape)


def _check_dtype_shape(name, dtype, got_shape, kinds, shape):
    if dtype.kind not in kinds:
        _fail(f"key '{name}': expected {_KIND_NAMES.get(kinds, kinds)} dtype, got {dtype}")
    if tuple(got_shape) != shape:
        _fail(f"key '{name}': expected shape {shape}, got {tuple(got_shape)}")


def _check_scalars(mode, vocab_size, row_sum, prob_bits, uniform_bits) -> None:
    if mode not in MODES:
        _fail(f"key 'mode': expected one of {MODES}, got {mode!r}")
    _check_positive((("vocab_size", vocab_size), ("row_sum", row_sum), ("prob_bits", prob_bits),
                     ("uniform_bits", uniform_bits)))
    if not 1 <= prob_bits <= 31:
        _fail(f"key 'prob_bits': expected 1..31, got {prob_bits}")
    _check_uniform_bits(uniform_bits)
    if row_sum >= (1 << int(prob_bits)):
        _fail(f"key 'row_sum': {row_sum} does not fit prob_bits={prob_bits} (one-hot rows must fit)")


def _check_layout(vocab_size: int, layout: dict, array_keys=ARRAY_KEYS, table=None,
                  exact_dtypes=(), uniform_keys=("accept_uniforms", "sample_uniform")) -> tuple[int, int]:
    """Dtype kinds and shapes of the array keys, from {key: (dtype, shape)} (the arrays
    themselves, or the headers of the archive's members before anything is read), against
    a version's key table ({key: (kinds, shape(R, G, V))}, v1's by default); then the keys
    of exact_dtypes ((keys, dtype, what) each) and the uniform keys (uint32 or uint64).
    Returns (R, G)."""
    table = _LAYOUT if table is None else table
    g_shape = layout["gamma"][1]
    if len(g_shape) != 1:
        _fail("key 'gamma': expected a 1-D integer array [R]")
    R = g_shape[0]
    if R == 0:
        _fail("key 'gamma': the trace has no rounds")
    dt_shape = layout["draft_tokens"][1]
    if len(dt_shape) != 2:
        _fail(f"key 'draft_tokens': expected shape [R, G], got {tuple(dt_shape)}")
    G = dt_shape[1]
    V = int(vocab_size)
    for name in array_keys:
        kinds, shape = table[name]
        _check_dtype_shape(name, *layout[name], kinds, shape(R, G, V))
    for names, dtype, what in exact_dtypes:
        for name in names:
            if layout[name][0] != dtype:
                _fail(f"key '{name}': expected {what}, got {layout[name][0]}")
    for name in uniform_keys:
        if layout[name][0] not in (np.uint32, np.uint64):
            _fail(f"key '{name}': expected uint32 or uint64, got {layout[name][0]}")
    return R, G


def _check_positive(pairs) -> None:
    """Each (key, value) a positive integer (not a bool)."""
    for name, v in pairs:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            _fail(f"key '{name}': expected a positive integer, got {v!r}")


def _check_uniform_bits(uniform_bits) -> None:
    if not 1 <= uniform_bits <= 64:
        _fail(f"key 'uniform_bits': expected 1..64, got {uniform_bits}")


def _array_layout(tr, array_keys) -> dict:
    """{key: (dtype, shape)} of a trace's array keys, after checking each is a numpy array."""
    for name in array_keys:
        if not isinstance(getattr(tr, name), np.ndarray):
            _fail(f"key '{name}': expected a numpy array, got {type(getattr(tr, name)).__name__}")
    return {k: (getattr(tr, k).dtype, getattr(tr, k).shape) for k in array_keys}


def _check_gamma(gamma: np.ndarray, G: int):
    """Every round's gamma within 0..G. Returns (gamma as int64, live [R, G] draft slots in
    use, live_q [R, G+1] target rows in use)."""
    g_arr = _as_int64(gamma)
    bad = np.flatnonzero((g_arr < 0) | (g_arr > G))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'gamma', round {r}: gamma {int(gamma[r])} outside 0..{G} (G = gamma_max of the file)")
    live = np.arange(G)[None, :] < g_arr[:, None]
    live_q = np.arange(G + 1)[None, :] <= g_arr[:, None]
    return g_arr, live, live_q


def _check_uniforms(items, uniform_bits: int, slots: bool, unit: str = "slot") -> None:
    """Each (key, array, mask) below 2^uniform_bits where the mask is set; the message names
    the slot (`unit`: tree traces name the node) of a 2-D key when `slots` (v2, v3) and only
    the round otherwise (v1)."""
    if uniform_bits >= 64:
        return
    for name, arr, mask in items:
        over = np.argwhere(mask & (arr.astype(np.uint64) >= np.uint64(1 << uniform_bits)))
        if over.size:
            r = int(over[0][0])
            slot = f", {unit} {int(over[0][1])}" if slots and arr.ndim == 2 else ""
            _fail(f"key '{name}', round {r}{slot}: uniform wider than uniform_bits={uniform_bits}")


def _check_draft_tokens(draft_tokens: np.ndarray, live: np.ndarray, V: int) -> np.ndarray:
    """Draft token ids within 0..V-1 in the live slots. Returns them as int64."""
    toks = _as_int64(draft_tokens)
    bad = np.argwhere(live & ((toks < 0) | (toks >= V)))
    if bad.size:
        r, t = map(int, bad[0])
        _fail(f"key 'draft_tokens', round {r}, slot {t}: token id {int(draft_tokens[r, t])} outside 0..{V - 1}")
    return toks


def _check_expected(tr, g_arr: np.ndarray, V: int) -> None:
    """expected_accepted within 0..gamma, expected_token within 0..V-1, meta a dict."""
    ea = _as_int64(tr.expected_accepted)
    bad = np.flatnonzero((ea < 0) | (ea > g_arr))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'expected_accepted', round {r}: {int(tr.expected_accepted[r])} outside 0..gamma={int(g_arr[r])}")
    et = _as_int64(tr.expected_token)
    bad = np.flatnonzero((et < 0) | (et >= V))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'expected_token', round {r}: token id {int(tr.expected_token[r])} outside 0..{V - 1}")
    if not isinstance(tr.meta, dict):
        _fail("key 'meta': expected a JSON object")


_INT64_MAX = np.iinfo(np.int64).max


def _as_int64(arr: np.ndarray) -> np.ndarray:
    """An integer array as int64 for range checks: uint64 values above 2^63 - 1 (outside every
    range the format allows) are clipped to 2^63 - 1 instead of wrapping negative."""
    if arr.dtype == np.uint64:
        return np.minimum(arr, np.uint64(_INT64_MAX)).astype(np.int64)
    return arr.astype(np.int64)


def validate(tr: Trace) -> None:
    """Raise TraceError on the first violation of the trace contract."""
    _check_scalars(tr.mode, tr.vocab_size, tr.row_sum, tr.prob_bits, tr.uniform_bits)
    if not isinstance(tr.gamma, np.ndarray) or tr.gamma.ndim != 1:
        _fail("key 'gamma': expected a 1-D integer array [R]")
    R, G = _check_layout(tr.vocab_size, _array_layout(tr, ARRAY_KEYS))
    V = int(tr.vocab_size)
    g_arr, live, live_q = _check_gamma(tr.gamma, G)
    _check_uniforms((("accept_uniforms", tr.accept_uniforms, live),
                     ("sample_uniform", tr.sample_uniform, np.ones(R, bool))), tr.uniform_bits, slots=False)
    toks = _check_draft_tokens(tr.draft_tokens, live, V)

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
    _check_expected(tr, g_arr, V)


def _padding(rounds, gamma_max, uniform_bits):
    """(rounds as a list, R, G, the uniforms' dtype) of a trace laid out from rounds: G is
    gamma_max, or the largest gamma when it is None."""
    rounds = list(rounds)
    G = max((r.gamma for r in rounds), default=0) if gamma_max is None else gamma_max
    return rounds, len(rounds), G, np.uint32 if uniform_bits <= 32 else np.uint64


def _padded_rounds(rounds, decisions, G):
    """(i, round, gamma, decision) of each round with its (accepted, token) decision;
    TraceError for a round whose gamma is above G."""
    for i, (r, decision) in enumerate(zip(rounds, decisions, strict=True)):
        g = r.gamma
        if g > G:
            raise TraceError(f"round {i}: gamma {g} above gamma_max {G}")
        yield i, r, g, decision


def trace_from_rounds(rounds, decisions, *, mode: str, vocab_size: int, row_sum: int, prob_bits: int,
                      uniform_bits: int, gamma_max: int | None = None, meta: dict | None = None) -> Trace:
    """Pad Round-like objects (gamma, draft_tokens, draft_probs, target_probs, accept_uniforms,
    sample_uniform) and their (accepted, token) decisions into a validated Trace.
    The one place where producers (synthetic, the LLM recorder) lay out the file's arrays."""
    rounds, R, G, u_dtype = _padding(rounds, gamma_max, uniform_bits)
    V = vocab_size
    pd = prob_dtype(prob_bits)
    arrays = dict(gamma=np.zeros(R, np.int32), draft_tokens=np.zeros((R, G), np.int32),
                  draft_probs=np.zeros((R, G, V), pd), target_probs=np.zeros((R, G + 1, V), pd),
                  accept_uniforms=np.zeros((R, G), u_dtype), sample_uniform=np.zeros(R, u_dtype),
                  expected_accepted=np.zeros(R, np.int32), expected_token=np.zeros(R, np.int32))
    for i, r, g, (acc, tok) in _padded_rounds(rounds, decisions, G):
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


def write_trace(path: str | os.PathLike, tr) -> Path:
    """Validate a trace (v1 `Trace` or v2 `LogitTrace`) and write it atomically."""
    if isinstance(tr, Trace):
        validate(tr)
        meta_text = json.dumps(tr.meta, sort_keys=True)
        parse_meta(meta_text)   # within the reader's bounds: never write a file read_trace refuses
        arrays = {k: getattr(tr, k) for k in ARRAY_KEYS}
        arrays.update(format=np.array(FORMAT), mode=np.array(tr.mode),
                      vocab_size=np.array(tr.vocab_size), row_sum=np.array(tr.row_sum),
                      prob_bits=np.array(tr.prob_bits), uniform_bits=np.array(tr.uniform_bits),
                      meta=np.array(meta_text))
    elif getattr(tr, "format_version", None) == 3:   # a tree trace (hades.traces.format_tree)
        from hades.traces.format_tree import file_arrays
        arrays = file_arrays(tr)   # validates, and bounds meta like the branch above
    else:
        from hades.traces.format_v2 import file_arrays
        arrays = file_arrays(tr)   # validates, and bounds meta like the branch above

    def _write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return atomic_write(path, _write)


# ---- the reader's bounds (docs/TRACE_FORMAT.md, "What the reader checks") -----------------
MAX_MEMBERS = 256                 # zip entries looked at (a v1 trace has 15, v2 21; unknown ones are skipped)
MAX_DIRECTORY_BYTES = 1 << 20     # size of the zip central directory (a trace's is ~1.5 KB)
MAX_META_CHARS = 1 << 22          # `meta` JSON text, characters (4 Mi)
MAX_META_DEPTH = 64               # nesting of `meta` ([ and { levels)
MAX_SCALAR_BYTES = 4096           # any other 0-d key (format, mode, the four integers)
DEFLATE_MAX_RATIO = 1032          # deflate cannot expand data by more than about 1032:1
_READ_CHUNK = 1 << 22
_NPY_MAGIC = b"\x93NUMPY"


def parse_meta(text: str) -> dict:
    """`meta` as a JSON object, refused (TraceError) when longer than MAX_META_CHARS, nested
    deeper than MAX_META_DEPTH (the depth is counted before parsing, so a deep file cannot
    exhaust the parser's recursion), not JSON, or not an object."""
    if len(text) > MAX_META_CHARS:
        _fail(f"key 'meta': {len(text)} characters, more than the {MAX_META_CHARS} the format allows")
    depth = json_depth(text)
    if depth > MAX_META_DEPTH:
        _fail(f"key 'meta': JSON nested {depth} levels deep, more than the {MAX_META_DEPTH} the format allows")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceError(f"key 'meta': not valid JSON ({e})") from None
    except RecursionError:   # not reachable after the depth bound; kept as a net
        raise TraceError("key 'meta': JSON nested too deeply") from None
    if not isinstance(meta, dict):
        _fail("key 'meta': expected a JSON object")
    return meta


def json_depth(text: str) -> int:
    """Nesting depth of the arrays and objects in JSON text, without parsing it (vectorised,
    linear time, whatever the text). Brackets inside strings do not count: a quote opens or
    closes a string unless an odd run of backslashes precedes it. (In valid JSON, backslashes
    occur only inside strings, so this is exact; for invalid text it only has to terminate.)"""
    b = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)   # ASCII bytes stay themselves
    n = b.size
    if not n:
        return 0
    idx = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    last_other = np.maximum.accumulate(np.where(b == 0x5C, -1, idx))   # last non-backslash at or before i
    q = np.flatnonzero(b == 0x22)
    run = np.where(q > 0, (q - 1) - last_other[np.maximum(q - 1, 0)], 0)   # backslashes right before q
    del last_other, idx
    real = np.zeros(n, np.int8)
    real[q[run % 2 == 0]] = 1
    outside = (np.cumsum(real, dtype=np.int32 if n < 2**31 else np.int64) - real) % 2 == 0
    outside &= real == 0
    step = np.where(outside & ((b == 0x5B) | (b == 0x7B)), 1, 0).astype(np.int8)
    step -= (outside & ((b == 0x5D) | (b == 0x7D))).astype(np.int8)
    return max(0, int(np.cumsum(step, dtype=np.int32 if n < 2**31 else np.int64).max()))


@dataclass(frozen=True)
class _Member:
    """One archive member of a known key, as its zip directory entry and .npy header declare it."""
    key: str
    info: zipfile.ZipInfo
    data_offset: int       # bytes of .npy magic + header before the data
    dtype: np.dtype
    shape: tuple
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _member_header(zf: zipfile.ZipFile, key: str, info: zipfile.ZipInfo, archive_bytes: int) -> _Member:
    """Check a member from its zip directory entry and its .npy header only (nothing of the
    data is read or allocated): not encrypted, stored or deflate, sizes that the archive can
    hold, a .npy array of plain numbers or a string, and a header whose shape x itemsize is
    exactly the member's uncompressed size."""
    if info.flag_bits & 0x1:
        _fail(f"key '{key}': the archive member is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        _fail(f"key '{key}': compression method {info.compress_type} (only stored and deflate are read)")
    if info.compress_size > archive_bytes:
        _fail(f"key '{key}': the zip directory claims {info.compress_size} compressed bytes in a "
              f"{archive_bytes}-byte file")
    stored = info.compress_type == zipfile.ZIP_STORED
    most = info.compress_size if stored else DEFLATE_MAX_RATIO * info.compress_size + 4096
    if info.file_size > most:
        _fail(f"key '{key}': the zip directory claims {info.file_size} bytes uncompressed from "
              f"{info.compress_size} compressed, more than {'a stored member' if stored else 'deflate'} can hold")
    with zf.open(info) as fp:
        if fp.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            _fail(f"key '{key}': the archive member is not an .npy array")
        version = tuple(fp.read(2))
        try:
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                _fail(f"key '{key}': .npy format version {version} is not supported")
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as e:
            raise TraceError(f"key '{key}': unreadable .npy header ({type(e).__name__}: {e})") from None
        data_offset = fp.tell()
    if dtype.hasobject:
        _fail(f"key '{key}': object arrays (pickles) are not read")
    if dtype.fields is not None or dtype.subdtype is not None:
        _fail(f"key '{key}': structured dtype {dtype} is not an array of numbers or a string")
    if any(n < 0 for n in shape):
        _fail(f"key '{key}': .npy header with negative shape {shape}")
    m = _Member(key, info, data_offset, dtype, tuple(shape), bool(fortran_order))
    if data_offset + m.nbytes != info.file_size:
        _fail(f"key '{key}': the .npy header declares shape {m.shape} of {dtype} ({m.nbytes} bytes), but the "
              f"archive member holds {info.file_size - data_offset} bytes of data")
    return m


def _read_member(zf: zipfile.ZipFile, m: _Member) -> np.ndarray:
    """The member's array, read in chunks straight into an array of the size its (checked)
    header declares; the CRC is checked when the end of the member is reached."""
    try:
        flat = np.empty(math.prod(m.shape), m.dtype)
    except MemoryError:
        raise TraceError(f"key '{m.key}': cannot allocate {m.nbytes} bytes for shape {m.shape}") from None
    buf = memoryview(flat.view(np.uint8).reshape(-1)) if m.nbytes else memoryview(b"")
    with zf.open(m.info) as fp:
        fp.read(m.data_offset)
        pos = 0
        while pos < m.nbytes:
            n = fp.readinto(buf[pos: pos + _READ_CHUNK])
            if not n:
                _fail(f"key '{m.key}': the archive member ends after {pos} of {m.nbytes} data bytes")
            pos += n
        if fp.read(1):
            _fail(f"key '{m.key}': the archive member holds more data than its .npy header declares")
    if m.fortran_order:
        return flat.reshape(m.shape[::-1]).transpose()
    return flat.reshape(m.shape)


def _archive_members(f, known) -> tuple[zipfile.ZipFile, list[tuple[str, zipfile.ZipInfo]]]:
    """Open the zip archive after bounding its directory; list (key, member) for the members
    named `<key>.npy` of the given keys, in directory order. Other members are skipped (never
    read); the caller refuses a key of its version stored twice (_key_members)."""
    end = getattr(zipfile, "_EndRecData", None)    # the end-of-directory record, read before the directory
    rec = end(f) if end is not None else None
    if rec:
        entries, dir_bytes = rec[zipfile._ECD_ENTRIES_TOTAL], rec[zipfile._ECD_SIZE]
        if entries > MAX_MEMBERS:
            _fail(f"the archive has {entries} members, more than the {MAX_MEMBERS} a trace may have")
        if dir_bytes > MAX_DIRECTORY_BYTES:
            _fail(f"the archive's zip directory takes {dir_bytes} bytes, more than the {MAX_DIRECTORY_BYTES} "
                  "a trace may have")
    f.seek(0)
    zf = zipfile.ZipFile(f)
    found = []
    for info in zf.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key in known:
            found.append((key, info))
    return zf, found


def _key_members(found, keys) -> dict[str, zipfile.ZipInfo]:
    """{key: member} for the keys of one format version; a key stored twice is refused.
    Members of other keys (another version's included) are ignored, never read."""
    infos: dict[str, zipfile.ZipInfo] = {}
    for key, info in found:
        if key not in keys:
            continue
        if key in infos:
            _fail(f"key '{key}': stored more than once in the archive")
        infos[key] = info
    return infos


@dataclass(frozen=True)
class FormatVersion:
    """How the shared reader reads one version of the trace file: its key tables and three
    steps (docs/TRACE_FORMAT.md). fields(data) turns the 0-d keys into checked constructor
    fields; layout(fields, {key: (dtype, shape)}) checks every array's dtype and shape from
    the .npy headers before anything is allocated; build(fields, arrays) makes the validated
    in-memory trace."""
    format: str
    scalar_keys: tuple
    array_keys: tuple
    fields: object
    layout: object
    build: object

    @property
    def keys(self) -> tuple:
        return self.scalar_keys + self.array_keys


def _format_versions() -> dict[str, FormatVersion]:
    from hades.traces import format_tree, format_v2   # they build on this module's reader; imported when first needed
    return {FORMAT: V1, format_v2.FORMAT_V2: format_v2.V2, format_tree.FORMAT_V3: format_tree.V3}


def _peek_format(zf, found, archive_bytes) -> str | None:
    """The value of the `format` key when it is one readable 0-d string, else None (the
    version's own checks then report what is wrong, as v1 always has)."""
    fmts = [info for key, info in found if key == "format"]
    if len(fmts) != 1:
        return None
    try:
        m = _member_header(zf, "format", fmts[0], archive_bytes)
        if m.nbytes > MAX_SCALAR_BYTES or m.shape != () or m.dtype.kind != "U":
            return None
        return str(_read_member(zf, m))
    except (TraceError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError):
        return None


def read_trace(path: str | os.PathLike):
    """Read and validate a trace file: a v1 `Trace` (format 'hades-trace/1') or a v2
    `LogitTrace` (format 'hades-trace/2', hades.traces.format_v2), by its `format` key; one
    reader for both, with per-version key tables (FormatVersion). The zip directory and every member's .npy header are
    checked before any data is read, so a file is refused from its headers when they declare
    more than the format or the archive allows (docs/TRACE_FORMAT.md); only the keys of the
    format are read."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such trace file")
    try:
        with open(path, "rb") as f:
            return _read_open_trace(f)
    except TraceError as e:
        raise TraceError(f"{path}: {e}") from None
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, ValueError, OSError, EOFError, KeyError,
            RuntimeError, struct.error) as e:
        raise TraceError(f"{path}: not a readable .npz trace ({type(e).__name__}: {e})") from None


def _read_open_trace(f):
    if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
        _fail("a plain .npy array, not an .npz trace archive")
    archive_bytes = os.fstat(f.fileno()).st_size
    versions = _format_versions()
    zf, found = _archive_members(f, {k for v in versions.values() for k in v.keys})
    with zf:
        # the version by its `format` key; anything else is read as v1, whose checks say what is wrong
        version = versions.get(_peek_format(zf, found, archive_bytes), V1)
        infos = _key_members(found, version.keys)
        missing = [k for k in version.keys if k not in infos]
        if missing:
            _fail(f"missing key '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        members = {}
        for key in version.keys:
            try:
                members[key] = _member_header(zf, key, infos[key], archive_bytes)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
                raise TraceError(f"key '{key}': unreadable archive member ({type(e).__name__}: {e})") from None
        data = {}
        for key in version.scalar_keys:   # small: read them, then fix R, G, V from them and the headers
            most = 4 * MAX_META_CHARS + 4096 if key == "meta" else MAX_SCALAR_BYTES
            if members[key].nbytes > most:
                _fail(f"key '{key}': {members[key].nbytes} bytes, more than the {most} the format allows for it")
            data[key] = _read_checked(zf, members[key])
        fields = version.fields(data)
        # every array's dtype and shape from its header: sizes consistent with R, G, V before allocating
        version.layout(fields, {k: (members[k].dtype, members[k].shape) for k in version.array_keys})
        for key in version.array_keys:
            data[key] = _read_checked(zf, members[key])
    return version.build(fields, {k: data[k] for k in version.array_keys})


def _read_checked(zf, m: _Member) -> np.ndarray:
    try:
        return _read_member(zf, m)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise TraceError(f"key '{m.key}': unreadable archive member ({type(e).__name__}: {e})") from None


def _read_scalars(data: dict, fmt: str, expected: str, int_keys, str_keys) -> dict:
    """The 0-d keys of a trace as fields: `format` must be fmt (the message says `expected`),
    int_keys integer scalars, str_keys string scalars (`meta` among them, parsed)."""
    f = data["format"]
    if f.shape != () or str(f) != fmt:
        _fail(f"key 'format': expected {expected}, got {str(f)!r}")
    fields = {}
    for k in int_keys:
        a = data[k]
        if a.shape != () or a.dtype.kind not in "iu":
            _fail(f"key '{k}': expected an integer scalar, got dtype {a.dtype} shape {a.shape}")
        fields[k] = int(a)
    for k in str_keys:
        if data[k].shape != () or data[k].dtype.kind != "U":
            _fail(f"key '{k}': expected a string scalar")
    for k in str_keys:
        fields[k] = parse_meta(str(data[k])) if k == "meta" else str(data[k])
    return fields


def _scalar_fields(data: dict) -> dict:
    """mode, meta and the four integer scalars from the 0-d arrays of a trace."""
    return _read_scalars(data, FORMAT, f"{FORMAT!r}, 'hades-trace/2' or 'hades-trace/3'",
                         ("vocab_size", "row_sum", "prob_bits", "uniform_bits"), ("mode", "meta"))


def _v1_layout(fields: dict, layout: dict) -> None:
    _check_scalars(fields["mode"], fields["vocab_size"], fields["row_sum"], fields["prob_bits"],
                   fields["uniform_bits"])
    _check_layout(fields["vocab_size"], layout)


V1 = FormatVersion(FORMAT, SCALAR_KEYS, ARRAY_KEYS, _scalar_fields, _v1_layout,
                   lambda fields, arrays: Trace(**fields, **arrays))


def trace_from_arrays(data: dict):
    """A validated trace from the arrays of a trace file held in memory ({key: array}): a v1
    Trace, or a v2 LogitTrace when data['format'] is 'hades-trace/2'."""
    fmt = data.get("format")
    versions = _format_versions()
    version = V1
    if isinstance(fmt, np.ndarray) and fmt.shape == () and fmt.dtype.kind == "U":
        version = versions.get(str(fmt), V1)
    missing = [k for k in version.keys if k not in data]
    if missing:
        _fail(f"missing key '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    fields = version.fields(data)
    return version.build(fields, {k: data[k] for k in version.array_keys})
