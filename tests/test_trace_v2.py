"""Trace file v2 (docs/TRACE_FORMAT.md "Trace file v2"): round trip, one reader for v1 and v2,
every refusal, mixed rounds, per-round temperatures, min-p, top-k and top-p (the draft's own
too), the producers (synthetic and the model recorder), `hades verify` at FL and the hardware
levels' refusal of the filters they do not have yet."""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import fields, replace

import numpy as np
import pytest

from hades import numerics
from hades.cli import main
from hades.errors import ConfigError, TraceError
from hades.fl.verifier import draft_tokens_from_logits, logit_weight_rows, verify_logit_round
from hades.traces.format import Trace, read_trace, trace_from_arrays, write_trace
from hades.traces.format_v2 import (FORMAT_V2, V2_ARRAY_KEYS, V2_SCALAR_KEYS, LogitTrace, file_arrays,
                                    logit_trace_from_rounds)
from hades.traces.synthetic import LogitSyntheticSpec, SyntheticSpec, synthetic_logit_trace, synthetic_trace
from harness.bad_inputs import V2_MUTATIONS, good_v2_arrays

MIXED = LogitSyntheticSpec(vocab_size=96, rounds=40, gammas=(0, 1, 3, 4), seed=11)
FILTERED = replace(MIXED, rounds=48, seed=13, top_ks=(0, 1, 5, 50), top_ps=(1.0, 0.9, 0.5), draft_top_ks=(0, 8, 200))


@pytest.fixture(scope="module")
def mixed():
    return synthetic_logit_trace(MIXED)


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def _same_arrays(a, b):
    for k in V2_ARRAY_KEYS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), k


# ---- the file ------------------------------------------------------------------------------------

def test_round_trip_keeps_every_key_and_round(tmp_path, mixed):
    back = read_trace(write_trace(tmp_path / "t.npz", mixed))
    assert isinstance(back, LogitTrace)
    _same_arrays(mixed, back)
    assert back.meta == json.loads(json.dumps(mixed.meta))
    assert (back.vocab_size, back.weight_bits, back.uniform_bits) == (96, 16, 32)
    for a, b in zip(mixed.rounds(), back.rounds()):
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            assert np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y, f.name
    with np.load(tmp_path / "t.npz") as z:   # exactly the keys of the table, at the written dtypes
        assert sorted(z.files) == sorted(V2_SCALAR_KEYS + V2_ARRAY_KEYS)
        assert str(z["format"]) == FORMAT_V2 and str(z["logit_format"]) == "bf16"
        assert int(z["logit_frac_bits"]) == 8 and int(z["inv_temp_frac_bits"]) == 16
        want = dict(gamma=np.int32, greedy=np.uint8, onehot_draft=np.uint8, draft_tokens=np.int32,
                    draft_logits=np.uint16, target_logits=np.uint16, draft_params=np.int64, target_params=np.int64,
                    draft_uniforms=np.uint32, accept_uniforms=np.uint32, sample_uniform=np.uint32,
                    expected_accepted=np.int32, expected_token=np.int32)
        for k, dt in want.items():
            assert z[k].dtype == dt, k


def test_one_reader_returns_v1_or_v2_by_the_format_key(tmp_path):
    v1 = read_trace(write_trace(tmp_path / "v1.npz", synthetic_trace(SyntheticSpec(vocab_size=32, rounds=2))))
    v2 = read_trace(write_trace(tmp_path / "v2.npz", synthetic_logit_trace(LogitSyntheticSpec(vocab_size=32, rounds=2))))
    assert type(v1) is Trace and type(v2) is LogitTrace
    assert isinstance(trace_from_arrays(good_v2_arrays()), LogitTrace)


def test_uint64_uniforms_at_u64(tmp_path):
    tr = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=48, rounds=6, gammas=(3,), uniform_bits=64, seed=2))
    assert tr.accept_uniforms.dtype == np.uint64 and int(tr.sample_uniform.max()) >= 1 << 32
    back = read_trace(write_trace(tmp_path / "t.npz", tr))
    _same_arrays(tr, back)
    for i, r in enumerate(back.rounds()):
        assert verify_logit_round(r, 16, 64).decision() == (back.expected_accepted[i], back.expected_token[i])


