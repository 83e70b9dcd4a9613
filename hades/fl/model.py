"""VerifierFL and LogitVerifierFL: the golden functions behind the blocks' stream interfaces
(no timing)."""
from hades.fl.stream_model import LogitStreamModel, RoundStreamModel
from hades.fl.verifier import logit_block_output, verify_round


class VerifierFL(RoundStreamModel):

    def evaluate(s, rnd):
        return verify_round(rnd, s.cfg.row_sum, s.cfg.uniform_bits)


class LogitVerifierFL(LogitStreamModel):

    def evaluate(s, rnd):
        return logit_block_output(rnd, s.cfg.prob_bits, s.cfg.uniform_bits)
