"""Tree verification at FL (docs/TREES.md): a chain is a tree and decides as the chain verifier
bit for bit; the emitted first and second tokens follow the target for both child schemes
(chi-square), and a verifier that skips the residual update between siblings fails; edge
cases; the tree trace file (reader, writer, bad input) and the CLI."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hades import numerics
from hades.cli import main
from hades.errors import TraceError
from hades.fl.tree import (children_lists, deterministic_children_step, node_depths, path_to, sampled_children_step,
                           tree_from_chain, verify_tree_round, verify_tree_weights, walk_tree)
from hades.fl.verifier import verify_logit_round, verify_weight_round
from hades.round import TreeRound
from hades.traces.format import read_trace, trace_from_arrays, write_trace
from hades.traces.format_tree import tree_trace_from_rounds
from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
from hades.traces.synthetic_tree import TreeSyntheticSpec, synthetic_tree_trace, tree_node_count
from harness.bad_inputs import V3_MUTATIONS, good_v3_arrays
from harness.stats import chi2_sf

U = 32


# ---- a chain is the special case of a path -----------------------------------------------------

CHAIN_SPECS = [   # (W, U, V, gammas, greedy share, one-hot share, min-ps, logit step)
    (16, 32, 64, (0, 1, 2, 3, 5, 8), 0.25, 0.25, (0.0, 0.1), 0.0),
    (16, 32, 512, (1, 4), 0.2, 0.2, (0.0, 0.05), 0.5),
    (24, 40, 97, (2, 6), 0.2, 0.3, (0.0,), 0.0),
    (8, 8, 33, (1, 3, 7), 0.2, 0.3, (0.0, 0.3), 0.5),
    (16, 64, 50, (2, 5), 0.0, 0.3, (0.0,), 0.0),
]


@pytest.mark.parametrize("spec", CHAIN_SPECS, ids=[f"W{s[0]}-U{s[1]}-V{s[2]}" for s in CHAIN_SPECS])
def test_a_chain_decides_as_the_chain_verifier_bit_for_bit(spec):
    W, u_bits, V, gammas, greedy, onehot, min_ps, step = spec
    accepted = set()
    for seed in range(3):
        trace = synthetic_logit_trace(LogitSyntheticSpec(
            vocab_size=V, rounds=40, gammas=gammas, seed=seed, weight_bits=W, uniform_bits=u_bits,
            greedy_share=greedy, onehot_share=onehot, min_ps=min_ps, logit_step=step))
        for i, rnd in enumerate(trace.rounds()):
            chain = verify_logit_round(rnd, W, u_bits)
            tree = verify_tree_round(tree_from_chain(rnd), W, u_bits)
            assert tree.decision() == chain.decision(), f"seed {seed} round {i}"
            assert tree.path == tuple(range(1, chain.accepted + 1))
            accepted.add((rnd.greedy, chain.accepted == rnd.gamma))
    # stochastic rejections and full acceptance were both exercised, and greedy rounds where the spec has them
    assert {(False, False), (False, True)} <= accepted and any(g for g, _ in accepted) == (greedy > 0)


def test_a_chain_through_the_tree_file_verifies_as_its_v2_trace(tmp_path):
    trace = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=80, rounds=30, gammas=(0, 2, 5), seed=9))
    trees = [tree_from_chain(r) for r in trace.rounds()]
    results = [verify_tree_round(t, 16, U) for t in trees]
    write_trace(tmp_path / "chain3.npz", tree_trace_from_rounds(trees, results, vocab_size=80, weight_bits=16,
                                                                uniform_bits=U))
    back = read_trace(tmp_path / "chain3.npz")
    assert back.format_version == 3
    assert back.expected_accepted.tolist() == trace.expected_accepted.tolist()
    assert back.expected_token.tolist() == trace.expected_token.tolist()
    assert [verify_tree_round(r, 16, U).decision() for r in back.rounds()] == \
        list(zip(trace.expected_accepted.tolist(), trace.expected_token.tolist()))


def test_chain_equality_holds_on_wide_rows_that_need_python_ints():
    """V = 65536 nearly flat rows at W = 24: Q * ZP overflows int64, the residual is a Python-int row."""
    rng = np.random.default_rng(3)
    V, W = 65536, 24
    for _ in range(3):
        q = rng.integers((1 << W) - 40, 1 << W, size=(3, V))
        p = rng.integers((1 << W) - 40, 1 << W, size=(2, V))
        zq, zp = q.sum(axis=1), p.sum(axis=1)
        assert int(q[0].max()) * int(zp[0]) > numerics.INT64_MAX
        x = [numerics.draft_sample(p[t], int(zp[t]), int(rng.integers(1 << U)), U) for t in range(2)]
        for acc_u in ([0, 0], [(1 << U) - 1, 0], [0, (1 << U) - 1]):
            rs = int(rng.integers(1 << U))
            chain = verify_weight_round(x, p, zp, q, zq, acc_u, rs, U)
            tree = verify_tree_weights("sampled", [-1, 0, 1], [0] + x, list(q), list(zq), list(p) + [None],
                                       list(zp) + [1], [0] + acc_u, [rs] * 3, U)
            assert tree.decision() == chain.decision()


# ---- exactness: the emitted first and second tokens follow the target -------------------------

V_STAT = 5
SHAPE_STAT = (3, 2)
ROUNDS_STAT = 12_000


def _weight_row(rng, lo=1, hi=4000) -> np.ndarray:
    return rng.integers(lo, hi, size=V_STAT).astype(np.int64)


class ContextModel:
    """Fixed integer target and draft rows per context (the tokens so far in this round): the
    ground truth a tree's rows come from. Draft rows differ a lot from the target's (and have
    other sums), so that a wrong verifier shows."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.q = {(): _weight_row(rng)}
        self.p = {(): _weight_row(rng)}
        self.p[()][0] *= 12   # the draft strongly over-proposes token 0
        for y in range(V_STAT):
            self.q[(y,)] = _weight_row(rng)
            self.p[(y,)] = _weight_row(rng)
            for z in range(V_STAT):
                self.q[(y, z)] = _weight_row(rng)

    def probs(self, ctx) -> np.ndarray:
        return self.q[ctx] / self.q[ctx].sum()


