"""Trace file v1 (docs/TRACE_FORMAT.md): the writer, the reader's refusals, synthetic traces."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from hades import numerics
from hades.errors import ConfigError, TraceError
from hades.fl.verifier import verify_round
from hades.traces.synthetic import SyntheticSpec, synthetic_trace
from hades.traces.format import ARRAY_KEYS, FORMAT, SCALAR_KEYS, Trace, read_trace, validate, write_trace

SPEC = SyntheticSpec(vocab_size=40, rounds=6, gammas=(3, 0, 5, 2), seed=5)


@pytest.fixture(scope="module")
def good_trace() -> Trace:
    return synthetic_trace(SPEC)


@pytest.fixture
def good_arrays(tmp_path, good_trace) -> dict:
    """The raw arrays of a good trace file, as np.load returns them."""
    path = write_trace(tmp_path / "good.npz", good_trace)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write_bad(tmp_path, arrays: dict, **changes) -> Path:
    """np.savez a copy of `arrays` with some entries replaced (None deletes the key)."""
    d = {k: np.array(v, copy=True) for k, v in arrays.items()}
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    path = tmp_path / "bad.npz"
    with open(path, "wb") as f:
        np.savez(f, **d)
    return path


def _refused(path, *fragments) -> str:
    with pytest.raises(TraceError) as ei:
        read_trace(path)
    msg = str(ei.value)
    assert "\n" not in msg.strip()
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def _arrays_equal(a: Trace, b: Trace):
    for k in ARRAY_KEYS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert np.array_equal(x, y), k
    for k in ("mode", "vocab_size", "row_sum", "prob_bits", "uniform_bits", "meta"):
        assert getattr(a, k) == getattr(b, k), k


# ---------------------------------------------------------------------------------------
# round trip and atomic writes
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    SPEC,
    SyntheticSpec(vocab_size=17, rounds=4, gammas=(2,), mode="greedy", seed=3, gamma_max=6),
    SyntheticSpec(vocab_size=9, rounds=3, gammas=(1,), prob_bits=8, uniform_bits=12, seed=4),
    SyntheticSpec(vocab_size=5, rounds=3, gammas=(2,), prob_bits=20, uniform_bits=64, seed=4),
    SyntheticSpec(vocab_size=1, rounds=2, gammas=(0, 1), seed=1),
])
def test_round_trip(tmp_path, spec):
    tr = synthetic_trace(spec)
    out = tmp_path / "sub" / "t.npz"
    got = write_trace(out, tr)
    assert Path(got) == out and out.is_file()
    assert sorted(os.listdir(out.parent)) == ["t.npz"]  # no temporary file left behind
    back = read_trace(out)
    _arrays_equal(tr, back)
    assert back.meta["spec"]["seed"] == spec.seed
    with np.load(out, allow_pickle=False) as z:
        assert str(z["format"]) == FORMAT
        assert set(z.files) == set(ARRAY_KEYS) | set(SCALAR_KEYS)
    # the rounds decode to the same decisions
    for i, rnd in enumerate(back.rounds()):
        res = verify_round(rnd, back.row_sum, back.uniform_bits)
        assert res.decision() == (int(tr.expected_accepted[i]), int(tr.expected_token[i]))


def test_round_trip_keeps_dtypes_of_uniforms(tmp_path):
    tr = synthetic_trace(SyntheticSpec(vocab_size=8, rounds=2, uniform_bits=64, seed=2))
    assert tr.accept_uniforms.dtype == np.uint64
    back = read_trace(write_trace(tmp_path / "u64.npz", tr))
    assert back.accept_uniforms.dtype == np.uint64 and np.array_equal(back.accept_uniforms, tr.accept_uniforms)


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, good_trace):
    target = tmp_path / "t.npz"

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError):
        write_trace(target, good_trace)
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_old_file_unchanged(tmp_path, monkeypatch, good_trace):
    target = tmp_path / "t.npz"
    write_trace(target, good_trace)
    before = target.read_bytes()
    real = np.savez_compressed

    def half_then_boom(f, **arrays):
        real(f, **{k: arrays[k] for k in list(arrays)[:3]})  # a partial archive, then failure
        raise OSError("interrupted")
    monkeypatch.setattr(np, "savez_compressed", half_then_boom)
    with pytest.raises(OSError):
        write_trace(target, synthetic_trace(SyntheticSpec(vocab_size=8, rounds=2, seed=99)))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.npz"]
    _arrays_equal(read_trace(target), good_trace)


def test_write_refuses_an_invalid_trace(tmp_path):
    tr = synthetic_trace(SyntheticSpec(vocab_size=8, rounds=3, gammas=(2,), seed=1))
    tr.gamma[1] = 7  # corrupted after construction: validate() runs again on write
    with pytest.raises(TraceError, match="gamma"):
        write_trace(tmp_path / "t.npz", tr)
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_file(tmp_path, good_trace):
    target = tmp_path / "t.npz"
    write_trace(target, synthetic_trace(SyntheticSpec(vocab_size=8, rounds=2, seed=9)))
    write_trace(target, good_trace)
    _arrays_equal(read_trace(target), good_trace)
    assert os.listdir(tmp_path) == ["t.npz"]


# ---------------------------------------------------------------------------------------
# refusal of malformed files
# ---------------------------------------------------------------------------------------

def test_good_arrays_are_accepted(tmp_path, good_arrays):
    # the helper itself round-trips: an unmodified copy must be readable
    read_trace(_write_bad(tmp_path, good_arrays))


@pytest.mark.parametrize("key", ARRAY_KEYS + SCALAR_KEYS)
def test_missing_key(tmp_path, good_arrays, key):
    _refused(_write_bad(tmp_path, good_arrays, **{key: None}), f"'{key}'", "missing")


@pytest.mark.parametrize("key", ["draft_probs", "target_probs", "accept_uniforms", "sample_uniform"])
def test_float_arrays_refused(tmp_path, good_arrays, key):
    path = _write_bad(tmp_path, good_arrays, **{key: good_arrays[key].astype(np.float64)})
    _refused(path, f"'{key}'", "dtype")


@pytest.mark.parametrize("key,dtype", [
    ("draft_probs", np.int32),          # signed probabilities
    ("accept_uniforms", np.int64),      # signed uniforms
    ("accept_uniforms", np.uint16),     # uniforms narrower than uint32
    ("sample_uniform", np.uint8),
    ("gamma", np.float32),
    ("draft_tokens", np.float64),
    ("expected_token", np.float64),
])
def test_wrong_dtype_refused(tmp_path, good_arrays, key, dtype):
    _refused(_write_bad(tmp_path, good_arrays, **{key: good_arrays[key].astype(dtype)}), f"'{key}'")


def test_wrong_shapes_refused(tmp_path, good_arrays):
    a = good_arrays
    R, G, V = a["draft_probs"].shape
    cases = {
        "draft_probs": a["draft_probs"][:, :, :-1],
        "target_probs": a["target_probs"][:, :G],
        "sample_uniform": np.concatenate([a["sample_uniform"], a["sample_uniform"][:1]]),
        "accept_uniforms": a["accept_uniforms"][:, :-1],
        "expected_accepted": a["expected_accepted"][:-1],
        "draft_tokens": a["draft_tokens"][:, 0],
        "gamma": a["gamma"][None, :],
    }
    for key, bad in cases.items():
        msg = _refused(_write_bad(tmp_path, a, **{key: bad}), f"'{key}'")
        assert "shape" in msg or "array" in msg, msg


@pytest.mark.parametrize("key", ["draft_probs", "target_probs"])
def test_row_sum_mismatch_names_key_and_round(tmp_path, good_arrays, key):
    arr = good_arrays[key].copy()
    r = 2  # gamma 5 in SPEC
    arr[r, 1, 7] += 1
    msg = _refused(_write_bad(tmp_path, good_arrays, **{key: arr}), f"'{key}'", f"round {r}", "row 1")
    assert str(int(good_arrays["row_sum"])) in msg


def test_row_sum_key_mismatch(tmp_path, good_arrays):
    # every row sums to M, but the declared row_sum says otherwise
    _refused(_write_bad(tmp_path, good_arrays, row_sum=np.array(int(good_arrays["row_sum"]) - 1)), "round 0")
    # a row_sum that does not fit prob_bits
    _refused(_write_bad(tmp_path, good_arrays, row_sum=np.array(1 << 16)), "'row_sum'")


def test_padding_past_gamma_is_ignored(tmp_path, good_arrays):
    """Entries past a round's gamma are ignored (docs/TRACE_FORMAT.md): junk there is harmless."""
    a = good_arrays
    r = 1  # gamma 0 in SPEC
    assert int(a["gamma"][r]) == 0
    dp, tp, dt, au = (a[k].copy() for k in ("draft_probs", "target_probs", "draft_tokens", "accept_uniforms"))
    dp[r, 0, 0] = 3
    tp[r, 1, 0] = 3
    dt[r, 0] = 10**6
    au[r, 0] = 12345
    tr = read_trace(_write_bad(tmp_path, a, draft_probs=dp, target_probs=tp, draft_tokens=dt, accept_uniforms=au))
    res = verify_round(tr.round(r), tr.row_sum, tr.uniform_bits)
    assert res.decision() == (int(a["expected_accepted"][r]), int(a["expected_token"][r]))


