"""Normative integer numerics (docs/NUMERICS.md) and the FL golden model of one round.

- quantize_rows: exact row sums, largest-remainder rounding, ties to the lowest index, refusals;
- the integer sampler: end points and the exact count of uniforms per outcome (bias bound);
- losslessness: the first emitted token is distributed as q-hat / M (chi-square at fixed seeds),
  and deliberately biased verifiers / draft producers fail the very same test;
- edge cases of verify_round (gamma 0 and gamma_max, one-hot rows, p = q, disjoint supports,
  extreme uniforms, greedy mode);
- the integer path against the float textbook algorithm (float_speculative_round).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hades import numerics
from hades.errors import TraceError
from hades.fl.verifier import verify_round
from harness.stats import chi2_sf
from hades.round import Round
from hades.traces.synthetic import make_round

W = 16
M = numerics.default_row_sum(W)  # 65535
U = 32
R_MAX = (1 << U) - 1


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def _round(q_rows, p_rows, drafts, accept_u, sample_u, greedy=False) -> Round:
    """Build a Round directly (works for gamma = 0 too, unlike make_round: see test below)."""
    q = np.asarray(q_rows, np.int64)
    g = len(drafts)
    return Round(greedy=greedy,
                 draft_tokens=np.asarray(drafts, np.int64).reshape(g),
                 draft_probs=np.asarray(p_rows, np.int64).reshape(g, q.shape[1]),
                 target_probs=q,
                 accept_uniforms=np.asarray(accept_u, np.int64).reshape(g),
                 sample_uniform=int(sample_u))


def chi2_pvalue(tokens: np.ndarray, weights: np.ndarray) -> float:
    """Pearson chi-square p-value of `tokens` against the distribution weights / sum(weights).

    Outcomes with an expected count below 5 are pooled; an observation of an outcome with
    probability zero gives p = 0 outright.
    """
    weights = np.asarray(weights, np.float64)
    V = len(weights)
    tokens = np.asarray(tokens)
    assert tokens.size > 0 and tokens.min() >= 0 and tokens.max() < V, "token outside the vocabulary"
    counts = np.bincount(tokens, minlength=V).astype(np.float64)
    expected = tokens.size * weights / weights.sum()
    if np.any(counts[expected == 0] > 0):
        return 0.0
    big = expected >= 5
    obs = list(counts[big])
    exp = list(expected[big])
    small_e = expected[~big & (expected > 0)].sum()
    small_o = counts[~big & (expected > 0)].sum()
    if small_e > 0:
        if small_e >= 5 or not exp:
            obs.append(small_o)
            exp.append(small_e)
        else:  # too small to stand alone: pool it with the smallest big bin
            j = int(np.argmin(exp))
            obs[j] += small_o
            exp[j] += small_e
    obs, exp = np.array(obs), np.array(exp)
    if len(exp) < 2:
        return 1.0
    stat = float(((obs - exp) ** 2 / exp).sum())
    return chi2_sf(stat, len(exp) - 1)


def _fixed_rows(V: int, gamma: int, seed: int):
    """Quantised target rows [gamma+1, V] and draft rows [gamma, V] that overlap partly,
    with outcomes that only the target has and outcomes that only the draft has."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.full(V, 0.7), size=gamma + 1)
    p = 0.5 * q[:gamma] + 0.5 * rng.dirichlet(np.full(V, 0.7), size=gamma)
    q[:, 1] = 0.0          # the draft proposes token 1, the target never emits it
    p[:, 0] = 0.0          # the target emits token 0, the draft never proposes it
    q[:, 0] += 0.05
    Q = numerics.quantize_rows(q, M)
    P = numerics.quantize_rows(p, M)
    assert (Q.sum(-1) == M).all() and (P.sum(-1) == M).all()
    return Q, P


def _uniforms(rng, shape):
    return rng.integers(0, 1 << U, size=shape, dtype=np.int64)


def _vec_drafts(P_draw: np.ndarray, Rd: np.ndarray) -> np.ndarray:
    """Draft tokens for every round: the integer sampler, vectorised (rows fixed per slot)."""
    N, gamma = Rd.shape
    x = np.empty((N, gamma), np.int64)
    for t in range(gamma):
        c = np.cumsum(P_draw[t].astype(np.int64))
        x[:, t] = np.searchsorted(c, (Rd[:, t] * int(c[-1])) >> U, side="right")
    return x


def _vec_verify(Q, P, drafts, Ra, Rs, residual_from_q=False):
    """verify_round, vectorised over rounds that share the same rows (test-only reimplementation).

    residual_from_q=True is a deliberately wrong verifier: it samples the rejection token from
    q_j instead of norm(max(0, q_j - p_j)).
    """
    N, gamma = drafts.shape
    ok = np.ones((N, gamma + 1), bool)
    ok[:, gamma] = False
    for t in range(gamma):
        px = P[t][drafts[:, t]]
        qx = Q[t][drafts[:, t]]
        ok[:, t] = Ra[:, t] * px < (qx << U)
    n = np.argmin(ok, axis=1)  # first failed test (column gamma is a sentinel False)
    tok = np.empty(N, np.int64)
    for t in range(gamma + 1):
        m = n == t
        if t < gamma:
            w = Q[t] if residual_from_q else np.maximum(Q[t] - P[t], 0)
            S = int(w.sum())
        else:
            w, S = Q[gamma], M
        tok[m] = np.searchsorted(np.cumsum(w), (Rs[m] * S) >> U, side="right")
    return n, tok


def _emitted(drafts, n, tok, k):
    """The k-th emitted token (0-based, k < gamma) of every round that emits at least k+1 tokens."""
    live = n >= k
    return np.where(n[live] > k, drafts[live, k], tok[live])


