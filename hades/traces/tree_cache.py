"""Real tree traces (trace file v3) by their parameters, from the same disk cache as the chain
traces (hades.traces.cache), for the tree-shape sweeps:

    req = TreeTraceRequest(shape=(4, 2, 2, 1), scheme="sampled", rounds=8)
    trace = get_tree_trace(req)     # recorded once with the embedded pair (hades.llm.tree), then read

A request is the shape, the child scheme, the rounds, the temperature, the seed and the prompt
(None: the chain traces' REAL_TRACE_PROMPT); the draft is the embedded pair's layer-skip draft
(a tree needs a draft model that scores every node; prompt lookup proposes one continuation).
The key hashes the request with the recorders' versions, so a changed recorder never serves a
stale file; files are written atomically and recorded under a lock, so two processes asking
for the same tree record it once.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hades import limits
from hades.errors import ConfigError, TraceError
from hades.fileio import build_lock
from hades.round import TREE_SCHEMES
from hades.traces.cache import (CACHE_FORMAT, DEFAULT_CACHE_DIR, REAL_TRACE_PROMPT, REAL_TRACE_THREADS, TraceUnavailable,
                                _real_recorder_version, real_unavailable_reason)
from hades.traces.format import read_trace, write_trace
from hades.traces.synthetic_tree import parse_tree_shape, tree_node_count


@dataclass(frozen=True)
class TreeTraceRequest:
    """Everything that determines a real tree trace (module docstring)."""
    shape: tuple[int, ...]
    scheme: str = "sampled"
    rounds: int = 8
    temperature: float = 1.0
    seed: int = 0
    prompt: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", parse_tree_shape(self.shape))
        t = self.temperature
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            object.__setattr__(self, "temperature", float(t))   # 1 and 1.0: one key

    def check(self) -> None:
        if self.scheme not in TREE_SCHEMES:
            raise ConfigError(f"tree scheme must be one of {TREE_SCHEMES}, got {self.scheme!r}")
        limits.check_fields(self, {"rounds": limits.ROUNDS, "seed": limits.SEED, "temperature": limits.TEMPERATURE})
        if self.temperature == 0:
            raise ConfigError("temperature 0 is greedy: use scheme='greedy' instead")

    @property
    def nodes(self) -> int:
        return tree_node_count(self.shape)

    def decode_config(self):
        from hades.llm.tree import TreeDecodeConfig
        return TreeDecodeConfig(shape=self.shape, scheme=self.scheme, rounds=self.rounds,
                                temperature=self.temperature, seed=self.seed)

    def key(self) -> str:
        from hades.llm.tree import TREE_RECORDER
        payload = {"cache": CACHE_FORMAT, "producer": _real_recorder_version(), "tree_recorder": TREE_RECORDER,
                   **asdict(self), "shape": list(self.shape)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def file_stem(self) -> str:
        shape = "-".join(map(str, self.shape)) or "root"
        return f"tree-{self.scheme}-{shape}-r{self.rounds}-t{self.temperature:g}-s{self.seed}-{self.key()}"


def tree_trace_path(req: TreeTraceRequest, cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or DEFAULT_CACHE_DIR) / f"{req.file_stem()}.npz"


def get_tree_trace(req: TreeTraceRequest, cache_dir: str | Path | None = None, pair_loader=None):
    """The TreeTrace for req: read from the cache, or recorded with the embedded pair (loaded
    through pair_loader, a hades.llm.models.PairLoader with a draft model, on a miss only)."""
    req.check()
    path = tree_trace_path(req, cache_dir)
    with build_lock(path.parent, path.name):
        if path.is_file():
            try:
                return read_trace(path)
            except TraceError:
                path.unlink(missing_ok=True)   # a foreign hand or a bug: the key says what to rebuild
        reason = real_unavailable_reason()
        if reason is not None:
            raise TraceUnavailable(f"real tree traces are unavailable: {reason}")
        from hades.llm.models import PairLoader
        from hades.llm.tree import record_tree_trace
        pair = (pair_loader or PairLoader()).get()
        if pair.draft is None:
            raise ConfigError("tree traces need a pair with a draft model (this loader was made for prompt lookup)")
        trace = record_tree_trace(pair, req.decode_config(), req.prompt or REAL_TRACE_PROMPT,
                                  threads=REAL_TRACE_THREADS)
        trace.meta["trace_cache"] = {"request": {**asdict(req), "shape": list(req.shape)}, "key": req.key()}
        write_trace(path, trace)
    return trace