@pytest.mark.parametrize("mutate,expect,name", V2_MUTATIONS, ids=[m[2] for m in V2_MUTATIONS])
def test_each_refusal_names_key_and_round(mutate, expect, name):
    """Every row of the v2 bad-input table (also run as files by tests/test_bad_input.py),
    here on the arrays in memory: one TraceError line naming what is wrong."""
    d = good_v2_arrays()
    mutate(d)
    with pytest.raises(TraceError) as ei:
        trace_from_arrays(d)
    msg = str(ei.value)
    assert expect in msg and "\n" not in msg
    if "round" in expect or "entry" in expect or "masked" in expect or "draft sample" in expect:
        assert "round" in msg


def test_refusals_name_the_key_round_and_row():
    d = good_v2_arrays()
    d["target_logits"][2, 1, 7] = numerics.BF16_QUIET_NAN
    with pytest.raises(TraceError, match=r"key 'target_logits', round 2, row 1: entry 7 is NaN"):
        trace_from_arrays(d)
    d = good_v2_arrays()
    r = int(np.flatnonzero((d["greedy"] == 0) & (d["onehot_draft"] == 0))[0])
    d["draft_tokens"][r, 1] = (int(d["draft_tokens"][r, 1]) + 1) % 40
    with pytest.raises(TraceError, match=rf"key 'draft_tokens', round {r}, slot 1: token \d+ is not the draft sample"):
        trace_from_arrays(d)


def test_a_stochastic_one_hot_or_greedy_draft_needs_not_be_a_draft_sample():
    d = good_v2_arrays()
    onehot = int(np.flatnonzero(d["onehot_draft"] == 1)[0])
    greedy = int(np.flatnonzero(d["greedy"] == 1)[0])
    for r in (onehot, greedy):
        d["draft_tokens"][r, 0] = (int(d["draft_tokens"][r, 0]) + 1) % 40
    trace_from_arrays(d)   # accepted: only stochastic model drafts are re-derived


def test_entries_past_gamma_and_ignored_rows_are_not_read(mixed):
    d = {k: v.copy() for k, v in file_arrays(mixed).items()}
    G = d["draft_tokens"].shape[1]
    for r, g in enumerate(d["gamma"]):
        d["draft_tokens"][r, g:] = 10**6
        d["draft_logits"][r, g:] = numerics.BF16_QUIET_NAN
        d["target_logits"][r, g + 1:] = numerics.BF16_POS_INF
        d["accept_uniforms"][r, g:] = np.iinfo(np.uint32).max
        if d["onehot_draft"][r]:   # one-hot drafts: the draft rows are ignored too
            d["draft_logits"][r] = numerics.BF16_NEG_INF
    assert G == 4
    junk = trace_from_arrays(d)
    for i in range(junk.num_rounds):
        assert verify_logit_round(junk.round(i), 16, 32).decision() == verify_logit_round(mixed.round(i), 16, 32).decision()


def test_writer_refuses_what_the_reader_refuses(tmp_path, mixed):
    tr = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=32, rounds=3, seed=4))
    tr.target_logits[0, 0, 0] = numerics.BF16_POS_INF   # mutated after construction
    with pytest.raises(TraceError, match="entry 0 is \\+inf"):
        write_trace(tmp_path / "bad.npz", tr)
    assert not (tmp_path / "bad.npz").exists()


# ---- the synthetic producer ----------------------------------------------------------------------

def test_mixed_greedy_stochastic_and_one_hot_rounds_in_one_file(tmp_path, mixed):
    g, o = mixed.greedy.astype(bool), mixed.onehot_draft.astype(bool)
    assert mixed.mode == "mixed"
    for kind in (g & o, g & ~o, ~g & o, ~g & ~o):
        assert kind.any()
    assert (mixed.target_logits == numerics.BF16_NEG_INF).any()   # some rows carry masked entries
    back = read_trace(write_trace(tmp_path / "t.npz", mixed))
    for i, r in enumerate(back.rounds()):
        assert verify_logit_round(r, 16, 32, where=f"round {i}").decision() == \
            (back.expected_accepted[i], back.expected_token[i])
    assert back.expected_accepted.sum() > 0 and (back.expected_accepted < back.gamma).any()


