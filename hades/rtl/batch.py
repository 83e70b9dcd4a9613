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
from hades.fileio import build_lock
from hades.protocol import round_beat_array, unpack_result
from hades.round import Round, RoundResult

CSRC = Path(__file__).parent / "csrc" / "batch_tb.cpp"


def _build_root() -> Path:
    from hades.paths import BUILD_DIR
    return BUILD_DIR / "batch"


def _block(cfg: VerifierConfig, logits: bool) -> tuple[str, int, int]:
    """(module name, beat bits, message bits) of the probability-row or the logit block, checked."""
    if logits:
        from hades.logit_protocol import LogitLayout
        lay = LogitLayout(cfg)
        lay.require_rtl()
        return lay.module_name(), lay.beat_bits, lay.result_bits
    cfg.require_rtl()
    return cfg.module_name(), cfg.beat_bits, cfg.result_bits


def build_batch_sim(cfg: VerifierConfig, logits: bool = False) -> Path:
    """Compile (once per configuration and source; cached) and return the simulator binary of
    the probability-row block, or with logits of the logit block."""
    if shutil.which("verilator") is None:
        raise HadesError("verilator is not installed (run scripts/setup.sh)")
    name, _, result_bits = _block(cfg, logits)
    root = _build_root() / name
    root.mkdir(parents=True, exist_ok=True)
    # the build is keyed on everything the Verilog is generated from, so a cached binary is
    # reused without re-running the translation
    here = Path(__file__).parent
    sources = sorted(here.glob("*.py")) + [here.parent / "config.py", here.parent / "logit_protocol.py", CSRC]
    key = hashlib.sha256(name.encode() + b"".join(p.read_bytes() for p in sources)).hexdigest()
    binary = root / "sim"
    stamp = root / "sim.key"
    with build_lock(root, "sim"):   # a second process waits for the first's build, then reuses it
        if binary.exists() and stamp.exists() and stamp.read_text() == key:
            return binary
        with tempfile.TemporaryDirectory(dir=root) as work:   # a killed build leaves no partial files
            _compile(cfg, logits, name, result_bits, Path(work), binary, stamp, key)
    return binary


def _compile(cfg: VerifierConfig, logits: bool, name: str, result_bits: int, work: Path, binary: Path,
             stamp: Path, key: str) -> None:
    from hades.rtl.emit import emit_verilog
    vfile = emit_verilog(cfg, work, logits=logits)
    if logits:      # the C++ driver sees one flat beat port; the block takes lane groups
        vfile, name = _flat_beat_wrapper(cfg, name, vfile, work)
    result_words = -(-result_bits // 32)
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


def _flat_beat_wrapper(cfg: VerifierConfig, name: str, vfile: Path, work: Path) -> tuple[Path, str]:
    """A Verilog top around the logit block whose input message is the whole beat in one port
    (recv__msg), sliced into the block's lane groups (LogitLayout.beat_groups, an unpacked array
    port), so that the C++ driver is the same for both blocks. Returns (file, top module name)."""
    from hades.logit_protocol import LogitLayout
    lay = LogitLayout(cfg)
    groups, top = lay.beat_groups, f"{name}_batch"
    slices, pos = [], 0
    for g, bits in enumerate(groups):
        slices.append(f"  assign groups[{g}] = recv__msg[{pos + bits - 1}:{pos}];\n")
        pos += bits
    text = (f"module {top} (\n  input logic clk, input logic reset,\n"
            f"  input logic [{pos - 1}:0] recv__msg, input logic recv__val, output logic recv__rdy,\n"
            f"  output logic [{lay.result_bits - 1}:0] send__msg, output logic send__val, input logic send__rdy\n);\n"
            f"  logic [{groups[0] - 1}:0] groups [0:{len(groups) - 1}];\n" + "".join(slices)
            + f"  {name} block (.clk(clk), .reset(reset), .recv__msg(groups), .recv__val(recv__val),\n"
            f"    .recv__rdy(recv__rdy), .send__msg(send__msg), .send__val(send__val), .send__rdy(send__rdy));\n"
            "endmodule\n")
    assert len(set(groups)) == 1 or len(groups) == 1
    wrapper = work / f"{top}.v"
    wrapper.write_text(vfile.read_text() + "\n" + text)
    return wrapper, top


def _run_messages(binary: Path, beats: np.ndarray, beat_bits: int, result_bits: int, n_messages: int,
                  n_rounds: int, src_stall: float, sink_stall: float, seed: int,
                  max_cycles: int | None = None) -> list[int]:
    """Stream the beats (uint8 [n, bytes]) through the compiled model; the first n_messages
    output messages as ints (max_cycles: default, a bound that suits the probability-row block)."""
    beat_words = -(-beat_bits // 32)
    result_words = -(-result_bits // 32)
    if max_cycles is None:
        max_cycles = len(beats) * (8 if src_stall or sink_stall else 2) + 200 * n_rounds + 100
    header = np.array([len(beats), beat_words, n_messages, int(src_stall * 1e6), int(sink_stall * 1e6),
                       seed & 0xFFFFFFFF, max_cycles & 0xFFFFFFFF, max_cycles >> 32], dtype="<u4")
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        fin.write_bytes(header.tobytes() + beats.tobytes())
        proc = subprocess.run([str(binary), str(fin), str(fout)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise HadesError(f"batch simulation failed ({proc.returncode}): {proc.stderr.strip()}")
        words = np.frombuffer(fout.read_bytes(), dtype="<u4").reshape(-1, result_words + 1)
    return [sum(int(w) << (32 * i) for i, w in enumerate(rec[1:])) for rec in words]


def run_batch(cfg: VerifierConfig, rounds: list[Round], src_stall: float = 0.0, sink_stall: float = 0.0,
              seed: int = 0) -> list[RoundResult]:
    """Simulate the rounds back to back in the compiled model; one RoundResult per round."""
    binary = build_batch_sim(cfg)
    beats = np.concatenate([round_beat_array(cfg, r) for r in rounds])
    msgs = _run_messages(binary, beats, cfg.beat_bits, cfg.result_bits, len(rounds), len(rounds),
                         src_stall, sink_stall, seed)
    return [unpack_result(cfg, m, timed=True) for m in msgs]


def run_logit_batch(cfg: VerifierConfig, rounds, src_stall: float = 0.0, sink_stall: float = 0.0,
                    seed: int = 0, max_cycles: int | None = None):
    """The logit block's rounds (LogitRound) in the compiled model: one LogitRoundOutput each
    (the draft tokens it returned, then its result). max_cycles: hades.sim.run's bound."""
    from hades.logit_protocol import LogitLayout, group_messages, model_drafts, round_beats, unpack_message
    binary = build_batch_sim(cfg, logits=True)
    lay = LogitLayout(cfg)
    nbytes = 4 * -(-lay.beat_bits // 32)
    rounds = list(rounds)
    ints = [b for r in rounds for b in round_beats(cfg, r)]
    beats = np.frombuffer(b"".join(b.to_bytes(nbytes, "little") for b in ints), np.uint8).reshape(-1, nbytes)
    n_messages = len(rounds) + sum(r.gamma for r in rounds if model_drafts(r))
    msgs = _run_messages(binary, beats, lay.beat_bits, lay.result_bits, n_messages, len(rounds),
                         src_stall, sink_stall, seed, max_cycles)
    return group_messages([unpack_message(cfg, m, timed=True) for m in msgs])
