"""`hades verify TRACE --level fl|cl|rtl`: run a trace through one model level."""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from hades import limits
from hades.cl.model import timed_results
from hades.cl.timing import TimingConfig
from hades.cli.common import add_hw_args, hw_config, progress_bar
from hades.errors import ConfigError
from hades.fl.verifier import verify_logit_round, verify_round
from hades.traces.format import read_trace

V2_LEVELS_MESSAGE = ("v2 (logit) traces verify at --level fl for now; CL and RTL of the logit front end "
                     "are not built yet")


def add_parser(sub):
    p = sub.add_parser("verify", help="verify a trace at FL, CL or RTL and print per-round results")
    p.add_argument("trace", help="trace file (.npz, hades-trace/1 or hades-trace/2; v2 at --level fl only)")
    p.add_argument("--level", default="fl", help="fl, cl or rtl (default fl)")
    add_hw_args(p)
    p.add_argument("--rtl-backend", default="verilator", help="rtl: verilator (pymtl3 import, default), batch (same Verilog, C++ driver: fast) or python")
    p.add_argument("--sim", action="store_true",
                   help="fl/cl: stream the rounds through the PyMTL3 component instead of calling the model directly")
    p.add_argument("--vcd", default=None, help="rtl with --rtl-backend python: write a VCD waveform")
    p.add_argument("--src-stall", type=limits.STALL_PROBABILITY.arg("src_stall"), default=0.0,
                   help="probability of an input stall before each beat, in [0, 1)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.level not in ("fl", "cl", "rtl"):
        raise ConfigError(f"unknown level {args.level!r}; expected fl, cl or rtl")
    cfg = hw_config(args)
    if args.level == "rtl":
        if args.rtl_backend not in ("verilator", "batch", "python"):
            raise ConfigError(f"unknown RTL backend {args.rtl_backend!r}; expected verilator, batch or python")
        cfg.require_rtl()
    if args.vcd is not None:   # refused up front, not ignored or written beside a directory
        from hades.sim.run import SimOptions, check_vcd
        check_vcd(args.level, SimOptions(backend=args.rtl_backend, vcd=args.vcd))
    trace = read_trace(args.trace)
    logits = getattr(trace, "format_version", 1) == 2
    if logits:
        if args.level != "fl":
            raise ConfigError(V2_LEVELS_MESSAGE)
        if args.sim:
            raise ConfigError("--sim streams v1 rounds through the PyMTL3 component; v2 (logit) traces verify "
                              "with the FL golden function only for now")
        cfg.check_logit_trace(trace)
    else:
        cfg.check_trace(trace)
    t0 = time.perf_counter()
    if logits:   # one round at a time, as for v1: its weight rows live only while it is verified
        W, U = trace.weight_bits, trace.uniform_bits
        results = [verify_logit_round(r, W, U, where=f"round {i}") for i, r in enumerate(trace.rounds())]
    elif args.level == "rtl" or args.sim:
        from hades.sim.run import SimOptions, run_rounds   # pymtl3: imported only when simulating
        rounds = list(trace.rounds())
        opts = SimOptions(backend=args.rtl_backend, vcd=args.vcd, src_stall=args.src_stall)
        with progress_bar(len(rounds), f"{args.level} simulation") as bar:
            results = run_rounds(args.level, cfg, rounds, opts, progress=bar.update)
    elif args.level == "cl":   # FL and CL take one round at a time: its int64 rows live only while it is verified
        results = timed_results(TimingConfig(hw=cfg), trace.rounds())
    else:
        results = [verify_round(r, cfg.row_sum, cfg.uniform_bits) for r in trace.rounds()]
    wall = time.perf_counter() - t0

    rows = []
    mismatches = 0
    for i, res in enumerate(results):
        exp = (int(trace.expected_accepted[i]), int(trace.expected_token[i]))
        match = res.decision() == exp
        mismatches += not match
        row = {"round": i, "gamma": int(trace.gamma[i]), "accepted": res.accepted, "token": res.token,
               "expected_accepted": exp[0], "expected_token": exp[1], "match": match}
        if res.cycles is not None:
            row.update(cycles=res.cycles, latency=res.latency)
        rows.append(row)
    gam = trace.gamma.astype(np.int64)
    acc = np.array([r.accepted for r in results])
    summary = {"rounds": len(rows), "tokens": int(acc.sum() + len(rows)),
               "mean_accepted": float(acc.mean()),
               "acceptance_rate": float(acc.sum() / gam.sum()) if gam.sum() else None,
               "mismatches": mismatches, "wall_seconds": round(wall, 3)}
    if results and results[0].cycles is not None:
        cyc = np.array([r.cycles for r in results])
        lat = np.array([r.latency for r in results])
        full = acc == gam
        beats = -(-trace.vocab_size // cfg.lanes)
        summary.update(total_cycles=int(cyc.sum()), mean_cycles=float(cyc.mean()),
                       mean_latency=float(lat.mean()), max_latency=int(lat.max()),
                       max_latency_rejected=int(lat[~full].max()) if (~full).any() else None,
                       max_latency_all_accepted=int(lat[full].max()) if full.any() else None,
                       latency_bound_rejected=1.25 * beats + 64, latency_bound_all_accepted=64,
                       tokens_per_kcycle=float(1000 * summary["tokens"] / cyc.sum()))
        if args.level == "rtl":
            summary["sim_cycles_per_second"] = round(float(cyc.sum()) / wall)
    config = cfg.as_dict()
    if args.level == "rtl":
        config["backend"] = args.rtl_backend
    if args.json:
        json.dump({"level": args.level, "config": config, "trace": str(args.trace),
                   "rounds": rows, "summary": summary}, sys.stdout)
        print()
    else:
        timed = "cycles" in rows[0]
        print(f"{'round':>5} {'gamma':>5} {'accepted':>8} {'token':>6} {'expected':>12}"
              + (f" {'cycles':>8} {'latency':>7}" if timed else ""))
        for r in rows:
            print(f"{r['round']:>5} {r['gamma']:>5} {r['accepted']:>8} {r['token']:>6} "
                  f"{str(r['expected_accepted']) + '/' + str(r['expected_token']):>12}"
                  + (f" {r['cycles']:>8} {r['latency']:>7}" if timed else "")
                  + ("" if r["match"] else "  MISMATCH"))
        print(f"level {args.level}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                 for k, v in summary.items()))
    if mismatches:
        print(f"hades verify: {mismatches} round(s) differ from the trace's expected results", file=sys.stderr)
        return 1
    return 0
