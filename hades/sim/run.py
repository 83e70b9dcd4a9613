"""Stream rounds through the verifier at a given level and collect per-round results.

    results = run_rounds("rtl", cfg, rounds, src_stall=0.2, seed=3)

Levels: "fl" (golden function behind the stream ports), "cl" (plus cycle accounting),
"rtl" (the PyMTL3 RTL, translated to Verilog and co-simulated through Verilator, or with
backend="python" the pure-Python RTL simulation, for debugging and VCD waveforms).
run_logit_rounds does the same for the logit block (v2 rounds; no batch backend).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pymtl3 import *

from hades.config import VerifierConfig
from hades.errors import ConfigError
from hades.paths import BUILD_DIR, in_dir
from hades.logit_protocol import (KIND_RESULT, LogitLayout, LogitRoundOutput, filter_flags, group_messages,
                                  unpack_message)
from hades.logit_protocol import round_beats as logit_round_beats
from hades.protocol import round_beats, unpack_result
from hades.round import LogitRound, Round, RoundResult
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


def make_dut(level: str, cfg: VerifierConfig, opts: SimOptions, logits: bool = False):
    """The component of `level` for the v1 block, or with `logits` for the logit block."""
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    if logits:
        if level == "fl":
            from hades.fl.model import LogitVerifierFL
            return LogitVerifierFL(cfg)
        if level == "cl":
            from hades.cl.logit_model import LogitVerifierCL
            return LogitVerifierCL(cfg, opts.timing)
        from hades.rtl.logit_verifier import LogitVerifierRTL
        return LogitVerifierRTL(cfg)
    if level == "fl":
        from hades.fl.model import VerifierFL
        return VerifierFL(cfg)
    if level == "cl":
        from hades.cl.model import VerifierCL
        return VerifierCL(cfg, opts.timing)
    from hades.rtl.verifier import VerifierRTL
    return VerifierRTL(cfg)


def verilate(top, component, module_name: str, build_subdir: str = "verilator"):
    """Translate `component` (top itself or one of its children; top elaborated) to Verilog and
    import it through Verilator, building under BUILD_DIR/build_subdir, where pymtl3 caches the
    build across runs. module_name encodes the parameters and has no '__' (Verilator 5 escapes
    it in file names, which breaks the import). Returns the new top."""
    from pymtl3.passes.backends.verilog import (VerilogPlaceholderPass, VerilogTranslationImportPass,
                                                VerilogTranslationPass)
    component.set_metadata(VerilogTranslationImportPass.enable, True)
    component.set_metadata(VerilogTranslationPass.explicit_module_name, module_name)
    from hades.fileio import build_lock
    with build_lock(BUILD_DIR / build_subdir, module_name), in_dir(BUILD_DIR / build_subdir):
        top.apply(VerilogPlaceholderPass())
        return VerilogTranslationImportPass()(top)


def build_harness(level: str, cfg: VerifierConfig, beats: list[int], opts: SimOptions, logits: bool = False):
    """src -> dut -> sink around the component of `level` (the logit block with `logits`),
    elaborated, translated and imported through Verilator at rtl, simulatable."""
    if logits:
        lay = LogitLayout(cfg)
        if level == "rtl":
            lay.require_rtl()
        else:
            lay.require_simulatable()
        beat_type, result_bits, module_name = lay.beat_groups, lay.result_bits, lay.module_name()
        split = lay.split_beat          # the beat as lane groups (hades/rtl/beats.py)
    else:
        cfg.require_simulatable()
        beat_type, result_bits, module_name = mk_bits(cfg.beat_bits), cfg.result_bits, cfg.module_name()
        split = None
    dut = make_dut(level, cfg, opts, logits)
    th = VerifierHarness(dut, beat_type, mk_bits(result_bits), beats,
                         opts.src_stall, opts.sink_stall, opts.seed, split)
    th.elaborate()
    if level == "rtl" and opts.backend == "verilator":
        th = verilate(th, th.dut, module_name)
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


def _drive(level: str, th, opts: SimOptions, n: int, limit: int, is_result, progress=None) -> list[int]:
    """Reset and tick the harness until the sink holds n results (is_result(message)); returns
    every message the sink received, in order."""
    th.sim_reset()
    sink = th.sink
    seen = results = cycles = 0
    while results < n:
        if cycles >= limit:
            raise RuntimeError(f"{level}: only {results} of {n} results after {cycles} cycles")
        th.sim_tick()
        cycles += 1
        new = [msg for _, msg in sink.received[seen:]]
        seen += len(new)
        done = sum(1 for msg in new if is_result(msg))
        results += done
        if progress is not None and done:
            progress(done)
    if level == "rtl" and opts.backend == "verilator":
        th.dut.finalize()
    return [msg for _, msg in sink.received]


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
    msgs = _drive(level, th, opts, len(rounds), limit, lambda msg: True, progress)
    timed = level != "fl"
    return [unpack_result(cfg, msg, timed) for msg in msgs]


def _logit_cycle_limit(cfg: VerifierConfig, rounds: list[LogitRound], opts: SimOptions) -> int:
    """Every round at its longest, twice (four times under stalls), and the output of every message."""
    from hades.cl.logit_timing import logit_cycles_bound
    from hades.cl.timing import TimingConfig
    bound = logit_cycles_bound(opts.timing or TimingConfig(hw=cfg), [r.gamma for r in rounds],
                               [r.vocab_size for r in rounds], [r.greedy for r in rounds],
                               [r.onehot_draft for r in rounds], [filter_flags(r) for r in rounds])
    messages = sum(r.gamma + 1 for r in rounds)
    return (int(bound.sum()) + 4 * messages) * (4 if opts.src_stall or opts.sink_stall else 2) + 100


def run_logit_rounds(level: str, cfg: VerifierConfig, rounds: list[LogitRound], opts: SimOptions = SimOptions(),
                     progress=None) -> list[LogitRoundOutput]:
    """Simulate logit rounds back to back through the logit block; returns, per round, its draft
    token messages (model drafts) and its result, in order."""
    check_vcd(level, opts)
    rounds = list(rounds)
    limit = opts.max_cycles or _logit_cycle_limit(cfg, rounds, opts)
    if level == "rtl" and opts.backend == "batch":
        from hades.rtl.batch import run_logit_batch
        outputs = run_logit_batch(cfg, rounds, opts.src_stall, opts.sink_stall, opts.seed, limit)
        if progress is not None:
            progress(len(outputs))
        return outputs
    beats: list[int] = []
    for i, rnd in enumerate(rounds):
        beats += logit_round_beats(cfg, rnd, f"round {i}")
    th = build_harness(level, cfg, beats, opts, logits=True)
    msgs = _drive(level, th, opts, len(rounds), limit, lambda msg: msg & 1 == KIND_RESULT, progress)
    timed = level != "fl"
    return group_messages(unpack_message(cfg, msg, timed) for msg in msgs)
