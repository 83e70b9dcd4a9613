"""Tree rounds at a given level (docs/ARCHITECTURE.md "The tree block"):

    results = run_tree_rounds("cl", tree_cfg, rounds)

"fl" is the golden walk (hades.fl.tree.verify_tree_round), "cl" adds the schedule of
hades.cl.tree_timing (hades.cl.tree_model), "rtl" streams the rounds' beats through the
tree block's RTL (hades.rtl.tree_verifier) in the shared src -> dut -> sink harness, through
Verilator or the pure-Python simulation (backend="python"), with the harness's stalls.
Every level returns one TreeResult per round, in order; CL and RTL with cycles and latency.
"""
from __future__ import annotations

from hades.config import TreeConfig
from hades.errors import ConfigError
from hades.round import TreeResult
from hades.sim.run import LEVELS, SimOptions, check_vcd
from hades.tree_protocol import check_tree_round


def run_tree_rounds(level: str, tree: TreeConfig, rounds, opts: SimOptions = SimOptions(),
                    progress=None) -> list[TreeResult]:
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    check_vcd(level, opts)
    if level == "rtl":
        from hades.sim.tree_rtl import run_tree_rtl
        return run_tree_rtl(tree, list(rounds), opts, progress)
    # FL and CL take one round at a time: its rows live only while it is verified
    if level == "fl":
        from hades.fl.tree import verify_tree_round
        out = []
        for i, r in enumerate(rounds):
            check_tree_round(tree, r, f"round {i}")
            out.append(verify_tree_round(r, tree.hw.prob_bits, tree.hw.uniform_bits, f"round {i}"))
    else:
        from hades.cl.tree_model import tree_timed_results
        out = tree_timed_results(tree, rounds, opts.timing)
    if progress is not None:
        progress(len(out))
    return out
