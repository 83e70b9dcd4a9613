"""The shared test-case tables: every entry runs at every level (FL, CL, RTL); CASES for the
v1 block (probability rows), LOGIT_CASES for the logit block (v2 rounds: bf16 logit rows),
TREE_CASES for the tree block (tree rounds on bf16 logit rows).

A case names a hardware configuration, a trace recipe and the stream conditions. Cases
with stalls compare results only; stall-free cases also pin CL == RTL cycle counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hades import numerics
from hades.config import TreeConfig, VerifierConfig
from hades.fl.tree import tree_from_chain
from hades.round import TreeRound
from hades.traces.synthetic import LogitSyntheticSpec, SyntheticSpec, synthetic_logit_trace
from hades.traces.synthetic_tree import TreeSyntheticSpec, synthetic_tree_trace


@dataclass(frozen=True)
class Case:
    name: str
    cfg: VerifierConfig
    spec: SyntheticSpec
    src_stall: float = 0.0
    sink_stall: float = 0.0

    @property
    def stall_free(self) -> bool:
        return self.src_stall == 0.0


SMALL = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)
SMALL_BIG_SRAM = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=SMALL.buffer_words + 37)
EIGHT_LANES = VerifierConfig(lanes=8, vocab_max=128, gamma_max=8, prob_bits=12, uniform_bits=24)
FULL_VOCAB = VerifierConfig(lanes=32, vocab_max=65536, gamma_max=4)

CASES = [
    Case("small_stochastic", SMALL, SyntheticSpec(vocab_size=50, rounds=20, gammas=(0, 1, 2, 3, 4), seed=1)),
    Case("small_greedy", SMALL, SyntheticSpec(vocab_size=50, rounds=12, gammas=(4, 1, 0, 3), mode="greedy", seed=2)),
    Case("small_exact_rows", SMALL, SyntheticSpec(vocab_size=64, rounds=10, gammas=(2, 4), seed=3)),
    Case("small_big_sram", SMALL_BIG_SRAM, SyntheticSpec(vocab_size=61, rounds=10, gammas=(4, 2), seed=4)),
    Case("small_stalls", SMALL, SyntheticSpec(vocab_size=33, rounds=12, gammas=(3, 0, 4), seed=5),
         src_stall=0.3, sink_stall=0.5),
    Case("sink_backpressure_only", SMALL, SyntheticSpec(vocab_size=47, rounds=10, gammas=(4, 0, 2), seed=10),
         sink_stall=0.6),   # the result waits, the round's counters do not: cycles stay pinned
    Case("greedy_stalls", SMALL, SyntheticSpec(vocab_size=40, rounds=8, gammas=(2, 4), mode="greedy", seed=6),
         src_stall=0.2, sink_stall=0.3),
    Case("eight_lanes_w12", EIGHT_LANES, SyntheticSpec(vocab_size=100, rounds=12, gammas=(8, 5, 1), seed=7,
                                                         prob_bits=12, uniform_bits=24)),
    Case("full_vocab_gpt2", FULL_VOCAB, SyntheticSpec(vocab_size=50257, rounds=3, gammas=(4, 1, 3), seed=8)),
    Case("full_vocab_greedy", FULL_VOCAB, SyntheticSpec(vocab_size=50272, rounds=2, gammas=(2, 4), mode="greedy", seed=9)),
]


# ---- the logit block (v2 rounds): every case at every level through run_logit_rounds ----------

@dataclass(frozen=True)
class LogitCase:
    name: str
    cfg: VerifierConfig
    spec: LogitSyntheticSpec
    src_stall: float = 0.0
    sink_stall: float = 0.0

    @property
    def stall_free(self) -> bool:
        return self.src_stall == 0.0


LOGIT_FULL_VOCAB = VerifierConfig(lanes=16, vocab_max=65536, gamma_max=4)
# wide datapaths (issue 15): 2 and 4 lane groups of 32 lanes (hades/rtl/beats.py), built for a
# real vocabulary so that the same build runs small and full-vocabulary rows
LOGIT_WIDE_64 = VerifierConfig(lanes=64, vocab_max=65536, gamma_max=4)
LOGIT_WIDE_128 = VerifierConfig(lanes=128, vocab_max=65536, gamma_max=4)
WIDE_TEMPERATURES = (0.5, 1.5)

LOGIT_CASES = [
    LogitCase("logit_small_mixed", SMALL, LogitSyntheticSpec(vocab_size=50, rounds=24, gammas=(0, 1, 2, 3, 4),
                                                             seed=1)),
    LogitCase("logit_small_stochastic_model_drafts", SMALL,
              LogitSyntheticSpec(vocab_size=64, rounds=16, gammas=(4, 2, 3, 1), seed=2, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, min_ps=(0.0, 0.05, 0.2))),
    LogitCase("logit_small_greedy", SMALL, LogitSyntheticSpec(vocab_size=45, rounds=12, gammas=(4, 1, 0, 3), seed=3,
                                                              greedy_share=1.0, onehot_share=0.5)),
    LogitCase("logit_small_onehot", SMALL, LogitSyntheticSpec(vocab_size=37, rounds=12, gammas=(2, 4, 0), seed=4,
                                                              greedy_share=0.3, onehot_share=1.0)),
    LogitCase("logit_small_ties", SMALL, LogitSyntheticSpec(vocab_size=48, rounds=16, gammas=(3, 4, 1), seed=5,
                                                            logit_step=2.0, min_ps=(0.0, 0.1))),
    LogitCase("logit_small_stalls", SMALL, LogitSyntheticSpec(vocab_size=33, rounds=12, gammas=(3, 0, 4), seed=6),
              src_stall=0.3, sink_stall=0.5),
    LogitCase("logit_sink_backpressure_only", SMALL,
              LogitSyntheticSpec(vocab_size=47, rounds=10, gammas=(4, 0, 2), seed=7, greedy_share=0.2),
              sink_stall=0.6),   # messages wait, the counters do not: cycles stay pinned
    LogitCase("logit_eight_lanes_w12", VerifierConfig(lanes=8, vocab_max=128, gamma_max=8, prob_bits=12,
                                                      uniform_bits=24),
              LogitSyntheticSpec(vocab_size=100, rounds=10, gammas=(8, 5, 1), seed=8, weight_bits=12,
                                 uniform_bits=24, temperature_range=WIDE_TEMPERATURES)),
    LogitCase("logit_full_vocab_smollm", LOGIT_FULL_VOCAB,
              LogitSyntheticSpec(vocab_size=49152, rounds=3, gammas=(4, 0, 2), seed=9, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, min_ps=(0.05,))),
    LogitCase("logit_full_vocab_gpt2_mixed", LOGIT_FULL_VOCAB,
              LogitSyntheticSpec(vocab_size=50257, rounds=3, gammas=(3, 1, 2), seed=19, greedy_share=0.34,
                                 onehot_share=0.34)),
    # top-k / top-p (issue 14): many ties (logit_step), top_k 1 and >= V, top_p of one unit and 1,
    # the draft's own filters, every round its own settings, greedy rounds with filters set
    LogitCase("logit_small_filters_ties", SMALL,
              LogitSyntheticSpec(vocab_size=48, rounds=32, gammas=(3, 4, 1, 0, 2), seed=21, greedy_share=0.2,
                                 onehot_share=0.3, logit_step=2.0, min_ps=(0.0, 0.1),
                                 top_ks=(0, 1, 3, 5, 48, 100), top_ps=(1.0, 0.5, 0.9, 1 / 65536),
                                 draft_top_ks=(0, 2, 7), draft_top_ps=(1.0, 0.8))),
    LogitCase("logit_small_filters_model_drafts", SMALL,
              LogitSyntheticSpec(vocab_size=64, rounds=16, gammas=(4, 2, 3), seed=22, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, logit_step=0.5, temperature_range=WIDE_TEMPERATURES,
                                 top_ks=(1, 4, 64, 0), top_ps=(0.3, 0.95, 1.0), draft_top_ks=(10, 0),
                                 draft_top_ps=(0.7, 1 / 65536))),
    LogitCase("logit_small_filters_greedy_and_stalls", SMALL,
              LogitSyntheticSpec(vocab_size=40, rounds=12, gammas=(2, 4, 0), seed=23, greedy_share=0.5,
                                 onehot_share=0.5, top_ks=(1, 3), top_ps=(0.5, 0.8)),
              src_stall=0.2, sink_stall=0.3),
    LogitCase("logit_eight_lanes_w12_filters", VerifierConfig(lanes=8, vocab_max=128, gamma_max=8, prob_bits=12,
                                                              uniform_bits=24),
              LogitSyntheticSpec(vocab_size=128, rounds=8, gammas=(8, 3, 5), seed=24, weight_bits=12,
                                 uniform_bits=24, logit_step=1.0, top_ks=(2, 20, 0), top_ps=(0.6, 0.99))),
    LogitCase("logit_full_vocab_filters", LOGIT_FULL_VOCAB,
              LogitSyntheticSpec(vocab_size=49152, rounds=2, gammas=(1, 2), seed=25, greedy_share=0.0,
                                 onehot_share=1.0, top_ks=(50,), top_ps=(0.9,), min_ps=(0.0,))),
    # wide datapaths: V well past the lanes (tens of beats per row, a last beat that ends
    # inside a lane group other than the last), one full-vocabulary case per width
    LogitCase("logit_wide64_mixed", LOGIT_WIDE_64,
              LogitSyntheticSpec(vocab_size=3001, rounds=12, gammas=(4, 1, 0, 2, 3), seed=21, mask_share=0.4,
                                 min_ps=(0.0, 0.05))),
    LogitCase("logit_wide64_stalls", LOGIT_WIDE_64,
              LogitSyntheticSpec(vocab_size=1100, rounds=6, gammas=(3, 0, 4), seed=22, logit_step=2.0),
              src_stall=0.2, sink_stall=0.3),
    LogitCase("logit_wide128_model_drafts", LOGIT_WIDE_128,
              LogitSyntheticSpec(vocab_size=5000, rounds=8, gammas=(4, 2, 3, 1), seed=23, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, min_ps=(0.0, 0.05, 0.2))),
    LogitCase("logit_wide128_full_vocab", LOGIT_WIDE_128,
              LogitSyntheticSpec(vocab_size=49152, rounds=3, gammas=(4, 2, 3), seed=24, greedy_share=0.34,
                                 onehot_share=0.34)),
]


# ---- the tree block (v3 rounds): every case at every level through run_tree_rounds -----------
# One tree configuration for every case, so that the RTL is one Verilator build: 4 lanes,
# V_max 64 (16 words per row), up to 16 nodes of up to 3 children.

TREE_SMALL = TreeConfig(hw=VerifierConfig(lanes=4, vocab_max=64, gamma_max=4), nodes_max=16, children_max=3)
TREE_PARAMS = (94548, 0, 65536, 0)   # k for T = 0.7, no top-k, top-p or min-p


@dataclass(frozen=True)
class TreeCase:
    name: str
    tree: TreeConfig
    build: Callable[[], list]          # -> list[TreeRound]
    src_stall: float = 0.0
    sink_stall: float = 0.0
    chain: Callable[[], list] | None = None   # chains as trees: the LogitRounds the trees came from

    @property
    def stall_free(self) -> bool:
        return self.src_stall == 0.0


def _synthetic(*specs: TreeSyntheticSpec) -> Callable[[], list]:
    """The rounds of several synthetic specs back to back (mixed shapes, schemes and depths)."""
    def build():
        return [r for spec in specs for r in synthetic_tree_trace(spec).rounds()]
    return build


def _replace(rnd: TreeRound, **changes) -> TreeRound:
    d = {k: getattr(rnd, k) for k in TreeRound.__dataclass_fields__}
    d.update(changes)
    return TreeRound(**d)


def _full_acceptance() -> list:
    """Draft rows equal to the target rows: every first child passes, the walk goes to the
    deepest leaf (shape 2,2,2: depth 3, 15 nodes)."""
    spec = TreeSyntheticSpec(vocab_size=60, rounds=4, shape=(2, 2, 2), seed=31)
    return [_replace(r, target_logits=r.draft_logits) for r in synthetic_tree_trace(spec).rounds()]


def _peaked_children(seed: int, V: int, k: int, rounds: int, disjoint: bool) -> list:
    """One node with k sampled children (leaves). disjoint: the draft lives on the upper half
    of the ids, the target on the lower half, so every child is rejected; else the draft
    over-proposes token 3 fortyfold, so the children repeat it (duplicates) and see the
    updated residual."""
    rng = np.random.default_rng(seed)
    out = []
    ids = np.arange(V)
    for _ in range(rounds):
        q_row = rng.standard_normal(V) * 1.5
        p_row = rng.standard_normal(V) * 1.5
        if disjoint:
            q_row = np.where(ids < V // 2, q_row, -np.inf)
            p_row = np.where(ids >= V // 2, p_row, -np.inf)
        else:
            p_row[3] += np.log(40.0)
        p, zp = numerics.logit_weights(numerics.encode_bf16(p_row), TREE_PARAMS, 16)
        d_u = rng.integers(0, 1 << 32, size=k + 1, dtype=np.uint64)
        d_u[0] = 0
        kids = [numerics.draft_sample(p, zp, int(d), 32) for d in d_u[1:]]
        leaves = numerics.encode_bf16(rng.standard_normal((k, V)))
        out.append(TreeRound(scheme="sampled", parents=np.array([-1] + [0] * k), tokens=np.array([0] + kids),
                             target_logits=np.concatenate([numerics.encode_bf16(q_row)[None], leaves]),
                             draft_logits=np.concatenate([numerics.encode_bf16(p_row)[None], leaves]),
                             draft_params=TREE_PARAMS, target_params=TREE_PARAMS, draft_uniforms=d_u,
                             accept_uniforms=rng.integers(0, 1 << 32, size=k + 1, dtype=np.uint64),
                             sample_uniforms=rng.integers(0, 1 << 32, size=k + 1, dtype=np.uint64)))
    return out


def _random_shapes(seed: int, rounds: int, scheme: str, V: int = 30) -> list:
    """Trees of random shape: every node's parent a random earlier node (so siblings are not
    numbered together, as in a depth-first numbering), 1..16 nodes, at most 3 children each;
    sampled children are draft samples of their parent's row, deterministic ones its
    top-ranked distinct draft tokens; every other round's draft rows are its target rows."""
    rng = np.random.default_rng(seed)
    params = (94548, 0, 65536, 0)
    out = []
    while len(out) < rounds:
        N = int(rng.integers(1, 17))
        parents, kids = [-1], [0] * N
        for n in range(1, N):
            free = [m for m in range(n) if kids[m] < 3]
            parents.append(int(rng.choice(free)))
            kids[parents[-1]] += 1
        target = numerics.encode_bf16(rng.standard_normal((N, V)) * 1.5)
        # every other round drafts with the target's rows: the walk then goes deep
        draft = target if len(out) % 2 else numerics.encode_bf16(rng.standard_normal((N, V)) * 1.5)
        d_u = rng.integers(0, 1 << 32, size=N, dtype=np.uint64)
        tokens, rank = [0], [0] * N
        for c in range(1, N):
            p, zp = numerics.logit_weights(draft[parents[c]], params, 16)
            if scheme == "sampled":
                tokens.append(numerics.draft_sample(p, zp, int(d_u[c]), 32))
            else:
                tokens.append(int(numerics.rank_order(p)[rank[parents[c]]]))
                rank[parents[c]] += 1
        out.append(TreeRound(scheme=scheme, parents=np.array(parents), tokens=np.array(tokens),
                             target_logits=target, draft_logits=draft, draft_params=params, target_params=params,
                             draft_uniforms=d_u, accept_uniforms=rng.integers(0, 1 << 32, size=N, dtype=np.uint64),
                             sample_uniforms=rng.integers(0, 1 << 32, size=N, dtype=np.uint64)))
    return out


