"""VerifierFL: the golden function behind the verifier's stream interface (no timing)."""
from hades.fl.verifier import verify_round
from hades.fl.stream_model import RoundStreamModel


class VerifierFL(RoundStreamModel):

    def evaluate(s, rnd):
        return verify_round(rnd, s.cfg.row_sum, s.cfg.uniform_bits)