def test_temperature_and_min_p_differ_per_round_and_each_round_uses_its_own(mixed):
    k, min_p = mixed.target_params[:, 0], mixed.target_params[:, 3]
    ks = {numerics.inverse_temperature(t) for t in (0.5, 1.5)}
    assert min(ks) <= k.min() and k.max() <= max(ks) and len(set(k.tolist())) == mixed.num_rounds
    assert set(min_p.tolist()) == {numerics.fraction_units(p) for p in (0, 0.05, 0.1)}
    assert (mixed.target_params[:, 1] == 0).all() and (mixed.target_params[:, 2] == 65536).all()
    differs = 0
    for i in np.flatnonzero(~mixed.greedy.astype(bool)):
        rnd = mixed.round(int(i))
        _, _, q, zq = logit_weight_rows(rnd, 16, 32, where=f"round {i}")
        w, z = numerics.logit_weights(rnd.target_logits[0], rnd.target_params, 16)
        assert np.array_equal(q[0], w) and zq[0] == z
        w1, _ = numerics.logit_weights(rnd.target_logits[0], (94548, 0, 65536, 0), 16)
        differs += not np.array_equal(w, w1)
    assert differs > 0


@pytest.fixture(scope="module")
def filtered():
    return synthetic_logit_trace(FILTERED)


def test_top_k_and_top_p_differ_per_round_and_side_and_each_round_uses_its_own(tmp_path, filtered):
    tp, dp = filtered.target_params, filtered.draft_params
    assert set(tp[:, 1].tolist()) == {0, 1, 5, 50} and set(tp[:, 2].tolist()) == {65536, 58982, 32768}
    assert set(dp[:, 1].tolist()) == {0, 8, 200} and (dp[:, 2] == tp[:, 2]).all()     # the draft's own top-k
    assert (dp[:, [0, 3]] == tp[:, [0, 3]]).all()
    back = read_trace(write_trace(tmp_path / "f.npz", filtered))
    _same_arrays(filtered, back)
    cut = 0
    for i, rnd in enumerate(back.rounds()):
        assert verify_logit_round(rnd, 16, 32, where=f"round {i}").decision() == \
            (back.expected_accepted[i], back.expected_token[i])
        if rnd.greedy:
            continue
        p, _, q, zq = logit_weight_rows(rnd, 16, 32, where=f"round {i}")
        w, z = numerics.logit_weights(rnd.target_logits[0], rnd.target_params, 16)
        assert np.array_equal(q[0], w) and zq[0] == z
        k, top_k, top_p, min_p = rnd.target_params
        unfiltered, _ = numerics.logit_weights(rnd.target_logits[0], (k, 0, 65536, min_p), 16)
        cut += (w > 0).sum() < (unfiltered > 0).sum()
        if top_k:
            assert (w > 0).sum() <= top_k
        if not rnd.onehot_draft and rnd.draft_params[1]:
            assert all((row > 0).sum() <= rnd.draft_params[1] for row in p)
    assert cut > 10
    assert back.meta["spec"]["top_ks"] == [0, 1, 5, 50] and back.meta["spec"]["draft_top_ks"] == [0, 8, 200]
    assert "draft_top_ps" not in back.meta["spec"]


def test_synthetic_filters_left_off_change_nothing(mixed):
    assert not {"top_ks", "top_ps", "draft_top_ks", "draft_top_ps"} & set(mixed.meta["spec"])
    assert (mixed.target_params[:, 1] == 0).all() and (mixed.draft_params[:, 2] == 65536).all()
    with pytest.raises(ConfigError, match="top_ps must be a finite number in \\(0, 1\\], got 0.0"):
        synthetic_logit_trace(replace(MIXED, top_ps=(0.9, 0.0)))
    with pytest.raises(ConfigError, match="top_ks must be in 0..2\\^24, got -1"):
        synthetic_logit_trace(replace(MIXED, top_ks=(-1,)))
    with pytest.raises(ConfigError, match="draft_top_ks needs at least one value"):
        synthetic_logit_trace(replace(MIXED, draft_top_ks=()))


