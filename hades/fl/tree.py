"""The golden model of tree verification (docs/TREES.md): one tree round on bf16 logit rows.

Three schemes (hades.round.TREE_SCHEMES): deterministic children (draw y from the node's
target row; move to the child whose token is y, else emit y), sampled children (SpecInfer's
multi-step speculative sampling with the exact integer residual max(0, Q_n a_i - P_n b_i))
and greedy trees (follow the child whose token is the argmax). A chain is the tree in which
every node has at most one child; with sampled children it decides exactly as the chain
verifier (verify_logit_round), bit for bit (tests/test_tree.py).
"""
from __future__ import annotations

import numpy as np

from hades import numerics
from hades.errors import TraceError
from hades.fl.verifier import _uniform
from hades.round import TREE_SCHEMES, LogitRound, TreeResult, TreeRound, children_lists, node_depths, path_to  # noqa: F401


def _key(name: str, keys: bool) -> str:
    """The "key 'name', " prefix of the trace reader's messages (keys=True), else nothing."""
    return f"key '{name}', " if keys else ""


def check_tree_structure(scheme: str, parents, tokens, vocab_size: int, where: str = "round",
                         keys: bool = False) -> None:
    """TraceError unless: scheme is known; there is at least one node; parents[0] = -1 and
    every other parent is an earlier node; tokens of nodes 1.. lie in 0..V-1; deterministic and
    greedy children of one node are distinct tokens (sampled children may repeat: they are
    i.i.d. draws). Messages name `where` and the node (and the key with keys=True)."""
    if scheme not in TREE_SCHEMES:
        raise TraceError(f"{_key('scheme', keys)}{where}: unknown tree scheme {scheme!r}; expected one of {TREE_SCHEMES}")
    n_nodes = len(parents)
    if n_nodes < 1 or len(tokens) != n_nodes:
        raise TraceError(f"{_key('num_nodes', keys)}{where}: {n_nodes} parents and {len(tokens)} tokens; "
                         "a tree has at least the root and one token per node")
    if int(parents[0]) != -1:
        raise TraceError(f"{_key('parents', keys)}{where}, node 0: the root's parent must be -1, got {int(parents[0])}")
    for n in range(1, n_nodes):
        p = int(parents[n])
        if not 0 <= p < n:
            raise TraceError(f"{_key('parents', keys)}{where}, node {n}: parent {p} is not an earlier node (0..{n - 1})")
        x = int(tokens[n])
        if not 0 <= x < vocab_size:
            raise TraceError(f"{_key('node_tokens', keys)}{where}, node {n}: token id {x} outside 0..{vocab_size - 1}")
    if scheme != "sampled":
        for kids in children_lists(parents):
            seen: dict[int, int] = {}
            for c in kids:
                x = int(tokens[c])
                if x in seen:
                    raise TraceError(f"{_key('node_tokens', keys)}{where}, node {c}: token {x} repeats its sibling "
                                     f"node {seen[x]}; {scheme} children must be distinct tokens")
                seen[x] = c


def sampled_draft_rows(rnd: TreeRound, weight_bits: int, uniform_bits: int, where: str = "round",
                       keys: bool = False) -> list:
    """The draft weight rows (P_n, ZP_n) of a sampled round's internal nodes (None for leaves),
    checked: every child's token must be the draft sample of its parent's row with its draft
    uniform, x = the smallest k with P[0] + ... + P[k] > (D * ZP) >> U (a token of weight 0 is
    named as such). The ratio's P must be what the children were drawn from (NUMERICS.md
    section 3)."""
    kids = children_lists(rnd.parents)
    rows: list = [None] * rnd.num_nodes
    for n, cs in enumerate(kids):
        if not cs:
            continue
        what = f"{where}: draft row of node {n}" if not keys else f"key 'draft_logits', {where}, node {n}"
        p, zp = numerics.logit_weights(rnd.draft_logits[n], rnd.draft_params, weight_bits, what)
        rows[n] = (p, zp)
        for c in cs:
            x = int(rnd.tokens[c])
            d = _uniform(rnd.draft_uniforms[c], uniform_bits, f"{_key('draft_uniforms', keys)}{where}, node {c}")
            if p[x] == 0:
                raise TraceError(f"{_key('node_tokens', keys)}{where}, node {c}: token {x} has weight 0 in the draft "
                                 f"row of its parent node {n}; sampled children must be drawn from that row")
            s = numerics.draft_sample(p, zp, d, uniform_bits)
            if s != x:
                raise TraceError(f"{_key('node_tokens', keys)}{where}, node {c}: token {x} is not the draft sample of "
                                 f"its parent node {n}'s draft row (D = {d} draws {s})")
    return rows