@pytest.mark.parametrize("token", [40, 41, 10**6, -1])
def test_token_out_of_range(tmp_path, good_arrays, token):
    dt = good_arrays["draft_tokens"].copy()
    dt[3, 1] = token  # round 3 has gamma 2: slot 1 is live
    _refused(_write_bad(tmp_path, good_arrays, draft_tokens=dt), "'draft_tokens'", "round 3", str(token))


@pytest.mark.parametrize("key,value", [("expected_token", 40), ("expected_token", -2), ("expected_accepted", 4),
                                       ("expected_accepted", -1)])
def test_expected_columns_checked(tmp_path, good_arrays, key, value):
    arr = good_arrays[key].copy()
    arr[3] = value  # round 3 has gamma 2
    _refused(_write_bad(tmp_path, good_arrays, **{key: arr}), f"'{key}'", "round 3")


@pytest.mark.parametrize("value", [6, 100, -1])
def test_gamma_out_of_range(tmp_path, good_arrays, value):
    g = good_arrays["gamma"].copy()
    g[4] = value
    _refused(_write_bad(tmp_path, good_arrays, gamma=g), "'gamma'", "round 4", str(value))


def test_uniform_wider_than_uniform_bits(tmp_path, good_arrays):
    a = good_arrays
    assert int(a["uniform_bits"]) == 32
    au = a["accept_uniforms"].astype(np.uint64)
    au[3, 1] = 1 << 32
    _refused(_write_bad(tmp_path, a, accept_uniforms=au), "'accept_uniforms'", "round 3", "uniform_bits")
    su = a["sample_uniform"].astype(np.uint64)
    su[4] = (1 << 40) + 5
    _refused(_write_bad(tmp_path, a, sample_uniform=su), "'sample_uniform'", "round 4", "uniform_bits")
    # declaring fewer bits than the stored uniforms use
    narrow = a["accept_uniforms"].copy()
    narrow[:] = 0
    narrow[2, 4] = 1 << 20
    _refused(_write_bad(tmp_path, a, accept_uniforms=narrow, uniform_bits=np.array(20),
                        sample_uniform=np.zeros_like(a["sample_uniform"])),
             "'accept_uniforms'", "round 2")


