"""Software speculative decoding with the project's integer numerics (docs/NUMERICS.md).

One round with gamma drafts:
1. the draft model proposes x_1..x_gamma one token at a time (KV cache); each draft row is
   softmax(logits / temperature) in float64, quantised with numerics.quantize_rows to sum to
   M = 2^W - 1, and x_t is drawn *from that quantised row* with numerics.sample_from_weights
   and a U-bit integer uniform (greedy: its argmax);
2. the target scores all gamma drafts in one forward pass, giving q_1..q_{gamma+1}, quantised
   the same way;
3. the golden verifier hades.fl.verifier.verify_round decides (accepted n, token y);
4. x_1..x_n and y are emitted and both KV caches are cropped back to the accepted prefix.

gamma = 0 is plain autoregressive decoding of the target through the same path (the
"bonus" sample from q_1). Uniforms come from one seeded numpy Generator in a fixed order per
round (gamma draft uniforms, gamma accept uniforms, one sample uniform), so a run is a pure
function of (models, prompt, config). Greedy rounds draw no uniforms; their trace entries are 0.

Every round can be recorded with full-width rows (V = the logits width) and turned into a
trace file v1 with trace_from_decode.

With trace_format = 2 the rows are the raw logits as bf16 (torch's bfloat16 of the float
logits) and every step uses the logit numerics of NUMERICS.md sections 12-16, so that the
software path and the v2 file agree on every round: x_t = numerics.draft_sample over
numerics.logit_weights of the draft's bf16 row under the draft's (k, top_k, top_p, min_p)
(greedy: numerics.logit_argmax), and the decision is hades.fl.verifier.verify_logit_round,
whose target rows use the target's (k, top_k, top_p, min_p) (NUMERICS.md section 15: the
emitted tokens follow the filtered target rows). Both sides share k and min_p; top-k and
top-p are the same for both unless the draft has its own (draft_top_k, draft_top_p).
The uniforms are drawn in the same order as for v1.

With lookup_ngram set the drafts come from prompt lookup (hades.llm.lookup.propose: the
tokens that followed the most recent earlier occurrence of the context's longest matching
suffix n-gram) instead of a draft model: up to gamma of them per round, possibly none, as
one-hot rows (v2: onehot_draft, P one-hot at x_t with ZP = 1; v1: the one-hot row scaled to
M, which verify_round decides identically, NUMERICS.md section 12). No draft model runs and
no draft uniforms are drawn (their trace entries are 0); a round's recorded gamma is the
number of tokens proposed.

With gamma_policy set (hades.llm.adaptive: CostAwareGamma for `--gamma auto`, HeuristicGamma for
`--gamma heuristic`) a run-time controller chooses each round's gamma from the previous rounds'
outcomes instead of the gammas cycle (prompt lookup: the most tokens the lookup may propose); it
is a pure function of the accepted counts and of its parameters, so the run stays a pure function
of (models, prompt, config). The cost-aware controller's costs (a further scored token, a draft,
in target steps) are measured once before decoding by measure_costs when the config does not
give them (outside the timed loop); the decoder's config then carries them.
"""
from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from hades import limits, numerics
from hades.errors import ConfigError
from hades.paths import swapped
from hades.fl.verifier import verify_logit_round, verify_round
from hades.llm import lookup
from hades.llm.adaptive import CostAwareGamma, GammaPolicy
from hades.round import LogitRound, Round
from hades.traces.format import trace_from_rounds

TOOL_VERSION = "hades-specdec/1"