def _chain_rounds() -> list:
    """v2 chain rounds (gamma 0..4, greedy, one-hot and model drafts, min-p) to verify as trees."""
    spec = LogitSyntheticSpec(vocab_size=50, rounds=16, gammas=(0, 1, 2, 3, 4), seed=33, min_ps=(0.0, 0.1))
    return list(synthetic_logit_trace(spec).rounds())


def _chains_as_trees() -> list:
    return [tree_from_chain(r) for r in _chain_rounds()]


def _with_filters(build, draft_filter, target_filter) -> Callable[[], list]:
    """The rounds of `build` with top-k / top-p on both sides: (top_k, top_p) per side, drawn per
    round from the given choices (a fraction top_p); sampled children are drawn again from their
    parent's filtered draft row with their own draft uniform (so they stay draft samples)."""
    def rebuilt():
        rng = np.random.default_rng(41)
        out = []
        for rnd in build():
            def params(side, choices):
                k, p = choices[int(rng.integers(len(choices)))]
                base = numerics.SamplingParams(*[int(v) for v in getattr(rnd, side)])
                return tuple(numerics.check_sampling_params(
                    numerics.SamplingParams(base.k, k, numerics.top_p_units(p), base.min_p)))
            dp, tp = params("draft_params", draft_filter), params("target_params", target_filter)
            tokens = np.array(rnd.tokens)
            if rnd.scheme == "sampled":
                for c in range(1, rnd.num_nodes):
                    n = int(rnd.parents[c])
                    p, zp = numerics.logit_weights(rnd.draft_logits[n], dp, 16)
                    tokens[c] = numerics.draft_sample(p, zp, int(rnd.draft_uniforms[c]), 32)
            out.append(_replace(rnd, tokens=tokens, draft_params=dp, target_params=tp))
        return out
    return rebuilt


