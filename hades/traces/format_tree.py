"""Tree trace files (`hades-trace/3`, docs/TRACE_FORMAT.md "Trace file v3: trees"): per round a
tree of nodes with bf16 target rows (and draft rows for sampled children), held as a `TreeTrace`.

The archive is read by the one reader, hades.traces.format.read_trace (the same bounded zip
directory and .npy header checks as v1 and v2, and v2's scalar keys and logit-row checks);
this module holds v3's key table, its checks and its in-memory form. Construction validates
(validate_tree_trace), so does the writer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hades import numerics
from hades.fl.tree import check_tree_structure, node_depths, sampled_draft_rows
from hades.round import TREE_SCHEMES, TreeRound
from hades.traces.format import FormatVersion, _as_int64, _check_dtype_shape, _check_uniforms, _fail
from hades.traces.format_v2 import (LOGIT_FORMAT, V2_SCALAR_KEYS, _check_logit_rows, _check_params,
                                    _check_v2_scalars, check_logit_scalar_fields, logit_scalar_arrays,
                                    logit_scalar_fields, params_array)

FORMAT_V3 = "hades-trace/3"
V3_SCALAR_KEYS = V2_SCALAR_KEYS
V3_ARRAY_KEYS = ("num_nodes", "scheme", "parents", "node_tokens", "draft_logits", "target_logits", "draft_params",
                 "target_params", "draft_uniforms", "accept_uniforms", "sample_uniforms", "expected_node",
                 "expected_token")
UNIFORM_KEYS = ("draft_uniforms", "accept_uniforms", "sample_uniforms")

# dtype kind and shape of every array key, given R rounds, N nodes (the file's most) and V
_LAYOUT_V3 = {
    "num_nodes": ("iu", lambda R, N, V: (R,)),
    "scheme": ("iu", lambda R, N, V: (R,)),
    "parents": ("i", lambda R, N, V: (R, N)),
    "node_tokens": ("iu", lambda R, N, V: (R, N)),
    "draft_logits": ("u", lambda R, N, V: (R, N, V)),
    "target_logits": ("u", lambda R, N, V: (R, N, V)),
    "draft_params": ("iu", lambda R, N, V: (R, 4)),
    "target_params": ("iu", lambda R, N, V: (R, 4)),
    "draft_uniforms": ("u", lambda R, N, V: (R, N)),
    "accept_uniforms": ("u", lambda R, N, V: (R, N)),
    "sample_uniforms": ("u", lambda R, N, V: (R, N)),
    "expected_node": ("iu", lambda R, N, V: (R,)),
    "expected_token": ("iu", lambda R, N, V: (R,)),
}


@dataclass
class TreeTrace:
    """A validated v3 (tree) trace held in memory; arrays keep the file's shapes (padded to N
    nodes). Each round has its own scheme (TREE_SCHEMES[scheme[r]]) and parameters."""
    vocab_size: int
    weight_bits: int
    uniform_bits: int
    num_nodes: np.ndarray
    scheme: np.ndarray
    parents: np.ndarray
    node_tokens: np.ndarray
    draft_logits: np.ndarray
    target_logits: np.ndarray
    draft_params: np.ndarray
    target_params: np.ndarray
    draft_uniforms: np.ndarray
    accept_uniforms: np.ndarray
    sample_uniforms: np.ndarray
    expected_node: np.ndarray
    expected_token: np.ndarray
    meta: dict = field(default_factory=dict)
    logit_format: str = LOGIT_FORMAT
    logit_frac_bits: int = numerics.LOGIT_FRAC_BITS
    inv_temp_frac_bits: int = numerics.INV_TEMP_FRAC_BITS

    format_version = 3

    def __post_init__(self):
        validate_tree_trace(self)

    @property
    def num_rounds(self) -> int:
        return len(self.num_nodes)

    @property
    def nodes_max(self) -> int:
        return self.parents.shape[1]

    @property
    def expected_accepted(self) -> np.ndarray:
        """The depth of each round's expected node: the drafts its walk accepts."""
        return np.array([node_depths(self.parents[i, : int(self.num_nodes[i])])[int(self.expected_node[i])]
                         for i in range(self.num_rounds)], np.int64)

    def round(self, i: int) -> TreeRound:
        n = int(self.num_nodes[i])
        return TreeRound(
            scheme=TREE_SCHEMES[int(self.scheme[i])], parents=self.parents[i, :n].astype(np.int64),
            tokens=self.node_tokens[i, :n].astype(np.int64), target_logits=self.target_logits[i, :n],
            draft_logits=self.draft_logits[i, :n], draft_params=tuple(int(v) for v in self.draft_params[i]),
            target_params=tuple(int(v) for v in self.target_params[i]),
            draft_uniforms=self.draft_uniforms[i, :n].astype(np.uint64),   # U <= 64: never int64
            accept_uniforms=self.accept_uniforms[i, :n].astype(np.uint64),
            sample_uniforms=self.sample_uniforms[i, :n].astype(np.uint64))

    def rounds(self):
        for i in range(self.num_rounds):
            yield self.round(i)