def _tree_round(model: ContextModel, scheme: str, rng):
    """(parents, tokens, contexts, accept uniforms, sample uniforms) of one tree of SHAPE_STAT."""
    parents, tokens, ctx = [-1], [0], [()]
    level = [0]
    for b in SHAPE_STAT:
        nxt = []
        for n in level:
            p = model.p[ctx[n]]
            if scheme == "sampled":
                kids = [numerics.draft_sample(p, int(p.sum()), int(d), U) for d in rng.integers(0, 1 << U, size=b)]
            else:
                kids = [int(x) for x in numerics.rank_order(p)[:b]]
            for x in kids:
                parents.append(n)
                tokens.append(x)
                ctx.append(ctx[n] + (x,))
                nxt.append(len(parents) - 1)
        level = nxt
    n = len(parents)
    return parents, tokens, ctx, rng.integers(0, 1 << U, size=n), rng.integers(0, 1 << U, size=n)


def _skip_residual_update(q, zq, p, zp, child_tokens, accept_uniforms, sample_uniform, uniform_bits):
    """The bug: every sibling is tested against the node's own target row (the residual is never
    updated between siblings); after the last rejection, the one-step residual max(0, Q ZP - P ZQ)."""
    for i, (x, r) in enumerate(zip(child_tokens, accept_uniforms)):
        if numerics.weighted_accept(r, p[x], zp, q[x], zq, uniform_bits):
            return i, int(x)
    if not child_tokens:
        return None, numerics.weighted_sample(q, zq, sample_uniform, uniform_bits)
    return None, numerics.weighted_residual_sample(q, zq, p, zp, sample_uniform, uniform_bits)


