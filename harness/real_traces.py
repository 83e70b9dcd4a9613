"""Small real decode traces from the embedded model pair, cached on disk for the test suites.

build_real_trace(params) decodes a short chat prompt with the embedded SmolLM2 pair, records
the rounds as a trace file v1 and caches it under <repo>/.cache/traces/, keyed by a hash of
the parameters and of everything that changes the bits (library versions, torch threads,
the model file). The file is written atomically, so concurrent test workers at worst build it
twice. Loading the model (~20-40 s) only happens on a cache miss.

Pytest fixtures (session scope): embedded_pair_loader, real_trace_path, real_greedy_trace_path.
A test module or plugin that uses the trace fixtures must import embedded_pair_loader too.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TRACE_CACHE = REPO_ROOT / ".cache" / "traces"
CACHE_FORMAT = 1   # bump when the way traces are built changes


@dataclass(frozen=True)
class RealTraceParams:
    """What a cached real trace is made of (draft_layers None = the default layer-skip draft)."""
    prompt: str = "Write a haiku about the sea."
    gamma: int = 4
    rounds: int = 8
    mode: str = "stochastic"
    temperature: float = 1.0
    seed: int = 1234
    prob_bits: int = 16
    uniform_bits: int = 32
    draft_layers: tuple[int, ...] | None = None
    threads: int = 1        # torch threads while decoding (float reductions may depend on it)

    def decode_config(self):
        from hades.specdec import DecodeConfig
        return DecodeConfig(gammas=(self.gamma,), mode=self.mode, temperature=self.temperature,
                            prob_bits=self.prob_bits, uniform_bits=self.uniform_bits, seed=self.seed,
                            max_new_tokens=None, max_rounds=self.rounds, stop_at_eos=False, record=True)


STOCHASTIC_TRACE = RealTraceParams()
GREEDY_TRACE = RealTraceParams(mode="greedy", temperature=0.0, rounds=6)


class LazyPair:
    """Loads a model pair on first use and keeps it (one load per test session)."""

    def __init__(self, spec=None):
        self._spec = spec
        self._pair = None

    def get(self):
        if self._pair is None:
            from hades.models import PairSpec, load_pair
            self._pair = load_pair(self._spec if self._spec is not None else PairSpec())
        return self._pair

    @property
    def loaded(self) -> bool:
        return self._pair is not None


def cache_key(params: RealTraceParams) -> str:
    """Hash of the parameters and of everything else that changes the trace's bits."""
    import importlib.metadata as md

    import torch
    import transformers

    from hades.models import DEFAULT_DRAFT_LAYERS, embedded_gguf_path
    from hades.specdec import TOOL_VERSION
    gguf = embedded_gguf_path()
    blob = {
        "format": CACHE_FORMAT, "params": asdict(params), "specdec": TOOL_VERSION,
        "default_draft_layers": list(DEFAULT_DRAFT_LAYERS),
        "versions": [torch.__version__, transformers.__version__, md.version("numpy")],
        "model_file": [gguf.name, gguf.stat().st_size],
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def generate_real_trace(pair, params: RealTraceParams):
    """Decode params.prompt with the pair and return the recorded Trace (no caching)."""
    from hades.commands.trace import trace_meta
    from hades.models import encode_prompt
    from hades.specdec import SpeculativeDecoder, build_trace, torch_threads
    config = params.decode_config()
    prompt_ids = encode_prompt(pair.tokenizer, params.prompt)
    with torch_threads(params.threads):
        result = SpeculativeDecoder(pair, config).generate(prompt_ids)
        meta = trace_meta(pair, config, params.prompt, prompt_ids, result)
    meta["harness"] = {"builder": "harness.real_traces.build_real_trace", "params": asdict(params)}
    return build_trace(result, config, pair.vocab_size, meta)


def trace_cache_path(params: RealTraceParams, cache_dir: Path = TRACE_CACHE) -> Path:
    return Path(cache_dir) / f"real-{params.mode}-g{params.gamma}-r{params.rounds}-{cache_key(params)}.npz"


def build_real_trace(params: RealTraceParams = STOCHASTIC_TRACE, pair_loader: LazyPair | None = None,
                     cache_dir: Path = TRACE_CACHE) -> Path:
    """Path of the cached trace for params, building (and atomically writing) it on a miss."""
    from hades.errors import TraceError
    from hades.trace import read_trace, write_trace
    path = trace_cache_path(params, cache_dir)
    if path.is_file():
        try:
            read_trace(path)
            return path
        except TraceError:
            pass  # a damaged cache entry is rebuilt below
    loader = pair_loader if pair_loader is not None else LazyPair(
        _spec_for(params) if params.draft_layers is not None else None)
    write_trace(path, generate_real_trace(loader.get(), params))
    return path


def _spec_for(params: RealTraceParams):
    from hades.models import PairSpec
    return PairSpec(draft_layers=params.draft_layers)


@pytest.fixture(scope="session")
def embedded_pair_loader() -> LazyPair:
    """The embedded SmolLM2 pair, loaded at most once per session and only when needed."""
    return LazyPair()


@pytest.fixture(scope="session")
def real_trace_path(embedded_pair_loader) -> Path:
    """A stochastic real trace: gamma 4, 8 rounds, V = 49152."""
    return build_real_trace(STOCHASTIC_TRACE, embedded_pair_loader)


@pytest.fixture(scope="session")
def real_greedy_trace_path(embedded_pair_loader) -> Path:
    """A greedy real trace: gamma 4, 6 rounds, V = 49152."""
    return build_real_trace(GREEDY_TRACE, embedded_pair_loader)