def _check_v3_layout(vocab_size: int, layout: dict) -> tuple[int, int]:
    """Dtypes and shapes of the array keys from {key: (dtype, shape)} (the arrays, or the
    members' .npy headers before anything is read). Returns (R, N)."""
    nn = layout["num_nodes"][1]
    if len(nn) != 1 or nn[0] == 0:
        _fail("key 'num_nodes': expected a 1-D integer array [R] with at least one round")
    pa = layout["parents"][1]
    if len(pa) != 2 or pa[1] == 0:
        _fail(f"key 'parents': expected shape [R, N] with N >= 1, got {tuple(pa)}")
    R, N = nn[0], pa[1]
    for name in V3_ARRAY_KEYS:
        kinds, shape = _LAYOUT_V3[name]
        _check_dtype_shape(name, *layout[name], kinds, shape(R, N, int(vocab_size)))
    for name in ("draft_logits", "target_logits"):
        if layout[name][0] != np.uint16:
            _fail(f"key '{name}': expected uint16 (bf16 bit patterns), got {layout[name][0]}")
    for name in UNIFORM_KEYS:
        if layout[name][0] not in (np.uint32, np.uint64):
            _fail(f"key '{name}': expected uint32 or uint64, got {layout[name][0]}")
    return R, N


def validate_tree_trace(tr: TreeTrace) -> None:
    """Raise TraceError on the first violation of the v3 contract (docs/TRACE_FORMAT.md)."""
    _check_v2_scalars(tr.vocab_size, tr.logit_format, tr.weight_bits, tr.uniform_bits, tr.logit_frac_bits,
                      tr.inv_temp_frac_bits)
    for name in V3_ARRAY_KEYS:
        if not isinstance(getattr(tr, name), np.ndarray):
            _fail(f"key '{name}': expected a numpy array, got {type(getattr(tr, name)).__name__}")
    R, N = _check_v3_layout(tr.vocab_size, {k: (getattr(tr, k).dtype, getattr(tr, k).shape) for k in V3_ARRAY_KEYS})
    V, W, U = int(tr.vocab_size), int(tr.weight_bits), int(tr.uniform_bits)
    nn = _as_int64(tr.num_nodes)
    bad = np.flatnonzero((nn < 1) | (nn > N))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'num_nodes', round {r}: {int(tr.num_nodes[r])} nodes outside 1..{N} (N = the file's nodes per round)")
    sch = _as_int64(tr.scheme)
    bad = np.flatnonzero((sch < 0) | (sch >= len(TREE_SCHEMES)))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'scheme', round {r}: {int(tr.scheme[r])} is not a tree scheme "
              f"({', '.join(f'{i} = {s}' for i, s in enumerate(TREE_SCHEMES))})")
    live = np.arange(N)[None, :] < nn[:, None]                       # [R, N] nodes in use
    sampled = sch == TREE_SCHEMES.index("sampled")
    _check_params("draft_params", tr.draft_params)
    _check_params("target_params", tr.target_params)
    _check_uniforms([(k, getattr(tr, k), live) for k in UNIFORM_KEYS], U, slots=True, unit="node")
    parents, tokens = _as_int64(tr.parents), _as_int64(tr.node_tokens)
    for r in range(R):
        n = int(nn[r])
        check_tree_structure(TREE_SCHEMES[int(sch[r])], parents[r, :n], tokens[r, :n], V, f"round {r}", keys=True)
    _check_logit_rows("target_logits", tr.target_logits, live, "node")
    internal = np.zeros((R, N), bool)                                # nodes with a child, sampled rounds
    for r in np.flatnonzero(sampled):
        internal[r, parents[r, 1: int(nn[r])]] = True
    _check_logit_rows("draft_logits", tr.draft_logits, internal, "node")
    en = _as_int64(tr.expected_node)
    bad = np.flatnonzero((en < 0) | (en >= nn))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'expected_node', round {r}: node {int(tr.expected_node[r])} outside 0..{int(nn[r]) - 1}")
    et = _as_int64(tr.expected_token)
    bad = np.flatnonzero((et < 0) | (et >= V))
    if bad.size:
        r = int(bad[0])
        _fail(f"key 'expected_token', round {r}: token id {int(tr.expected_token[r])} outside 0..{V - 1}")
    if not isinstance(tr.meta, dict):
        _fail("key 'meta': expected a JSON object")
    # sampled children must be the draft samples of their parent's row (NUMERICS.md section 3)
    for r in np.flatnonzero(sampled):
        sampled_draft_rows(tr.round(int(r)), W, U, f"round {int(r)}", keys=True)