def test_a_model_draft_drawn_under_the_targets_filters_is_refused(filtered):
    """The reader re-derives each model draft under the draft's own parameters: a draft drawn
    under the target's (other) top-k is refused, as any draft from another distribution."""
    d = {k: v.copy() for k, v in file_arrays(filtered).items()}
    for r in range(filtered.num_rounds):
        rnd = filtered.round(r)
        if rnd.greedy or rnd.onehot_draft or not rnd.gamma or rnd.draft_params == rnd.target_params:
            continue
        wrong = draft_tokens_from_logits(rnd.draft_logits, rnd.target_params, rnd.draft_uniforms, 16, 32)
        if not np.array_equal(wrong, rnd.draft_tokens):
            d["draft_tokens"][r, :rnd.gamma] = wrong
            break
    else:
        raise AssertionError("no round whose draft filters change its drafts")
    with pytest.raises(TraceError, match=f"key 'draft_tokens', round {r}, slot .* is not the draft sample"):
        trace_from_arrays(d)


def test_the_hardware_levels_run_the_filters_exactly_where_they_act(filtered):
    """The logit block runs its top-k / top-p select passes (filter_flags) on a stochastic round's
    target rows and on its model draft rows, where top-k (0 < top_k < V) or top-p (< 2^16) acts,
    and nowhere else: greedy rounds and the draft side of one-hot rounds take none. The CL's
    filter_cycles are LogitLayout.filter_cycles per filtered row, and 0 without flags."""
    from hades.cl.logit_model import logit_timed_results
    from hades.cl.logit_timing import logit_round_timing
    from hades.cl.timing import TimingConfig
    from hades.config import VerifierConfig
    from hades.logit_protocol import LogitLayout, filter_flags
    cfg = VerifierConfig(lanes=4, vocab_max=128, gamma_max=4)
    tc, lay = TimingConfig(hw=cfg), LogitLayout(cfg)
    rounds = list(filtered.rounds())
    outs = logit_timed_results(tc, rounds)
    flags = [filter_flags(r) for r in rounds]
    t = logit_round_timing(tc, [r.gamma for r in rounds], filtered.vocab_size, [r.greedy for r in rounds],
                           [r.onehot_draft for r in rounds], [o.result.accepted for o in outs],
                           [o.result.token for o in outs], filtered.draft_tokens, flags)
    words = -(-filtered.vocab_size // cfg.lanes)
    seen = [0, 0, 0, 0]
    for i, (r, f, o) in enumerate(zip(rounds, flags, outs)):
        tp, dp = numerics.SamplingParams(*r.target_params), numerics.SamplingParams(*r.draft_params)
        model = not r.onehot_draft and r.gamma > 0 and not r.greedy
        assert f == (model and 0 < dp.top_k < r.vocab_size, model and dp.top_p < numerics.FRACTION_ONE,
                     not r.greedy and 0 < tp.top_k < r.vocab_size, not r.greedy and tp.top_p < numerics.FRACTION_ONE)
        seen = [a + b for a, b in zip(seen, f)]
        target_rows = o.result.accepted + 1 if not r.greedy else 0
        want = (r.gamma * lay.filter_cycles(words, f[0], f[1]) if model else 0) + \
            target_rows * lay.filter_cycles(words, f[2], f[3])
        assert t.filter_cycles[i] == want, i
    assert all(seen)


def test_synthetic_model_drafts_are_draft_samples_of_their_uniforms(mixed):
    for i in np.flatnonzero(~mixed.greedy.astype(bool) & ~mixed.onehot_draft.astype(bool)):
        r = mixed.round(int(i))
        assert np.array_equal(draft_tokens_from_logits(r.draft_logits, r.draft_params, r.draft_uniforms, 16, 32),
                              r.draft_tokens)


def test_synthetic_v2_is_a_function_of_its_seed(mixed):
    again = synthetic_logit_trace(MIXED)
    _same_arrays(mixed, again)
    assert mixed.meta["seed"] == 11 and mixed.meta["spec"]["seed"] == 11
    other = synthetic_logit_trace(replace(MIXED, seed=12))
    assert not np.array_equal(other.target_logits, mixed.target_logits)


def test_logit_trace_from_rounds_refuses_gamma_above_g():
    tr = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=16, rounds=2, gammas=(3,)))
    with pytest.raises(TraceError, match="gamma 3 above gamma_max 2"):
        logit_trace_from_rounds(tr.rounds(), [(0, 0)] * 2, vocab_size=16, weight_bits=16, uniform_bits=32, gamma_max=2)


