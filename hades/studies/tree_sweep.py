"""Tree-shape sweeps: trees against chains at equal node budgets, on real tree traces, with the
tree block's CL schedule (hades.cl.tree_timing.tree_round_timing, cycle-exact with its RTL).

For every node budget B (TREE_BUDGET_SHAPES: a chain of B nodes and tree shapes of at most B
nodes), the embedded pair records a real tree trace per shape (hades.traces.tree_cache; the
layer-skip draft expands the tree, the target scores every node in one tree-attention pass,
the FL golden model decides each round). Every round is then timed per hardware point (lanes
x SRAM size) from its recorded walk: the tokens it emits (the accepted path + 1), its cycles,
the rows it streams and the residual passes its rejected sampled children cost. One CSV row
per (shape, lanes, SRAM) point (TREE_SWEEP_COLUMNS).

A chain of B nodes is the tree shape 1,1,...,1 recorded by the same recorder: the same draft,
prompt and seeds, verified by the same walk (docs/TREES.md section 7: a chain verified as a
tree is the chain verifier bit for bit), so the comparison changes the shape and nothing else.
"""
from __future__ import annotations

import contextlib
import csv
import io
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hades import limits
from hades.cl.timing import TimingConfig
from hades.cl.tree_timing import tree_round_timing
from hades.config import TreeConfig, VerifierConfig
from hades.errors import ConfigError
from hades.fileio import atomic_write, check_output_path, output_lock
from hades.logit_protocol import BF16_BITS
from hades.round import TREE_SCHEMES, children_lists, path_to
from hades.studies.sweep import format_value, sram_words_for
from hades.traces.synthetic_tree import tree_node_count
from hades.traces.tree_cache import TreeTraceRequest, get_tree_trace

# Shapes per node budget: the chain, the widest bush, and the shapes between (branching per
# depth; each with at most B nodes, most with B - 1 or B). Wide-first shapes put the branching
# where the draft is least sure (the first token), which is where EAGLE and Sequoia put it.
TREE_BUDGET_SHAPES: dict[int, tuple[tuple[int, ...], ...]] = {
    4: ((1, 1, 1), (3,), (1, 2)),
    8: ((1,) * 7, (7,), (2, 2), (3, 1), (2, 1, 1)),
    16: ((1,) * 15, (4, 2), (2, 2, 2), (4, 1, 1), (2, 2, 1, 1)),
    32: ((1,) * 31, (4, 2, 2), (2, 2, 2, 2), (4, 2, 1, 1), (2, 2, 2, 1, 1)),
}
DEFAULT_TREE_BUDGETS = tuple(TREE_BUDGET_SHAPES)
DEFAULT_TREE_LANES = (16, 64)
DEFAULT_TREE_ROUNDS = 8

TREE_SWEEP_COLUMNS = (
    "budget", "shape", "nodes", "depth", "chain", "scheme", "temperature", "rounds", "seed", "vocab_size", "lanes",
    "sram_kib", "sram_kib_needed", "trace_key",
    "accepted_per_round", "tokens_per_round", "tokens_per_node", "cycles_per_round", "input_cycles_per_round",
    "latency_per_round", "residual_passes_per_round", "rows_per_round", "offchip_rows_per_round", "tokens_per_s",
)


def shape_text(shape) -> str:
    return ",".join(map(str, shape)) or "0"


