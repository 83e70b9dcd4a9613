"""The command line: results, JSON contract, and one clear line + exit 2 on bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hades.cli import main
from hades.traces.synthetic import SyntheticSpec, synthetic_trace
from hades.traces.format import write_trace

REPO = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def small_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "t.npz"
    write_trace(path, synthetic_trace(SyntheticSpec(vocab_size=60, rounds=6, gammas=(2, 4), seed=3)))
    return path


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("cli_level", ["fl", "cl"])
def test_verify_json_contract(capsys, small_trace, cli_level):
    rc, out, err = run_cli(capsys, "verify", small_trace, "--level", cli_level, "--json", "--lanes", "4",
                           "--vocab-max", "64", "--gamma-max", "4")
    assert rc == 0, err
    doc = json.loads(out)
    assert set(doc) >= {"level", "config", "rounds", "summary"}
    assert doc["level"] == cli_level and len(doc["rounds"]) == 6
    assert all(r["match"] for r in doc["rounds"])
    assert ("cycles" in doc["rounds"][0]) == (cli_level == "cl")
    assert doc["summary"]["mismatches"] == 0


def test_verify_rtl_agrees_with_cl(capsys, small_trace):
    args = ["--json", "--lanes", "4", "--vocab-max", "64", "--gamma-max", "4"]
    rc, out_cl, err = run_cli(capsys, "verify", small_trace, "--level", "cl", *args)
    assert rc == 0, err
    rc, out_rtl, err = run_cli(capsys, "verify", small_trace, "--level", "rtl", *args)
    assert rc == 0, err
    cl, rtl = json.loads(out_cl)["rounds"], json.loads(out_rtl)["rounds"]
    assert [(r["accepted"], r["token"], r["cycles"], r["latency"]) for r in cl] == \
           [(r["accepted"], r["token"], r["cycles"], r["latency"]) for r in rtl]


# Bad arguments and files: the one table in harness/bad_inputs.py (tests/test_bad_input.py).


def test_corrupt_trace_file_via_console_script(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    proc = subprocess.run([sys.executable, "-m", "hades.cli", "verify", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "not a readable .npz trace" in proc.stderr


def test_verify_reports_disagreement_with_trace(capsys, tmp_path):
    tr = synthetic_trace(SyntheticSpec(vocab_size=40, rounds=3, gammas=(3,), seed=4))
    tr.expected_token[1] = (tr.expected_token[1] + 1) % 40    # a producer bug the verifier must expose
    path = write_trace(tmp_path / "wrong.npz", tr)
    rc, out, err = run_cli(capsys, "verify", path, "--level", "fl")
    assert rc == 1 and "MISMATCH" in out and "1 round(s) differ" in err


def test_emit_verilog_cli(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "emit-verilog", "--out", tmp_path, "--lanes", "4", "--vocab-max", "64",
                           "--gamma-max", "2")
    assert rc == 0, err
    assert (tmp_path / "Verifier_L4_V64_G2_W16_U32_D32.v").stat().st_size > 1000
    assert not list(tmp_path.glob(".*.tmp"))


# ---- every output path is checked before any work ------------------------------------------------
# The expensive step of each command is replaced by a function that fails the test if it runs:
# an unusable output must be refused before it (no timing involved).

def _forbidden(*args, **kwargs):
    raise AssertionError("the command started its work before checking its output paths")


LONG = "x" * 300 + ".csv"                       # longer than NAME_MAX (255 on every common file system)
PROJECTION_TOO_LONG = "b" * 245 + ".csv"        # fits, but bench also writes <stem>_projection.csv

OUTPUT_CASES = [
    # (id, argv with {dir} = an existing folder, {file} = a regular file, {trace}; work to forbid; message)
    ("trace -o dir", ["trace", "--synthetic", "-o", "{dir}"], ["hades.cli.trace._synthetic"], "it is a directory"),
    ("trace -o dir (models)", ["trace", "-o", "{dir}"], ["hades.cli.trace._from_models"], "it is a directory"),
    ("trace -o too long", ["trace", "--synthetic", "-o", "{dir}/" + LONG], ["hades.cli.trace._synthetic"],
     "NAME_MAX"),
    ("trace -o unwritable", ["trace", "--synthetic", "-o", "/proc/hades/t.npz"], ["hades.cli.trace._synthetic"],
     "cannot create folder /proc/hades"),
    ("sweep --out dir", ["sweep", "--source", "synthetic", "--out", "{dir}"],
     ["hades.cli.sweep.run_sweep", "hades.cli.sweep.real_unavailable_reason"], "it is a directory"),
    ("sweep --out below a file", ["sweep", "--source", "synthetic", "--out", "{file}/x.csv"],
     ["hades.cli.sweep.run_sweep"], "is not a directory"),
    ("sweep --out too long", ["sweep", "--source", "synthetic", "--out", "{dir}/" + LONG],
     ["hades.cli.sweep.run_sweep"], "NAME_MAX"),
    ("sweep --cache-dir file", ["sweep", "--source", "synthetic", "--out", "{dir}/x.csv", "--cache-dir", "{file}"],
     ["hades.cli.sweep.run_sweep"], "it is not a directory"),
    ("decode --csv dir", ["decode", "--csv", "{dir}"], ["hades.cli.decode._run"], "it is a directory"),
    ("bench --csv dir", ["bench", "--csv", "{dir}"], ["hades.cli.bench._load_batches"], "it is a directory"),
    ("bench --csv projection too long", ["bench", "--csv", "{dir}/" + PROJECTION_TOO_LONG],
     ["hades.cli.bench._load_batches"], "NAME_MAX"),
    ("bench --plot dir", ["bench", "--plot", "{dir}"], ["hades.cli.bench._load_batches"], "it is a directory"),
    ("bench --sim-csv dir", ["bench", "--sim-speed", "--sim-csv", "{dir}"], ["hades.cli.bench._load_batches"],
     "it is a directory"),
    ("plot --out-dir file", ["plot", "{file}", "--out-dir", "{file}"],
     ["hades.studies.sweep.read_csv", "hades.studies.plots.plot_sweep"], "it is not a directory"),
    ("emit-verilog --out file", ["emit-verilog", "--out", "{file}", "--lanes", "4", "--vocab-max", "64"],
     ["hades.rtl.emit.emit_verilog"], "it is not a directory"),
    ("synth --csv dir", ["synth", "--csv", "{dir}"],
     ["hades.studies.synth.synthesize", "hades.studies.synth.yosys_available"], "it is a directory"),
    ("synth --work-dir file", ["synth", "--work-dir", "{file}"],
     ["hades.studies.synth.synthesize", "hades.studies.synth.yosys_available"], "it is not a directory"),
    ("demo --out file", ["demo", "--out", "{file}", "--quick"], ["hades.cli.demo._step"], "it is not a directory"),
    ("verify --vcd dir", ["verify", "{trace}", "--level", "rtl", "--rtl-backend", "python", "--lanes", "4",
                          "--vocab-max", "64", "--gamma-max", "4", "--vcd", "{dir}"],
     ["hades.cli.verify.read_trace"], "it is a directory"),
    ("verify --vcd batch", ["verify", "{trace}", "--level", "rtl", "--rtl-backend", "batch", "--lanes", "4",
                            "--vocab-max", "64", "--gamma-max", "4", "--vcd", "{dir}/w.vcd"],
     ["hades.cli.verify.read_trace"], "the batch backend cannot dump them"),
    ("verify --vcd verilator", ["verify", "{trace}", "--level", "rtl", "--lanes", "4", "--vocab-max", "64",
                                "--gamma-max", "4", "--vcd", "{dir}/w.vcd"],
     ["hades.cli.verify.read_trace"], "the verilator backend cannot dump them"),
    ("verify --vcd fl", ["verify", "{trace}", "--level", "fl", "--vcd", "{dir}/w.vcd"],
     ["hades.cli.verify.read_trace"], "level fl cannot dump them"),
    ("verify --vcd not .vcd", ["verify", "{trace}", "--level", "rtl", "--rtl-backend", "python", "--lanes", "4",
                               "--vocab-max", "64", "--gamma-max", "4", "--vcd", "{dir}/w.txt"],
     ["hades.cli.verify.read_trace"], "must be named *.vcd"),
]


@pytest.mark.parametrize("argv, forbid, message", [c[1:] for c in OUTPUT_CASES], ids=[c[0] for c in OUTPUT_CASES])
def test_unusable_output_is_refused_before_any_work(capsys, monkeypatch, tmp_path, small_trace, argv, forbid,
                                                    message):
    import importlib
    for target in forbid:
        module, name = target.rsplit(".", 1)
        monkeypatch.setattr(importlib.import_module(module), name, _forbidden)
    folder = tmp_path / "existing"
    folder.mkdir()
    (tmp_path / "file").write_text("")
    argv = [a.format(dir=folder, file=tmp_path / "file", trace=small_trace) for a in argv]
    rc, out, err = run_cli(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert message in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "file"]
    assert list(folder.iterdir()) == []


def test_verify_vcd_is_written_exactly_where_asked(capsys, tmp_path):
    tiny = write_trace(tmp_path / "tiny.npz", synthetic_trace(SyntheticSpec(vocab_size=8, rounds=1, gammas=(1,))))
    vcd = tmp_path / "waves" / "run.vcd"      # a folder that does not exist yet
    rc, out, err = run_cli(capsys, "verify", tiny, "--level", "rtl", "--rtl-backend", "python",
                           "--lanes", "4", "--vocab-max", "8", "--gamma-max", "1", "--vcd", vcd)
    assert rc == 0, err
    assert vcd.read_text().startswith("$date")
    assert sorted(p.name for p in vcd.parent.iterdir()) == ["run.vcd"]


def test_run_rounds_refuses_a_vcd_the_batch_backend_would_drop(monkeypatch, small_trace):
    import hades.rtl.batch
    from hades.config import VerifierConfig
    from hades.errors import ConfigError
    from hades.sim.run import SimOptions, run_rounds
    from hades.traces.format import read_trace
    monkeypatch.setattr(hades.rtl.batch, "run_batch", _forbidden)
    cfg = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)
    rounds = list(read_trace(small_trace).rounds())
    with pytest.raises(ConfigError, match="the batch backend cannot dump them"):
        run_rounds("rtl", cfg, rounds, SimOptions(backend="batch", vcd="w.vcd"))


class _Config:
    """What pytest_configure reads of pytest's config."""
    def __init__(self, **options):
        self.options = {"vcd_dir": None, "rtl_backend": "verilator", "level": None, **options}

    def getoption(self, name, default=None):
        return self.options.get(name, default)


