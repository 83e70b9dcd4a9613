"""One validation layer (hades/limits.py): every numeric parameter has one declared range,
the API dataclasses and the command line check through it with the same message, absurd
values are refused before any work, and the CL timing's int64 arithmetic is exact for every
accepted input (largest accepted values against a Python-int re-computation; one step past
each bound refused)."""
from __future__ import annotations

import math
import resource
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from hades import cli, limits
from hades.cl.timing import TimingConfig, round_timing
from hades.config import VerifierConfig
from hades.errors import ConfigError, TraceError
from hades.llm.specdec import DecodeConfig
from hades.studies.sweep import SweepSpec, TimingSettings, read_csv, run_sweep
from hades.traces.cache import TraceRequest
from hades.traces.format import write_trace
from hades.traces.synthetic import SyntheticSpec, synthetic_trace

REPO = Path(__file__).resolve().parents[1]


def _cli(capsys, *argv):
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as e:       # the old argparse path
        rc = e.code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    return rc, err


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("limits") / "t.npz"
    write_trace(path, synthetic_trace(SyntheticSpec(vocab_size=60, rounds=4, gammas=(2, 4), seed=3)))
    return path


# ---- the declarations and their one message shape -------------------------------------------------

def test_message_shape_and_compact_numbers():
    with pytest.raises(ConfigError, match=r"^lanes must be a power of two in 1\.\.2\^24, got 2\^70$"):
        limits.LANES.check(2 ** 70)
    with pytest.raises(ConfigError, match=r"^sram_words must be in 1\.\.2\^48, got 10\^30$"):
        limits.SRAM_WORDS.check(10 ** 30)
    with pytest.raises(ConfigError, match=r"got 1\.181e\+21$"):
        limits.SRAM_WORDS.check(2 ** 70 + 3)
    with pytest.raises(ConfigError, match=r"^seed must be in 0\.\.2\^63 - 1, got -1$"):
        limits.SEED.check(-1)
    with pytest.raises(ConfigError, match=r"^offchip_bw must be a finite number in \[2\^-8, 2\^24\], got 1e-300$"):
        limits.OFFCHIP_BW.check(1e-300)
    with pytest.raises(ConfigError, match=r"got nan$"):
        limits.SYNTH_TIMEOUT.check(float("nan"))
    with pytest.raises(ConfigError, match="got 10\\^400"):
        limits.CLOCK_HZ.check(10 ** 400)    # an int too large for a float: still one clear line


def test_numpy_integers_are_accepted_and_normalised():
    cfg = VerifierConfig(lanes=np.int64(16), vocab_max=np.int32(4096), gamma_max=np.uint8(4),
                         sram_words=np.int64(4096))
    assert cfg.lanes == 16 and type(cfg.lanes) is int and type(cfg.sram_words) is int
    assert cfg.as_dict()["lanes"] == 16
    tc = TimingConfig(hw=cfg, offchip_latency=np.int64(7), offchip_bw=np.float32(2.0))
    assert type(tc.offchip_latency) is int and type(tc.offchip_bw) is float
    req = TraceRequest(source="synthetic", gamma=np.int64(2), rounds=np.int16(3), vocab_size=np.int64(64))
    req.check()
    assert type(req.gamma) is int
    assert req.key() == TraceRequest(source="synthetic", gamma=2, rounds=3, vocab_size=64).key()


@pytest.mark.parametrize("value, kind", [(True, "bool"), (16.0, "float"), ("16", "str"), (None, "NoneType")])
def test_bools_floats_and_text_are_refused_where_ints_are_meant(value, kind):
    with pytest.raises(ConfigError, match=rf"lanes must be an integer power of two in 1\.\.2\^24, got .* \({kind}\)"):
        VerifierConfig(lanes=value)
    with pytest.raises(ConfigError, match=r"\((bool|float|str|NoneType)\)"):
        TimingConfig(hw=VerifierConfig(), offchip_latency=value)


