"""Logic synthesis of the verifier with Yosys, and an energy-per-round estimate.

Two flows with the same passes: synthesize_hier (the default of `hades synth`: each distinct
module once, cached, the depth composed over the hierarchy; hades/studies/synth_hier.py) and
synthesize, the flat one described here, feasible for small blocks only.

Flat flow (generic gates, no technology library): PyMTL3's Yosys-flavoured translation (array
ports flattened, which Yosys' Verilog front end needs), `synth -flatten` up to the `fine`
stage, i.e. after `memory -nomap`, so the SRAM stays one $mem_v2 cell instead of being
blasted into flip-flops; then techmap + abc to simple gates. Reported: gate cells,
flip-flops, memory bits (from the $mem_v2 cells) and the longest combinational path in gate
levels (`ltp -noff`, flip-flops cut the paths; a memory read port starts a path).

Synthesise small vocab_max / gamma_max (e.g. 1024 / 4): the logic barely depends on them
(a few index bits), while the memory size is simply gamma_max * vocab_max * W bits.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hades import limits
from hades.cl.timing import TimingConfig, round_timing
from hades.config import VerifierConfig
from hades.errors import HadesError

YOSYS_FLOW = """\
read_verilog -sv {src}
hierarchy -top {top}
synth -flatten -top {top} -run begin:fine
opt -fast -full
techmap
opt -fast
abc -fast
opt -fast
tee -o {stat} stat
tee -o {ltp} ltp -noff
write_json {json}
"""

# A 32-bit adder through the same flow: turns Horowitz's energy per 32-bit add into an
# energy per generic gate cell (see energy_estimate).
ADDER_VERILOG = """\
module add32(input [31:0] a, input [31:0] b, output [31:0] y);
  assign y = a + b;