def test_uniform_in_padding_is_not_checked(tmp_path, good_arrays):
    au = good_arrays["accept_uniforms"].astype(np.uint64)
    au[3, 4] = 1 << 33  # round 3 has gamma 2: slot 4 is padding
    read_trace(_write_bad(tmp_path, good_arrays, accept_uniforms=au))


def _move_draft_mass(arrays, r, t):
    dp = arrays["draft_probs"].copy()
    x = int(arrays["draft_tokens"][r, t])
    other = (x + 1) % dp.shape[-1]
    dp[r, t, other] += dp[r, t, x]
    dp[r, t, x] = 0
    return dp


def test_zero_draft_probability_refused_in_stochastic_mode(tmp_path, good_arrays):
    dp = _move_draft_mass(good_arrays, 2, 3)
    _refused(_write_bad(tmp_path, good_arrays, draft_probs=dp), "'draft_probs'", "round 2", "zero draft probability")


def test_zero_draft_probability_allowed_in_greedy_mode(tmp_path, good_arrays):
    dp = _move_draft_mass(good_arrays, 2, 3)
    tr = read_trace(_write_bad(tmp_path, good_arrays, draft_probs=dp, mode=np.array("greedy")))
    assert tr.greedy


@pytest.mark.parametrize("value", [np.array("hades-trace/9"), np.array(""), np.array(1),
                                   np.array(["hades-trace/1"])])