def test_every_dataclass_checks_through_the_declarations():
    """The same parameter gets the same range and the same message everywhere."""
    msg = r"prob_bits must be in 2\.\.24, got 28"
    with pytest.raises(ConfigError, match=msg):
        VerifierConfig(prob_bits=28)
    with pytest.raises(ConfigError, match=msg):
        SyntheticSpec(prob_bits=28).check()
    with pytest.raises(ConfigError, match=msg):
        DecodeConfig(prob_bits=28).check()      # was 2..31: a trace no configuration could verify
    with pytest.raises(ConfigError, match=msg):
        TraceRequest(source="synthetic", gamma=1, rounds=1, vocab_size=64, prob_bits=28).check()
    with pytest.raises(ConfigError, match=r"prob_bits must be in 2\.\.24, got 28"):
        SweepSpec(source="synthetic", prob_bits=(16, 28)).check()
    for make in (lambda: DecodeConfig(prob_bits=24), lambda: SyntheticSpec(prob_bits=24)):
        make().check()
    VerifierConfig(prob_bits=24, lanes=4)

    seed = r"seed must be in 0\.\.2\^63 - 1, got -1"
    for check in (lambda: SyntheticSpec(seed=-1).check(), lambda: DecodeConfig(seed=-1).check(),
                  lambda: TraceRequest(source="synthetic", gamma=1, rounds=1, vocab_size=64, seed=-1).check(),
                  lambda: SweepSpec(source="synthetic", seed=-1).check()):
        with pytest.raises(ConfigError, match=seed):
            check()
    with pytest.raises(ConfigError, match=seed):
        synthetic_trace(SyntheticSpec(seed=-1))    # was numpy's ValueError from deep inside

    for check in (lambda: TimingSettings(offchip_latency=2 ** 62).check(),
                  lambda: TimingConfig(hw=VerifierConfig(), offchip_latency=2 ** 62)):
        with pytest.raises(ConfigError, match=r"offchip_latency must be in 0\.\.2\^32, got 2\^62"):
            check()
    for check in (lambda: TimingSettings(clock_hz=float("nan")).check(),
                  lambda: TimingConfig(hw=VerifierConfig(), clock_hz=float("nan"))):
        with pytest.raises(ConfigError, match=r"clock_hz must be a finite number in \[1, 10\^12\], got nan"):
            check()


def test_mode_is_checked_in_one_place():
    msg = r"mode must be stochastic or greedy, got 'gredy'"
    for check in (lambda: SyntheticSpec(mode="gredy").check(), lambda: DecodeConfig(mode="gredy").check(),
                  lambda: TraceRequest(source="synthetic", gamma=1, rounds=1, vocab_size=64, mode="gredy").check(),
                  lambda: SweepSpec(source="synthetic", mode="gredy").check()):
        with pytest.raises(ConfigError, match=msg):
            check()


def test_synthetic_producer_refuses_gammas_no_hardware_verifies():
    with pytest.raises(ConfigError, match=r"gammas must be in 0\.\.64, got 65"):
        SyntheticSpec(gammas=(2, 65)).check()
    with pytest.raises(ConfigError, match="entries built in memory"):
        SyntheticSpec(vocab_size=1 << 24, rounds=1000).check()


def test_rtl_buffer_depth_is_bounded():
    cfg = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=10 ** 12)   # fine for the CL model
    with pytest.raises(ConfigError, match=r"the RTL's buffer depth sram_words must be in 1\.\.2\^20, got 10\^12"):
        cfg.require_rtl()
    VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=1 << 20).require_rtl_buffer()


# ---- the one list parser ------------------------------------------------------------------------------

def test_list_parser_forms_and_order():
    from hades.cli.common import parse_int_list
    assert parse_int_list("1,2,4", limits.GAMMA) == (1, 2, 4)
    assert parse_int_list("1-4,8", limits.GAMMA) == (1, 2, 3, 4, 8)
    assert parse_int_list(" 4 , 2,2 ", limits.GAMMA) == (4, 2, 2)            # trace --gamma cycles in order
    assert parse_int_list("8,1-3,2", limits.GAMMA, sort_unique=True) == (1, 2, 3, 8)
    for text, msg in (("two", "expected integers like"), ("", "at least one"), ("4-1", "runs backwards"),
                      ("-1", r"gamma must be in 0\.\.64, got -1"), ("1-2-3", "expected integers like"),
                      ("9" * 5000, "expected integers like")):
        with pytest.raises(ConfigError, match=msg):
            parse_int_list(text, limits.GAMMA)
    with pytest.raises(ConfigError, match="power of two"):
        parse_int_list("1-16", limits.LANES)


