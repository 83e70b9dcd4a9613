"""VerifierCL: FL results plus the cycle accounting of hades.cl.timing; the result leaves
the component at the cycle the RTL would present it.

timed_results is the one "FL decisions + CL timing" function: every caller that needs what
the hardware decides and how long it takes (the CL component, `hades verify --level cl`,
the level comparison, benchmarks) goes through it."""
from __future__ import annotations

from hades.cl.timing import TimingConfig, round_timing
from hades.fl.stream_model import RoundStreamModel
from hades.fl.verifier import verify_round
from hades.round import Round, RoundResult


class VerifierCL(RoundStreamModel):

    def construct(s, cfg, timing=None):
        s.timing = timing if timing is not None else TimingConfig(hw=cfg)
        RoundStreamModel.construct(s, cfg)

    def evaluate(s, rnd):
        return timed_result(s.timing, rnd)


def timed_results(tc: TimingConfig, rounds, decisions: list[RoundResult] | None = None) -> list[RoundResult]:
    """The FL decision of every round (or the given ones) with its CL cycles and latency,
    timed vectorised over the rounds that share a vocabulary and a mode. `rounds` may be a
    generator: each round is held only while it is verified."""
    shapes, decided = [], []
    for i, rnd in enumerate(rounds):
        shapes.append((rnd.vocab_size, rnd.greedy, rnd.gamma))
        decided.append(decisions[i] if decisions is not None
                       else verify_round(rnd, tc.hw.row_sum, tc.hw.uniform_bits))
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, (vocab_size, greedy, _) in enumerate(shapes):
        groups.setdefault((vocab_size, greedy), []).append(i)
    out: list[RoundResult | None] = [None] * len(shapes)
    for (vocab_size, greedy), idx in groups.items():
        t = round_timing(tc, [shapes[i][2] for i in idx], vocab_size, greedy,
                         [decided[i].accepted for i in idx], [decided[i].token for i in idx])
        for k, i in enumerate(idx):
            out[i] = RoundResult(decided[i].accepted, decided[i].token, int(t.cycles[k]), int(t.latency[k]))
    return out


def timed_result(tc: TimingConfig, rnd: Round) -> RoundResult:
    return timed_results(tc, [rnd])[0]