# ---- the command line ----------------------------------------------------------------------------

def test_trace_cli_writes_v2_that_verify_reads_at_fl(tmp_path):
    out = tmp_path / "s.npz"
    rc, text, err = _run(["trace", "--synthetic", "--trace-format", "2", "-o", str(out), "--vocab", "64",
                          "--rounds", "12", "--gamma", "2,3", "--seed", "5"])
    assert rc == 0, err
    tr = read_trace(out)
    assert isinstance(tr, LogitTrace) and tr.meta["regenerate"].startswith("hades trace --synthetic --trace-format 2")
    rc, text, err = _run(["verify", str(out), "--json"])
    assert rc == 0, err
    res = json.loads(text)
    assert res["level"] == "fl" and res["summary"]["mismatches"] == 0 and len(res["rounds"]) == 12
    assert set(res["rounds"][0]) == {"round", "gamma", "accepted", "token", "expected_accepted",
                                     "expected_token", "draft_tokens", "match"}
    # the regenerate line rebuilds the same arrays
    args = tr.meta["regenerate"].split()[1:] + ["-o", str(tmp_path / "again.npz")]
    assert _run(args)[0] == 0
    _same_arrays(tr, read_trace(tmp_path / "again.npz"))


def test_trace_cli_defaults_to_v2_and_format_1_gives_v1(tmp_path):
    out = tmp_path / "s.npz"
    assert _run(["trace", "--synthetic", "-o", str(out), "--vocab", "32", "--rounds", "2"])[0] == 0
    assert type(read_trace(out)) is LogitTrace
    assert _run(["trace", "--synthetic", "--trace-format", "1", "-o", str(out), "--vocab", "32", "--rounds", "2"])[0] == 0
    v1 = read_trace(out)
    assert type(v1) is Trace and v1.meta["regenerate"].startswith("hades trace --synthetic --trace-format 1 ")


def test_verify_marks_a_wrong_expected_decision(tmp_path, mixed):
    d = {k: v.copy() for k, v in file_arrays(mixed).items()}
    d["expected_token"][3] = (int(d["expected_token"][3]) + 1) % 96
    path = tmp_path / "wrong.npz"
    write_trace(path, trace_from_arrays(d))
    rc, text, err = _run(["verify", str(path)])
    assert rc == 1 and "MISMATCH" in text and "1 round(s) differ" in err


SMALL_HW = ["--lanes", "4", "--vocab-max", "128", "--gamma-max", "4"]


@pytest.mark.parametrize("which", ["mixed", "filtered"])
@pytest.mark.parametrize("sim", [False, True], ids=["model", "sim"])
def test_verify_v2_at_every_level(tmp_path, request, level, sim_options, sim, which):
    """`hades verify` on a v2 trace at each level (rtl: through the logit RTL, always simulated;
    fl and cl: the model functions, or with --sim the stream components): every decision and
    every sampled draft token as the trace's, and at cl and rtl the counters of
    logit_timed_results. `filtered` has top-k and top-p on most rounds, differing per side."""
    mixed = request.getfixturevalue(which)
    if level == "rtl" and not sim:
        pytest.skip("rtl always simulates: the sim variant covers it")
    from hades.cl.logit_model import logit_timed_results
    from hades.cl.timing import TimingConfig
    from hades.config import VerifierConfig
    path = write_trace(tmp_path / "t.npz", mixed)
    extra = ["--sim"] if sim and level != "rtl" else []
    if level == "rtl":
        extra = ["--rtl-backend", sim_options.backend]
    rc, text, err = _run(["verify", str(path), "--level", level, "--json", *SMALL_HW, *extra])
    assert rc == 0, err
    res = json.loads(text)
    assert res["summary"]["mismatches"] == 0 and len(res["rounds"]) == mixed.num_rounds
    want = logit_timed_results(TimingConfig(hw=VerifierConfig(lanes=4, vocab_max=128, gamma_max=4)), mixed.rounds())
    for i, (row, w) in enumerate(zip(res["rounds"], want)):
        assert row["match"] and row["draft_tokens"] == [d.token for d in w.drafts]
        assert row["draft_tokens"] == mixed.draft_tokens[i, :len(w.drafts)].tolist()
        if level == "fl":
            assert "cycles" not in row
        else:
            assert (row["cycles"], row["latency"]) == (w.result.cycles, w.result.latency)
            assert row["draft_cycles"] == [d.cycles for d in w.drafts]
    if level != "fl":
        assert res["summary"]["total_cycles"] == sum(w.result.cycles for w in want)
        assert "latency_bound_rejected" not in res["summary"]


