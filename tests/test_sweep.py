"""Design-space sweeps (hades.studies.sweep, `hades sweep`) and the trace cache (hades.traces.cache).

Small synthetic grids (V = 1024: a row is 2 KiB at W = 16, so 2..16 KiB spans the knee for
gamma up to 4) keep this file to a few seconds; the real-model test is marked `model`.
"""
from __future__ import annotations

import math
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hades import cli
from hades.cl.model import timed_result
from hades.cl.timing import TimingConfig
from hades.config import VerifierConfig
from hades.errors import ConfigError, TraceError
from hades.fl.verifier import verify_round
from hades.studies.sweep import SWEEP_COLUMNS, SweepSpec, read_csv, run_sweep, sram_words_for
from hades.traces.format import write_trace
from hades.traces.cache import TraceRequest, get_summary, get_trace, trace_path

REPO = Path(__file__).resolve().parents[1]
SMALL = SweepSpec(gammas=(1, 2, 4), sram_kib=(2, 4, 8, 16), lanes=(4, 8, 16), prob_bits=(16,), rounds=8,
                  source="synthetic", vocab_size=1024, seed=3, block="probability")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trace-cache")


@pytest.fixture(scope="module")
def small_sweep(cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "small.csv"
    report = run_sweep(SMALL, out, jobs=1, cache_dir=cache_dir)
    return out, report


# ---- the trace cache ---------------------------------------------------------------------------

def test_trace_cache_builds_once_and_keys_on_every_parameter(tmp_path):
    req = TraceRequest(source="synthetic", gamma=2, rounds=3, vocab_size=64, seed=5)
    first = get_trace(req, tmp_path)
    path = trace_path(req, tmp_path)
    stamp = path.stat().st_mtime_ns
    again = get_trace(req, tmp_path)
    assert path.stat().st_mtime_ns == stamp, "a cached trace must be read, not rebuilt"
    assert np.array_equal(first.target_probs, again.target_probs)
    keys = {req.key()} | {replace(req, **{k: v}).key() for k, v in
                          (("gamma", 3), ("rounds", 4), ("seed", 6), ("mode", "greedy"), ("prob_bits", 12),
                           ("uniform_bits", 24), ("vocab_size", 65))}
    assert len(keys) == 8, "every parameter must change the cache key"
    assert not list(tmp_path.glob(".*.tmp*")), "atomic writes leave no temporary files"


def test_summary_decisions_equal_the_fl_verifier(tmp_path):
    req = TraceRequest(source="synthetic", gamma=3, rounds=6, vocab_size=200, seed=9)
    summary = get_summary(req, tmp_path)
    trace = get_trace(req, tmp_path)
    for i, rnd in enumerate(trace.rounds()):
        res = verify_round(rnd, trace.row_sum, trace.uniform_bits)
        assert (summary.accepted[i], summary.token[i]) == res.decision()
    assert get_summary(req, tmp_path).trace_id == req.key()


def test_a_trace_whose_recorded_decisions_are_wrong_is_refused(tmp_path):
    req = TraceRequest(source="synthetic", gamma=2, rounds=4, vocab_size=64, seed=4)
    trace = get_trace(req, tmp_path)
    trace.expected_token[-1] = (trace.expected_token[-1] + 1) % 64   # the last round is always checked
    write_trace(trace_path(req, tmp_path), trace)
    with pytest.raises(TraceError, match="round 3: recorded decision"):
        get_summary(req, tmp_path)


def test_nested_rounds_are_the_base_rounds_cut_and_re_decided(tmp_path):
    base = TraceRequest(source="synthetic", gamma=6, rounds=12, vocab_size=64, seed=2)
    base_trace = get_trace(base, tmp_path)
    for g in (0, 1, 3, 6):
        req = replace(base, gamma=g, nested_from=6)
        cut = get_trace(req, tmp_path)
        summary = get_summary(req, tmp_path)
        assert cut.gamma_max == g and (cut.gamma == g).all()
        assert np.array_equal(cut.target_probs, base_trace.target_probs[:, : g + 1])
        for i, rnd in enumerate(cut.rounds()):
            want = verify_round(rnd, cut.row_sum, cut.uniform_bits).decision()
            assert (summary.accepted[i], summary.token[i]) == want
            if base_trace.expected_accepted[i] < g:     # rejected inside the cut: unchanged
                assert want == (base_trace.expected_accepted[i], base_trace.expected_token[i])
    full = get_summary(replace(base, nested_from=6), tmp_path)
    assert np.array_equal(full.accepted, base_trace.expected_accepted)
    with pytest.raises(ConfigError, match="cannot be cut"):
        replace(base, gamma=7, nested_from=6).check()


def test_nested_sweep_builds_one_trace(tmp_path):
    spec = replace(SMALL, nested=True, lanes=(8,))
    report = run_sweep(spec, tmp_path / "nested.csv", jobs=2, cache_dir=tmp_path / "cache")
    assert {r["nested_from"] for r in report.rows} == {4}
    assert len({r["trace_id"] for r in report.rows}) == 3
    # synthetic traces are not stored by the sweep (regenerable from the seed): summaries only
    assert not list((tmp_path / "cache").glob("*.npz"))
    assert len(list((tmp_path / "cache").glob("*.summary.json"))) == 3
    accepted = {r["gamma"]: r["accepted_per_round"] for r in report.rows}
    assert accepted[1] <= accepted[2] <= accepted[4], "cut rounds: more drafts never accept fewer"


def test_trace_request_refuses_bad_parameters():
    with pytest.raises(ConfigError, match="unknown trace source"):
        TraceRequest(source="llm", gamma=1, rounds=1).check()
    with pytest.raises(ConfigError, match="vocabulary"):
        TraceRequest(source="synthetic", gamma=1, rounds=1).check()
    with pytest.raises(ConfigError, match="vocab"):
        TraceRequest(source="real", gamma=1, rounds=1, vocab_size=50).check()


# ---- CSV schema and per-point arithmetic -----------------------------------------------------------

def test_csv_schema_and_metrics(small_sweep, cache_dir):
    out, report = small_sweep
    header = out.read_text().splitlines()[0].split(",")
    assert tuple(header) == SWEEP_COLUMNS
    rows = read_csv(out)
    assert len(rows) == SMALL.num_points() == report.points_run == 3 * 4 * 3
    assert len({(r["gamma"], r["lanes"], r["sram_kib"]) for r in rows}) == len(rows)
    for r in rows:
        assert r["source"] == "synthetic" and r["vocab_size"] == 1024 and r["rounds"] == 8
        assert r["sram_words"] == sram_words_for(r["sram_kib"], r["lanes"], r["prob_bits"])
        assert r["sram_rows"] == r["sram_kib"] // 2          # a row of 1024 x 16 bit is 2 KiB
        phases = r["input_cycles_per_round"] + r["tail_cycles_per_round"] + r["offchip_cycles_per_round"]
        assert math.isclose(phases, r["cycles_per_round"], rel_tol=1e-12)
        assert math.isclose(r["tokens_per_s"], r["tokens_per_round"] / r["cycles_per_round"] * r["clock_hz"],
                            rel_tol=1e-12)
        assert math.isclose(r["acceptance_rate"], r["accepted_per_round"] / r["gamma"], rel_tol=1e-12)
        assert math.isclose(r["tokens_per_round"], r["accepted_per_round"] + 1, rel_tol=1e-12)
        fits = r["sram_rows"] >= r["gamma"]
        assert (r["offchip_rows_per_round"] == 0) == fits
        assert (r["offchip_bytes_per_round"] == 0) == fits
        if not fits and r["lanes"] > r["offchip_bw"]:   # overflow rows stream slower than on-chip ones
            assert r["offchip_cycles_per_round"] > 0
        assert r["offchip_cycles_per_round"] >= 0
        assert r["sram_bytes_per_round"] > 0


def test_on_chip_points_equal_the_cl_component_round_by_round(small_sweep, cache_dir):
    """Where every draft row fits, a point's cycles are the CL model's (== RTL) cycles."""
    _, report = small_sweep
    row = next(r for r in report.rows if r["gamma"] == 4 and r["lanes"] == 8 and r["sram_kib"] == 16)
    req = TraceRequest(source="synthetic", gamma=4, rounds=8, vocab_size=1024, seed=3)
    trace = get_trace(req, cache_dir)
    hw = VerifierConfig(lanes=8, vocab_max=1024, gamma_max=4)
    cycles = [timed_result(TimingConfig(hw=hw), rnd).cycles for rnd in trace.rounds()]
    assert row["cycles_per_round"] == pytest.approx(np.mean(cycles), rel=1e-12)


def test_monotonic_more_lanes_and_more_sram_never_slower(small_sweep):
    rows = small_sweep[1].rows
    by = {(r["gamma"], r["lanes"], r["sram_kib"]): r["tokens_per_s"] for r in rows}
    for (g, lanes, kib), tps in by.items():
        for more_lanes in (x for x in SMALL.lanes if x > lanes):
            assert by[(g, more_lanes, kib)] >= tps, f"gamma {g}, {kib} KiB: {more_lanes} lanes slower than {lanes}"
        for more_kib in (x for x in SMALL.sram_kib if x > kib):
            assert by[(g, lanes, more_kib)] >= tps, f"gamma {g}, {lanes} lanes: {more_kib} KiB slower than {kib}"
    # and the knee is there: off chip costs, on chip it is flat
    assert by[(4, 16, 2)] < by[(4, 16, 8)] == by[(4, 16, 16)]


# ---- the logit block (v2 traces) ---------------------------------------------------------------------
# V = 1024: a bf16 row is 2 KiB, and a gamma-g round buffers 2 g + 1 rows (one-hot drafts: g + 1)

LOGIT = SweepSpec(gammas=(1, 2, 4), sram_kib=(2, 4, 6, 8, 10, 12, 16, 18, 32), lanes=(4, 16), rounds=8,
                  source="synthetic", vocab_size=1024, seed=3, block="logit")
# the probability block's row of one point of a 3-round trace, as the code before the `block`
# column wrote it (that line, with `probability,` in front, is what a v1 sweep still writes)
V1_LINE = ("synthetic,synthetic-zipf(V=256),synthetic-zipf(V=256),stochastic,256,3,7,2,0,4,16,32,1,128,2,1000000000.0,"
           "4.0,100,a5d61366f82f784a,5128205.128205128,1.6666666666666667,0.6666666666666666,0.3333333333333333,"
           "325.0,2.0,323.0,2.0,0.0,15.333333333333334,0.0,2512.0,0.0")
V1_LINE_ARGS = ["--source", "synthetic", "--vocab", "256", "--gammas", "2", "--sram-kib", "1", "--lanes", "4",
                "--rounds", "3", "--seed", "7", "--jobs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def logit_sweep(cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "logit.csv"
    return out, run_sweep(LOGIT, out, jobs=1, cache_dir=cache_dir)


def test_logit_sweep_rows_and_metrics(logit_sweep):
    out, report = logit_sweep
    rows = read_csv(out)
    assert rows == report.rows and len(rows) == LOGIT.num_points()
    for r in rows:
        assert r["block"] == "logit" and r["draft_model"] == "synthetic-logits(V=1024)"
        assert r["sram_words"] == r["sram_kib"] * 8192 // (r["lanes"] * 16)   # words of L bf16 entries
        assert r["sram_rows"] == r["sram_kib"] // 2
        phases = r["input_cycles_per_round"] + r["tail_cycles_per_round"] + r["offchip_cycles_per_round"]
        assert math.isclose(phases, r["cycles_per_round"], rel_tol=1e-12)
        assert math.isclose(r["tokens_per_s"], r["tokens_per_round"] / r["cycles_per_round"] * r["clock_hz"],
                            rel_tol=1e-12)
        fits = r["sram_rows"] >= 2 * r["gamma"] + 1
        assert (r["offchip_rows_per_round"] == 0) == fits == (r["offchip_bytes_per_round"] == 0)
        assert r["scan_cycles_per_round"] > 0 and r["sram_bytes_per_round"] > 0   # stochastic: tail jobs ran


def test_logit_sweep_has_the_knee_where_the_rounds_rows_fit(logit_sweep):
    """Throughput rises with every row that moves on chip, up to the 2 gamma + 1 rows of a
    model-drafted round, and is flat from there (at L = 16 an off-chip row streams at 4
    entries/cycle, so every one costs)."""
    by = {(r["gamma"], r["lanes"], r["sram_kib"]): r for r in logit_sweep[1].rows}
    for g in LOGIT.gammas:
        for lanes in LOGIT.lanes:
            tps = [by[(g, lanes, kib)]["tokens_per_s"] for kib in LOGIT.sram_kib]
            assert all(a <= b for a, b in zip(tps, tps[1:])), f"gamma {g}, L = {lanes}: more SRAM was slower"
            knee = min(kib for kib in LOGIT.sram_kib if kib // 2 >= 2 * g + 1)
            assert len({by[(g, lanes, kib)]["tokens_per_s"] for kib in LOGIT.sram_kib if kib >= knee}) == 1
            if lanes == 16:
                below = [by[(g, lanes, kib)]["tokens_per_s"] for kib in LOGIT.sram_kib if kib <= knee]
                assert all(a < b for a, b in zip(below, below[1:])), f"gamma {g}: no rise up to the knee"


def test_logit_points_with_a_full_buffer_equal_logit_timed_results(logit_sweep, cache_dir):
    from hades.cl.logit_model import logit_timed_results
    rows = logit_sweep[1].rows
    req = TraceRequest(source="synthetic", gamma=4, rounds=8, vocab_size=1024, seed=3, trace_format=2)
    trace = get_trace(req, cache_dir)
    for lanes in LOGIT.lanes:
        row = next(r for r in rows if r["gamma"] == 4 and r["lanes"] == lanes and r["sram_kib"] == 32)
        outs = logit_timed_results(TimingConfig(hw=VerifierConfig(lanes=lanes, vocab_max=1024, gamma_max=4)),
                                   trace.rounds())
        assert row["cycles_per_round"] == pytest.approx(np.mean([o.result.cycles for o in outs]), rel=1e-12)
        assert row["latency_per_round"] == pytest.approx(np.mean([o.result.latency for o in outs]), rel=1e-12)
        assert row["tokens_per_round"] == np.mean([o.result.accepted + 1 for o in outs])
        assert row["offchip_cycles_per_round"] == 0


def test_probability_sweep_rows_are_unchanged(capsys, tmp_path):
    out = tmp_path / "v1.csv"
    assert cli.main(["sweep", *V1_LINE_ARGS, "--block", "probability", "--cache-dir", str(tmp_path),
                     "--out", str(out)]) == 0
    header, line = out.read_text().splitlines()
    assert header == ",".join(SWEEP_COLUMNS) and header.startswith("block,source,")
    assert line == "probability," + V1_LINE


def test_a_csv_from_before_the_block_column_is_read_and_resumed(tmp_path):
    from hades.studies.sweep import LEGACY_SWEEP_COLUMNS
    old = tmp_path / "old.csv"
    old.write_text(",".join(LEGACY_SWEEP_COLUMNS) + "\n" + V1_LINE + "\n")
    (row,) = read_csv(old)
    assert row["block"] == "probability" and row["trace_id"] == "a5d61366f82f784a"
    spec = SweepSpec(gammas=(2, 3), sram_kib=(1,), lanes=(4,), rounds=3, source="synthetic", vocab_size=256, seed=7,
                     block="probability")
    report = run_sweep(spec, old, jobs=1, cache_dir=tmp_path / "cache", resume=True)
    assert (report.points_skipped, report.points_run) == (1, 1)
    lines = old.read_text().splitlines()
    assert lines[0] == ",".join(SWEEP_COLUMNS) and lines[1] == "probability," + V1_LINE


def test_both_blocks_in_one_csv_and_the_default_is_logit(capsys, tmp_path):
    out = tmp_path / "both.csv"
    base = ["sweep", *V1_LINE_ARGS, "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert cli.main([*base]) == 0
    assert "verified tokens/s on the logit block at gamma=2" in capsys.readouterr().err
    assert cli.main([*base, "--block", "probability", "--resume"]) == 0
    rows = read_csv(out)
    assert [r["block"] for r in rows] == ["logit", "probability"]
    assert rows[0]["trace_id"] != rows[1]["trace_id"]
    # the bf16 row that a logit point must hold is not the probability block's W-bit row
    assert cli.main(["sweep", *V1_LINE_ARGS, "--prob-bits", "8", "--vocab", "1024", "--block", "probability",
                     "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "w8.csv")]) == 0


# ---- resume ----------------------------------------------------------------------------------------

def test_resume_after_a_partial_sweep_equals_an_uninterrupted_one(small_sweep, cache_dir, tmp_path):
    reference = small_sweep[0].read_text()
    out = tmp_path / "partial.csv"
    partial = run_sweep(SMALL, out, jobs=1, cache_dir=cache_dir, max_tasks=1)
    assert 0 < len(read_csv(out)) < SMALL.num_points()
    resumed = run_sweep(SMALL, out, jobs=1, cache_dir=cache_dir, resume=True)
    assert resumed.points_skipped == partial.points_run
    assert resumed.points_run == SMALL.num_points() - partial.points_run
    assert out.read_text() == reference
    # resuming a finished sweep computes nothing and leaves the file as it is
    again = run_sweep(SMALL, out, jobs=1, cache_dir=cache_dir, resume=True)
    assert again.points_run == 0 and out.read_text() == reference


def test_resume_after_killing_the_command_midway(tmp_path):
    spec = replace(SMALL, gammas=(1, 2, 3, 4, 5, 6, 7, 8), vocab_size=8192, sram_kib=(16, 32, 64, 128, 256),
                   lanes=(16,), block="logit")   # the command's default block
    cache, out = tmp_path / "cache", tmp_path / "killed.csv"
    argv = [sys.executable, "-m", "hades.cli", "sweep", "--source", "synthetic", "--vocab", "8192",
            "--rounds", str(spec.rounds), "--seed", str(spec.seed), "--gammas", "1-8",
            "--sram-kib", "16,32,64,128,256", "--lanes", "16", "--jobs", "1", "--no-progress",
            "--cache-dir", str(cache), "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows_at_kill = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_file():
                rows_at_kill = len(read_csv(out))   # atomic rewrites: always a parseable file
                if rows_at_kill:
                    break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < rows_at_kill < spec.num_points(), "the sweep must be killed between two tasks"
    resumed = run_sweep(spec, out, jobs=1, cache_dir=cache, resume=True)
    assert resumed.points_skipped >= rows_at_kill
    fresh = tmp_path / "fresh.csv"
    run_sweep(spec, fresh, jobs=1, cache_dir=cache)
    assert out.read_text() == fresh.read_text()


# ---- parallel and distributed execution --------------------------------------------------------------

def test_local_processes_give_the_same_csv(small_sweep, cache_dir, tmp_path):
    spec = replace(SMALL, gammas=(1, 2))
    inline, pooled = tmp_path / "inline.csv", tmp_path / "pooled.csv"
    run_sweep(spec, inline, jobs=1, cache_dir=cache_dir)
    # a fresh cache for the pool: the workers must build the traces themselves
    run_sweep(spec, pooled, jobs=2, cache_dir=tmp_path / "pool-cache")
    assert pooled.read_text() == inline.read_text()


def test_dask_cluster_gives_the_same_csv(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    spec = replace(SMALL, gammas=(1, 2), lanes=(4, 16))
    inline, on_dask = tmp_path / "inline.csv", tmp_path / "dask.csv"
    run_sweep(spec, inline, jobs=1, cache_dir=tmp_path / "cache-a")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        report = run_sweep(spec, on_dask, scheduler=cluster.scheduler_address, cache_dir=tmp_path / "cache-b")
    assert report.points_run == spec.num_points()
    assert on_dask.read_text() == inline.read_text()


# ---- command line ---------------------------------------------------------------------------------

def _cli(capsys, *argv):
    try:
        rc = cli.main(list(argv))
    except SystemExit as e:   # argparse errors
        rc = e.code
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("argv, message", [
    (("--lanes", "0"), "lanes must be a power of two"),
    (("--lanes", "12"), "lanes must be a power of two"),
    (("--sram-kib", "1"), "smaller than one row"),
    (("--source", "real", "--sram-kib", "64"), "smaller than one row"),   # refused before any model loads
    (("--source", "model"), "invalid choice"),
    (("--gammas", "two"), "expected integers"),
    (("--gammas", "70"), "gamma must be in 0..64"),
    (("--offchip-bw", "0"), "offchip_bw must be a finite number in [2^-8, 2^24], got 0.0"),
    (("--jobs", "0"), "jobs must be in 1..1024, got 0"),
    (("--block", "bf16"), "invalid choice: 'bf16'"),
    # W = 8 rows of 1024 entries are 1 KiB, but the logit block buffers bf16 logit rows (2 KiB)
    (("--block", "logit", "--vocab", "1024", "--prob-bits", "8", "--lanes", "4", "--sram-kib", "1"),
     "SRAM of 1 KiB is smaller than one row: V=1024 entries x 16 bits at 4 lanes need 2 KiB"),
])
def test_cli_bad_input_exits_2_with_one_line(capsys, tmp_path, argv, message):
    rc, lines = _cli(capsys, "sweep", "--source", "synthetic", "--rounds", "1", "--no-progress",
                     "--cache-dir", str(tmp_path), "--out", str(tmp_path / "x.csv"), *argv)
    assert rc == 2
    assert len(lines) == 1 and message in lines[0], lines


def test_cli_real_source_unavailable_is_an_error_not_a_fallback(capsys, tmp_path, monkeypatch):
    import hades.cli.sweep as sweep_cmd
    monkeypatch.setattr(sweep_cmd, "real_unavailable_reason", lambda: "no model here")
    rc, lines = _cli(capsys, "sweep", "--source", "real", "--out", str(tmp_path / "x.csv"))
    assert rc == 2 and len(lines) == 1
    assert "real traces are unavailable" in lines[0] and "--source synthetic" in lines[0]
    assert not (tmp_path / "x.csv").exists()


def test_cli_resume_refuses_a_foreign_csv(capsys, tmp_path):
    foreign = tmp_path / "other.csv"
    foreign.write_text("gamma,tokens_per_s\n1,2.0\n")
    rc, lines = _cli(capsys, "sweep", "--source", "synthetic", "--vocab", "256", "--gammas", "1",
                     "--sram-kib", "1", "--lanes", "4", "--rounds", "1", "--no-progress",
                     "--cache-dir", str(tmp_path), "--out", str(foreign), "--resume")
    assert rc == 2 and len(lines) == 1 and "not a sweep CSV" in lines[0]


def test_cli_sweep_writes_the_csv_and_bench_figures(capsys, tmp_path, cache_dir):
    out = tmp_path / "cli.csv"
    rc = cli.main(["sweep", "--source", "synthetic", "--vocab", "1024", "--rounds", "8", "--seed", "3",
                   "--gammas", "1,2,4", "--sram-kib", "2,4,8,16", "--lanes", "4,8,16", "--jobs", "1",
                   "--no-progress", "--cache-dir", str(cache_dir), "--out", str(out), "--bench"])
    captured = capsys.readouterr()
    assert rc == 0
    assert '"points": 36' in captured.out
    assert len(read_csv(out)) == 36



# ---- one writer per output -------------------------------------------------------------------------

TINY_ARGS = ["--source", "synthetic", "--vocab", "256", "--gammas", "1", "--sram-kib", "1", "--lanes", "4",
             "--rounds", "1", "--jobs", "1", "--no-progress"]


def test_cli_second_sweep_to_a_locked_out_is_refused_at_once(tmp_path):
    """Two `hades sweep` runs writing one --out at once used to both succeed, leaving one run's
    rows. Here this process is the first writer (it holds the lock for the whole test); the
    second, a real `hades sweep` process, must be refused before it builds a single trace."""
    from hades.fileio import output_lock
    out, cache = tmp_path / "shared.csv", tmp_path / "cache"
    argv = [sys.executable, "-m", "hades.cli", "sweep", *TINY_ARGS, "--cache-dir", str(cache), "--out", str(out)]
    with output_lock(out):
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"hades sweep: error: {out} is being written by another hades process (pid {os.getpid()})"]
    assert not out.exists() and not cache.exists()        # refused before any work
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr               # the lock went with its holder
    assert len(read_csv(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "shared.csv"]   # no lock file left


def test_sweep_into_a_fifo_writes_one_csv_at_the_end(cache_dir, tmp_path):
    """A stream output (a FIFO, /dev/stdout) is written into, once: not renamed over, and not
    rewritten after every task (which would send the reader several CSVs)."""
    spec = replace(SMALL, gammas=(1, 2), lanes=(4,))
    regular = tmp_path / "regular.csv"
    run_sweep(spec, regular, jobs=1, cache_dir=cache_dir)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # the CSV (a few KiB) waits in the pipe
    try:
        report = run_sweep(spec, fifo, jobs=1, cache_dir=cache_dir)
        assert report.tasks_run == 2
        data = b""
        while chunk := os.read(reader, 1 << 16):
            data += chunk
    except BlockingIOError:
        pass
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert data.decode() == regular.read_text()

# ---- real traces (loads the embedded LLM: ~20-40 s) ---------------------------------------------------

@pytest.mark.model
@pytest.mark.parametrize("block, fits_kib, draft, named", [("probability", 256, "layer-skip", "layer-skip"),
                                                           ("logit", 480, None, "prompt lookup")])   # 2 draft rows; 2 gamma + 1 rows
def test_real_source_sweep_names_the_models(tmp_path, block, fits_kib, draft, named, embedded_pair_loader):
    """The default draft of real sweeps is prompt lookup; --draft-method layer-skip records the draft model."""
    from hades.traces.cache import real_unavailable_reason
    reason = real_unavailable_reason()
    if reason:
        pytest.skip(reason)
    spec = SweepSpec(gammas=(2,), sram_kib=(96, fits_kib), lanes=(16,), rounds=2, source="real", block=block,
                     draft=draft)
    report = run_sweep(spec, tmp_path / "real.csv", jobs=1, cache_dir=tmp_path, pair_loader=embedded_pair_loader)
    assert len(report.rows) == 2
    row = report.rows[0]
    assert row["source"] == "real" and row["vocab_size"] == 49152 and row["block"] == block
    assert "SmolLM2" in row["target_model"] and named in row["draft_model"]
    assert row["tokens_per_s"] > 0
    assert report.rows[0]["offchip_rows_per_round"] > 0 == report.rows[1]["offchip_rows_per_round"]


def test_cl_sweep_reaches_beyond_the_pymtl3_beat_limit(capsys, tmp_path):
    """64 lanes x 16 bits is past what a PyMTL3 signal carries (1023 bits), but the CL timing
    model is analytic: a sweep may explore it, and more lanes are never slower."""
    out = tmp_path / "wide.csv"
    rc, lines = _cli(capsys, "sweep", "--source", "synthetic", "--rounds", "2", "--no-progress", "--vocab", "4096",
                     "--gammas", "2", "--sram-kib", "2048", "--lanes", "32,64", "--cache-dir", str(tmp_path),
                     "--out", str(out), "--jobs", "1")
    assert rc == 0, lines
    import csv
    rows = {int(r["lanes"]): float(r["tokens_per_s"]) for r in csv.DictReader(out.open())}
    assert rows[64] >= rows[32] > 0
