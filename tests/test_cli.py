"""The command line: results, JSON contract, and one clear line + exit 2 on bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hades.cli import main
from hades.traces.synthetic import SyntheticSpec, synthetic_trace
from hades.traces.format import write_trace


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


BAD_ARGS = [
    (["verify", "{trace}", "--level", "xyz"], "unknown level"),
    (["verify", "{trace}", "--lanes", "0"], "lanes must be a power of two"),
    (["verify", "{trace}", "--lanes", "4", "--vocab-max", "64", "--sram-words", "3"], "smaller than one row"),
    (["verify", "{trace}", "--gamma-max", "2"], "exceeds the hardware's gamma_max=2"),
    (["verify", "{trace}", "--vocab-max", "32"], "exceeds the hardware's vocab_max=32"),
    (["verify", "{trace}", "--uniform-bits", "16"], "uniform_bits"),
    (["verify", "{trace}", "--level", "rtl", "--lanes", "4", "--vocab-max", "64", "--gamma-max", "4",
      "--sram-words", "20"], "cannot hold gamma_max=4 draft rows"),
    (["verify", "/nonexistent/t.npz"], "no such trace file"),
    (["verify"], "the following arguments are required"),
]


@pytest.mark.parametrize("argv,message", BAD_ARGS, ids=[m for _, m in BAD_ARGS])
def test_bad_input_exits_2_with_one_line(capsys, small_trace, argv, message):
    argv = [a.format(trace=small_trace) for a in argv]
    rc, out, err = run_cli_exit(capsys, *argv)
    assert rc == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    assert message in lines[0]
    assert "Traceback" not in err


def run_cli_exit(capsys, *argv):
    """run_cli, with argparse's refusals (SystemExit) turned into their exit status."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


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
