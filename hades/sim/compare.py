"""The level comparison, as data: what a level produced against the reference (the FL
decision and the CL cycle accounting). Tests assert on it, `hades fuzz` and the benchmarks
report it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hades.cl.logit_model import logit_timed_results
from hades.cl.model import timed_results
from hades.cl.timing import TimingConfig
from hades.config import VerifierConfig
from hades.logit_protocol import DraftToken, LogitRoundOutput
from hades.round import LogitRound, Round, RoundResult


def _fields(m) -> list:
    """[accepted or slot, token, cycles, latency] of a RoundResult or DraftToken (None: none)."""
    if m is None:
        return [None] * 4
    return [m.slot if isinstance(m, DraftToken) else m.accepted, m.token, m.cycles, m.latency]


@dataclass(frozen=True)
class Disagreement:
    round: int
    gamma: int
    level: str
    kind: str              # "decision", "cycles" (stall-free) or "cycles under stalls"; for the logit
                           # block's draft messages also "draft token", "trace draft token", "draft
                           # cycles", "draft cycles under stalls" and "draft messages" (missing, extra
                           # or out of slot order)
    got: RoundResult | DraftToken | None
    want: RoundResult | DraftToken | None   # FL decision (or draft) + CL cycles and latency

    def __str__(self) -> str:
        head = f"round {self.round} (gamma {self.gamma})"
        if self.kind.startswith("draft") or self.kind == "trace draft token":
            slot = next(m.slot for m in (self.got, self.want) if m is not None)
            head += f", draft slot {slot}"
            if self.kind == "trace draft token":
                return f"{head}: {self.level} sampled {self.got.token}, the trace's draft token is {self.want.token}"
        if self.kind in ("decision", "draft token", "draft messages"):
            return f"{head}: {self.level} {self.got} != FL {self.want}"
        if self.kind in ("cycles", "draft cycles"):
            return (f"{head}: {self.level} cycles/latency {self.got.cycles}/{self.got.latency} != CL model "
                    f"{self.want.cycles}/{self.want.latency}")
        return f"{head}: {self.got.cycles} cycles under stalls < CL {self.want.cycles}"

    def as_dict(self) -> dict:
        return {"round": self.round, "gamma": self.gamma, "level": self.level, "kind": self.kind,
                "got": _fields(self.got), "want": _fields(self.want)}


def _timing_kind(level: str, got, want, stall_free: bool, prefix: str = "") -> str | None:
    """At CL and RTL: cycles and latency equal the CL model's without input stalls, and never
    fewer under them."""
    if level == "fl":
        return None
    if stall_free and (got.cycles, got.latency) != (want.cycles, want.latency):
        return prefix + "cycles"
    if not stall_free and got.cycles < want.cycles:
        return prefix + "cycles under stalls"
    return None


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
        kind = "decision" if got.decision() != want.decision() else _timing_kind(level, got, want, stall_free)
        if kind is not None:
            out.append(Disagreement(i, rnd.gamma, level, kind, got, want))
    return out


def compare_logit_levels(level: str, cfg: VerifierConfig, rounds: list[LogitRound], outputs: list[LogitRoundOutput],
                         stall_free: bool = True, timing: TimingConfig | None = None) -> list[Disagreement]:
    """compare_levels for the logit block: every result's decision equals FL's; every model
    draft round returns one draft message per slot, in slot order, whose token equals FL's
    sample and the round's own draft token (the trace's); at CL and RTL the cycles and latency
    of results and draft messages equal logit_timed_results' when the input never stalls, and
    never fall below them when it does."""
    rounds = list(rounds)
    if len(outputs) != len(rounds):
        raise ValueError(f"{len(outputs)} outputs for {len(rounds)} rounds")
    reference = logit_timed_results(timing if timing is not None else TimingConfig(hw=cfg), rounds)
    out = []
    for i, (rnd, got, want) in enumerate(zip(rounds, outputs, reference)):
        def add(kind, g, w):
            out.append(Disagreement(i, rnd.gamma, level, kind, g, w))
        if [d.slot for d in got.drafts] != [d.slot for d in want.drafts]:
            k = next((k for k, (g, w) in enumerate(zip(got.drafts, want.drafts)) if g.slot != w.slot),
                     min(len(got.drafts), len(want.drafts)))
            add("draft messages", got.drafts[k] if k < len(got.drafts) else None,
                want.drafts[k] if k < len(want.drafts) else None)
        else:
            for g, w in zip(got.drafts, want.drafts):
                trace_token = int(rnd.draft_tokens[w.slot])
                if g.token != w.token:
                    add("draft token", g, w)
                elif g.token != trace_token:
                    add("trace draft token", g, dataclasses.replace(w, token=trace_token))
                else:
                    kind = _timing_kind(level, g, w, stall_free, "draft ")
                    if kind is not None:
                        add(kind, g, w)
        g, w = got.result, want.result
        kind = "decision" if g.decision() != w.decision() else _timing_kind(level, g, w, stall_free)
        if kind is not None:
            add(kind, g, w)
    return out
