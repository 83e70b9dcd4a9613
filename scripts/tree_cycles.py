"""Cycles of tree rounds against chains with the same rows (docs/ARCHITECTURE.md "The tree
block", docs/PERFORMANCE.md), from the CL schedules (hades.cl.tree_timing,
hades.cl.logit_timing), which the RTL matches cycle for cycle on every round the tests run.

    PYTHONPATH=. .venv/bin/python scripts/tree_cycles.py [--vocab 49152] [--lanes 16]

Per shape (children per depth, breadth-first numbering) and scheme, two walks: down the first
children to the deepest leaf ("deepest"), and every child of the root rejected ("root
rejects"); every sampler's token is V - 1 (its last word: the longest sample). The chain rows
are gamma-4 model-drafted rounds of the logit block (4 draft + 5 target rows, the draft tokens
sampled by the block) and the same chain as a sampled tree (the same 9 rows; the block does not
sample the drafts). Prints a markdown table.
"""
from __future__ import annotations

import argparse

from hades.cl.logit_timing import logit_round_timing
from hades.cl.timing import TimingConfig
from hades.cl.tree_timing import tree_round_timing
from hades.config import TreeConfig, VerifierConfig
from hades.round import children_lists

SHAPES = [(), (4,), (1, 1, 1, 1), (2, 2), (4, 2), (2, 2, 2), (4, 2, 1)]


def full_tree(shape):
    parents, level = [-1], [0]
    for b in shape:
        nxt = []
        for n in level:
            for _ in range(b):
                parents.append(n)
                nxt.append(len(parents) - 1)
        level = nxt
    return parents


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--lanes", type=int, default=16)
    a = ap.parse_args(argv)
    V, L = a.vocab, a.lanes
    hw = VerifierConfig(lanes=L, vocab_max=max(V, 2 * L), gamma_max=4)
    tree = TreeConfig(hw=hw, nodes_max=32, children_max=4)
    print(f"V = {V}, L = {L} ({-(-V // L)} words per row), every row on chip, one beat per cycle\n")
    print("| round | nodes | rows | scheme | walk | accepted | cycles | input | latency | engine busy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for accepted, walk in ((4, "all accepted"), (0, "first draft rejected")):
        t = logit_round_timing(TimingConfig(hw=hw),
                               [4], V, False, False, [accepted], [V - 1], [[V - 1] * 4])
        busy = int(t.draft_job_cycles[0] + t.target_job_cycles[0] + t.tail_cycles[0])
        print(f"| chain gamma 4 (logit block) | - | 9 | model drafts | {walk} | {accepted} | {int(t.cycles[0]):,} | "
              f"{int(t.input_cycles[0]):,} | {int(t.latency[0]):,} | {busy:,} |")
    for shape in SHAPES:
        parents = full_tree(shape)
        kids = children_lists(parents)
        tokens = [0] + [V - 1] * (len(parents) - 1)
        deepest, node = [], 0
        while kids[node]:
            node = kids[node][0]
            deepest.append(node)
        name = ",".join(map(str, shape)) or "root only"
        if shape == (1, 1, 1, 1):
            name += " (the chain as a tree)"
        for scheme in ("sampled", "deterministic", "greedy"):
            for walk, path in (("deepest", tuple(deepest)), ("root rejects", ())):
                if not shape and walk == "root rejects":
                    continue
                t = tree_round_timing(tree, scheme, parents, tokens, V, path, V - 1)
                print(f"| tree {name} | {len(parents)} | {t.rows} | {scheme} | {walk} | {len(path)} | {t.cycles:,} | "
                      f"{t.input_cycles:,} | {t.latency:,} | {t.engine_cycles:,} |")


if __name__ == "__main__":
    main()