# ---------------------------------------------------------------------------------------
# the chi-square helper itself (it decides the statistical tests, so it is checked too)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [0.1, 1.0, 3.0, 10.0, 30.0, 80.0])
def test_chi2_sf_matches_closed_forms(x):
    assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-9, abs=1e-300)
    assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-9, abs=1e-300)
    assert chi2_sf(x, 4) == pytest.approx(math.exp(-x / 2) * (1 + x / 2), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("dof", [7, 20, 63])
def test_chi2_sf_agrees_with_wilson_hilferty(dof):
    # Wilson-Hilferty: (X/k)^(1/3) ~ Normal(1 - 2/(9k), 2/(9k))
    for z in (-1.0, 0.0, 1.0, 2.0, 3.0):
        s2 = 2 / (9 * dof)
        x = dof * (1 - s2 + z * math.sqrt(s2)) ** 3
        wh = 0.5 * math.erfc(z / math.sqrt(2))
        assert chi2_sf(x, dof) == pytest.approx(wh, abs=0.01)


def test_chi2_pvalue_detects_a_wrong_distribution():
    rng = np.random.default_rng(3)
    w = np.array([1, 2, 3, 4, 0, 10])
    good = rng.choice(6, size=5000, p=w / w.sum())
    assert chi2_pvalue(good, w) > 1e-3
    bad = rng.choice(6, size=5000, p=np.array([2, 2, 3, 4, 0, 9]) / 20)
    assert chi2_pvalue(bad, w) < 1e-6
    assert chi2_pvalue(np.array([4, 0, 1]), w) == 0.0  # an impossible outcome was observed


# ---------------------------------------------------------------------------------------
# quantize_rows
# ---------------------------------------------------------------------------------------

def _exact_scaled(row, row_sum=M) -> list[Fraction]:
    fr = [Fraction(float(v)) for v in row]
    tot = sum(fr)
    return [f / tot * row_sum for f in fr]


EPS = Fraction(1, 10**9)  # float64 slack on values that are within 1e-9 units of a boundary


def _check_largest_remainder(p_row, q_row, row_sum=M):
    """Largest-remainder rounding, checked against exact rational arithmetic:
    every entry is within one unit of its exact scaled value, every entry rounded up had a
    remainder at least as large as every entry rounded down, and of two identical inputs the
    lower index never gets less (ties to the lowest index)."""
    p_row = np.asarray(p_row, np.float64)
    q = [int(v) for v in q_row]
    s = _exact_scaled(p_row, row_sum)
    assert sum(q) == row_sum
    assert all(abs(qi - si) < 1 + EPS for qi, si in zip(q, s)), (p_row, q_row)
    up = [si - (qi - 1) for qi, si in zip(q, s) if qi > si]      # remainders rounded up
    down = [si - qi for qi, si in zip(q, s) if qi < si]          # remainders rounded down
    if up and down:
        assert min(up) >= max(down) - EPS, (p_row, q_row)
    for v in np.unique(p_row):
        idx = np.flatnonzero(p_row == v)
        assert all(q[a] >= q[b] for a, b in zip(idx, idx[1:])), (p_row, q_row)


row_values = st.one_of(
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False, allow_subnormal=True),
    st.sampled_from([0.0, 1.0, 1e-12, 1e-300, 5e-324, 1 / 3]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(row_values, min_size=1, max_size=40).filter(lambda r: sum(r) > 0))
def test_quantize_rows_sums_exactly_and_is_largest_remainder(row):
    q = numerics.quantize_rows(np.array(row), M)
    assert q.dtype == np.int64 and q.shape == (len(row),)
    assert q.sum() == M
    assert (q >= 0).all()
    # a zero probability never receives a unit
    assert (q[np.array(row) == 0] == 0).all()
    _check_largest_remainder(row, q)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_quantize_rows_batched_rows_all_sum_to_m(V, rows, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(V, 0.3), size=(rows, 2))      # [rows, 2, V]
    p[..., 0] *= rng.choice([1e-30, 1.0, 1e30])             # extreme scale spreads
    q = numerics.quantize_rows(p, M)
    assert q.shape == p.shape
    assert (q.sum(-1) == M).all()
    for idx in np.ndindex(p.shape[:-1]):
        _check_largest_remainder(p[idx], q[idx])


@pytest.mark.parametrize("row_sum", [1, 2, 255, M, (1 << 31) - 1])
def test_quantize_rows_special_rows(row_sum):
    assert numerics.quantize_rows(np.array([0.7]), row_sum).tolist() == [row_sum]          # V = 1
    one_hot = numerics.quantize_rows(np.eye(5)[3], row_sum)
    assert one_hot.tolist() == [0, 0, 0, row_sum, 0]
    uni = numerics.quantize_rows(np.ones(7), row_sum)
    base, rest = divmod(row_sum, 7)
    assert uni.tolist() == [base + 1] * rest + [base] * (7 - rest)                          # lowest first
    tiny = numerics.quantize_rows(np.array([1.0, 1e-300, 5e-324, 0.0]), row_sum)
    assert tiny.sum() == row_sum and tiny[3] == 0


def test_quantize_rows_ties_go_to_the_lowest_index():
    # 65535 / 2 = 32767.5 each: one unit to hand out, both remainders 0.5 -> index 0
    assert numerics.quantize_rows(np.array([1.0, 1.0]), M).tolist() == [32768, 32767]
    # 65535 / 4 = 16383.75 each: three units, the first three indices get them
    assert numerics.quantize_rows(np.ones(4), M).tolist() == [16384, 16384, 16384, 16383]
    # remainders 1/3 tie at indices 1, 2, 3 (8 * [3, 1, 1, 1] / 6): the one unit goes to index 1
    assert numerics.quantize_rows(np.array([3.0, 1.0, 1.0, 1.0]), 8).tolist() == [4, 2, 1, 1]
    # 10 * [4, 1, 1, 1, 1] / 8 = 5, 1.25 x 4: one unit, to index 1
    assert numerics.quantize_rows(np.array([4.0, 1.0, 1.0, 1.0, 1.0]), 10).tolist() == [5, 2, 1, 1, 1]
    # 5/3 each after a zero: two units, to indices 1 and 2; the zero entry gets nothing
    assert numerics.quantize_rows(np.array([0.0, 1.0, 1.0, 1.0]), 5).tolist() == [0, 2, 2, 1]
    # the largest remainder wins over a lower index: 7 * [1, 1, 2] / 4 = 1.75, 1.75, 3.5
    assert numerics.quantize_rows(np.array([1.0, 1.0, 2.0]), 7).tolist() == [2, 2, 3]


def test_quantize_rows_takes_units_back_when_float_rounding_overshoots():
    # With a huge M the float-scaled row floors to M + 2 (float error > 1 unit): the branch that
    # takes units back must restore the exact sum and keep every entry within one unit.
    row = np.array([float.fromhex(h) for h in
                    ("0x1.160e4ae1675a2p-1", "0x1.e3a022989417ep-2", "0x1.b8a14c82274e8p-4")])
    big_m = 2**53
    assert np.floor(row / row.sum() * big_m).sum() > big_m  # the case really overshoots
    q = numerics.quantize_rows(row, big_m)
    assert int(q.sum()) == big_m
    total = sum(Fraction(float(v)) for v in row)
    exact = [Fraction(float(v)) / total * big_m for v in row]
    assert all(abs(int(a) - e) < 1 for a, e in zip(q, exact)), (q, [float(e) for e in exact])


@pytest.mark.parametrize("bad", [
    [0.5, float("nan")], [0.5, float("inf")], [0.5, -0.1], [0.0, 0.0], [],
    [[0.2, 0.8], [0.0, 0.0]],          # one zero-sum row among good ones
    [[0.2, 0.8], [0.5, -1e-9]],
])
def test_quantize_rows_refuses_bad_rows(bad):
    with pytest.raises(TraceError):
        numerics.quantize_rows(np.array(bad, dtype=np.float64), M)


def test_quantize_rows_huge_finite_entries_still_sum_to_m():
    """BUG: finite entries whose sum overflows to inf give scaled = 0 everywhere, and the
    largest-remainder loop can then hand out at most one unit per entry: [1e308, 1e308]
    quantises to [1, 1] instead of [32768, 32767]. Fix: normalise by the row maximum before
    summing (p = p / p.max(axis=-1)), or refuse rows whose total is not finite."""
    row = np.array([1e308, 1e308])
    try:
        q = numerics.quantize_rows(row, M)
    except TraceError:
        return  # refusing is an acceptable fix too
    assert q.sum() == M, f"row {row} quantised to {q} (sum {q.sum()} != {M})"


# ---------------------------------------------------------------------------------------
# the integer sampler
# ---------------------------------------------------------------------------------------

weights_st = st.lists(st.integers(0, 3000), min_size=1, max_size=14).filter(lambda w: sum(w) > 0)


@settings(max_examples=200, deadline=None)
@given(weights_st, st.sampled_from([8, 16, 32]))
def test_sampler_end_points(w, u_bits):
    w = np.array(w)
    nz = np.flatnonzero(w)
    assert numerics.sample_from_weights(w, 0, u_bits) == nz[0]
    # R = 2^U - 1 reaches the last outcome as long as S <= 2^U (T = S - 1)
    if w.sum() <= (1 << u_bits):
        assert numerics.sample_from_weights(w, (1 << u_bits) - 1, u_bits) == nz[-1]


@settings(max_examples=100, deadline=None)
@given(weights_st)
def test_sampler_end_points_with_explicit_total(w):
    w = np.array(w)
    nz = np.flatnonzero(w)
    S = int(w.sum())
    assert numerics.sample_from_weights(w, 0, U, total=S) == nz[0]
    assert numerics.sample_from_weights(w, R_MAX, U, total=S) == nz[-1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 70_000), min_size=1, max_size=10).filter(lambda w: sum(w) > 0),
       st.sampled_from([4, 8, 10]))
