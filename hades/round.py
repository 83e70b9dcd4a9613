"""One verification round and its result: the data every level consumes and produces."""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

UNIFORM_MAX = (1 << 64) - 1   # the widest uniform the trace format admits (U = 64)
_U64 = np.dtype(np.uint64)


def uniform_int(value) -> int:
    """One uniform as an exact Python int in 0..2^64 - 1 (ValueError otherwise, never a wrap)."""
    v = value if type(value) is int else operator.index(value)
    if not 0 <= v <= UNIFORM_MAX:
        raise ValueError(f"uniform {v} outside 0..2^64 - 1")
    return v


def uniform_array(values) -> np.ndarray:
    """Uniforms as a uint64 array holding exactly the given values.

    Uniforms are U-bit unsigned integers with U up to 64, so int64 cannot hold them: a uint64
    uniform >= 2^63 cast to int64 turns negative and silently passes every accept test.
    Anything that cannot be held exactly (a negative value, one above 2^64 - 1, a float that
    is not an integer up to 2^53) is refused with ValueError instead of being converted."""
    if isinstance(values, np.ndarray):
        a = values
        if a.dtype is _U64:   # the common case, no copy
            return a
        if a.dtype.kind == "u":
            return a.astype(np.uint64, copy=False)
        if a.dtype.kind == "i":
            if a.size and int(a.min()) < 0:
                raise ValueError(f"uniforms must be >= 0, got {int(a.min())}")
            return a.astype(np.uint64)
        if a.size == 0:
            return np.zeros(a.shape, np.uint64)
        if a.dtype.kind == "f":   # exact only while integral and within 2^53
            if not (np.isfinite(a).all() and (a == np.floor(a)).all() and a.min() >= 0 and a.max() <= 2.0 ** 53):
                raise ValueError("float uniforms must be integers in 0..2^53 (wider ones need an integer dtype)")
            return a.astype(np.uint64)
        if a.dtype.kind != "O":
            raise ValueError(f"uniforms must be integers, got dtype {a.dtype}")
        flat = [uniform_int(v) for v in a.reshape(-1)]
        return np.array(flat, np.uint64).reshape(a.shape)
    # a list of Python ints: np.asarray would turn [-1, 2**63] into float64, so go one by one
    return np.array([uniform_int(v) for v in values], np.uint64)


@dataclass(frozen=True)
class Round:
    """The inputs of one verification round (already validated against the trace contract).

    draft_probs is [gamma, V], target_probs [gamma + 1, V], both integer rows summing to M
    (W <= 31 bits: int64 holds them and their sums exactly). The uniforms are U-bit with
    U <= 64: accept_uniforms is held as uint64 and sample_uniform as a Python int, whatever
    integer type they are given as (a value that cannot be held exactly is refused); the
    numerics convert each uniform to a Python int before multiplying, so every product is exact.
    """
    greedy: bool
    draft_tokens: np.ndarray      # int64 [gamma]
    draft_probs: np.ndarray       # int64 [gamma, V]
    target_probs: np.ndarray      # int64 [gamma + 1, V]
    accept_uniforms: np.ndarray   # uint64 [gamma]
    sample_uniform: int

    def __post_init__(self):
        object.__setattr__(self, "accept_uniforms", uniform_array(self.accept_uniforms))
        object.__setattr__(self, "sample_uniform", uniform_int(self.sample_uniform))

    @property
    def gamma(self) -> int:
        return len(self.draft_tokens)

    @property
    def vocab_size(self) -> int:
        return self.target_probs.shape[1]


@dataclass(frozen=True)
class RoundResult:
    """What the verifier emits for a round: accepted drafts n and the one extra token.

    cycles and latency are None at FL; at CL and RTL they are the total cycles from the
    round's first input beat to its result (inclusive) and the cycles from the last input
    beat to the result.
    """
    accepted: int
    token: int
    cycles: int | None = None
    latency: int | None = None

    def decision(self) -> tuple[int, int]:
        return (self.accepted, self.token)


