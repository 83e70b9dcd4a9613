"""Batch RTL simulation: the translated Verilog of a configuration, compiled by Verilator
together with a C++ driver (csrc/batch_tb.cpp) that streams every beat and collects every
result inside the Verilated model, with no Python per cycle.

This is the same Verilog that `--level rtl` co-simulates through pymtl3's Verilator import,
only driven from C++; tests/test_rtl.py checks that both give identical results and cycle
counts. Use it for long runs (full-vocabulary traces, fuzzing): it runs millions of cycles
per second where ticking from Python runs about a thousand.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from hades.config import VerifierConfig
from hades.errors import HadesError
from hades.protocol import round_beat_array, unpack_result
from hades.round import Round, RoundResult

CSRC = Path(__file__).parent / "csrc" / "batch_tb.cpp"


def _build_root() -> Path:
    from hades.paths import BUILD_DIR
    return BUILD_DIR / "batch"


def build_batch_sim(cfg: VerifierConfig) -> Path:
    """Compile (once per configuration and source; cached) and return the simulator binary."""
    if shutil.which("verilator") is None:
        raise HadesError("verilator is not installed (run scripts/setup.sh)")
    cfg.require_rtl()
    name = cfg.module_name()
    root = _build_root() / name
    root.mkdir(parents=True, exist_ok=True)
    # the build is keyed on everything the Verilog is generated from, so a cached binary is
    # reused without re-running the translation
    sources = sorted(Path(__file__).parent.glob("*.py")) + [Path(__file__).parents[1] / "config.py", CSRC]
    key = hashlib.sha256(name.encode() + b"".join(p.read_bytes() for p in sources)).hexdigest()
    binary = root / "sim"
    stamp = root / "sim.key"
    if binary.exists() and stamp.exists() and stamp.read_text() == key:
        return binary
    with tempfile.TemporaryDirectory(dir=root) as work:   # concurrent builds never share files
        _compile(cfg, Path(work), binary, stamp, key)
    return binary


def _compile(cfg: VerifierConfig, work: Path, binary: Path, stamp: Path, key: str) -> None:
    from hades.rtl.emit import emit_verilog
    name = cfg.module_name()
    vfile = emit_verilog(cfg, work)
    result_words = -(-cfg.result_bits // 32)
    # Verilator escapes the '__' of pymtl3's port names (recv__msg -> recv___05Fmsg)
    ports = "".join(f"#define {ifc.upper()}_{sig.upper()} {ifc}___05F{sig}\n"
                    for ifc in ("recv", "send") for sig in ("msg", "val", "rdy"))
    (work / "batch_top.h").write_text(
        f'#include "V{name}.h"\n#define TOP_CLASS V{name}\n#define RESULT_WORDS {result_words}\n{ports}')
    obj = work / "obj_dir"
    cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
           "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", name, "-Mdir", str(obj),
           "-CFLAGS", f"-O2 -std=c++17 -I{work}", "-j", str(min(2, os.cpu_count() or 1)),
           "-o", "sim", str(CSRC), str(vfile)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HadesError(f"verilator build of the batch simulator failed:\n{proc.stderr[-3000:]}")
    os.replace(obj / "sim", binary)      # atomic: a running simulation keeps its old inode
    stamp.write_text(key)


def run_batch(cfg: VerifierConfig, rounds: list[Round], src_stall: float = 0.0, sink_stall: float = 0.0,
              seed: int = 0) -> list[RoundResult]:
    """Simulate the rounds back to back in the compiled model; one RoundResult per round."""
    binary = build_batch_sim(cfg)
    beat_words = -(-cfg.beat_bits // 32)
    result_words = -(-cfg.result_bits // 32)
    beats = np.concatenate([round_beat_array(cfg, r) for r in rounds])
    max_cycles = len(beats) * (8 if src_stall or sink_stall else 2) + 200 * len(rounds) + 100
    header = np.array([len(beats), beat_words, len(rounds), int(src_stall * 1e6), int(sink_stall * 1e6),
                       seed & 0xFFFFFFFF, max_cycles & 0xFFFFFFFF, max_cycles >> 32], dtype="<u4")
    payload = beats.tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        fin.write_bytes(header.tobytes() + payload)
        proc = subprocess.run([str(binary), str(fin), str(fout)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise HadesError(f"batch simulation failed ({proc.returncode}): {proc.stderr.strip()}")
        words = np.frombuffer(fout.read_bytes(), dtype="<u4").reshape(-1, result_words + 1)
    results = []
    for rec in words:
        msg = sum(int(w) << (32 * i) for i, w in enumerate(rec[1:]))
        results.append(unpack_result(cfg, msg, timed=True))
    return results