def test_sampler_exhaustive_counts_match_the_bias_bound(w, u_bits):
    """Every R in [0, 2^U): outcome k is hit ceil(c_k 2^U / S) - ceil(c_{k-1} 2^U / S) times,
    which is within one of 2^U w_k / S (the bound in numerics.py's docstring); zero-weight
    outcomes are never hit."""
    w = np.array(w)
    S = int(w.sum())
    n_r = 1 << u_bits
    counts = np.zeros(len(w), np.int64)
    for r in range(n_r):
        k = numerics.sample_from_weights(w, r, u_bits)
        assert 0 <= k < len(w) and w[k] > 0
        counts[k] += 1
    c = np.concatenate([[0], np.cumsum(w)])
    for k in range(len(w)):
        ideal = Fraction(n_r * int(w[k]), S)
        assert abs(counts[k] - ideal) < 1, (k, counts[k], ideal)
        exact = -((-int(c[k + 1]) * n_r) // S) - (-((-int(c[k]) * n_r) // S))
        assert counts[k] == exact
    tv = sum(abs(Fraction(int(counts[k]), n_r) - Fraction(int(w[k]), S)) for k in range(len(w))) / 2
    assert tv < Fraction(len(w), 2 * n_r)


def test_sampler_threshold_and_accept_are_integer_exact():
    # products far above 2^53 must not lose precision
    assert numerics.sample_threshold(R_MAX, (1 << 31) - 1, U) == ((R_MAX * ((1 << 31) - 1)) >> U)
    assert numerics.accept(R_MAX, M, M, U) is True
    assert numerics.accept(R_MAX, M, M - 1, U) is False
    assert numerics.accept(0, M, 1, U) is True
    assert numerics.accept(0, M, 0, U) is False
    assert numerics.accept(2**63 - 1, 1, 1, 64)  # U = 64 stays exact
    assert not numerics.accept(2**64 - 1, 2, 1, 64)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, M), st.integers(0, M))
