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
        gamma_max=G, meta=_synthetic_meta(TOOL_VERSION, _spec_fields(spec), spec_to_args(spec)))


def _synthetic_meta(tool: str, spec_fields: dict, args: str, **extra) -> dict:
    """The meta of a synthetic trace (v1 or v2): its tool, the spec and the command that
    regenerates it."""
    return {"source": "synthetic", "tool": tool, **extra, "spec": spec_fields,
            "regenerate": "hades trace --synthetic " + args}


def _spec_fields(spec) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}


def _gamma_max_arg(spec) -> str:
    return f" --gamma-max {spec.gamma_max}" if spec.gamma_max is not None else ""


def spec_to_args(spec: SyntheticSpec) -> str:
    return (f"--trace-format 1 --vocab {spec.vocab_size} --rounds {spec.rounds}"
            f" --gamma {','.join(map(str, spec.gammas))}"
            f" --mode {spec.mode} --seed {spec.seed} --prob-bits {spec.prob_bits}"
            f" --uniform-bits {spec.uniform_bits}"
            + _gamma_max_arg(spec))


def make_round(q_rows, p_rows, draft_tokens, accept_uniforms, sample_uniform, greedy=False) -> Round:
    """Build an in-memory Round from integer arrays (for tests and property checks)."""
    return Round(greedy=greedy,
                 draft_tokens=np.asarray(draft_tokens, np.int64).reshape(-1),
                 draft_probs=np.asarray(p_rows, np.int64).reshape(len(draft_tokens), np.shape(q_rows)[-1]),
                 target_probs=np.asarray(q_rows, np.int64),
                 accept_uniforms=uniform_array(np.asarray(accept_uniforms).reshape(-1)
                                               if isinstance(accept_uniforms, np.ndarray) else list(accept_uniforms)),
                 sample_uniform=int(sample_uniform))


# ---- v2: bf16 logit rows (docs/TRACE_FORMAT.md "Trace file v2") --------------------------------

LOGIT_TOOL_VERSION = "hades-synthetic-logits/1"
MIN_P_CHOICES = (0.0, 0.05, 0.1)


@dataclass(frozen=True)
class LogitSyntheticSpec:
    """LLM-like logit rounds: Gaussian logits (sd 1.5-3.5 per row) with a few boosted tokens;
    the draft is the target scaled by draft_power plus Gaussian noise. Per round, drawn from
    the seed: greedy (probability greedy_share), one-hot drafts (onehot_share; tokens are the
    target's argmax with probability 0.6, else uniform, as a prompt-lookup draft), a masked
    token set (mask_share; 1-10 % of V masked in every row of the round, -inf), the
    temperature in temperature_range and min-p from min_ps (the same for both sides). With
    logit_step > 0 every finite logit is rounded to a multiple of logit_step before the bf16
    encoding, so that many entries of a row tie (the row maximum among them).

    Top-k and top-p (NUMERICS.md section 15), off by default (the rounds, and the random
    numbers drawn, are then those of a spec without these fields): top_ks and top_ps name the
    choices drawn per round (top_k 0..2^24, 0 = off; top_p a fraction in (0, 1], 1 = off),
    for both sides unless draft_top_ks / draft_top_ps give the draft side choices of its own,
    drawn separately."""
    vocab_size: int = 512
    rounds: int = 16
    gammas: tuple[int, ...] = (4,)
    gamma_max: int | None = None
    seed: int = 0
    weight_bits: int = 16
    uniform_bits: int = 32
    greedy_share: float = 0.25
    onehot_share: float = 0.25
    mask_share: float = 0.25
    temperature_range: tuple[float, float] = (0.5, 1.5)
    min_ps: tuple[float, ...] = MIN_P_CHOICES
    draft_power: float = 0.9
    draft_noise: float = 0.8
    logit_step: float = 0.0
    top_ks: tuple[int, ...] = ()
    top_ps: tuple[float, ...] = ()
    draft_top_ks: tuple[int, ...] | None = None
    draft_top_ps: tuple[float, ...] | None = None

    def check(self):
        SyntheticSpec(vocab_size=self.vocab_size, rounds=self.rounds, gammas=self.gammas,
                      gamma_max=self.gamma_max, uniform_bits=self.uniform_bits).check()
        lo, hi = numerics.WEIGHT_BITS_RANGE
        if not lo <= self.weight_bits <= hi:
            raise ConfigError(f"weight bits must be in {lo}..{hi}, got {self.weight_bits}")
        for name in ("greedy_share", "onehot_share", "mask_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {v}")
        t0, t1 = self.temperature_range
        if not 0 < t0 <= t1:
            raise ConfigError(f"temperature_range must be 0 < low <= high, got {self.temperature_range}")
        numerics.inverse_temperature(t0)
        numerics.inverse_temperature(t1)
        if not self.min_ps:
            raise ConfigError("min_ps must name at least one min-p")
        for p in self.min_ps:
            numerics.fraction_units(p)
        limits.SHAPE.check(self.logit_step, "logit_step")
        for name, limit in (("top_ks", limits.TOP_K), ("top_ps", limits.TOP_P), ("draft_top_ks", limits.TOP_K),
                            ("draft_top_ps", limits.TOP_P)):
            values = getattr(self, name)
            if values is None or (not name.startswith("draft_") and len(values) == 0):
                continue   # off (top_ks, top_ps) or the target's (draft_top_ks, draft_top_ps)
            values = limits.check_values(values, limit, name)
            if limit is limits.TOP_P:
                for v in values:
                    numerics.top_p_units(v)
            object.__setattr__(self, name, values)

    def meta_fields(self) -> dict:
        """The spec as the trace's meta records it; the filter fields only when set, so the
        meta of a trace without them is what it was before they existed."""
        d = _spec_fields(self)
        for name in FILTER_FIELDS:
            if d[name] in ([], None):
                del d[name]
        return d


