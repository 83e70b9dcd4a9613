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


@dataclass(frozen=True)
class LogitRound:
    """The inputs of one verification round whose rows are bf16 logits (NUMERICS.md 12-16).

    Rows are bf16 bit patterns (uint16); each side carries one (k, top_k, top_p, min_p)
    tuple (`numerics.SamplingParams`) that holds for all its rows. With onehot_draft the
    drafts come without a draft model (P one-hot at x_t, ZP = 1), and draft_logits,
    draft_params and draft_uniforms are ignored. Greedy rounds ignore the parameters and all
    uniforms. Uniforms are U-bit integers (any integer dtype; uint64 at U = 64).
    """
    greedy: bool
    onehot_draft: bool
    draft_tokens: np.ndarray                 # int [gamma]
    draft_logits: np.ndarray                 # uint16 [gamma, V] (ignored with onehot_draft)
    target_logits: np.ndarray                # uint16 [gamma + 1, V]
    draft_params: tuple[int, int, int, int]  # (k, top_k, top_p, min_p) of the draft rows
    target_params: tuple[int, int, int, int]  # ... of the target rows, the bonus row included
    draft_uniforms: np.ndarray               # [gamma] D_t that drew x_t from the draft's weights
    accept_uniforms: np.ndarray              # [gamma] R_t
    sample_uniform: int                      # R of the residual or bonus sample

    @property
    def gamma(self) -> int:
        return len(self.draft_tokens)

    @property
    def vocab_size(self) -> int:
        return self.target_logits.shape[1]