def test_accept_threshold_is_exactly_q_over_p(p_x, q_x):
    """Exactly min(2^U, ceil(Q * 2^U / P)) of the 2^U uniforms accept: Pr = min(1, Q/P) up to 2^-U."""
    n_accept = min(1 << U, -((-q_x << U) // p_x))
    if n_accept > 0:
        assert numerics.accept(n_accept - 1, p_x, q_x, U)
    if n_accept < (1 << U):
        assert not numerics.accept(n_accept, p_x, q_x, U)
    assert abs(Fraction(n_accept, 1 << U) - min(Fraction(1), Fraction(q_x, p_x))) < Fraction(1, 1 << U)


def test_residual_weights_and_bonus_sample():
    q = np.array([5, 0, 3, 7])
    p = np.array([2, 4, 3, 9])
    assert numerics.residual_weights(q, p).tolist() == [3, 0, 0, 0]
    assert numerics.residual_sample(q, p, R_MAX, U) == 0
    qq = np.array([0, 0, M - 3, 3, 0])
    assert numerics.bonus_sample(qq, 0, U, M) == 2
    assert numerics.bonus_sample(qq, R_MAX, U, M) == 3
    with pytest.raises(ValueError):
        numerics.residual_sample(q, q, 0, U)  # an all-zero residual is refused, not silently sampled


def test_greedy_argmax_ties_to_lowest_index():
    assert numerics.greedy_argmax(np.array([3, 9, 1, 9, 9])) == 1
    assert numerics.greedy_argmax(np.array([7, 7, 7])) == 0
    assert numerics.greedy_argmax(np.array([0, 0, 0, 1])) == 3


# ---------------------------------------------------------------------------------------
# losslessness, statistically
# ---------------------------------------------------------------------------------------

def _run_verify_round(Q, P, drafts, Ra, Rs):
    n = np.empty(len(Rs), np.int64)
    tok = np.empty(len(Rs), np.int64)
    for i in range(len(Rs)):
        res = verify_round(make_round(Q, P, drafts[i], Ra[i], Rs[i]), M, U)
        n[i], tok[i] = res.accepted, res.token
    return n, tok


@pytest.mark.parametrize("V,seed", [(8, 11), (23, 12), (64, 13)])
def test_lossless_gamma1_through_verify_round(V, seed):
    """20,000 rounds through verify_round, drafts drawn from p-hat with the integer sampler:
    the emitted token is distributed as q-hat / M."""
    N = 20_000
    Q, P = _fixed_rows(V, 1, seed)
    rng = np.random.default_rng(seed + 100)
    Rd, Ra, Rs = _uniforms(rng, (N, 1)), _uniforms(rng, (N, 1)), _uniforms(rng, N)
    drafts = np.array([[numerics.sample_from_weights(P[0], int(r), U)] for r in Rd[:, 0]])
    assert np.array_equal(drafts, _vec_drafts(P, Rd))
    n, tok = _run_verify_round(Q, P, drafts, Ra, Rs)
    # the vectorised test reimplementation agrees bit for bit (it is used for larger N below)
    vn, vtok = _vec_verify(Q, P, drafts, Ra, Rs)
    assert np.array_equal(n, vn) and np.array_equal(tok, vtok)
    assert 0 < n.mean() < 1  # both branches exercised
    first = np.where(n > 0, drafts[:, 0], tok)
    assert not np.any(first == 1)          # q-hat(1) = 0: never emitted
    assert np.any(drafts[:, 0] == 1)       # ... although the draft proposes it
    p = chi2_pvalue(first, Q[0])
    assert p > 1e-3, f"emitted tokens not distributed as q-hat (p = {p:.3g})"
    # the bonus token after an accepted draft follows q-hat_2
    assert chi2_pvalue(tok[n == 1], Q[1]) > 1e-3


@pytest.mark.parametrize("V,seed", [(16, 21), (64, 22)])
def test_lossless_gamma3(V, seed):
    N = 120_000
    G = 3
    Q, P = _fixed_rows(V, G, seed)
    rng = np.random.default_rng(seed)
    Rd, Ra, Rs = _uniforms(rng, (N, G)), _uniforms(rng, (N, G)), _uniforms(rng, N)
    drafts = _vec_drafts(P, Rd)
    n, tok = _vec_verify(Q, P, drafts, Ra, Rs)
    # the first 3,000 rounds through the real verifier: identical decisions
    k = 3000
    rn, rtok = _run_verify_round(Q, P, drafts[:k], Ra[:k], Rs[:k])
    assert np.array_equal(rn, n[:k]) and np.array_equal(rtok, tok[:k])
    assert chi2_pvalue(_emitted(drafts[:k], rn, rtok, 0), Q[0]) > 1e-3
    # the first, second and bonus tokens each follow their target row
    assert chi2_pvalue(_emitted(drafts, n, tok, 0), Q[0]) > 1e-3
    assert chi2_pvalue(_emitted(drafts, n, tok, 1), Q[1]) > 1e-3
    assert chi2_pvalue(tok[n == G], Q[G]) > 1e-3
    # the acceptance probability of the first draft is sum(min(p, q)) / M
    beta = np.minimum(P[0], Q[0]).sum() / M
    hits = (n >= 1).sum()
    assert abs(hits - N * beta) < 5 * math.sqrt(N * beta * (1 - beta))


def test_biased_verifier_residual_from_q_fails_the_test():
    """A verifier that samples the rejection token from q_j instead of max(0, q_j - p_j)."""
    N, V, seed = 20_000, 8, 11
    Q, P = _fixed_rows(V, 1, seed)
    rng = np.random.default_rng(seed + 100)
    Rd, Ra, Rs = _uniforms(rng, (N, 1)), _uniforms(rng, (N, 1)), _uniforms(rng, N)
    drafts = _vec_drafts(P, Rd)
    n, tok = _vec_verify(Q, P, drafts, Ra, Rs)
    assert chi2_pvalue(_emitted(drafts, n, tok, 0), Q[0]) > 1e-3     # the correct one passes ...
    n, tok = _vec_verify(Q, P, drafts, Ra, Rs, residual_from_q=True)
    assert chi2_pvalue(_emitted(drafts, n, tok, 0), Q[0]) < 1e-6     # ... the biased one fails


@pytest.mark.parametrize("kind", ["coarse-quantised", "tempered"])
def test_drafts_from_another_distribution_fail_the_test(kind):
    """Drafts drawn from a different distribution than the p-hat used in the ratio.

    (Drafts from the *unquantised* float p differ from p-hat by under 1/M per entry: a bias far
    too small for 20,000 rounds to see, so the test uses the same bug at a visible size: drafts
    from p quantised to W = 4 bits, or from p at temperature 0.5, while the ratio uses p-hat.)
    """
    N, V, seed = 20_000, 8, 11
    Q, P = _fixed_rows(V, 1, seed)
    pf = P.astype(np.float64) / M
    if kind == "coarse-quantised":
        P_draw = numerics.quantize_rows(pf, numerics.default_row_sum(4))
    else:
        P_draw = numerics.quantize_rows(pf ** 2, M)
    assert np.abs(P_draw / P_draw.sum(-1, keepdims=True) - P / M).max() > 0.01
    rng = np.random.default_rng(seed + 100)
    Rd, Ra, Rs = _uniforms(rng, (N, 1)), _uniforms(rng, (N, 1)), _uniforms(rng, N)
    drafts = _vec_drafts(P_draw, Rd)
    n, tok = _vec_verify(Q, P, drafts, Ra, Rs)
    k = 2000  # a sample of the rounds through verify_round itself
    rn, rtok = _run_verify_round(Q, P, drafts[:k], Ra[:k], Rs[:k])
    assert np.array_equal(rn, n[:k]) and np.array_equal(rtok, tok[:k])
    assert chi2_pvalue(_emitted(drafts, n, tok, 0), Q[0]) < 1e-6


# ---------------------------------------------------------------------------------------
# edge cases through verify_round
# ---------------------------------------------------------------------------------------

def test_make_round_supports_gamma_zero():
    """BUG: make_round(q, [], [], [], r) raises 'cannot reshape array of size 0 into shape
    (0,newaxis)' because it reshapes the empty draft rows with (0, -1). Fix: reshape with the
    vocabulary size of the target rows, reshape(len(draft_tokens), q.shape[1])."""
    q = np.array([[1, 2, M - 3]])
    rnd = make_round(q, np.zeros((0, 3), np.int64), [], [], 7)
    assert rnd.gamma == 0 and rnd.draft_probs.shape == (0, 3)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.integers(0, R_MAX))
def test_gamma_zero_is_plain_sampling_from_q(V, seed, r):
    rng = np.random.default_rng(seed)
    q = numerics.quantize_rows(rng.dirichlet(np.full(V, 0.5))[None], M)
    res = verify_round(_round(q, np.zeros((0, V)), [], [], r), M, U)
    assert res.decision() == (0, numerics.bonus_sample(q[0], r, U, M))
    assert q[0, res.token] > 0


def test_gamma_zero_distribution():
    V, N = 12, 20_000
    q = numerics.quantize_rows(np.random.default_rng(5).dirichlet(np.full(V, 0.5))[None], M)
    rs = _uniforms(np.random.default_rng(6), N)
    toks = np.array([verify_round(_round(q, np.zeros((0, V)), [], [], r), M, U).token for r in rs[:3000]])
    assert chi2_pvalue(toks, q[0]) > 1e-3
    _, vtok = _vec_verify(q, np.zeros((0, V), np.int64), np.zeros((N, 0), np.int64), np.zeros((N, 0), np.int64), rs)
    assert np.array_equal(vtok[:3000], toks)
    assert chi2_pvalue(vtok, q[0]) > 1e-3


def test_gamma_max_16():
    G, V, N = 16, 32, 600
    rng = np.random.default_rng(16)
    q = rng.dirichlet(np.full(V, 0.3), size=G + 1)
    Q = numerics.quantize_rows(q, M)
    P = numerics.quantize_rows(0.97 * q[:G] + 0.03 * rng.dirichlet(np.ones(V), size=G), M)
    Rd, Ra, Rs = _uniforms(rng, (N, G)), _uniforms(rng, (N, G)), _uniforms(rng, N)
    drafts = _vec_drafts(P, Rd)
    n, tok = _run_verify_round(Q, P, drafts, Ra, Rs)
    vn, vtok = _vec_verify(Q, P, drafts, Ra, Rs)
    assert np.array_equal(n, vn) and np.array_equal(tok, vtok)
    assert (n == G).any() and (n < G).any() and n.max() == G
    # p-hat == q-hat: all 16 accepted, even with the largest uniforms, and the bonus from q_17
    q_drafts = _vec_drafts(Q[:G], Rd[:1])[0]
    for r in (0, R_MAX, 123456789):
        res = verify_round(_round(Q, Q[:G], q_drafts, np.full(G, r), r), M, U)
        assert res.decision() == (G, numerics.bonus_sample(Q[G], r, U, M))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 50), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_p_equal_q_always_accepts(V, G, seed):
    rng = np.random.default_rng(seed)
    Q = numerics.quantize_rows(rng.dirichlet(np.full(V, 0.4), size=G + 1), M)
    Rd = _uniforms(rng, (1, G))
    drafts = _vec_drafts(Q[:G], Rd)[0]
    Ra = np.where(rng.random(G) < 0.5, R_MAX, _uniforms(rng, G))
    rs = int(_uniforms(rng, 1)[0])
    res = verify_round(_round(Q, Q[:G], drafts, Ra, rs), M, U)
    assert res.decision() == (G, numerics.bonus_sample(Q[G], rs, U, M))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 40), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_disjoint_supports_always_reject_first_draft(V, G, seed):
    rng = np.random.default_rng(seed)
    cut = int(rng.integers(1, V))
    perm = rng.permutation(V)
    q = np.zeros((G + 1, V))
    p = np.zeros((G, V))
    q[:, perm[:cut]] = rng.random((G + 1, cut)) + 0.01
    p[:, perm[cut:]] = rng.random((G, V - cut)) + 0.01
    Q, P = numerics.quantize_rows(q, M), numerics.quantize_rows(p, M)
    drafts = _vec_drafts(P, _uniforms(rng, (1, G)))[0]
    for ra in (0, R_MAX, int(_uniforms(rng, 1)[0])):
        rs = int(_uniforms(rng, 1)[0])
        res = verify_round(_round(Q, P, drafts, np.full(G, ra), rs), M, U)
        # the residual is q itself (p is zero wherever q is not)
        assert res.decision() == (0, numerics.sample_from_weights(Q[0], rs, U))
        assert Q[0, res.token] > 0


