"""Tree traces on the command line (docs/TREES.md): `hades trace --synthetic --tree SHAPE` and
`hades verify` of a hades-trace/3 file. Kept apart from the chain paths of trace.py and
verify.py, which call in here."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from hades.errors import ConfigError, TraceError

CHILDREN = ("sampled", "deterministic")
TREE_HELP = ("draft a tree per round instead of a chain (trace file v3, docs/TREES.md): children per node at "
             "each depth, e.g. 4,2,2,1 (1 + 4 + 8 + 16 + 16 = 45 nodes); from the model pair (the target scores "
             "every node in one tree-attention pass) or --synthetic")
CHILDREN_HELP = ("--tree: sampled (default; k i.i.d. draft samples per node, verified by multi-step speculative "
                 "sampling) or deterministic (the draft's top-k tokens); --mode greedy makes greedy trees")


def tree_shape_arg(text):
    """argparse type= for --tree: parse_tree_shape with its messages."""
    from hades.traces.synthetic_tree import parse_tree_shape
    try:
        return parse_tree_shape(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_trace_arguments(group) -> None:
    group.add_argument("--tree", type=tree_shape_arg, default=None, metavar="B1,B2,...", help=TREE_HELP)
    group.add_argument("--children", choices=CHILDREN, default=None, help=CHILDREN_HELP)


UNSUPPORTED_WITH_TREE = ("gamma_max", "greedy_share", "onehot_share", "new_tokens", "lookup_ngram", "draft_top_k",
                         "draft_top_p")


def tree_trace(args, out=None):
    """The TreeTrace of `hades trace --tree ...`: synthetic, or recorded from the model pair
    (ConfigError for options that do not apply)."""
    if args.trace_format != 2:
        raise ConfigError("--tree writes trace file v3; --trace-format applies to chain traces only")
    for name in UNSUPPORTED_WITH_TREE:
        if getattr(args, name) is not None:
            raise ConfigError(f"--{name.replace('_', '-')} applies to chain traces, not --tree")
    if args.mode == "greedy" and args.children is not None:
        raise ConfigError("--children applies to stochastic trees; --mode greedy makes greedy trees")
    scheme = "greedy" if args.mode == "greedy" else args.children or "sampled"
    rounds = args.rounds if args.rounds is not None else (16 if args.synthetic else 8)
    if not args.synthetic:
        return _model_tree_trace(args, scheme, rounds, out)
    from hades.cli.trace import MODEL_ONLY
    used = [f"--{k.replace('_', '-')}" for k in MODEL_ONLY if getattr(args, k) not in (None, False)]
    if used:
        raise ConfigError(f"{used[0]} applies to model traces, not --synthetic")
    from hades.traces.synthetic_tree import TreeSyntheticSpec, synthetic_tree_trace
    spec = TreeSyntheticSpec(vocab_size=args.vocab if args.vocab is not None else 512, rounds=rounds,
                             shape=args.tree, scheme=scheme, seed=args.seed, weight_bits=args.prob_bits,
                             uniform_bits=args.uniform_bits)
    return synthetic_tree_trace(spec)


def _model_tree_trace(args, scheme: str, rounds: int, out):
    """A real tree trace (hades.llm.tree): the draft expands the tree, the target scores it in one pass."""
    from hades.cli.trace import SYNTHETIC_ONLY, draft_method, pair_spec_from_args, read_prompt
    used = [f"--{k.replace('_', '-')}" for k in SYNTHETIC_ONLY if getattr(args, k) is not None]
    if used:
        raise ConfigError(f"{used[0]} applies to --synthetic traces only (a model's V is its logits width)")
    if args.draft_method is None and args.draft is None:
        args.draft_method = "layer-skip"   # a tree needs a draft model: the default draft of tree traces
    if draft_method(args) == "lookup":
        raise ConfigError("--tree needs a draft model that expands the tree, not --draft-method lookup")
    from hades.llm.tree import TreeDecodeConfig
    cfg = TreeDecodeConfig(shape=args.tree, scheme=scheme, rounds=rounds,
                           temperature=args.temperature if args.temperature is not None else 1.0,
                           top_k=args.top_k or 0, top_p=args.top_p if args.top_p is not None else 1.0,
                           min_p=args.min_p or 0.0, weight_bits=args.prob_bits, uniform_bits=args.uniform_bits,
                           seed=args.seed)
    cfg.check()
    spec = pair_spec_from_args(args)
    prompt = read_prompt(args)
    from hades.llm.models import load_pair
    from hades.llm.specdec import torch_threads
    from hades.llm.tree import record_tree_trace
    if sys.stderr.isatty():
        print("hades trace: loading models ...", file=sys.stderr)
    with torch_threads(args.threads):
        pair = load_pair(spec)
    return record_tree_trace(pair, cfg, prompt, threads=args.threads, raw_prompt=args.raw_prompt,
                             regenerate=_regenerate(args, cfg, prompt, out, pair.description.get("draft_layers")))


def _regenerate(args, cfg, prompt: str, out, draft_layers) -> str:
    """A command line that records the same tree trace again (on the same library versions)."""
    import shlex
    parts = ["hades", "trace", "-o", str(out)]
    for flag, value in (("--target", args.target), ("--draft", args.draft), ("--draft-layers", draft_layers)):
        if value is not None:
            parts += [flag, value]
    parts += [f"--prompt={prompt}", "--tree", ",".join(map(str, cfg.shape)) or "0"]
    parts += ["--mode", "greedy"] if cfg.scheme == "greedy" else ["--children", cfg.scheme]
    parts += ["--rounds", str(cfg.rounds), "--temperature", repr(cfg.temperature), "--top-k", str(cfg.top_k),
              "--top-p", repr(cfg.top_p), "--min-p", repr(cfg.min_p), "--seed", str(cfg.seed),
              "--prob-bits", str(cfg.weight_bits), "--uniform-bits", str(cfg.uniform_bits)]
    if args.raw_prompt:
        parts.append("--raw-prompt")
    parts += ["--threads", str(args.threads)]
    return shlex.join(parts)


def tree_trace_summary(trace, out) -> str:
    acc = trace.expected_accepted
    shape = ",".join(map(str, trace.meta.get("spec", {}).get("shape", []))) or "0"
    scheme = trace.meta.get("spec", {}).get("scheme", "mixed")
    return (f"hades trace: {trace.num_rounds} rounds of {trace.nodes_max} nodes (tree {shape}, {scheme}), "
            f"mean accepted {acc.mean():.2f} per round, V={trace.vocab_size} -> {out}")


def check_tree_hw(cfg, trace) -> None:
    """The hardware parameters a tree trace must agree with: V within vocab_max, the same W and U."""
    if trace.vocab_size > cfg.vocab_max:
        raise TraceError(f"trace vocab_size={trace.vocab_size} exceeds the hardware's vocab_max={cfg.vocab_max}")
    if trace.weight_bits != cfg.prob_bits:
        raise TraceError(f"trace weight_bits={trace.weight_bits} differs from the hardware's prob_bits={cfg.prob_bits} "
                         "(W: the width of a row entry)")
    if trace.uniform_bits != cfg.uniform_bits:
        raise TraceError(f"trace uniform_bits={trace.uniform_bits} differs from the hardware's "
                         f"uniform_bits={cfg.uniform_bits}")


def trace_tree_config(args, cfg, trace):
    """The tree block a trace verifies on: --nodes-max / --children-max, else the trace's own
    most children per node (at least 1) and most nodes (at least children + 1)."""
    from hades.config import TreeConfig
    from hades.round import children_lists
    kids = args.children_max
    if kids is None:
        kids = max([1] + [len(c) for i in range(trace.num_rounds)
                          for c in children_lists(trace.parents[i, :int(trace.num_nodes[i])])])
    nodes = args.nodes_max if args.nodes_max is not None else max(trace.nodes_max, kids + 1)
    return TreeConfig(hw=cfg, nodes_max=nodes, children_max=kids)


def verify_tree_trace(args, cfg, trace) -> int:
    """`hades verify` of a tree trace at FL, CL (hades.cl.tree_model) or RTL (the tree block's
    RTL through the shared harness, hades.sim.tree)."""
    from hades.round import TREE_SCHEMES
    from hades.sim.run import SimOptions
    from hades.sim.tree import run_tree_rounds
    if args.sim:
        raise ConfigError("--sim applies to chain traces; tree traces run at fl and cl as functions, at rtl "
                          "through the simulated block")
    if args.level == "rtl" and args.rtl_backend == "batch":
        raise ConfigError("tree traces run at --level rtl with --rtl-backend verilator or python (the batch "
                          "driver is the chain blocks')")
    check_tree_hw(cfg, trace)
    tree = trace_tree_config(args, cfg, trace)
    t0 = time.perf_counter()
    opts = SimOptions(backend=args.rtl_backend, vcd=args.vcd, src_stall=args.src_stall)
    results = run_tree_rounds(args.level, tree, trace.rounds(), opts)
    wall = time.perf_counter() - t0
    rows, mismatches = [], 0
    for i, res in enumerate(results):
        exp = (int(trace.expected_node[i]), int(trace.expected_token[i]))
        match = (res.node, res.token) == exp
        mismatches += not match
        row = {"round": i, "scheme": TREE_SCHEMES[int(trace.scheme[i])], "nodes": int(trace.num_nodes[i]),
               "node": res.node, "path": list(res.path), "accepted": res.accepted, "token": res.token,
               "expected_node": exp[0], "expected_token": exp[1], "match": match}
        if res.cycles is not None:
            row.update(cycles=res.cycles, latency=res.latency)
        rows.append(row)
    acc = np.array([r.accepted for r in results])
    summary = {"rounds": len(rows), "tokens": int(acc.sum() + len(rows)), "mean_accepted": float(acc.mean()),
               "nodes": int(trace.num_nodes.sum()), "mismatches": mismatches, "wall_seconds": round(wall, 3)}
    timed = bool(results) and results[0].cycles is not None
    if timed:
        cyc = np.array([r.cycles for r in results])
        summary.update(total_cycles=int(cyc.sum()), mean_cycles=float(cyc.mean()),
                       mean_latency=float(np.mean([r.latency for r in results])),
                       tokens_per_kcycle=float(1000 * summary["tokens"] / cyc.sum()))
    config = {**cfg.as_dict(), "nodes_max": tree.nodes_max, "children_max": tree.children_max}
    if args.json:
        json.dump({"level": args.level, "config": config, "trace": str(args.trace), "rounds": rows,
                   "summary": summary}, sys.stdout)
        print()
    else:
        print(f"{'round':>5} {'scheme':>13} {'nodes':>5} {'accepted':>8} {'node':>5} {'token':>6} {'expected':>12}"
              + (f" {'cycles':>8} {'latency':>7}" if timed else ""))
        for r in rows:
            print(f"{r['round']:>5} {r['scheme']:>13} {r['nodes']:>5} {r['accepted']:>8} {r['node']:>5} {r['token']:>6} "
                  f"{str(r['expected_node']) + '/' + str(r['expected_token']):>12}"
                  + (f" {r['cycles']:>8} {r['latency']:>7}" if timed else "")
                  + ("" if r["match"] else "  MISMATCH"))
        print(f"level {args.level}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                 for k, v in summary.items()))
    if mismatches:
        print(f"hades verify: {mismatches} round(s) differ from the trace's expected node and token", file=sys.stderr)
        return 1
    return 0
