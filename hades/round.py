"""One verification round and its result: the data every level consumes and produces."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Round:
    """The inputs of one verification round (already validated against the trace contract).

    draft_probs is [gamma, V], target_probs [gamma + 1, V], both integer rows summing to M.
    """
    greedy: bool
    draft_tokens: np.ndarray      # int64 [gamma]
    draft_probs: np.ndarray       # int64 [gamma, V]
    target_probs: np.ndarray      # int64 [gamma + 1, V]
    accept_uniforms: np.ndarray   # int64 [gamma]
    sample_uniform: int

    @property
    def gamma(self) -> int:
        return len(self.draft_tokens)

    @property
    def vocab_size(self) -> int:
        return self.target_probs.shape[1]


@dataclass(frozen=True)
class RoundResult:
    """What the verifier emits for a round: accepted drafts n and the one extra token.

    cycles and latency are None at FL; at CL and RTL they are the total cycles from the
    round's first input beat to its result (inclusive) and the cycles from the last input
    beat to the result.
    """
    accepted: int
    token: int
    cycles: int | None = None
    latency: int | None = None

    def decision(self) -> tuple[int, int]:
        return (self.accepted, self.token)
