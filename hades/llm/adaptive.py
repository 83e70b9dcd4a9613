"""Adaptive gamma: run-time controllers of the drafts per round (issue 16 item 5; docs/MODELS.md
"Adaptive gamma").

The best gamma depends on the pair and on the text and can only be found at run time. Two
controllers, both pure functions of the rounds' outcomes (proposed, accepted) and of their own
parameters, so a run with either is as deterministic as one with fixed gammas, and the sequence
of gammas is rebuilt from a trace's (gamma, accepted) columns (`schedule`):

- `auto` (CostAwareGamma, the default): picks the gamma that maximises the expected tokens per
  unit of time. Time is in target steps (one target pass scoring one token = 1): a round with g
  drafts costs 1 + pass_costs[g - 1] + draft_cost * g, where pass_costs[g - 1] is what scoring
  g further tokens in the same target pass adds (their LM-head rows and attention, plus their
  rows' verification) and draft_cost what proposing one draft costs (a draft model's step;
  prompt lookup: 0). The pass costs are a table, one entry per g, because they are not linear
  on a CPU: one thread scoring 2 tokens took 1.6-2.0x a one-token pass, 5 tokens 1.9x and 9
  tokens 2.0x (docs/MODELS.md "Adaptive gamma"; small GEMMs use other kernels than the one-row
  GEMV). Without a table, row_cost * g (a straight line) stands for it. The costs are *measured*
  once per run before decoding (hades.llm.specdec.measure_costs) or given, and recorded with
  the run, so the decisions do not depend on the timing of individual rounds.
  The expected tokens of a round are 1 + sum_{j=1..g} prod_{i<=j} a_i with a_i the running
  estimate of P(draft i accepted | drafts 1..i-1 accepted): per position, because prompt-lookup
  drafts come in runs (a copied span keeps being accepted), which one per-token alpha misses.
  Each a_i is the decayed count of acceptances at position i over the tests there, shrunk
  towards the pooled acceptance of all positions (itself shrunk towards a prior): with a few
  rounds per prompt most positions have seen little. The first round uses gamma = start.
- `heuristic` (HeuristicGamma): Hugging Face's assisted-generation schedule
  (`num_assistant_tokens_schedule="heuristic"`): start at gamma = start; after a round in which
  every proposed draft was accepted, gamma += up; after a round with a rejection, gamma -= down.

Both clamp to [1, gamma_max]. A round that proposed nothing (prompt lookup without a match) says
nothing about the draft and leaves the state as it was. For model and layer-skip drafts the
controller's gamma is the round's gamma; for prompt-lookup drafts it caps how many tokens the
lookup may propose (the round's gamma is the number proposed, bounded by the match length too).

Spelling on the command line (an entry of `--gamma` / `--gammas`): `auto` (start 4, gamma_max 16,
costs measured), `auto:START..MAX`, `auto:START..MAX:passP1/../PMAX:draftD` (costs given, e.g. from
a trace's regenerate command; `:rowR:draftD`, the straight line, is what earlier traces recorded),
`heuristic` or `heuristic:START..MAX`. Pure Python: no torch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from hades import limits
from hades.errors import ConfigError

AUTO = "auto"
HEURISTIC = "heuristic"
DEFAULT_START = 4
DEFAULT_GAMMA_MAX = 16
COST_DECIMALS = 3     # measured costs are kept to 1e-3 target steps, so that a label round-trips exactly
COST_MAX = 1000.0     # a draft or a row costing more than 1000 target steps is a mistake, not a setting
_RANGE = r"(?::(\d+)\.\.(\d+))?"
_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_AUTO_SPEC = re.compile(AUTO + _RANGE + rf"(?::(?:row{_NUM}|pass({_NUM}(?:/{_NUM})*)):draft{_NUM})?")
_HEURISTIC_SPEC = re.compile(HEURISTIC + _RANGE)


def _check_int_fields(obj, names) -> None:
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"adaptive gamma: {name} must be an integer, got {v!r}")


def _check_range(start: int, gamma_max: int) -> None:
    limits.GAMMA.check(gamma_max, "adaptive gamma_max")
    if not 1 <= start <= gamma_max:
        raise ConfigError(f"adaptive gamma: start must be in [1, gamma_max = {gamma_max}], got {start}")


class GammaPolicy:
    """What DecodeConfig.gamma_policy holds: start, gamma_max, a fresh controller per decode, a label."""
    start: int
    gamma_max: int

    def controller(self):
        raise NotImplementedError

    def schedule(self, outcomes) -> list[int]:
        """The controller's gamma of every round, given each round's (proposed, accepted)."""
        ctl, gammas = self.controller(), []
        for proposed, accepted in outcomes:
            gammas.append(ctl.gamma)
            ctl.update(int(proposed), int(accepted))
        return gammas


class _HeuristicController:
    def __init__(self, policy: "HeuristicGamma"):
        self.policy, self.gamma = policy, policy.start

    def update(self, proposed: int, accepted: int) -> None:
        self.gamma = self.policy.next_gamma(self.gamma, proposed, accepted)


@dataclass(frozen=True)
class HeuristicGamma(GammaPolicy):
    """The heuristic controller: start, +up after full acceptance, -down after a rejection, in [1, gamma_max]."""
    start: int = DEFAULT_START
    gamma_max: int = DEFAULT_GAMMA_MAX
    up: int = 2
    down: int = 1

    def check(self) -> "HeuristicGamma":
        _check_int_fields(self, ("start", "gamma_max", "up", "down"))
        _check_range(self.start, self.gamma_max)
        if not (0 <= self.up <= limits.GAMMA.hi and 0 <= self.down <= limits.GAMMA.hi):
            raise ConfigError(f"adaptive gamma: up and down must be in [0, {limits.GAMMA.hi}], "
                              f"got {self.up}, {self.down}")
        return self

    def next_gamma(self, gamma: int, proposed: int, accepted: int) -> int:
        """The gamma after a round run at `gamma` that proposed `proposed` drafts and accepted `accepted`."""
        if proposed == 0:
            return gamma
        g = gamma + self.up if accepted >= proposed else gamma - self.down
        return max(1, min(self.gamma_max, g))

    def controller(self) -> _HeuristicController:
        return _HeuristicController(self)

    @property
    def measured(self) -> bool:
        return True   # nothing to measure

    @property
    def label(self) -> str:
        """The command-line spelling (`heuristic:START..MAX`; the step sizes are Hugging Face's +2 / -1)."""
        return f"{HEURISTIC}:{self.start}..{self.gamma_max}"

    @property
    def short_label(self) -> str:
        return self.label

    def meta(self) -> dict:
        return {"policy": "heuristic", "start": self.start, "gamma_max": self.gamma_max,
                "up": self.up, "down": self.down}


def expected_tokens(accept_probs, gamma: int) -> float:
    """Expected tokens of a round with gamma drafts: 1 + sum_{j<=gamma} prod_{i<=j} a_i, where
    accept_probs[i - 1] = a_i = P(draft i accepted | drafts before it accepted)."""
    total, run = 1.0, 1.0
    for a in accept_probs[:gamma]:
        run *= a
        total += run
    return total


def round_cost(gamma: int, row_cost: float, draft_cost: float, pass_costs=None) -> float:
    """A round's time in target steps: one pass scoring gamma + 1 tokens (1 + pass_costs[gamma - 1],
    or 1 + row_cost * gamma without a table), and gamma drafts."""
    extra = (pass_costs[gamma - 1] if gamma > 0 else 0.0) if pass_costs is not None else row_cost * gamma
    return 1.0 + extra + draft_cost * gamma


def best_gamma(accept_probs, row_cost: float, draft_cost: float, gamma_max: int, pass_costs=None) -> int:
    """argmax over g in [1, gamma_max] of expected_tokens / round_cost; ties go to the smaller g."""
    best, best_rate = 1, -1.0
    for g in range(1, gamma_max + 1):
        rate = expected_tokens(accept_probs, g) / round_cost(g, row_cost, draft_cost, pass_costs)
        if rate > best_rate * (1 + 1e-12):
            best, best_rate = g, rate
    return best


class _CostAwareController:
    def __init__(self, policy: "CostAwareGamma"):
        if not policy.measured:
            raise ConfigError("the cost-aware gamma controller needs its costs (row_cost, draft_cost): measure "
                              "them (hades.llm.specdec.measure_costs) or give them (auto:START..MAX:rowR:draftD)")
        self.policy, self.gamma = policy, policy.start
        self.accepted = [0.0] * policy.gamma_max   # decayed acceptances at draft position i (index i - 1)
        self.tested = [0.0] * policy.gamma_max     # decayed accept tests at position i

    def accept_probs(self) -> list[float]:
        """a_1 .. a_gamma_max: per position, shrunk towards the pooled acceptance (shrunk towards the prior)."""
        p = self.policy
        pooled = (sum(self.accepted) + p.prior * p.prior_weight) / (sum(self.tested) + p.prior_weight)
        return [(a + pooled * p.prior_weight) / (n + p.prior_weight) for a, n in zip(self.accepted, self.tested)]

    def update(self, proposed: int, accepted: int) -> None:
        if proposed <= 0:
            return
        p = self.policy
        self.accepted = [a * p.memory for a in self.accepted]
        self.tested = [n * p.memory for n in self.tested]
        for i in range(min(accepted + 1, proposed, p.gamma_max)):   # tests stop at the first rejection
            self.tested[i] += 1.0
            if i < accepted:
                self.accepted[i] += 1.0
        self.gamma = best_gamma(self.accept_probs(), p.row_cost, p.draft_cost, p.gamma_max, p.pass_costs)


@dataclass(frozen=True)
class CostAwareGamma(GammaPolicy):
    """The cost-aware controller (`auto`, see the module docstring).

    row_cost, draft_cost  target steps per further scored token and per draft (None: to be measured)
    pass_costs            None: a pass scoring g further tokens costs row_cost * g more than a one-token
                          pass; a tuple of gamma_max entries: entry g - 1 is that extra cost, measured
                          (row_cost is then the straight line through it, pass_slope, for the tables)
    memory                decay of the acceptance counts per round with drafts (0.9: ~10 rounds remembered)
    prior, prior_weight   the pooled acceptance's prior mean and weight in rounds' worth of tests; the
                          same weight shrinks each position towards the pooled acceptance
    """
    start: int = DEFAULT_START
    gamma_max: int = DEFAULT_GAMMA_MAX
    row_cost: float | None = None
    draft_cost: float | None = None
    pass_costs: tuple[float, ...] | None = None
    memory: float = 0.9
    prior: float = 0.5
    prior_weight: float = 2.0

    def check(self) -> "CostAwareGamma":
        _check_int_fields(self, ("start", "gamma_max"))
        _check_range(self.start, self.gamma_max)
        if (self.row_cost is None) != (self.draft_cost is None):
            raise ConfigError("adaptive gamma: give both row_cost and draft_cost, or neither (measured)")
        for name in ("row_cost", "draft_cost"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= COST_MAX:
                raise ConfigError(f"adaptive gamma: {name} must be a number of target steps in [0, {COST_MAX:g}], "
                                  f"got {v!r}")
            object.__setattr__(self, name, round(float(v), COST_DECIMALS))
        if self.pass_costs is not None:
            if self.row_cost is None:
                raise ConfigError("adaptive gamma: pass costs need the draft cost too")
            costs = tuple(self.pass_costs) if isinstance(self.pass_costs, (tuple, list)) else None
            if costs is None or len(costs) != self.gamma_max:
                got = f"{len(costs)} entries" if costs is not None else limits.show(str(self.pass_costs))
                raise ConfigError(f"adaptive gamma: pass costs must list one cost per gamma 1..{self.gamma_max}, "
                                  f"got {got}")
            for v in costs:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= COST_MAX:
                    raise ConfigError(f"adaptive gamma: a pass cost must be a number of target steps in "
                                      f"[0, {COST_MAX:g}], got {v!r}")
            object.__setattr__(self, "pass_costs", tuple(round(float(v), COST_DECIMALS) for v in costs))
            # the table decides; row_cost only labels it in the tables (one value per table, so that a
            # policy rebuilt from its label equals the measured one)
            object.__setattr__(self, "row_cost", round(pass_slope(self.pass_costs), COST_DECIMALS))
        for name, lo, hi in (("memory", 0.0, 1.0), ("prior", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ConfigError(f"adaptive gamma: {name} must be in [{lo:g}, {hi:g}], got {v!r}")
        if isinstance(self.prior_weight, bool) or not isinstance(self.prior_weight, (int, float)) \
                or not 0.0 < self.prior_weight <= 1e6 or math.isnan(self.prior_weight):
            raise ConfigError(f"adaptive gamma: prior_weight must be in (0, 1e6], got {self.prior_weight!r}")
        return self

    @property
    def measured(self) -> bool:
        """Whether the costs are known (given or measured); a decoder measures them otherwise."""
        return self.row_cost is not None

    def with_costs(self, row_cost: float, draft_cost: float, pass_costs=None) -> "CostAwareGamma":
        return replace(self, row_cost=row_cost, draft_cost=draft_cost,
                       pass_costs=None if pass_costs is None else tuple(pass_costs)).check()

    def controller(self) -> _CostAwareController:
        return _CostAwareController(self)

    @property
    def label(self) -> str:
        """The command-line spelling: `auto:START..MAX`, with `:passP1/../PMAX:draftD` (slashes: commas
        separate the entries of --gammas) or, without a table, `:rowR:draftD` once the costs are known."""
        base = f"{AUTO}:{self.start}..{self.gamma_max}"
        if not self.measured:
            return base
        draft = f"draft{self.draft_cost:.{COST_DECIMALS}f}"
        if self.pass_costs is not None:
            return f"{base}:pass{'/'.join(f'{v:.{COST_DECIMALS}f}' for v in self.pass_costs)}:{draft}"
        return f"{base}:row{self.row_cost:.{COST_DECIMALS}f}:{draft}"

    @property
    def short_label(self) -> str:
        """`auto:START..MAX` (the table's row name; the costs go in their own column)."""
        return f"{AUTO}:{self.start}..{self.gamma_max}"

    def meta(self) -> dict:
        meta = {"policy": "cost", "start": self.start, "gamma_max": self.gamma_max, "row_cost": self.row_cost,
                "draft_cost": self.draft_cost, "memory": self.memory, "prior": self.prior,
                "prior_weight": self.prior_weight}
        if self.pass_costs is not None:   # absent from the traces recorded before the table
            meta["pass_costs"] = list(self.pass_costs)
        return meta


def pass_slope(pass_costs) -> float:
    """The straight line's slope through (g, pass_costs[g - 1]) and (0, 0), least squares: the row_cost
    that stands for a table in the tables' cost column."""
    num = sum(g * v for g, v in enumerate(pass_costs, 1))
    den = sum(g * g for g in range(1, len(pass_costs) + 1))
    return max(0.0, num / den) if den else 0.0


POLICIES = (CostAwareGamma, HeuristicGamma)


def is_auto(text) -> bool:
    """Whether a --gamma entry names a controller (auto... or heuristic...)."""
    return isinstance(text, str) and text.strip().lower().startswith((AUTO, HEURISTIC))


def parse_auto(text: str) -> GammaPolicy:
    """'auto' -> CostAwareGamma(); 'auto:2..8' -> CostAwareGamma(start=2, gamma_max=8);
    'auto:2..8:row0.18:draft0' or 'auto:1..2:pass0.7/0.9:draft0' -> costs given; 'heuristic[:2..8]' ->
    HeuristicGamma. ConfigError otherwise."""
    s = str(text).strip().lower()
    m = _HEURISTIC_SPEC.fullmatch(s)
    if m is not None:
        return (HeuristicGamma() if m.group(1) is None
                else HeuristicGamma(start=int(m.group(1)), gamma_max=int(m.group(2)))).check()
    m = _AUTO_SPEC.fullmatch(s)
    has_costs = m is not None and m.group(m.re.groups) is not None
    if m is None or (has_costs and m.group(1) is None):
        raise ConfigError(f"gamma: expected 'auto', 'auto:START..MAX', 'auto:START..MAX:passP1/../PMAX:draftD' or "
                          f"'heuristic[:START..MAX]' (e.g. auto:4..16), got {limits.show(str(text))}")
    start, gmax = (DEFAULT_START, DEFAULT_GAMMA_MAX) if m.group(1) is None else (int(m.group(1)), int(m.group(2)))
    costs = {}
    if has_costs:
        draft = float(m.group(m.re.groups))
        if m.group(3) is not None:
            costs = {"row_cost": float(m.group(3)), "draft_cost": draft}
        else:
            table = tuple(float(v) for v in m.group(4).split("/"))
            costs = {"row_cost": 0.0, "draft_cost": draft, "pass_costs": table}   # row_cost: from the table
    return CostAwareGamma(start=start, gamma_max=gmax, **costs).check()


def policy_from_meta(meta: dict) -> GammaPolicy:
    """The controller a trace's meta["decode"]["gamma_policy"] records (its `meta()`), rebuilt: its
    `schedule` over the trace's (gamma, accepted) columns gives the recorded run's gammas."""
    kinds = {"cost": CostAwareGamma, "heuristic": HeuristicGamma}
    d = dict(meta)
    kind = kinds.get(d.pop("policy", None))
    if kind is None:
        raise ConfigError(f"gamma policy: unknown kind in {meta!r} (expected one of {', '.join(kinds)})")
    try:
        return kind(**d).check()
    except TypeError as e:
        raise ConfigError(f"gamma policy: bad fields in {meta!r} ({e})") from None
