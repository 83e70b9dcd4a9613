"""Cross-level assertions shared by the tests (the comparison itself is hades.sim.compare)."""
from __future__ import annotations

from hades.sim.compare import compare_levels
from hades.sim.run import run_rounds


def check_rounds(level, cfg, rounds, opts, stall_free=True):
    results = run_rounds(level, cfg, rounds, opts)
    assert len(results) == len(rounds)
    disagreements = compare_levels(level, cfg, rounds, results, stall_free)
    assert not disagreements, "\n".join(map(str, disagreements[:5]))
    return results
