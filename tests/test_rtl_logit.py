"""RTL checks of the logit block that the shared case table does not make: Verilog emission
and lint, and the configurations its constructor refuses."""
from __future__ import annotations

import shutil

import pytest

from hades.config import VerifierConfig
from hades.errors import ConfigError
from hades.logit_protocol import LogitLayout
from harness.cases import LOGIT_CASES

needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")


@needs_verilator
@pytest.mark.parametrize("cfg", [VerifierConfig(lanes=4, vocab_max=64, gamma_max=4),
                                 VerifierConfig(lanes=16, vocab_max=65536, gamma_max=4, prob_bits=12,
                                                uniform_bits=24)],
                         ids=["L4_V64", "L16_V65536_W12_U24"])
def test_logit_verilog_lints_clean(tmp_path, cfg):
    from hades.rtl.emit import emit_verilog, lint_verilog
    path = emit_verilog(cfg, tmp_path, logits=True)
    name = LogitLayout(cfg).module_name()
    assert f"module {name}" in path.read_text() and "__" not in name
    lint_verilog(path, name)   # raises on any warning outside the documented waivers


@pytest.mark.parametrize("cfg, message", [
    (VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=100), "cannot hold the logit block's 4 draft and 5"),
    (VerifierConfig(lanes=512, vocab_max=4096, gamma_max=4), "built and checked up to 256 lanes"),
    (VerifierConfig(lanes=64, vocab_max=64, gamma_max=4), "vocab_max > lanes"),
])
def test_logit_rtl_refuses(cfg, message):
    from hades.rtl.logit_verifier import LogitVerifierRTL
    with pytest.raises(ConfigError, match=message):
        LogitVerifierRTL(cfg).elaborate()


@needs_verilator
@pytest.mark.parametrize("case", [c for c in LOGIT_CASES if c.stall_free][:3] + [c for c in LOGIT_CASES if not c.stall_free][:1],
                         ids=lambda c: c.name)
def test_logit_batch_backend_equals_the_model(case):
    """The batch (C++-driven) simulator runs the same Verilog: results, sampled drafts and, when
    stall-free, every message's cycles equal the CL model's (hades.sim.compare)."""
    import dataclasses

    from hades.sim.compare import compare_logit_levels
    from hades.sim.run import SimOptions, run_logit_rounds
    from hades.traces.synthetic import synthetic_logit_trace
    trace = synthetic_logit_trace(case.spec)
    rounds = [trace.round(i) for i in range(trace.num_rounds)]
    opts = dataclasses.replace(SimOptions(backend="batch"), src_stall=case.src_stall, sink_stall=case.sink_stall, seed=7)
    outputs = run_logit_rounds("rtl", case.cfg, rounds, opts)
    assert len(outputs) == len(rounds)
    bad = compare_logit_levels("rtl", case.cfg, rounds, outputs, case.stall_free)
    assert not bad, "\n".join(map(str, bad[:5]))


@needs_verilator
def test_emit_verilog_cli_logits(tmp_path, capsys):
    from hades.cli.app import main
    assert main(["emit-verilog", "--logits", "--out", str(tmp_path), "--lanes", "4", "--vocab-max", "64",
                 "--gamma-max", "4", "--lint"]) == 0
    assert (tmp_path / "LogitVerifier_L4_V64_G4_W16_U32.v").is_file() and "lint clean" in capsys.readouterr().out
    assert main(["emit-verilog", "--logits", "--out", str(tmp_path), "--lanes", "512", "--vocab-max", "4096"]) == 2


@needs_verilator
def test_logit_fuzz_finds_no_disagreement():
    """A short differential fuzz of the logit block on its smallest configuration (random V,
    gammas, modes, temperatures, min-p, ties): RTL == FL decisions and drafts, RTL == CL cycles."""
    from hades.sim.fuzz import LOGIT_FUZZ_CONFIGS, fuzz_logits
    from hades.traces.synthetic import random_logit_rounds
    report = fuzz_logits(random_logit_rounds, 60, seed=3, batch=20, configs=LOGIT_FUZZ_CONFIGS[:1])
    assert report.rounds == 60 and report.rtl_cycles > 0
    assert not report.disagreements, report.disagreements[:3]


