"""Cross-level assertions shared by the tests and the fuzz command."""
from __future__ import annotations

from hades.cl.model import timed_result
from hades.cl.timing import TimingConfig
from hades.fl.verifier import verify_round
from hades.sim.run import run_rounds


def check_rounds(level, cfg, rounds, opts, stall_free=True):
    results = run_rounds(level, cfg, rounds, opts)
    assert len(results) == len(rounds)
    tc = TimingConfig(hw=cfg)
    for i, (rnd, got) in enumerate(zip(rounds, results)):
        want = verify_round(rnd, cfg.row_sum, cfg.uniform_bits)
        assert got.decision() == want.decision(), f"round {i} (gamma {rnd.gamma}): {level} {got} != FL {want}"
        if level != "fl" and not stall_free:
            # input stalls only ever lengthen a round (the scan tail may absorb some of them)
            model = timed_result(tc, rnd)
            assert got.cycles >= model.cycles, f"round {i}: {got.cycles} cycles under stalls < CL {model.cycles}"
        if level != "fl" and stall_free:
            model = timed_result(tc, rnd)
            assert (got.cycles, got.latency) == (model.cycles, model.latency), \
                f"round {i} (gamma {rnd.gamma}): {level} cycles/latency {got.cycles}/{got.latency} " \
                f"!= CL model {model.cycles}/{model.latency}"
    return results
