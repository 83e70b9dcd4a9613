"""hades bench / hades synth: the torch baseline decides like the FL model where floats are
safely away from a decision boundary, and both commands run end to end on tiny configurations
(shape and sanity of the results, not speed)."""
from __future__ import annotations

import csv
import shutil

import pytest
import torch

from hades.studies import bench
from hades.cli import main
from hades.fl.verifier import verify_round
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
               "--csv", str(out_csv)])
    assert rc == 0, capsys.readouterr().err
    (row,) = _read_csv(out_csv)
    cells, ffs, levels = int(row["cells"]), int(row["flip_flops"]), int(row["longest_path_levels"])
    assert 0 < ffs < cells and levels > 2
    # the draft-row buffer stays a memory (not blasted into flops) and is all there
    assert int(row["memory_bits"]) >= int(row["sram_bits"]) == 2 * 32 * 8
    assert ffs < int(row["sram_bits"]) + 500
    (energy,) = _read_csv(tmp_path / "synth_energy.csv")
    assert float(energy["total_nj"]) > 0 and "ESTIMATE" in energy["note"]