def test_bad_format_refused(tmp_path, good_arrays, value):
    _refused(_write_bad(tmp_path, good_arrays, format=value), "'format'")


def test_v1_arrays_labelled_v2_are_read_by_the_v2_table(tmp_path, good_arrays):
    # the format key picks the key table: v1 arrays under the v2 label lack v2's keys
    _refused(_write_bad(tmp_path, good_arrays, format=np.array("hades-trace/2")), "missing key 'logit_format'")


@pytest.mark.parametrize("value", [np.array("fast"), np.array(b"stochastic"), np.array(["stochastic"])])
def test_bad_mode_refused(tmp_path, good_arrays, value):
    _refused(_write_bad(tmp_path, good_arrays, mode=value), "'mode'")


@pytest.mark.parametrize("value", [np.array("{not json"), np.array("[1, 2]"), np.array("42"),
                                   np.array(b"{}"), np.array(7)])
def test_bad_meta_refused(tmp_path, good_arrays, value):
    _refused(_write_bad(tmp_path, good_arrays, meta=value), "'meta'")


@pytest.mark.parametrize("key,value", [("vocab_size", np.array(40.0)), ("vocab_size", np.array([40])),
                                       ("vocab_size", np.array(41)), ("prob_bits", np.array(0)),
                                       ("uniform_bits", np.array(65)), ("row_sum", np.array(-1)),
                                       ("uniform_bits", np.array(True))])
def test_bad_scalars_refused(tmp_path, good_arrays, key, value):
    msg = _refused(_write_bad(tmp_path, good_arrays, **{key: value}))
    # vocab_size = 41 is caught by the shape of the prob arrays; all others name the scalar
    assert f"'{key}'" in msg or (key == "vocab_size" and "'draft_probs'" in msg), msg


def test_garbage_and_truncated_files(tmp_path, good_trace):
    good = write_trace(tmp_path / "good.npz", good_trace)
    data = good.read_bytes()
    cases = {
        "empty.npz": b"",
        "garbage.npz": bytes(range(256)) * 10,
        "text.npz": b"hello, this is not a trace\n",
        "npy-magic.npz": b"\x93NUMPY\x01\x00garbage",
        "head.npz": data[:100],
        "half.npz": data[: len(data) // 2],
        "tail-cut.npz": data[:-10],
    }
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        _refused(p, name)


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_flipped_bytes_at_file_offsets(tmp_path, good_trace, where):
    good = write_trace(tmp_path / "good.npz", good_trace)
    data = bytearray(good.read_bytes())
    pos = int(len(data) * where)
    for i in range(pos, pos + 16):
        data[i] ^= 0xFF
    p = tmp_path / "flipped.npz"
    p.write_bytes(bytes(data))
    try:
        read_trace(p)  # a flip in an ignored header field (e.g. a timestamp) may go unnoticed
    except TraceError as e:
        assert "flipped.npz" in str(e)


def _member_data_offset(data: bytes, member: str) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(member)
    off = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[off + 26: off + 30])
    return off + 30 + name_len + extra_len