def test_list_parser_checks_bounds_before_expanding():
    from hades.cli.common import parse_int_list
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"gamma must be in 0\.\.64, got 1000000000"):
        parse_int_list("1-1000000000", limits.GAMMA)
    with pytest.raises(ConfigError, match="more than 4096 values"):
        parse_int_list("1-4294967296", limits.SRAM_KIB)
    with pytest.raises(ConfigError, match="more than 4096 values"):
        parse_int_list(",".join(["1-4000"] * 2), limits.SRAM_KIB)
    assert time.perf_counter() - t0 < 1.0


# ---- the command line: the same declarations, exit 2 and one line, before any work ---------------------

CLI_CASES = [
    (["verify", "{trace}", "--lanes", str(2 ** 70)], "lanes must be a power of two in 1..2^24, got 2^70"),
    (["verify", "{trace}", "--level", "cl", "--lanes", "4", "--vocab-max", "64", "--sram-words", str(10 ** 30)],
     "sram_words must be in 1..2^48, got 10^30"),
    (["verify", "{trace}", "--src-stall", "1"], "src_stall must be a finite number in [0, 1), got 1.0"),
    (["sweep", "--source", "synthetic", "--sram-kib", str(10 ** 30)], "sram_kib must be in 1..2^32, got 10^30"),
    (["sweep", "--source", "synthetic", "--offchip-bw", "1e-300"], "offchip_bw must be a finite number in [2^-8"),
    (["sweep", "--source", "synthetic", "--offchip-latency", str(2 ** 62)], "offchip_latency must be in 0..2^32"),
    (["sweep", "--source", "synthetic", "--offchip-latency", str(10 ** 30)], "got 10^30"),
    (["sweep", "--source", "synthetic", "--seed", "-1"], "seed must be in 0..2^63 - 1, got -1"),
    (["sweep", "--source", "synthetic", "--clock-hz", "inf"], "clock_hz must be a finite number"),
    (["bench", "--rounds", str(2 ** 21), "--vocab", "1"], "rounds must be in 1..2^20"),
    (["trace", "--synthetic", "-o", "{tmp}/x.npz", "--vocab", str(2 ** 40)], "vocab_size must be in 1..2^24, got 2^40"),
    (["trace", "--synthetic", "-o", "{tmp}/x.npz", "--gamma-max", str(10 ** 12)], "gamma_max must be in 0..64, got 10^12"),
    (["trace", "--synthetic", "-o", "{tmp}/x.npz", "--seed", "-1"], "seed must be in 0..2^63 - 1, got -1"),
    (["trace", "--synthetic", "-o", "{tmp}/x.npz", "--gamma", "1-1000000000"], "gamma must be in 0..64"),
    (["trace", "-o", "{tmp}/x.npz", "--prob-bits", "28"], "prob_bits must be in 2..24, got 28"),
    (["fuzz", "--seed", "-1"], "seed must be in 0..2^63 - 1, got -1"),
    (["synth", "--timeout", "nan"], "timeout must be a finite number in (0, 604800], got nan"),
    (["bench", "--gammas", "1-100000000000"], "gamma must be in 1..64"),
    (["decode", "--threads", "0"], "threads must be in 1..1024, got 0"),
]


@pytest.mark.parametrize("argv, message", CLI_CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CLI_CASES])
def test_cli_refuses_absurd_numbers_with_one_line(capsys, tmp_path, trace_file, argv, message):
    argv = [a.format(trace=trace_file, tmp=tmp_path) for a in argv]
    if argv[0] == "sweep":   # a tiny grid first (the case's own options come later and win)
        argv[1:1] = ["--gammas", "1", "--vocab", "256", "--rounds", "1", "--lanes", "4", "--sram-kib", "1",
                     "--jobs", "1"]
        argv += ["--out", str(tmp_path / "s.csv"), "--cache-dir", str(tmp_path), "--no-progress"]
    t0 = time.perf_counter()
    rc, err = _cli(capsys, *argv)
    assert rc == 2 and len(err) == 1, err
    assert message in err[0] and "Traceback" not in err[0], err
    assert time.perf_counter() - t0 < 10, "refused before any work"
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "s.csv").exists()


