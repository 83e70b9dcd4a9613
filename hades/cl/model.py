"""VerifierCL: FL results plus the cycle accounting of hades.cl.timing; the result leaves
the component at the cycle the RTL would present it."""
from hades.cl.timing import TimingConfig, round_timing
from hades.fl.verifier import verify_round
from hades.round import RoundResult
from hades.fl.stream_model import RoundStreamModel


class VerifierCL(RoundStreamModel):

    def construct(s, cfg, timing=None):
        s.timing = timing if timing is not None else TimingConfig(hw=cfg)
        RoundStreamModel.construct(s, cfg)

    def evaluate(s, rnd):
        return timed_result(s.timing, rnd)


def timed_result(tc: TimingConfig, rnd) -> RoundResult:
    res = verify_round(rnd, tc.hw.row_sum, tc.hw.uniform_bits)
    t = round_timing(tc, [rnd.gamma], rnd.vocab_size, rnd.greedy, [res.accepted], [res.token])
    return RoundResult(res.accepted, res.token, int(t.cycles[0]), int(t.latency[0]))
