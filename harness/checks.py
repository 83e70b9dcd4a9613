"""Cross-level assertions shared by the tests (the comparison itself is hades.sim.compare)."""
from __future__ import annotations

from hades.sim.compare import compare_levels, compare_logit_levels
from hades.sim.run import run_logit_rounds, run_rounds


def check_rounds(level, cfg, rounds, opts, stall_free=True):
    results = run_rounds(level, cfg, rounds, opts)
    assert len(results) == len(rounds)
    disagreements = compare_levels(level, cfg, rounds, results, stall_free)
    assert not disagreements, "\n".join(map(str, disagreements[:5]))
    return results


def check_logit_rounds(level, cfg, rounds, opts, stall_free=True):
    """The logit block at `level`: results and draft tokens as FL (and the trace's drafts); at
    CL and RTL the counters of every message as the CL schedule."""
    outputs = run_logit_rounds(level, cfg, rounds, opts)
    assert len(outputs) == len(rounds)
    disagreements = compare_logit_levels(level, cfg, rounds, outputs, stall_free)
    assert not disagreements, "\n".join(map(str, disagreements[:5]))
    return outputs
