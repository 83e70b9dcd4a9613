"""Real decode traces from the embedded model pair for the test suites: pytest fixtures over
the one trace cache (hades.traces.cache), so a test session records each trace at most once
and a second session reads it from .cache/traces/. The model loads (~20-40 s) on a cache
miss only, once per session (PairLoader).

Fixtures (session scope): embedded_pair_loader, real_trace_path, real_greedy_trace_path.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from hades.traces.cache import TraceRequest, get_trace, trace_path

TEST_PROMPT = "Write a haiku about the sea."
STOCHASTIC_TRACE = TraceRequest(source="real", gamma=4, rounds=8, seed=1234, prompt=TEST_PROMPT)
GREEDY_TRACE = TraceRequest(source="real", gamma=4, rounds=6, seed=1234, mode="greedy", prompt=TEST_PROMPT)


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
    """A stochastic real trace: gamma 4, 8 rounds, V = 49152."""
    return cached_real_trace(STOCHASTIC_TRACE, embedded_pair_loader)


@pytest.fixture(scope="session")
def real_greedy_trace_path(embedded_pair_loader) -> Path:
    """A greedy real trace: gamma 4, 6 rounds, V = 49152."""
    return cached_real_trace(GREEDY_TRACE, embedded_pair_loader)
