"""`hades synth`: Yosys synthesis of the emitted Verilog for a few lane counts (cells,
flip-flops, memory bits, longest combinational path and where it runs) and an energy-per-round
estimate. Hierarchical by default (each distinct module once, cached: hades.studies.synth_hier);
--flat runs the old `synth -flatten` flow, feasible for small blocks only."""
from __future__ import annotations

import datetime
from pathlib import Path

from hades import limits
from hades.studies import bench, synth
from hades.cli.common import int_list_arg
from hades.config import VerifierConfig


def add_parser(sub):
    p = sub.add_parser("synth", help="synthesise the verifier with Yosys; cells, flops, memory, depth, energy")
    p.add_argument("--lanes", type=int_list_arg(limits.LANES), default="4,8,16",
                   help="lane counts to synthesise (default 4,8,16)")
    p.add_argument("--vocab-max", type=limits.VOCAB_MAX.arg(), default=1024,
                   help="vocab_max of the synthesised block (default 1024: the logic barely depends on it)")
    p.add_argument("--gamma-max", type=limits.GAMMA_MAX.arg(), default=4,
                   help="gamma_max of the synthesised block (default 4)")
    p.add_argument("--prob-bits", type=limits.PROB_BITS.arg(), default=16)
    p.add_argument("--uniform-bits", type=limits.UNIFORM_BITS.arg(), default=32)
    p.add_argument("--work-dir", default=None, help="keep Verilog and Yosys logs here (default: temp dir)")
    p.add_argument("--timeout", type=limits.SYNTH_TIMEOUT.arg(), default=1800,
                   help="seconds per Yosys run (default 1800)")
    p.add_argument("--csv", default=None, help="write the synthesis table here (energy goes to <stem>_energy.csv, "
                                               "hierarchical runs' per-module depths to <stem>_modules.csv)")
    p.add_argument("--logits", action="store_true",
                   help="synthesise the logit block (bf16 logit rows in) instead of the probability-row block")
    p.add_argument("--flat", action="store_true",
                   help="the flat flow (synth -flatten, one Yosys run over the whole block; slow beyond small blocks) "
                        "instead of the hierarchical one")
    p.add_argument("--synth-cache", default=None,
                   help="cache of synthesised modules for the hierarchical flow (default build/synth_cache)")
    p.add_argument("--no-energy", action="store_true", help="skip the energy estimate")
    p.add_argument("--lane-trees", action="store_true",
                   help="synthesise the logit block's lane trees alone (row maximum, weight and residual sums, "
                        "the crossing) at each lane count: how the logic depth grows with L")
    g = p.add_argument_group("energy estimate (rounds of a synthetic trace through the CL timing model)")
    g.add_argument("--energy-vocab", type=limits.VOCAB_MAX.arg("energy_vocab"), default=49152,
                   help="vocabulary (default 49152)")
    g.add_argument("--energy-gamma", type=limits.GAMMA.arg("energy_gamma"), default=4, help="gamma (default 4)")
    g.add_argument("--energy-rounds", type=limits.ROUNDS.arg("energy_rounds"), default=16, help="rounds (default 16)")
    g.add_argument("--energy-vocab-max", type=limits.VOCAB_MAX.arg("energy_vocab_max"), default=65536,
                   help="deployed vocab_max (default 65536)")
    g.add_argument("--energy-gamma-max", type=limits.GAMMA_MAX.arg("energy_gamma_max"), default=16,
                   help="deployed gamma_max (default 16)")
    g.add_argument("--cache-dir", default=None, help="trace cache directory")
    p.set_defaults(func=run)


def _energy_csv(csv_path) -> Path:
    return _side_csv(csv_path, "energy")


def _side_csv(csv_path, what: str) -> Path:
    return Path(csv_path).with_name(Path(csv_path).stem + f"_{what}.csv")