# ---- wide datapaths (issue 15): lane groups of 32 lanes, banked buffers ----------------------

@pytest.mark.parametrize("lanes, groups, bits", [(4, 1, "header"), (32, 1, 512), (64, 2, 512), (256, 8, 512)])
def test_beat_lane_groups(lanes, groups, bits):
    """A beat is split into groups of <= 512 bits (one group, the whole beat, up to 32 lanes;
    at 4 lanes the header, 220 bits with the filter fields, is wider than the 64 bits of lanes),
    and split_beat inverts the stream's packing: group g holds lanes 32 g .. 32 g + 31."""
    import numpy as np

    from hades.logit_protocol import _lanes_to_int
    lay = LogitLayout(VerifierConfig(lanes=lanes, vocab_max=65536, gamma_max=4))
    if bits == "header":
        assert lay.header_bits > 16 * lanes
        bits = lay.header_bits
    assert (lay.lane_groups, lay.group_bits) == (groups, bits) and lay.beat_groups == (bits,) * groups
    lanes_in = np.random.default_rng(lanes).integers(0, 1 << 16, lanes).astype(np.uint16)
    parts = lay.split_beat(_lanes_to_int(lanes_in))
    for g, part in enumerate(parts):
        for j in range(lay.group_lanes):
            assert (part >> (16 * j)) & 0xFFFF == lanes_in[g * lay.group_lanes + j]


@needs_verilator
def test_wide_logit_verilog_lints_clean(tmp_path):
    """64 lanes: the beat as two 512-bit group ports, two SRAM banks per buffer; lint clean."""
    from hades.rtl.emit import emit_verilog, lint_verilog
    cfg = VerifierConfig(lanes=64, vocab_max=1024, gamma_max=2)
    path = emit_verilog(cfg, tmp_path, logits=True)
    text = path.read_text()
    assert "input logic [511:0] recv__msg [0:1]" in text
    lint_verilog(path, LogitLayout(cfg).module_name())


@needs_verilator
@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["LOGIT_WIDE_64", "LOGIT_WIDE_128"])
def test_wide_full_vocab_batch_equals_the_model(cfg):
    """Full-vocabulary rounds (V = 49152 and 50257, every mode) at 64 and 128 lanes through the
    batch driver: results and drafts as FL, every message's cycles as the CL schedule."""
    from harness import cases
    from hades.sim.compare import compare_logit_levels
    from hades.sim.run import SimOptions, run_logit_rounds
    from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
    cfg = getattr(cases, cfg)
    rounds = []
    for vocab, seed in ((49152, 31), (50257, 32)):
        trace = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=vocab, rounds=4, gammas=(4, 1, 3, 2), seed=seed,
                                                         greedy_share=0.25, onehot_share=0.25, mask_share=0.5))
        rounds += list(trace.rounds())
    outputs = run_logit_rounds("rtl", cfg, rounds, SimOptions(backend="batch"))
    bad = compare_logit_levels("rtl", cfg, rounds, outputs)
    assert len(outputs) == len(rounds) and not bad, "\n".join(map(str, bad[:5]))


@pytest.mark.slow
def test_widest_logit_rtl_equals_the_model_in_python_simulation():
    """256 lanes (8 lane groups, 8 banks per buffer), in the pure-Python RTL simulation (no
    Verilator build): every result, draft and cycle count as FL + the CL schedule, on rounds
    whose last beat ends inside group 0 (V = 520 over 3 beats: 8 lanes in the last)."""
    from hades.sim.compare import compare_logit_levels
    from hades.sim.run import SimOptions, run_logit_rounds
    from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
    cfg = VerifierConfig(lanes=256, vocab_max=768, gamma_max=3)
    trace = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=520, rounds=3, gammas=(3, 1, 2), seed=41,
                                                     greedy_share=0.3, onehot_share=0.3))
    rounds = list(trace.rounds())
    outputs = run_logit_rounds("rtl", cfg, rounds, SimOptions(backend="python"))
    bad = compare_logit_levels("rtl", cfg, rounds, outputs)
    assert len(outputs) == len(rounds) and not bad, "\n".join(map(str, bad[:5]))