@pytest.mark.parametrize("member", ["gamma.npy", "target_probs.npy", "meta.npy"])
def test_corrupt_deflate_stream_refused(tmp_path, good_trace, member):
    """BUG (hades/traces/format.py read_trace): a corrupted deflate stream inside the archive raises
    zlib.error, which read_trace does not catch, so the user gets a traceback instead of a
    TraceError (the CLI would crash instead of exiting with status 2). Fix: add zlib.error
    to the exceptions caught around np.load / z[k]."""
    good = write_trace(tmp_path / "good.npz", good_trace)
    data = bytearray(good.read_bytes())
    start = _member_data_offset(bytes(data), member)
    for i in range(start, start + 4):  # the first deflate block header
        data[i] ^= 0xFF
    p = tmp_path / "corrupt.npz"
    p.write_bytes(bytes(data))
    _refused(p, "corrupt.npz")


def test_unsupported_compression_method_refused(tmp_path, good_trace):
    """BUG (same place): a member whose compression method is unknown makes zipfile raise
    NotImplementedError, which read_trace does not catch either. Fix: catch it too."""
    good = write_trace(tmp_path / "good.npz", good_trace)
    data = bytearray(good.read_bytes())
    cd = data.index(b"PK\x01\x02")            # first central-directory entry
    data[cd + 10: cd + 12] = struct.pack("<H", 99)
    p = tmp_path / "method.npz"
    p.write_bytes(bytes(data))
    _refused(p, "method.npz")


def test_nonexistent_path_and_directory(tmp_path):
    _refused(tmp_path / "nope.npz", "nope.npz")
    _refused(tmp_path, str(tmp_path))


def test_object_arrays_refused(tmp_path, good_arrays):
    # a pickled (object) entry must not be loaded: allow_pickle=False, refused cleanly
    d = dict(good_arrays)
    d["meta"] = np.array([{"a": 1}], dtype=object)
    path = tmp_path / "obj.npz"
    with open(path, "wb") as f:
        np.savez(f, **d)
    _refused(path, "obj.npz")


def test_error_message_names_path(tmp_path, good_arrays):
    g = good_arrays["gamma"].copy()
    g[0] = 99
    path = _write_bad(tmp_path, good_arrays, gamma=g)
    msg = _refused(path, str(path), "'gamma'", "round 0", "99")
    assert "0..5" in msg  # what was expected


# ---------------------------------------------------------------------------------------
# synthetic traces
# ---------------------------------------------------------------------------------------

def test_synthetic_is_reproducible():
    a = synthetic_trace(SPEC)
    b = synthetic_trace(SPEC)
    _arrays_equal(a, b)
    c = synthetic_trace(SyntheticSpec(**{**SPEC.__dict__, "seed": SPEC.seed + 1}))
    assert not np.array_equal(a.target_probs, c.target_probs)
    assert not np.array_equal(a.accept_uniforms, c.accept_uniforms)
    assert a.meta["spec"]["seed"] == SPEC.seed and c.meta["spec"]["seed"] == SPEC.seed + 1
    assert f"--seed {SPEC.seed}" in a.meta["regenerate"]
    json.dumps(a.meta)  # serialisable


@pytest.mark.parametrize("spec", [
    SPEC,
    SyntheticSpec(vocab_size=64, rounds=12, gammas=(0, 2, 5), seed=3),
    SyntheticSpec(vocab_size=64, rounds=12, gammas=(0, 2, 5), seed=3, mode="greedy"),
    SyntheticSpec(vocab_size=30, rounds=4, gammas=(16,), seed=8),
    SyntheticSpec(vocab_size=3, rounds=10, gammas=(1, 4), prob_bits=8, uniform_bits=16, seed=8),
])
def test_synthetic_expected_columns_equal_verify_round(spec):
    tr = synthetic_trace(spec)
    assert tr.num_rounds == spec.rounds
    for i, rnd in enumerate(tr.rounds()):
        res = verify_round(rnd, tr.row_sum, tr.uniform_bits)
        assert res.decision() == (int(tr.expected_accepted[i]), int(tr.expected_token[i])), i


