"""`hades sweep`: design-space sweep of the verifier (CL timing model) into a tidy CSV.

    hades sweep --source synthetic --gammas 1-16 --sram-kib 128,256,512,1024,2048 --out sweep.csv
    hades sweep --block probability ...               # the probability-row block on v1 traces
    hades sweep --resume --out sweep.csv ...          # finish an interrupted sweep
    hades sweep --scheduler tcp://host:8786 ...       # the same sweep on a Dask cluster
    hades sweep --trees 4,8,16,32 --lanes 16,64 --out trees.csv   # tree shapes vs chains (real tree traces)
"""
from __future__ import annotations

import json
import sys

from hades import limits
from hades.cli.common import int_list_arg
from hades.errors import ConfigError
from hades.studies.sweep import (BLOCK_MODELS, BLOCKS, DEFAULT_BLOCK, DEFAULT_GAMMAS, DEFAULT_LANES, DEFAULT_PROB_BITS,
                                 DEFAULT_ROUNDS, DEFAULT_SYNTHETIC_VOCAB, SweepSpec, TimingSettings, run_sweep,
                                 summarize_rows)
from hades.studies.tree_sweep import (DEFAULT_TREE_BUDGETS, DEFAULT_TREE_LANES, DEFAULT_TREE_ROUNDS, TreeSweepSpec,
                                      best_per_budget, run_tree_sweep)
from hades.traces.cache import (DEFAULT_CACHE_DIR, DEFAULT_REAL_DRAFT, DEFAULT_REAL_TEMPERATURE, REAL_DRAFTS, SOURCES,
                                real_unavailable_reason)


def _csv_text(values) -> str:
    return ",".join(map(str, values))


