"""Random and adversarial rounds for property tests and differential fuzzing.

Every round is a pure function of its numpy Generator, so a failure reproduces from the
seed that hypothesis (or the fuzz command) prints.
"""
from __future__ import annotations

import numpy as np

from hades import numerics
from hades.config import VerifierConfig
from hades.round import Round

# The configurations of differential testing. The RTL property tests run the small ones (few
# Verilator builds, all cached); `hades fuzz` runs every one.
FUZZ_CONFIGS = (
    VerifierConfig(lanes=2, vocab_max=16, gamma_max=3, prob_bits=8, uniform_bits=12),
    VerifierConfig(lanes=4, vocab_max=64, gamma_max=4),
    VerifierConfig(lanes=8, vocab_max=40, gamma_max=5, prob_bits=10, uniform_bits=20),
    VerifierConfig(lanes=16, vocab_max=512, gamma_max=8),
)
PROPERTY_CONFIGS = FUZZ_CONFIGS[:3]

FLAVOURS = ("peaked", "equal", "disjoint", "one_hot", "last_index", "residual_one_entry", "near_tie")


def _random_row(rng, V, M):
    w = rng.dirichlet(np.full(V, 0.3))
    return numerics.quantize_rows(w, M)


def random_round(rng: np.random.Generator, vocab: int, gamma: int, prob_bits: int, uniform_bits: int,
                 greedy: bool = False, flavour: str = "peaked") -> Round:
    M = numerics.default_row_sum(prob_bits)
    V, U = vocab, uniform_bits
    q = np.stack([_random_row(rng, V, M) for _ in range(gamma + 1)])
    p = np.stack([_random_row(rng, V, M) for _ in range(gamma)]) if gamma else np.zeros((0, V), np.int64)
    if flavour == "equal":
        p = q[:gamma].copy()
    elif flavour == "disjoint" and V >= 2:
        for t in range(gamma):
            half = int(rng.integers(1, V))
            p[t] = 0
            p[t, :half] = numerics.quantize_rows(rng.random(half) + 0.01, M)
            q[t] = 0
            q[t, half:] = numerics.quantize_rows(rng.random(V - half) + 0.01, M)
    elif flavour == "one_hot":
        for row in list(q) + list(p):
            row[:] = 0
            row[int(rng.integers(V))] = M
    elif flavour == "last_index":
        q[:, :] = 0
        q[:, V - 1] = M
    elif flavour == "residual_one_entry" and V >= 2:
        for t in range(gamma):   # q = p except one unit moved onto a single entry
            q[t] = p[t]
            src = int(np.flatnonzero(p[t])[0])
            dst = int(rng.integers(V))
            q[t, src] -= 1
            q[t, dst] += 1
    x = np.array([numerics.sample_from_weights(p[t], int(rng.integers(0, 1 << U, dtype=np.uint64)), U)
                  for t in range(gamma)], np.int64)
    r_acc = rng.integers(0, 1 << U, size=gamma, dtype=np.uint64)   # U may be 64: never int64
    if flavour == "near_tie":
        # R*P[x] within one unit of Q[x]*2^U: the accept comparison at its boundary
        for t in range(gamma):
            px, qx = int(p[t, x[t]]), int(q[t, x[t]])
            r = min(((qx << U) // px) + int(rng.integers(-1, 2)), (1 << U) - 1)
            r_acc[t] = max(r, 0)
    extremes = [0, (1 << U) - 1]
    if rng.random() < 0.2 and gamma:
        r_acc[int(rng.integers(gamma))] = extremes[int(rng.integers(2))]
    r_sample = int(rng.integers(0, 1 << U, dtype=np.uint64)) if rng.random() > 0.2 else extremes[int(rng.integers(2))]
    return Round(greedy=greedy, draft_tokens=x, draft_probs=p.astype(np.int64), target_probs=q.astype(np.int64),
                 accept_uniforms=r_acc, sample_uniform=r_sample)


def random_rounds(rng: np.random.Generator, cfg: VerifierConfig, n: int, greedy_share: float = 0.25) -> list[Round]:
    """n rounds that fit cfg: vocabulary, gamma, mode and flavour all drawn from rng."""
    return [random_round(rng, int(rng.integers(2, cfg.vocab_max + 1)), int(rng.integers(0, cfg.gamma_max + 1)),
                         cfg.prob_bits, cfg.uniform_bits, greedy=bool(rng.random() < greedy_share),
                         flavour=FLAVOURS[int(rng.integers(len(FLAVOURS)))]) for _ in range(n)]
