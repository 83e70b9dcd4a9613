"""RTL-specific checks: Verilog emission and lint, construction-time refusals, reset in the
middle of a round, and a hypothesis property test of random rounds at every level."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hades.config import VerifierConfig
from hades.errors import ConfigError
from hades.fl.verifier import verify_round
from hades.protocol import round_beats, unpack_result
from hades.traces.synthetic import SyntheticSpec, synthetic_trace
from hades.sim.rounds import FLAVOURS, PROPERTY_CONFIGS, random_round
from hades.sim.run import build_harness, run_rounds
from harness.cases import CASES
from harness.checks import check_rounds

needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")


@needs_verilator
@pytest.mark.parametrize("cfg", [VerifierConfig(lanes=4, vocab_max=64, gamma_max=4),
                                 VerifierConfig(lanes=16, vocab_max=65536, gamma_max=16)],
                         ids=["L4_V64", "L16_V65536_default"])
def test_emitted_verilog_lints_clean(tmp_path, cfg):
    from hades.rtl.emit import emit_verilog, lint_verilog
    path = emit_verilog(cfg, tmp_path)
    text = path.read_text()
    assert f"module {cfg.module_name()}" in text
    assert "__" not in cfg.module_name()
    lint_verilog(path, cfg.module_name())   # raises on any warning outside the documented waivers


def test_rtl_refuses_buffer_smaller_than_draft_rows():
    cfg = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=3 * 16)
    from hades.rtl.verifier import VerifierRTL
    with pytest.raises(ConfigError, match="cannot hold gamma_max=4 draft rows"):
        VerifierRTL(cfg).elaborate()


def test_config_refuses_impossible_parameters():
    with pytest.raises(ConfigError, match="power of two"):
        VerifierConfig(lanes=0)
    with pytest.raises(ConfigError, match="smaller than one row"):
        VerifierConfig(lanes=4, vocab_max=64, sram_words=2)
    wide = VerifierConfig(lanes=64, prob_bits=16)   # fine for the analytic CL timing ...
    with pytest.raises(ConfigError, match="1023 bits"):
        wide.require_simulatable()                 # ... but not for a PyMTL3 simulation


def test_reset_mid_round_then_clean_rounds(level, sim_options):
    """A reset in the middle of a round leaves no trace: the rounds streamed after it
    (the source restarts from the first beat) come out exactly as FL says."""
    if level == "rtl" and sim_options.backend == "batch":
        pytest.skip("reset injection needs a tick-level harness (--rtl-backend verilator or python)")
    cfg = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)
    rounds = list(synthetic_trace(SyntheticSpec(vocab_size=45, rounds=4, gammas=(3, 4), seed=11)).rounds())
    beats = [b for r in rounds for b in round_beats(cfg, r)]
    th = build_harness(level, cfg, beats, sim_options)
    th.sim_reset()
    for _ in range(len(round_beats(cfg, rounds[0])) + 17):   # into the second round
        th.sim_tick()
    assert len(th.sink.received) == 1
    th.sim_reset()
    th.sink.received.clear()
    for _ in range(4 * len(beats)):
        th.sim_tick()
        if len(th.sink.received) == len(rounds):
            break
    got = [unpack_result(cfg, m, level != "fl").decision() for _, m in th.sink.received]
    assert got == [verify_round(r, cfg.row_sum, cfg.uniform_bits).decision() for r in rounds]


# A few fixed configurations keep the Verilator builds cached across examples (the small ones
# of `hades fuzz`); the rounds themselves (vocabulary, gamma, flavour, uniforms) are drawn freely.


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg_index=st.integers(0, len(PROPERTY_CONFIGS) - 1), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_property_random_rounds_match_fl(level, sim_options, cfg_index, seed, data):
    cfg = PROPERTY_CONFIGS[cfg_index]
    vocab = data.draw(st.integers(2, cfg.vocab_max), label="vocab")
    n = data.draw(st.integers(1, 3), label="rounds")
    rng = np.random.default_rng(seed)
    rounds = [random_round(rng, vocab, data.draw(st.integers(0, cfg.gamma_max), label="gamma"),
                           cfg.prob_bits, cfg.uniform_bits,
                           greedy=data.draw(st.booleans(), label="greedy"),
                           flavour=data.draw(st.sampled_from(FLAVOURS), label="flavour"))
              for _ in range(n)]
    stalls = data.draw(st.sampled_from([0.0, 0.3]), label="src_stall")
    opts = dataclasses.replace(sim_options, src_stall=stalls, sink_stall=stalls, seed=seed % 1000)
    check_rounds(level, cfg, rounds, opts, stall_free=stalls == 0.0)


def test_long_run_sim_matches_fast_models(level, sim_options):
    """run_rounds over many back-to-back rounds (no idle cycle between them)."""
    cfg = VerifierConfig(lanes=8, vocab_max=256, gamma_max=8)
    trace = synthetic_trace(SyntheticSpec(vocab_size=200, rounds=24, gammas=(8, 0, 5, 2, 7), seed=21))
    results = run_rounds(level, cfg, list(trace.rounds()), sim_options)
    assert [r.decision() for r in results] == list(zip(trace.expected_accepted.tolist(),
                                                       trace.expected_token.tolist()))


@needs_verilator
@pytest.mark.parametrize("case", [c for c in CASES if c.cfg.lanes <= 8], ids=lambda c: c.name)
def test_batch_driver_equals_pymtl3_import(case):
    """The C++ batch driver and pymtl3's Verilator import run the same Verilog: identical
    results and cycle counts (and results under random stalls equal FL)."""
    from hades.rtl.batch import run_batch
    rounds = list(synthetic_trace(case.spec).rounds())
    batch = run_batch(case.cfg, rounds, case.src_stall, case.sink_stall, seed=5)
    if case.stall_free:
        assert batch == run_rounds("rtl", case.cfg, rounds)
    assert [r.decision() for r in batch] == [verify_round(r, case.cfg.row_sum, case.cfg.uniform_bits).decision()
                                           for r in rounds]


def test_scan_tail_visible_when_rejecting_the_last_draft(level, sim_options):
    """Rejecting the last draft with the residual mass in the row's last word: the scan runs
    the whole row after the test, two cycles past the bonus row (pinned numbers from the
    cycle accounting in docs/ARCHITECTURE.md: k_last = 1 + 3*16 = 49, result at 53)."""
    from hades.traces.synthetic import make_round
    cfg = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)
    M = cfg.row_sum
    p = np.zeros((1, 64), np.int64)
    p[0, 0] = M
    q = np.zeros((2, 64), np.int64)
    q[:, 63] = M
    rnd = make_round(q, p, [0], [0], 12345)
    (res,) = run_rounds(level, cfg, [rnd], sim_options)
    assert res.decision() == (0, 63)
    if level != "fl":
        assert (res.cycles, res.latency) == (54, 4)


@settings(max_examples=15, deadline=None)
@given(lane_bits=st.integers(1, 3), extra_vocab=st.integers(1, 60), gamma_max=st.integers(1, 5),
       prob_bits=st.integers(4, 16), uniform_bits=st.integers(8, 32), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_property_random_configurations_pure_python_rtl(lane_bits, extra_vocab, gamma_max, prob_bits,
                                                        uniform_bits, seed, data):
    """Fully random small configurations (every parameter drawn), through the pure-Python RTL
    simulation (no build per configuration), checked against FL and the CL cycle model."""
    lanes = 1 << lane_bits
    cfg = VerifierConfig(lanes=lanes, vocab_max=lanes + extra_vocab, gamma_max=gamma_max,
                         prob_bits=prob_bits, uniform_bits=uniform_bits)
    rng = np.random.default_rng(seed)
    rounds = [random_round(rng, data.draw(st.integers(2, cfg.vocab_max), label="vocab"),
                           data.draw(st.integers(0, gamma_max), label="gamma"), prob_bits, uniform_bits,
                           greedy=data.draw(st.booleans(), label="greedy"),
                           flavour=data.draw(st.sampled_from(FLAVOURS), label="flavour"))
              for _ in range(2)]
    from hades.sim.run import SimOptions
    check_rounds("rtl", cfg, rounds, SimOptions(backend="python"))
