"""Adaptive gamma: a run-time controller of the drafts per round (issue 16 item 5).

The best gamma depends on the pair and on the text and can only be found at run time. The
controller here is Hugging Face's heuristic for assisted generation
(`num_assistant_tokens_schedule="heuristic"`): start at gamma = start; after a round in which
every proposed draft was accepted, gamma += up; after a round with a rejection, gamma -= down;
clamped to [1, gamma_max]. A round that proposed nothing (prompt lookup without a match) says
nothing about the draft and leaves gamma as it was.

For model and layer-skip drafts the controller's gamma is the round's gamma; for prompt-lookup
drafts it caps how many tokens the lookup may propose (the round's gamma is the number proposed).
The controller is a pure function of the accepted counts: a run with it is as deterministic as
one with fixed gammas, and the sequence is rebuilt from a trace's (gamma, accepted) columns.

Spelling on the command line (an entry of `--gamma` / `--gammas`): `auto` (start 4, gamma_max 16)
or `auto:START..MAX`. Pure Python: no torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from hades import limits
from hades.errors import ConfigError

AUTO = "auto"
DEFAULT_START = 4
DEFAULT_GAMMA_MAX = 16
_SPEC = re.compile(r"auto(?::(\d+)\.\.(\d+))?")


@dataclass(frozen=True)
class AutoGamma:
    """The heuristic controller: start, +up after full acceptance, -down after a rejection, in [1, gamma_max]."""
    start: int = DEFAULT_START
    gamma_max: int = DEFAULT_GAMMA_MAX
    up: int = 2
    down: int = 1

    def check(self) -> "AutoGamma":
        for name in ("start", "gamma_max", "up", "down"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"adaptive gamma: {name} must be an integer, got {v!r}")
        limits.GAMMA.check(self.gamma_max, "adaptive gamma_max")
        if not 1 <= self.start <= self.gamma_max:
            raise ConfigError(f"adaptive gamma: start must be in [1, gamma_max = {self.gamma_max}], got {self.start}")
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

    def schedule(self, outcomes) -> list[int]:
        """The controller's gamma of every round, given each round's (proposed, accepted)."""
        gammas, g = [], self.start
        for proposed, accepted in outcomes:
            gammas.append(g)
            g = self.next_gamma(g, proposed, accepted)
        return gammas

    @property
    def label(self) -> str:
        """The command-line spelling (`auto:START..MAX`; the step sizes are the heuristic's +2 / -1)."""
        return f"{AUTO}:{self.start}..{self.gamma_max}"

    def meta(self) -> dict:
        return {"policy": "heuristic", "start": self.start, "gamma_max": self.gamma_max,
                "up": self.up, "down": self.down}


def is_auto(text) -> bool:
    return isinstance(text, str) and text.strip().lower().startswith(AUTO)


def parse_auto(text: str) -> AutoGamma:
    """'auto' -> AutoGamma(); 'auto:2..8' -> AutoGamma(start=2, gamma_max=8). ConfigError otherwise."""
    m = _SPEC.fullmatch(str(text).strip().lower())
    if m is None:
        raise ConfigError(f"gamma: expected 'auto' or 'auto:START..MAX' (e.g. auto:4..16), got {limits.show(str(text))}")
    if m.group(1) is None:
        return AutoGamma().check()
    return AutoGamma(start=int(m.group(1)), gamma_max=int(m.group(2))).check()
