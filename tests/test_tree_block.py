"""The tree block (docs/ARCHITECTURE.md "The tree block"): its configuration, stream protocol
and CL schedule, and the shared TREE_CASES at every level (FL == CL == RTL decisions on every
round, CL == RTL cycles on every stall-free round)."""
from __future__ import annotations

import numpy as np
import pytest

from hades.cl.timing import TimingConfig
from hades.cl.tree_timing import tree_round_timing
from hades.config import TreeConfig, VerifierConfig
from hades.errors import ConfigError, TraceError
from hades.fl.tree import verify_tree_round
from hades.fl.verifier import verify_logit_round
from hades.sim.run import SimOptions
from hades.sim.tree import run_tree_rounds
from hades.tree_protocol import (DRAFT_ROW, TARGET_ROW, TreeLayout, header_beat, input_beats, node_beats,
                                 pack_tree_result, round_beats, stream_rows, unpack_tree_result)
from harness.cases import TREE_CASES, TREE_SMALL

HW = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)


# ---- configuration and protocol ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, expect", [
    (dict(nodes_max=1), "nodes_max must be in 2..4096, got 1"),
    (dict(nodes_max=5000), "nodes_max must be in 2..4096, got 5000"),
    (dict(children_max=0), "children_max must be in 1..64, got 0"),
    (dict(nodes_max=4, children_max=4), "children_max=4 needs nodes_max >= 5"),
    (dict(hw=(4, 64)), "TreeConfig.hw must be a VerifierConfig"),
])
def test_tree_config_refuses_bad_sizes_up_front(kwargs, expect):
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        TreeConfig(**{"hw": HW, **kwargs})


def test_widths_follow_the_tree_spec_at_k_max():
    """docs/TREES.md section 8 at the defaults (z = 32, W = 16, U = 32): k = 1 is the chain's
    widths, k = 4 gives r lanes 144, S 160, last accept 176, R * S 192 bits."""
    one = TreeLayout(TreeConfig(hw=VerifierConfig(), nodes_max=8, children_max=1))
    assert (one.residual_bits, one.residual_sum_bits, one.accept_bits, one.threshold_bits) == (48, 64, 80, 96)
    four = TreeLayout(TreeConfig(hw=VerifierConfig(), nodes_max=8, children_max=4))
    assert (four.residual_bits, four.residual_sum_bits, four.accept_bits, four.threshold_bits) == (144, 160, 176, 192)
    assert four.a_bits == 128 and four.b_bits == 130


def test_stream_order_puts_each_internal_nodes_draft_row_before_its_target_row():
    parents = [-1, 0, 0, 1]
    assert stream_rows("sampled", parents) == [(DRAFT_ROW, 0), (TARGET_ROW, 0), (DRAFT_ROW, 1), (TARGET_ROW, 1),
                                               (TARGET_ROW, 2), (TARGET_ROW, 3)]
    assert stream_rows("deterministic", parents) == [(TARGET_ROW, n) for n in range(4)]