def sampled_children_step(q, zq: int, p, zp: int, child_tokens, accept_uniforms, sample_uniform: int,
                          uniform_bits: int) -> tuple[int | None, int]:
    """SpecInfer's multi-step speculative sampling at one node, in exact integers.

    The residual after i rejections is r_i = max(0, Q a_i - P b_i) with S_i = sum(r_i);
    a_0 = 1, b_0 = 0 (r_0 = Q, S_0 = ZQ). Child i + 1 (token x, uniform R) is accepted iff
    R * P[x] * S_i < r_i[x] * ZP * 2^U; on a rejection a_{i+1} = a_i ZP, b_{i+1} = b_i ZP + S_i.
    If every child is rejected (or there is none), emit the sample of r_k with S_k.
    Returns (index of the accepted child or None, token)."""
    zq, zp = int(zq), int(zp)
    a, b, s = 1, 0, zq
    res = q
    for i, (x, r) in enumerate(zip(child_tokens, accept_uniforms)):
        x = int(x)
        rx = max(0, int(q[x]) * a - int(p[x]) * b)
        if numerics.weighted_accept(r, p[x], zp, rx, s, uniform_bits):
            return i, x
        a, b = a * zp, b * zp + s
        res = numerics.weighted_residual_weights(q, b, p, a)   # max(0, Q * a - P * b)
        s = int(res.sum())
        if s <= 0:   # a rejection leaves S > 0 whenever P[x] > 0 (docs/TREES.md)
            raise ValueError("sampled_children_step: the residual is all zero after a rejection (P[x] = 0?)")
    return None, numerics.weighted_sample(res, s, sample_uniform, uniform_bits)


def deterministic_children_step(q, zq: int, child_tokens, sample_uniform: int,
                                uniform_bits: int) -> tuple[int | None, int]:
    """Draw y from (Q, ZQ) with the node's uniform; (index of the child whose token is y, y),
    or (None, y) when no child has it."""
    y = numerics.weighted_sample(q, zq, sample_uniform, uniform_bits)
    for i, x in enumerate(child_tokens):
        if int(x) == y:
            return i, y
    return None, y


def walk_tree(parents, tokens, step) -> TreeResult:
    """From the root, step(n, children) -> (index or None, token) at each node until a node
    emits its token without moving on."""
    kids = children_lists(parents)
    node, path = 0, []
    while True:
        i, token = step(node, kids[node])
        if i is None:
            return TreeResult(node, tuple(path), int(token))
        node = kids[node][i]
        path.append(node)


def verify_tree_weights(scheme: str, parents, tokens, q_rows, zq, p_rows, zp, accept_uniforms, sample_uniforms,
                        uniform_bits: int) -> TreeResult:
    """A stochastic tree round on weight rows: (Q_n, ZQ_n) per node, (P_n, ZP_n) per internal
    node for sampled children (p_rows / zp unused for deterministic children)."""
    if scheme == "sampled":
        def step(n, cs):
            return sampled_children_step(q_rows[n], zq[n], p_rows[n] if cs else None, zp[n] if cs else 1,
                                         [tokens[c] for c in cs], [accept_uniforms[c] for c in cs],
                                         sample_uniforms[n], uniform_bits)
    elif scheme == "deterministic":
        def step(n, cs):
            return deterministic_children_step(q_rows[n], zq[n], [tokens[c] for c in cs], sample_uniforms[n],
                                               uniform_bits)
    else:
        raise ValueError(f"verify_tree_weights: scheme {scheme!r} is not stochastic")
    return walk_tree(parents, tokens, step)


def greedy_tree_walk(parents, tokens, best) -> TreeResult:
    """Greedy trees: at node n follow the child whose token is best[n] (the argmax of Q_n),
    else emit best[n]."""
    def step(n, cs):
        for i, c in enumerate(cs):
            if int(tokens[c]) == int(best[n]):
                return i, best[n]
        return None, best[n]
    return walk_tree(parents, tokens, step)


