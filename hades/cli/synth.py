"""`hades synth`: Yosys synthesis of the emitted Verilog for a few lane counts (cells,
flip-flops, memory bits, longest combinational path) and an energy-per-round estimate."""
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
    p.add_argument("--csv", default=None, help="write the synthesis table here (energy goes to <stem>_energy.csv)")
    p.add_argument("--logits", action="store_true",
                   help="synthesise the logit block (bf16 logit rows in) instead of the probability-row block; "
                        "the energy estimate below covers the probability-row block only and is skipped")
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
    return Path(csv_path).with_name(Path(csv_path).stem + "_energy.csv")


def run(args) -> int:
    from hades.fileio import check_output_path
    for path in (args.csv, args.csv and _energy_csv(args.csv)):
        check_output_path(path)   # every output, before any synthesis run
    check_output_path(args.work_dir, directory=True)
    check_output_path(args.cache_dir, directory=True)
    lanes = args.lanes
    cfgs = [VerifierConfig(lanes=L, vocab_max=args.vocab_max, gamma_max=args.gamma_max, prob_bits=args.prob_bits,
                           uniform_bits=args.uniform_bits) for L in lanes]   # validates before any long run
    if not synth.yosys_available():
        raise synth.SynthError("yosys is not installed (apt-get install -y yosys)")
    print(f"# hades synth, {datetime.date.today().isoformat()}; Yosys generic gates "
          "(synth -flatten to 'fine' = memory -nomap, techmap, abc -fast); ltp -noff")
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
    print(f"{'module':<40} {'cells':>7} {'FFs':>6} {'logic':>7} {'mems':>4} {'mem bits':>9} {'SRAM bits':>9} "
          f"{'levels':>6} {'s':>6}")
    results = []
    for cfg in cfgs:
        r = synth.synthesize(cfg, args.work_dir, args.timeout, logits=args.logits)
        results.append(r)
        print(f"{r.module:<40} {r.cells:>7} {r.flip_flops:>6} {r.logic_cells:>7} {r.memories:>4} "
              f"{r.memory_bits:>9} {r.sram_bits:>9} {r.longest_path_levels:>6} {r.seconds:>6.1f}", flush=True)

    if args.logits:
        print("\n(energy estimate: the probability-row block's only; not computed for the logit block)")
        if args.csv:
            print(f"wrote {bench.rows_to_csv(results, args.csv)}")
        return 0
    # energy: the deployed block (vocab_max/gamma_max large) with the synthesised logic count
    from hades.traces.cache import TraceRequest, get_summary
    summ = get_summary(TraceRequest(source="synthetic", gamma=args.energy_gamma, rounds=args.energy_rounds,
                                    vocab_size=args.energy_vocab), args.cache_dir)
    add_cells = synth.adder32_cells()
    energies = [synth.round_energy(r, summ, add_cells, VerifierConfig(
        lanes=r.lanes, vocab_max=args.energy_vocab_max, gamma_max=args.energy_gamma_max, prob_bits=args.prob_bits,
        uniform_bits=args.uniform_bits)) for r in results]
    print(f"\nEnergy per round, ESTIMATE (synthetic V={summ.vocab_size}, gamma {args.energy_gamma}, "
          f"{summ.num_rounds} rounds; vocab_max {args.energy_vocab_max}, gamma_max {args.energy_gamma_max}; "
          f"45 nm constants from Horowitz ISSCC 2014; 32-bit adder = {add_cells} cells -> "
          f"{synth.EnergyConstants().int_add32_pj / add_cells * 1e3:.2f} fJ per cell op, activity 1 (upper bound)):")
    print(f"{'L':>3} {'buffer':>9} {'pJ/64b':>7} {'SRAM nJ':>8} {'offchip':>8} {'logic nJ':>9} {'total nJ':>9} "
          f"{'nJ/token':>9}")
    for e in energies:
        print(f"{e.lanes:>3} {e.buffer_bytes / 2**20:>7.1f}MB {e.sram_pj_per_64b:>7.0f} {e.sram_nj:>8.1f} "
              f"{e.offchip_nj:>8.1f} {e.logic_nj:>9.1f} {e.total_nj:>9.1f} {e.nj_per_token:>9.1f}")
    if args.csv:
        print(f"wrote {bench.rows_to_csv(results, args.csv)}")
        print(f"wrote {bench.rows_to_csv(energies, _energy_csv(args.csv))}")
    return 0
