"""Stream rounds through the verifier at a given level and collect per-round results.

    results = run_rounds("rtl", cfg, rounds, src_stall=0.2, seed=3)

Levels: "fl" (golden function behind the stream ports), "cl" (plus cycle accounting),
"rtl" (the PyMTL3 RTL, translated to Verilog and co-simulated through Verilator, or with
backend="python" the pure-Python RTL simulation, for debugging and VCD waveforms).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pymtl3 import *

from hades.config import VerifierConfig
from hades.errors import ConfigError
from hades.paths import BUILD_DIR, in_dir
from hades.protocol import round_beats, unpack_result
from hades.round import Round, RoundResult
from hades.sim.stream import VerifierHarness

LEVELS = ("fl", "cl", "rtl")


@dataclass(frozen=True)
class SimOptions:
    backend: str = "verilator"      # rtl only: "verilator" (pymtl3 import, ticked from Python),
                                    # "batch" (same Verilog, C++ driver) or "python"
    src_stall: float = 0.0          # probability of a stall before each input beat
    sink_stall: float = 0.0         # probability the consumer is not ready in a cycle
    seed: int = 0
    vcd: str | None = None          # rtl + python backend: write a VCD waveform here
    max_cycles: int | None = None   # default: generous bound from the input length
    timing: object | None = None    # cl: a hades.cl.timing.TimingConfig

    def __post_init__(self):
        from hades import limits
        limits.check_fields(self, {"src_stall": limits.STALL_PROBABILITY, "sink_stall": limits.STALL_PROBABILITY,
                                   "seed": limits.SEED})


def check_vcd(level: str, opts: SimOptions) -> None:
    """Refuse a waveform request that would be ignored or land elsewhere, before simulating:
    only the pure-Python RTL simulation dumps waves, into a file named *.vcd (pymtl3 adds
    the suffix itself), at an output path hades.fileio accepts."""
    if opts.vcd is None:
        return
    if level != "rtl":
        raise ConfigError(f"VCD waveforms come from the rtl level with the python backend; level {level} "
                          "cannot dump them")
    if opts.backend != "python":
        raise ConfigError(f"VCD waveforms come from the rtl level with the python backend; the "
                          f"{opts.backend} backend cannot dump them")
    from hades.fileio import check_output_path
    check_output_path(opts.vcd)
    name = Path(opts.vcd).name
    if not name.endswith(".vcd") or name == ".vcd":
        raise ConfigError(f"the VCD waveform file must be named *.vcd, got {opts.vcd}")


def make_dut(level: str, cfg: VerifierConfig, opts: SimOptions):
    if level == "fl":
        from hades.fl.model import VerifierFL
        return VerifierFL(cfg)
    if level == "cl":
        from hades.cl.model import VerifierCL
        return VerifierCL(cfg, opts.timing)
    if level == "rtl":
        from hades.rtl.verifier import VerifierRTL
        return VerifierRTL(cfg)
    raise ConfigError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def verilate(top, component, module_name: str, build_subdir: str = "verilator"):
    """Translate `component` (top itself or one of its children; top elaborated) to Verilog and
    import it through Verilator, building under BUILD_DIR/build_subdir, where pymtl3 caches the
    build across runs. module_name encodes the parameters and has no '__' (Verilator 5 escapes
    it in file names, which breaks the import). Returns the new top."""
    from pymtl3.passes.backends.verilog import (VerilogPlaceholderPass, VerilogTranslationImportPass,
                                                VerilogTranslationPass)
    component.set_metadata(VerilogTranslationImportPass.enable, True)
    component.set_metadata(VerilogTranslationPass.explicit_module_name, module_name)
    with in_dir(BUILD_DIR / build_subdir):
        top.apply(VerilogPlaceholderPass())
        return VerilogTranslationImportPass()(top)


def build_harness(level: str, cfg: VerifierConfig, beats: list[int], opts: SimOptions):
    cfg.require_simulatable()
    dut = make_dut(level, cfg, opts)
    th = VerifierHarness(dut, mk_bits(cfg.beat_bits), mk_bits(cfg.result_bits), beats,
                         opts.src_stall, opts.sink_stall, opts.seed)
    th.elaborate()
    if level == "rtl" and opts.backend == "verilator":
        th = verilate(th, th.dut, cfg.module_name())
    elif level == "rtl" and opts.backend != "python":
        raise ConfigError(f"RTL backend {opts.backend!r} has no tick-level harness; expected verilator or python "
                          "(the batch backend runs whole traces only)")
    if opts.vcd:
        check_vcd(level, opts)
        from pymtl3.passes.tracing import VcdGenerationPass
        Path(opts.vcd).parent.mkdir(parents=True, exist_ok=True)   # pymtl3 opens the file as is
        th.set_metadata(VcdGenerationPass.vcd_file_name, str(opts.vcd)[:-len(".vcd")])   # it adds .vcd
    th.apply(DefaultPassGroup(linetrace=False))
    return th


def run_rounds(level: str, cfg: VerifierConfig, rounds: list[Round], opts: SimOptions = SimOptions(),
               progress=None) -> list[RoundResult]:
    """Simulate the rounds back to back; returns one RoundResult per round, in order."""
    check_vcd(level, opts)   # the batch backend below would otherwise drop the request silently
    if level == "rtl" and opts.backend == "batch":
        from hades.rtl.batch import run_batch
        results = run_batch(cfg, rounds, opts.src_stall, opts.sink_stall, opts.seed)
        if progress is not None:
            progress(len(results))
        return results
    beats: list[int] = []
    for rnd in rounds:
        beats += round_beats(cfg, rnd)
    th = build_harness(level, cfg, beats, opts)
    limit = opts.max_cycles or (len(beats) * (4 if opts.src_stall or opts.sink_stall else 2) + 200 * len(rounds) + 100)
    th.sim_reset()
    sink = th.sink
    n = len(rounds)
    done = 0
    cycles = 0
    while len(sink.received) < n:
        if cycles >= limit:
            raise RuntimeError(f"{level}: only {len(sink.received)} of {n} results after {cycles} cycles")
        th.sim_tick()
        cycles += 1
        if progress is not None and len(sink.received) > done:
            progress(len(sink.received) - done)
            done = len(sink.received)
    if level == "rtl" and opts.backend == "verilator":
        th.dut.finalize()
    timed = level != "fl"
    return [unpack_result(cfg, msg, timed) for _, msg in sink.received]