@dataclass(frozen=True)
class DecodeConfig:
    """Parameters of one speculative decoding run.

    gammas          drafts per round; round i uses gammas[i % len(gammas)] (prompt lookup: at most
                    that many, fewer where the lookup finds fewer)
    mode            "stochastic" or "greedy"; temperature 0 also means greedy
    temperature     divides the logits before the softmax (greedy rows use 1 when it is 0)
    max_new_tokens  stop once at least this many tokens were emitted (None: no limit)
    max_rounds      stop after this many rounds (None: no limit); one of the two is needed
    stop_at_eos     stop after a round that emitted the tokenizer's end-of-sequence token
    record          keep every round's rows and uniforms (for traces; costs memory)
    trace_format    1: float softmax rows quantised to M (v1); 2: bf16 logit rows and the logit
                    numerics (v2); prob_bits is then W of the weight rows
    min_p           min-p filter of both sides (v2 only; 0 = off), a fraction in [0, 1]
    top_k, top_p    top-k (0..2^24, 0 = off) and top-p (a fraction in (0, 1], 1 = off) filters of
                    the target rows, and of the draft rows unless draft_top_k / draft_top_p
                    (None: the target's) say otherwise (v2 only; NUMERICS.md section 15)
    lookup_ngram    None: the pair's draft model proposes; (n_min, n_max): prompt-lookup drafts
                    (hades.llm.lookup) matching suffix n-grams of n_max down to n_min tokens
    gamma_policy    None: the gammas cycle; a hades.llm.adaptive controller (CostAwareGamma,
                    HeuristicGamma) picks every round's gamma and gammas is not used
    """
    gammas: tuple[int, ...] = (4,)
    mode: str = "stochastic"
    temperature: float = 1.0
    prob_bits: int = 16
    uniform_bits: int = 32
    seed: int = 0
    max_new_tokens: int | None = 64
    max_rounds: int | None = None
    stop_at_eos: bool = False
    record: bool = False
    trace_format: int = 1
    min_p: float = 0.0
    lookup_ngram: tuple[int, int] | None = None
    top_k: int = 0
    top_p: float = 1.0
    draft_top_k: int | None = None
    draft_top_p: float | None = None
    gamma_policy: GammaPolicy | None = None

    def check(self) -> None:
        """Ranges: hades/limits.py. prob_bits is the hardware's 2..24: a trace recorded at a wider
        W would be a valid file that no configuration can verify."""
        object.__setattr__(self, "gammas", limits.check_values(self.gammas, limits.GAMMA))
        limits.check_mode(self.mode)
        limits.check_fields(self, {"temperature": limits.TEMPERATURE, "prob_bits": limits.PROB_BITS,
                                   "uniform_bits": limits.TRACE_UNIFORM_BITS, "seed": limits.SEED,
                                   "max_new_tokens": limits.NEW_TOKENS, "max_rounds": limits.ROUNDS},
                            optional=("max_new_tokens", "max_rounds"))
        if self.max_new_tokens is None and self.max_rounds is None:
            raise ConfigError("give max_new_tokens or max_rounds (or both)")
        if self.trace_format not in (1, 2):
            raise ConfigError(f"trace format must be 1 or 2, got {self.trace_format!r}")
        if not 0.0 <= self.min_p <= 1.0:   # NaN fails too
            raise ConfigError(f"min_p must be in [0, 1], got {self.min_p}")
        limits.check_fields(self, {"top_k": limits.TOP_K, "top_p": limits.TOP_P, "draft_top_k": limits.TOP_K,
                                   "draft_top_p": limits.TOP_P}, optional=("draft_top_k", "draft_top_p"))
        filters = {"min-p": self.min_p != 0, "top-k": self.top_k != 0 or self.draft_top_k is not None,
                   "top-p": self.top_p != 1.0 or self.draft_top_p is not None}
        used = [name for name, on in filters.items() if on]
        if used and self.trace_format != 2:
            raise ConfigError(f"{used[0]} needs trace format 2 (the probability rows of v1 have no filters)")
        if self.trace_format == 2:   # ConfigError unless k fits 24 bits and top_p is at least one unit
            _ = (self.sampling_params, self.draft_sampling_params)
        if self.lookup_ngram is not None:
            object.__setattr__(self, "lookup_ngram", lookup.check_ngram(self.lookup_ngram))
        if self.gamma_policy is not None:
            if not isinstance(self.gamma_policy, GammaPolicy):
                raise ConfigError(f"gamma_policy must be a CostAwareGamma, a HeuristicGamma or None, "
                                  f"got {self.gamma_policy!r}")
            self.gamma_policy.check()

    @property
    def max_gamma(self) -> int:
        """The most drafts any round can have: the controller's gamma_max, or the largest of gammas."""
        return self.gamma_policy.gamma_max if self.gamma_policy is not None else max(self.gammas)

    @property
    def gamma_label(self) -> str:
        """How the run chooses gamma: 'auto:START..MAX', or the gammas as a list ('4', '2,4')."""
        return self.gamma_policy.label if self.gamma_policy is not None else ",".join(map(str, self.gammas))

    @property
    def lookup(self) -> bool:
        """Prompt-lookup drafts (no draft model)."""
        return self.lookup_ngram is not None

    @property
    def sampling_params(self) -> tuple[int, int, int, int]:
        """(k, top_k, top_p, min_p) of the target side for trace format 2 (T = 1 when greedy at T = 0)."""
        return tuple(numerics.sampling_params(self.row_temperature, self.top_k, self.top_p, self.min_p))

    @property
    def draft_sampling_params(self) -> tuple[int, int, int, int]:
        """(k, top_k, top_p, min_p) of the draft side: the target's, with draft_top_k / draft_top_p where set."""
        top_k = self.top_k if self.draft_top_k is None else self.draft_top_k
        top_p = self.top_p if self.draft_top_p is None else self.draft_top_p
        return tuple(numerics.sampling_params(self.row_temperature, top_k, top_p, self.min_p))

    @property
    def greedy(self) -> bool:
        return self.mode == "greedy" or self.temperature == 0

    @property
    def trace_mode(self) -> str:
        return "greedy" if self.greedy else "stochastic"

    @property
    def row_temperature(self) -> float:
        """Temperature of the recorded rows: greedy at temperature 0 records plain softmax."""
        return self.temperature if self.temperature > 0 else 1.0

    @property
    def row_sum(self) -> int:
        return numerics.default_row_sum(self.prob_bits)


