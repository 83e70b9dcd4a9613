"""`hades fuzz`: differential fuzzing, FL == CL == RTL results and CL == RTL cycles, on
random and adversarial rounds (harness/rounds.py) over several configurations."""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from hades import limits
from hades.cl.model import timed_result
from hades.cl.timing import TimingConfig
from hades.config import VerifierConfig
from hades.errors import ConfigError
from hades.fl.verifier import verify_round

FUZZ_CONFIGS = [
    VerifierConfig(lanes=2, vocab_max=16, gamma_max=3, prob_bits=8, uniform_bits=12),
    VerifierConfig(lanes=4, vocab_max=64, gamma_max=4),
    VerifierConfig(lanes=8, vocab_max=40, gamma_max=5, prob_bits=10, uniform_bits=20),
    VerifierConfig(lanes=16, vocab_max=512, gamma_max=8),
]


def add_parser(sub):
    p = sub.add_parser("fuzz", help="differential fuzzing of FL, CL and RTL on random and adversarial rounds")
    p.add_argument("--rounds", type=limits.ROUNDS.arg(), default=2000,
                   help="rounds in total, spread over the configurations")
    p.add_argument("--seed", type=limits.SEED.arg(), default=0)
    p.add_argument("--rtl-backend", default="batch", help="batch (default: C++ driver in Verilator), verilator or python")
    p.add_argument("--batch", type=limits.BATCH.arg(), default=100, help="rounds per RTL simulation run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from hades.sim.rounds import FLAVOURS, random_round
    from hades.sim.run import SimOptions, run_rounds
    from hades.cli.common import progress_bar
    if args.rounds < 1 or args.batch < 1:
        raise ConfigError("--rounds and --batch must be >= 1")
    rng = np.random.default_rng(args.seed)
    per_cfg = -(-args.rounds // len(FUZZ_CONFIGS))
    disagreements = []
    total = cycles = 0
    t0 = time.perf_counter()
    with progress_bar(per_cfg * len(FUZZ_CONFIGS), "fuzz") as bar:
        for ci, cfg in enumerate(FUZZ_CONFIGS):
            done = 0
            while done < per_cfg:
                n = min(args.batch, per_cfg - done)
                rounds = [random_round(rng, int(rng.integers(2, cfg.vocab_max + 1)), int(rng.integers(0, cfg.gamma_max + 1)),
                                       cfg.prob_bits, cfg.uniform_bits, greedy=bool(rng.random() < 0.25),
                                       flavour=FLAVOURS[int(rng.integers(len(FLAVOURS)))]) for _ in range(n)]
                rtl = run_rounds("rtl", cfg, rounds, SimOptions(backend=args.rtl_backend, seed=int(rng.integers(1000))))
                for i, (rnd, got) in enumerate(zip(rounds, rtl)):
                    fl = verify_round(rnd, cfg.row_sum, cfg.uniform_bits)
                    cl = timed_result(TimingConfig(hw=cfg), rnd)
                    if not (got.decision() == fl.decision() == cl.decision()
                            and (got.cycles, got.latency) == (cl.cycles, cl.latency)):
                        disagreements.append({"config": ci, "round": done + i, "fl": fl.decision(),
                                              "cl": [cl.accepted, cl.token, cl.cycles, cl.latency],
                                              "rtl": [got.accepted, got.token, got.cycles, got.latency]})
                    cycles += got.cycles
                total += n
                done += n
                bar.update(n)
    summary = {"rounds": total, "configs": len(FUZZ_CONFIGS), "seed": args.seed, "rtl_cycles": cycles,
               "disagreements": len(disagreements), "wall_seconds": round(time.perf_counter() - t0, 1)}
    if args.json:
        json.dump({"summary": summary, "disagreements": disagreements[:20]}, sys.stdout)
        print()
    else:
        for d in disagreements[:20]:
            print("DISAGREE", d)
        print("fuzz: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 1 if disagreements else 0
