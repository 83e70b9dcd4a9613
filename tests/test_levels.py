"""The shared test table at every level: results bit-exact with the FL golden function on
every round; at CL and RTL the cycle counts equal the CL timing model's on every round
(at --level rtl that is the CL == RTL check)."""
from __future__ import annotations

import dataclasses

import pytest

from hades.synthetic import synthetic_trace
from harness.cases import CASES
from harness.checks import check_rounds


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_table(level, sim_options, case):
    trace = synthetic_trace(case.spec)
    case.cfg.check_trace(trace)
    opts = dataclasses.replace(sim_options, src_stall=case.src_stall, sink_stall=case.sink_stall, seed=7)
    check_rounds(level, case.cfg, list(trace.rounds()), opts, case.stall_free)
