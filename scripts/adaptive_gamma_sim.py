"""How fast the cost-aware gamma controller (hades.llm.adaptive.CostAwareGamma) learns, on simulated
acceptance (docs/MODELS.md "Adaptive gamma"): tokens per unit of time (target steps, row cost
0.064) of the controller over R rounds from a fresh state, against every fixed gamma.

    PYTHONPATH=. .venv/bin/python scripts/adaptive_gamma_sim.py

Two acceptance models: i.i.d. (each draft accepted with 0.78, the greedy lookup alpha) and
"copy" (prompt lookup's runs: the first draft wrong with 0.35, after it each draft accepted with
0.93). Pure Python, seeded.
"""
from __future__ import annotations

import numpy as np

from hades.llm.adaptive import CostAwareGamma

ROW_COST = 0.064


def iid(rng, g, a=0.78):
    n = 0
    while n < g and rng.random() < a:
        n += 1
    return n


def copy(rng, g):
    if rng.random() < 0.35:
        return 0
    n = 1
    while n < g and rng.random() < 0.93:
        n += 1
    return n


def controller_rate(model, rounds: int, reps: int) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    policy = CostAwareGamma(start=4, gamma_max=16, row_cost=ROW_COST, draft_cost=0.0)
    tokens = cost = 0.0
    gammas = []
    for _ in range(reps):
        ctl = policy.controller()
        for _ in range(rounds):
            g = ctl.gamma
            n = model(rng, g)
            gammas.append(g)
            tokens += n + 1
            cost += 1 + ROW_COST * g
            ctl.update(g, n)
    return tokens / cost, float(np.mean(gammas))


def fixed_rate(model, g: int, rounds: int = 4000) -> float:
    rng = np.random.default_rng(2)
    return sum(model(rng, g) + 1 for _ in range(rounds)) / (rounds * (1 + ROW_COST * g))


def main() -> None:
    for name, model in (("iid 0.78", iid), ("copy", copy)):
        fixed = {g: fixed_rate(model, g) for g in (2, 4, 6, 8, 12, 16)}
        best = max(fixed, key=fixed.get)
        print(f"{name}: fixed " + ", ".join(f"{g}: {r:.3f}" for g, r in fixed.items()) + f" (best {best})")
        for rounds, reps in ((12, 300), (100, 50)):
            rate, mean_g = controller_rate(model, rounds, reps)
            print(f"  controller, {rounds} rounds from a fresh state: {rate:.3f} "
                  f"({rate / fixed[best]:.1%} of the best fixed gamma), mean gamma {mean_g:.1f}")


if __name__ == "__main__":
    main()