def test_cli_and_api_give_the_same_message(capsys, trace_file):
    rc, err = _cli(capsys, "verify", trace_file, "--lanes", str(2 ** 70))
    with pytest.raises(ConfigError) as api:
        VerifierConfig(lanes=2 ** 70)
    assert rc == 2 and err[0].endswith(str(api.value))


def _run_bounded(argv, timeout=60):
    """A command in a subprocess with a memory cap: the old code built a billion-element set /
    10^12 SRAM words here, and must fail this test by time or memory, not by taking the machine."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    return subprocess.run([sys.executable, "-m", "hades.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, preexec_fn=cap)


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--source", "synthetic", "--gammas", "1-1000000000", "--out", "{tmp}/s.csv"],
     "gamma must be in 0..64, got 1000000000"),
    (["verify", "{trace}", "--level", "rtl", "--rtl-backend", "python", "--lanes", "4", "--vocab-max", "64",
      "--gamma-max", "4", "--sram-words", str(10 ** 12)], "the RTL's buffer depth sram_words must be in 1..2^20"),
])
def test_runaway_inputs_are_refused_at_once(tmp_path, trace_file, argv, message):
    proc = _run_bounded([a.format(trace=trace_file, tmp=tmp_path) for a in argv])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr[-500:]


# ---- the CL timing model: int64 exact for every accepted input -------------------------------------

def _ceil(x: Fraction) -> int:
    return -((-x.numerator) // x.denominator)


def python_timing(tc: TimingConfig, gamma: int, V: int, greedy: bool, accepted: int, token: int):
    """hades.cl.timing.round_timing for one round, in exact rational arithmetic."""
    L = tc.hw.lanes
    words = -(-V // L)
    lane_rate = Fraction(L) if tc.input_bw is None else min(Fraction(L), Fraction(tc.input_bw))
    fast = _ceil(V / lane_rate)
    slow = _ceil(V / min(lane_rate, Fraction(tc.offchip_bw)))
    off = max(gamma - tc.buffer_words // words, 0)
    on = gamma - off
    p_total = on * fast + off * slow
    k_last = gamma + 2 * p_total + fast
    k_r = k_last + 2
    if accepted < gamma and not greedy:
        j = accepted
        j_on = min(j + 1, on)
        c_j = 1 + gamma + p_total + j_on * fast + (j + 1 - j_on) * slow
        k = token // L
        scan = (tc.offchip_latency + _ceil(Fraction((k + 1) * L) / min(Fraction(L), Fraction(tc.offchip_bw)))
                if j >= on else k + 1)
        k_r = max(k_r, c_j + 3 + scan)
    return k_r + 1, k_r - k_last


BW_MIN = limits.OFFCHIP_BW.lo


@pytest.mark.parametrize("lanes", [1, 2 ** 12, 2 ** 24])
@pytest.mark.parametrize("input_bw", [None, BW_MIN])
@pytest.mark.parametrize("sram_words", [1, 2 ** 48])
def test_timing_at_the_largest_accepted_inputs_is_exact(lanes, input_bw, sram_words):
    V, G = limits.VOCAB_MAX.hi, limits.GAMMA_MAX.hi
    hw = VerifierConfig(lanes=lanes, vocab_max=V, gamma_max=G, prob_bits=24, uniform_bits=40)
    tc = TimingConfig(hw=hw, sram_words=sram_words, input_bw=input_bw, offchip_bw=BW_MIN,
                      offchip_latency=limits.OFFCHIP_LATENCY.hi, clock_hz=limits.CLOCK_HZ.hi)
    cases = [(G, acc, tok, greedy) for acc in (0, G - 1, G) for tok in (0, V - 1) for greedy in (False, True)]
    cases += [(0, 0, V - 1, False), (1, 0, V // 2, False)]
    gamma, accepted, token, greedy = (np.array(c) for c in zip(*cases))
    for g in (False, True):
        sel = greedy == g
        t = round_timing(tc, gamma[sel], V, g, accepted[sel], token[sel])
        assert (t.cycles > 0).all() and (t.latency >= 0).all() and (t.sram_entries >= 0).all()
        assert (t.offchip_entries >= 0).all()
        assert t.cycles.max() <= 2 ** 41, "the bound the proof in hades/cl/timing.py gives"
        want = [python_timing(tc, int(a), V, g, int(b), int(c)) for a, b, c in zip(gamma[sel], accepted[sel],
                                                                                 token[sel])]
        assert [(int(c), int(lat)) for c, lat in zip(t.cycles, t.latency)] == want
    # a sum over the most rounds a trace request may hold stays exact
    R = limits.ROUNDS.hi
    t = round_timing(tc, np.full(R, G), V, False, np.full(R, G - 1), np.full(R, V - 1))
    assert int(t.cycles.sum()) == R * python_timing(tc, G, V, False, G - 1, V - 1)[0]


def test_timing_mid_range_matches_exact_arithmetic():
    rng = np.random.default_rng(5)
    for _ in range(300):
        lanes = 2 ** int(rng.integers(0, 8))
        V = int(rng.integers(2, 5000))
        G = int(rng.integers(0, 65))
        hw = VerifierConfig(lanes=lanes, vocab_max=max(V, 2), gamma_max=G)
        tc = TimingConfig(hw=hw, sram_words=int(rng.integers(1, 4 * G * V // lanes + 2)),
                          input_bw=None if rng.random() < 0.5 else float(rng.integers(1, 4096)) / 16,
                          offchip_bw=float(rng.integers(1, 4096)) / 16,
                          offchip_latency=int(rng.integers(0, 2 ** 32 + 1)))
        g = int(rng.integers(0, G + 1))
        acc = int(rng.integers(0, g + 1))
        tok = int(rng.integers(0, V))
        greedy = bool(rng.random() < 0.2)
        t = round_timing(tc, [g], V, greedy, [acc], [tok])
        assert (int(t.cycles[0]), int(t.latency[0])) == python_timing(tc, g, V, greedy, acc, tok)


def test_one_past_each_bound_is_refused():
    hw = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)
    with pytest.raises(ConfigError, match="offchip_latency"):
        TimingConfig(hw=hw, offchip_latency=limits.OFFCHIP_LATENCY.hi + 1)
    with pytest.raises(ConfigError, match="offchip_bw"):
        TimingConfig(hw=hw, offchip_bw=float(np.nextafter(BW_MIN, 0)))
    with pytest.raises(ConfigError, match="input_bw"):
        TimingConfig(hw=hw, input_bw=float(np.nextafter(BW_MIN, 0)))
    with pytest.raises(ConfigError, match="sram_words"):
        TimingConfig(hw=hw, sram_words=limits.SRAM_WORDS.hi + 1)
    with pytest.raises(ConfigError, match="vocab_max"):
        VerifierConfig(vocab_max=limits.VOCAB_MAX.hi + 1)
    with pytest.raises(ConfigError, match="lanes"):
        VerifierConfig(lanes=2 * limits.LANES.hi)
    with pytest.raises(ConfigError, match="rounds"):
        TraceRequest(source="synthetic", gamma=1, rounds=limits.ROUNDS.hi + 1, vocab_size=64).check()
    tc = TimingConfig(hw=hw)
    with pytest.raises(TraceError, match="gamma outside"):
        round_timing(tc, [65], 64, False, [0], [0])
    with pytest.raises(TraceError, match="token outside"):
        round_timing(tc, [2], 64, False, [0], [64])
    with pytest.raises(ConfigError, match="vocab_size"):
        round_timing(tc, [2], limits.VOCAB_SIZE.hi + 1, False, [0], [0])


def test_sweep_at_the_largest_latency_writes_exact_positive_numbers(tmp_path):
    """--offchip-latency 2^62 wrote negative tokens/s with exit 0; now 2^32 is the bound and
    the numbers at it are exact."""
    lat = limits.OFFCHIP_LATENCY.hi
    spec = SweepSpec(gammas=(2,), sram_kib=(2,), lanes=(4,), rounds=6, source="synthetic", vocab_size=1024,
                     seed=1, timing=TimingSettings(offchip_latency=lat, offchip_bw=BW_MIN), block="probability")
    report = run_sweep(spec, tmp_path / "s.csv", jobs=1, cache_dir=tmp_path / "cache")
    (row,) = read_csv(tmp_path / "s.csv")
    assert row["tokens_per_s"] > 0 and row["cycles_per_round"] > 0 and row["scan_cycles_per_round"] > 0
    assert row["cycles_per_round"] * row["rounds"] > lat, "a round paid the off-chip latency"
    from hades.traces.cache import get_summary
    s = get_summary(spec.trace_requests()[0], tmp_path / "cache")
    hw = VerifierConfig(lanes=4, vocab_max=1024, gamma_max=2, sram_words=row["sram_words"])
    tc = TimingConfig(hw=hw, offchip_bw=BW_MIN, offchip_latency=lat)
    cycles = [python_timing(tc, int(g), 1024, s.greedy, int(a), int(t))[0]
              for g, a, t in zip(s.gamma, s.accepted, s.token)]
    assert row["cycles_per_round"] == sum(cycles) / len(cycles)
    assert row["tokens_per_s"] == float(int((s.accepted + 1).sum()) / sum(cycles) * 1e9)
    assert report.rows[0]["offchip_latency"] == lat


def test_cli_sweep_refuses_the_overflowing_latency(capsys, tmp_path):
    rc, err = _cli(capsys, "sweep", "--source", "synthetic", "--vocab", "1024", "--gammas", "2", "--sram-kib", "2",
                   "--lanes", "4", "--rounds", "4", "--offchip-latency", str(2 ** 62), "--no-progress",
                   "--cache-dir", tmp_path, "--out", tmp_path / "s.csv", "--jobs", "1")
    assert rc == 2 and len(err) == 1 and "offchip_latency must be in 0..2^32, got 2^62" in err[0]
    assert not (tmp_path / "s.csv").exists()


# ---- CSVs the plots and a resume read ------------------------------------------------------------------

def test_sweep_csv_with_nan_or_huge_fields_is_refused_in_one_line(capsys, tmp_path):
    from harness.bad_inputs import _all_nan_csv, _huge_field_csv, _sweep_csv, _sweep_row
    good = _sweep_csv(tmp_path, "good.csv", [_sweep_row()])
    assert read_csv(good)[0]["tokens_per_s"] == 1.5e7
    for path, msg in ((_all_nan_csv(tmp_path), "line 2: tokens_per_s must be a finite number > 0, got nan"),
                      (_huge_field_csv(tmp_path), "field larger than field limit"),
                      (_sweep_csv(tmp_path, "neg.csv", [_sweep_row(tokens_per_s=-1.5e-9)]), "tokens_per_s"),
                      (_sweep_csv(tmp_path, "lat.csv", [_sweep_row(offchip_latency=2 ** 62)]), "offchip_latency")):
        with pytest.raises(ConfigError, match=msg):
            read_csv(path)
        rc, err = _cli(capsys, "plot", path, "--out-dir", tmp_path / "plots")
        assert rc == 2 and len(err) == 1 and msg.split(":")[-1].strip() in err[0], err
    assert not (tmp_path / "plots").exists()


def test_plot_api_refuses_rows_it_cannot_draw(tmp_path):
    from harness.bad_inputs import _sweep_row
    from hades.studies.plots import plot_sweep
    with pytest.raises(ConfigError, match="tokens_per_s must be a finite number > 0, got nan"):
        plot_sweep([_sweep_row(tokens_per_s=math.nan)], tmp_path)


def test_decode_csv_with_a_huge_field_is_refused(tmp_path):
    from hades.studies.plots import read_decode_csv
    p = tmp_path / "decode.csv"
    p.write_text("gamma,tokens_per_s\n0," + "9" * 200_000 + "\n")
    with pytest.raises(ConfigError, match="field larger than field limit"):
        read_decode_csv(p)