@dataclass(frozen=True)
class TreeSweepSpec:
    """The grid of a tree-shape sweep: node budgets (keys of TREE_BUDGET_SHAPES), the child
    scheme, lanes, SRAM sizes (None: every row of the round on chip, the RTL's buffer) and the
    traces' rounds, temperature and seed; the timing model's clock and off-chip link."""
    budgets: tuple[int, ...] = DEFAULT_TREE_BUDGETS
    scheme: str = "sampled"
    lanes: tuple[int, ...] = DEFAULT_TREE_LANES
    sram_kib: tuple[int | None, ...] = (None,)
    rounds: int = DEFAULT_TREE_ROUNDS
    temperature: float = 1.0
    seed: int = 0
    clock_hz: float = 1.0e9
    offchip_bw: float = 4.0
    offchip_latency: int = 100

    def check(self) -> None:
        if not self.budgets:
            raise ConfigError("a tree sweep needs at least one node budget")
        unknown = [b for b in self.budgets if b not in TREE_BUDGET_SHAPES]
        if unknown:
            raise ConfigError(f"node budget {unknown[0]} has no shape list; choose from "
                              f"{', '.join(map(str, TREE_BUDGET_SHAPES))}")
        if self.scheme not in TREE_SCHEMES:
            raise ConfigError(f"tree scheme must be one of {TREE_SCHEMES}, got {self.scheme!r}")
        for L in self.lanes:
            limits.LANES.check(L)
        for kib in self.sram_kib:
            if kib is not None:
                limits.SRAM_KIB.check(kib)
        limits.check_fields(self, {"rounds": limits.ROUNDS, "seed": limits.SEED, "clock_hz": limits.CLOCK_HZ,
                                   "offchip_bw": limits.OFFCHIP_BW, "offchip_latency": limits.OFFCHIP_LATENCY})

    def requests(self) -> list[tuple[int, TreeTraceRequest]]:
        """(budget, trace request) per shape, in budget then list order."""
        return [(b, TreeTraceRequest(shape=shape, scheme=self.scheme, rounds=self.rounds,
                                     temperature=self.temperature, seed=self.seed))
                for b in self.budgets for shape in TREE_BUDGET_SHAPES[b]]


def tree_block_for(trace, lanes: int, sram_kib: int | None) -> tuple[TreeConfig, TimingConfig | None]:
    """The smallest tree block that takes the trace's rounds at `lanes` (nodes_max and
    children_max from the trace), and the CL timing of an SRAM of sram_kib (None: all on chip)."""
    nodes = int(max(trace.num_nodes))
    kids = max(max((len(c) for c in children_lists(trace.round(i).parents)), default=0)
               for i in range(trace.num_rounds))
    hw = VerifierConfig(lanes=lanes, vocab_max=trace.vocab_size, prob_bits=trace.weight_bits,
                        uniform_bits=trace.uniform_bits)
    tree = TreeConfig(hw=hw, nodes_max=max(nodes, kids + 1, 2), children_max=max(kids, 1))
    if sram_kib is None:
        return tree, None
    words = sram_words_for(sram_kib, lanes, BF16_BITS)
    row_words = -(-trace.vocab_size // lanes)
    if words < row_words:
        raise ConfigError(f"SRAM of {sram_kib} KiB holds no row of V={trace.vocab_size} bf16 entries at {lanes} lanes")
    return tree, TimingConfig(hw=hw, sram_words=words)


def time_tree_trace(trace, tree: TreeConfig, timing: TimingConfig | None = None) -> list:
    """tree_round_timing of every round of a (v3) trace from its recorded walk."""
    from hades.tree_protocol import round_filter_flags
    out = []
    for i in range(trace.num_rounds):
        rnd = trace.round(i)
        path = path_to(rnd.parents, int(trace.expected_node[i]))
        out.append(tree_round_timing(tree, rnd.scheme, rnd.parents, rnd.tokens, rnd.vocab_size, path,
                                     int(trace.expected_token[i]), round_filter_flags(rnd), timing))
    return out


def evaluate_tree_point(budget: int, req: TreeTraceRequest, trace, lanes: int, sram_kib: int | None,
                        spec: TreeSweepSpec) -> dict:
    tree, timing = tree_block_for(trace, lanes, sram_kib)
    if timing is not None:
        timing = replace(timing, clock_hz=spec.clock_hz, offchip_bw=spec.offchip_bw,
                         offchip_latency=spec.offchip_latency)
    t = time_tree_trace(trace, tree, timing)
    accepted = trace.expected_accepted.astype(np.int64)
    tokens = accepted + 1
    cycles = np.array([x.cycles for x in t], np.int64)
    nodes = tree_node_count(req.shape)
    needed = max(x.sram_bytes for x in t) / 1024
    row = {
        "budget": budget, "shape": shape_text(req.shape), "nodes": nodes, "depth": len(req.shape),
        "chain": all(b == 1 for b in req.shape), "scheme": req.scheme, "temperature": req.temperature,
        "rounds": trace.num_rounds, "seed": req.seed, "vocab_size": trace.vocab_size, "lanes": lanes,
        "sram_kib": sram_kib if sram_kib is not None else "all", "sram_kib_needed": needed,
        "trace_key": req.key(),
        "accepted_per_round": float(accepted.mean()), "tokens_per_round": float(tokens.mean()),
        "tokens_per_node": float(tokens.mean() / nodes),
        "cycles_per_round": float(cycles.mean()),
        "input_cycles_per_round": float(np.mean([x.input_cycles for x in t])),
        "latency_per_round": float(np.mean([x.latency for x in t])),
        "residual_passes_per_round": float(np.mean([x.residual_passes for x in t])),
        "rows_per_round": float(np.mean([x.rows for x in t])),
        "offchip_rows_per_round": float(np.mean([x.offchip_rows for x in t])),
        "tokens_per_s": float(tokens.sum() / cycles.sum() * spec.clock_hz),
    }
    assert tuple(row) == TREE_SWEEP_COLUMNS, "evaluate_tree_point and the CSV schema disagree"
    return row


def run_tree_sweep(spec: TreeSweepSpec, out: str | Path | None = None, *, cache_dir=None, pair_loader=None,
                   progress: bool = False, trace_for=None) -> list[dict]:
    """Record (or read) every shape's trace and time it at every hardware point; with out,
    write the CSV atomically (under its lock). Returns the rows. trace_for(request) -> TreeTrace
    replaces the real traces (tests time synthetic trees through the same path)."""
    spec.check()
    if out is not None:
        check_output_path(out)
    from tqdm import tqdm
    reqs = spec.requests()
    rows = []
    with (output_lock(out) if out is not None else contextlib.nullcontext()):
        if trace_for is None:
            if pair_loader is None:
                from hades.llm.models import PairLoader
                pair_loader = PairLoader()   # loads the pair on the first missing trace only

            def trace_for(req):
                return get_tree_trace(req, cache_dir, pair_loader)
        for budget, req in tqdm(reqs, unit="shape", desc="tree shapes", file=sys.stderr,
                                disable=None if progress else True):
            trace = trace_for(req)
            for L in spec.lanes:
                for kib in spec.sram_kib:
                    rows.append(evaluate_tree_point(budget, req, trace, L, kib, spec))
        if out is not None:
            write_tree_csv(out, rows)
    return rows


def write_tree_csv(path, rows) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TREE_SWEEP_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: format_value(v) for k, v in r.items()})
    text = buf.getvalue()
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), suffix=".csv")