@dataclass(frozen=True)
class LogitRound:
    """The inputs of one verification round whose rows are bf16 logits (NUMERICS.md 12-16).

    Rows are bf16 bit patterns (uint16); each side carries one (k, top_k, top_p, min_p)
    tuple (`numerics.SamplingParams`) that holds for all its rows. With onehot_draft the
    drafts come without a draft model (P one-hot at x_t, ZP = 1), and draft_logits,
    draft_params and draft_uniforms are ignored. Greedy rounds ignore the parameters and all
    uniforms. Uniforms are U-bit integers (any integer dtype; uint64 at U = 64).
    """
    greedy: bool
    onehot_draft: bool
    draft_tokens: np.ndarray                 # int [gamma]
    draft_logits: np.ndarray                 # uint16 [gamma, V] (ignored with onehot_draft)
    target_logits: np.ndarray                # uint16 [gamma + 1, V]
    draft_params: tuple[int, int, int, int]  # (k, top_k, top_p, min_p) of the draft rows
    target_params: tuple[int, int, int, int]  # ... of the target rows, the bonus row included
    draft_uniforms: np.ndarray               # [gamma] D_t that drew x_t from the draft's weights
    accept_uniforms: np.ndarray              # [gamma] R_t
    sample_uniform: int                      # R of the residual or bonus sample

    @property
    def gamma(self) -> int:
        return len(self.draft_tokens)

    @property
    def vocab_size(self) -> int:
        return self.target_logits.shape[1]


# ---- tree rounds (docs/TREES.md) -------------------------------------------------------------

TREE_SCHEMES = ("greedy", "deterministic", "sampled")   # the file's `scheme` codes 0, 1, 2


@dataclass(frozen=True)
class TreeRound:
    """The inputs of one tree verification round on bf16 logit rows (docs/TREES.md).

    Node 0 is the root; every other node n has a parent parents[n] < n (parents[0] = -1) and
    a token tokens[n] (tokens[0] is unused); target_logits[n] is the target's row for the
    context that ends with node n's path. scheme is one of TREE_SCHEMES: "sampled" children
    of node n were drawn i.i.d. by the draft sampler from draft_logits[n] (under draft_params)
    with draft_uniforms[child]; "deterministic" and "greedy" children are distinct tokens and
    need no draft rows. accept_uniforms[n] is R of node n's accept test (sampled), and
    sample_uniforms[n] the uniform of the draw made at node n (deterministic: at every node
    the walk visits; sampled: where the walk stops). Unused entries are ignored.
    """
    scheme: str
    parents: np.ndarray                      # int [N]
    tokens: np.ndarray                       # int [N]
    target_logits: np.ndarray                # uint16 [N, V]
    draft_logits: np.ndarray                 # uint16 [N, V] (rows of internal nodes, sampled scheme)
    draft_params: tuple[int, int, int, int]
    target_params: tuple[int, int, int, int]
    draft_uniforms: np.ndarray               # [N]
    accept_uniforms: np.ndarray              # [N]
    sample_uniforms: np.ndarray              # [N]

    @property
    def num_nodes(self) -> int:
        return len(self.parents)

    @property
    def vocab_size(self) -> int:
        return self.target_logits.shape[1]


@dataclass(frozen=True)
class TreeResult:
    """What the tree verifier emits for a round: the node where the walk stopped (0 = the root),
    the accepted nodes along its path (root excluded, in order), and the one extra token. The
    round emits the tokens of `path` then `token`; accepted = len(path). cycles and latency are
    None at FL; at CL and RTL they count as a chain round's (RoundResult)."""
    node: int
    path: tuple[int, ...]
    token: int
    cycles: int | None = None
    latency: int | None = None

    @property
    def accepted(self) -> int:
        return len(self.path)

    def decision(self) -> tuple[int, int]:
        """(accepted, token), as RoundResult.decision() of a chain."""
        return (self.accepted, self.token)


def children_lists(parents) -> list[list[int]]:
    """The children of every node, each list in node-id order (parents[n] < n, parents[0] = -1)."""
    kids: list[list[int]] = [[] for _ in range(len(parents))]
    for n in range(1, len(parents)):
        kids[int(parents[n])].append(n)
    return kids


def node_depths(parents) -> np.ndarray:
    """Depth of every node (the root 0): how many tokens a walk that stops there accepts."""
    depth = np.zeros(len(parents), np.int64)
    for n in range(1, len(parents)):
        depth[n] = depth[int(parents[n])] + 1
    return depth


def path_to(parents, node: int) -> tuple[int, ...]:
    """The nodes from the root's child down to `node` (empty for the root)."""
    path = []
    while node > 0:
        path.append(node)
        node = int(parents[node])
    return tuple(reversed(path))