def _emitted_pairs(model, scheme: str, seed: int, step=sampled_children_step) -> tuple[np.ndarray, float]:
    """(first, second) emitted token per round, and the share of rounds whose tree emitted both;
    a round that emits one token gets its second from the next round's root row, Q(first), with
    the exact integer sampler."""
    rng = np.random.default_rng(seed)
    pairs = np.empty((ROUNDS_STAT, 2), np.int64)
    from_tree = 0
    for i in range(ROUNDS_STAT):
        parents, tokens, ctx, ra, rs = _tree_round(model, scheme, rng)
        q = [model.q[c] for c in ctx]
        zq = [int(r.sum()) for r in q]
        p = [model.p.get(c) for c in ctx]
        zp = [int(r.sum()) if r is not None else 1 for r in p]
        if scheme == "sampled":
            res = walk_tree(parents, tokens, lambda n, cs: step(q[n], zq[n], p[n], zp[n], [tokens[c] for c in cs],
                                                                [ra[c] for c in cs], int(rs[n]), U))
        else:
            res = verify_tree_weights(scheme, parents, tokens, q, zq, p, zp, ra, rs, U)
        seq = [tokens[n] for n in res.path] + [res.token]
        from_tree += len(seq) >= 2
        if len(seq) == 1:
            nxt = model.q[(seq[0],)]
            seq.append(numerics.weighted_sample(nxt, int(nxt.sum()), int(rng.integers(1 << U)), U))
        pairs[i] = seq[:2]
    return pairs, from_tree / ROUNDS_STAT


