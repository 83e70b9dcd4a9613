"""Real decode traces from the embedded model for the test suites: pytest fixtures over the one
trace cache (hades.traces.cache), so a test session records each trace at most once and a
second session reads it from .cache/traces/. The model loads (~20-40 s) on a cache miss only,
once per session (PairLoader).

The traces are those the demo and `hades sweep --source real` use by default: prompt-lookup
drafts (one-hot rows, accepted ~0.8 per token here) on the grounded REAL_TRACE_PROMPT, T = 0.7
without top-k / top-p (every level verifies them), v1 and v2. A layer-skip trace keeps the
draft-model path covered.

Fixtures (session scope): embedded_pair_loader, real_trace_path, real_greedy_trace_path,
real_logit_trace_path, real_layer_skip_trace_path.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from hades.traces.cache import TraceRequest, get_trace, trace_path

STOCHASTIC_TRACE = TraceRequest(source="real", gamma=4, rounds=8, seed=0)
GREEDY_TRACE = TraceRequest(source="real", gamma=4, rounds=6, seed=0, mode="greedy")
LOGIT_TRACE = TraceRequest(source="real", gamma=4, rounds=8, seed=0, trace_format=2)
LAYER_SKIP_TRACE = TraceRequest(source="real", gamma=3, rounds=4, seed=1234, draft="layer-skip", temperature=1.0)


def cached_real_trace(req: TraceRequest, pair_loader) -> Path:
    """Path of the cached trace for req, recorded (and written atomically) on a miss."""
    get_trace(req, pair_loader=pair_loader)
    return trace_path(req)


@pytest.fixture(scope="session")
def embedded_pair_loader():
    """The embedded SmolLM2 pair, loaded at most once per session and only when needed."""
    from hades.llm.models import PairLoader
    return PairLoader()


@pytest.fixture(scope="session")
def real_trace_path(embedded_pair_loader) -> Path:
    """A stochastic v1 lookup trace: at most 4 drafts per round, 8 rounds, V = 49152."""
    return cached_real_trace(STOCHASTIC_TRACE, embedded_pair_loader)


@pytest.fixture(scope="session")
def real_greedy_trace_path(embedded_pair_loader) -> Path:
    """A greedy v1 lookup trace: at most 4 drafts per round, 6 rounds, V = 49152."""
    return cached_real_trace(GREEDY_TRACE, embedded_pair_loader)


@pytest.fixture(scope="session")
def real_logit_trace_path(embedded_pair_loader) -> Path:
    """A stochastic v2 lookup trace (bf16 logit rows): at most 4 drafts per round, 8 rounds."""
    return cached_real_trace(LOGIT_TRACE, embedded_pair_loader)


@pytest.fixture(scope="session")
def real_layer_skip_trace_path(embedded_pair_loader) -> Path:
    """A stochastic v1 trace of the layer-skip draft at T = 1: gamma 3, 4 rounds."""
    return cached_real_trace(LAYER_SKIP_TRACE, embedded_pair_loader)
