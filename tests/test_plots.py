"""`hades plot` and hades.studies.plots: every figure is written, non-empty, from a small sweep CSV."""
from __future__ import annotations

import csv
from dataclasses import replace

import pytest

from hades import cli
from hades.studies.plots import plot_sweep
from hades.studies.sweep import SweepSpec, TimingSettings, read_csv, run_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPEC = SweepSpec(gammas=(1, 2, 4), sram_kib=(2, 4, 8), lanes=(4, 16), rounds=6, source="synthetic",
                 vocab_size=1024, seed=1)
FIGURES = ("tokens_per_s_vs_gamma", "tokens_per_s_vs_sram", "cycles_by_phase", "acceptance_vs_gamma")


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    out = d / "sweep.csv"
    run_sweep(SPEC, out, jobs=1, cache_dir=d / "cache")
    return out


def _decode_csv(path, prompt_sets=("chat",)):
    """A small table in the format `hades decode --csv` writes, one block per prompt set."""
    from hades.studies.decode import CSV_FIELDS
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for (g, tps, rounds), name in ((row, name) for name in prompt_sets
                                       for row in ((0, 20.0, 96), (2, 26.0, 60), (4, 24.0, 44))):
            seconds = 96 / tps
            w.writerow({"prompt_set": name, "gamma": g, "prompts": 3, "new_tokens": 96, "rounds": rounds, "seconds": seconds,
                        "tokens_per_s": tps, "speedup": tps / 20.0, "acceptance": "" if g == 0 else 0.4,
                        "tokens_per_round": 96 / rounds, "draft_share": 0.0 if g == 0 else 0.3,
                        "target_share": 0.6, "verification_share": 0.1, "other_share": 0.3 if g == 0 else 0.0,
                        "draft_forward_s": 0.0, "draft_rows_s": 0.0, "target_forward_s": 0.6 * seconds,
                        "target_rows_s": 0.05 * seconds, "verify_s": 0.05 * seconds, "other_s": 0.0})
    return path


def _assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000, f"{path} is not a real figure"


def test_plot_sweep_writes_every_figure(sweep_csv, tmp_path):
    paths = plot_sweep(read_csv(sweep_csv), tmp_path / "figs")
    assert sorted(p.stem for p in paths) == sorted(FIGURES)
    for p in paths:
        _assert_png(p)
    assert not list((tmp_path / "figs").glob(".*")), "atomic writes leave no temporary files"


def test_cli_plot_with_a_decode_table(sweep_csv, tmp_path, capsys):
    decode = _decode_csv(tmp_path / "decode.csv")
    rc = cli.main(["plot", str(sweep_csv), "--out-dir", str(tmp_path / "out"), "--decode-csv", str(decode)])
    assert rc == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == len(FIGURES) + 1
    _assert_png(tmp_path / "out" / "decode_speedup_vs_gamma.png")


def test_a_decode_table_of_several_prompt_sets_plots_its_first_set(tmp_path):
    from hades.studies.plots import parse_decode_rows, read_decode_csv
    rows = read_decode_csv(_decode_csv(tmp_path / "two.csv", ("chat", "grounded")))
    assert [r["prompt_set"] for r in rows] == ["chat"] * 3
    assert [r["gamma"] for r in parse_decode_rows(rows)] == [0, 2, 4]


def test_cli_plot_separates_families(sweep_csv, tmp_path, capsys):
    """Two clocks are two families: each gets its own, suffixed, set of figures."""
    other = tmp_path / "fast.csv"
    run_sweep(replace(SPEC, gammas=(1, 2), timing=TimingSettings(clock_hz=2e9)), other, jobs=1,
              cache_dir=tmp_path / "cache")
    assert cli.main(["plot", str(sweep_csv), str(other), "--out-dir", str(tmp_path / "out")]) == 0
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert len(pngs) == 2 * len(FIGURES)
    assert sum("clk2e+09" in p.name for p in pngs) == len(FIGURES)


@pytest.mark.parametrize("make_args, message", [
    (lambda d, s: [str(d / "missing.csv")], "cannot read"),
    (lambda d, s: [str(s), "--decode-csv", str(s)], "not a `hades decode --csv` table"),
])
def test_cli_plot_bad_input_exits_2(sweep_csv, tmp_path, capsys, make_args, message):
    rc = cli.main(["plot", *make_args(tmp_path, sweep_csv), "--out-dir", str(tmp_path / "out")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and message in err[0], err


def test_each_block_is_its_own_family_and_says_so(sweep_csv, tmp_path, monkeypatch):
    """SPEC sweeps the logit block (the default); the probability block on the same grid is a
    second family. Every title names the block; the knee star sits where no row is off chip."""
    import hades.studies.plots as plots
    v1 = tmp_path / "v1.csv"
    run_sweep(replace(SPEC, block="probability"), v1, jobs=1, cache_dir=tmp_path / "cache")
    titles = {}
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (titles.setdefault(path.name, fig._suptitle.get_text()),
                                                            real_save(fig, path))[1])
    rows = read_csv(sweep_csv) + read_csv(v1)
    paths = plot_sweep(rows, tmp_path / "out")
    assert len(paths) == 2 * len(FIGURES)
    for p in paths:
        block = "logit" if "-logit-" in p.name else "probability"
        assert p.name.split("-")[1] == block and f"{block} block" in titles[p.name], (p.name, titles[p.name])
    fams = {f.value("block"): f for f in plots.families(rows)}
    assert "Gaussian-logit" in fams["logit"].models_text() and "Zipf" in fams["probability"].models_text()
    assert plots._row_kib(fams["logit"], 8) == 2 == 2 * plots._row_kib(fams["probability"], 8)   # bf16 rows


def test_logit_sweep_over_lanes_plots_tokens_vs_lanes_with_the_bandwidth_limit(tmp_path):
    """Three or more lane counts (up to 256) add the lanes figure: tokens/s vs L and the input
    bandwidth the block needs against HBM's; the CL model's tokens/s never fall as L grows."""
    from hades.studies.plots import HBM_BYTES_PER_S, plot_tokens_vs_lanes  # noqa: F401 (the figure's names)
    out = tmp_path / "lanes.csv"
    run_sweep(replace(SPEC, gammas=(2,), sram_kib=(64,), lanes=(16, 64, 256)), out, jobs=1, cache_dir=tmp_path / "c")
    rows = read_csv(out)
    tps = [r["tokens_per_s"] for r in sorted(rows, key=lambda r: r["lanes"])]
    assert tps == sorted(tps) and tps[0] < tps[-1]
    paths = plot_sweep(rows, tmp_path / "figs")
    assert sorted(p.stem for p in paths) == sorted(FIGURES + ("tokens_per_s_vs_lanes",))
    for p in paths:
        _assert_png(p)
