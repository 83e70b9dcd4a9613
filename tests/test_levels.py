"""The shared test table at every level: results bit-exact with the FL golden function on
every round; at CL and RTL the cycle counts equal the CL timing model's on every round
(at --level rtl that is the CL == RTL check)."""
from __future__ import annotations

import dataclasses

import pytest

from hades.cl.model import timed_result
from hades.cl.timing import TimingConfig
from hades.fl.verifier import verify_round
from hades.synthetic import synthetic_trace
from harness.cases import CASES
from harness.run import run_rounds


def check_rounds(level, cfg, rounds, opts, stall_free=True):
    results = run_rounds(level, cfg, rounds, opts)
    assert len(results) == len(rounds)
    tc = TimingConfig(hw=cfg)
    for i, (rnd, got) in enumerate(zip(rounds, results)):
        want = verify_round(rnd, cfg.row_sum, cfg.uniform_bits)
        assert got.decision() == want.decision(), f"round {i} (gamma {rnd.gamma}): {level} {got} != FL {want}"
        if level != "fl" and stall_free:
            model = timed_result(tc, rnd)
            assert (got.cycles, got.latency) == (model.cycles, model.latency), \
                f"round {i} (gamma {rnd.gamma}): {level} cycles/latency {got.cycles}/{got.latency} " \
                f"!= CL model {model.cycles}/{model.latency}"
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_table(level, sim_options, case):
    trace = synthetic_trace(case.spec)
    case.cfg.check_trace(trace)
    opts = dataclasses.replace(sim_options, src_stall=case.src_stall, sink_stall=case.sink_stall, seed=7)
    check_rounds(level, case.cfg, list(trace.rounds()), opts, case.stall_free)
