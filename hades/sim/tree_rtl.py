"""Tree rounds through the tree block's RTL (hades/rtl/tree_verifier.py) in the shared
src -> dut -> sink harness (hades.sim.stream.VerifierHarness), through Verilator or the
pure-Python simulation; stalls as the chain blocks'. Every round the tree block carries runs,
top-k / top-p included."""
from __future__ import annotations

from pymtl3 import *

from hades.config import TreeConfig
from hades.errors import ConfigError
from hades.round import TreeResult
from hades.sim.run import SimOptions, _drive, check_vcd, verilate
from hades.sim.stream import VerifierHarness
from hades.tree_protocol import TreeLayout, round_beats, unpack_tree_result


def _cycle_limit(tree: TreeConfig, rounds, opts: SimOptions) -> int:
    """Every round at its longest, twice (four times under stalls): at most N visited nodes, each
    with k_max + 3 passes over its two rows and the select passes of both rows."""
    lg = TreeLayout(tree).logit
    total = 0
    for rnd in rounds:
        words = -(-rnd.vocab_size // tree.hw.lanes)
        selects = 2 * lg.filter_levels * (words + 2 + lg.select_cycles) + lg.divide_cycles
        total += 1 + rnd.num_nodes + rnd.num_nodes * (2 * words * (tree.children_max + 3) + 2 * selects) + 16
    return total * (4 if opts.src_stall or opts.sink_stall else 2) + 100


def run_tree_rtl(tree: TreeConfig, rounds, opts: SimOptions = SimOptions(), progress=None) -> list[TreeResult]:
    check_vcd("rtl", opts)
    rounds = list(rounds)
    if opts.backend not in ("verilator", "python"):
        raise ConfigError(f"the tree block's RTL runs on the verilator or python backend, not {opts.backend!r}")
    from hades.rtl.tree_verifier import TreeVerifierRTL, require_tree_rtl
    lay = require_tree_rtl(tree)
    beats: list[int] = []
    for i, rnd in enumerate(rounds):
        beats += round_beats(tree, rnd, f"round {i}")
    th = VerifierHarness(TreeVerifierRTL(tree), (lay.beat_bits,), mk_bits(lay.result_bits), beats,
                         opts.src_stall, opts.sink_stall, opts.seed, lambda beat: [beat])
    th.elaborate()
    if opts.backend == "verilator":
        th = verilate(th, th.dut, lay.module_name(), "verilator_tree")
    if opts.vcd:
        from pathlib import Path

        from pymtl3.passes.tracing import VcdGenerationPass
        Path(opts.vcd).parent.mkdir(parents=True, exist_ok=True)
        th.set_metadata(VcdGenerationPass.vcd_file_name, str(opts.vcd)[:-len(".vcd")])
    th.apply(DefaultPassGroup(linetrace=False))
    msgs = _drive("rtl", th, opts, len(rounds), opts.max_cycles or _cycle_limit(tree, rounds, opts),
                  lambda msg: True, progress)
    return [unpack_tree_result(tree, m, r.parents) for m, r in zip(msgs, rounds, strict=True)]