TREE_CASES = [
    TreeCase("tree_sampled_3x2", TREE_SMALL, _synthetic(TreeSyntheticSpec(vocab_size=50, rounds=10, shape=(3, 2),
                                                                          seed=21))),
    TreeCase("tree_deterministic_3x2", TREE_SMALL,
             _synthetic(TreeSyntheticSpec(vocab_size=50, rounds=10, shape=(3, 2), scheme="deterministic", seed=22))),
    TreeCase("tree_greedy_mixed_shapes", TREE_SMALL,
             _synthetic(TreeSyntheticSpec(vocab_size=45, rounds=4, shape=(3, 2), scheme="greedy", seed=23),
                        TreeSyntheticSpec(vocab_size=64, rounds=4, shape=(1, 1, 1, 1), scheme="greedy", seed=24))),
    TreeCase("tree_single_node", TREE_SMALL,
             _synthetic(*(TreeSyntheticSpec(vocab_size=37, rounds=3, shape=(), scheme=s, seed=25 + i)
                          for i, s in enumerate(("sampled", "deterministic", "greedy"))))),
    TreeCase("tree_every_child_rejected", TREE_SMALL, lambda: _peaked_children(26, 48, 3, 6, disjoint=True)),
    TreeCase("tree_duplicate_children", TREE_SMALL, lambda: _peaked_children(27, 40, 3, 10, disjoint=False)),
    TreeCase("tree_full_acceptance_deepest_path", TREE_SMALL, _full_acceptance),
    TreeCase("tree_mixed_depths_and_schemes", TREE_SMALL,
             _synthetic(TreeSyntheticSpec(vocab_size=61, rounds=4, shape=(2, 1, 3), seed=28),
                        TreeSyntheticSpec(vocab_size=33, rounds=4, shape=(1, 3, 1), scheme="deterministic", seed=29),
                        TreeSyntheticSpec(vocab_size=64, rounds=4, shape=(3, 1, 1), seed=30, min_ps=(0.1,)))),
    TreeCase("tree_chains_as_trees", TREE_SMALL, _chains_as_trees, chain=_chain_rounds),
    TreeCase("tree_random_shapes", TREE_SMALL,
             lambda: [r for scheme, seed in (("sampled", 42), ("deterministic", 43), ("greedy", 44))
                      for r in _random_shapes(seed, 8, scheme)]),
    # top-k / top-p (the logit block's select passes before each Z job): top_k 1 and >= V,
    # top_p of one unit, every round its own settings on each side
    TreeCase("tree_filters_sampled", TREE_SMALL,
             _with_filters(_synthetic(TreeSyntheticSpec(vocab_size=48, rounds=8, shape=(3, 2), seed=37),
                                      TreeSyntheticSpec(vocab_size=64, rounds=4, shape=(2, 1, 1), seed=38)),
                           draft_filter=((0, 1.0), (3, 1.0), (0, 0.7), (10, 0.9)),
                           target_filter=((1, 1.0), (5, 0.9), (0, 1 / 65536), (64, 0.5), (0, 1.0)))),
    TreeCase("tree_filters_deterministic_and_greedy", TREE_SMALL,
             _with_filters(_synthetic(TreeSyntheticSpec(vocab_size=40, rounds=6, shape=(3, 2), scheme="deterministic",
                                                        seed=39),
                                      TreeSyntheticSpec(vocab_size=40, rounds=3, shape=(2, 2), scheme="greedy", seed=40)),
                           draft_filter=((4, 0.5),), target_filter=((2, 1.0), (7, 0.8), (0, 0.6)))),
    TreeCase("tree_random_shapes_filtered", TREE_SMALL,
             _with_filters(lambda: [r for scheme, seed in (("sampled", 45), ("deterministic", 46), ("greedy", 47))
                                    for r in _random_shapes(seed, 8, scheme, V=52)],
                           draft_filter=((0, 1.0), (2, 1.0), (0, 0.8), (6, 0.5)),
                           target_filter=((1, 1.0), (3, 0.9), (0, 0.7), (30, 1.0)))),
    TreeCase("tree_stalls", TREE_SMALL,
             _synthetic(TreeSyntheticSpec(vocab_size=40, rounds=6, shape=(2, 2), seed=34),
                        TreeSyntheticSpec(vocab_size=40, rounds=3, shape=(2, 2), scheme="deterministic", seed=35)),
             src_stall=0.3, sink_stall=0.5),
    TreeCase("tree_sink_backpressure_only", TREE_SMALL,
             _synthetic(TreeSyntheticSpec(vocab_size=47, rounds=6, shape=(3, 1), seed=36)), sink_stall=0.6),
]
