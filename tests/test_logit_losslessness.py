"""Statistical losslessness of the logit block (at FL: the levels are bit-exact with it, see
tests/test_levels.py): over many seeded rounds of one fixed set of logit rows, with fresh
uniforms each round, the first emitted token is distributed as the target's w / Z (a
chi-square test), and no emitted token lies outside its target row's support (masked entries
and entries min-p filters out). Two wrong samplers show the test has teeth: one that ignores
min-p emits outside the support, one that takes a float softmax without the temperature fails
the chi-square test even when it is restricted to the right support. The same with top-k and
top-p (NUMERICS.md section 15) on both sides, the draft's filters differing from the target's:
the first token follows the filtered target row, and a sampler that ignores the target's top-k
and top-p emits outside the kept set and fails the chi-square test. The block itself (the stream
at each level: CL, and RTL with its sort-free select) emits the FL sampler's tokens on the
filtered rounds, so the statistics carry over."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hades import numerics
from hades.fl.verifier import logit_block_round
from hades.round import LogitRound
from harness.stats import chi2_sf

V, W, U = 24, 16, 32
ROUNDS = 6000
ALPHA = 1e-3
TARGET = (numerics.inverse_temperature(0.7), 0, numerics.FRACTION_ONE, numerics.fraction_units(0.05))
DRAFT = (numerics.inverse_temperature(1.2), 0, numerics.FRACTION_ONE, 0)
# top-k 6 then top-p 0.8 keep 2 to 5 tokens of each target row; the draft keeps 10 tokens, then 0.95
TARGET_FILTERED = (numerics.inverse_temperature(0.7), 6, numerics.fraction_units(0.8), 0)
DRAFT_FILTERED = (numerics.inverse_temperature(1.2), 10, numerics.fraction_units(0.95), 0)
MASKED = (3, 11, 17)   # in every target row; the draft rows keep them, so the draft proposes them


def _rows(seed: int, n: int, masked: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, V)) * 1.2
    z[:, :3] += 1.0                     # a few likely tokens, a tail that min-p cuts
    if masked:
        z[:, list(MASKED)] = -np.inf
    return numerics.encode_bf16(z)


TARGET_ROWS = _rows(1, 4, masked=True)
DRAFT_ROWS = _rows(2, 3, masked=False)


def target_weights(t: int, params=TARGET) -> tuple[np.ndarray, int]:
    return numerics.logit_weights(TARGET_ROWS[t], params, W)


def make_rounds(gamma: int, onehot: bool, seed: int, target=TARGET, draft=DRAFT) -> list[LogitRound]:
    """ROUNDS rounds of the fixed rows, uniforms drawn from the seed. A model draft's x_t is
    whatever the block samples (draft_tokens 0 here); the one-hot drafts are token 0 (one of
    the likely ones), then a masked token (always rejected), then token 1."""
    rng = np.random.default_rng(seed)
    tokens = np.array([0, MASKED[0], 1][:gamma], np.int64) if onehot else np.zeros(gamma, np.int64)
    out = []
    for _ in range(ROUNDS):
        u = rng.integers(0, 1 << U, size=2 * gamma + 1, dtype=np.uint64)
        out.append(LogitRound(greedy=False, onehot_draft=onehot, draft_tokens=tokens,
                              draft_logits=DRAFT_ROWS[:gamma], target_logits=TARGET_ROWS[: gamma + 1],
                              draft_params=draft, target_params=target, draft_uniforms=u[:gamma],
                              accept_uniforms=u[gamma: 2 * gamma], sample_uniform=int(u[-1])))
    return out


def block_sampler(rnd: LogitRound) -> list[int]:
    """The tokens a round emits: the accepted drafts, then the result's token."""
    drafts, res = logit_block_round(rnd, W, U)
    return [int(x) for x in drafts[: res.accepted]] + [res.token]