def run(args) -> int:
    from hades.fileio import check_output_path
    for path in (args.csv, args.csv and _energy_csv(args.csv), args.csv and _side_csv(args.csv, "modules")):
        check_output_path(path)   # every output, before any synthesis run
    check_output_path(args.work_dir, directory=True)
    check_output_path(args.cache_dir, directory=True)
    check_output_path(args.synth_cache, directory=True)
    lanes = args.lanes
    cfgs = [VerifierConfig(lanes=L, vocab_max=args.vocab_max, gamma_max=args.gamma_max, prob_bits=args.prob_bits,
                           uniform_bits=args.uniform_bits) for L in lanes]   # validates before any long run
    if not synth.yosys_available():
        raise synth.SynthError("yosys is not installed (apt-get install -y yosys)")
    flow = ("synth -flatten to 'fine' = memory -nomap, techmap, abc -fast; ltp -noff" if args.flat else
            "hierarchical: each distinct module once (cached), the flat flow's passes without -flatten; "
            "the longest path composed over the hierarchy with ltp -noff's rules")
    print(f"# hades synth, {datetime.date.today().isoformat()}; Yosys generic gates ({flow})")
    if args.lane_trees:
        print(f"{'L':>4} {'tree':<62} {'cells':>8} {'levels':>6} {'s':>6}")
        trees = []
        for cfg in cfgs:
            for t in synth.synthesize_lane_trees(cfg.lanes, args.work_dir, args.timeout, cfg.vocab_max):
                trees.append(t)
                print(f"{t.lanes:>4} {t.unit:<62} {t.cells:>8} {t.longest_path_levels:>6} {t.seconds:>6.1f}",
                      flush=True)
        if args.csv:
            print(f"wrote {bench.rows_to_csv(trees, args.csv)}")
        return 0
    print(f"{'module':<40} {'cells':>9} {'FFs':>6} {'logic':>9} {'mems':>4} {'mem bits':>9} {'SRAM bits':>9} "
          f"{'levels':>6} {'yosys s':>8} {'wall s':>7}")
    results, depths = [], []
    for cfg in cfgs:
        if args.flat:
            r = synth.synthesize(cfg, args.work_dir, args.timeout, logits=args.logits)
        else:
            r, d = synth.synthesize_hier(cfg, args.work_dir, args.timeout, logits=args.logits,
                                         cache_dir=args.synth_cache, log=lambda m: print(m, flush=True))
            depths += d
        results.append(r)
        print(f"{r.module:<40} {r.cells:>9} {r.flip_flops:>6} {r.logic_cells:>9} {r.memories:>4} "
              f"{r.memory_bits:>9} {r.sram_bits:>9} {r.longest_path_levels:>6} {r.yosys_seconds:>8.1f} "
              f"{r.seconds:>7.1f}", flush=True)
        if r.critical_path:
            print(f"  longest path ({r.modules} modules, {r.modules_synthesised} synthesised now): {r.critical_path}")
    if depths:
        print("\nLongest path of each distinct module's subtree (flattened) and of its own gates alone, levels:")
        print(f"{'L':>4} {'module':<56} {'inst':>5} {'cells':>9} {'levels':>6} {'own':>5} {'yosys s':>8}")
        for d in depths:
            print(f"{d.lanes:>4} {d.module[:56]:<56} {d.instances:>5} {d.cells:>9} {d.longest_path_levels:>6} "
                  f"{d.own_levels:>5} {d.yosys_seconds:>8.1f}")
    if args.csv:
        print(f"wrote {bench.rows_to_csv(results, args.csv)}")
        if depths:
            print(f"wrote {bench.rows_to_csv(depths, _side_csv(args.csv, 'modules'))}")
    if args.no_energy:
        return 0

    # energy: the deployed block (vocab_max/gamma_max large) with the synthesised logic count
    from hades.traces.cache import TraceRequest, get_summary
    summ = get_summary(TraceRequest(source="synthetic", gamma=args.energy_gamma, rounds=args.energy_rounds,
                                    vocab_size=args.energy_vocab, prob_bits=args.prob_bits,
                                    uniform_bits=args.uniform_bits, trace_format=2 if args.logits else None),
                       args.cache_dir)
    add_cells = synth.adder32_cells()
    energy_of = synth.logit_round_energy if args.logits else synth.round_energy
    energies = [energy_of(r, summ, add_cells, VerifierConfig(
        lanes=r.lanes, vocab_max=args.energy_vocab_max, gamma_max=args.energy_gamma_max, prob_bits=args.prob_bits,
        uniform_bits=args.uniform_bits)) for r in results]
    block = "logit block, synthetic v2" if args.logits else "probability-row block, synthetic v1"
    print(f"\nEnergy per round, ESTIMATE ({block} V={summ.vocab_size}, gamma {args.energy_gamma}, "
          f"{summ.num_rounds} rounds; vocab_max {args.energy_vocab_max}, gamma_max {args.energy_gamma_max}; "
          f"45 nm constants from Horowitz ISSCC 2014; 32-bit adder = {add_cells} cells -> "
          f"{synth.EnergyConstants().int_add32_pj / add_cells * 1e3:.2f} fJ per cell op, activity 1 (upper bound)):")
    print(f"{'L':>3} {'buffer':>9} {'pJ/64b':>7} {'cycles':>8} {'SRAM nJ':>8} {'offchip':>8} {'logic nJ':>9} "
          f"{'total nJ':>9} {'nJ/token':>9}")
    for e in energies:
        print(f"{e.lanes:>3} {e.buffer_bytes / 2**20:>7.2f}MB {e.sram_pj_per_64b:>7.0f} {e.cycles:>8.0f} "
              f"{e.sram_nj:>8.1f} {e.offchip_nj:>8.1f} {e.logic_nj:>9.1f} {e.total_nj:>9.1f} {e.nj_per_token:>9.1f}")
    if args.csv:
        print(f"wrote {bench.rows_to_csv(energies, _energy_csv(args.csv))}")
    return 0
