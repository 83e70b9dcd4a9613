"""Differential fuzzing: random and adversarial rounds (hades.sim.rounds) through the RTL,
compared with the FL decisions and the CL cycle accounting (hades.sim.compare)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hades import limits
from hades.config import VerifierConfig
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


def _fuzz_loop(configs, total_rounds: int, seed: int, batch: int, progress, draw, simulate) -> FuzzReport:
    """The loop both fuzzers share: about total_rounds rounds spread evenly over configs, `batch`
    rounds per RTL run, every round drawn from one Generator seeded with `seed`.
    draw(rng, cfg, n) -> rounds; simulate(rng, cfg, rounds) -> (disagreements, RTL cycles)."""
    total_rounds, batch = limits.ROUNDS.check(total_rounds), limits.BATCH.check(batch)
    seed = limits.SEED.check(seed)
    rng = np.random.default_rng(seed)
    per_cfg = -(-total_rounds // len(configs))
    report = FuzzReport(rounds=0, configs=len(configs), seed=seed, rtl_cycles=0, wall_seconds=0.0)
    t0 = time.perf_counter()
    for ci, cfg in enumerate(configs):
        done = 0
        while done < per_cfg:
            n = min(batch, per_cfg - done)
            disagreements, cycles = simulate(rng, cfg, draw(rng, cfg, n))
            for d in disagreements:
                report.disagreements.append({"config": ci, **d.as_dict(), "round": done + d.round})
            report.rtl_cycles += cycles
            report.rounds += n
            done += n
            if progress is not None:
                progress(n)
    report.wall_seconds = time.perf_counter() - t0
    return report


def fuzz(total_rounds: int, seed: int = 0, backend: str = "batch", batch: int = 100, progress=None) -> FuzzReport:
    """About total_rounds rounds spread evenly over FUZZ_CONFIGS, simulated `batch` rounds per
    RTL run; every round drawn from one Generator seeded with `seed`."""
    def simulate(rng, cfg, rounds):
        rtl = run_rounds("rtl", cfg, rounds, SimOptions(backend=backend, seed=int(rng.integers(1000))))
        return compare_levels("rtl", cfg, rounds, rtl), sum(r.cycles for r in rtl)
    return _fuzz_loop(FUZZ_CONFIGS, total_rounds, seed, batch, progress, random_rounds, simulate)


# ---- the logit block ---------------------------------------------------------------------------

# Configurations of the logit block's fuzzing: the smallest RTL, an odd width with W = 12 and
# U = 24, 8 lanes at gamma_max 8, and a 16-lane block on rows of 1000 entries.
LOGIT_FUZZ_CONFIGS = (
    VerifierConfig(lanes=2, vocab_max=16, gamma_max=2),
    VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, prob_bits=12, uniform_bits=24),
    VerifierConfig(lanes=8, vocab_max=128, gamma_max=8),
    VerifierConfig(lanes=16, vocab_max=1024, gamma_max=4),
)


def fuzz_logits(draw, total_rounds: int, seed: int = 0, backend: str = "batch", batch: int = 100,
                progress=None, configs: tuple[VerifierConfig, ...] = LOGIT_FUZZ_CONFIGS) -> FuzzReport:
    """fuzz() for the logit block: random logit rounds through its RTL, compared with FL
    (decisions and the drafts it samples) and the CL schedule (every message's cycles).
    draw(rng, cfg, n) makes the rounds (hades.traces.synthetic.random_logit_rounds: the
    generator lives with the synthetic traces, a layer above this one)."""
    from hades.sim.compare import compare_logit_levels
    from hades.sim.run import run_logit_rounds

    def simulate(rng, cfg, rounds):
        outs = run_logit_rounds("rtl", cfg, rounds, SimOptions(backend=backend, seed=int(rng.integers(1000))))
        return compare_logit_levels("rtl", cfg, rounds, outs), sum(o.result.cycles for o in outs)
    return _fuzz_loop(configs, total_rounds, seed, batch, progress, draw, simulate)