FILTER_FIELDS = ("top_ks", "top_ps", "draft_top_ks", "draft_top_ps")


def _draw_filters(rng, spec: LogitSyntheticSpec) -> tuple[tuple[int, float], tuple[int, float]]:
    """((top_k, top_p) of the target, (top_k, top_p) of the draft) of one round; nothing is
    drawn for a field left off, so a spec without filters draws the numbers it always drew."""
    def pick(choices, default):
        return choices[int(rng.integers(len(choices)))] if choices else default
    target = (pick(spec.top_ks, 0), pick(spec.top_ps, 1.0))
    draft = (pick(spec.draft_top_ks, 0) if spec.draft_top_ks is not None else target[0],
             pick(spec.draft_top_ps, 1.0) if spec.draft_top_ps is not None else target[1])
    return target, draft


def _llm_like_logits(rng, n, V):
    sd = rng.uniform(1.5, 3.5, size=(n, 1))
    z = rng.standard_normal((n, V)) * sd
    for i in range(n):
        k = int(rng.integers(1, 6))
        z[i, rng.choice(V, size=min(k, V), replace=False)] += rng.uniform(3.0, 8.0, size=min(k, V))
    return z


def synthetic_logit_trace(spec: LogitSyntheticSpec):
    """A v2 LogitTrace whose every random choice comes from spec.seed (recorded in meta): the
    draft tokens of model-drafted rounds are drawn by the draft sampler from their draft
    uniforms (NUMERICS.md section 12), the expected decisions come from verify_logit_round."""
    from hades.fl.verifier import draft_tokens_from_logits, verify_logit_round
    from hades.round import LogitRound
    from hades.traces.format_v2 import logit_trace_from_rounds
    spec.check()
    rng = np.random.default_rng(spec.seed)
    V, R, W, U = spec.vocab_size, spec.rounds, spec.weight_bits, spec.uniform_bits
    G = spec.gamma_max if spec.gamma_max is not None else max(spec.gammas)

    def uniform(size=None):
        return rng.integers(0, 1 << U, size=size, dtype=np.uint64)

    rounds = []
    for r in range(R):
        g = spec.gammas[r % len(spec.gammas)]
        greedy = bool(rng.random() < spec.greedy_share)
        onehot = bool(rng.random() < spec.onehot_share)
        temperature = float(rng.uniform(*spec.temperature_range))
        min_p = float(spec.min_ps[int(rng.integers(len(spec.min_ps)))])
        (top_k, top_p), (d_top_k, d_top_p) = _draw_filters(rng, spec)
        params = tuple(numerics.sampling_params(temperature, top_k, top_p, min_p))
        d_params = tuple(numerics.sampling_params(temperature, d_top_k, d_top_p, min_p))
        zq = _llm_like_logits(rng, g + 1, V)
        zp = spec.draft_power * zq[:g] + spec.draft_noise * rng.standard_normal((g, V))
        if V > 1 and rng.random() < spec.mask_share:   # a grammar / bad-word mask over the round's rows
            n_mask = max(1, int(rng.uniform(0.01, 0.1) * V))
            masked = rng.choice(V, size=min(n_mask, V - 1), replace=False)
            zq[:, masked] = -np.inf
            zp[:, masked] = -np.inf
        if spec.logit_step > 0:   # ties: every finite logit on a grid (-inf stays -inf)
            zq, zp = (np.round(z / spec.logit_step) * spec.logit_step for z in (zq, zp))
        q_bits, p_bits = numerics.encode_bf16(zq), numerics.encode_bf16(zp)
        d_u = uniform(g)
        if onehot:   # drafts without a draft model: the target's argmax or a random token
            best = numerics.logit_argmax(q_bits[:g]) if g else np.zeros(0, np.int64)
            tokens = np.where(rng.random(g) < 0.6, best, rng.integers(0, V, size=g)).astype(np.int64)
            d_u = np.zeros(g, np.uint64)
            p_bits = np.zeros((g, V), np.uint16)
        else:
            tokens = draft_tokens_from_logits(p_bits, d_params, d_u, W, U, greedy=greedy)
        rounds.append(LogitRound(greedy=greedy, onehot_draft=onehot, draft_tokens=tokens, draft_logits=p_bits,
                                 target_logits=q_bits, draft_params=d_params, target_params=params,
                                 draft_uniforms=d_u, accept_uniforms=uniform(g), sample_uniform=int(uniform())))
    decisions = [verify_logit_round(rnd, W, U, where=f"round {i}").decision() for i, rnd in enumerate(rounds)]
    return logit_trace_from_rounds(
        rounds, decisions, vocab_size=V, weight_bits=W, uniform_bits=U, gamma_max=G,
        meta=_synthetic_meta(LOGIT_TOOL_VERSION, spec.meta_fields(), logit_spec_to_args(spec), seed=spec.seed))


