"""The bad-input table: every way bad input enters, the one-line message it produces, and
how it is refused (exit 2 from the CLI, a typed exception from the API).

tests/test_bad_input.py runs every row; `python -m harness.bad_inputs docs/BAD_INPUT.md`
regenerates the documented table from the messages actually produced.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import socket
import struct
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hades.errors import HadesError
from hades.traces.synthetic import LogitSyntheticSpec, SyntheticSpec, synthetic_logit_trace, synthetic_trace
from hades.traces.format import ARRAY_KEYS, FORMAT, MAX_META_CHARS, MAX_META_DEPTH, write_trace

SMALL_HW = ["--lanes", "4", "--vocab-max", "64", "--gamma-max", "4"]


def good_arrays() -> dict:
    tr = synthetic_trace(SyntheticSpec(vocab_size=40, rounds=3, gammas=(2, 4), seed=3))
    d = {k: getattr(tr, k).copy() for k in ARRAY_KEYS}
    d.update(format=np.array(FORMAT), mode=np.array(tr.mode), vocab_size=np.array(tr.vocab_size),
             row_sum=np.array(tr.row_sum), prob_bits=np.array(tr.prob_bits),
             uniform_bits=np.array(tr.uniform_bits), meta=np.array(json.dumps(tr.meta)))
    return d


def _npz(tmp: Path, mutate: Callable[[dict], None], arrays: Callable[[], dict] = good_arrays,
         name: str = "bad.npz") -> str:
    """A trace file of the good arrays (v1 by default) after mutate(arrays), written as is."""
    d = arrays()
    mutate(d)
    path = tmp / name
    np.savez(path, **d)
    return str(path)


def _good_file(tmp: Path) -> str:
    path = tmp / "good.npz"
    write_trace(path, synthetic_trace(SyntheticSpec(vocab_size=40, rounds=3, gammas=(2, 4), seed=3)))
    return str(path)


def _truncated(tmp: Path) -> str:
    good = Path(_good_file(tmp))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    return str(good)


def _garbage(tmp: Path) -> str:
    p = tmp / "garbage.npz"
    p.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    return str(p)


# ---- archives built member by member (attacks on the container rather than the arrays) -------

def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def zip_members(path: Path, members: dict, compression=zipfile.ZIP_DEFLATED) -> str:
    """Write an archive of {member name: bytes} (a list of pairs to repeat a name)."""
    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # zipfile warns about a duplicate name; that is the point
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in items:
                z.writestr(name, data)
    return str(path)


def good_members() -> dict:
    return {f"{k}.npy": npy_bytes(v) for k, v in good_arrays().items()}


def _archive(tmp: Path, mutate: Callable[[dict], object]) -> str:
    m = good_members()
    m = mutate(m) or m
    return zip_members(tmp / "bad.npz", m)


def patch_central_directory(path: str, member: str, offset: int, fmt: str, value) -> None:
    """Overwrite a field of one member's central-directory entry (and, for the flag bits, of
    its local header too) in place."""
    data = bytearray(Path(path).read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info, cd = z.getinfo(member), z.start_dir
    while True:   # walk the central directory to the member's entry
        assert data[cd: cd + 4] == b"PK\x01\x02", "central directory entry expected"
        n_name, n_extra, n_comment = struct.unpack_from("<HHH", data, cd + 28)
        if data[cd + 46: cd + 46 + n_name] == member.encode():
            break
        cd += 46 + n_name + n_extra + n_comment
    struct.pack_into(fmt, data, cd + offset, value)
    if offset == 8:   # general-purpose flags live at offset 6 of the local header
        struct.pack_into(fmt, data, info.header_offset + 6, value)
    Path(path).write_bytes(bytes(data))


def _plain_npy(tmp: Path) -> str:
    path = tmp / "bad.npz"
    with open(path, "wb") as f:
        np.save(f, good_arrays()["target_probs"])
    return str(path)


def _encrypted(tmp: Path) -> str:
    path = zip_members(tmp / "bad.npz", good_members())
    patch_central_directory(path, "gamma.npy", 8, "<H", 0x1)
    return path


def _huge_directory_size(tmp: Path) -> str:
    path = zip_members(tmp / "bad.npz", good_members())
    patch_central_directory(path, "gamma.npy", 24, "<I", 0xFFFF_FFF0)   # uncompressed size: ~4 GB
    return path


def _huge_header_shape(m: dict) -> None:
    # the header claims 3 x 5 x 10^12 entries (30 TB); the member holds the real 3 x 5 x 40
    data = good_arrays()["target_probs"]
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(data.dtype),
                                               "fortran_order": False, "shape": (3, 5, 10**12)})
    m["target_probs.npy"] = buf.getvalue() + data.tobytes()


def _duplicate(m: dict) -> list:
    return list(m.items()) + [("gamma.npy", m["gamma.npy"])]


def _many_members(m: dict) -> None:
    for i in range(300):
        m[f"extra{i}.npy"] = npy_bytes(np.zeros(1, np.uint8))


def _set(key, value):
    def mutate(d):
        d[key] = value(d) if callable(value) else value
    return mutate


def _drop(key):
    return lambda d: d.pop(key)


def _poke(key, index, value):
    def mutate(d):
        d[key][index] = value
    return mutate


def _row_off_by_one(d):
    d["target_probs"][1, 0, 0] += 1


def _config(**kwargs):
    def call():
        from hades.config import VerifierConfig
        VerifierConfig(**kwargs)
    return call


def _quantize(values):
    def call():
        from hades.numerics import quantize_rows
        quantize_rows(np.array(values, dtype=float), 65535)
    return call


@dataclass(frozen=True)
class BadInput:
    name: str
    where: str                          # "trace file", "CLI argument", "CSV file", "output", "API", "model"
    make: Callable[[Path], object]      # -> argv list (CLI) or a callable (API)
    expect: str                         # fragment of the one-line message
    hold: Callable[[Path], object] | None = None   # -> a context manager held while the case runs


def _verify(path_fn, *extra):
    return lambda tmp: ["verify", path_fn(tmp), *extra]


def _fifo(tmp: Path) -> str:
    path = tmp / "pipe"
    os.mkfifo(path)
    return str(path)


def _socket(tmp: Path) -> str:
    path = tmp / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    return str(path)


def _file(tmp: Path) -> str:
    path = tmp / "file"
    path.write_text("")
    return str(path)


def _dir_link(tmp: Path) -> str:
    (tmp / "to-dir").symlink_to(tmp)
    return str(tmp / "to-dir")


TINY_SWEEP = ["sweep", "--source", "synthetic", "--vocab", "256", "--gammas", "1", "--sram-kib", "1",
              "--lanes", "4", "--rounds", "1", "--jobs", "1", "--no-progress"]


def _sweep_out(tmp: Path, out) -> list[str]:
    return [*TINY_SWEEP, "--cache-dir", str(tmp / "cache"), "--out", str(out)]


def _held_lock(tmp: Path):
    from hades.fileio import output_lock
    return output_lock(tmp / "shared.csv")   # this process is the other writer


TABLE: list[BadInput] = [
    BadInput("trace file does not exist", "trace file", lambda t: ["verify", str(t / "missing.npz")], "no such trace file"),
    BadInput("truncated .npz", "trace file", _verify(_truncated), "not a readable .npz trace"),
    BadInput("corrupt .npz (garbage bytes)", "trace file", _verify(_garbage), "not a readable .npz trace"),
    BadInput("missing key", "trace file", _verify(lambda t: _npz(t, _drop("target_probs"))), "missing key 'target_probs'"),
    BadInput("wrong format tag", "trace file", _verify(lambda t: _npz(t, _set("format", np.array("other/9")))), "key 'format'"),
    BadInput("float probabilities (wrong dtype)", "trace file",
             _verify(lambda t: _npz(t, _set("target_probs", lambda d: d["target_probs"].astype(np.float32)))),
             "key 'target_probs': expected unsigned integer dtype"),
    BadInput("wrong shape (V differs between keys)", "trace file",
             _verify(lambda t: _npz(t, _set("draft_probs", lambda d: d["draft_probs"][:, :, :-1]))),
             "key 'draft_probs': expected shape"),
    BadInput("row does not sum to M", "trace file", _verify(lambda t: _npz(t, _row_off_by_one)), "row sums to"),
    BadInput("token id >= V", "trace file", _verify(lambda t: _npz(t, _poke("draft_tokens", (0, 0), 40))),
             "token id 40 outside 0..39"),
    BadInput("gamma > G of the file", "trace file", _verify(lambda t: _npz(t, _poke("gamma", 0, 5))),
             "gamma 5 outside 0..4"),
    BadInput("uniform wider than U", "trace file",
             _verify(lambda t: _npz(t, lambda d: (d.__setitem__("uniform_bits", np.array(16)),))),
             "uniform wider than uniform_bits=16"),
    BadInput("draft token with zero draft probability", "trace file",
             _verify(lambda t: _npz(t, _zero_px)), "zero draft probability"),
    BadInput("meta is not JSON", "trace file", _verify(lambda t: _npz(t, _set("meta", np.array("{oops"))))
             , "key 'meta': not valid JSON"),
    BadInput("plain .npy renamed .npz", "trace file", _verify(_plain_npy), "a plain .npy array, not an .npz"),
    BadInput("archive member is not an .npy array", "trace file",
             _verify(lambda t: _archive(t, lambda m: m.__setitem__("gamma.npy", b"not an npy file"))),
             "key 'gamma': the archive member is not an .npy array"),
    BadInput("object (pickled) array", "trace file",
             _verify(lambda t: _npz(t, _set("meta", np.array([{"a": 1}], dtype=object)))),
             "key 'meta': object arrays (pickles) are not read"),
    BadInput("encrypted archive member", "trace file", _verify(_encrypted), "key 'gamma': the archive member is encrypted"),
    BadInput("unsupported compression method", "trace file",
             _verify(lambda t: zip_members(t / "bad.npz", good_members(), zipfile.ZIP_BZIP2)),
             "compression method 12"),
    BadInput("npy header claims a gigantic shape", "trace file", _verify(lambda t: _archive(t, _huge_header_shape)),
             "key 'target_probs': the .npy header declares shape (3, 5, 1000000000000)"),
    BadInput("zip directory claims a gigantic uncompressed size", "trace file", _verify(_huge_directory_size),
             "more than deflate can hold"),
    BadInput("key stored twice in the archive", "trace file", _verify(lambda t: _archive(t, _duplicate)),
             "key 'gamma': stored more than once"),
    BadInput("too many archive members", "trace file", _verify(lambda t: _archive(t, _many_members)),
             "more than the 256 a trace may have"),
    BadInput("meta nested too deeply", "trace file",
             _verify(lambda t: _npz(t, _set("meta", np.array('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")))),
             f"more than the {MAX_META_DEPTH} the format allows"),
    BadInput("meta too long", "trace file",
             _verify(lambda t: _npz(t, _set("meta", np.array(json.dumps({"text": "x" * MAX_META_CHARS}))))),
             f"more than the {MAX_META_CHARS} the format allows"),
    BadInput("gamma above the hardware's gamma_max", "CLI argument", _verify(_good_file, "--gamma-max", "2"),
             "exceeds the hardware's gamma_max=2"),
    BadInput("vocabulary above the hardware's vocab_max", "CLI argument", _verify(_good_file, "--vocab-max", "32"),
             "exceeds the hardware's vocab_max=32"),
    BadInput("trace U differs from the hardware's U", "CLI argument", _verify(_good_file, "--uniform-bits", "24"),
             "differs from the hardware's uniform_bits=24"),
    BadInput("zero lanes", "CLI argument", _verify(_good_file, "--lanes", "0"), "lanes must be a power of two"),
    BadInput("SRAM smaller than one row", "CLI argument", _verify(_good_file, *SMALL_HW, "--sram-words", "3"),
             "smaller than one row"),
    BadInput("RTL buffer cannot hold gamma_max draft rows", "CLI argument",
             _verify(_good_file, "--level", "rtl", *SMALL_HW, "--sram-words", "20"), "cannot hold gamma_max=4 draft rows"),
    BadInput("unknown level", "CLI argument", _verify(_good_file, "--level", "gate"), "unknown level 'gate'"),
    BadInput("no trace file named", "CLI argument", lambda t: ["verify"], "the following arguments are required: trace"),
    BadInput("unknown RTL backend", "CLI argument",
             _verify(_good_file, "--level", "rtl", *SMALL_HW, "--rtl-backend", "iverilog"), "unknown RTL backend 'iverilog'"),
    BadInput("RTL with a single lane", "CLI argument", _verify(_good_file, "--level", "rtl", "--lanes", "1",
                                                              "--vocab-max", "64", "--gamma-max", "4"),
             "the RTL needs lanes >= 2"),
    BadInput("output path is a directory", "output", lambda t: ["trace", "--synthetic", "-o", str(t)],
             "it is a directory"),
    BadInput("output folder not writable", "output", lambda t: ["trace", "--synthetic", "-o", "/proc/hades/x.npz"],
             "cannot write /proc/hades/x.npz"),
    BadInput("output is a symlink to a directory", "output", lambda t: ["trace", "--synthetic", "-o", _dir_link(t)],
             "it is a directory"),
    BadInput("output below a regular file", "output",
             lambda t: ["trace", "--synthetic", "-o", _file(t) + "/sub/x.npz"], "is not a directory"),
    BadInput("output name longer than NAME_MAX", "output",
             lambda t: ["trace", "--synthetic", "-o", str(t / ("x" * 252 + ".npz"))], "(NAME_MAX)"),
    BadInput("output is a FIFO nobody reads", "output", lambda t: ["trace", "--synthetic", "-o", _fifo(t)],
             "no process is reading the FIFO"),
    BadInput("output is a socket", "output", lambda t: ["trace", "--synthetic", "-o", _socket(t)], "it is a socket"),
    BadInput("sweep output is a directory (refused before any trace is built)", "output",
             lambda t: _sweep_out(t, t), "it is a directory"),
    BadInput("sweep output being written by another process", "output",
             lambda t: _sweep_out(t, t / "shared.csv"), "is being written by another hades process", hold=_held_lock),
    BadInput("output directory is a regular file", "output",
             lambda t: ["plot", str(t / "sweep.csv"), "--out-dir", _file(t)], "it is not a directory"),
    BadInput("VCD with a backend that cannot dump waves", "CLI argument",
             _verify(_good_file, "--level", "rtl", *SMALL_HW, "--rtl-backend", "batch", "--vcd", "w.vcd"),
             "the batch backend cannot dump them"),
    BadInput("VCD at the fl level", "CLI argument", _verify(_good_file, "--vcd", "w.vcd"), "level fl cannot dump them"),
    BadInput("VCD path is a directory", "output",
             lambda t: ["verify", _good_file(t), "--level", "rtl", *SMALL_HW, "--rtl-backend", "python", "--vcd", str(t)],
             "it is a directory"),
    BadInput("negative gamma", "CLI argument", lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--gamma", "-1"],
             "gamma must be in 0..64, got -1"),
    BadInput("impossible probability width", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--prob-bits", "40"], "prob_bits must be in 2..24"),
    BadInput("NaN temperature", "CLI argument", lambda t: ["trace", "-o", str(t / "x.npz"), "--temperature", "nan"],
             "temperature must be a finite number in [0, 10^6], got nan"),
    # absurd numbers: every numeric option is checked against hades/limits.py before any work
    BadInput("lanes 2^70", "CLI argument", _verify(_good_file, "--lanes", str(2 ** 70)),
             "lanes must be a power of two in 1..2^24, got 2^70"),
    BadInput("CL buffer of 10^30 words", "CLI argument",
             _verify(_good_file, "--level", "cl", *SMALL_HW, "--sram-words", str(10 ** 30)),
             "sram_words must be in 1..2^48, got 10^30"),
    BadInput("RTL buffer of 10^12 words (would elaborate 10^12 signals)", "CLI argument",
             _verify(_good_file, "--level", "rtl", *SMALL_HW, "--sram-words", str(10 ** 12)),
             "the RTL's buffer depth sram_words must be in 1..2^20, got 10^12"),
    BadInput("sweep buffer of 10^30 KiB", "CLI argument",
             lambda t: ["sweep", "--source", "synthetic", "--sram-kib", str(10 ** 30), "--out", str(t / "s.csv")],
             "sram_kib must be in 1..2^32, got 10^30"),
    BadInput("off-chip bandwidth 1e-300", "CLI argument",
             lambda t: ["sweep", "--source", "synthetic", "--offchip-bw", "1e-300", "--out", str(t / "s.csv")],
             "offchip_bw must be a finite number in [2^-8, 2^24], got 1e-300"),
    BadInput("off-chip latency 2^62 (int64 cycle counts would wrap)", "CLI argument",
             lambda t: ["sweep", "--source", "synthetic", "--offchip-latency", str(2 ** 62), "--out",
                        str(t / "s.csv")], "offchip_latency must be in 0..2^32, got 2^62"),
    BadInput("gamma range 1-1000000000 (refused before expanding)", "CLI argument",
             lambda t: ["sweep", "--source", "synthetic", "--gammas", "1-1000000000", "--out", str(t / "s.csv")],
             "gamma must be in 0..64, got 1000000000"),
    BadInput("sweep of an unknown block", "CLI argument",
             lambda t: [*_sweep_out(t, t / "s.csv"), "--block", "bf16"], "invalid choice: 'bf16'"),
    BadInput("logit sweep buffer below one bf16 row (W = 8 rows would fit)", "CLI argument",
             lambda t: [*_sweep_out(t, t / "s.csv"), "--block", "logit", "--prob-bits", "8", "--vocab", "1024"],
             "SRAM of 1 KiB is smaller than one row: V=1024 entries x 16 bits at 4 lanes need 2 KiB"),
    BadInput("list option expanding to too many values", "CLI argument",
             lambda t: ["sweep", "--source", "synthetic", "--sram-kib", "1-100000", "--out", str(t / "s.csv")],
             "more than 4096 values"),
    BadInput("synthetic vocabulary 2^40", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--vocab", str(2 ** 40)],
             "vocab_size must be in 1..2^24, got 2^40"),
    BadInput("synthetic trace too large to build in memory", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--vocab", str(2 ** 24), "--rounds", "1000"],
             "entries built in memory"),
    BadInput("gamma_max 10^12", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--gamma-max", str(10 ** 12)],
             "gamma_max must be in 0..64, got 10^12"),
    BadInput("model trace at a width no hardware verifies", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--prob-bits", "28"], "prob_bits must be in 2..24, got 28"),
    BadInput("negative seed (trace)", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--seed", "-1"],
             "seed must be in 0..2^63 - 1, got -1"),
    BadInput("negative seed (sweep)", "CLI argument",
             lambda t: ["sweep", "--source", "synthetic", "--seed", "-1", "--out", str(t / "s.csv")],
             "seed must be in 0..2^63 - 1, got -1"),
    BadInput("negative seed (fuzz)", "CLI argument", lambda t: ["fuzz", "--seed", "-1"],
             "seed must be in 0..2^63 - 1, got -1"),
    BadInput("NaN synthesis timeout", "CLI argument", lambda t: ["synth", "--timeout", "nan"],
             "timeout must be a finite number in (0, 604800], got nan"),
    BadInput("sweep CSV whose values are all NaN", "CSV file",
             lambda t: ["plot", _all_nan_csv(t), "--out-dir", str(t / "plots")],
             "tokens_per_s must be a finite number > 0, got nan"),
    BadInput("CSV field over the csv module's size limit", "CSV file",
             lambda t: ["plot", _huge_field_csv(t), "--out-dir", str(t / "plots")],
             "field larger than field limit"),
    BadInput("negative seed", "API", lambda t: lambda: synthetic_trace(SyntheticSpec(seed=-1)),
             "seed must be in 0..2^63 - 1, got -1"),
    BadInput("a bool where an integer is meant", "API", lambda t: _config(lanes=True),
             "lanes must be an integer power of two in 1..2^24, got True (bool)"),
    BadInput("NaN in float probabilities", "API", lambda t: _quantize([0.5, float("nan"), 0.5]), "NaN"),
    BadInput("negative float probabilities", "API", lambda t: _quantize([0.5, -0.1, 0.6]), "negative"),
    BadInput("all-zero float row", "API", lambda t: _quantize([0.0, 0.0]), "zero total probability"),
    BadInput("missing model weights", "model", lambda t: ["trace", "-o", str(t / "x.npz"), "--target",
                                                         str(t / "no-such-model"), "--draft", str(t / "no-such-draft")],
             "no such model directory"),
]


def _sweep_row(**override) -> dict:
    """One plausible row of a sweep CSV (the values of a tiny synthetic point)."""
    from hades.studies.sweep import SWEEP_COLUMNS
    row = {"block": "probability", "source": "synthetic", "draft_model": "synthetic-zipf(V=64)", "target_model": "synthetic-zipf(V=64)",
           "mode": "stochastic", "vocab_size": 64, "rounds": 2, "seed": 0, "gamma": 2, "nested_from": 0,
           "lanes": 4, "prob_bits": 16, "uniform_bits": 32, "sram_kib": 1, "sram_words": 128, "sram_rows": 8,
           "clock_hz": 1e9, "offchip_bw": 4.0, "offchip_latency": 100, "trace_id": "0123456789abcdef",
           "tokens_per_s": 1.5e7, "tokens_per_round": 1.5, "accepted_per_round": 0.5, "acceptance_rate": 0.25,
           "cycles_per_round": 100.0, "latency_per_round": 2.0, "input_cycles_per_round": 98.0,
           "tail_cycles_per_round": 2.0, "offchip_cycles_per_round": 0.0, "scan_cycles_per_round": 1.0,
           "offchip_rows_per_round": 0.0, "sram_bytes_per_round": 512.0, "offchip_bytes_per_round": 0.0}
    row.update(override)
    assert tuple(row) == SWEEP_COLUMNS
    return row


def _sweep_csv(tmp: Path, name: str, rows) -> str:
    import csv
    path = tmp / name
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return str(path)


def _all_nan_csv(tmp: Path) -> str:
    from hades.studies.sweep import METRIC_COLUMNS
    nan = {name: float("nan") for name, _, _ in METRIC_COLUMNS}
    return _sweep_csv(tmp, "nan.csv", [_sweep_row(**nan), _sweep_row(gamma=4, **nan)])


def _huge_field_csv(tmp: Path) -> str:
    return _sweep_csv(tmp, "huge.csv", [_sweep_row(draft_model="x" * 200_000)])


# ---- v2 (logit) traces: V = 40, 4 rounds of gamma 2, 4, 2, 4; round 0 stochastic with a model
# draft, round 1 stochastic with one-hot drafts, round 3 greedy --------------------------------

V2_SPEC = LogitSyntheticSpec(vocab_size=40, rounds=4, gammas=(2, 4), seed=1)
MODEL_ROUND = 0


def good_v2_arrays() -> dict:
    from hades.traces.format_v2 import file_arrays
    tr = synthetic_logit_trace(V2_SPEC)
    assert not tr.greedy[MODEL_ROUND] and not tr.onehot_draft[MODEL_ROUND], "the spec's round 0 must be a model draft"
    return {k: v.copy() for k, v in file_arrays(tr).items()}


def _npz2(tmp: Path, mutate: Callable[[dict], None]) -> str:
    return _npz(tmp, mutate, good_v2_arrays, "bad2.npz")


def _good_v2_file(tmp: Path) -> str:
    path = tmp / "good2.npz"
    write_trace(path, synthetic_logit_trace(V2_SPEC))
    return str(path)


def _v2(mutate, expect: str, name: str) -> "BadInput":
    return BadInput(f"v2: {name}", "trace file", _verify(lambda t: _npz2(t, mutate)), expect)


def _not_the_draft_sample(d):
    x = int(d["draft_tokens"][MODEL_ROUND, 0])
    d["draft_tokens"][MODEL_ROUND, 0] = (x + 1) % int(d["vocab_size"])


def _all_masked(d):
    d["target_logits"][MODEL_ROUND, 1, :] = 0xFF80


def _trace_v2(tmp: Path, *extra) -> list[str]:
    return ["trace", "--trace-format", "2", "-o", str(tmp / "x.npz"), *extra]


# (mutation of good_v2_arrays(), fragment of the message, name): one row each in TABLE, and
# tests/test_trace_v2.py runs them on in-memory arrays too
V2_MUTATIONS = [
    (_drop("draft_uniforms"), "missing key 'draft_uniforms'", "missing key"),
    (_set("logit_format", np.array("fp8")), "key 'logit_format': expected 'bf16'", "logit format other than bf16"),
    (_set("logit_frac_bits", np.array(10)), "key 'logit_frac_bits': expected 8", "logit_frac_bits other than 8"),
    (_set("inv_temp_frac_bits", np.array(12)), "key 'inv_temp_frac_bits': expected 16",
        "inv_temp_frac_bits other than 16"),
    (_set("weight_bits", np.array(40)), "key 'weight_bits': expected 1..31", "weight bits out of range"),
    (_set("target_logits", lambda d: d["target_logits"].astype(np.float32)),
        "key 'target_logits': expected unsigned integer dtype", "float logits (wrong dtype)"),
    (_set("draft_logits", lambda d: d["draft_logits"].astype(np.uint32)),
        "key 'draft_logits': expected uint16 (bf16 bit patterns)", "logits wider than bf16"),
    (_set("draft_params", lambda d: d["draft_params"][:, :3]), "key 'draft_params': expected shape (4, 4)",
        "sampling parameters of the wrong shape"),
    (_poke("greedy", 0, 2), "key 'greedy', round 0: 2 is not 0 or 1", "mode flag other than 0 or 1"),
    (_poke("gamma", 0, 5), "gamma 5 outside 0..4", "gamma > G of the file"),
    (_poke("draft_tokens", (MODEL_ROUND, 0), 40), "token id 40 outside 0..39", "token id >= V"),
    (_poke("target_logits", (MODEL_ROUND, 0, 3), 0x7FC0), "entry 3 is NaN", "NaN logit"),
    (_poke("draft_logits", (MODEL_ROUND, 1, 5), 0x7F80), "entry 5 is +inf", "+inf logit"),
    (_all_masked, "every entry is masked", "row with every entry masked"),
    (_poke("target_params", (2, 0), 0), "inverse temperature k = 0 is outside 1..2^24-1", "inverse temperature 0"),
    (_poke("draft_params", (1, 0), 1 << 24), "inverse temperature k = 16777216 is outside 1..2^24-1",
        "inverse temperature >= 2^24"),
    (_poke("target_params", (0, 3), 65537), "min_p = 65537 is outside 0..65536", "min_p above 2^16"),
    (_poke("target_params", (0, 1), (1 << 24) + 1), "top_k = 16777217 is outside 0..2^24", "top_k above 2^24"),
    (_poke("target_params", (0, 1), -3), "top_k = -3 is negative", "negative top_k"),
    (_poke("draft_params", (0, 2), 0), "top_p = 0: top_p must be > 0", "top_p = 0"),
    (_poke("draft_params", (0, 2), 65537), "top_p = 65537 is outside 1..65536", "top_p above 2^16"),
    (_not_the_draft_sample, "is not the draft sample of its row", "model draft that is not its row's draft sample"),
    (_set("uniform_bits", np.array(16)), "uniform wider than uniform_bits=16", "uniform wider than U"),
    (_poke("expected_accepted", 0, 3), "key 'expected_accepted', round 0: 3 outside 0..gamma=2",
        "expected accepted above gamma"),
]

TABLE += [_v2(mutate, expect, name) for mutate, expect, name in V2_MUTATIONS]
TABLE += [
    BadInput("v2 trace at rtl, buffer smaller than the logit block's rows", "CLI argument",
             _verify(_good_v2_file, "--level", "rtl", *SMALL_HW, "--sram-words", "64"),
             "sram_words=64 cannot hold the logit block's 4 draft and 5 target rows of 16 words; the RTL needs 144"),
    BadInput("top_p = 0", "CLI argument", lambda t: _trace_v2(t, "--top-p", "0"),
             "argument --top-p: top_p must be a finite number in (0, 1], got 0.0"),
    BadInput("top_p below one unit of 2^-16", "CLI argument", lambda t: _trace_v2(t, "--top-p", "1e-6"),
             "top_p must be > 0, got 1e-06 (1e-06 rounds to 0 units of 2^-16)"),
    BadInput("top_p above 1", "CLI argument", lambda t: ["decode", "--top-p", "1.5"],
             "argument --top-p: top_p must be a finite number in (0, 1], got 1.5"),
    BadInput("negative top_k", "CLI argument", lambda t: _trace_v2(t, "--top-k", "-1"),
             "argument --top-k: top_k must be in 0..2^24, got -1"),
    BadInput("draft top_k above 2^24", "CLI argument", lambda t: ["decode", "--draft-top-k", str((1 << 24) + 1)],
             "argument --draft-top-k: draft_top_k must be in 0..2^24, got 16777217"),
    BadInput("top-k with trace format 1", "CLI argument",
             lambda t: ["trace", "--trace-format", "1", "-o", str(t / "x.npz"), "--top-k", "50"],
             "--top-k applies to --trace-format 2 only"),
    BadInput("top-p with trace format 1 (decode)", "CLI argument",
             lambda t: ["decode", "--trace-format", "1", "--top-p", "0.9"], "--top-p applies to --trace-format 2 only"),
    BadInput("top-k for a synthetic trace", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--top-k", "5"],
             "--top-k applies to model traces, not --synthetic"),
    BadInput("v2 trace W differs from the hardware's W", "CLI argument", _verify(_good_v2_file, "--prob-bits", "12"),
             "trace weight_bits=16 differs from the hardware's prob_bits=12"),
    BadInput("unknown trace format", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--trace-format", "3"],
             "argument --trace-format: invalid choice: 3"),
    BadInput("min-p with trace format 1", "CLI argument", lambda t: ["trace", "--trace-format", "1", "-o", str(t / "x.npz"), "--min-p", "0.1"],
             "--min-p applies to --trace-format 2 only"),
    BadInput("min-p with trace format 1 (decode)", "CLI argument",
             lambda t: ["decode", "--trace-format", "1", "--min-p", "0.1"], "--min-p applies to --trace-format 2 only"),
    BadInput("min-p outside [0, 1]", "CLI argument", lambda t: _trace_v2(t, "--min-p", "1.5"),
             "min_p must be in [0, 1], got 1.5"),
    BadInput("temperature whose inverse does not fit 24 bits (v2)", "CLI argument",
             lambda t: _trace_v2(t, "--temperature", "0.001"), "outside 1..2^24-1"),
    BadInput("greedy share with trace format 1", "CLI argument",
             lambda t: ["trace", "--synthetic", "--trace-format", "1", "-o", str(t / "x.npz"), "--greedy-share", "0.5"],
             "--greedy-share applies to --trace-format 2 only"),
    BadInput("lookup n-gram range without lookup drafts", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--draft-method", "layer-skip", "--lookup-ngram", "2"],
             "--lookup-ngram applies to --draft-method lookup only"),
    BadInput("adaptive gamma costs out of range", "CLI argument",
             lambda t: ["decode", "--gammas", "0,auto:1..4:row2000:draft0"],
             "adaptive gamma: row_cost must be a number of target steps in [0, 1000], got 2000.0"),
    BadInput("adaptive gamma pass-cost table of the wrong length", "CLI argument",
             lambda t: ["decode", "--gammas", "0,auto:1..3:pass0.7/0.8:draft0"],
             "adaptive gamma: pass costs must list one cost per gamma 1..3, got 2 entries"),
    BadInput("draft weights with prompt lookup", "CLI argument",
             lambda t: ["decode", "--draft-method", "lookup", "--draft-weights", "int8"],
             "--draft-weights applies to draft models, not --draft-method lookup"),
    BadInput("lookup n-gram range reversed", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--draft-method", "lookup", "--lookup-ngram", "3..1"],
             "lookup n-gram range must satisfy 1 <= min <= max <= 64, got 3..1"),
    BadInput("lookup n-gram range unparsable", "CLI argument",
             lambda t: ["decode", "--draft-method", "lookup", "--lookup-ngram", "two"],
             "lookup n-gram range: cannot parse 'two'"),
    BadInput("draft method model without a draft model", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--draft-method", "model"],
             "--draft-method model needs --draft NAME_OR_PATH"),
    BadInput("draft model with lookup drafts", "CLI argument",
             lambda t: ["decode", "--draft-method", "lookup", "--draft", "gpt2"],
             "--draft applies to --draft-method model, not lookup"),
    BadInput("draft layers with lookup drafts", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--draft-method", "lookup", "--draft-layers", "0-3"],
             "--draft-layers applies to --draft-method layer-skip, fast-skip or int8, not lookup"),
    BadInput("a draft vocabulary with lookup drafts", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--draft-method", "lookup", "--draft-vocab", "8192"],
             "--draft-vocab applies to draft models, not --draft-method lookup"),
    BadInput("a draft method for a synthetic sweep", "CLI argument",
             lambda t: ["sweep", "--source", "synthetic", "--draft-method", "lookup", "--out", str(t / "s.csv")],
             "--draft-method applies to --source real only"),
    BadInput("lookup drafts for a synthetic trace", "CLI argument",
             lambda t: ["trace", "--synthetic", "-o", str(t / "x.npz"), "--draft-method", "lookup"],
             "--draft-method applies to model traces, not --synthetic"),
    BadInput("prompt and prompt set together", "CLI argument",
             lambda t: ["decode", "--prompt", "Hi.", "--prompt-set", "chat"], "give --prompt or --prompt-set, not both"),
]


# ---- trace file v3 (trees): round 0 sampled children, round 1 deterministic, round 2 greedy -----

V3_VOCAB = 40
V3_SHAPE = (3, 2)   # 1 + 3 + 6 = 10 nodes


def good_v3_trace():
    """A small tree trace, one round per scheme (TREE_SCHEMES order: sampled, deterministic, greedy)."""
    from hades.fl.tree import verify_tree_round
    from hades.traces.format_tree import tree_trace_from_rounds
    from hades.traces.synthetic_tree import TreeSyntheticSpec, synthetic_tree_round
    rng = np.random.default_rng(5)
    rounds = [synthetic_tree_round(rng, TreeSyntheticSpec(vocab_size=V3_VOCAB, shape=V3_SHAPE, scheme=s))
              for s in ("sampled", "deterministic", "greedy")]
    return tree_trace_from_rounds(rounds, [verify_tree_round(r, 16, 32) for r in rounds], vocab_size=V3_VOCAB,
                                  weight_bits=16, uniform_bits=32)


def good_v3_arrays() -> dict:
    from hades.traces.format_tree import file_arrays
    return {k: v.copy() for k, v in file_arrays(good_v3_trace()).items()}


def _good_v3_file(tmp: Path) -> str:
    path = tmp / "good3.npz"
    write_trace(path, good_v3_trace())
    return str(path)


def _npz3(tmp: Path, mutate: Callable[[dict], None]) -> str:
    return _npz(tmp, mutate, good_v3_arrays, "bad3.npz")


def _v3(mutate, expect: str, name: str) -> "BadInput":
    return BadInput(f"v3 (tree): {name}", "trace file", _verify(lambda t: _npz3(t, mutate)), expect)


def _child_weight_zero(d):
    """Mask node 1's token in the root's draft row (round 0, sampled): its weight becomes 0."""
    d["draft_logits"][0, 0, int(d["node_tokens"][0, 1])] = 0xFF80


def _child_not_the_draft_sample(d):
    """Node 1 of round 0 (sampled) gets another token of positive weight in the root's draft row."""
    from hades import numerics
    w, _ = numerics.logit_weights(d["draft_logits"][0, 0], d["draft_params"][0].tolist(), 16)
    x = int(d["node_tokens"][0, 1])
    d["node_tokens"][0, 1] = next(y for y in np.flatnonzero(w) if y != x)