def _chi2_p(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    assert expected.min() >= 5, "cells too small for the chi-square approximation"
    return chi2_sf(float(((counts - expected) ** 2 / expected).sum()), probs.size - 1)


def _joint_p_values(model, pairs) -> tuple[float, float]:
    """p-values of the first token against Q() and of the (first, second) pair against
    Q()(y) Q(y)(z)."""
    first = np.bincount(pairs[:, 0], minlength=V_STAT)
    joint = np.zeros((V_STAT, V_STAT))
    np.add.at(joint, (pairs[:, 0], pairs[:, 1]), 1)
    q0 = model.probs(())
    want = q0[:, None] * np.stack([model.probs((y,)) for y in range(V_STAT)])
    return _chi2_p(first, q0), _chi2_p(joint.reshape(-1), want.reshape(-1))


@pytest.mark.parametrize("scheme", ["sampled", "deterministic"])
def test_first_and_second_tokens_follow_the_target(scheme):
    model = ContextModel(seed=11)
    pairs, from_tree = _emitted_pairs(model, scheme, seed=1 if scheme == "sampled" else 2)
    p_first, p_joint = _joint_p_values(model, pairs)
    assert p_first > 1e-3 and p_joint > 1e-3, (p_first, p_joint)
    assert from_tree > 0.25   # the second token came from the tree itself in a good share of the rounds


def test_a_verifier_that_skips_the_residual_update_between_siblings_fails():
    model = ContextModel(seed=11)
    pairs, _ = _emitted_pairs(model, "sampled", seed=1, step=_skip_residual_update)
    p_first, p_joint = _joint_p_values(model, pairs)
    assert p_first < 1e-6 and p_joint < 1e-6, (p_first, p_joint)


# ---- edge cases ----------------------------------------------------------------------------------

def _fixed_round(scheme, parents, tokens, q_rows, p_rows, params=(94548, 0, 65536, 0)):
    """A TreeRound from float logits per node (bf16-encoded), uniforms filled in later."""
    n = len(parents)
    return dict(scheme=scheme, parents=np.array(parents), tokens=np.array(tokens),
                target_logits=numerics.encode_bf16(np.array(q_rows, float)),
                draft_logits=numerics.encode_bf16(np.array(p_rows, float)),
                draft_params=params, target_params=params, draft_uniforms=np.zeros(n, np.uint64),
                accept_uniforms=np.zeros(n, np.uint64), sample_uniforms=np.zeros(n, np.uint64))


def test_a_single_node_tree_emits_the_bonus_sample_or_the_argmax():
    rng = np.random.default_rng(0)
    row = rng.standard_normal(16) * 2
    q, zq = numerics.logit_weights(numerics.encode_bf16(row), (94548, 0, 65536, 0), 16)
    for scheme in ("sampled", "deterministic", "greedy"):
        for r in rng.integers(0, 1 << U, size=20):
            d = _fixed_round(scheme, [-1], [0], [row], [row])
            d["sample_uniforms"] = np.array([r], np.uint64)
            res = verify_tree_round(TreeRound(**d), 16, U)
            want = int(np.argmax(row)) if scheme == "greedy" else numerics.weighted_bonus_sample(q, zq, int(r), U)
            assert (res.node, res.path, res.token) == (0, (), want)


def test_every_child_rejected_emits_the_target_sample():
    """Children drawn from a draft row whose support is disjoint from the target's: every test
    fails, the residual max(0, Q a - P b) is Q scaled, so the token is exactly the bonus sample
    of Q with the node's uniform (the decisions are scale invariant, docs/TREES.md)."""
    V = 8
    q_row = np.where(np.arange(V) < 4, np.linspace(0, 2, V), -np.inf)       # target lives on 0..3
    p_row = np.where(np.arange(V) >= 4, np.linspace(2, 0, V), -np.inf)      # draft lives on 4..7
    q, zq = numerics.logit_weights(numerics.encode_bf16(q_row), (94548, 0, 65536, 0), 16)
    p, zp = numerics.logit_weights(numerics.encode_bf16(p_row), (94548, 0, 65536, 0), 16)
    rng = np.random.default_rng(4)
    for _ in range(50):
        d_u = rng.integers(0, 1 << U, size=4, dtype=np.uint64)
        kids = [numerics.draft_sample(p, zp, int(x), U) for x in d_u[1:]]
        d = _fixed_round("sampled", [-1, 0, 0, 0], [0] + kids, [q_row] * 4, [p_row] * 4)
        d.update(draft_uniforms=d_u, accept_uniforms=rng.integers(0, 1 << U, size=4, dtype=np.uint64),
                 sample_uniforms=rng.integers(0, 1 << U, size=4, dtype=np.uint64))
        res = verify_tree_round(TreeRound(**d), 16, U)
        assert res.accepted == 0 and res.token < 4
        assert res.token == numerics.weighted_bonus_sample(q, zq, int(d["sample_uniforms"][0]), U)


def test_full_acceptance_runs_down_the_deepest_path():
    """Draft rows equal to the target rows: every first child is accepted (R < 2^U), so the walk
    follows first children to the deepest leaf and emits its bonus sample."""
    trace = synthetic_tree_trace(TreeSyntheticSpec(vocab_size=64, rounds=6, shape=(3, 2, 2), seed=2))
    for rnd in trace.rounds():
        d = {k: getattr(rnd, k) for k in TreeRound.__dataclass_fields__}
        d["target_logits"] = rnd.draft_logits   # Q = P: the draft is the target
        res = verify_tree_round(TreeRound(**d), 16, U)
        kids = children_lists(rnd.parents)
        want, node = [], 0
        while kids[node]:
            node = kids[node][0]
            want.append(node)
        assert res.path == tuple(want) and res.accepted == 3 == int(node_depths(rnd.parents).max())
        q, zq = numerics.logit_weights(rnd.draft_logits[node], rnd.target_params, 16)
        assert res.token == numerics.weighted_bonus_sample(q, zq, int(rnd.sample_uniforms[node]), U)


def test_duplicate_sampled_children_see_the_updated_residual():
    """Three children a, a, b: after the first a is rejected, the residual at a is
    max(0, Q[a] ZP - P[a] ZQ), which is 0 when the draft over-proposes a, so the second a is
    rejected whatever its uniform; a verifier testing it against Q again would accept it."""
    q = np.array([10, 50, 40], np.int64)   # q(a = 0) = 0.1
    p = np.array([60, 0, 40], np.int64)    # p(a) = 0.6 > q(a)
    zq, zp = int(q.sum()), int(p.sum())
    seen_second = 0
    for r1 in np.linspace(0, (1 << U) - 1, 40).astype(np.int64):
        for r2 in (0, (1 << U) // 3):
            i, tok = sampled_children_step(q, zq, p, zp, [0, 0, 2], [int(r1), int(r2), 0], 0, U)
            assert i != 1, "the duplicate of a rejected over-proposed token can never be accepted"
            wrong_i, _ = _skip_residual_update(q, zq, p, zp, [0, 0, 2], [int(r1), int(r2), 0], 0, U)
            seen_second += wrong_i == 1
    assert seen_second > 0   # the wrong verifier does accept it


def test_deterministic_step_moves_to_the_child_holding_the_draw():
    q = np.array([1, 5, 0, 4], np.int64)
    for r in range(0, 1 << 8):
        y = numerics.weighted_sample(q, 10, r << 24, U)
        i, tok = deterministic_children_step(q, 10, [3, 1], r << 24, U)
        assert tok == y and i == ({3: 0, 1: 1}.get(y))


def test_path_helpers():
    parents = [-1, 0, 0, 1, 1, 2, 3]
    assert children_lists(parents) == [[1, 2], [3, 4], [5], [6], [], [], []]
    assert node_depths(parents).tolist() == [0, 1, 1, 2, 2, 2, 3]
    assert path_to(parents, 6) == (1, 3, 6) and path_to(parents, 0) == ()
    assert tree_node_count((4, 2, 2, 1)) == 45


# ---- the tree trace file ------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["sampled", "deterministic", "greedy"])
def test_synthetic_tree_trace_round_trips_and_verifies(tmp_path, scheme):
    spec = TreeSyntheticSpec(vocab_size=128, rounds=6, shape=(4, 2, 1), scheme=scheme, seed=3)
    tr = synthetic_tree_trace(spec)
    write_trace(tmp_path / "t.npz", tr)
    back = read_trace(tmp_path / "t.npz")
    assert back.num_rounds == 6 and back.nodes_max == 1 + 4 + 8 + 8
    for i, r in enumerate(back.rounds()):
        res = verify_tree_round(r, 16, U)
        assert (res.node, res.token) == (int(back.expected_node[i]), int(back.expected_token[i]))
    assert (back.expected_accepted > 0).any()
    again = synthetic_tree_trace(spec)   # seeded: the same arrays again
    assert np.array_equal(again.node_tokens, tr.node_tokens) and np.array_equal(again.sample_uniforms, tr.sample_uniforms)


def test_sampled_children_may_repeat_deterministic_ones_may_not():
    d = good_v3_arrays()
    tr = trace_from_arrays(d)
    kids = children_lists(tr.round(0).parents)
    # synthetic sampled siblings repeat a token somewhere (peaked rows): the reader accepts it
    tr_s = synthetic_tree_trace(TreeSyntheticSpec(vocab_size=40, rounds=8, shape=(4, 2), seed=0))
    dup = any(len(set(tr_s.node_tokens[r, c] for c in cs)) < len(cs)
              for r in range(8) for cs in children_lists(tr_s.round(r).parents) if cs)
    assert dup and kids


@pytest.mark.parametrize("mutate,expect,name", V3_MUTATIONS, ids=[m[2] for m in V3_MUTATIONS])
def test_bad_tree_arrays_are_refused_with_one_line(mutate, expect, name):
    d = good_v3_arrays()
    mutate(d)
    with pytest.raises(TraceError) as e:
        trace_from_arrays(d)
    assert expect in str(e.value) and "\n" not in str(e.value)


def test_the_writer_refuses_an_invalid_tree_and_writes_nothing(tmp_path):
    tr = trace_from_arrays(good_v3_arrays())
    tr.parents[1, 3] = 5
    with pytest.raises(TraceError, match="parent 5 is not an earlier node"):
        write_trace(tmp_path / "bad.npz", tr)
    assert not (tmp_path / "bad.npz").exists()


# ---- the CLI ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme_args", [["--children", "sampled"], ["--children", "deterministic"],
                                         ["--mode", "greedy"]])
