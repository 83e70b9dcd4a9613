"""`hades bench`: verification tokens/s of software on this CPU versus the modeled HADES block,
an Amdahl projection of the end-to-end gain, and (--sim-speed) the speed of the simulators.

With --from-logits, or a v2 (logit-row) --trace, the rounds start from bf16 logits and the
table compares (a) torch from logits, (b) today's path (host softmax + quantisation, then the
v1 block) and (c) the HADES logit block (docs/BENCH.md "From logits")."""
from __future__ import annotations

import dataclasses
import datetime
import sys
from pathlib import Path

from hades import limits
from hades.studies import bench
from hades.cli.common import add_hw_args, hw_config, int_list_arg, progress_bar
from hades.errors import ConfigError


def add_parser(sub):
    p = sub.add_parser("bench", help="verification tokens/s: torch/numpy/FL on this CPU vs modeled HADES")
    p.add_argument("--trace", default=None,
                   help="trace file (.npz); default: a synthetic V=49152 trace (labelled synthetic). A v2 "
                        "(logit-row) trace runs the from-logits comparison")
    p.add_argument("--from-logits", action="store_true",
                   help="start from bf16 logit rows: torch from logits (a), today's host softmax + quantise + v1 "
                        "block (b), the HADES logit block (c); default rounds: a synthetic v2 trace")
    p.add_argument("--gammas", type=int_list_arg(limits.BENCH_GAMMA), default="2,4,8",
                   help="gammas to benchmark (default 2,4,8)")
    p.add_argument("--rounds", type=limits.ROUNDS.arg(), default=16, help="rounds per gamma (default 16)")
    p.add_argument("--vocab", type=limits.VOCAB_MAX.arg("vocab_size"), default=49152,
                   help="synthetic trace vocabulary (default 49152, SmolLM2)")
    p.add_argument("--seed", type=limits.SEED.arg(), default=0, help="synthetic trace seed (default 0)")
    req = p.add_argument_group("one request setting for the synthetic --from-logits rounds (default: a per-round "
                               "mix of temperatures 0.5..1.5 and min-p, no top-k/top-p)")
    req.add_argument("--temperature", type=limits.TEMPERATURE.arg(), default=None, metavar="T",
                     help="temperature of every round (> 0; default 1 when another option of this group is given)")
    req.add_argument("--top-k", type=limits.TOP_K.arg(), default=None, metavar="N", help="top-k, 0 = off")
    req.add_argument("--top-p", type=limits.TOP_P.arg(), default=None, metavar="P", help="top-p in (0, 1], 1 = off")
    req.add_argument("--min-p", type=float, default=None, metavar="P",
                     help="min-p in [0, 1], 0 = off")
    p.add_argument("--cache-dir", default=None, help="trace cache directory (default <repo>/.cache/traces)")
    p.add_argument("--clock-hz", type=limits.CLOCK_HZ.arg(), default=bench.DEFAULT_CLOCK_HZ,
                   help="HADES clock for the modeled time (default 1e9: see docs/BENCH.md)")
    add_hw_args(p)
    p.add_argument("--repeats", type=limits.REPEATS.arg(), default=5,
                   help="timed runs per software implementation (median)")
    p.add_argument("--torch-dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--threads", type=limits.THREADS_OR_DEFAULT.arg(), default=1,
                   help="torch CPU threads (default 1: on a shared 2-core machine 2 threads ran ~3x slower "
                        "from OpenMP contention; 0 = torch's default)")
    p.add_argument("--rtl-check-rounds", type=limits.CHECK_ROUNDS.arg(), default=2,
                   help="rounds co-simulated to confirm the modeled cycles (0: skip; default 2); from logits: "
                        "on the logit block's RTL at --lanes")
    p.add_argument("--rtl-lanes", type=limits.LANES.arg("rtl_lanes"), default=32,
                   help="lanes of the RTL cross-check (default 32)")
    p.add_argument("--rtl-backend", default="verilator", help="verilator (default) or python")
    p.add_argument("--decode-csv", default=None, help="`hades decode` CSV giving the verification time share")
    p.add_argument("--csv", default=None, help="write the verification table here")
    p.add_argument("--plot", default=None, help="write a PNG bar chart here (e.g. plots/bench_verify.png)")
    p.add_argument("--sim-speed", action="store_true", help="also measure the simulators' speed")
    p.add_argument("--sim-small-vocab", type=limits.VOCAB_MAX.arg("sim_small_vocab"), default=512,
                   help="vocabulary of the pure-Python RTL speed run (default 512)")
    p.add_argument("--sim-csv", default=None, help="write the simulation-speed table here")
    p.set_defaults(func=run)


