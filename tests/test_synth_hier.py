"""Hierarchical synthesis (hades.studies.synth_hier): per-module Yosys runs with a cache, totals
by instance counts, and the longest path composed over the hierarchy, checked against Yosys'
own hierarchical synthesis of the same design (stat -top; flatten + ltp -noff) on a tiny design
that has what the logit block has: a child used several times, a chain through children, a
port feed-through, a flip-flop cutting a path, and a memory."""
import shutil

import numpy as np
import pytest

from hades.studies import synth_hier as sh

yosys = pytest.mark.skipif(shutil.which("yosys") is None,
                           reason="yosys is not installed (apt-get install -y yosys; set-up: HADES_WITH_YOSYS=1)")

TINY = """\
module Adder8 (input [7:0] a, input [7:0] b, output [7:0] y);
  assign y = a + b;
endmodule

module Pass8 (input [7:0] a, output [7:0] y, output [7:0] z);
  assign y = a;            // a feed-through: zero levels
  assign z = ~a;
endmodule

module Chain (input clk, input [7:0] a, input [7:0] b, input [7:0] c, output reg [7:0] q, output [7:0] mem_q);
  wire [7:0] s1, s2, p, n;
  reg [7:0] mem [0:15];
  reg [7:0] rd;
  Adder8 add0 (.a(a), .b(b), .y(s1));
  Pass8 pass (.a(s1), .y(p), .z(n));
  Adder8 add1 (.a(p), .b(c), .y(s2));
  always @(posedge clk) begin
    q <= s2 ^ n;             // the register ends the chain's path
    mem[a[3:0]] <= s2;
    rd <= mem[b[3:0]];       // a registered read: the memory stays a $mem_v2
  end
  assign mem_q = rd + q;     // a path from the memory's read and from q
endmodule
"""


def _yosys_reference(tmp_path):
    """Yosys' hierarchical synthesis of TINY in one run: total cells and flatten + ltp -noff."""
    from hades.studies.synth import parse_ltp, run_yosys
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tiny.v").write_text(TINY)
    flow = sh.MODULE_FLOW.format(src="tiny.v", libs="", top="Chain", json="ref.json")
    flow += "tee -o stat.txt stat -top Chain\nflatten\ntee -o ltp.txt ltp -noff\n"
    run_yosys(flow, tmp_path, 120)
    stat = (tmp_path / "stat.txt").read_text().split("=== design hierarchy ===")[1]
    cells = int(stat.split("Number of cells:")[1].split()[0])
    return cells, parse_ltp((tmp_path / "ltp.txt").read_text())


def test_split_and_children():
    mods = sh.split_modules(TINY)
    assert list(mods) == ["Adder8", "Pass8", "Chain"]
    assert sh.module_children(mods["Chain"], mods) == ["Adder8", "Pass8"]
    assert sh.module_children(mods["Adder8"], mods) == []


@yosys
def test_hier_totals_and_path_equal_yosys_flattened(tmp_path):
    ref_cells, ref_levels = _yosys_reference(tmp_path / "ref")
    lib = sh.ModuleLibrary(TINY, tmp_path / "cache", timeout=120)
    tot = sh.hier_totals(lib, "Chain")
    assert tot.module_instances == {"Chain": 1, "Adder8": 2, "Pass8": 1}
    assert tot.memories == 1 and tot.memory_bits == 16 * 8
    # stat -top's total counts the gates and the memory cells (the totals keep memories apart)
    assert sum(tot.cell_counts.values()) + tot.memories == ref_cells
    path = sh.longest_path(sh.flatten(lib, "Chain"))
    assert path.levels == ref_levels
    # the longest path runs add0 -> pass (no gates: feed-through) -> add1 -> the xor in Chain
    insts = [s.instance for s in path.segments]
    assert insts[:2] == ["add0", "add1"] and sum(s.levels for s in path.segments) == path.levels
    # Chain's own gates alone (children's outputs as starts): the xor, or the read + q adder
    own = sh.longest_path(sh.flatten(lib, "Chain", own_only=True))
    assert 1 <= own.levels < path.levels and {s.instance for s in own.segments} == {""}
    # a second library over the same text synthesises nothing: every module comes from the cache
    again = sh.ModuleLibrary(TINY, tmp_path / "cache", timeout=120)
    assert sh.longest_path(sh.flatten(again, "Chain")).levels == ref_levels and again.synthesised == []


@yosys
def test_cache_keys_follow_the_text(tmp_path):
    """A changed child re-synthesises the child and its parents, not its siblings."""
    lib = sh.ModuleLibrary(TINY, tmp_path, timeout=120)
    sh.hier_totals(lib, "Chain")
    changed = sh.ModuleLibrary(TINY.replace("assign z = ~a;", "assign z = a ^ 8'h5a;"), tmp_path, timeout=120)
    sh.hier_totals(changed, "Chain")
    assert sorted(changed.synthesised) == ["Chain", "Pass8"]
    # comments (PyMTL's carry source paths and line numbers) do not change a key
    commented = sh.ModuleLibrary(TINY.replace("assign y = a + b;", "assign y = a + b;  // At x/y.py:12"), tmp_path,
                                 timeout=120)
    sh.hier_totals(commented, "Chain")
    assert commented.synthesised == []