def test_synthetic_variable_gammas_and_padding():
    spec = SyntheticSpec(vocab_size=50, rounds=9, gammas=(0, 2, 5), seed=11, gamma_max=7)
    tr = synthetic_trace(spec)
    assert tr.gamma.tolist() == [0, 2, 5] * 3
    assert tr.gamma_max == 7
    assert tr.draft_probs.shape == (9, 7, 50) and tr.target_probs.shape == (9, 8, 50)
    M = tr.row_sum
    assert M == numerics.default_row_sum(16)
    for i in range(tr.num_rounds):
        g = int(tr.gamma[i])
        assert (tr.draft_probs[i, :g].sum(-1, dtype=np.int64) == M).all()
        assert (tr.target_probs[i, : g + 1].sum(-1, dtype=np.int64) == M).all()
        assert not tr.draft_probs[i, g:].any() and not tr.target_probs[i, g + 1:].any()
        assert not tr.draft_tokens[i, g:].any() and not tr.accept_uniforms[i, g:].any()
        assert 0 <= tr.expected_accepted[i] <= g
        # drafts come from the quantised draft row
        assert (tr.draft_probs[i, np.arange(g), tr.draft_tokens[i, :g]] > 0).all()
        if g == 0:
            rnd = tr.round(i)
            assert int(tr.expected_token[i]) == numerics.bonus_sample(rnd.target_probs[0], rnd.sample_uniform,
                                                                       tr.uniform_bits, M)


def test_synthetic_greedy_mode():
    spec = SyntheticSpec(vocab_size=64, rounds=20, gammas=(4,), seed=2, mode="greedy")
    tr = synthetic_trace(spec)
    assert tr.greedy and tr.mode == "greedy"
    for i in range(tr.num_rounds):
        g = int(tr.gamma[i])
        q = tr.target_probs[i].astype(np.int64)
        n = 0
        while n < g and int(tr.draft_tokens[i, n]) == int(np.argmax(q[n])):
            n += 1
        assert int(tr.expected_accepted[i]) == n
        assert int(tr.expected_token[i]) == int(np.argmax(q[n]))
    # the greedy trace shares the rows of the stochastic trace of the same seed
    st_tr = synthetic_trace(SyntheticSpec(**{**spec.__dict__, "mode": "stochastic"}))
    assert np.array_equal(st_tr.target_probs, tr.target_probs)


def test_synthetic_acceptance_is_llm_like():
    tr = synthetic_trace(SyntheticSpec())  # the defaults
    P = tr.draft_probs.astype(np.int64)
    Q = tr.target_probs[:, :-1].astype(np.int64)
    live = np.arange(tr.gamma_max)[None, :] < tr.gamma[:, None]
    # the exact per-draft acceptance probability of the rows: sum(min(p, q)) / M
    alpha_rows = np.minimum(P, Q).sum(-1)[live].mean() / tr.row_sum
    assert 0.3 < alpha_rows < 0.9
    # the realised rate over a longer trace: accepted drafts / accept tests performed
    tr = synthetic_trace(SyntheticSpec(rounds=200))
    acc = tr.expected_accepted.astype(np.int64)
    g = tr.gamma.astype(np.int64)
    tests = acc.sum() + (acc < g).sum()
    assert 0.3 < acc.sum() / tests < 0.9
    assert 0 < (acc == g).sum() < len(acc)  # both all-accepted and rejected rounds occur


@pytest.mark.parametrize("bad", [
    dict(vocab_size=0), dict(rounds=0), dict(gammas=()), dict(gammas=(-1,)),
    dict(gammas=(4,), gamma_max=3), dict(mode="beam"),
])
def test_synthetic_spec_refuses_bad_config(bad):
    with pytest.raises(ConfigError):
        synthetic_trace(SyntheticSpec(**bad))


def test_trace_constructor_validates(good_trace):
    d = {k: getattr(good_trace, k) for k in good_trace.__dataclass_fields__}
    d["mode"] = "sampling"
    with pytest.raises(TraceError, match="'mode'"):
        Trace(**d)
    validate(good_trace)  # the good one passes


# ---------------------------------------------------------------------------------------
# the reader looks at headers before it reads (docs/TRACE_FORMAT.md, "What the reader checks")
# ---------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]

