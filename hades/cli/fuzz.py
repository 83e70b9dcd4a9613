"""`hades fuzz`: differential fuzzing, FL == CL == RTL results and CL == RTL cycles, on
random and adversarial rounds over several configurations (hades.sim.fuzz)."""
from __future__ import annotations

import json
import sys

from hades import limits


def add_parser(sub):
    p = sub.add_parser("fuzz", help="differential fuzzing of FL, CL and RTL on random and adversarial rounds")
    p.add_argument("--rounds", type=limits.ROUNDS.arg(), default=2000,
                   help="rounds in total, spread over the configurations")
    p.add_argument("--seed", type=limits.SEED.arg(), default=0)
    p.add_argument("--rtl-backend", default="batch", help="batch (default: C++ driver in Verilator), verilator or python")
    p.add_argument("--batch", type=limits.BATCH.arg(), default=100, help="rounds per RTL simulation run")
    p.add_argument("--logits", action="store_true",
                   help="fuzz the logit block (random bf16 logit rounds; drafts and every message's cycles checked)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from hades.cli.common import progress_bar
    from hades.sim.fuzz import FUZZ_CONFIGS, LOGIT_FUZZ_CONFIGS, fuzz, fuzz_logits
    configs = LOGIT_FUZZ_CONFIGS if args.logits else FUZZ_CONFIGS
    per_cfg = -(-args.rounds // len(configs))
    with progress_bar(per_cfg * len(configs), "fuzz") as bar:
        if args.logits:
            from hades.traces.synthetic import random_logit_rounds
            report = fuzz_logits(random_logit_rounds, args.rounds, args.seed, args.rtl_backend, args.batch,
                                 progress=bar.update)
        else:
            report = fuzz(args.rounds, args.seed, args.rtl_backend, args.batch, progress=bar.update)
    summary = report.summary()
    if args.json:
        json.dump({"summary": summary, "disagreements": report.disagreements[:20]}, sys.stdout)
        print()
    else:
        for d in report.disagreements[:20]:
            print("DISAGREE", d)
        print("fuzz: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 1 if report.disagreements else 0