def _projection_csv(csv_path) -> Path:
    return Path(csv_path).with_name(Path(csv_path).stem + "_projection.csv")


SAMPLING_OPTIONS = ("temperature", "top_k", "top_p", "min_p")


def _request_sampling(args) -> bench.RequestSampling | None:
    """The one request setting of --temperature/--top-k/--top-p/--min-p (None: none given)."""
    given = [o for o in SAMPLING_OPTIONS if getattr(args, o) is not None]
    if not given:
        return None
    if args.trace or not args.from_logits:
        flags = ", ".join("--" + o.replace("_", "-") for o in given)
        raise ConfigError(f"{flags} set the synthetic --from-logits rounds; a --trace carries its own settings "
                          "and v1 rounds have none")
    if args.temperature == 0:
        raise ConfigError("--temperature 0 is greedy: the request settings are for stochastic rounds (use T > 0)")
    return bench.RequestSampling(temperature=1.0 if args.temperature is None else args.temperature,
                                 top_k=args.top_k or 0, top_p=1.0 if args.top_p is None else args.top_p,
                                 min_p=args.min_p or 0.0)


def _load_batches(args, gammas):
    """v1 RoundBatches, or LogitBatches for --from-logits and for a v2 --trace."""
    sampling = _request_sampling(args)
    if args.trace:
        from hades.traces.format import read_trace
        tr = read_trace(args.trace)
        if getattr(tr, "format_version", 1) == 3:
            raise ConfigError(f"{args.trace} is a tree trace (hades-trace/3); hades bench measures chain rounds "
                              "only (tree rounds verify with hades verify --level fl|cl|rtl)")
        if getattr(tr, "format_version", 1) == 2:
            return bench.logit_batches_from_trace(tr, gammas, args.rounds, source=f"trace {args.trace} (logit rows)")
        if args.from_logits:
            raise ConfigError(f"--from-logits needs a v2 trace of logit rows (hades trace --trace-format 2); "
                              f"{args.trace} holds v1 probability rows")
        return bench.batches_from_trace(tr, gammas, args.rounds, source=f"trace {args.trace}")
    if args.from_logits:
        return bench.synthetic_logit_batches(gammas, args.rounds, args.vocab, args.seed, args.cache_dir,
                                             sampling=sampling)
    return bench.synthetic_batches(gammas, args.rounds, args.vocab, args.seed, args.cache_dir)


def _print_logit_disagreements(result, rounds_by_gamma: dict) -> None:
    for g, per_path in result.disagreements.items():
        cells = ", ".join(f"{path} {n}" for path, n in per_path.items())
        print(f"decisions that differ from FL (verify_logit_round), gamma {g}, of {rounds_by_gamma[g]} rounds: "
              f"{cells}")
    if any(n for per_path in result.disagreements.values() for n in per_path.values()):
        print("note: float softmax rows are not the integer weights of NUMERICS.md 13-15 (fixed point, the "
              "W-bit tail, section 18): a round near a decision boundary can go the other way")