# A 2 GiB member of zeros: an .npy header (uint8, shape (2^31,)) and 2048 identical deflate
# segments of 1 MiB of zeros each (a full flush resets the compressor, so one segment's bytes
# repeat): about 2.1 MB on disk, built in milliseconds. The CRC is that of these bytes.
_ZERO_HEADER = (b"\x93NUMPY\x01\x00v\x00" + b"{'descr': '|u1', 'fortran_order': False, 'shape': (2147483648,), }"
                .ljust(117) + b"\n")
_ZERO_CRC = 0x90148188


def _append_zero_member(src: Path, dst: Path, name: str, mib: int = 2048, crc: int = _ZERO_CRC) -> Path:
    """dst = the archive src plus one deflated member `name` holding _ZERO_HEADER and `mib` MiB
    of zeros, written by hand (zipfile would compress the 2 GiB itself)."""
    data = src.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        start, count = z.start_dir, len(z.infolist())
    eocd = data.rindex(b"PK\x05\x06")
    central = data[start:eocd]
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(_ZERO_HEADER) + c.flush(zlib.Z_FULL_FLUSH)
    seg = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    body = head + seg * mib + c.flush()
    usize = len(_ZERO_HEADER) + (mib << 20)
    assert usize < 1 << 32   # no zip64 fields needed
    fname = name.encode()
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(body), usize, len(fname), 0) + fname
    entry = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(body), usize, len(fname),
                        0, 0, 0, 0, 0, start) + fname
    new_central = central + entry
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count + 1, count + 1, len(new_central),
                      start + len(local) + len(body), 0)
    dst.write_bytes(data[:start] + local + body + new_central + end)
    return dst