def test_one_hot_rows():
    V = 6
    a, b = 2, 4
    qa = np.zeros((2, V), np.int64)
    qa[:, a] = M
    pa = np.zeros((1, V), np.int64)
    pa[0, a] = M
    pb = np.zeros((1, V), np.int64)
    pb[0, b] = M
    for r in (0, 1, R_MAX // 2, R_MAX):
        assert verify_round(_round(qa, pa, [a], [r], r), M, U).decision() == (1, a)
        assert verify_round(_round(qa, pb, [b], [r], r), M, U).decision() == (0, a)
        assert verify_round(_round(qa[:1], pa[:0], [], [], r), M, U).decision() == (0, a)
    # one-hot q, spread p: accepted only when the draft is the q token (R * P < M * 2^U always)
    p = numerics.quantize_rows(np.ones((1, V)), M)
    for x in range(V):
        res = verify_round(_round(qa, p, [x], [R_MAX], 5), M, U)
        assert res.decision() == ((1, a) if x == a else (0, a))


def test_extreme_accept_uniforms():
    V = 4
    q = np.array([[M - 300, 100, 200, 0], [1, 2, 3, M - 6]])
    for p_x, q_x, r, want in [
        (100, 100, R_MAX, 1),      # Q == P: accepted even at the largest uniform
        (101, 100, R_MAX, 0),      # Q = P - 1: rejected at the largest uniform
        (101, 100, 0, 1),          # R = 0 accepts whenever Q > 0
        (M, 1, 0, 1),
    ]:
        Qr = q.copy()
        Qr[0] = [M - 300 - (q_x - 100), q_x, 200, 0]
        P = np.array([[M - p_x, p_x, 0, 0]])
        res = verify_round(_round(Qr, P, [1], [r], 0), M, U)
        assert res.accepted == want, (p_x, q_x, r)
    # R = 0 rejects a draft the target gives zero probability
    P = np.array([[M - 10, 0, 0, 10]])
    res = verify_round(_round(q, P, [3], [0], 0), M, U)
    assert res.accepted == 0
    # the exact boundary: R < ceil(Q 2^U / P) accepts
    P = np.array([[M - 300, 7, 293, 0]])
    Q = np.array([[M - 5, 3, 2, 0], [1, 2, 3, M - 6]])
    edge = -((-3 << U) // 7)
    assert verify_round(_round(Q, P, [1], [edge - 1], 0), M, U).accepted == 1
    assert verify_round(_round(Q, P, [1], [edge], 0), M, U).accepted == 0


def test_extreme_sample_uniforms():
    V = 7
    Q = np.array([[0, 0, 10, 0, M - 30, 20, 0],
                  [0, 3, 0, 0, M - 4, 0, 1]])
    P = np.array([[0, 0, 0, 10, M - 10, 0, 0]])   # residual: [0, 0, 10, 0, 0, 20, 0]
    # draft 3 has Q = 0: always rejected; the residual sample's end points
    assert verify_round(_round(Q, P, [3], [0], 0), M, U).decision() == (0, 2)
    assert verify_round(_round(Q, P, [3], [0], R_MAX), M, U).decision() == (0, 5)
    # draft 4 with R = 0 is accepted: the bonus sample's end points (first / last nonzero of q_2)
    assert verify_round(_round(Q, P, [4], [0], 0), M, U).decision() == (1, 1)
    assert verify_round(_round(Q, P, [4], [0], R_MAX), M, U).decision() == (1, 6)
    # the residual threshold splits 2^U exactly in the ratio 10 : 20
    split = -((-10 << U) // 30)   # smallest R with (R * 30) >> U >= 10
    assert verify_round(_round(Q, P, [3], [0], split - 1), M, U).token == 2
    assert verify_round(_round(Q, P, [3], [0], split), M, U).token == 5


def test_greedy_mode():
    V = 5
    Q = np.array([[1, 9, 3, 9, M - 22],     # argmax 4
                  [100, 300, 300, 0, M - 700],  # argmax 4
                  [M - 4, 1, 1, 1, 1],      # argmax 0
                  [(M - 1) // 2, 1, (M - 1) // 2, 0, 0]])  # tie 0 / 2 -> 0
    P = np.zeros((3, V), np.int64)
    P[:, 0] = M                               # greedy ignores p (zero draft probability allowed)
    for ra, rs in [(0, 0), (R_MAX, R_MAX), (17, 99)]:
        ones = np.full(3, ra)
        # all three accepted, bonus = argmax of q_4 with a tie -> lowest index
        assert verify_round(_round(Q, P, [4, 4, 0], ones, rs, greedy=True), M, U).decision() == (3, 0)
        # first rejection at t = 1: emit argmax q_2
        assert verify_round(_round(Q, P, [4, 2, 0], ones, rs, greedy=True), M, U).decision() == (1, 4)
        # rejection at t = 0
        assert verify_round(_round(Q, P, [3, 4, 0], ones, rs, greedy=True), M, U).decision() == (0, 4)
        # gamma = 0
        assert verify_round(_round(Q[3:], P[:0], [], [], rs, greedy=True), M, U).decision() == (0, 0)
    # a tie in q_t: only the lowest index counts as the argmax
    Qt = np.array([[0, (M - 1) // 2, 0, (M - 1) // 2, 1], [0, 0, 0, 0, M]])
    assert verify_round(_round(Qt, P[:1], [1], [0], 0, greedy=True), M, U).decision() == (1, 4)
    assert verify_round(_round(Qt, P[:1], [3], [0], 0, greedy=True), M, U).decision() == (0, 1)


# ---------------------------------------------------------------------------------------
# the integer path against the float textbook algorithm
# ---------------------------------------------------------------------------------------

def _random_float_round(rng):
    V = int(rng.integers(8, 65))
    G = int(rng.integers(1, 5))
    ranks = rng.permutation(V) + 1.0
    logits = -1.1 * np.log(ranks)[None, :] / rng.uniform(0.3, 1.5, size=(G + 1, 1))
    logits = logits + 0.3 * rng.standard_normal((G + 1, V))
    q = np.exp(logits - logits.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    zp = 0.8 * logits[:G] + 0.8 * rng.standard_normal((G, V))
    p = np.exp(zp - zp.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return q, p


def test_integer_path_matches_float_reference():
    rng = np.random.default_rng(2024)
    n_rounds = 3000
    disagree_accept = disagree_sample = agree = 0
    two_u = float(1 << U)
    for _ in range(n_rounds):
        q, p = _random_float_round(rng)
        G, V = p.shape
        Q, P = numerics.quantize_rows(q, M), numerics.quantize_rows(p, M)
        drafts = [numerics.sample_from_weights(P[t], int(r), U) for t, r in enumerate(_uniforms(rng, G))]
        Ra = _uniforms(rng, G)
        rs = int(_uniforms(rng, 1)[0])
        got = verify_round(make_round(Q, P, drafts, Ra, rs), M, U).decision()
        ref = numerics.float_speculative_round(drafts, p, q, Ra / two_u, rs / two_u)
        if got == ref:
            agree += 1
            continue
        if got[0] != ref[0]:
            # the first accept test that went differently: its float margin is below 2 / M
            t = min(got[0], ref[0])
            x = drafts[t]
            margin = abs(Ra[t] / two_u * p[t, x] - q[t, x])
            assert margin < 2 / M, f"accept test disagreement with margin {margin * M:.2f} / M"
            disagree_accept += 1
        else:
            t = got[0]
            if t < G:
                w_f, w_i = np.maximum(q[t] - p[t], 0), numerics.residual_weights(Q[t], P[t])
            else:
                w_f, w_i = q[t], Q[t]
            c_f, c_i = np.cumsum(w_f) * M, np.cumsum(w_i)
            s_f, s_i = c_f[-1], (int(c_i[-1]) if t < G else M)
            gap = np.min(np.abs(c_f - rs / two_u * s_f))            # distance to a float boundary
            err = np.max(np.abs(c_i - c_f)) + abs(s_i - s_f) + 1     # quantisation error, in units
            assert gap <= err, f"sample disagreement {got} vs {ref} with gap {gap:.2f} > {err:.2f} units"
            assert gap < 4 * V + 1
            disagree_sample += 1
    total = disagree_accept + disagree_sample
    assert agree + total == n_rounds
    assert total < 0.01 * n_rounds, f"{total} disagreements in {n_rounds} rounds"


def test_greedy_integer_path_matches_float_reference():
    rng = np.random.default_rng(7)
    diffs = 0
    for _ in range(500):
        q, p = _random_float_round(rng)
        G, V = p.shape
        Q, P = numerics.quantize_rows(q, M), numerics.quantize_rows(p, M)
        # drafts: the target's argmax most of the time
        drafts = [int(np.argmax(q[t])) if rng.random() < 0.7 else int(rng.integers(V)) for t in range(G)]
        got = verify_round(make_round(Q, P, drafts, np.zeros(G), 0, greedy=True), M, U).decision()
        ref = numerics.float_speculative_round(drafts, p, q, np.zeros(G), 0.0, greedy=True)
        if got != ref:
            diffs += 1
            t = min(got[0], ref[0])
            top2 = np.sort(q[t])[-2:]
            assert top2[1] - top2[0] < 2 / M
    assert diffs <= 5


# ---------------------------------------------------------------------------------------
# exact at every width the trace format admits (U = 1..64, W = 1..31), against an
# independent arbitrary-precision reference (Fractions and Python ints only)
# ---------------------------------------------------------------------------------------

def _ref_accept(r: int, p_x: int, q_x: int, u: int) -> bool:
    """min(1, Q/P) > R / 2^U, in exact rationals."""
    return Fraction(r, 1 << u) < Fraction(q_x, p_x)


def _ref_sample(weights, r: int, u: int, total: int | None = None) -> int:
    """Inverse CDF in exact rationals: the smallest k with (w_0 + ... + w_k) / S > R / 2^U."""
    w = [int(x) for x in weights]
    s = sum(w) if total is None else total
    c = 0
    for k, wk in enumerate(w):
        c += wk
        if Fraction(c, s) > Fraction(r, 1 << u):
            return k
    raise AssertionError("no outcome")


def _ref_round(q_rows, p_rows, drafts, accept_u, sample_u, u: int, m: int) -> tuple[int, int]:
    """One stochastic round with Python ints and Fractions only (NUMERICS.md sections 5-6)."""
    for t, x in enumerate(drafts):
        if not _ref_accept(int(accept_u[t]), int(p_rows[t][x]), int(q_rows[t][x]), u):
            res = [max(0, int(a) - int(b)) for a, b in zip(q_rows[t], p_rows[t])]
            return t, _ref_sample(res, int(sample_u), u)
    return len(drafts), _ref_sample(q_rows[len(drafts)], int(sample_u), u, total=m)


def _edge_uniforms(u: int, rng, n: int = 6) -> list[int]:
    top = (1 << u) - 1
    edges = {0, 1, top, top - 1, top >> 1, (top >> 1) + 1, (top >> 1) - 1}
    edges |= {int(x) for x in rng.integers(0, top, size=n, dtype=np.uint64, endpoint=True)}
    return sorted(v for v in edges if 0 <= v <= top)


@pytest.mark.parametrize("u_bits", [1, 2, 63, 64])
@pytest.mark.parametrize("w_bits", [2, 24, 31])
def test_accept_is_exact_at_extreme_widths(u_bits, w_bits):
    m = numerics.default_row_sum(w_bits)
    rng = np.random.default_rng(u_bits * 100 + w_bits)
    pq = {(1, 0), (1, 1), (m, m), (m, m - 1), (m, 1), (1, m), (m - 1, m)}
    pq |= {(int(p), int(q)) for p, q in rng.integers(1, m, size=(8, 2), endpoint=True)}
    pq |= {(p, p - 1) for p, _ in list(pq) if p > 1}
    for r in _edge_uniforms(u_bits, rng):
        for p_x, q_x in pq:
            want = _ref_accept(r, p_x, q_x, u_bits)
            # as a Python int, and as the numpy scalars a trace file hands out
            assert numerics.accept(r, p_x, q_x, u_bits) == want, (r, p_x, q_x)
            assert numerics.accept(np.uint64(r), np.int64(p_x), np.int64(q_x), u_bits) == want


@pytest.mark.parametrize("u_bits", [1, 2, 63, 64])
@pytest.mark.parametrize("w_bits", [2, 24, 31])
def test_samplers_are_exact_at_extreme_widths(u_bits, w_bits):
    m = numerics.default_row_sum(w_bits)
    rng = np.random.default_rng(u_bits * 1000 + w_bits)
    V = 9
    q = numerics.quantize_rows(rng.dirichlet(np.full(V, 0.4), size=6), m)
    p = numerics.quantize_rows(rng.dirichlet(np.full(V, 0.4), size=6), m)
    rows = list(zip(q, p)) + [(np.eye(V, dtype=np.int64)[3] * m, np.eye(V, dtype=np.int64)[5] * m)]
    for r in _edge_uniforms(u_bits, rng):
        for q_row, p_row in rows:
            res = [max(0, int(a) - int(b)) for a, b in zip(q_row, p_row)]
            if sum(res):
                assert numerics.residual_sample(q_row, p_row, np.uint64(r), u_bits) == _ref_sample(res, r, u_bits)
            assert numerics.bonus_sample(q_row, np.uint64(r), u_bits, m) == _ref_sample(q_row, r, u_bits, total=m)
            assert numerics.sample_from_weights(q_row, r, u_bits) == _ref_sample(q_row, r, u_bits)


@pytest.mark.parametrize("u_bits,w_bits", [(64, 31), (64, 16), (63, 24), (1, 2), (1, 31)])
def test_verify_round_equals_the_big_int_reference(u_bits, w_bits):
    """Whole rounds with uniforms given as uint64 (as a trace holds them, half of them >= 2^63
    at U = 64), through verify_round and through a written and re-read trace file."""
    from hades.traces.format import read_trace, trace_from_rounds, write_trace
    m = numerics.default_row_sum(w_bits)
    rng = np.random.default_rng(u_bits + w_bits)
    V, G = 12, 3
    rounds, want = [], []
    for i in range(60):
        q = numerics.quantize_rows(rng.dirichlet(np.full(V, 0.5), size=G + 1), m)
        p = numerics.quantize_rows(rng.dirichlet(np.full(V, 0.5), size=G), m)
        drafts = [int(rng.choice(np.flatnonzero(p[t]))) for t in range(G)]
        us = rng.integers(0, 1 << u_bits, size=G + 1, dtype=np.uint64, endpoint=False)
        if i % 5 == 0:
            us[:] = (1 << u_bits) - 1
        rnd = Round(greedy=False, draft_tokens=np.array(drafts, np.int64), draft_probs=p, target_probs=q,
                    accept_uniforms=us[:G], sample_uniform=us[G])
        rounds.append(rnd)
        want.append(_ref_round(q, p, drafts, [int(x) for x in us[:G]], int(us[G]), u_bits, m))
        assert verify_round(rnd, m, u_bits).decision() == want[-1], i
    assert {w[0] for w in want} >= {0, G}   # both rejections and all-accepted rounds occur
    import tempfile
    from pathlib import Path
    tr = trace_from_rounds(rounds, want, mode="stochastic", vocab_size=V, row_sum=m, prob_bits=w_bits,
                           uniform_bits=u_bits)
    with tempfile.TemporaryDirectory() as tmp:
        back = read_trace(write_trace(Path(tmp) / "t.npz", tr))
    for i, rnd in enumerate(back.rounds()):
        assert verify_round(rnd, m, u_bits).decision() == want[i], i


def test_uniforms_are_held_exactly_or_refused():
    from hades.round import uniform_array
    big = [(1 << 64) - 1, 1 << 63, (1 << 63) - 1, 0]
    assert [int(x) for x in uniform_array(big)] == big
    assert uniform_array(np.array(big, np.uint64)).dtype == np.uint64
    for bad in ([-1], [1 << 64], np.array([-5], np.int64), np.array([0.5]), np.array([2.0 ** 60])):
        with pytest.raises(ValueError):
            uniform_array(bad)
    V = 3
    q = np.array([[1, 1, 1], [1, 1, 1]])
    with pytest.raises(ValueError):   # a uniform wrapped negative by an int64 cast is refused, not used
        Round(greedy=False, draft_tokens=np.array([0]), draft_probs=q[:1], target_probs=q,
              accept_uniforms=np.array([1 << 63], np.uint64).astype(np.int64), sample_uniform=0)
    with pytest.raises(ValueError):
        Round(greedy=False, draft_tokens=np.array([0]), draft_probs=q[:1], target_probs=q,
              accept_uniforms=np.array([0]), sample_uniform=-1)
    for r in (-1, 1 << 16):
        with pytest.raises(ValueError):
            numerics.accept(r, 1, 1, 16)
        with pytest.raises(ValueError):
            numerics.sample_threshold(r, V, 16)


def test_synthetic_trace_at_u64_cli_then_fl_equals_the_big_int_reference(tmp_path, capsys):
    """`hades trace --synthetic --uniform-bits 64`, then FL re-verification of the file: both
    the recorded and the re-derived decisions are those of the big-int reference."""
    from hades.cli import main
    from hades.traces.format import read_trace
    out = tmp_path / "u64.npz"
    rc = main(["trace", "--synthetic", "--trace-format", "1", "-o", str(out), "--uniform-bits", "64", "--vocab", "24",
               "--rounds", "60", "--gamma", "1,4", "--seed", "3", "--no-progress"])
    capsys.readouterr()
    assert rc in (0, None)
    tr = read_trace(out)
    assert tr.uniform_bits == 64 and tr.accept_uniforms.dtype == np.uint64
    assert (tr.accept_uniforms >= np.uint64(1 << 63)).sum() > 20   # the upper half is well exercised
    M_ = tr.row_sum
    mismatched = []
    for i, rnd in enumerate(tr.rounds()):
        g = int(tr.gamma[i])
        want = _ref_round([[int(v) for v in row] for row in tr.target_probs[i, : g + 1]],
                          [[int(v) for v in row] for row in tr.draft_probs[i, :g]],
                          [int(x) for x in tr.draft_tokens[i, :g]],
                          [int(x) for x in tr.accept_uniforms[i, :g]], int(tr.sample_uniform[i]), 64, M_)
        recorded = (int(tr.expected_accepted[i]), int(tr.expected_token[i]))
        if not (recorded == want == verify_round(rnd, M_, 64).decision()):
            mismatched.append(i)
    assert not mismatched, f"rounds {mismatched} differ from the big-int reference"