@pytest.mark.parametrize("options, message", [
    ({"rtl_backend": "verilator"}, "the verilator backend cannot dump them"),
    ({"rtl_backend": "batch"}, "the batch backend cannot dump them"),
    ({"rtl_backend": "python", "level": ["fl", "cl"]}, "--level fl cl dumps none"),
    ({"rtl_backend": "python", "vcd_dir": "{file}"}, "it is not a directory"),
])
def test_pytest_vcd_dir_that_cannot_be_honoured_is_refused_at_configure(tmp_path, options, message):
    from harness import pytest_plugin
    (tmp_path / "file").write_text("")
    options = {"vcd_dir": str(tmp_path / "vcd"), **options}
    options["vcd_dir"] = options["vcd_dir"].format(file=tmp_path / "file")
    with pytest.raises(pytest.UsageError, match="--vcd-dir") as exc:
        pytest_plugin.pytest_configure(_Config(**options))
    assert message in str(exc.value)
    pytest_plugin.pytest_configure(_Config(vcd_dir=str(tmp_path / "vcd"), rtl_backend="python"))   # usable


def test_pytest_vcd_dir_with_the_default_backend_stops_the_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q",
                           "--vcd-dir", str(tmp_path / "vcd"), "tests/test_fileio.py"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr      # pytest's usage-error status
    assert "--vcd-dir" in proc.stderr and "the verilator backend cannot dump them" in proc.stderr