def test_unknown_members_are_ignored_without_being_read(tmp_path, good_trace):
    """A member that is not a key of the format is skipped unread: not even a corrupt one
    (whose deflate stream would raise on the first read) is opened."""
    clean = write_trace(tmp_path / "clean.npz", good_trace)
    broken = _append_zero_member(clean, tmp_path / "extra.npz", "notes.npy", mib=1)
    blob = bytearray(broken.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(blob))) as z:
        info = z.getinfo("notes.npy")
    start = _member_data_offset(bytes(blob), "notes.npy")
    blob[start: start + info.compress_size] = bytes(range(256)) * (info.compress_size // 256) + \
        bytes(info.compress_size % 256)   # garbage instead of deflate
    broken.write_bytes(bytes(blob))
    _arrays_equal(read_trace(broken), good_trace)


def test_big_unused_member_costs_no_time_or_memory(tmp_path):
    """A 2 MB file with an unused 2 GiB member: `hades verify` peaks at about the memory of the
    clean file (measured in a subprocess: the peak RSS after the clean file, then after the big one)."""
    tr = synthetic_trace(SyntheticSpec(vocab_size=40, rounds=3, gammas=(2, 4), seed=3))
    clean = write_trace(tmp_path / "clean.npz", tr)
    big = _append_zero_member(clean, tmp_path / "big.npz", "unused.npy")
    assert big.stat().st_size < 3_000_000
    with zipfile.ZipFile(big) as z:
        assert z.getinfo("unused.npy").file_size > 2 * 10**9
    _arrays_equal(read_trace(big), tr)
    # VmHWM (the peak RSS of this process image; ru_maxrss would inherit the parent's peak
    # across fork and exec on Linux), in KiB
    code = ("import io, resource, sys, contextlib\n"
            "from hades.cli import main\n"
            "def peak_kib():\n"
            "    try:\n"
            "        for line in open('/proc/self/status'):\n"
            "            if line.startswith('VmHWM:'):\n"
            "                return int(line.split()[1])\n"
            "    except OSError:\n"
            "        pass\n"
            "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "for path in sys.argv[1:]:\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        rc = main(['verify', path])\n"
            "    print(rc, peak_kib(), flush=True)\n")
    out = subprocess.run([sys.executable, "-c", code, str(clean), str(big)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (rc1, kb_clean), (rc2, kb_big) = [tuple(map(int, ln.split())) for ln in out.stdout.split("\n") if ln]
    assert rc1 == rc2 == 0
    assert kb_big - kb_clean < 50_000, (kb_clean, kb_big)   # KiB: under 50 MB more than the clean file


@pytest.mark.parametrize("key", ARRAY_KEYS + SCALAR_KEYS)
def test_gigantic_header_shape_refused_before_allocation(tmp_path, good_arrays, key):
    """Each member's .npy header is checked against its zip-directory size before anything
    is allocated: a header that claims 10^13 entries is refused from the header alone."""
    members = {}
    for k, v in good_arrays.items():
        buf = io.BytesIO()
        if k == key:
            np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(v.dtype),
                                                       "fortran_order": False, "shape": (10**13,) + v.shape})
            buf.write(v.tobytes())
        else:
            np.lib.format.write_array(buf, v)
        members[f"{k}.npy"] = buf.getvalue()
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    tracemalloc.start()
    try:
        _refused(path, f"key '{key}'", "the .npy header declares shape (10000000000000,")
        assert tracemalloc.get_traced_memory()[1] < 20_000_000
    finally:
        tracemalloc.stop()


def test_shapes_inconsistent_across_members_refused_from_headers(tmp_path, good_arrays):
    """R comes from gamma, G from draft_tokens, V from vocab_size; a member whose header
    disagrees (even one that is internally consistent with its zip entry) is refused before
    any array is read."""
    a = good_arrays
    R = len(a["gamma"])
    bigger = np.zeros((R * 1000,) + a["target_probs"].shape[1:], a["target_probs"].dtype)
    _refused(_write_bad(tmp_path, a, target_probs=bigger), "'target_probs'", "expected shape")


def test_fortran_order_arrays_read_back(tmp_path, good_arrays, good_trace):
    a = dict(good_arrays)
    a["target_probs"] = np.asfortranarray(a["target_probs"])
    a["draft_tokens"] = np.asfortranarray(a["draft_tokens"])
    _arrays_equal(read_trace(_write_bad(tmp_path, a)), good_trace)


def test_meta_depth_and_length_bounds(tmp_path, good_arrays):
    from hades.traces.format import MAX_META_CHARS, MAX_META_DEPTH, json_depth
    assert json_depth('{"a": [1, {"b": "[[[[{{{"}], "c": "\\"]]"}') == 3
    ok = '{"a": ' + "[" * (MAX_META_DEPTH - 1) + "]" * (MAX_META_DEPTH - 1) + "}"
    assert json_depth(ok) == MAX_META_DEPTH
    read_trace(_write_bad(tmp_path, good_arrays, meta=np.array(ok)))
    deep = '{"a": ' + "[" * MAX_META_DEPTH + "]" * MAX_META_DEPTH + "}"
    _refused(_write_bad(tmp_path, good_arrays, meta=np.array(deep)), "'meta'", "nested")
    # far past the parser's recursion limit: still one clear TraceError, not a RecursionError
    _refused(_write_bad(tmp_path, good_arrays, meta=np.array("[" * 10**6)), "'meta'", "nested")
    _refused(_write_bad(tmp_path, good_arrays, meta=np.array(json.dumps({"t": "x" * MAX_META_CHARS}))),
             "'meta'", "characters")


def test_writer_refuses_meta_the_reader_would_refuse(tmp_path, good_trace):
    from hades.traces.format import MAX_META_DEPTH
    d = {k: getattr(good_trace, k) for k in good_trace.__dataclass_fields__}
    nested: dict = {}
    for _ in range(MAX_META_DEPTH + 1):
        nested = {"n": nested}
    d["meta"] = nested
    with pytest.raises(TraceError, match="'meta'"):
        write_trace(tmp_path / "t.npz", Trace(**d))
    assert os.listdir(tmp_path) == []


def test_uint64_ids_beyond_int64_are_reported_exactly(tmp_path, good_arrays):
    """Integer keys of any dtype: a uint64 token id >= 2^63 is refused with its own value
    (not the negative number an int64 cast would print)."""
    dt = good_arrays["draft_tokens"].astype(np.uint64)
    dt[3, 1] = (1 << 64) - 1
    _refused(_write_bad(tmp_path, good_arrays, draft_tokens=dt), "'draft_tokens'", "round 3",
             str((1 << 64) - 1))