def best_per_budget(rows: list[dict], key: str = "tokens_per_s") -> dict[tuple[int, int], tuple[dict, dict]]:
    """(budget, lanes) -> (best tree row, chain row) on the on-chip points."""
    out = {}
    for r in rows:
        if r["sram_kib"] not in ("all", None):
            continue
        k = (int(r["budget"]), int(r["lanes"]))
        best, chain = out.get(k, (None, None))
        if r["chain"] in (True, "True"):
            chain = r
        elif best is None or float(r[key]) > float(best[key]):
            best = r
        out[k] = (best, chain)
    return out


_TREE_INT = ("budget", "nodes", "depth", "rounds", "seed", "vocab_size", "lanes")
_TREE_TEXT = ("shape", "scheme", "trace_key")


def read_tree_csv(path) -> list[dict]:
    """Rows of a tree-shape sweep CSV, typed (ConfigError naming the file and line on a bad one)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the tree sweep CSV: {e}") from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != TREE_SWEEP_COLUMNS:
        raise ConfigError(f"{path}: not a tree sweep CSV (expected the columns of `hades sweep --trees`)")
    rows = []
    for line, raw in enumerate(reader, start=2):
        try:
            row = {}
            for k, v in raw.items():
                if k in _TREE_INT:
                    row[k] = int(v)
                elif k in _TREE_TEXT:
                    row[k] = v
                elif k == "chain":
                    if v not in ("True", "False"):
                        raise ValueError(f"chain must be True or False, got {v!r}")
                    row[k] = v == "True"
                elif k == "sram_kib":
                    row[k] = v if v == "all" else int(v)
                else:
                    row[k] = float(v)
                    if not np.isfinite(row[k]) or row[k] < 0:
                        raise ValueError(f"{k} must be a finite number >= 0, got {v!r}")
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}, line {line}: {e}") from None
        rows.append(row)
    if not rows:
        raise ConfigError(f"{path}: the tree sweep CSV has no rows")
    return rows


def is_tree_csv(path) -> bool:
    """Whether a CSV's header is a tree-shape sweep's (so `hades plot` picks its figure)."""
    try:
        with open(path, newline="") as f:
            return tuple(next(csv.reader(f), ())) == TREE_SWEEP_COLUMNS
    except (OSError, UnicodeDecodeError):
        return False
