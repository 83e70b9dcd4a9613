"""Differential fuzzing: random and adversarial rounds (hades.sim.rounds) through the RTL,
compared with the FL decisions and the CL cycle accounting (hades.sim.compare)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hades import limits
from hades.sim.compare import compare_levels
from hades.sim.rounds import FUZZ_CONFIGS, random_rounds
from hades.sim.run import SimOptions, run_rounds


@dataclass
class FuzzReport:
    rounds: int
    configs: int
    seed: int
    rtl_cycles: int
    wall_seconds: float
    disagreements: list[dict] = field(default_factory=list)   # Disagreement.as_dict() + "config"

    def summary(self) -> dict:
        return {"rounds": self.rounds, "configs": self.configs, "seed": self.seed, "rtl_cycles": self.rtl_cycles,
                "disagreements": len(self.disagreements), "wall_seconds": round(self.wall_seconds, 1)}


def fuzz(total_rounds: int, seed: int = 0, backend: str = "batch", batch: int = 100, progress=None) -> FuzzReport:
    """About total_rounds rounds spread evenly over FUZZ_CONFIGS, simulated `batch` rounds per
    RTL run; every round drawn from one Generator seeded with `seed`."""
    total_rounds, batch = limits.ROUNDS.check(total_rounds), limits.BATCH.check(batch)
    seed = limits.SEED.check(seed)
    rng = np.random.default_rng(seed)
    per_cfg = -(-total_rounds // len(FUZZ_CONFIGS))
    report = FuzzReport(rounds=0, configs=len(FUZZ_CONFIGS), seed=seed, rtl_cycles=0, wall_seconds=0.0)
    t0 = time.perf_counter()
    for ci, cfg in enumerate(FUZZ_CONFIGS):
        done = 0
        while done < per_cfg:
            n = min(batch, per_cfg - done)
            rounds = random_rounds(rng, cfg, n)
            rtl = run_rounds("rtl", cfg, rounds, SimOptions(backend=backend, seed=int(rng.integers(1000))))
            for d in compare_levels("rtl", cfg, rounds, rtl):
                report.disagreements.append({"config": ci, **d.as_dict(), "round": done + d.round})
            report.rtl_cycles += sum(r.cycles for r in rtl)
            report.rounds += n
            done += n
            if progress is not None:
                progress(n)
    report.wall_seconds = time.perf_counter() - t0
    return report