def run(args) -> int:
    from hades.fileio import check_output_path
    for path in (args.csv, args.csv and _projection_csv(args.csv), args.plot, args.sim_csv):
        check_output_path(path)   # every output, before any measurement
    check_output_path(args.cache_dir, directory=True)
    gammas = list(args.gammas)
    hw = hw_config(args)
    bc = bench.BenchConfig(hw=hw, clock_hz=args.clock_hz, repeats=args.repeats, torch_dtype=args.torch_dtype,
                           torch_threads=args.threads)
    batches = _load_batches(args, gammas)
    logits = isinstance(batches[0], bench.LogitBatch)
    if logits and args.sim_speed:
        raise ConfigError("--sim-speed times the simulators on v1 (probability-row) rounds; run it without "
                          "--from-logits or a v2 trace")
    source = batches[0].source
    print(f"# hades bench{' from logits' if logits else ''}, {datetime.date.today().isoformat()}; rounds: {source}"
          + ("" if args.trace else " -- SYNTHETIC, not a real LLM trace"))
    with progress_bar(len(batches), "bench", unit="gamma") as bar:
        result = bench.run_bench(batches, bc, progress=bar.update)
    print(bench.format_table(result.rows), end="")
    if logits:
        _print_logit_disagreements(result, {b.gamma: b.num_rounds for b in batches})
    for g, n in result.disagreements.items():
        if n and not logits:
            print(f"note: gamma {g}: torch ({args.torch_dtype}) and FL differ on {n} round(s) "
                  "(float rounding near a decision boundary; see tests/test_bench.py)")

    if logits:
        print(bench.format_logit_phases(result.logit_block, hw.lanes, args.clock_hz), end="")
    if args.rtl_check_rounds > 0:
        if logits:   # the logit block (c), on its own RTL
            chk = bench.logit_rtl_cycle_check(batches[0], hw.lanes, args.rtl_check_rounds, args.rtl_backend)
            what = "of the logit block (c) "
        else:
            chk = bench.rtl_cycle_check(batches[0], args.rtl_lanes, args.rtl_check_rounds, args.rtl_backend)
            what = ""
        verdict = "OK" if chk.cycles_match and chk.decisions_match else "MISMATCH"
        print(f"RTL check {what}({args.rtl_backend}, {chk.module}, gamma {chk.gamma}, {chk.rounds} rounds): "
              f"RTL cycles {list(chk.rtl_cycles)} vs CL {list(chk.cl_cycles)}, decisions "
              f"{'equal' if chk.decisions_match else 'DIFFER'}: {verdict} ({chk.seconds:.1f} s)")
        if verdict != "OK":
            return 1

    # ---- Amdahl: the verification share bounds the end-to-end gain
    if args.decode_csv:
        share, share_src = bench.verification_share_from_csv(args.decode_csv)
        shares = [share]
    else:
        shares, share_src = list(bench.PAPER_VERIFICATION_SHARE_RANGE), "paper Table I range 2%..10%"
    speedups = {f"torch CPU, gamma {r.gamma}": r.hades_speedup for r in result.rows
                if r.implementation.startswith("torch CPU") and r.hades_speedup is not None}
    speedups.update({n: v for n, v in bench.PAPER_QUOTED_RATIOS})
    projs = bench.projections(shares, speedups, share_src)
    print(f"\nEnd-to-end decode speedup if verification runs on HADES (Amdahl; share from {share_src}):")
    for pr in projs:
        print(f"  share {pr.verification_share:6.1%}  verification x{pr.verification_speedup:8.2f}  "
              f"->  end-to-end x{pr.end_to_end_speedup:.3f}   ({pr.source.split('; ')[-1]})")
    cap = max(1 / (1 - s) for s in shares)
    print(f"  even an infinitely fast verifier gives at most x{cap:.3f}: the decode time is the models'.")
    for pair, by_g in bench.PAPER_TABLE1_TOKENS_PER_S.items():
        cells = ", ".join(f"g{g}: {tps} -> {tps * bench.amdahl(max(shares), bench.PAPER_QUOTED_RATIOS[0][1]):.1f}"
                          for g, tps in by_g.items())
        print(f"  {pair} Table I tokens/s at share {max(shares):.0%}, x6.99: {cells}")

    if args.csv:
        print(f"wrote {bench.rows_to_csv(result.rows, args.csv)}")
        proj_path = _projection_csv(args.csv)
        print(f"wrote {bench.rows_to_csv(projs, proj_path)}")
    if args.plot:
        title = f"Verification tokens/s, V={batches[0].vocab_size} ({'synthetic' if not args.trace else 'trace'}), " \
                f"HADES L={hw.lanes} @ {args.clock_hz / 1e9:g} GHz"
        print(f"wrote {bench.plot_bench(result.rows, args.plot, title)}")

    if args.sim_speed:
        full = next((b for b in batches if b.gamma == 4), batches[0])
        full = dataclasses.replace(full, rounds=full.rounds[:2])
        small = bench.synthetic_batches([full.gamma], 2, args.sim_small_vocab, args.seed, args.cache_dir)[0]
        rows = bench.sim_speed(full, small, lanes=args.rtl_lanes, with_verilator=args.rtl_backend == "verilator")
        print("\nSimulation speed (same rounds; pure-Python RTL on the small-vocabulary rounds):")
        print(bench.format_sim_speed(rows), end="")
        if args.sim_csv:
            print(f"wrote {bench.rows_to_csv(rows, args.sim_csv)}")
    sys.stdout.flush()
    return 0