def test_verify_v2_marks_a_greedy_draft_the_block_does_not_sample(tmp_path, mixed):
    """The reader checks stochastic model drafts against their rows; a greedy model draft
    that is not its row's argmax is caught by verify, which compares the block's samples."""
    d = {k: v.copy() for k, v in file_arrays(mixed).items()}
    r = next(i for i in range(mixed.num_rounds) if mixed.greedy[i] and not mixed.onehot_draft[i] and mixed.gamma[i])
    d["draft_tokens"][r, 0] = (int(d["draft_tokens"][r, 0]) + 1) % 96
    path = tmp_path / "wrong.npz"
    write_trace(path, trace_from_arrays(d))
    rc, text, err = _run(["verify", str(path), "--level", "cl"])
    assert rc == 1 and "MISMATCH" in text and "differ from the trace's expected results or draft tokens" in err


def test_bench_runs_v2_from_logits(tmp_path, mixed):
    path = write_trace(tmp_path / "t.npz", mixed)
    rc, text, err = _run(["bench", "--trace", str(path), "--csv", str(tmp_path / "b.csv"), "--cache-dir",
                          str(tmp_path / "c"), "--rtl-check-rounds", "0", "--repeats", "1"])
    assert rc == 0, err
    assert "hades bench from logits" in text and "Logit block (c) per round" in text   # gamma 4 only: 2 and 8 are absent
    assert (tmp_path / "b.csv").read_text().count("\n4,") == 6
    rc, _, err = _run(["bench", "--trace", str(path), "--gammas", "4", "--prob-bits", "12", "--rtl-check-rounds", "0"])
    assert rc == 2 and "weight_bits=16" in err and "prob_bits=12" in err


def test_check_logit_trace_compares_w_with_prob_bits(mixed):
    from hades.config import VerifierConfig
    VerifierConfig().check_logit_trace(mixed)
    with pytest.raises(TraceError, match="weight_bits=16 differs from the hardware's prob_bits=12"):
        VerifierConfig(prob_bits=12).check_logit_trace(mixed)
    with pytest.raises(TraceError, match="gamma_max=2"):
        VerifierConfig(gamma_max=2).check_logit_trace(mixed)


# ---- the model recorder ----------------------------------------------------------------------------

def test_decode_config_v1_meta_is_unchanged_and_v2_options_are_checked():
    from hades.llm.specdec import DecodeConfig, config_meta
    meta = config_meta(DecodeConfig())
    assert "trace_format" not in meta and "min_p" not in meta and meta["row_sum"] == 65535
    v2 = config_meta(DecodeConfig(trace_format=2, min_p=0.05, temperature=0.8))
    assert v2["weight_bits"] == 16 and "row_sum" not in v2
    assert v2["sampling_params"] == [numerics.inverse_temperature(0.8), 0, 65536, 3277]
    assert "top_k" not in meta and "draft_top_k" not in meta
    assert v2["top_k"] == 0 and v2["top_p"] == 1.0 and "draft_sampling_params" not in v2
    f = DecodeConfig(trace_format=2, temperature=0.7, top_k=50, top_p=0.9, draft_top_p=0.95)
    f.check()
    assert f.sampling_params == (numerics.inverse_temperature(0.7), 50, 58982, 0)
    assert f.draft_sampling_params == (numerics.inverse_temperature(0.7), 50, 62259, 0)
    fm = config_meta(f)
    assert fm["draft_sampling_params"] == list(f.draft_sampling_params) and fm["draft_top_p"] == 0.95
    assert "draft_top_k" not in fm
    for bad, match in ((dict(top_k=5), "top-k needs trace format 2"), (dict(draft_top_p=0.5), "top-p needs trace"),
                       (dict(trace_format=2, top_p=0.0), r"top_p must be a finite number in \(0, 1\]"),
                       (dict(trace_format=2, top_p=1e-7), "top_p must be > 0"),
                       (dict(trace_format=2, top_k=-2), "top_k must be in 0..2\\^24"),
                       (dict(trace_format=2, draft_top_k=1.5), "draft_top_k must be an integer"),
                       (dict(min_p=0.1), "needs trace format 2"), (dict(trace_format=3), "1 or 2"),
                       (dict(trace_format=2, min_p=float("nan")), r"\[0, 1\]"),
                       (dict(trace_format=2, temperature=1e-3), "outside 1..2\\^24-1")):
        with pytest.raises(ConfigError, match=match):
            DecodeConfig(**bad).check()


