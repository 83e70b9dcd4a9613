"""The golden model: one verification round, exactly as docs/NUMERICS.md states it."""
from __future__ import annotations

from hades import numerics
from hades.round import Round, RoundResult


def verify_round(rnd: Round, row_sum: int, uniform_bits: int) -> RoundResult:
    """Accept drafts while the integer accept test passes; emit the residual or bonus sample."""
    q, p = rnd.target_probs, rnd.draft_probs
    for t in range(rnd.gamma):
        x = int(rnd.draft_tokens[t])
        if rnd.greedy:
            ok = x == numerics.greedy_argmax(q[t])
        else:
            ok = numerics.accept(rnd.accept_uniforms[t], p[t, x], q[t, x], uniform_bits)
        if not ok:
            if rnd.greedy:
                return RoundResult(t, numerics.greedy_argmax(q[t]))
            return RoundResult(t, numerics.residual_sample(q[t], p[t], rnd.sample_uniform, uniform_bits))
    if rnd.greedy:
        return RoundResult(rnd.gamma, numerics.greedy_argmax(q[rnd.gamma]))
    return RoundResult(rnd.gamma, numerics.bonus_sample(q[rnd.gamma], rnd.sample_uniform, uniform_bits, row_sum))
