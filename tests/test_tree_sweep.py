"""Tree-shape sweeps (hades.studies.tree_sweep, `hades sweep --trees`): trees against chains at
equal node budgets, timed with the tree block's CL schedule from each round's recorded walk."""
from __future__ import annotations

import pytest

from hades import cli
from hades.cl.tree_timing import tree_round_timing
from hades.errors import ConfigError
from hades.round import path_to
from hades.studies.tree_sweep import (TREE_BUDGET_SHAPES, TREE_SWEEP_COLUMNS, TreeSweepSpec, best_per_budget,
                                      is_tree_csv, read_tree_csv, run_tree_sweep, tree_block_for)
from hades.traces.synthetic_tree import TreeSyntheticSpec, synthetic_tree_trace, tree_node_count
from hades.tree_protocol import round_filter_flags


def synthetic_for(vocab=300):
    """A trace_for that serves a seeded synthetic tree trace of the request's shape and scheme."""
    def trace_for(req):
        return synthetic_tree_trace(TreeSyntheticSpec(vocab_size=vocab, rounds=req.rounds, shape=req.shape,
                                                      scheme=req.scheme, seed=req.seed, min_ps=(0.0,)))
    return trace_for


def test_every_budget_has_a_chain_and_trees_within_the_budget():
    for budget, shapes in TREE_BUDGET_SHAPES.items():
        assert shapes[0] == (1,) * (budget - 1), "the chain of the budget comes first"
        assert all(tree_node_count(s) <= budget for s in shapes)
        assert len(set(shapes)) == len(shapes) >= 3


def test_sweep_rows_are_the_cl_schedule_of_each_recorded_walk(tmp_path):
    spec = TreeSweepSpec(budgets=(4, 8), lanes=(4, 16), sram_kib=(None, 1), rounds=3)
    out = tmp_path / "trees.csv"
    trace_for = synthetic_for()
    rows = run_tree_sweep(spec, out, trace_for=trace_for)
    shapes = sum(len(TREE_BUDGET_SHAPES[b]) for b in spec.budgets)
    assert len(rows) == shapes * 2 * 2
    assert is_tree_csv(out) and read_tree_csv(out) == read_tree_csv(out)
    back = read_tree_csv(out)
    assert [r["shape"] for r in back] == [r["shape"] for r in rows]
    # recompute one point by hand: tokens = accepted + 1, cycles = tree_round_timing's
    _, req = spec.requests()[4]       # budget 8, the widest bush (7,)
    trace = trace_for(req)
    tree, timing = tree_block_for(trace, 16, None)
    cycles = tokens = 0
    for i in range(trace.num_rounds):
        rnd = trace.round(i)
        path = path_to(rnd.parents, int(trace.expected_node[i]))
        cycles += tree_round_timing(tree, rnd.scheme, rnd.parents, rnd.tokens, rnd.vocab_size, path,
                                    int(trace.expected_token[i]), round_filter_flags(rnd)).cycles
        tokens += len(path) + 1
    row = next(r for r in rows if r["shape"] == "7" and r["lanes"] == 16 and r["sram_kib"] == "all")
    assert row["tokens_per_s"] == pytest.approx(tokens / cycles * 1e9)
    assert row["tokens_per_round"] == pytest.approx(tokens / trace.num_rounds)
    assert row["nodes"] == 8 and not row["chain"] and row["budget"] == 8
    # a 1 KiB buffer holds no whole round: the CL off-chip model makes it slower, never faster
    small = next(r for r in rows if r["shape"] == "7" and r["lanes"] == 16 and r["sram_kib"] == 1)
    assert small["offchip_rows_per_round"] > 0 and small["cycles_per_round"] > row["cycles_per_round"]
    best = best_per_budget(rows)
    assert set(best) == {(4, 4), (4, 16), (8, 4), (8, 16)}
    for (budget, _), (tree_row, chain_row) in best.items():
        assert chain_row["chain"] and chain_row["nodes"] == budget and not tree_row["chain"]


def test_more_lanes_make_every_shape_faster(tmp_path):
    rows = run_tree_sweep(TreeSweepSpec(budgets=(8,), lanes=(4, 16), rounds=2), trace_for=synthetic_for(2000))
    by = {(r["shape"], r["lanes"]): r["tokens_per_s"] for r in rows}
    assert all(by[(s, 16)] > by[(s, 4)] for s, _ in by)


def test_plot_of_a_tree_sweep(tmp_path):
    out = tmp_path / "trees.csv"
    run_tree_sweep(TreeSweepSpec(budgets=(4, 8), lanes=(16,), rounds=2), out, trace_for=synthetic_for())
    rc = cli.main(["plot", str(out), "--out-dir", str(tmp_path / "plots")])
    png = tmp_path / "plots" / "tree_shapes.png"
    assert rc == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000


@pytest.mark.parametrize("text, message", [
    ("budget,shape\n4,3\n", "not a tree sweep CSV"),
    (",".join(TREE_SWEEP_COLUMNS) + "\n", "has no rows"),
])
def test_bad_tree_csv_is_one_clear_error(tmp_path, text, message):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_tree_csv(p)


def test_a_nan_in_a_tree_csv_names_the_line(tmp_path):
    out = tmp_path / "trees.csv"
    run_tree_sweep(TreeSweepSpec(budgets=(4,), lanes=(16,), rounds=1), out, trace_for=synthetic_for())
    import csv
    table = list(csv.reader(out.open(newline="")))
    table[1][TREE_SWEEP_COLUMNS.index("tokens_per_s")] = "nan"
    with out.open("w", newline="") as f:
        csv.writer(f).writerows(table)
    with pytest.raises(ConfigError, match="line 2: tokens_per_s"):
        read_tree_csv(out)


@pytest.mark.parametrize("argv, message", [
    (("--trees", "4", "--gammas", "2"), "--gammas applies to chain sweeps"),
    (("--trees", "5"), "node budget 5 has no shape list"),
    (("--trees", "4", "--source", "synthetic"), "--source synthetic does not apply"),
    (("--trees", "4", "--mode", "greedy", "--children", "sampled"), "--mode greedy makes greedy trees"),
    (("--children", "sampled",), "--children applies to --trees sweeps"),
])
def test_bad_tree_sweep_arguments_exit_2_with_one_line(capsys, tmp_path, argv, message):
    rc = cli.main(["sweep", *argv, "--out", str(tmp_path / "t.csv"), "--no-progress"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.model
def test_real_tree_sweep_compares_trees_with_the_chain(tmp_path, embedded_pair_loader):
    """Budget 4 on the embedded pair: every shape's trace recorded once, the chain among them."""
    from hades.traces.cache import real_unavailable_reason
    reason = real_unavailable_reason()
    if reason:
        pytest.skip(reason)
    rows = run_tree_sweep(TreeSweepSpec(budgets=(4,), lanes=(16,), rounds=2), tmp_path / "t.csv",
                          cache_dir=tmp_path, pair_loader=embedded_pair_loader)
    assert {r["shape"] for r in rows} == {"1,1,1", "3", "1,2"}
    assert all(r["vocab_size"] == 49152 and r["tokens_per_s"] > 0 and 1 <= r["tokens_per_round"] <= 4 for r in rows)
    again = run_tree_sweep(TreeSweepSpec(budgets=(4,), lanes=(16,), rounds=2), cache_dir=tmp_path,
                           pair_loader=embedded_pair_loader)
    assert again == rows, "the second run reads the cached traces"
