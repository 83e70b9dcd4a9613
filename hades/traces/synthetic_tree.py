"""Synthetic tree traces (`hades-trace/3`, docs/TREES.md), reproducible from a seed.

A tree of a given shape (`shape[d]` children for every node at depth d: `4,2,2,1` has
1 + 4 + 8 + 16 + 16 = 45 nodes) is expanded breadth first, so children are numbered in order
and every parent precedes its children. Rows are the LLM-like logit rows of the v2 synthetic
traces (hades.traces.synthetic): one target row and one draft row (the target scaled by
draft_power plus Gaussian noise) per *context*, so two sampled siblings that drew the same
token share their rows and subtrees' rows, as a real target would give them. Children are,
per scheme: "sampled", shape[d] i.i.d. draws of the draft sampler from the parent's draft
weights (each with its own draft uniform; repeats allowed); "deterministic" and "greedy",
the parent's shape[d] highest-ranked draft tokens (rank order of the draft weights, ties to
the lower id; at most V).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hades import limits, numerics
from hades.errors import ConfigError
from hades.fl.tree import verify_tree_round
from hades.round import TREE_SCHEMES, TreeRound
from hades.traces.format_tree import TreeTrace, tree_trace_from_rounds
from hades.traces.synthetic import MIN_P_CHOICES, LogitSyntheticSpec, _llm_like_logits, _spec_fields, _synthetic_meta

TREE_TOOL_VERSION = "hades-synthetic-tree/1"
TREE_BRANCHING = limits.IntLimit("tree branching", 1, 64, "children per node at one depth")
TREE_DEPTH_MAX = 64
TREE_NODES_MAX = 4096          # nodes per round a synthetic tree may have


def tree_node_count(shape) -> int:
    """1 + b1 + b1 b2 + ... : the nodes of a full tree of the given branching per depth."""
    total, level = 1, 1
    for b in shape:
        level *= int(b)
        total += level
    return total


def parse_tree_shape(text) -> tuple[int, ...]:
    """'4,2,2,1' -> (4, 2, 2, 1): children per node at each depth, each 1..64, at most 64
    depths and TREE_NODES_MAX nodes in all (ConfigError otherwise). '' or '0' is the bare root."""
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        s = str(text).strip()
        parts = [] if s in ("", "0") else s.split(",")
    shape = []
    for part in parts:
        try:
            v = int(str(part).strip())
        except ValueError:
            raise ConfigError(f"tree shape: expected children per depth like 4,2,2,1, got {limits.show(str(text))}") from None
        shape.append(TREE_BRANCHING.check(v))
    if len(shape) > TREE_DEPTH_MAX:
        raise ConfigError(f"tree shape: {len(shape)} depths, more than {TREE_DEPTH_MAX}")
    if tree_node_count(shape) > TREE_NODES_MAX:
        raise ConfigError(f"tree shape {','.join(map(str, shape))}: {tree_node_count(shape)} nodes per round, "
                          f"more than {TREE_NODES_MAX}")
    return tuple(shape)


@dataclass(frozen=True)
class TreeSyntheticSpec:
    """Synthetic tree rounds of one shape and scheme; temperature and min-p drawn per round (the
    same for both sides), as LogitSyntheticSpec draws them."""
    vocab_size: int = 512
    rounds: int = 16
    shape: tuple[int, ...] = (4, 2, 2, 1)
    scheme: str = "sampled"
    seed: int = 0
    weight_bits: int = 16
    uniform_bits: int = 32
    temperature_range: tuple[float, float] = (0.5, 1.5)
    min_ps: tuple[float, ...] = MIN_P_CHOICES
    draft_power: float = 0.9
    draft_noise: float = 0.8

    def check(self):
        object.__setattr__(self, "shape", parse_tree_shape(self.shape))
        if self.scheme not in TREE_SCHEMES:
            raise ConfigError(f"tree scheme must be one of {TREE_SCHEMES}, got {self.scheme!r}")
        LogitSyntheticSpec(vocab_size=self.vocab_size, rounds=self.rounds, seed=self.seed,
                           weight_bits=self.weight_bits, uniform_bits=self.uniform_bits, gammas=(0,),
                           temperature_range=self.temperature_range, min_ps=self.min_ps,
                           draft_power=self.draft_power, draft_noise=self.draft_noise).check()
        n = tree_node_count(self.shape)
        limits.check_trace_size(self.rounds, n, self.vocab_size)   # R x (2N + 1) x V bounds R x 2N x V

    @property
    def num_nodes(self) -> int:
        return tree_node_count(self.shape)


def synthetic_tree_round(rng: np.random.Generator, spec: TreeSyntheticSpec) -> TreeRound:
    """One tree round whose every random choice comes from rng."""
    V, W, U = spec.vocab_size, spec.weight_bits, spec.uniform_bits
    temperature = float(rng.uniform(*spec.temperature_range))
    min_p = float(spec.min_ps[int(rng.integers(len(spec.min_ps)))])
    params = tuple(numerics.sampling_params(temperature, 0, 1.0, min_p))
    rows: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def context_rows(path: tuple[int, ...]):
        if path not in rows:
            zq = _llm_like_logits(rng, 1, V)[0]
            zp = spec.draft_power * zq + spec.draft_noise * rng.standard_normal(V)
            rows[path] = (numerics.encode_bf16(zq), numerics.encode_bf16(zp))
        return rows[path]

    parents, tokens, paths, d_u = [-1], [0], [()], [0]
    level = [0]
    for b in spec.shape:
        nxt = []
        for n in level:
            p_bits = context_rows(paths[n])[1]
            if spec.scheme == "sampled":
                p, zp = numerics.logit_weights(p_bits, params, W)
                draws = rng.integers(0, 1 << U, size=b, dtype=np.uint64)
                kids = [(numerics.draft_sample(p, zp, int(d), U), int(d)) for d in draws]
            else:
                p, _ = numerics.logit_weights(p_bits, params, W)
                kids = [(int(x), 0) for x in numerics.rank_order(p)[: min(b, V)]]
            for x, d in kids:
                parents.append(n)
                tokens.append(x)
                paths.append(paths[n] + (x,))
                d_u.append(d)
                nxt.append(len(parents) - 1)
        level = nxt
    N = len(parents)
    target = np.stack([context_rows(paths[n])[0] for n in range(N)])
    draft = np.stack([context_rows(paths[n])[1] for n in range(N)])
    accept_u = rng.integers(0, 1 << U, size=N, dtype=np.uint64)
    accept_u[0] = 0   # the root has no accept test
    sample_u = rng.integers(0, 1 << U, size=N, dtype=np.uint64)
    return TreeRound(scheme=spec.scheme, parents=np.array(parents, np.int64), tokens=np.array(tokens, np.int64),
                     target_logits=target, draft_logits=draft, draft_params=params, target_params=params,
                     draft_uniforms=np.array(d_u, np.uint64), accept_uniforms=accept_u, sample_uniforms=sample_u)


def synthetic_tree_trace(spec: TreeSyntheticSpec) -> TreeTrace:
    """A v3 TreeTrace whose every random choice comes from spec.seed (recorded in meta); the
    expected node and token of each round come from verify_tree_round."""
    spec.check()
    rng = np.random.default_rng(spec.seed)
    rounds = [synthetic_tree_round(rng, spec) for _ in range(spec.rounds)]
    results = [verify_tree_round(r, spec.weight_bits, spec.uniform_bits, where=f"round {i}")
               for i, r in enumerate(rounds)]
    return tree_trace_from_rounds(rounds, results, vocab_size=spec.vocab_size, weight_bits=spec.weight_bits,
                                  uniform_bits=spec.uniform_bits, nodes_max=spec.num_nodes,
                                  meta=_synthetic_meta(TREE_TOOL_VERSION, _spec_fields(spec), tree_spec_to_args(spec),
                                                       seed=spec.seed))


def tree_spec_to_args(spec: TreeSyntheticSpec) -> str:
    scheme = "--mode greedy" if spec.scheme == "greedy" else f"--children {spec.scheme}"
    return (f"--tree {','.join(map(str, spec.shape)) or '0'} {scheme} --vocab {spec.vocab_size}"
            f" --rounds {spec.rounds} --seed {spec.seed} --prob-bits {spec.weight_bits}"
            f" --uniform-bits {spec.uniform_bits}")
