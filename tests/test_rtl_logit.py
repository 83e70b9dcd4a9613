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
    (VerifierConfig(lanes=64, vocab_max=4096, gamma_max=4), "PyMTL3 signals stop at 1023 bits"),
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
    assert main(["emit-verilog", "--logits", "--out", str(tmp_path), "--lanes", "64", "--vocab-max", "4096"]) == 2


@needs_verilator
def test_logit_fuzz_finds_no_disagreement():
    """A short differential fuzz of the logit block on its smallest configuration (random V,
    gammas, modes, temperatures, min-p, ties): RTL == FL decisions and drafts, RTL == CL cycles."""
    from hades.sim.fuzz import LOGIT_FUZZ_CONFIGS, fuzz_logits
    from hades.traces.synthetic import random_logit_rounds
    report = fuzz_logits(random_logit_rounds, 60, seed=3, batch=20, configs=LOGIT_FUZZ_CONFIGS[:1])
    assert report.rounds == 60 and report.rtl_cycles > 0
    assert not report.disagreements, report.disagreements[:3]