def _duplicate_deterministic_child(d):
    d["node_tokens"][1, 2] = d["node_tokens"][1, 1]


def _trace_tree(tmp: Path, *extra) -> list[str]:
    return ["trace", "--synthetic", "-o", str(tmp / "x.npz"), *extra]


# (mutation of good_v3_arrays(), fragment of the message, name): one row each in TABLE, and
# tests/test_tree.py runs them on in-memory arrays too
V3_MUTATIONS = [
    (_drop("sample_uniforms"), "missing key 'sample_uniforms'", "missing key"),
    (_set("parents", lambda d: d["parents"].astype(np.uint32)), "key 'parents': expected integer dtype, got uint32",
        "unsigned parents (the root's -1 needs a sign)"),
    (_set("target_logits", lambda d: d["target_logits"][:, :9]),
        "key 'target_logits': expected shape (3, 10, 40), got (3, 9, 40)", "rows for fewer nodes than parents"),
    (_poke("num_nodes", 0, 11), "key 'num_nodes', round 0: 11 nodes outside 1..10", "more nodes than the file holds"),
    (_poke("scheme", 2, 3), "key 'scheme', round 2: 3 is not a tree scheme", "unknown tree scheme"),
    (_poke("parents", (0, 0), 0), "key 'parents', round 0, node 0: the root's parent must be -1, got 0",
        "root with a parent"),
    (_poke("parents", (0, 4), 7), "key 'parents', round 0, node 4: parent 7 is not an earlier node (0..3)",
        "parent that is not an earlier node"),
    (_poke("node_tokens", (1, 3), V3_VOCAB), "key 'node_tokens', round 1, node 3: token id 40 outside 0..39",
        "node token id >= V"),
    (_duplicate_deterministic_child, "key 'node_tokens', round 1, node 2: token", "duplicate deterministic children"),
    (_child_weight_zero, "key 'node_tokens', round 0, node 1: token", "sampled child of weight 0 in its parent's draft row"),
    (_child_not_the_draft_sample, "is not the draft sample of its parent node 0's draft row",
        "sampled child that is not its parent row's draft sample"),
    (_poke("target_logits", (1, 4, 3), 0x7FC0), "key 'target_logits', round 1, node 4: entry 3 is NaN", "NaN logit"),
    (_poke("draft_logits", (0, 0, 5), 0x7F80), "key 'draft_logits', round 0, node 0: entry 5 is +inf",
        "+inf in a sampled node's draft row"),
    (_set("uniform_bits", np.array(16)), "key 'draft_uniforms', round 0, node 1: uniform wider than uniform_bits=16", "uniform wider than U"),
    (_poke("expected_node", 0, 10), "key 'expected_node', round 0: node 10 outside 0..9", "expected node out of range"),
]

