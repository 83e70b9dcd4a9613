"""The golden model: one verification round, exactly as docs/NUMERICS.md states it.

verify_round takes probability rows (sections 1-8); verify_weight_round takes weight rows
with their own sums (section 12), of which probability rows are the case Z = M;
verify_logit_round takes bf16 logit rows (sections 13-16) and turns them into weight rows.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from hades import numerics
from hades.errors import TraceError
from hades.logit_protocol import DraftToken, LogitRoundOutput, model_drafts
from hades.round import LogitRound, Round, RoundResult


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


def verify_weight_round(draft_tokens, p_rows, zp, q_rows, zq, accept_uniforms, sample_uniform: int,
                        uniform_bits: int) -> RoundResult:
    """A stochastic round on weight rows: P_t with sums ZP_t (t < gamma), Q_t with ZQ_t
    (t <= gamma). Accept while R_t * P_t[x_t] * ZQ_t < Q_t[x_t] * ZP_t * 2^U; at the first
    rejection j emit the residual sample of max(0, Q_j * ZP_j - P_j * ZQ_j); if all pass,
    the bonus sample of Q_gamma+1 with S = ZQ_gamma+1."""
    gamma = len(draft_tokens)
    for t in range(gamma):
        x = int(draft_tokens[t])
        if not numerics.weighted_accept(accept_uniforms[t], p_rows[t][x], zp[t], q_rows[t][x], zq[t], uniform_bits):
            return RoundResult(t, numerics.weighted_residual_sample(q_rows[t], zq[t], p_rows[t], zp[t],
                                                                    sample_uniform, uniform_bits))
    return RoundResult(gamma, numerics.weighted_bonus_sample(q_rows[gamma], zq[gamma], sample_uniform, uniform_bits))


def draft_tokens_from_logits(draft_logits, draft_params, draft_uniforms, weight_bits: int, uniform_bits: int,
                             greedy: bool = False, where: str | None = None) -> np.ndarray:
    """The draft token of each draft logit row [gamma, V] (int64 [gamma]).

    Stochastic: the draft sampler over the row's weights under draft_params,
    x_t = the smallest k with P_t[0] + ... + P_t[k] > (D_t * ZP_t) >> U. Greedy: the argmax
    over the converted logits (draft_params and draft_uniforms unused). Errors name
    "draft row t", after `where` when given (the trace reader passes "round i").
    """
    rows = np.asarray(draft_logits)
    out = np.empty(rows.shape[0], np.int64)
    for t in range(rows.shape[0]):
        what = f"draft row {t}" if where is None else f"{where}: draft row {t}"
        if greedy:
            out[t] = numerics.logit_argmax(rows[t], what)
        else:
            w, z = numerics.logit_weights(rows[t], draft_params, weight_bits, what)
            out[t] = numerics.draft_sample(w, z, _uniform(draft_uniforms[t], uniform_bits, what), uniform_bits)
    return out


def _uniform(value, uniform_bits: int, what: str) -> int:
    r = int(value)
    if not 0 <= r < (1 << uniform_bits):
        raise TraceError(f"{what}: uniform {r} is outside 0..2^{uniform_bits}-1")
    return r


def logit_weight_rows(rnd: LogitRound, weight_bits: int, uniform_bits: int, where: str = "round"):
    """The weight rows of a stochastic logit round, checked: (P, ZP, Q, ZQ) as lists.

    Target rows Q_1..Q_gamma+1 under target_params; draft rows under draft_params, or one-hot
    at x_t with ZP = 1 for onehot_draft. A model draft x_t that is not the draft sample of its
    row and D_t is refused (TraceError naming `where` and the slot), since the ratio's P must
    be the distribution the draft was drawn from.
    """
    gamma, V = _check_shapes(rnd, where)
    q, zq = [], []
    for t in range(gamma + 1):
        w, z = numerics.logit_weights(rnd.target_logits[t], rnd.target_params, weight_bits, f"{where}: target row {t}")
        q.append(w)
        zq.append(z)
    p, zp = [], []
    for t in range(gamma):
        x = int(rnd.draft_tokens[t])
        if rnd.onehot_draft:
            w, z = numerics.onehot_draft_row(x, V)
        else:
            what = f"{where}: draft row {t}"
            w, z = numerics.logit_weights(rnd.draft_logits[t], rnd.draft_params, weight_bits, what)
            d = _uniform(rnd.draft_uniforms[t], uniform_bits, f"{where}: draft uniform of slot {t}")
            s = numerics.draft_sample(w, z, d, uniform_bits)
            if s != x:
                raise TraceError(f"{where}: draft slot {t}: token {x} is not the draft sample of its row "
                                 f"(D = {d} draws {s}); a model draft must come from the weights of its own "
                                 "draft row and parameters")
        p.append(w)
        zp.append(z)
    return p, zp, q, zq


def verify_logit_round(rnd: LogitRound, weight_bits: int, uniform_bits: int, where: str = "round") -> RoundResult:
    """The golden round on bf16 logit rows (NUMERICS.md sections 12-16).

    Greedy: accept while x_t is the argmax of target row t's converted logits, emit the argmax
    of Q_j or Q_gamma+1 (every live row is decoded and must be valid; parameters and uniforms
    unused). Stochastic: logit_weight_rows (which refuses a model draft that is not its row's
    draft sample), then verify_weight_round.
    """
    if rnd.greedy:
        gamma, _ = _check_shapes(rnd, where)
        best = [numerics.logit_argmax(rnd.target_logits[t], f"{where}: target row {t}") for t in range(gamma + 1)]
        if not rnd.onehot_draft:
            for t in range(gamma):
                numerics.logit_argmax(rnd.draft_logits[t], f"{where}: draft row {t}")
        for t in range(gamma):
            if int(rnd.draft_tokens[t]) != best[t]:
                return RoundResult(t, best[t])
        return RoundResult(gamma, best[gamma])
    p, zp, q, zq = logit_weight_rows(rnd, weight_bits, uniform_bits, where)
    ra = [_uniform(r, uniform_bits, f"{where}: accept uniform of slot {t}") for t, r in enumerate(rnd.accept_uniforms)]
    rs = _uniform(rnd.sample_uniform, uniform_bits, f"{where}: sample uniform")
    return verify_weight_round(rnd.draft_tokens, p, zp, q, zq, ra, rs, uniform_bits)


def _check_shapes(rnd: LogitRound, where: str) -> tuple[int, int]:
    gamma = rnd.gamma
    tl = np.asarray(rnd.target_logits)
    if tl.ndim != 2 or tl.shape[0] != gamma + 1 or tl.shape[1] < 1:
        raise TraceError(f"{where}: target_logits has shape {tl.shape}, expected ({gamma + 1}, V)")
    V = tl.shape[1]
    if not rnd.onehot_draft and np.asarray(rnd.draft_logits).shape != (gamma, V):
        raise TraceError(f"{where}: draft_logits has shape {np.asarray(rnd.draft_logits).shape}, "
                         f"expected ({gamma}, {V})")
    for t in range(gamma):
        if not 0 <= int(rnd.draft_tokens[t]) < V:
            raise TraceError(f"{where}: draft slot {t}: token {int(rnd.draft_tokens[t])} is outside 0..{V - 1}")
    if not rnd.greedy:
        n_acc, n_d = len(rnd.accept_uniforms), len(rnd.draft_uniforms)
        if n_acc != gamma or (not rnd.onehot_draft and n_d != gamma):
            raise TraceError(f"{where}: {n_acc} accept and {n_d} draft uniforms for gamma = {gamma}")
    return gamma, V


def logit_block_round(rnd: LogitRound, weight_bits: int, uniform_bits: int, where: str = "round"):
    """What the logit block computes for a round as it streams (docs/ARCHITECTURE.md "The logit
    block"): the draft tokens (sampled from the draft rows for model drafts, whatever the
    round's draft_tokens hold; the given ones for one-hot drafts) and the RoundResult of
    verify_logit_round on them. Returns (draft tokens int64 [gamma], RoundResult)."""
    tokens = np.asarray(rnd.draft_tokens, np.int64)
    if not rnd.onehot_draft and rnd.gamma > 0:
        tokens = draft_tokens_from_logits(rnd.draft_logits, rnd.draft_params, rnd.draft_uniforms, weight_bits,
                                          uniform_bits, greedy=rnd.greedy, where=where)
        rnd = dataclasses.replace(rnd, draft_tokens=tokens)
    return tokens, verify_logit_round(rnd, weight_bits, uniform_bits, where)


def logit_block_output(rnd: LogitRound, weight_bits: int, uniform_bits: int, where: str = "round") -> LogitRoundOutput:
    """logit_block_round as the block's messages, untimed: a DraftToken per slot of a
    model-drafted round (one-hot drafts return none), then the RoundResult."""
    tokens, result = logit_block_round(rnd, weight_bits, uniform_bits, where)
    drafts = tuple(DraftToken(t, int(x)) for t, x in enumerate(tokens)) if model_drafts(rnd) else ()
    return LogitRoundOutput(drafts, result)