def test_cli_trace_tree_then_verify_fl(tmp_path, capsys, scheme_args):
    out = tmp_path / "tree.npz"
    assert main(["trace", "--synthetic", "--tree", "4,2,2,1", *scheme_args, "--vocab", "96", "--rounds", "5",
                 "--seed", "4", "-o", str(out)]) == 0
    assert "5 rounds of 45 nodes (tree 4,2,2,1" in capsys.readouterr().out
    assert main(["verify", str(out), "--level", "fl", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["mismatches"] == 0 and report["summary"]["rounds"] == 5
    tr = read_trace(out)
    assert [r["accepted"] for r in report["rounds"]] == tr.expected_accepted.tolist()
    # the meta's command regenerates the file's arrays exactly
    regen = tr.meta["regenerate"].split()[3:]
    out2 = tmp_path / "again.npz"
    assert main(["trace", "--synthetic", *regen, "-o", str(out2)]) == 0
    tr2 = read_trace(out2)
    assert np.array_equal(tr2.target_logits, tr.target_logits) and np.array_equal(tr2.node_tokens, tr.node_tokens)


def test_cli_verify_reports_a_tree_mismatch(tmp_path, capsys):
    tr = trace_from_arrays(good_v3_arrays())
    tr.expected_token[0] = (tr.expected_token[0] + 1) % tr.vocab_size
    write_trace(tmp_path / "m.npz", tr)
    assert main(["verify", str(tmp_path / "m.npz")]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out and "1 round(s) differ" in captured.err


def test_padding_past_a_rounds_nodes_is_ignored(tmp_path):
    """Rounds of different sizes in one file: garbage past num_nodes (NaN rows, parents and
    tokens out of range, draft rows of leaves) changes neither validity nor decisions."""
    trace = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=48, rounds=12, gammas=(0, 1, 3, 6), seed=5))
    trees = [tree_from_chain(r) for r in trace.rounds()]
    tr = tree_trace_from_rounds(trees, [verify_tree_round(t, 16, U) for t in trees], vocab_size=48, weight_bits=16,
                                uniform_bits=U)
    d = {k: getattr(tr, k).copy() for k in ("parents", "node_tokens", "target_logits", "draft_logits")}
    pad = np.arange(tr.nodes_max)[None, :] >= tr.num_nodes[:, None]
    assert pad.any()
    d["parents"][pad], d["node_tokens"][pad] = 99, 10_000
    d["target_logits"][pad] = numerics.BF16_QUIET_NAN
    d["draft_logits"][pad] = numerics.BF16_POS_INF
    for r in range(tr.num_rounds):   # the leaf of each chain: no child was drawn from its draft row
        d["draft_logits"][r, int(tr.num_nodes[r]) - 1] = numerics.BF16_POS_INF
    garbage = dataclasses.replace(tr, **d)   # construction validates
    assert [verify_tree_round(r, 16, U).decision() for r in garbage.rounds()] == \
        [verify_tree_round(r, 16, U).decision() for r in tr.rounds()]


def _float_specinfer_step(q, p, child_tokens, accept_u, sample_u):
    """The textbook multi-step speculative sampling in float64, residual renormalised after
    every rejection (rho <- norm(max(0, rho - p))): an independent reference for the integer
    water-level form."""
    rho = q / q.sum()
    pn = p / p.sum() if p is not None else None
    for i, (x, u) in enumerate(zip(child_tokens, accept_u)):
        if u * pn[x] < rho[x]:
            return i, int(x)
        rho = np.maximum(rho - pn, 0.0)
        rho = rho / rho.sum()
    c = np.cumsum(rho)
    return None, min(int(np.searchsorted(c, sample_u * c[-1], side="right")), len(q) - 1)


def test_the_integer_residual_decides_as_the_float_textbook_rule():
    """Sampled trees of shape 4,2 over V = 12 (many repeated siblings): the exact integer walk
    and the float64 textbook walk with u = R / 2^U take the same decisions, bar float margins."""
    model_rng = np.random.default_rng(8)
    V = 12
    rows = {}

    def row(ctx, side):
        if (ctx, side) not in rows:
            rows[ctx, side] = model_rng.integers(0, 3000, size=V).astype(np.int64) + (np.arange(V) == 0) * 5000
        return rows[ctx, side]

    rng = np.random.default_rng(9)
    differ = 0
    n_rounds = 1500
    for _ in range(n_rounds):
        parents, tokens, ctx = [-1], [0], [()]
        level = [0]
        for b in (4, 2):
            nxt = []
            for n in level:
                p = row(ctx[n], "p")
                for dd in rng.integers(0, 1 << U, size=b):
                    parents.append(n)
                    tokens.append(numerics.draft_sample(p, int(p.sum()), int(dd), U))
                    ctx.append(ctx[n] + (tokens[-1],))
                    nxt.append(len(parents) - 1)
            level = nxt
        N = len(parents)
        ra, rs = rng.integers(0, 1 << U, size=N), rng.integers(0, 1 << U, size=N)
        q = [row(c, "q") for c in ctx]
        p = [row(c, "p") for c in ctx]
        exact = verify_tree_weights("sampled", parents, tokens, q, [int(r.sum()) for r in q], p,
                                    [int(r.sum()) for r in p], ra, rs, U)
        ref = walk_tree(parents, tokens, lambda n, cs: _float_specinfer_step(
            q[n].astype(float), p[n].astype(float) if cs else None, [tokens[c] for c in cs],
            [ra[c] / 2.0 ** U for c in cs], rs[n] / 2.0 ** U))
        differ += (exact.node, exact.token) != (ref.node, ref.token)
    assert differ <= n_rounds // 100, differ   # measured: 0 of 1,500


def test_first_token_of_logit_trees_follows_the_filtered_target_with_other_draft_settings():
    """Logit rows end to end (verify_tree_round): root with 3 sampled children, the draft at
    T = 1.4 without filters, the target at T = 0.8 with min-p 0.2; the first emitted token
    follows the target's filtered weights w / Z, and tokens min-p removed are never emitted."""
    V = 6
    rng = np.random.default_rng(21)
    q_bits = numerics.encode_bf16(np.array([2.0, 1.5, 1.0, 0.2, -1.5, -3.0]))
    p_bits = numerics.encode_bf16(np.array([0.5, 1.8, 0.2, 1.0, 0.8, 0.0]))
    child_q = numerics.encode_bf16(rng.standard_normal((V, V)))
    target, draft = numerics.sampling_params(0.8, min_p=0.2), numerics.sampling_params(1.4)
    w, z = numerics.logit_weights(q_bits, target, 16)
    pw, pz = numerics.logit_weights(p_bits, draft, 16)
    assert (w == 0).any() and (pw > 0).all()   # min-p removes tokens the draft proposes
    counts = np.zeros(V, np.int64)
    for _ in range(3000):
        d_u = rng.integers(0, 1 << U, size=4, dtype=np.uint64)
        kids = [numerics.draft_sample(pw, pz, int(x), U) for x in d_u[1:]]
        rnd = TreeRound(scheme="sampled", parents=np.array([-1, 0, 0, 0]), tokens=np.array([0] + kids),
                        target_logits=np.stack([q_bits] + [child_q[x] for x in kids]),
                        draft_logits=np.stack([p_bits] + [np.zeros(V, np.uint16)] * 3), draft_params=draft,
                        target_params=target, draft_uniforms=d_u,
                        accept_uniforms=rng.integers(0, 1 << U, size=4, dtype=np.uint64),
                        sample_uniforms=rng.integers(0, 1 << U, size=4, dtype=np.uint64))
        res = verify_tree_round(rnd, 16, U)
        counts[int(rnd.tokens[res.path[0]]) if res.path else res.token] += 1
    live = w > 0
    assert counts[~live].sum() == 0
    assert _chi2_p(counts[live], w[live] / z) > 1e-3
