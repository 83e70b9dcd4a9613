"""The tree block at CL: FL's decisions (hades.fl.tree.verify_tree_round) with the cycles of
hades.cl.tree_timing. tree_timed_results is the one "FL decisions + CL timing" function for
tree rounds: `hades verify --level cl` on tree traces, the level comparison and the tree sweeps
go through it."""
from __future__ import annotations

import dataclasses

from hades.cl.timing import TimingConfig
from hades.cl.tree_timing import tree_round_timing
from hades.config import TreeConfig
from hades.fl.tree import verify_tree_round
from hades.round import TreeResult
from hades.tree_protocol import check_tree_round, round_filter_flags


def tree_timed_result(tree: TreeConfig, rnd, where: str = "round", timing: TimingConfig | None = None,
                      result: TreeResult | None = None) -> TreeResult:
    """One round: check_tree_round (TraceError for what the block cannot carry), the FL result
    (or the given untimed one), and its CL cycles and latency."""
    check_tree_round(tree, rnd, where)
    res = result if result is not None else verify_tree_round(rnd, tree.hw.prob_bits, tree.hw.uniform_bits, where)
    t = tree_round_timing(tree, rnd.scheme, rnd.parents, rnd.tokens, rnd.vocab_size, res.path, res.token,
                          round_filter_flags(rnd), timing)
    return dataclasses.replace(res, cycles=t.cycles, latency=t.latency)


def tree_timed_results(tree: TreeConfig, rounds, timing: TimingConfig | None = None) -> list[TreeResult]:
    """tree_timed_result of every round; `rounds` may be a generator (each round is held only
    while it is verified)."""
    return [tree_timed_result(tree, r, f"round {i}", timing) for i, r in enumerate(rounds)]
