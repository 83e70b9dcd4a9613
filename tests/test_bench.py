"""hades bench / hades synth: the torch baseline decides like the FL model where floats are
safely away from a decision boundary, and both commands run end to end on tiny configurations
(shape and sanity of the results, not speed)."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch

from hades.studies import bench
from hades.cli import main
from hades.fl.verifier import verify_logit_round, verify_round
from hades.traces.synthetic import SyntheticSpec, synthetic_trace


@pytest.mark.parametrize("mode", ["stochastic", "greedy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_baseline_matches_fl_where_margin_exceeds_quantisation(mode, dtype):
    tr = synthetic_trace(SyntheticSpec(vocab_size=1024, rounds=30, gammas=(2, 4, 8), mode=mode, seed=11))
    eps = float(torch.finfo(getattr(torch, dtype)).eps)
    checked = total = 0
    for batch in bench.batches_from_trace(tr, None, None, source="test"):
        acc, tok = bench.torch_verify(bench.torch_inputs(batch, dtype))
        safe = bench.decision_margins(batch, eps)
        for i, rnd in enumerate(batch.rounds):
            total += 1
            if safe[i]:
                checked += 1
                want = verify_round(rnd, batch.row_sum, batch.uniform_bits).decision()
                assert (int(acc[i]), int(tok[i])) == want, f"gamma {batch.gamma} round {i}"
    # the margin filter must leave most rounds in, or the test would prove nothing
    assert checked >= 0.7 * total, f"only {checked}/{total} rounds had a safe margin"


def test_amdahl_and_decode_share(tmp_path):
    assert bench.amdahl(0.1, 1.0) == pytest.approx(1.0)
    assert bench.amdahl(0.1, 1e12) == pytest.approx(1 / 0.9)
    p = tmp_path / "decode.csv"
    p.write_text("prompt,verification_share,tokens_per_s\n0,0.04,10\n1,0.06,11\n")
    share, src = bench.verification_share_from_csv(p)
    assert share == pytest.approx(0.05) and "verification_share" in src
    p.write_text("prompt,speed\n0,1\n")
    assert main(["bench", "--decode-csv", str(p), "--vocab", "64", "--gammas", "2", "--rounds", "1",
                 "--rtl-check-rounds", "0", "--cache-dir", str(tmp_path)]) == 2


def test_bench_bad_input_exits_2(capsys):
    assert main(["bench", "--gammas", "two"]) == 2
    assert "hades bench: error" in capsys.readouterr().err


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_bench_end_to_end_tiny(tmp_path, capsys):
    out_csv, png = tmp_path / "bench.csv", tmp_path / "bench.png"
    rc = main(["bench", "--vocab", "128", "--gammas", "2,4", "--rounds", "4", "--lanes", "4", "--vocab-max", "256",
               "--gamma-max", "4", "--repeats", "2", "--rtl-check-rounds", "1", "--rtl-backend", "python",
               "--rtl-lanes", "4", "--cache-dir", str(tmp_path / "cache"), "--csv", str(out_csv), "--plot", str(png)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "SYNTHETIC" in text and "RTL check" in text and ": OK" in text and "end-to-end" in text
    rows = _read_csv(out_csv)
    assert len(rows) == 2 * 6                      # 2 gammas x (HADES, torch, numpy, FL, 2 quoted)
    for g in ("2", "4"):
        mine = {r["implementation"]: r for r in rows if r["gamma"] == g}
        hades = next(r for n, r in mine.items() if n.startswith("HADES"))
        assert float(hades["hades_speedup"]) == 1.0 and float(hades["tokens_per_s"]) > 0
        measured = [r for r in mine.values() if r["kind"] == "measured"]
        assert len(measured) == 3 and all(float(r["tokens_per_s"]) > 0 for r in measured)
        # all rows of one gamma verify the same rounds, hence the same tokens
        assert len({r["tokens"] for r in measured + [hades]}) == 1
        quoted = sorted(float(r["hades_speedup"]) for r in mine.values() if r["kind"] == "quoted")
        assert quoted == [6.99, 7.74]
    proj = _read_csv(tmp_path / "bench_projection.csv")
    assert all(1.0 <= float(r["end_to_end_speedup"]) <= 1 / (1 - float(r["verification_share"])) + 1e-9
               for r in proj)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("yosys") is None,
                    reason="yosys is not installed (apt-get install -y yosys; set-up: HADES_WITH_YOSYS=1)")
def test_synth_end_to_end_tiny(tmp_path, capsys):
    out_csv = tmp_path / "synth.csv"
    rc = main(["synth", "--lanes", "2", "--vocab-max", "32", "--gamma-max", "2", "--prob-bits", "8",
               "--uniform-bits", "12", "--energy-vocab", "64", "--energy-gamma", "2", "--energy-rounds", "2",
               "--energy-vocab-max", "64", "--energy-gamma-max", "2", "--cache-dir", str(tmp_path / "cache"),
               "--synth-cache", str(tmp_path / "synth"), "--csv", str(out_csv)])
    assert rc == 0, capsys.readouterr().err
    (row,) = _read_csv(out_csv)
    cells, ffs, levels = int(row["cells"]), int(row["flip_flops"]), int(row["longest_path_levels"])
    assert 0 < ffs < cells and levels > 2
    # the draft-row buffer stays a memory (not blasted into flops) and is all there
    assert int(row["memory_bits"]) >= int(row["sram_bits"]) == 2 * 32 * 8
    assert ffs < int(row["sram_bits"]) + 500
    (energy,) = _read_csv(tmp_path / "synth_energy.csv")
    assert float(energy["total_nj"]) > 0 and "ESTIMATE" in energy["note"]


@pytest.mark.skipif(shutil.which("yosys") is None,
                    reason="yosys is not installed (apt-get install -y yosys; set-up: HADES_WITH_YOSYS=1)")
def test_synth_hierarchical_agrees_with_flat_and_says_where_the_path_runs(tmp_path, capsys):
    """The default hierarchical flow against --flat on a tiny block: the same memories, flip-flops
    and cells within a few percent (the flat run optimises across module boundaries), a path
    at most a few levels longer, and the path and the per-module depths reported."""
    common = ["synth", "--lanes", "2", "--vocab-max", "32", "--gamma-max", "2", "--prob-bits", "8",
              "--uniform-bits", "12", "--no-energy", "--synth-cache", str(tmp_path / "synth")]
    assert main(common + ["--flat", "--csv", str(tmp_path / "flat.csv")]) == 0
    assert main(common + ["--csv", str(tmp_path / "hier.csv")]) == 0
    out = capsys.readouterr().out
    (flat,), (hier,) = _read_csv(tmp_path / "flat.csv"), _read_csv(tmp_path / "hier.csv")
    assert (flat["flow"], hier["flow"]) == ("flat", "hier") and "longest path (" in out
    assert hier["memory_bits"] == flat["memory_bits"] and hier["memories"] == flat["memories"]
    for col in ("cells", "flip_flops"):
        assert abs(int(hier[col]) - int(flat[col])) <= 0.1 * int(flat[col]), col
    assert int(flat["longest_path_levels"]) <= int(hier["longest_path_levels"]) + 2
    assert int(hier["longest_path_levels"]) <= 1.2 * int(flat["longest_path_levels"])
    assert hier["critical_path"] and int(hier["modules_synthesised"]) == int(hier["modules"])
    mods = _read_csv(tmp_path / "hier_modules.csv")
    top = [m for m in mods if m["module"] == hier["module"]]
    assert top and top[0]["longest_path_levels"] == hier["longest_path_levels"]


@pytest.mark.skipif(shutil.which("yosys") is None,
                    reason="yosys is not installed (apt-get install -y yosys; set-up: HADES_WITH_YOSYS=1)")
def test_synth_lane_trees_deepen_by_levels_not_by_lanes(tmp_path, capsys):
    """`hades synth --lane-trees`: each of the logit block's lane trees is synthesised alone;
    from 2 to 8 lanes the cells grow with L while the depth of the max tree grows by a fixed
    number of levels per doubling (a tree, not a chain: a chain would add levels per lane)."""
    out_csv = tmp_path / "trees.csv"
    rc = main(["synth", "--lane-trees", "--lanes", "2,4,8", "--vocab-max", "64", "--csv", str(out_csv)])
    assert rc == 0, capsys.readouterr().err
    rows = _read_csv(out_csv)
    assert len(rows) == 3 * 4 and {r["lanes"] for r in rows} == {"2", "4", "8"}
    maxes = [r for r in rows if r["unit"].startswith("row maximum")]
    cells = [int(r["cells"]) for r in maxes]
    levels = [int(r["longest_path_levels"]) for r in maxes]
    assert cells[0] < cells[1] < cells[2]
    assert levels[0] < levels[1] < levels[2] and levels[2] - levels[1] <= 2 * (levels[1] - levels[0]) + 2


# ---- from logits (v2 rounds): torch (a), today's path (b), the logit block's plug-in (c) ----------

def _logit_trace(vocab_size=512, rounds=60, gammas=(2, 4, 8), seed=3):
    from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
    return synthetic_logit_trace(LogitSyntheticSpec(vocab_size=vocab_size, rounds=rounds, gammas=gammas, seed=seed))


@pytest.fixture(scope="module")
def logit_batches():
    batches = bench.logit_batches_from_trace(_logit_trace(), None, None, source="test")
    fl = {b.gamma: [verify_logit_round(r, b.weight_bits, b.uniform_bits).decision() for r in b.rounds]
          for b in batches}
    return batches, fl


def _torch_disagreements(batches, fl, mutate=None) -> int:
    bad = 0
    for b in batches:
        inp = bench.torch_logit_inputs(b)
        for grp in inp.groups:
            if mutate:
                mutate(grp)
        acc, tok = bench.torch_from_logits(inp)
        bad += sum(d != w for d, w in zip(zip(acc.tolist(), tok.tolist()), fl[b.gamma]))
    return bad


def _drop_temperature(grp):
    grp.target_temperature = torch.ones_like(grp.target_temperature)
    grp.draft_temperature = torch.ones_like(grp.draft_temperature)


def _drop_min_p(grp):
    grp.target_min_p = torch.zeros_like(grp.target_min_p)
    grp.draft_min_p = torch.zeros_like(grp.draft_min_p)


def test_torch_from_logits_decides_like_fl_and_a_wrong_filter_does_not(logit_batches):
    batches, fl = logit_batches
    rounds = [r for b in batches for r in b.rounds]
    # every code path is exercised: greedy / stochastic x model / one-hot drafts, min-p on and off,
    # temperatures away from 1
    assert {(r.greedy, r.onehot_draft) for r in rounds} == {(g, o) for g in (False, True) for o in (False, True)}
    assert {r.target_params[3] > 0 for r in rounds if not r.greedy} == {False, True}
    temps = [bench.temperature_of(r.target_params[0]) for r in rounds if not r.greedy]
    assert min(temps) < 0.8 and max(temps) > 1.2
    # the float path agrees with the integer golden model on all 60 rounds of this trace (at
    # V = 512 nothing sits close enough to a decision boundary; larger V can differ on a few)
    assert _torch_disagreements(batches, fl) == 0
    # ... and an implementation that forgets the temperature or the min-p filter does not
    assert _torch_disagreements(batches, fl, _drop_temperature) >= 10
    assert _torch_disagreements(batches, fl, _drop_min_p) >= 10


def test_torch_filtered_softmax_is_the_filtered_float_row():
    from hades import numerics
    b = bench.logit_batches_from_trace(_logit_trace(rounds=8, gammas=(2,), seed=5), None, None, "t")[0]
    inp = bench.torch_logit_inputs(b, "float64")
    for grp in inp.groups:
        p = bench.torch_filtered_softmax(grp.target_logits, grp.target_temperature, grp.target_min_p, torch.float64)
        for k, i in enumerate(grp.index.tolist()):
            r = b.rounds[i]
            T, min_p = bench.temperature_of(r.target_params[0]), r.target_params[3] / numerics.FRACTION_ONE
            v = (r.target_logits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
            want = np.exp(v / T - (v / T).max(axis=-1, keepdims=True))
            want = np.where(want >= min_p * want.max(axis=-1, keepdims=True), want, 0.0)
            want /= want.sum(axis=-1, keepdims=True)
            assert np.allclose(p[k].numpy(), want, rtol=1e-9, atol=1e-15)


def _filtered_trace(seed=4, logit_step=0.0):
    from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
    return synthetic_logit_trace(LogitSyntheticSpec(
        vocab_size=512, rounds=40, gammas=(2,), seed=seed, greedy_share=0.0, logit_step=logit_step,
        top_ks=(0, 1, 5, 50, 600), top_ps=(1.0, 0.3, 0.9, 0.5), draft_top_ks=(0, 7), draft_top_ps=(1.0, 0.8)))


@pytest.mark.parametrize("logit_step", [0.0, 0.25])
def test_torch_top_k_top_p_keep_the_integer_kept_set(logit_step):
    """The float baseline's top-k / top-p (a stable sort, ties to the lower id) keeps the same
    tokens as the integer filters (numerics.logit_weights) wherever either gives a token real
    mass (float p > 1e-3 or an integer weight > 0: the W-bit tail of the integer rows is 0
    where the float row is tiny, NUMERICS.md section 18), on both sides, with ties, up to the
    cut itself: the float mass and the integer weights differ in their last bits, so the entry
    that crosses top-p (or sits at min-p's threshold) can go the other way, at most two
    entries of a row and in few rows."""
    from hades import numerics
    b = bench.logit_batches_from_trace(_filtered_trace(logit_step=logit_step), None, None, "t")[0]
    inp = bench.torch_logit_inputs(b, "float64")
    rows = differ = narrowed = 0
    for grp in inp.groups:
        sides = [("target", bench._target_probs(grp, torch.float64).numpy())]
        if not grp.onehot:
            sides.append(("draft", bench._draft_probs(grp, torch.float64).numpy()))
        for side, p in sides:
            for k, i in enumerate(grp.index.tolist()):
                r = b.rounds[i]
                w = numerics.logit_weights(getattr(r, f"{side}_logits"), getattr(r, f"{side}_params"), 16)[0]
                for row in range(w.shape[0]):
                    meaningful = (p[k][row] > 1e-3) | (w[row] > 0)
                    n = int(((w[row] > 0) != (p[k][row] > 0))[meaningful].sum())
                    assert n <= 2, (side, i, row)
                    differ += n > 0
                    narrowed += int(np.count_nonzero(w[row]) <= 50)
                    rows += 1
    assert differ <= rows // 20
    assert rows >= 100 and narrowed >= rows // 4   # the filters did act on many rows


def test_torch_from_logits_fails_without_top_k_top_p():
    """Decisions of the float path with its filters agree with FL on this trace; dropping
    top-k / top-p (a sampler that ignores them) does not."""
    batches = bench.logit_batches_from_trace(_filtered_trace(seed=6), None, None, source="test")
    fl = {bt.gamma: [verify_logit_round(r, bt.weight_bits, bt.uniform_bits).decision() for r in bt.rounds]
          for bt in batches}
    assert _torch_disagreements(batches, fl) <= 1

    def drop_filters(grp):
        for side in ("draft", "target"):
            setattr(grp, f"{side}_top_k", torch.zeros_like(getattr(grp, f"{side}_top_k")))
            setattr(grp, f"{side}_top_p", torch.ones_like(getattr(grp, f"{side}_top_p")))
    assert _torch_disagreements(batches, fl, drop_filters) >= 5


@pytest.mark.parametrize("argv, message", [
    (["bench", "--top-k", "5"], "--top-k set the synthetic --from-logits rounds"),
    (["bench", "--from-logits", "--temperature", "0"], "--temperature 0 is greedy"),
    (["bench", "--from-logits", "--top-p", "0"], "top_p must be"),
    (["bench", "--from-logits", "--min-p", "1.5"], "min-p fraction must lie in [0, 1]"),
])
def test_bench_request_settings_are_checked(argv, message, capsys):
    try:
        rc = main(argv)            # ConfigError: one line, status 2
    except SystemExit as e:        # argparse's own checks of an option's value
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_today_path_rows_sum_to_M_and_keep_the_trace_drafts(logit_batches):
    batches, fl = logit_batches
    M = (1 << 16) - 1
    bad = 0
    for b in batches:
        inp = bench.torch_logit_inputs(b)
        quantized = bench.host_quantize(inp, M)
        for grp, (p, q) in zip(inp.groups, quantized):
            assert p.shape[-1] == q.shape[-1] == b.vocab_size and p.dtype == q.dtype == np.int64
            assert (p >= 0).all() and (q >= 0).all()
            assert (p.sum(-1) == M).all() and (q.sum(-1) == M).all()
            if grp.onehot:   # no softmax: all of M at the draft token
                x = grp.draft_tokens.numpy()
                assert (np.take_along_axis(p, x[..., None], -1)[..., 0] == M).all()
        rb = bench.today_round_batch(b, M)
        assert rb.row_sum == M and rb.num_rounds == b.num_rounds
        for r, lr in zip(rb.rounds, b.rounds):
            assert np.array_equal(r.draft_tokens, lr.draft_tokens) and r.greedy == lr.greedy
        bad += sum(verify_round(r, M, b.uniform_bits).decision() != w for r, w in zip(rb.rounds, fl[b.gamma]))
    assert bad <= 2   # M-rows of the float softmax are not the integer weights; on this trace they agree


def test_logit_rows_and_the_logit_block():
    from hades.cl.logit_model import logit_timed_results
    from hades.cl.timing import TimingConfig
    from hades.config import VerifierConfig
    b = bench.logit_batches_from_trace(_logit_trace(rounds=4, gammas=(2,), seed=1), None, None, "t")[0]
    bc = bench.BenchConfig(hw=VerifierConfig(lanes=4, vocab_max=512, gamma_max=4), repeats=1)
    fl = [verify_logit_round(r, b.weight_bits, b.uniform_bits) for r in b.rounds]
    tokens = sum(r.accepted + 1 for r in fl)

    rows, disagree, block = bench.bench_logit_batch(b, bc)
    by = {r.implementation: r for r in rows}
    assert list(by) == [bench.LOGIT_TORCH_CPU, bench.LOGIT_TORCH_GPU, bench.TODAY_HOST, bench.TODAY_BLOCK,
                        bench.TODAY_TOTAL, bench.LOGIT_BLOCK]
    assert all(r.tokens == tokens for r in rows)
    if not torch.cuda.is_available():
        assert by[bench.LOGIT_TORCH_GPU].seconds is None and by[bench.LOGIT_TORCH_GPU].note == bench.NO_GPU_NOTE
    host, blk, total = (by[n].seconds for n in (bench.TODAY_HOST, bench.TODAY_BLOCK, bench.TODAY_TOTAL))
    assert host > 0 and blk > 0 and total == pytest.approx(host + blk)
    assert set(disagree) == {"torch (a)", "today's path (b)", "logit block (c)"}
    # (c): the CL schedule of the logit block; its decisions are FL's
    c = by[bench.LOGIT_BLOCK]
    model = logit_timed_results(TimingConfig(hw=bc.hw), list(b.rounds))
    cycles = sum(o.result.cycles for o in model)
    assert c.kind == "modeled" and c.seconds == pytest.approx(cycles / bc.clock_hz) and block.cycles == cycles
    assert c.hades_speedup == 1.0 and disagree["logit block (c)"] == 0
    torch_row = by[bench.LOGIT_TORCH_CPU]
    assert torch_row.hades_speedup == pytest.approx(c.tokens_per_s / torch_row.tokens_per_s)
    # the phases: the engine runs DZ/DS and TZ for stochastic model-drafted rounds; the need is
    # every buffered row of the largest round (2 gamma + 1 rows of V bf16 entries at most)
    assert block.input_cycles > 0 and block.target_job_cycles > 0
    assert 0 < block.sram_bytes <= (2 * b.gamma + 1) * (-(-b.vocab_size // 4) * 4) * 2
    assert block.cycles / len(block.results) >= block.input_cycles


def test_bench_from_logits_end_to_end_tiny(tmp_path, capsys):
    out_csv = tmp_path / "logits.csv"
    rc = main(["bench", "--from-logits", "--rounds", "2", "--vocab", "512", "--rtl-check-rounds", "0",
               "--repeats", "2", "--cache-dir", str(tmp_path / "cache"), "--csv", str(out_csv)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "from logits" in text and "SYNTHETIC" in text
    assert bench.NO_GPU_NOTE in text and "End-to-end decode speedup" in text
    assert "Logit block (c) per round" in text
    rows = _read_csv(out_csv)
    assert len(rows) == 3 * 6
    for g in ("2", "4", "8"):
        mine = {r["implementation"]: r for r in rows if r["gamma"] == g}
        assert len({r["tokens"] for r in mine.values()}) == 1
        assert float(mine[bench.LOGIT_BLOCK]["tokens_per_s"]) > 0 and mine[bench.LOGIT_BLOCK]["kind"] == "modeled"
        for name in (bench.LOGIT_TORCH_CPU, bench.TODAY_HOST, bench.TODAY_BLOCK, bench.TODAY_TOTAL):
            assert float(mine[name]["tokens_per_s"]) > 0
        assert f"gamma {g}, of 2 rounds: torch (a)" in text
    assert (tmp_path / "logits_projection.csv").exists()
    # the synthetic v2 rounds came from the trace cache
    assert len(list((tmp_path / "cache").glob("synthetic-v2-stochastic-g*.npz"))) == 3


def test_bench_v2_trace_runs_from_logits_and_bad_input_exits_2(tmp_path, capsys):
    from hades.traces.format import write_trace
    path = tmp_path / "v2.npz"
    write_trace(path, _logit_trace(vocab_size=64, rounds=3, gammas=(2,), seed=2))
    common = ["--rtl-check-rounds", "0", "--repeats", "1", "--cache-dir", str(tmp_path / "cache")]
    # a v2 trace runs from logits by itself; the RTL check confirms the v1 block's cycles of path (b)
    assert main(["bench", "--trace", str(path), "--gammas", "2", "--repeats", "1", "--rtl-check-rounds", "1",
                 "--rtl-backend", "python", "--rtl-lanes", "4", "--lanes", "4", "--vocab-max", "64",
                 "--gamma-max", "4"]) == 0
    out = capsys.readouterr().out
    assert "from logits" in out and "SYNTHETIC" not in out
    assert "RTL check of the logit block (c)" in out and ": OK" in out
    v1 = tmp_path / "v1.npz"
    write_trace(v1, synthetic_trace(SyntheticSpec(vocab_size=64, rounds=2, gammas=(2,))))
    for argv, match in ((["--trace", str(path), "--gammas", "4,8"], "no rounds with gamma in [4, 8]"),
                        (["--trace", str(v1), "--from-logits"], "needs a v2 trace"),
                        (["--from-logits", "--vocab", "64", "--rounds", "1", "--sim-speed"], "--sim-speed")):
        assert main(["bench", *argv, *common]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("hades bench: error:") and match in err, err