def test_round_beats_carry_the_header_descriptors_and_rows():
    rnd = TREE_CASES[0].build()[0]
    lay = TreeLayout(TREE_SMALL)
    beats = round_beats(TREE_SMALL, rnd)
    assert len(beats) == input_beats(TREE_SMALL, rnd)
    h = header_beat(TREE_SMALL, rnd)
    field = {k: (h >> lsb) & ((1 << w) - 1) for k, (lsb, w) in lay.fields.items()}
    assert (field["scheme"], field["nodes"], field["vocab"]) == (2, rnd.num_nodes, rnd.vocab_size)
    for n, beat in enumerate(node_beats(TREE_SMALL, rnd)):
        f = {k: (beat >> lsb) & ((1 << w) - 1) for k, (lsb, w) in lay.node_fields.items()}
        assert f["parent"] == max(0, int(rnd.parents[n])) and f["sample_uniform"] == int(rnd.sample_uniforms[n])
        assert f["token"] == (int(rnd.tokens[n]) if n else 0)
    words = -(-rnd.vocab_size // 4)
    first = beats[1 + rnd.num_nodes: 1 + rnd.num_nodes + words]   # the root's draft row comes first
    lanes = [(b >> (16 * i)) & 0xFFFF for b in first for i in range(4)][: rnd.vocab_size]
    assert lanes == [int(x) for x in rnd.draft_logits[0]]


def test_result_message_round_trips_and_checks_the_depth():
    parents = [-1, 0, 1, 1]
    from hades.round import TreeResult
    res = TreeResult(3, (1, 3), 17, 1234, 56)
    assert unpack_tree_result(TREE_SMALL, pack_tree_result(TREE_SMALL, res), parents) == res
    bad = pack_tree_result(TREE_SMALL, TreeResult(3, (1,), 17, 1, 1))   # accepted 1 for a depth-2 node
    with pytest.raises(TraceError, match="depth 2"):
        unpack_tree_result(TREE_SMALL, bad, parents)


def test_rounds_the_block_cannot_carry_are_refused():
    rnd = TREE_CASES[0].build()[0]   # 10 nodes, 3 children at the root
    with pytest.raises(TraceError, match="10 nodes exceed the tree block's nodes_max=8"):
        round_beats(TreeConfig(hw=HW, nodes_max=8, children_max=3), rnd)
    with pytest.raises(TraceError, match="node 0: 3 children exceed the tree block's children_max=2"):
        round_beats(TreeConfig(hw=HW, nodes_max=16, children_max=2), rnd)
    with pytest.raises(TraceError, match="vocabulary 50 exceeds vocab_max=32"):
        round_beats(TreeConfig(hw=VerifierConfig(lanes=4, vocab_max=32), nodes_max=16, children_max=3), rnd)


# ---- the CL schedule, pinned by hand ----------------------------------------------------------

def _names(t):
    return [(j.name, j.node, j.start, j.finish) for j in t.jobs]


def test_schedule_of_a_node_whose_children_are_all_rejected():
    """N = 3 (a root with two leaves), V = 8, L = 4: two words per row; rows D0 T0 T1 T2 end at
    cycles 5, 7, 9, 11. DZ_0 6..9, TZ_0 10..13, RS 14..17 and 18..21, RX of token 5 (word 1,
    two reads) 22..25; the result loads at 26 (cycles 28, latency 16)."""
    t = tree_round_timing(TREE_SMALL, "sampled", [-1, 0, 0], [0, 1, 2], 8, (), 5)
    assert _names(t) == [("DZ", 0, 6, 9), ("TZ", 0, 10, 13), ("RS", 0, 14, 17), ("RS", 0, 18, 21), ("RX", 0, 22, 25)]
    assert (t.cycles, t.latency, t.input_cycles, t.residual_passes, t.rows) == (28, 16, 12, 2, 4)
    assert t.cycles == t.input_cycles + t.latency


def test_schedule_walks_down_as_the_rows_arrive():
    """Accepting the second child (node 2) after one rejection: the walk waits for node 2's
    target row (a leaf: TZ, BX), which arrives after node 1's."""
    t = tree_round_timing(TREE_SMALL, "sampled", [-1, 0, 0], [0, 1, 2], 8, (2,), 0)
    assert _names(t) == [("DZ", 0, 6, 9), ("TZ", 0, 10, 13), ("RS", 0, 14, 17), ("TZ", 2, 18, 21),
                         ("BX", 2, 22, 24)]
    det = tree_round_timing(TREE_SMALL, "deterministic", [-1, 0, 0], [0, 1, 6], 8, (2,), 3)
    # rows T0 T1 T2 end at 5, 7, 9; TX_0 samples y = 6 (word 1: two reads)
    assert _names(det) == [("TZ", 0, 6, 9), ("TX", 0, 10, 13), ("TZ", 2, 14, 17), ("TX", 2, 18, 20)]
    greedy = tree_round_timing(TREE_SMALL, "greedy", [-1, 0, 0], [0, 1, 6], 8, (2,), 3)
    assert greedy.jobs == () and (greedy.cycles, greedy.latency) == (9 + 3, 2)   # loads at a_last + 1 = 10


def test_filters_add_the_logit_blocks_select_passes_before_each_z_job():
    base = tree_round_timing(TREE_SMALL, "sampled", [-1, 0], [0, 1], 40, (), 7)
    flt = tree_round_timing(TREE_SMALL, "sampled", [-1, 0], [0, 1], 40, (), 7, filters=(True, False, True, True))
    names = [j.name for j in flt.jobs]
    assert names[:5] == ["FK"] * 4 + ["DZ"] and names[5:14] == ["FK"] * 4 + ["FP"] * 4 + ["TZ"]
    lay = TreeLayout(TREE_SMALL).logit
    assert flt.filter_cycles == lay.filter_cycles(10, True, False) + lay.filter_cycles(10, True, True)
    assert flt.cycles > base.cycles


def test_a_smaller_buffer_sends_late_rows_off_chip():
    rnd = TREE_CASES[0].build()[0]
    res = verify_tree_round(rnd, 16, 32)
    args = (TREE_SMALL, rnd.scheme, rnd.parents, rnd.tokens, rnd.vocab_size, res.path, res.token)
    on = tree_round_timing(*args)
    words = -(-rnd.vocab_size // 4)
    off = tree_round_timing(*args, timing=TimingConfig(hw=TREE_SMALL.hw, sram_words=3 * words))
    assert on.offchip_rows == 0 and off.offchip_rows == on.rows - 3
    assert off.cycles > on.cycles and off.offchip_traffic_bytes > 0 == on.offchip_traffic_bytes
    with pytest.raises(ConfigError, match="differs from the tree block's"):
        tree_round_timing(*args, timing=TimingConfig(hw=VerifierConfig(lanes=8, vocab_max=64)))


def test_bad_walks_are_refused():
    with pytest.raises(TraceError, match="not a walk down from the root"):
        tree_round_timing(TREE_SMALL, "sampled", [-1, 0, 0], [0, 1, 2], 8, (1, 2), 0)
    with pytest.raises(TraceError, match="token 8 outside 0..7"):
        tree_round_timing(TREE_SMALL, "greedy", [-1], [0], 8, (), 8)
    with pytest.raises(TraceError, match="unknown tree scheme"):
        tree_round_timing(TREE_SMALL, "beam", [-1], [0], 8, (), 0)


# ---- the shared cases at every level ----------------------------------------------------------

@pytest.mark.parametrize("case", TREE_CASES, ids=lambda c: c.name)
def test_tree_cases(level, case, sim_options):
    rounds = case.build()
    opts = SimOptions(backend=sim_options.backend, vcd=sim_options.vcd, src_stall=case.src_stall,
                      sink_stall=case.sink_stall, seed=3)
    got = run_tree_rounds(level, case.tree, rounds, opts)
    W, U = case.tree.hw.prob_bits, case.tree.hw.uniform_bits
    assert len(got) == len(rounds)
    for i, (rnd, res) in enumerate(zip(rounds, got)):
        want = verify_tree_round(rnd, W, U)
        assert (res.node, res.path, res.token) == (want.node, want.path, want.token), f"round {i}"
    if case.chain is not None:   # a chain verified as a tree decides as the chain verifier
        chain = [verify_logit_round(r, W, U).decision() for r in case.chain()]
        assert [r.decision() for r in got] == chain
    if level == "fl":
        assert all(r.cycles is None for r in got)
        return
    cl = run_tree_rounds("cl", case.tree, rounds)
    if case.stall_free:
        assert [(r.cycles, r.latency) for r in got] == [(r.cycles, r.latency) for r in cl]
    assert all(r.cycles == r.latency + input_beats(case.tree, rnd) for r, rnd in zip(cl, rounds))


def test_cli_verifies_a_synthetic_tree_trace(level, sim_options, tmp_path, capsys):
    """`hades verify TRACE --level fl|cl|rtl` on a synthetic tree trace: no mismatch, and the
    cycles are the CL model's (the RTL's too: the same build as TREE_CASES)."""
    import json

    from hades.cli.app import main
    path = tmp_path / "t.npz"
    assert main(["trace", "--synthetic", "--tree", "3,2", "--children", "deterministic", "--vocab", "50",
                 "--rounds", "4", "--seed", "5", "-o", str(path)]) == 0
    capsys.readouterr()
    assert main(["verify", str(path), "--level", level, "--lanes", "4", "--vocab-max", "64", "--nodes-max", "16",
                 "--children-max", "3", "--rtl-backend", sim_options.backend, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["mismatches"] == 0 and out["config"]["children_max"] == 3
    if level == "fl":
        assert "cycles" not in out["rounds"][0]
        return
    from hades.traces.format import read_trace
    cl = run_tree_rounds("cl", TREE_SMALL, read_trace(path).rounds())
    assert [r["cycles"] for r in out["rounds"]] == [r.cycles for r in cl]


def test_the_rtl_needs_one_lane_group():
    from hades.rtl.tree_verifier import require_tree_rtl
    with pytest.raises(ConfigError, match="1024 bits in the tree block's input beat"):
        require_tree_rtl(TreeConfig(hw=VerifierConfig(lanes=64, vocab_max=4096), nodes_max=4, children_max=2))


# ---- exactness through every level: chi-square of the emitted first and second tokens ---------

V_STAT = 5
STAT_ROUNDS = 6000
STAT_PARAMS = (65536, 0, 65536, 0)   # T = 1, no filters
STAT_U = 32


class LogitContexts:
    """bf16 target and draft logit rows per context (the tokens so far in the round) over V = 5:
    the ground truth the trees' rows come from. The draft over-proposes token 0 twelvefold at
    the root, so a verifier that skips the residual update shows (tests/test_tree.py)."""

    def __init__(self, seed: int):
        from hades import numerics
        rng = np.random.default_rng(seed)
        self.rows: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        for ctx in [()] + [(y,) for y in range(V_STAT)] + [(y, z) for y in range(V_STAT) for z in range(V_STAT)]:
            q = rng.standard_normal(V_STAT) * 0.6
            p = rng.standard_normal(V_STAT) * 0.6
            if ctx == ():
                p[0] += np.log(12.0)
            self.rows[ctx] = (numerics.encode_bf16(q), numerics.encode_bf16(p))
        self.numerics = numerics
        self._weights = {(ctx, side): numerics.logit_weights(rows[side], STAT_PARAMS, 16)
                         for ctx, rows in self.rows.items() for side in (0, 1)}

    def weights(self, ctx, side: int):
        return self._weights[(ctx, side)]

    def probs(self, ctx) -> np.ndarray:
        w, z = self.weights(ctx, 0)
        return w / z

    def tree_round(self, scheme: str, rng):
        """A tree of shape 3,2 drawn from the contexts' draft rows (sampled: i.i.d. draft samples;
        deterministic: the top-ranked draft tokens)."""
        from hades.round import TreeRound
        nm = self.numerics
        parents, tokens, ctx, d_u = [-1], [0], [()], [0]
        level = [0]
        for b in (3, 2):
            nxt = []
            for n in level:
                p, zp = self.weights(ctx[n], 1)
                if scheme == "sampled":
                    draws = rng.integers(0, 1 << STAT_U, size=b, dtype=np.uint64)
                    kids = [(nm.draft_sample(p, zp, int(d), STAT_U), int(d)) for d in draws]
                else:
                    kids = [(int(x), 0) for x in nm.rank_order(p)[:b]]
                for x, d in kids:
                    parents.append(n)
                    tokens.append(x)
                    ctx.append(ctx[n] + (x,))
                    d_u.append(d)
                    nxt.append(len(parents) - 1)
            level = nxt
        N = len(parents)
        zero_row = np.zeros(V_STAT, np.uint16)
        return TreeRound(scheme=scheme, parents=np.array(parents), tokens=np.array(tokens),
                         target_logits=np.stack([self.rows[c][0] for c in ctx]),
                         draft_logits=np.stack([self.rows[c][1] if len(c) < 2 else zero_row for c in ctx]),
                         draft_params=STAT_PARAMS, target_params=STAT_PARAMS, draft_uniforms=np.array(d_u, np.uint64),
                         accept_uniforms=rng.integers(0, 1 << STAT_U, size=N, dtype=np.uint64),
                         sample_uniforms=rng.integers(0, 1 << STAT_U, size=N, dtype=np.uint64))


def _chi2_p(counts, probs) -> float:
    from harness.stats import chi2_sf
    expected = probs * counts.sum()
    assert expected.min() >= 5, "cells too small for the chi-square approximation"
    return chi2_sf(float(((counts - expected) ** 2 / expected).sum()), probs.size - 1)


@pytest.mark.slow   # 30-40 s per scheme at FL and CL, 85-125 s at RTL (Verilator) on the shared machine
@pytest.mark.parametrize("scheme", ["sampled", "deterministic"])
def test_emitted_tokens_follow_the_target_at_every_level(level, sim_options, scheme):
    """6,000 trees of shape 3,2 through the level: the first emitted token follows the root's
    target row, the pair (first, second) follows Q()(y) Q(y)(z) (chi-square p > 1e-3); a round
    that emits one token takes its second from a fresh sample of Q(first). CL and RTL must
    also agree with the golden walk on every round."""
    model = LogitContexts(seed=5)
    rng = np.random.default_rng(17 if scheme == "sampled" else 18)
    rounds = [model.tree_round(scheme, rng) for _ in range(STAT_ROUNDS)]
    got = run_tree_rounds(level, TREE_SMALL, rounds, SimOptions(backend=sim_options.backend))
    pairs = np.empty((STAT_ROUNDS, 2), np.int64)
    for i, (rnd, res) in enumerate(zip(rounds, got)):
        if level != "fl" and i % 50 == 0:
            want = verify_tree_round(rnd, 16, STAT_U)
            assert (res.node, res.token) == (want.node, want.token)
        seq = [int(rnd.tokens[n]) for n in res.path] + [res.token]
        if len(seq) == 1:
            w, z = model.weights((seq[0],), 0)
            seq.append(model.numerics.weighted_sample(w, z, int(rng.integers(1 << STAT_U)), STAT_U))
        pairs[i] = seq[:2]
    first = np.bincount(pairs[:, 0], minlength=V_STAT)
    joint = np.zeros((V_STAT, V_STAT))
    np.add.at(joint, (pairs[:, 0], pairs[:, 1]), 1)
    q0 = model.probs(())
    want_joint = q0[:, None] * np.stack([model.probs((y,)) for y in range(V_STAT)])
    p_first, p_joint = _chi2_p(first, q0), _chi2_p(joint.reshape(-1), want_joint.reshape(-1))
    assert p_first > 1e-3 and p_joint > 1e-3, (p_first, p_joint)


def test_the_tree_blocks_verilog_lints_clean(tmp_path, capsys):
    """`hades emit-verilog --tree --lint` on the TREE_CASES configuration: verilator
    --lint-only -Wall with the documented waivers only."""
    import shutil
    if shutil.which("verilator") is None:
        pytest.skip("verilator is not installed (run scripts/setup.sh)")
    from hades.cli.app import main
    assert main(["emit-verilog", "--tree", "--lint", "--out", str(tmp_path), "--lanes", "4", "--vocab-max", "64",
                 "--nodes-max", "16", "--children-max", "3"]) == 0
    out = capsys.readouterr().out
    assert "TreeVerifier_L4_V64_N16_K3_W16_U32" in out and "lint clean" in out
