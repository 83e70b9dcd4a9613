"""LogitVerifierCL: the logit block's FL outputs plus the schedule of hades.cl.logit_timing;
each message leaves the component at the cycle the RTL would present it (a draft token from
the cycle it is held, the result from the cycle it is valid).

logit_timed_results is the one "FL decisions + CL timing" function for logit rounds: the CL
component, `hades verify --level cl` on v2 traces, the level comparison and the benchmarks
and sweeps go through it."""
from __future__ import annotations

import dataclasses

import numpy as np

from hades.cl.logit_timing import draft_token_cycles, logit_round_timing
from hades.cl.timing import TimingConfig
from hades.fl.stream_model import LogitStreamModel
from hades.fl.verifier import logit_block_output
from hades.logit_protocol import DraftToken, LogitRoundOutput, check_logit_round, filter_flags, side_filter_flags


class LogitVerifierCL(LogitStreamModel):

    def construct(s, cfg, timing=None):
        s.timing = timing if timing is not None else TimingConfig(hw=cfg)
        LogitStreamModel.construct(s, cfg)

    def draft_timing(s, row, tokens):
        vocab = len(row.logits)
        flags = side_filter_flags(row.params, vocab, not row.greedy) + (False, False)
        held, latency = draft_token_cycles(s.timing, [row.gamma], vocab, row.greedy, [tokens], [flags])
        return int(held[0, row.slot]), int(latency[0, row.slot])

    def evaluate(s, rnd):
        return logit_timed_results(s.timing, [rnd])[0]


def logit_timed_results(tc: TimingConfig, rounds, outputs: list[LogitRoundOutput] | None = None
                        ) -> list[LogitRoundOutput]:
    """The FL outputs of every round (hades.fl.verifier.logit_block_output, or the given
    untimed ones) with the CL cycles and latency of each draft message and of the result,
    timed vectorised over all rounds. `rounds` may be a generator: each round is held only while
    it is verified. Rounds the block cannot carry (V, gamma, parameters, top-k / top-p:
    check_logit_round) raise TraceError."""
    W, U = tc.hw.prob_bits, tc.hw.uniform_bits
    shapes, fl, flags = [], [], []
    for i, rnd in enumerate(rounds):
        check_logit_round(tc.hw, rnd, f"round {i}")
        shapes.append((rnd.gamma, rnd.vocab_size, rnd.greedy, rnd.onehot_draft))
        flags.append(filter_flags(rnd))
        fl.append(outputs[i] if outputs is not None else logit_block_output(rnd, W, U, where=f"round {i}"))
    R = len(shapes)
    if outputs is not None and len(outputs) != R:
        raise ValueError(f"{len(outputs)} outputs for {R} rounds")
    G = max((g for g, *_ in shapes), default=0)
    tokens = np.zeros((R, G), np.int64)
    for i, out in enumerate(fl):
        for d in out.drafts:
            tokens[i, d.slot] = d.token
    gamma, vocab, greedy, onehot = (np.array(c) for c in zip(*shapes)) if R else ([],) * 4
    t = logit_round_timing(tc, gamma, vocab, greedy, onehot, [o.result.accepted for o in fl],
                           [o.result.token for o in fl], tokens, flags)
    timed = []
    for i, out in enumerate(fl):
        drafts = tuple(DraftToken(d.slot, d.token, int(t.draft_cycles[i, d.slot]), int(t.draft_latency[i, d.slot]))
                       for d in out.drafts)
        result = dataclasses.replace(out.result, cycles=int(t.cycles[i]), latency=int(t.latency[i]))
        timed.append(LogitRoundOutput(drafts, result))
    return timed