def add_parser(subparsers):
    p = subparsers.add_parser(
        "sweep", help="design-space sweep (gamma x SRAM x lanes x W) with the CL timing model",
        description="Time decode traces on a grid of hardware configurations with the CL model "
                    "(identical to the RTL when the rows fit on chip; beyond that the CL "
                    "off-chip overflow model) and write one CSV row per point.")
    p.add_argument("--block", choices=BLOCKS, default=DEFAULT_BLOCK,
                   help="logit: the logit block on v2 traces (bf16 logit rows, every row of a round buffered); "
                        "probability: the probability-row block on v1 traces (default logit)")
    g = p.add_argument_group("grid")
    g.add_argument("--gammas", type=int_list_arg(limits.GAMMA, sort_unique=True),
                   default=None, metavar="LIST",
                   help=f"draft tokens per round (default {_csv_text(DEFAULT_GAMMAS)}; ranges like 1-16 work)")
    g.add_argument("--sram-kib", type=int_list_arg(limits.SRAM_KIB, sort_unique=True),
                   default=None, metavar="LIST",
                   help="on-chip buffer sizes in KiB (default "
                        + "; ".join(f"{name} block {_csv_text(b.default_sram_kib)}"
                                    for name, b in BLOCK_MODELS.items()) + ")")
    g.add_argument("--lanes", type=int_list_arg(limits.LANES, sort_unique=True),
                   default=None, metavar="LIST",
                   help=f"lane counts, powers of two (default {_csv_text(DEFAULT_LANES)}; --trees "
                        f"{_csv_text(DEFAULT_TREE_LANES)})")
    g.add_argument("--prob-bits", type=int_list_arg(limits.PROB_BITS, sort_unique=True),
                   default=None, metavar="LIST",
                   help="probability (logit block: weight) widths W in bits; each W gets its own traces "
                        f"(default {_csv_text(DEFAULT_PROB_BITS)})")
    g.add_argument("--trees", type=int_list_arg(limits.TREE_NODES_MAX, sort_unique=True), nargs="?",
                   const=DEFAULT_TREE_BUDGETS, default=None, metavar="BUDGETS",
                   help="sweep tree shapes against chains at these node budgets instead of gammas (default "
                        f"{_csv_text(DEFAULT_TREE_BUDGETS)}; shapes per budget: docs/SWEEPS.md \"Tree shapes\"): "
                        "real tree traces of the embedded pair, the tree block's CL schedule; with --sram-kib "
                        "the CL off-chip model prices smaller buffers (default: every row on chip)")
    g.add_argument("--children", choices=("sampled", "deterministic"), default=None,
                   help="--trees: sampled children (k draft samples per node, default) or deterministic "
                        "(the draft's top-k); --mode greedy makes greedy trees")
    t = p.add_argument_group("traces")
    t.add_argument("--source", choices=SOURCES, default="real",
                   help="real: recorded with the embedded LLM pair; synthetic: Zipf-shaped rows (default real)")
    t.add_argument("--rounds", type=limits.ROUNDS.arg(), default=None,
                   help=f"rounds per trace (default {DEFAULT_ROUNDS}; --trees {DEFAULT_TREE_ROUNDS})")
    t.add_argument("--vocab", type=limits.VOCAB_MAX.arg("vocab_size"), default=None,
                   help=f"synthetic vocabulary size (default {DEFAULT_SYNTHETIC_VOCAB}, SmolLM2's)")
    t.add_argument("--seed", type=limits.SEED.arg(), default=0, help="trace seed (default 0)")
    t.add_argument("--mode", choices=limits.MODES, default="stochastic")
    t.add_argument("--draft-method", choices=REAL_DRAFTS, default=None,
                   help=f"real traces: lookup (prompt lookup, one-hot drafts, no draft model) or layer-skip (the "
                        f"embedded target on a subset of its layers) (default {DEFAULT_REAL_DRAFT})")
    t.add_argument("--temperature", type=limits.TEMPERATURE.arg(), default=None,
                   help=f"real stochastic traces: sampling temperature, > 0 (default {DEFAULT_REAL_TEMPERATURE})")
    t.add_argument("--nested", action="store_true",
                   help="cut every gamma's rounds from one trace at the largest gamma (the first gamma drafts "
                        "of each round): one trace to build instead of one per gamma, and the same contexts "
                        "and uniforms for every gamma (smoother curves); per-round statistics are unchanged")
    t.add_argument("--cache-dir", default=None, help=f"trace cache (default {DEFAULT_CACHE_DIR})")
    m = p.add_argument_group("timing model")
    m.add_argument("--clock-hz", type=limits.CLOCK_HZ.arg(), default=1.0e9, help="clock for tokens/s (default 1e9)")
    m.add_argument("--offchip-bw", type=limits.OFFCHIP_BW.arg(), default=4.0,
                   help="off-chip bandwidth, entries per cycle each way (default 4)")
    m.add_argument("--offchip-latency", type=limits.OFFCHIP_LATENCY.arg(), default=100,
                   help="cycles before the first off-chip word of a residual scan (default 100)")
    r = p.add_argument_group("running")
    r.add_argument("--out", default="sweep.csv", help="output CSV (default sweep.csv)")
    r.add_argument("--jobs", type=limits.JOBS.arg(), default=2, help="local worker processes (default 2)")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the tasks on the Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786)")
    r.add_argument("--resume", action="store_true",
                   help="keep the rows already in --out and compute only the missing points")
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    r.add_argument("--bench", action="store_true",
                   help="print timing figures of the run (wall time, trace vs timing-model time)")
    p.set_defaults(func=run)
    return p


def spec_from_args(args) -> SweepSpec:
    if args.source == "real" and args.vocab is not None:
        raise ConfigError("--vocab applies to --source synthetic only (the real pair has its own vocabulary)")
    for flag, value in (("--draft-method", args.draft_method), ("--temperature", args.temperature)):
        if args.source == "synthetic" and value is not None:
            raise ConfigError(f"{flag} applies to --source real only")
    if args.children is not None:
        raise ConfigError("--children applies to --trees sweeps")
    return SweepSpec(gammas=tuple(args.gammas or DEFAULT_GAMMAS),
                     sram_kib=None if args.sram_kib is None else tuple(args.sram_kib),
                     block=args.block, lanes=tuple(args.lanes or DEFAULT_LANES),
                     prob_bits=tuple(args.prob_bits or DEFAULT_PROB_BITS),
                     rounds=args.rounds if args.rounds is not None else DEFAULT_ROUNDS, source=args.source,
                     vocab_size=args.vocab if args.source == "synthetic" else None, seed=args.seed,
                     mode=args.mode, nested=args.nested, draft=args.draft_method, temperature=args.temperature,
                     timing=TimingSettings(clock_hz=args.clock_hz, offchip_bw=args.offchip_bw,
                                           offchip_latency=args.offchip_latency))