def verify_tree_round(rnd: TreeRound, weight_bits: int, uniform_bits: int, where: str = "round") -> TreeResult:
    """The golden tree round on bf16 logit rows (docs/TREES.md). The structure is checked
    (check_tree_structure) and every target row is decoded (it must be valid, whether or not
    the walk reaches it). Greedy: argmax over the converted logits of each node's target row
    (logit_argmax), parameters and uniforms unused. Stochastic: target weight rows under
    target_params; for sampled children the draft rows of the internal nodes under draft_params
    (sampled_draft_rows refuses a child that is not its parent row's draft sample); the uniforms
    of every node in 0..2^U - 1."""
    tl = np.asarray(rnd.target_logits)
    n_nodes = len(rnd.parents)
    if tl.ndim != 2 or tl.shape[0] != n_nodes or tl.shape[1] < 1:
        raise TraceError(f"{where}: target_logits has shape {tl.shape}, expected ({n_nodes}, V)")
    V = tl.shape[1]
    check_tree_structure(rnd.scheme, rnd.parents, rnd.tokens, V, where)
    if rnd.scheme == "greedy":
        best = [numerics.logit_argmax(tl[n], f"{where}: target row of node {n}") for n in range(n_nodes)]
        return greedy_tree_walk(rnd.parents, rnd.tokens, best)
    for name in ("accept_uniforms", "sample_uniforms") + (("draft_uniforms",) if rnd.scheme == "sampled" else ()):
        u = getattr(rnd, name)
        if len(u) != n_nodes:
            raise TraceError(f"{where}: {len(u)} {name.replace('_', ' ')} for {n_nodes} nodes")
    q, zq = [], []
    for n in range(n_nodes):
        w, z = numerics.logit_weights(tl[n], rnd.target_params, weight_bits, f"{where}: target row of node {n}")
        q.append(w)
        zq.append(z)
    p, zp = [None] * n_nodes, [1] * n_nodes
    if rnd.scheme == "sampled":
        if np.asarray(rnd.draft_logits).shape != tl.shape:
            raise TraceError(f"{where}: draft_logits has shape {np.asarray(rnd.draft_logits).shape}, expected {tl.shape}")
        for n, row in enumerate(sampled_draft_rows(rnd, weight_bits, uniform_bits, where)):
            if row is not None:
                p[n], zp[n] = row
    ra = [_uniform(r, uniform_bits, f"{where}, node {n}: accept uniform") for n, r in enumerate(rnd.accept_uniforms)]
    rs = [_uniform(r, uniform_bits, f"{where}, node {n}: sample uniform") for n, r in enumerate(rnd.sample_uniforms)]
    return verify_tree_weights(rnd.scheme, rnd.parents, rnd.tokens, q, zq, p, zp, ra, rs, uniform_bits)


def tree_from_chain(rnd: LogitRound) -> TreeRound:
    """A chain round as the tree whose every node has at most one child: node t (t >= 1) holds
    draft x_t, target row t - 1 goes to node t - 1 and the bonus row to node gamma, draft row t
    to node t (the row its child was drawn from), draft and accept uniforms of slot t to node
    t + 1, and every node's sample uniform is the chain's. Greedy rounds become greedy trees,
    stochastic ones sampled trees; a one-hot draft becomes the draft row that masks every entry
    but x_t (weights E[0] at x_t, 0 elsewhere: the one-hot row scaled by 2^W - 1, which decides
    identically, docs/TREES.md "Scale")."""
    g, V = rnd.gamma, rnd.vocab_size
    parents = np.arange(-1, g, dtype=np.int64)
    tokens = np.concatenate([[0], np.asarray(rnd.draft_tokens, np.int64)])
    draft = np.zeros((g + 1, V), np.uint16)
    if rnd.onehot_draft:
        draft[:g] = numerics.BF16_NEG_INF
        draft[np.arange(g), tokens[1:]] = 0   # bf16 0.0: the only live entry
    else:
        draft[:g] = np.asarray(rnd.draft_logits)[:g]
    zeros = np.zeros(1, np.uint64)
    return TreeRound(scheme="greedy" if rnd.greedy else "sampled", parents=parents, tokens=tokens,
                     target_logits=np.asarray(rnd.target_logits), draft_logits=draft,
                     draft_params=rnd.draft_params, target_params=rnd.target_params,
                     draft_uniforms=np.concatenate([zeros, np.asarray(rnd.draft_uniforms, np.uint64)]),
                     accept_uniforms=np.concatenate([zeros, np.asarray(rnd.accept_uniforms, np.uint64)]),
                     sample_uniforms=np.full(g + 1, int(rnd.sample_uniform), np.uint64))