# ---- the reader's steps (hades.traces.format.read_trace) and the writer's arrays -----------------

def _v3_fields(data: dict) -> dict:
    return logit_scalar_fields(data, FORMAT_V3)


def _v3_layout(fields: dict, layout: dict) -> None:
    check_logit_scalar_fields(fields)
    _check_v3_layout(fields["vocab_size"], layout)


V3 = FormatVersion(FORMAT_V3, V3_SCALAR_KEYS, V3_ARRAY_KEYS, _v3_fields, _v3_layout,
                   lambda fields, arrays: TreeTrace(**fields, **arrays))


def file_arrays(tr: TreeTrace) -> dict:
    """{key: array} of the file, after validating the trace and bounding its meta like the
    reader does (the writer never writes a file read_trace refuses)."""
    validate_tree_trace(tr)
    arrays = {k: getattr(tr, k) for k in V3_ARRAY_KEYS}
    arrays.update(logit_scalar_arrays(tr, FORMAT_V3))
    return arrays


def tree_trace_from_rounds(rounds, results, *, vocab_size: int, weight_bits: int, uniform_bits: int,
                           nodes_max: int | None = None, meta: dict | None = None) -> TreeTrace:
    """Pad TreeRounds and their TreeResults into a validated TreeTrace: the one place where tree
    producers lay out the file's arrays. Entries past a round's nodes stay zero (parents too),
    and so do the draft rows that no sampled child was drawn from."""
    rounds, results = list(rounds), list(results)
    if len(rounds) != len(results):
        raise ValueError(f"{len(rounds)} rounds but {len(results)} results")
    R, V = len(rounds), vocab_size
    N = max((r.num_nodes for r in rounds), default=1) if nodes_max is None else nodes_max
    u_dtype = np.uint32 if uniform_bits <= 32 else np.uint64
    a = dict(num_nodes=np.zeros(R, np.int32), scheme=np.zeros(R, np.uint8), parents=np.zeros((R, N), np.int32),
             node_tokens=np.zeros((R, N), np.int32), draft_logits=np.zeros((R, N, V), np.uint16),
             target_logits=np.zeros((R, N, V), np.uint16), draft_params=np.zeros((R, 4), np.int64),
             target_params=np.zeros((R, 4), np.int64), draft_uniforms=np.zeros((R, N), u_dtype),
             accept_uniforms=np.zeros((R, N), u_dtype), sample_uniforms=np.zeros((R, N), u_dtype),
             expected_node=np.zeros(R, np.int32), expected_token=np.zeros(R, np.int32))
    for i, (r, res) in enumerate(zip(rounds, results)):
        n = r.num_nodes
        if n > N:
            raise ValueError(f"round {i}: {n} nodes above nodes_max {N}")
        a["num_nodes"][i], a["scheme"][i] = n, TREE_SCHEMES.index(r.scheme)
        a["parents"][i, :n], a["node_tokens"][i, :n] = r.parents, r.tokens
        a["target_logits"][i, :n] = r.target_logits
        if r.scheme == "sampled":
            a["draft_logits"][i, :n] = r.draft_logits
        a["draft_params"][i], a["target_params"][i] = params_array(r.draft_params), params_array(r.target_params)
        for k in UNIFORM_KEYS:
            a[k][i, :n] = getattr(r, k)
        a["expected_node"][i], a["expected_token"][i] = res.node, res.token
    return TreeTrace(vocab_size=V, weight_bits=weight_bits, uniform_bits=uniform_bits, meta=meta or {}, **a)
