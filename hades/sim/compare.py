"""The level comparison, as data: what a level produced against the reference (the FL
decision and the CL cycle accounting). Tests assert on it, `hades fuzz` and the benchmarks
report it."""
from __future__ import annotations

from dataclasses import dataclass

from hades.cl.model import timed_results
from hades.cl.timing import TimingConfig
from hades.config import VerifierConfig
from hades.round import Round, RoundResult


@dataclass(frozen=True)
class Disagreement:
    round: int
    gamma: int
    level: str
    kind: str              # "decision", "cycles" (stall-free) or "cycles under stalls"
    got: RoundResult
    want: RoundResult      # FL decision + CL cycles and latency

    def __str__(self) -> str:
        if self.kind == "decision":
            return f"round {self.round} (gamma {self.gamma}): {self.level} {self.got} != FL {self.want}"
        if self.kind == "cycles":
            return (f"round {self.round} (gamma {self.gamma}): {self.level} cycles/latency "
                    f"{self.got.cycles}/{self.got.latency} != CL model {self.want.cycles}/{self.want.latency}")
        return f"round {self.round}: {self.got.cycles} cycles under stalls < CL {self.want.cycles}"

    def as_dict(self) -> dict:
        return {"round": self.round, "gamma": self.gamma, "level": self.level, "kind": self.kind,
                "got": [self.got.accepted, self.got.token, self.got.cycles, self.got.latency],
                "want": [self.want.accepted, self.want.token, self.want.cycles, self.want.latency]}


def compare_levels(level: str, cfg: VerifierConfig, rounds: list[Round], results: list[RoundResult],
                   stall_free: bool = True, timing: TimingConfig | None = None) -> list[Disagreement]:
    """Every round where `results` (from `level`) differ from the reference. Decisions must be
    equal at every level; at CL and RTL the cycles and latency must equal the CL model's when
    the input never stalls, and may only grow when it does (the scan tail absorbs some stalls)."""
    if len(results) != len(rounds):
        raise ValueError(f"{len(results)} results for {len(rounds)} rounds")
    reference = timed_results(timing if timing is not None else TimingConfig(hw=cfg), rounds)
    out = []
    for i, (rnd, got, want) in enumerate(zip(rounds, results, reference)):
        kind = None
        if got.decision() != want.decision():
            kind = "decision"
        elif level != "fl" and stall_free and (got.cycles, got.latency) != (want.cycles, want.latency):
            kind = "cycles"
        elif level != "fl" and not stall_free and got.cycles < want.cycles:
            kind = "cycles under stalls"
        if kind is not None:
            out.append(Disagreement(i, rnd.gamma, level, kind, got, want))
    return out
