#!/usr/bin/env python
"""Figures for docs/SWEEPS.md: how fast the sweep and the CL timing model are, against the
Verilator RTL co-simulation.

    .venv/bin/python scripts/bench_sweep.py                      # everything (several minutes)
    .venv/bin/python scripts/bench_sweep.py --skip-sweep         # CL vs RTL only
    .venv/bin/python scripts/bench_sweep.py --cache-dir DIR      # reuse a trace cache (warm run)

1. The issue's target sweep: 16 gammas x 8 SRAM sizes x 2 lane counts, 64 rounds per trace,
   synthetic V = 49152 traces, 2 local processes; timed cold (empty trace cache: the traces are
   generated and written) and warm (the same sweep again, decisions read from the cache).
2. CL rounds/s: round_timing vectorised over the 64 rounds of a trace (the sweep's inner
   loop), and the CL component's per-round path (verify_round + round_timing).
3. RTL rounds/s: the Verilator co-simulation of one or two full-vocabulary rounds
   (hades.sim.run's src -> dut -> sink harness ticked from Python), with the elaboration +
   import of the cached build timed apart from the simulated cycles; and, for scale, the same
   Verilog under the C++ batch driver of hades/rtl/batch.py.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hades.cl.model import timed_result  # noqa: E402
from hades.cl.timing import TimingConfig, round_timing  # noqa: E402
from hades.config import VerifierConfig  # noqa: E402
from hades.studies.sweep import SweepSpec, run_sweep  # noqa: E402
from hades.traces.cache import TraceRequest, get_summary, get_trace  # noqa: E402

TARGET = SweepSpec(gammas=tuple(range(1, 17)), sram_kib=(128, 256, 384, 512, 768, 1024, 1536, 2048),
                   lanes=(16, 32), rounds=64, source="synthetic", vocab_size=49152,
                   block="probability")   # the v1 figures of docs/SWEEPS.md


def bench_sweep(cache_dir: Path, jobs: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            rep = run_sweep(TARGET, Path(tmp) / f"{label}.csv", jobs=jobs, cache_dir=cache_dir, progress=True)
            wall = time.perf_counter() - t0
            out[label] = {"wall_s": round(wall, 2), "points": len(rep.rows), "tasks": rep.tasks_run,
                          "trace_s_summed": round(rep.trace_seconds, 2),
                          "timing_model_s_summed": round(rep.timing_seconds, 4)}
            print(f"sweep {label}: {wall:.1f} s wall for {len(rep.rows)} points", file=sys.stderr)
    return out


def bench_cl(cache_dir: Path, gamma: int, lanes: int, repeats: int = 200) -> dict:
    req = TraceRequest(source="synthetic", gamma=gamma, rounds=64, vocab_size=49152)
    summary = get_summary(req, cache_dir)
    hw = VerifierConfig(lanes=lanes, vocab_max=49152, gamma_max=gamma)
    tc = TimingConfig(hw=hw)
    args = (summary.gamma, summary.vocab_size, summary.greedy, summary.accepted, summary.token)
    round_timing(tc, *args)
    t0 = time.perf_counter()
    for _ in range(repeats):
        round_timing(tc, *args)
    vec_s = (time.perf_counter() - t0) / repeats
    rounds = list(get_trace(req, cache_dir).rounds())
    t0 = time.perf_counter()
    for rnd in rounds:
        timed_result(tc, rnd)
    per_round_s = (time.perf_counter() - t0) / len(rounds)
    return {"gamma": gamma, "lanes": lanes, "vocab": 49152, "rounds": len(rounds),
            "round_timing_vectorised_rounds_per_s": round(len(rounds) / vec_s),
            "cl_component_path_rounds_per_s": round(1 / per_round_s, 1)}


def bench_rtl(cache_dir: Path, gamma: int, lanes: int, n_rounds: int) -> dict:
    """Verilator co-simulation of full-vocabulary rounds (vocab_max 65536, gamma_max 4: the
    configuration the test suite builds, so the compiled model is normally cached)."""
    from pymtl3 import mk_bits  # noqa: F401  (pymtl3 import cost is not part of the figure)

    from hades.protocol import round_beats
    from hades.sim.run import SimOptions, build_harness
    req = TraceRequest(source="synthetic", gamma=gamma, rounds=max(n_rounds, 2), vocab_size=49152)
    trace = get_trace(req, cache_dir)
    rounds = list(trace.rounds())[:n_rounds]
    cfg = VerifierConfig(lanes=lanes, vocab_max=65536, gamma_max=max(4, gamma))
    beats = [b for rnd in rounds for b in round_beats(cfg, rnd)]
    t0 = time.perf_counter()
    th = build_harness("rtl", cfg, beats, SimOptions())
    th.sim_reset()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cycles = 0
    while len(th.sink.received) < len(rounds):
        th.sim_tick()
        cycles += 1
        if cycles > 4 * len(beats) + 1000:
            raise RuntimeError("RTL did not finish")
    sim_s = time.perf_counter() - t0
    th.dut.finalize()
    from hades.protocol import unpack_result
    got = [unpack_result(cfg, msg, True) for _, msg in th.sink.received]
    want = [timed_result(TimingConfig(hw=cfg), rnd) for rnd in rounds]
    assert [(g.decision(), g.cycles) for g in got] == [(w.decision(), w.cycles) for w in want], "RTL != CL"
    return {"module": cfg.module_name(), "gamma": gamma, "rounds": len(rounds), "vocab": trace.vocab_size,
            "cycles_per_round": [int(g.cycles) for g in got], "elaborate_and_import_s": round(build_s, 2),
            "simulate_s": round(sim_s, 2), "rounds_per_s": round(len(rounds) / sim_s, 3),
            "cycles_per_s": round(cycles / sim_s)}


def bench_rtl_batch(cache_dir: Path, gamma: int, lanes: int, n_rounds: int) -> dict:
    """The same Verilog driven by the C++ batch driver (hades/rtl/batch.py): no Python per
    cycle. The first call compiles (cached under build/batch); the second is timed."""
    from hades.rtl.batch import run_batch
    req = TraceRequest(source="synthetic", gamma=gamma, rounds=n_rounds, vocab_size=49152)
    rounds = list(get_trace(req, cache_dir).rounds())
    cfg = VerifierConfig(lanes=lanes, vocab_max=65536, gamma_max=max(4, gamma))
    run_batch(cfg, rounds[:1])
    t0 = time.perf_counter()
    got = run_batch(cfg, rounds)
    secs = time.perf_counter() - t0
    want = [timed_result(TimingConfig(hw=cfg), rnd) for rnd in rounds]
    assert [(g.decision(), g.cycles) for g in got] == [(w.decision(), w.cycles) for w in want], "RTL != CL"
    cycles = sum(int(g.cycles) for g in got)
    return {"module": cfg.module_name(), "gamma": gamma, "rounds": len(rounds), "seconds": round(secs, 3),
            "rounds_per_s": round(len(rounds) / secs, 1), "cycles_per_s": round(cycles / secs),
            "note": "one process run incl. writing the beats to a file and reading the results"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", default=None, help="trace cache (default: a fresh temporary one, so 'cold' is cold)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-rtl", action="store_true")
    ap.add_argument("--rtl-rounds", type=int, default=2)
    args = ap.parse_args(argv)
    tmp = None
    if args.cache_dir is None:
        tmp = tempfile.mkdtemp(prefix="hades-bench-cache-")
    cache = Path(args.cache_dir or tmp)
    figures = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                           "numpy": np.__version__}}
    try:
        if not args.skip_sweep:
            figures["sweep"] = {"grid": "16 gammas x 8 SRAM sizes x 2 lane counts, 64 rounds, synthetic V=49152",
                                "jobs": args.jobs, **bench_sweep(cache, args.jobs)}
        figures["cl"] = [bench_cl(cache, 4, 32), bench_cl(cache, 16, 16)]
        if not args.skip_rtl:
            figures["rtl"] = bench_rtl(cache, 4, 32, args.rtl_rounds)
            figures["rtl_batch"] = bench_rtl_batch(cache, 4, 32, 32)
            figures["cl_over_rtl_rounds_per_s"] = round(
                figures["cl"][0]["round_timing_vectorised_rounds_per_s"] / figures["rtl"]["rounds_per_s"])
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