def sampler_ignoring_min_p(rnd: LogitRound) -> list[int]:
    """Wrong: the block with min-p dropped from the target's parameters."""
    no_min_p = (TARGET[0], 0, numerics.FRACTION_ONE, 0)
    return block_sampler(dataclasses.replace(rnd, target_params=no_min_p))


def float_softmax_without_temperature(rnd: LogitRound) -> list[int]:
    """Wrong: inverse-CDF on the float softmax of the logits at T = 1 (the temperature
    forgotten), restricted to the true support of Q_0 so that only the shape is wrong."""
    v = (TARGET_ROWS[0].astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    support = target_weights(0)[0] > 0
    p = np.where(support, np.exp(v - v[support].max()), 0.0)
    c = np.cumsum(p / p.sum())
    return [int(min(np.searchsorted(c, rnd.sample_uniform / 2.0 ** U, side="right"), V - 1))]


def chi_square_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """p-value of Pearson's chi-square test of counts against probs (bins with an expected
    count below 5 pooled): Q(df / 2, stat / 2), the upper regularised incomplete gamma
    (harness.stats.chi2_sf)."""
    n = counts.sum()
    expected = probs * n
    small = expected < 5
    obs = np.append(counts[~small], counts[small].sum()) if small.any() else counts
    exp = np.append(expected[~small], expected[small].sum()) if small.any() else expected
    keep = exp > 0
    stat, df = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()), int(keep.sum()) - 1
    return chi2_sf(stat, df)


def sampler_ignoring_top_k_and_top_p(rnd: LogitRound) -> list[int]:
    """Wrong: the block with top-k and top-p dropped from the target's parameters (the draft
    keeps its own)."""
    return block_sampler(dataclasses.replace(rnd, target_params=(rnd.target_params[0], 0, numerics.FRACTION_ONE,
                                                                 rnd.target_params[3])))


def run(sampler, rounds, params=TARGET):
    """(counts of the first emitted token [V], tokens emitted outside their target row's support
    under the target parameters `params`)."""
    supports = [target_weights(t, params)[0] > 0 for t in range(len(TARGET_ROWS))]
    counts = np.zeros(V, np.int64)
    outside = []
    for rnd in rounds:
        emitted = sampler(rnd)
        counts[emitted[0]] += 1
        outside += [(t, x) for t, x in enumerate(emitted) if not supports[t][x]]
    return counts, outside


SHAPES = [(0, False), (1, False), (3, False), (2, True)]


@pytest.mark.parametrize("gamma, onehot", SHAPES, ids=["bonus_only", "model_gamma1", "model_gamma3", "onehot_gamma2"])
def test_first_token_is_distributed_as_the_target(gamma, onehot):
    w, z = target_weights(0)
    assert (w[list(MASKED)] == 0).all() and ((w == 0).sum() > len(MASKED)), "masked and min-p-filtered entries"
    counts, outside = run(block_sampler, make_rounds(gamma, onehot, seed=100 + gamma))
    assert outside == []
    assert counts[w == 0].sum() == 0
    p = chi_square_p(counts, w / z)
    assert p > ALPHA, (p, counts, w)


def test_a_sampler_that_ignores_min_p_emits_outside_the_support():
    counts, outside = run(sampler_ignoring_min_p, make_rounds(1, False, seed=7))
    filtered = (target_weights(0, (TARGET[0], 0, numerics.FRACTION_ONE, 0))[0] > 0) & (target_weights(0)[0] == 0)
    assert filtered.any() and outside and all(not target_weights(t)[0][x] for t, x in outside)
    assert counts[filtered].sum() > 0


def test_a_float_softmax_without_temperature_fails_the_chi_square_test():
    w, z = target_weights(0)
    counts, outside = run(float_softmax_without_temperature, make_rounds(0, False, seed=8))
    assert outside == []                       # the support is right ...
    assert chi_square_p(counts, w / z) < 1e-12   # ... the distribution is not