TABLE += [_v3(mutate, expect, name) for mutate, expect, name in V3_MUTATIONS]
TABLE += [
    BadInput("tree trace with --sim (the tree block streams at rtl only)", "CLI argument",
             _verify(_good_v3_file, "--level", "cl", "--sim"), "--sim applies to chain traces"),
    BadInput("tree trace wider than the tree block's children_max", "CLI argument",
             _verify(_good_v3_file, "--level", "cl", "--children-max", "1"),
             "children exceed the tree block's children_max=1"),
    BadInput("tree block with nodes_max below 2", "CLI argument",
             _verify(_good_v3_file, "--level", "cl", "--nodes-max", "1"),
             "argument --nodes-max: nodes_max must be in 2..4096, got 1"),
    BadInput("tree trace through the batch RTL driver", "CLI argument",
             _verify(_good_v3_file, "--level", "rtl", "--rtl-backend", "batch"),
             "tree traces run at --level rtl with --rtl-backend verilator or python"),
    BadInput("tree trace W differs from the hardware's W", "CLI argument", _verify(_good_v3_file, "--prob-bits", "12"),
             "trace weight_bits=16 differs from the hardware's prob_bits=12"),
    BadInput("tree trace given to hades bench", "CLI argument", lambda t: ["bench", "--trace", _good_v3_file(t)],
             "is a tree trace (hades-trace/3); hades bench measures chain rounds only"),
    BadInput("tree shape with a depth of no children", "CLI argument", lambda t: _trace_tree(t, "--tree", "4,0,2"),
             "argument --tree: tree branching must be in 1..64, got 0"),
    BadInput("tree shape unparsable", "CLI argument", lambda t: _trace_tree(t, "--tree", "4x2"),
             "argument --tree: tree shape: expected children per depth like 4,2,2,1, got '4x2'"),
    BadInput("tree with too many nodes", "CLI argument", lambda t: _trace_tree(t, "--tree", "64,64"),
             "argument --tree: tree shape 64,64: 4161 nodes per round, more than 4096"),
    BadInput("tree trace with prompt-lookup drafts", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--tree", "2,2", "--draft-method", "lookup"],
             "--tree needs a draft model that expands the tree, not --draft-method lookup"),
    BadInput("tree trace with a chain-only model option", "CLI argument",
             lambda t: ["trace", "-o", str(t / "x.npz"), "--tree", "2,2", "--new-tokens", "8"],
             "--new-tokens applies to chain traces, not --tree"),
    BadInput("synthetic tree with a model option", "CLI argument",
             lambda t: _trace_tree(t, "--tree", "2", "--temperature", "0.5"),
             "--temperature applies to model traces, not --synthetic"),
    BadInput("children scheme without a tree", "CLI argument",
             lambda t: _trace_tree(t, "--children", "deterministic"), "--children applies to --tree"),
    BadInput("children scheme with greedy trees", "CLI argument",
             lambda t: _trace_tree(t, "--tree", "2", "--mode", "greedy", "--children", "sampled"),
             "--children applies to stochastic trees; --mode greedy makes greedy trees"),
    BadInput("tree with a chain-only option", "CLI argument",
             lambda t: _trace_tree(t, "--tree", "2", "--onehot-share", "0.5"), "--onehot-share applies to chain traces"),
]