@dataclass
class Timings:
    """Wall time in seconds per phase of the decode loop."""
    draft_forward: float = 0.0    # draft model forward passes (prefill included)
    draft_rows: float = 0.0       # draft softmax + quantisation + sampling of the drafts
    target_forward: float = 0.0   # target model forward passes (prefill included)
    target_rows: float = 0.0      # target softmax + quantisation
    verify: float = 0.0           # verify_round
    other: float = 0.0            # cache roll-back, bookkeeping, recording
    total: float = 0.0

    @property
    def draft(self) -> float:
        """Everything the draft needs to propose tokens."""
        return self.draft_forward + self.draft_rows

    @property
    def target(self) -> float:
        return self.target_forward

    @property
    def verification(self) -> float:
        """Everything between the target's logits and the emitted tokens (what HADES offloads)."""
        return self.target_rows + self.verify

    def add(self, other: "Timings") -> None:
        for k in asdict(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def shares(self) -> dict[str, float]:
        t = self.total or 1.0
        return {"draft": self.draft / t, "target": self.target / t, "verification": self.verification / t,
                "other": max(0.0, 1.0 - (self.draft + self.target + self.verification) / t)}


@dataclass(frozen=True)
class RoundRecord:
    """One round as the verifier saw it (integer rows) and what it decided."""
    gamma: int
    draft_tokens: np.ndarray      # int64 [gamma]
    draft_probs: np.ndarray       # int64 [gamma, V]   (empty unless recorded)
    target_probs: np.ndarray      # int64 [gamma+1, V] (empty unless recorded)
    accept_uniforms: np.ndarray   # uint64 [gamma]
    sample_uniform: int
    accepted: int
    token: int
    logit_round: LogitRound | None = None   # trace format 2 with record: the round as verified


class AcceptanceStats:
    """Acceptance figures derived from the counts accepted, tested and drafted (shared by one
    decode run and by the totals `hades decode` sums over its prompts)."""

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted drafts / accept tests performed: the estimate of the per-token acceptance
        probability alpha (None when nothing was drafted, i.e. gamma = 0)."""
        return self.accepted / self.tested if self.tested else None

    @property
    def accepted_share(self) -> float | None:
        """Accepted drafts / proposed drafts (drafts after a rejection count as lost)."""
        return self.accepted / self.drafted if self.drafted else None


@dataclass
class DecodeResult(AcceptanceStats):
    prompt_tokens: list[int]
    new_tokens: list[int]
    rounds: list[RoundRecord] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)

    @property
    def num_rounds(self) -> int:
        return len(self.rounds)

    @property
    def drafted(self) -> int:
        return sum(r.gamma for r in self.rounds)

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.rounds)

    @property
    def tested(self) -> int:
        """Accept tests actually performed: a round stops testing at its first rejection."""
        return sum(min(r.accepted + 1, r.gamma) for r in self.rounds)

    @property
    def tokens_per_round(self) -> float:
        return len(self.new_tokens) / max(1, self.num_rounds)

    @property
    def tokens_per_second(self) -> float:
        return len(self.new_tokens) / self.timings.total if self.timings.total > 0 else 0.0


def softmax_rows(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / temperature) in float64, row-wise."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run torch's CPU kernels on n threads inside the block, then restore the previous count.

    Batch-1 decoding of a small model is memory-bound: a second thread gains little, and on a
    shared machine two OpenMP threads that wait on each other ran the same forward pass ~25x
    slower than one thread (measured on the 2-core machine of docs/PERFORMANCE.md).
    """
    import torch
    if n is None:
        yield
        return
    if n < 1:
        raise ConfigError(f"torch threads must be >= 1, got {n}")
    with swapped(torch.get_num_threads, torch.set_num_threads, n):
        yield


def _new_cache(model):
    from transformers import DynamicCache
    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers: lazily sized cache
        return DynamicCache()


def _crop(cache, length: int) -> None:
    """Roll a KV cache back to its first `length` positions (negative crop = tokens to drop,
    which every transformers version since 4.38 understands)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class _Stepper:
    """One model with its KV cache: feeds tokens, returns the last rows of logits as numpy."""

    def __init__(self, model):
        import torch
        self._torch = torch
        self.model = model
        self.cache = _new_cache(model)
        params = inspect.signature(model.forward).parameters
        # computing the LM head only for the rows we use saves most of a prefill's cost
        self._keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)

    @property
    def length(self) -> int:
        return self.cache.get_seq_length()

    def feed(self, tokens: list[int], rows: int, bf16: bool = False) -> np.ndarray:
        """The last `rows` rows of logits: float32, or with bf16 their bfloat16 bit patterns
        (uint16; torch's bfloat16 of the float logits, round to nearest even)."""
        torch = self._torch
        ids = torch.tensor([tokens], dtype=torch.long)
        kwargs = {self._keep_kw: rows} if self._keep_kw else {}
        with torch.inference_mode():
            out = self.model(input_ids=ids, past_key_values=self.cache, use_cache=True, **kwargs)
        self.cache = out.past_key_values if out.past_key_values is not None else self.cache
        logits = out.logits[0, -rows:].float()
        if bf16:
            return logits.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        return logits.numpy()

    def crop(self, length: int) -> None:
        _crop(self.cache, length)


COST_REPEATS = 5   # timed passes per point; the medians go into the fit


@dataclass(frozen=True)
class MeasuredCosts:
    """The costs the cost-aware controller prices rounds with, in target steps (see measure_costs)."""
    target_step_s: float   # median wall time of a target pass scoring one token, after the prompt
    row_cost: float        # each further token scored in the same pass: forward slope + its row's verification
    draft_cost: float      # one draft: a draft model's step and its row (prompt lookup: one proposal)
    pass_costs: tuple[float, ...] = ()   # entry g - 1: what scoring g further tokens adds, with their rows' work

    def as_dict(self) -> dict:
        return asdict(self)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        a = time.perf_counter()
        fn()
        times.append(time.perf_counter() - a)
    return float(np.median(times))


def measure_costs(pair, config: DecodeConfig, prompt_tokens: list[int], repeats: int = COST_REPEATS) -> MeasuredCosts:
    """Time the target scoring every k = 1 .. max_gamma + 1 tokens after the prompt (the passes of each
    repeat interleaved over k, medians), one row's verification work (weights or argmax, as the decoder
    does it) and one draft (a draft-model step and its row, or a prompt-lookup proposal); return them
    relative to the one-token pass: the table of each pass's extra cost over the one-token pass (a CPU's
    passes are not linear in k, docs/MODELS.md "Adaptive gamma") and the straight line through it.
    Untimed by the decoder: call it before a run (SpeculativeDecoder.generate does, when the controller's
    costs are not given)."""
    if repeats < 1:
        raise ConfigError(f"cost repeats must be >= 1, got {repeats}")
    logit_path = config.trace_format == 2
    G = max(1, config.max_gamma)
    target = _Stepper(pair.target)
    target.feed(list(prompt_tokens), 1, bf16=logit_path)   # prefill, untimed
    base = target.length
    filler = (list(prompt_tokens) * (G + 1))[: G + 1]
    ks = list(range(1, G + 2))
    samples: dict[int, list[float]] = {k: [] for k in ks}
    row = None
    for _ in range(repeats):
        for k in ks:
            a = time.perf_counter()
            out = target.feed(filler[:k], k, bf16=logit_path)
            samples[k].append(time.perf_counter() - a)
            target.crop(base)
            row = out[0]
    med = np.array([np.median(samples[k]) for k in ks])
    step = float(med[0])
    slope = float(np.polyfit(np.array(ks, float), med, 1)[0])
    row_s = _median_time(lambda: _row_work(row, config, config.sampling_params if logit_path else None), repeats)
    pass_costs = tuple(max(0.0, float(med[g] - step) + g * row_s) / step for g in range(1, G + 1))
    if config.lookup:
        ctx = list(prompt_tokens)
        draft_s = _median_time(lambda: lookup.propose(ctx, G, config.lookup_ngram), repeats) / G
    elif pair.draft is None:
        raise ConfigError("the pair has no draft model (loaded for prompt lookup); decode with lookup_ngram set")
    else:
        draft = _Stepper(pair.draft)
        draft.feed(list(prompt_tokens), 1, bf16=logit_path)
        d_base = draft.length
        d_row = [None]

        def one_draft():
            d_row[0] = draft.feed(filler[:1], 1, bf16=logit_path)[0]
            draft.crop(d_base)
        fwd = _median_time(one_draft, repeats)
        draft_s = fwd + _median_time(lambda: _row_work(d_row[0], config, config.draft_sampling_params
                                                       if logit_path else None), repeats)
    return MeasuredCosts(target_step_s=step, row_cost=max(0.0, slope + row_s) / step, draft_cost=draft_s / step,
                         pass_costs=pass_costs)


def _row_work(row: np.ndarray, config: DecodeConfig, params) -> None:
    """What the decoder does with one row of logits once the model produced it (v2: weights or argmax
    of the bf16 row; v1: softmax + quantisation, and argmax when greedy)."""
    if params is not None:
        if config.greedy:
            numerics.logit_argmax(row)
        else:
            numerics.logit_weights(row, params, config.prob_bits)
    else:
        q = numerics.quantize_rows(softmax_rows(row[None, :], config.row_temperature), config.row_sum)
        if config.greedy:
            numerics.greedy_argmax(q[0])


def with_measured_costs(pair, config: DecodeConfig, prompt_tokens: list[int]) -> DecodeConfig:
    """The config with the cost-aware controller's costs measured (measure_costs) where it has none;
    any other config as it is."""
    policy = config.gamma_policy
    if not isinstance(policy, CostAwareGamma) or policy.measured:
        return config
    costs = measure_costs(pair, config, prompt_tokens)
    table = costs.pass_costs[: policy.gamma_max]
    return replace(config, gamma_policy=policy.with_costs(costs.row_cost, costs.draft_cost, table))


class SpeculativeDecoder:
    """Speculative decoding of one prompt with a ModelPair (see the module docstring)."""

    def __init__(self, pair, config: DecodeConfig):
        config.check()
        self.pair = pair
        self.config = config

    def generate(self, prompt_tokens: list[int], on_round=None, controller=None) -> DecodeResult:
        """Decode after prompt_tokens; on_round(result) is called after every round. controller: a
        running controller of the config's gamma_policy to continue (its state carried over from
        earlier prompts, as a server would; it is updated in place); None: a fresh one."""
        if not prompt_tokens:
            raise ConfigError("the prompt encodes to no tokens")
        self.config = cfg = with_measured_costs(self.pair, self.config, prompt_tokens)
        rng = np.random.default_rng(cfg.seed)
        M, U, temp = cfg.row_sum, cfg.uniform_bits, cfg.row_temperature
        logit_path = cfg.trace_format == 2
        W = cfg.prob_bits
        params, d_params = (cfg.sampling_params, cfg.draft_sampling_params) if logit_path else (None, None)
        eos = getattr(self.pair.tokenizer, "eos_token_id", None)
        target = _Stepper(self.pair.target)
        if cfg.max_gamma > 0 and not cfg.lookup and self.pair.draft is None:
            raise ConfigError("the pair has no draft model (loaded for prompt lookup); decode with lookup_ngram set")
        draft = _Stepper(self.pair.draft) if cfg.max_gamma > 0 and not cfg.lookup else None
        if controller is not None and (cfg.gamma_policy is None or controller.policy != cfg.gamma_policy):
            raise ConfigError("a carried controller must belong to the config's gamma_policy")
        if controller is None and cfg.gamma_policy is not None:
            controller = cfg.gamma_policy.controller()
        seq = list(prompt_tokens)
        result = DecodeResult(prompt_tokens=list(prompt_tokens), new_tokens=[])
        tm = result.timings
        empty_rows = np.zeros((0, 0), np.int64)
        start = time.perf_counter()

        def uniforms(n):
            return rng.integers(0, 1 << U, size=n, dtype=np.uint64) if not cfg.greedy else np.zeros(n, np.uint64)

        while True:
            gamma = controller.gamma if controller is not None else cfg.gammas[len(result.rounds) % len(cfg.gammas)]
            # ---- draft: gamma tokens, each from its own quantised row
            drafts, p_rows, draft_u = [], [], []
            if cfg.lookup:   # prompt lookup: up to gamma one-hot drafts, no draft model, no draft uniforms
                a = time.perf_counter()
                drafts = lookup.propose(seq, gamma, cfg.lookup_ngram)
                gamma = len(drafts)
                draft_u = [0] * gamma
                V = self.pair.vocab_size   # one-hot rows: v2 stores none (onehot_draft), v1 the row at M
                p_rows = ([np.zeros(V, np.uint16)] * gamma if logit_path
                          else [numerics.onehot_draft_row(x, V)[0] * M for x in drafts])
                tm.draft_rows += time.perf_counter() - a
            elif gamma > 0:
                pending = seq[draft.length:]
                for t in range(gamma):
                    a = time.perf_counter()
                    logits = draft.feed(pending, 1, bf16=logit_path)
                    b = time.perf_counter()
                    if logit_path:   # the draft sampler over the bf16 row's weights (NUMERICS.md 12-13)
                        p = logits[0]
                        du = int(uniforms(1)[0])
                        if cfg.greedy:
                            x = numerics.logit_argmax(p, f"round {len(result.rounds)}: draft row {t}")
                        else:
                            w, z = numerics.logit_weights(p, d_params, W, f"round {len(result.rounds)}: draft row {t}")
                            x = numerics.draft_sample(w, z, du, U)
                        draft_u.append(du)
                    else:
                        p = numerics.quantize_rows(softmax_rows(logits, temp), M)[0]
                        x = (numerics.greedy_argmax(p) if cfg.greedy
                             else numerics.sample_from_weights(p, int(uniforms(1)[0]), U))
                    tm.draft_forward += b - a
                    tm.draft_rows += time.perf_counter() - b
                    drafts.append(x)
                    p_rows.append(p)
                    pending = [x]
            # ---- target: score every draft in one pass
            a = time.perf_counter()
            old_len = len(seq)
            q_logits = target.feed(seq[target.length:] + drafts, gamma + 1, bf16=logit_path)
            b = time.perf_counter()
            q = q_logits if logit_path else numerics.quantize_rows(softmax_rows(q_logits, temp), M)
            c = time.perf_counter()
            tm.target_forward += b - a
            tm.target_rows += c - b
            # ---- verify with the golden model
            accept_u = uniforms(gamma)
            sample_u = int(uniforms(1)[0])
            logit_rnd = None
            if logit_path:   # the target rows' weights are made inside verify_logit_round
                p = np.stack(p_rows) if p_rows else np.zeros((0, q.shape[1]), np.uint16)
                logit_rnd = LogitRound(greedy=cfg.greedy, onehot_draft=cfg.lookup,
                                       draft_tokens=np.asarray(drafts, np.int64),
                                       draft_logits=p, target_logits=q, draft_params=d_params, target_params=params,
                                       draft_uniforms=np.asarray(draft_u, np.uint64), accept_uniforms=accept_u,
                                       sample_uniform=sample_u)
                res = verify_logit_round(logit_rnd, W, U, where=f"round {len(result.rounds)}")
            else:
                p = np.stack(p_rows) if p_rows else np.zeros((0, q.shape[1]), np.int64)
                rnd = Round(greedy=cfg.greedy, draft_tokens=np.asarray(drafts, np.int64), draft_probs=p,
                            target_probs=q, accept_uniforms=accept_u.astype(np.int64) if U < 64 else accept_u,
                            sample_uniform=sample_u)
                res = verify_round(rnd, M, U)
            d = time.perf_counter()
            tm.verify += d - c
            # ---- emit and roll the caches back to the accepted prefix
            emitted = drafts[: res.accepted] + [res.token]
            seq.extend(emitted)
            target.crop(old_len + res.accepted)
            if draft is not None:
                draft.crop(min(draft.length, old_len + res.accepted))
            result.new_tokens.extend(emitted)
            result.rounds.append(RoundRecord(
                gamma=gamma, draft_tokens=np.asarray(drafts, np.int64),
                draft_probs=p if cfg.record and not logit_path else empty_rows,
                target_probs=q if cfg.record and not logit_path else empty_rows,
                accept_uniforms=accept_u, sample_uniform=sample_u,
                accepted=res.accepted, token=res.token,
                logit_round=logit_rnd if cfg.record else None))
            if controller is not None:
                controller.update(gamma, res.accepted)
            tm.other += time.perf_counter() - d
            tm.total = time.perf_counter() - start
            if on_round is not None:
                on_round(result)
            if cfg.max_rounds is not None and len(result.rounds) >= cfg.max_rounds:
                break
            if cfg.max_new_tokens is not None and len(result.new_tokens) >= cfg.max_new_tokens:
                break
            if cfg.stop_at_eos and eos is not None and eos in emitted:
                cut = len(result.new_tokens) - len(emitted) + emitted.index(eos) + 1
                del result.new_tokens[cut:]
                break
        tm.total = time.perf_counter() - start
        tm.other = max(0.0, tm.total - (tm.draft_forward + tm.draft_rows + tm.target_forward
                                        + tm.target_rows + tm.verify))
        return result


def trace_from_decode(result: DecodeResult, config: DecodeConfig, vocab_size: int, meta: dict,
                gamma_max: int | None = None):
    """Trace file of a recorded run (config.record must have been True): v1 (a Trace), or v2
    (a LogitTrace) when config.trace_format is 2."""
    if not result.rounds:
        raise ConfigError("no rounds to write")
    if config.trace_format == 2:
        from hades.traces.format_v2 import logit_trace_from_rounds
        if config.record is not True or any(r.logit_round is None or r.logit_round.vocab_size != vocab_size
                                            for r in result.rounds):
            raise ConfigError("the run was not recorded with full rows (DecodeConfig.record=True)")
        G = max(r.gamma for r in result.rounds) if gamma_max is None else gamma_max
        if G < max(r.gamma for r in result.rounds):
            raise ConfigError(f"gamma_max {G} below the largest gamma of the run")
        return logit_trace_from_rounds([r.logit_round for r in result.rounds],
                                       [(r.accepted, r.token) for r in result.rounds], vocab_size=vocab_size,
                                       weight_bits=config.prob_bits, uniform_bits=config.uniform_bits,
                                       gamma_max=G, meta=meta)
    if config.record is not True or any(r.target_probs.shape != (r.gamma + 1, vocab_size) for r in result.rounds):
        raise ConfigError("the run was not recorded with full rows (DecodeConfig.record=True)")
    G = max(r.gamma for r in result.rounds) if gamma_max is None else gamma_max
    if G < max(r.gamma for r in result.rounds):
        raise ConfigError(f"gamma_max {G} below the largest gamma of the run")
    return trace_from_rounds(result.rounds, [(r.accepted, r.token) for r in result.rounds], mode=config.trace_mode,
                             vocab_size=vocab_size, row_sum=config.row_sum, prob_bits=config.prob_bits,
                             uniform_bits=config.uniform_bits, gamma_max=G, meta=meta)


def config_meta(config: DecodeConfig) -> dict:
    """The decode configuration as JSON-friendly metadata."""
    d = asdict(config)
    d["gammas"] = list(config.gammas)
    if config.gamma_policy is not None:   # the controller chose every round's gamma; gammas was not used
        d.pop("gammas")
        d["gamma_policy"] = config.gamma_policy.meta()
    else:   # fixed gammas: the metadata as before adaptive gamma existed
        d.pop("gamma_policy")
    d.pop("record", None)
    if config.lookup:
        d["lookup_ngram"] = list(config.lookup_ngram)
    else:   # model drafts: the metadata as before prompt lookup existed
        d.pop("lookup_ngram")
    for name in ("draft_top_k", "draft_top_p"):   # set only when the draft has filters of its own
        if d[name] is None:
            d.pop(name)
    if config.trace_format == 1:   # v1 metadata exactly as before trace format 2 existed
        for name in ("trace_format", "min_p", "top_k", "top_p"):
            d.pop(name)
        d["row_sum"] = config.row_sum
    else:   # v2: W of the weight rows, and the (k, top_k, top_p, min_p) of every round
        d["weight_bits"] = d.pop("prob_bits")
        d["sampling_params"] = list(config.sampling_params)
        if config.draft_sampling_params != config.sampling_params:
            d["draft_sampling_params"] = list(config.draft_sampling_params)
    d["tool"] = TOOL_VERSION
    return d