def test_chi_square_p_value_helper():
    """Against known quantiles: chi-square with 1 df at 3.841 (p = 0.05) and 10 df at 23.209
    (p = 0.01), through counts built to give those statistics."""
    probs = np.array([0.5, 0.5])
    d = math.sqrt(3.841 * 1000 / 4)   # stat = 4 d^2 / n
    assert abs(chi_square_p(np.array([500 + d, 500 - d]), probs) - 0.05) < 1e-3
    stat = 23.209
    n = 11 * 1000
    probs = np.full(11, 1 / 11)
    dev = math.sqrt(stat * 1000 / 2)
    counts = np.full(11, 1000.0)
    counts[0] += dev
    counts[1] -= dev
    assert abs(chi_square_p(counts, probs) - 0.01) < 1e-3 and counts.sum() == n
    assert chi_square_p(np.array([1000.0, 0.0]), np.array([0.5, 0.5])) < 1e-200   # far tail, no overflow


@pytest.mark.parametrize("gamma, onehot", SHAPES, ids=["bonus_only", "model_gamma1", "model_gamma3", "onehot_gamma2"])
def test_first_token_follows_the_target_after_top_k_and_top_p(gamma, onehot):
    w, z = target_weights(0, TARGET_FILTERED)
    unfiltered = target_weights(0, (TARGET_FILTERED[0], 0, numerics.FRACTION_ONE, 0))[0]
    assert 2 <= (w > 0).sum() < (unfiltered > 0).sum() - 10, "top-k and top-p cut most of the row"
    counts, outside = run(block_sampler, make_rounds(gamma, onehot, 200 + gamma, TARGET_FILTERED, DRAFT_FILTERED),
                          TARGET_FILTERED)
    assert outside == []
    assert counts[w == 0].sum() == 0
    p = chi_square_p(counts, w / z)
    assert p > ALPHA, (p, counts, w)


def test_a_sampler_that_ignores_top_k_and_top_p_fails():
    w, z = target_weights(0, TARGET_FILTERED)
    rounds = make_rounds(1, False, 9, TARGET_FILTERED, DRAFT_FILTERED)
    counts, outside = run(sampler_ignoring_top_k_and_top_p, rounds, TARGET_FILTERED)
    assert outside and counts[w == 0].sum() > 0
    assert chi_square_p(counts, w / z) < 1e-12


@pytest.mark.parametrize("gamma, onehot", [(3, False), (2, True)], ids=["model_gamma3", "onehot_gamma2"])
def test_the_block_emits_the_fl_samplers_tokens_with_top_k_and_top_p(level, sim_options, gamma, onehot):
    """The first rounds of the filtered chi-square test through the block at `level`: every
    emitted token (and every sampled draft) is the FL sampler's, none outside the kept set, and at
    CL and RTL the counters are the CL schedule's (check_logit_rounds)."""
    from hades.config import VerifierConfig
    from harness.checks import check_logit_rounds
    rounds = make_rounds(gamma, onehot, 300 + gamma, TARGET_FILTERED, DRAFT_FILTERED)[:40]
    if not onehot:   # the trace's drafts: what the draft sampler draws (the block returns them)
        rounds = [dataclasses.replace(r, draft_tokens=np.asarray(logit_block_round(r, W, U)[0], np.int64))
                  for r in rounds]
    outputs = check_logit_rounds(level, VerifierConfig(lanes=4, vocab_max=64, gamma_max=4), rounds, sim_options)
    supports = [target_weights(t, TARGET_FILTERED)[0] > 0 for t in range(len(TARGET_ROWS))]
    for rnd, out in zip(rounds, outputs):
        drafts = [d.token for d in out.drafts] if not onehot else [int(x) for x in rnd.draft_tokens]
        emitted = drafts[: out.result.accepted] + [out.result.token]
        assert emitted == block_sampler(rnd)
        assert supports[out.result.accepted][out.result.token]