def logit_spec_to_args(spec: LogitSyntheticSpec) -> str:
    return (f"--trace-format 2 --vocab {spec.vocab_size} --rounds {spec.rounds}"
            f" --gamma {','.join(map(str, spec.gammas))} --seed {spec.seed} --prob-bits {spec.weight_bits}"
            f" --uniform-bits {spec.uniform_bits} --greedy-share {spec.greedy_share!r}"
            f" --onehot-share {spec.onehot_share!r}"
            + _gamma_max_arg(spec))


def random_logit_rounds(rng: np.random.Generator, cfg, n: int) -> list:   # cfg: a VerifierConfig
    """n logit rounds for cfg: a LogitSyntheticSpec with its knobs drawn from rng (V anywhere in
    2..vocab_max, every gamma, the shares of greedy / one-hot / masked rounds, temperatures
    0.3..3, min-p up to 0.5, quantised logits for ties in half the batches, top-k and top-p per
    round from choices drawn per batch (off, 1, any k up to V + 1; off, one unit, any p), the
    draft side its own choices in half the batches)."""
    V = int(rng.integers(2, cfg.vocab_max + 1))
    lo = float(rng.uniform(0.3, 1.5))
    top_ks = (0, 1, int(rng.integers(1, V + 2)))
    top_ps = (1.0, 1 / 65536, float(rng.uniform(0.05, 1.0)))
    own = rng.random() < 0.5
    draft_top_ks = (0, int(rng.integers(1, V + 2))) if own else None
    draft_top_ps = (1.0, float(rng.uniform(0.05, 1.0))) if own else None
    spec = LogitSyntheticSpec(
        vocab_size=V, rounds=n, gammas=tuple(int(g) for g in rng.integers(0, cfg.gamma_max + 1, size=4)),
        gamma_max=cfg.gamma_max, seed=int(rng.integers(1 << 31)), weight_bits=cfg.prob_bits,
        uniform_bits=cfg.uniform_bits, greedy_share=float(rng.uniform(0, 0.5)), onehot_share=float(rng.uniform(0, 0.5)),
        mask_share=float(rng.uniform(0, 0.5)), temperature_range=(lo, float(rng.uniform(lo, 3.0))),
        min_ps=(0.0, float(rng.uniform(0, 0.5))), logit_step=float(rng.choice([0.0, 0.5])), top_ks=top_ks,
        top_ps=top_ps, draft_top_ks=draft_top_ks, draft_top_ps=draft_top_ps)
    trace = synthetic_logit_trace(spec)
    return [trace.round(i) for i in range(trace.num_rounds)]