@pytest.mark.model
def test_model_pair_records_a_v2_trace_that_reverifies_at_fl(tmp_path, embedded_pair_loader):
    from hades.llm.record import record_trace
    from hades.llm.specdec import DecodeConfig
    pair = embedded_pair_loader.get()
    cfg = DecodeConfig(gammas=(2, 3, 4), temperature=0.8, min_p=0.05, seed=3, max_rounds=4, max_new_tokens=None,
                       record=True, trace_format=2)
    tr = record_trace(pair, cfg, "Write a haiku about the sea.")
    path = write_trace(tmp_path / "m.npz", tr)
    back = read_trace(path)
    assert isinstance(back, LogitTrace) and back.num_rounds == 4 and back.vocab_size == pair.vocab_size
    assert back.gamma.tolist() == [2, 3, 4, 2] and back.mode == "stochastic" and not back.onehot_draft.any()
    params = [numerics.inverse_temperature(0.8), 0, 65536, numerics.fraction_units(0.05)]
    assert (back.draft_params == params).all() and (back.target_params == params).all()
    assert back.meta["trace_format"] == 2 and back.meta["min_p"] == 0.05 and back.meta["temperature"] == 0.8
    assert back.meta["decode"]["sampling_params"] == params and back.meta["decode"]["weight_bits"] == 16
    rc, text, err = _run(["verify", str(path), "--json"])
    assert rc == 0, err
    res = json.loads(text)
    assert res["summary"]["mismatches"] == 0
    emitted = []   # the software path emitted what the file decides
    for i, row in enumerate(res["rounds"]):
        acc = row["accepted"]
        emitted += back.draft_tokens[i, :acc].tolist() + [row["token"]]
    assert emitted == back.meta["emitted_tokens"]


def test_synthetic_filter_mix_draws_filters_per_round_and_verifies_at_every_level(tmp_path, capsys):
    """`hades trace --synthetic --filter-mix` records top-k / top-p drawn per round (the draft
    side its own), and the file verifies at FL and CL with no mismatch; without the flag no
    round is filtered."""
    path = tmp_path / "mix.npz"
    assert main(["trace", "--synthetic", "--vocab", "300", "--rounds", "24", "--gamma", "3", "--seed", "5",
                 "--filter-mix", "-o", str(path)]) == 0
    tr = read_trace(path)
    tp, dp = np.asarray(tr.target_params), np.asarray(tr.draft_params)
    on = (tp[:, 1] > 0) | (tp[:, 2] < numerics.FRACTION_ONE)
    assert 0 < on.sum() < len(on)                       # mixed: some rounds filtered, some not
    assert len({tuple(r) for r in tp[:, 1:3]}) >= 4     # several settings in one trace
    assert (dp[:, 1:3] != tp[:, 1:3]).any()             # the draft side draws its own
    for level in ("fl", "cl"):
        assert main(["verify", str(path), "--level", level, "--lanes", "8", "--vocab-max", "512",
                     "--gamma-max", "4"]) == 0
        assert "mismatches=0" in capsys.readouterr().out
    plain = tmp_path / "plain.npz"
    assert main(["trace", "--synthetic", "--vocab", "300", "--rounds", "8", "--seed", "5", "-o", str(plain)]) == 0
    p = np.asarray(read_trace(plain).target_params)
    assert not ((p[:, 1] > 0) | (p[:, 2] < numerics.FRACTION_ONE)).any()
