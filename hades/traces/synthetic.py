"""Synthetic decode traces with LLM-like peaked distributions, reproducible from a seed.

Each target row is a Zipf-shaped distribution over a random permutation of the vocabulary
(a few dominant tokens, a long tail), sharpened or flattened by a per-row temperature. The
draft row is the target raised to a power with log-normal noise: it shares the head with the
target but misranks part of it, which gives acceptance rates in the range seen with real
draft/target pairs (about 0.5 to 0.8 per token at the defaults).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hades import limits, numerics
from hades.errors import ConfigError
from hades.fl.verifier import verify_round
from hades.round import Round, uniform_array
from hades.traces.format import Trace, trace_from_rounds

TOOL_VERSION = "hades-synthetic/1"


@dataclass(frozen=True)
class SyntheticSpec:
    vocab_size: int = 512
    rounds: int = 16
    gammas: tuple[int, ...] = (4,)       # round i uses gammas[i % len(gammas)]
    gamma_max: int | None = None         # G of the file; default max(gammas)
    mode: str = "stochastic"
    seed: int = 0
    prob_bits: int = 16
    uniform_bits: int = 32
    zipf_exponent: float = 1.1
    draft_noise: float = 1.0             # log-normal noise on the draft logits
    draft_power: float = 0.8             # draft = target ** power (flatter than target)

    def check(self):
        """Refuse what no hardware configuration could verify (ranges: hades/limits.py)."""
        limits.check_fields(self, {"vocab_size": limits.VOCAB_SIZE, "rounds": limits.ROUNDS, "seed": limits.SEED,
                                   "gamma_max": limits.GAMMA_MAX, "prob_bits": limits.PROB_BITS,
                                   "uniform_bits": limits.TRACE_UNIFORM_BITS, "zipf_exponent": limits.SHAPE,
                                   "draft_noise": limits.SHAPE, "draft_power": limits.SHAPE},
                            optional=("gamma_max",))
        object.__setattr__(self, "gammas", limits.check_values(self.gammas, limits.GAMMA, "gammas"))
        if self.gamma_max is not None and self.gamma_max < max(self.gammas):
            raise ConfigError(f"gamma_max {self.gamma_max} below max(gammas) {max(self.gammas)}")
        limits.check_mode(self.mode)
        limits.check_trace_size(self.rounds, self.gamma_max if self.gamma_max is not None else max(self.gammas),
                                self.vocab_size)


def _target_logits(rng, n, V, zipf):
    ranks = np.arange(1, V + 1, dtype=np.float64)
    base = -zipf * np.log(ranks)
    temp = rng.uniform(0.5, 1.5, size=(n, 1))
    logits = np.empty((n, V))
    for i in range(n):
        logits[i] = base[rng.permutation(V)]
    return logits / temp


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def synthetic_trace(spec: SyntheticSpec) -> Trace:
    spec.check()
    rng = np.random.default_rng(spec.seed)
    V, R = spec.vocab_size, spec.rounds
    G = spec.gamma_max if spec.gamma_max is not None else max(spec.gammas)
    M = numerics.default_row_sum(spec.prob_bits)
    U = spec.uniform_bits

    def uniform(size=None):
        return rng.integers(0, 1 << U, size=size, dtype=np.uint64)

    rounds = []
    for r in range(R):
        g = spec.gammas[r % len(spec.gammas)]
        zq = _target_logits(rng, g + 1, V, spec.zipf_exponent)
        q = numerics.quantize_rows(_softmax(zq), M)
        zp = spec.draft_power * zq[:g] + spec.draft_noise * rng.standard_normal((g, V))
        p = numerics.quantize_rows(_softmax(zp), M)
        # drafts are drawn from the quantised row itself, with the shared integer sampler
        tokens = np.array([numerics.sample_from_weights(p[t], int(uniform()), U) for t in range(g)], np.int64)
        accept_u = uniform(g)   # uint64: U may be 64, so never int64
        rounds.append(Round(greedy=spec.mode == "greedy", draft_tokens=tokens, draft_probs=p, target_probs=q,
                            accept_uniforms=accept_u, sample_uniform=int(uniform())))
    decisions = [verify_round(rnd, M, U).decision() for rnd in rounds]
    return trace_from_rounds(
        rounds, decisions, mode=spec.mode, vocab_size=V, row_sum=M, prob_bits=spec.prob_bits, uniform_bits=U,
        gamma_max=G, meta={"source": "synthetic", "tool": TOOL_VERSION,
                           "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()},
                           "regenerate": "hades trace --synthetic " + spec_to_args(spec)})


def spec_to_args(spec: SyntheticSpec) -> str:
    return (f"--vocab {spec.vocab_size} --rounds {spec.rounds} --gamma {','.join(map(str, spec.gammas))}"
            f" --mode {spec.mode} --seed {spec.seed} --prob-bits {spec.prob_bits}"
            f" --uniform-bits {spec.uniform_bits}"
            + (f" --gamma-max {spec.gamma_max}" if spec.gamma_max is not None else ""))


def make_round(q_rows, p_rows, draft_tokens, accept_uniforms, sample_uniform, greedy=False) -> Round:
    """Build an in-memory Round from integer arrays (for tests and property checks)."""
    return Round(greedy=greedy,
                 draft_tokens=np.asarray(draft_tokens, np.int64).reshape(-1),
                 draft_probs=np.asarray(p_rows, np.int64).reshape(len(draft_tokens), np.shape(q_rows)[-1]),
                 target_probs=np.asarray(q_rows, np.int64),
                 accept_uniforms=uniform_array(np.asarray(accept_uniforms).reshape(-1)
                                               if isinstance(accept_uniforms, np.ndarray) else list(accept_uniforms)),
                 sample_uniform=int(sample_uniform))