def _zero_px(d):
    x = int(d["draft_tokens"][0, 0])
    p = d["draft_probs"][0, 0]
    other = (x + 1) % len(p)
    p[other] += p[x]
    p[x] = 0


@dataclass
class Outcome:
    status: str      # "exit 2" or the exception class name
    message: str     # the one line


def run_case(case: BadInput, tmp: Path) -> Outcome:
    made = case.make(tmp)
    if case.hold is not None:
        with case.hold(tmp):
            return _run_made(case, made)
    return _run_made(case, made)


def _run_made(case: BadInput, made) -> Outcome:
    if callable(made):
        try:
            made()
        except HadesError as e:
            return Outcome(type(e).__name__, str(e))
        raise AssertionError(f"{case.name}: no exception raised")
    from hades.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(made)
        except SystemExit as e:
            rc = e.code
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if rc != 2 or len(lines) != 1:
        raise AssertionError(f"{case.name}: exit {rc}, stderr {err.getvalue()!r}")
    return Outcome("exit 2", lines[0])


def write_table(path: str) -> None:
    from hades.fileio import atomic_write
    rows = ["# Bad input: every case, its message, how it is refused", "",
            "Generated by `python -m harness.bad_inputs docs/BAD_INPUT.md` from the messages the tools",
            "actually print; `tests/test_bad_input.py` runs every row. CLI cases exit with status 2 and",
            "print exactly one line on stderr (no traceback); API cases raise the typed exception shown",
            "(all derive from `hades.errors.HadesError`). Tokenizer mismatches between a draft and a",
            "target are refused with `ModelError` (tests/test_real_traces.py). Every numeric option is",
            "checked against its one declared range in `hades/limits.py` while the command line is parsed,",
            "before any work (hence the `argument --option:` prefix); the API dataclasses raise the same",
            "message (`tests/test_limits.py`).", "",
            "| where | case | refused with | message |", "|---|---|---|---|"]
    for case in TABLE:
        with tempfile.TemporaryDirectory() as tmp:
            out = run_case(case, Path(tmp))
        msg = out.message.replace(tmp, "<tmp>").replace("|", "\\|")
        msg = re.sub(r"x{40,}", lambda m: f"<{len(m.group())} x>", msg)   # the NAME_MAX case
        msg = re.sub(r"\(pid \d+\)", "(pid <pid>)", msg)
        rows.append(f"| {case.where} | {case.name} | {out.status} | `{msg}` |")
    atomic_write(path, lambda p: Path(p).write_text("\n".join(rows) + "\n"))


if __name__ == "__main__":
    write_table(sys.argv[1] if len(sys.argv) > 1 else "docs/BAD_INPUT.md")