def test_longest_path_rules():
    """ltp's counting on a hand-made graph: gates count 1, a feed-through 0, the longest of two
    branches wins, and a loop is an error rather than a hang."""
    # nets: 0 const, 1 a (source), 2..5 internal
    g = sh.FlatGraph(gate_out=np.array([2, 3, 4, 5], np.int32),
                     gate_in=np.array([[1, 0], [2, 0], [3, 1], [2, 0]], np.int32),
                     delay=np.array([1, 0, 1, 1], np.int8), gate_inst=np.array([0, 0, 1, 1], np.int32),
                     inst_paths=["u", "v"], nets=6)
    p = sh.longest_path(g)
    assert p.levels == 2 and [(s.instance, s.levels) for s in p.segments] == [("u", 1), ("v", 1)]
    loop = sh.FlatGraph(gate_out=np.array([2, 3], np.int32), gate_in=np.array([[3], [2]], np.int32),
                        delay=np.array([1, 1], np.int8), gate_inst=np.zeros(2, np.int32), inst_paths=[""], nets=4)
    with pytest.raises(sh.CombinationalLoop):
        sh.longest_path(loop, max_iterations=50)


def test_logit_round_energy_follows_the_schedule_and_the_cells(tmp_path):
    """The logit block's energy estimate: SRAM energy from the CL schedule's buffer traffic
    (independent of the cell count), logic energy proportional to cells x cycles, the buffer
    as the deployed block's two row buffers."""
    from dataclasses import replace

    from hades.config import VerifierConfig
    from hades.logit_protocol import LogitLayout
    from hades.studies.synth import SynthResult, logit_round_energy
    from hades.traces.cache import TraceRequest, get_summary
    summ = get_summary(TraceRequest(source="synthetic", gamma=2, rounds=3, vocab_size=512, trace_format=2), tmp_path)
    hw = VerifierConfig(lanes=16, vocab_max=1024, gamma_max=2)
    res = SynthResult(module="m", lanes=16, vocab_max=1024, gamma_max=2, prob_bits=16, cells=1100, flip_flops=100,
                      logic_cells=1000, memories=2, memory_bits=0, sram_bits=0, longest_path_levels=10, seconds=0.0)
    e1 = logit_round_energy(res, summ, 220, hw)
    e2 = logit_round_energy(replace(res, logic_cells=2000), summ, 220, hw)
    lay = LogitLayout(hw)
    assert e1.buffer_bytes == lay.buffer_words * lay.word_bits // 8
    assert e1.sram_entries > 0 and e1.cycles > 0 and e1.offchip_nj == 0
    assert e2.sram_nj == e1.sram_nj and abs(e2.logic_nj - 2 * e1.logic_nj) < 1e-9 * e2.logic_nj
    assert abs(e1.total_nj - (e1.sram_nj + e1.logic_nj)) < 1e-9 and "ESTIMATE" in e1.note
    # every row of a round is written once and read at least once: at least 2 (gamma + 1) V entries
    assert e1.sram_entries >= 2 * 3 * 512


def _rom(ports):
    decl = ", ".join([f"input [2:0] addr__{i}" for i in range(ports)] + [f"output [3:0] data__{i}" for i in range(ports)])
    body = "\n".join(f"  assign data__{i} = table[addr__{i}];" for i in range(ports))
    init = "\n".join(f"  assign table[{f}] = 4'd{(f * 7 + 3) % 16};" for f in range(8))
    return f"module Rom{ports} (input clk, {decl});\n  wire [3:0] table [0:7];\n{init}\n{body}\nendmodule\n"


@yosys
def test_replicated_ports_equal_the_synthesised_wide_module(tmp_path):
    """A module of independent identical port slices (the exp2 ROM's shape): 2 copies of the
    2-port netlist have the 4-port synthesis' cells and depth, and the copies' ports are apart."""
    two = sh.ModuleLibrary(_rom(2), tmp_path, timeout=120).netlist("Rom2")
    four = sh.ModuleLibrary(_rom(4), tmp_path, timeout=120).netlist("Rom4")
    rep = sh.replicate_ports(two, "Rom4", 2)
    assert rep.cell_counts == four.cell_counts and set(rep.ports) == set(four.ports)
    assert rep.ports["clk"] == two.ports["clk"]
    assert not set(rep.ports["addr__0"][1]) & set(rep.ports["addr__2"][1])

    class One:
        def netlist(self, name):
            return {"Rom4": rep}[name]
    assert sh.longest_path(sh.flatten(One(), "Rom4")).levels == sh.longest_path(
        sh.flatten(sh.ModuleLibrary(_rom(4), tmp_path, timeout=120), "Rom4")).levels > 0