# chain-sweep options that a tree sweep does not take (their parser defaults are None / False)
NOT_WITH_TREES = ("gammas", "prob_bits", "vocab", "draft_method", "nested", "scheduler", "resume", "bench")


def tree_spec_from_args(args) -> TreeSweepSpec:
    for name in NOT_WITH_TREES:
        if getattr(args, name) not in (None, False):
            raise ConfigError(f"--{name.replace('_', '-')} applies to chain sweeps, not --trees")
    if args.source != "real":
        raise ConfigError("--trees sweeps real tree traces of the embedded pair; --source synthetic does not apply")
    if args.mode == "greedy" and args.children is not None:
        raise ConfigError("--children applies to stochastic trees; --mode greedy makes greedy trees")
    scheme = "greedy" if args.mode == "greedy" else args.children or "sampled"
    return TreeSweepSpec(budgets=tuple(args.trees), scheme=scheme, lanes=tuple(args.lanes or DEFAULT_TREE_LANES),
                         sram_kib=(None,) if args.sram_kib is None else (None, *args.sram_kib),
                         rounds=args.rounds if args.rounds is not None else DEFAULT_TREE_ROUNDS,
                         temperature=args.temperature if args.temperature is not None else 1.0, seed=args.seed,
                         clock_hz=args.clock_hz, offchip_bw=args.offchip_bw, offchip_latency=args.offchip_latency)


def run_trees(args) -> int:
    spec = tree_spec_from_args(args)
    spec.check()
    reason = real_unavailable_reason()
    if reason is not None:
        raise ConfigError(f"real tree traces are unavailable ({reason})")
    rows = run_tree_sweep(spec, args.out, cache_dir=args.cache_dir, progress=not args.no_progress)
    print(f"sweep: {len(rows)} tree points written to {args.out}", file=sys.stderr)
    for (budget, lanes), (best, chain) in sorted(best_per_budget(rows).items()):
        if best is None or chain is None:
            continue
        print(f"budget {budget} nodes, {lanes} lanes: best tree {best['shape']} {best['tokens_per_round']:.2f} "
              f"tokens/round, {best['tokens_per_s']:.4g} tokens/s; chain {chain['tokens_per_round']:.2f} "
              f"tokens/round, {chain['tokens_per_s']:.4g} tokens/s", file=sys.stderr)
    return 0


def run(args) -> int:
    from hades.fileio import check_output_path
    check_output_path(args.out)   # before any trace is built (the lock is taken by run_sweep)
    check_output_path(args.cache_dir, directory=True)
    if args.trees is not None:
        return run_trees(args)
    spec = spec_from_args(args)
    spec.check()
    if spec.source == "real":
        reason = real_unavailable_reason()
        if reason is not None:
            # never fall back silently: synthetic numbers must not pass for real-model ones
            raise ConfigError(f"real traces are unavailable ({reason}); rerun with --source synthetic "
                              "for synthetic traces")
    report = run_sweep(spec, args.out, jobs=args.jobs, scheduler=args.scheduler, resume=args.resume,
                       cache_dir=args.cache_dir, progress=not args.no_progress)
    head = summarize_rows(report.rows)
    print(f"sweep: {report.points_run} points computed, {report.points_skipped} already in {args.out}; "
          f"{len(report.rows)} rows written to {args.out}", file=sys.stderr)
    if head:
        bp = head["best_point"]
        print(f"best: {head['best_tokens_per_s']:.4g} verified tokens/s on the {bp['block']} block at "
              f"gamma={bp['gamma']} "
              f"lanes={bp['lanes']} sram={bp['sram_kib']} KiB W={bp['prob_bits']}", file=sys.stderr)
    if args.bench:
        figures = {
            "points": spec.num_points(), "points_computed": report.points_run, "tasks": report.tasks_run,
            "jobs": args.jobs, "scheduler": args.scheduler,
            "wall_seconds": round(report.wall_seconds, 3),
            "trace_seconds_summed": round(report.trace_seconds, 3),
            "timing_model_seconds_summed": round(report.timing_seconds, 4),
            "rounds_timed": report.rounds_timed,
            "timing_model_rounds_per_second": (round(report.rounds_timed / report.timing_seconds)
                                               if report.timing_seconds else None),
        }
        print(json.dumps(figures))
    return 0