endmodule
"""


class SynthError(HadesError):
    """Yosys is missing or failed."""


def yosys_available() -> bool:
    return shutil.which("yosys") is not None


def block_module(cfg: VerifierConfig, logits: bool = False) -> str:
    """The Verilog module name of the probability-row block, or with logits of the logit block."""
    if logits:
        from hades.logit_protocol import LogitLayout
        return LogitLayout(cfg).module_name()
    return cfg.module_name()


def emit_yosys_verilog(cfg: VerifierConfig, out_dir: Path, logits: bool = False) -> Path:
    """Translate the RTL (with logits: the logit block's) with PyMTL3's Yosys backend
    (flattened array ports).

    hades.rtl.emit.emit_verilog writes the SystemVerilog flavour, whose unpacked array ports
    Yosys 0.23 cannot parse; this mirrors it with YosysTranslationPass."""
    from pymtl3.passes.backends.yosys import YosysTranslationPass

    from hades.paths import in_dir

    out_dir = Path(out_dir).resolve()
    if logits:
        from hades.rtl.logit_verifier import LogitVerifierRTL
        top = LogitVerifierRTL(cfg)
    else:
        from hades.rtl.verifier import VerifierRTL
        top = VerifierRTL(cfg)
    name = block_module(cfg, logits)
    top.elaborate()
    top.set_metadata(YosysTranslationPass.enable, True)
    top.set_metadata(YosysTranslationPass.explicit_module_name, name)
    with in_dir(out_dir):
        top.apply(YosysTranslationPass())
    produced = out_dir / f"{name}__pickled.v"   # the pickled file is the self-contained one
    if not produced.is_file():
        raise SynthError(f"PyMTL3 Yosys translation did not produce {produced.name}")
    return produced


def run_yosys(script: str, work: Path, timeout: float) -> None:
    timeout = limits.SYNTH_TIMEOUT.check(timeout)   # finite and > 0: subprocess cannot wait NaN seconds
    if not yosys_available():
        raise SynthError("yosys is not installed (apt-get install -y yosys)")
    ys = work / "flow.ys"
    ys.write_text(script)
    try:
        proc = subprocess.run(["yosys", "-q", "-l", str(work / "yosys.log"), str(ys)], capture_output=True,
                              text=True, timeout=timeout, cwd=work)
    except subprocess.TimeoutExpired:
        raise SynthError(f"yosys timed out after {timeout:.0f} s (log: {work / 'yosys.log'})") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SynthError(f"yosys failed: {' | '.join(tail)}")


@dataclass(frozen=True)
class SynthResult:
    module: str
    lanes: int
    vocab_max: int
    gamma_max: int
    prob_bits: int
    cells: int              # gate cells, flip-flops included, memories excluded
    flip_flops: int
    logic_cells: int        # cells - flip_flops
    memories: int           # $mem_v2 cells (the SRAM plus small per-draft register files)
    memory_bits: int
    sram_bits: int          # the row buffers: draft rows (gamma_max * vocab_max * W); logit block: both buffers
    longest_path_levels: int
    seconds: float          # wall time of this run (translation, Yosys or the cache, path search)
    flow: str = "flat"      # "flat": synth -flatten; "hier": per module (synthesize_hier)
    yosys_seconds: float = 0.0   # Yosys time of the block's modules (hier: as recorded when each was synthesised)
    modules: int = 1        # distinct modules (hier)
    modules_synthesised: int = 1   # of those, the ones Yosys ran on now (the rest came from the cache)
    critical_path: str = "" # hier: the longest path as "unit levels > unit levels ..." from its start


def parse_stat(text: str) -> dict[str, int]:
    """Cell types and counts from Yosys `stat` output."""
    counts = {}
    for m in re.finditer(r"^\s+(\$\S+)\s+(\d+)\s*$", text, re.M):
        counts[m.group(1)] = int(m.group(2))
    return counts


def parse_ltp(text: str) -> int:
    m = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    if not m:
        raise SynthError("could not find the longest path in the ltp output")
    return int(m.group(1))


def _json_param(value) -> int:
    # write_json gives parameters as binary-digit strings (or plain ints with -compat-int)
    return value if isinstance(value, int) else int(value, 2)


def memory_bits_from_json(path: Path) -> tuple[int, int]:
    data = json.loads(path.read_text())
    n = bits = 0
    for mod in data["modules"].values():
        for cell in mod.get("cells", {}).values():
            if cell["type"].startswith("$mem"):
                p = cell["parameters"]
                n += 1
                bits += _json_param(p["SIZE"]) * _json_param(p["WIDTH"])
    return n, bits


def _sram_bits(cfg: VerifierConfig, logits: bool) -> int:
    if logits:
        from hades.logit_protocol import LogitLayout
        lay = LogitLayout(cfg)
        return lay.buffer_words * lay.word_bits
    return cfg.gamma_max * cfg.row_words * cfg.lanes * cfg.prob_bits


def _result(cfg: VerifierConfig, logits: bool, name: str, counts: dict[str, int], memories: int, mem_bits: int,
            levels: int, seconds: float, **extra) -> SynthResult:
    gates = {k: v for k, v in counts.items() if not k.startswith("$mem")}
    ffs = sum(v for k, v in gates.items() if "DFF" in k or "DLATCH" in k)
    cells = sum(gates.values())
    return SynthResult(module=name, lanes=cfg.lanes, vocab_max=cfg.vocab_max, gamma_max=cfg.gamma_max,
                       prob_bits=cfg.prob_bits, cells=cells, flip_flops=ffs, logic_cells=cells - ffs,
                       memories=memories, memory_bits=mem_bits, sram_bits=_sram_bits(cfg, logits),
                       longest_path_levels=levels, seconds=seconds, **extra)


def synthesize(cfg: VerifierConfig, work_dir: str | Path | None = None, timeout: float = 1800,
               logits: bool = False) -> SynthResult:
    """Synthesise one configuration flat (`synth -flatten`; with logits: the logit block);
    work files (Verilog, log) go to work_dir or a temp dir. Feasible for small blocks only:
    synthesize_hier is the flow that scales."""
    timeout = limits.SYNTH_TIMEOUT.check(timeout)
    name = block_module(cfg, logits)
    with tempfile.TemporaryDirectory() as tmp:
        work = (Path(work_dir or tmp) / name).resolve()
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        src = emit_yosys_verilog(cfg, work, logits)
        run_yosys(YOSYS_FLOW.format(src=src.name, top=name, stat="stat.txt", ltp="ltp.txt",
                                    json="netlist.json"), work, timeout)
        counts = parse_stat((work / "stat.txt").read_text())
        levels = parse_ltp((work / "ltp.txt").read_text())
        memories, mem_bits = memory_bits_from_json(work / "netlist.json")
        (work / "netlist.json").unlink()   # large and not needed once parsed
        secs = time.perf_counter() - t0
    return _result(cfg, logits, name, counts, memories, mem_bits, levels, secs, yosys_seconds=secs)


@dataclass(frozen=True)
class ModuleDepth:
    """One distinct module of a hierarchical run: its instances in the block, its subtree's
    cells and longest path (its gates and its children's, flattened), its own Yosys time."""
    lanes: int
    module: str
    instances: int
    cells: int
    longest_path_levels: int
    own_levels: int          # the module's own gates alone, its children's outputs as path starts
    yosys_seconds: float


# The exp2 ROM of the logit block is one module with a read port per lane (Exp2Rom, data[i] =
# table[addr[i]]: independent identical slices). Yosys' time on it grows faster than its ports
# (51 / 87 / 252 s at 16 / 32 / 64 ports on the loaded machine, mostly opt_expr after techmap),
# so above this many ports its netlist is the synthesised 64-port one replicated
# (synth_hier.replicate_ports; 4 x 16 ports reproduce the synthesised 64-port netlist exactly:
# 96,960 cells of the same types, 12 levels).
EXP2ROM_SYNTH_PORTS = 64
_EXP2ROM_RE = re.compile(r"^Exp2Rom__weight_bits_(\d+)__nports_(\d+)$")


def _component_verilog(top, work: Path) -> str:
    """PyMTL3's Yosys-flavoured translation of one elaborated-on-demand component, as text."""
    from pymtl3.passes.backends.yosys import YosysTranslationPass

    from hades.paths import in_dir
    work.mkdir(parents=True, exist_ok=True)
    top.elaborate()
    top.set_metadata(YosysTranslationPass.enable, True)
    with in_dir(work):
        top.apply(YosysTranslationPass())
    (produced,) = work.glob("*__pickled.v")
    return produced.read_text()


def exp2rom_stand_ins(module_names, cache_dir, timeout: float, log=None, work: Path | None = None) -> dict:
    """Stand-in netlists for the Exp2Rom modules with more than EXP2ROM_SYNTH_PORTS ports."""
    from hades.rtl.logit_lanes import Exp2Rom
    from hades.studies import synth_hier as sh
    out = {}
    for name in module_names:
        m = _EXP2ROM_RE.match(name)
        if not m or int(m.group(2)) <= EXP2ROM_SYNTH_PORTS or int(m.group(2)) % EXP2ROM_SYNTH_PORTS:
            continue
        weight_bits, ports = int(m.group(1)), int(m.group(2))
        with tempfile.TemporaryDirectory() as tmp:
            text = _component_verilog(Exp2Rom(weight_bits, EXP2ROM_SYNTH_PORTS), Path(work or tmp) / "exp2rom")
        base_name = f"Exp2Rom__weight_bits_{weight_bits}__nports_{EXP2ROM_SYNTH_PORTS}"
        base = sh.ModuleLibrary(text, cache_dir, timeout, log).netlist(base_name)
        out[name] = sh.replicate_ports(base, name, ports // EXP2ROM_SYNTH_PORTS)
        if log:
            log(f"  {name}: {ports // EXP2ROM_SYNTH_PORTS} copies of the synthesised {base_name}")
    return out


def synthesize_hier(cfg: VerifierConfig, work_dir: str | Path | None = None, timeout: float = 1800,
                    logits: bool = False, cache_dir: str | Path | None = None, log=None,
                    module_depth_cells: int = 2_000_000) -> tuple[SynthResult, list[ModuleDepth]]:
    """Synthesise one configuration hierarchically (hades.studies.synth_hier): every distinct
    module once through Yosys (cached), totals by instance counts, the longest path composed
    over the hierarchy, and where it runs. Also the longest path of every distinct module's own
    subtree up to module_depth_cells cells (the top's is always taken)."""
    from hades.studies import synth_hier as sh
    timeout = limits.SYNTH_TIMEOUT.check(timeout)
    name = block_module(cfg, logits)
    with tempfile.TemporaryDirectory() as tmp:
        work = (Path(work_dir or tmp) / name).resolve()
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        src = emit_yosys_verilog(cfg, work, logits)
        text = src.read_text()
        stand_ins = exp2rom_stand_ins(sh.split_modules(text), cache_dir, timeout, log, work)
        lib = sh.ModuleLibrary(text, cache_dir, timeout, log, stand_ins)
    totals = sh.hier_totals(lib, name)
    path = sh.longest_path(sh.flatten(lib, name))
    secs = time.perf_counter() - t0
    # the path as runs of gates per unit: instance paths cut to two levels below the top
    runs: list[list] = []
    for seg in path.segments:
        unit = ".".join(seg.instance.split(".")[:3]) or "(top)"
        if runs and runs[-1][0] == unit:
            runs[-1][1] += seg.levels
        else:
            runs.append([unit, seg.levels])
    crit = " > ".join(f"{u} {n}" for u, n in runs)
    res = _result(cfg, logits, name, totals.cell_counts, totals.memories, totals.memory_bits, path.levels, secs,
                  flow="hier", yosys_seconds=totals.yosys_seconds, modules=len(totals.module_instances),
                  modules_synthesised=len(lib.synthesised), critical_path=crit)
    depths = []
    for mod, n in totals.module_instances.items():
        sub = sh.hier_totals(lib, mod)
        cells = sum(sub.cell_counts.values())
        if mod != name and cells > module_depth_cells:
            continue
        levels = path.levels if mod == name else sh.longest_path(sh.flatten(lib, mod)).levels
        own = sh.longest_path(sh.flatten(lib, mod, own_only=True)).levels
        depths.append(ModuleDepth(cfg.lanes, mod, n, cells, levels, own, lib.netlist(mod).seconds))
    return res, depths


# ---- the lane trees alone: how the logic depth grows with L ---------------------------------

@dataclass(frozen=True)
class TreeSynthResult:
    unit: str                # what the tree is in the logit block
    lanes: int
    cells: int
    longest_path_levels: int
    seconds: float


def lane_tree_units(lanes: int, vocab_max: int = 65536, weight_bits: int = 16):
    """(name, component, module name) of every lane-combining tree of the logit block at its
    widths for this vocab_max: the row maximum (LaneMax over 32-bit y), the weight sum
    (AddTree of W + log2 L bits), the inverse-CDF crossing (LaneCrossing: Kogge-Stone prefix
    sums of the residual lanes, compare, one-hot encoder) and the residual sum."""
    from hades.config import VerifierConfig
    from hades.logit_protocol import LogitLayout
    from hades.rtl.lanes import AddTree, LaneCrossing
    from hades.rtl.logit_lanes import Y_BITS, LaneMax
    lay = LogitLayout(VerifierConfig(lanes=lanes, vocab_max=vocab_max, gamma_max=4, prob_bits=weight_bits))
    lb = lanes.bit_length() - 1
    return [("row maximum (LaneMax, y 32 b)", LaneMax(lanes, Y_BITS), f"TreeMax_L{lanes}"),
            (f"weight sum (AddTree, {lay.z_bits} b)", AddTree(lanes, lay.z_bits), f"TreeWeightSum_L{lanes}"),
            (f"residual sum (AddTree, {lay.residual_bits + lb} b)", AddTree(lanes, lay.residual_bits + lb),
             f"TreeResidualSum_L{lanes}"),
            (f"crossing (LaneCrossing, {lay.residual_bits} b lanes, {lay.residual_sum_bits} b sums)",
             LaneCrossing(lanes, lay.residual_bits, lay.residual_sum_bits), f"TreeCrossing_L{lanes}")]


def synthesize_component(top, name: str, work: Path, timeout: float) -> tuple[dict[str, int], int]:
    """One component through PyMTL3's Yosys translation and YOSYS_FLOW: (cell counts, levels)."""
    from pymtl3.passes.backends.yosys import YosysTranslationPass

    from hades.paths import in_dir
    work.mkdir(parents=True, exist_ok=True)
    top.elaborate()
    top.set_metadata(YosysTranslationPass.enable, True)
    top.set_metadata(YosysTranslationPass.explicit_module_name, name)
    with in_dir(work):
        top.apply(YosysTranslationPass())
    run_yosys(YOSYS_FLOW.format(src=f"{name}__pickled.v", top=name, stat="stat.txt", ltp="ltp.txt",
                                 json="netlist.json"), work, timeout)
    (work / "netlist.json").unlink()
    return parse_stat((work / "stat.txt").read_text()), parse_ltp((work / "ltp.txt").read_text())


def synthesize_lane_trees(lanes: int, work_dir: str | Path | None = None, timeout: float = 1800,
                          vocab_max: int = 65536) -> list[TreeSynthResult]:
    """Every lane tree of the logit block at L lanes (lane_tree_units), synthesised on its own."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for unit, top, name in lane_tree_units(lanes, vocab_max):
            t0 = time.perf_counter()
            counts, levels = synthesize_component(top, name, (Path(work_dir or tmp) / name).resolve(), timeout)
            out.append(TreeSynthResult(unit, lanes, sum(counts.values()), levels, time.perf_counter() - t0))
    return out


def adder32_cells(timeout: float = 120) -> int:
    """Generic gate cells of a 32-bit adder through the same techmap + abc flow."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "add32.v").write_text(ADDER_VERILOG)
        run_yosys("read_verilog add32.v\nsynth -flatten -top add32 -run begin:fine\nopt -fast -full\ntechmap\n"
                   "opt -fast\nabc -fast\nopt -fast\ntee -o stat.txt stat\n", work, timeout)
        return sum(parse_stat((work / "stat.txt").read_text()).values())


# ---- energy estimate --------------------------------------------------------------------

@dataclass(frozen=True)
class EnergyConstants:
    """45 nm, 0.9 V figures from M. Horowitz, "Computing's energy problem (and what we can
    do about it)", ISSCC 2014, Fig. 1.1.9 (energy per operation / per 64-bit access)."""
    int_add32_pj: float = 0.1        # 32-bit integer add
    sram_64b_1mb_pj: float = 100.0   # 64-bit read from a 1 MB SRAM/cache (8 KB: 10, 32 KB: 20)
    sram_64b_32kb_pj: float = 20.0
    dram_64b_pj: float = 1300.0      # 64-bit DRAM access, 1.3-2.6 nJ: the low end
    activity: float = 1.0            # fraction of logic cells that do one add-equivalent op per cycle (upper bound)


@dataclass(frozen=True)
class EnergyEstimate:
    lanes: int
    vocab_size: int
    gamma: int
    buffer_bytes: int
    sram_entries: float          # per round, mean
    offchip_entries: float
    cycles: float
    sram_pj_per_64b: float
    sram_nj: float
    offchip_nj: float
    logic_cells: int
    pj_per_cell_op: float
    logic_nj: float
    total_nj: float
    nj_per_token: float
    note: str = "ESTIMATE: Horowitz ISSCC 2014 45 nm constants, generic-gate cell counts; not a signed-off figure"


def sram_energy_per_64b(buffer_bytes: int, k: EnergyConstants) -> float:
    """Interpolate Horowitz's 8 KB/32 KB/1 MB points on log size; beyond 1 MB grow with
    sqrt(size) (wire length of a square array), which is an assumption, stated as such."""
    kb = buffer_bytes / 1024
    pts_kb, pts_pj = [8, 32, 1024], [10.0, k.sram_64b_32kb_pj, k.sram_64b_1mb_pj]
    if kb <= 1024:
        return float(np.interp(np.log2(max(kb, 8)), np.log2(pts_kb), pts_pj))
    return k.sram_64b_1mb_pj * (kb / 1024) ** 0.5


def energy_estimate(lanes: int, buffer_bytes: int, entry_bits: int, logic_cells: int, adder_cells: int,
                    vocab_size: int, gamma: int, sram_entries: float, offchip_entries: float, cycles: float,
                    tokens_per_round: float, k: EnergyConstants = EnergyConstants()) -> EnergyEstimate:
    """Energy of one round = SRAM traffic + off-chip traffic + logic.

    SRAM and off-chip energy: entries * entry_bits / 64 accesses of 64 bits at the per-access
    energy for the buffer's size (buffer_bytes). Logic: cells * activity * cycles * E_cell with
    E_cell = E(32-bit add) / cells(32-bit add), both through the same Yosys flow."""
    e64 = sram_energy_per_64b(buffer_bytes, k)
    w = entry_bits / 64
    sram_nj = sram_entries * w * e64 / 1e3
    off_nj = offchip_entries * w * k.dram_64b_pj / 1e3
    e_cell = k.int_add32_pj / adder_cells
    logic_nj = logic_cells * k.activity * cycles * e_cell / 1e3
    total = sram_nj + off_nj + logic_nj
    return EnergyEstimate(lanes=lanes, vocab_size=vocab_size, gamma=gamma, buffer_bytes=buffer_bytes,
                          sram_entries=sram_entries, offchip_entries=offchip_entries, cycles=cycles,
                          sram_pj_per_64b=e64, sram_nj=sram_nj, offchip_nj=off_nj, logic_cells=logic_cells,
                          pj_per_cell_op=e_cell, logic_nj=logic_nj, total_nj=total,
                          nj_per_token=total / tokens_per_round)


def round_energy(result: SynthResult, summary, adder_cells: int, hw: VerifierConfig) -> EnergyEstimate:
    """The energy estimate of the synthesised probability-row block `result`, deployed as `hw`
    (its lane count, a large vocab_max/gamma_max), on the rounds of a v1 trace summary timed by
    the CL model."""
    tm = round_timing(TimingConfig(hw=hw), summary.gamma, summary.vocab_size, summary.greedy, summary.accepted,
                      summary.token)
    return energy_estimate(hw.lanes, hw.sram_depth * hw.lanes * hw.prob_bits // 8, hw.prob_bits, result.logic_cells,
                           adder_cells, summary.vocab_size, int(summary.gamma.max()),
                           float(np.mean(tm.sram_entries)), float(np.mean(tm.offchip_entries)),
                           float(np.mean(tm.cycles)), float(np.mean(summary.accepted + 1)))


def logit_round_energy(result: SynthResult, summary, adder_cells: int, hw: VerifierConfig) -> EnergyEstimate:
    """The same for the logit block on the rounds of a v2 trace summary: its CL schedule
    (hades.cl.logit_timing, through the sweep's block model) gives the cycles and the bytes
    written to and read from the buffer (bf16 entries, 16 bits each) and off chip; the buffer
    holds gamma_max draft and gamma_max + 1 target rows of vocab_max entries."""
    from hades.logit_protocol import LogitLayout
    from hades.rtl.logit_lanes import BF16_BITS
    from hades.studies.sweep import BLOCK_MODELS
    lay = LogitLayout(hw)
    tm = BLOCK_MODELS["logit"].timing(TimingConfig(hw=hw), summary)
    to_entries = tm.traffic_bytes * 8 / BF16_BITS
    return energy_estimate(hw.lanes, lay.buffer_words * lay.word_bits // 8, BF16_BITS, result.logic_cells,
                           adder_cells, summary.vocab_size, int(summary.gamma.max()),
                           float(np.mean(tm.sram_traffic)) * to_entries,
                           float(np.mean(tm.offchip_traffic)) * to_entries,
                           float(np.mean(tm.cycles)), float(np.mean(summary.accepted + 1)))
