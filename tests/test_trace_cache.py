"""The trace cache's summary files (hades/traces/cache.py): a summary edited by hand, cut
short, or written by another version is a cache miss that get_summary rebuilds; it never
crashes a sweep and never hands out decisions that do not fit its request."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hades.traces.cache import SUMMARY_FORMAT, TraceRequest, _summary_path, cached_summary, get_summary

REQ = TraceRequest(source="synthetic", gamma=3, rounds=6, vocab_size=50, seed=4)


def _edit(d: dict, key: str, value):
    d = json.loads(json.dumps(d))
    target = d
    *path, last = key.split(".")
    for k in path:
        target = target[k]
    if value is _DROP:
        del target[last]
    else:
        target[last] = value(target[last]) if callable(value) else value
    return json.dumps(d)


_DROP = object()
_RAW = "raw"   # the text itself, not a JSON edit

EDITS = {
    "gamma list shortened": ("gamma", lambda v: v[:-1]),
    "token list lengthened": ("token", lambda v: v + [0]),
    "accepted 1e400": (_RAW, lambda text: re.sub(r'"accepted": \[-?\d+', '"accepted": [1e400', text)),
    "token NaN": (_RAW, lambda text: re.sub(r'"token": \[-?\d+', '"token": [NaN', text)),
    "row_sum raw 1e400": (_RAW, lambda text: re.sub(r'"row_sum": \d+', '"row_sum": 1e400', text)),
    "row_sum 1e400": ("row_sum", 1e400),
    "accepted float": ("accepted", lambda v: [float(x) for x in v]),
    "accepted bool": ("accepted", lambda v: [True] + v[1:]),
    "token huge int": ("token", lambda v: [10**30] + v[1:]),
    "token out of range": ("token", lambda v: [REQ.vocab_size] + v[1:]),
    "accepted above gamma": ("accepted", lambda v: [REQ.gamma + 1] + v[1:]),
    "accepted negative": ("accepted", lambda v: [-1] + v[1:]),
    "gamma differs from the request": ("gamma", lambda v: [REQ.gamma - 1] + v[1:]),
    "gamma not a list": ("gamma", "3,3,3"),
    "vocab_size a string": ("vocab_size", "50"),
    "vocab_size differs": ("vocab_size", 51),
    "prob_bits differs": ("prob_bits", 12),
    "gamma_max negative": ("gamma_max", -1),
    "mode unknown": ("mode", "beam"),
    "meta a list": ("meta", []),
    "trace_id edited": ("trace_id", "0" * 16),
    "request field unknown": ("request.colour", "red"),
    "request field wrong type": ("request.rounds", "6"),
    "request edited": ("request.seed", 5),
    "key missing": ("accepted", _DROP),
    "key added": ("extra", 1),
    "format edited": ("format", "hades-trace-summary/0"),
    "top level a list": (_RAW, lambda text: "[" + text + "]"),
    "truncated": (_RAW, lambda text: text[: len(text) // 2]),
    "nested past the recursion limit": (_RAW, lambda text: "[" * 100_000 + "]" * 100_000),
    "not UTF-8": (_RAW, lambda text: "\udcff"),
}


@pytest.fixture
def built(tmp_path):
    summary = get_summary(REQ, tmp_path)
    path = _summary_path(REQ, tmp_path)
    return tmp_path, path, summary, json.loads(path.read_text())


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_edited_summary_is_a_miss_and_is_rebuilt(built, edit):
    cache_dir, path, good, doc = built
    key, value = EDITS[edit]
    text = value(path.read_text()) if key is _RAW else _edit(doc, key, value)
    assert text != path.read_text()
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert cached_summary(REQ, cache_dir) is None
    again = get_summary(REQ, cache_dir)         # rebuilt from the trace, and written back
    for k in ("gamma", "accepted", "token"):
        assert np.array_equal(getattr(again, k), getattr(good, k))
    assert json.loads(path.read_text()) == doc
    assert cached_summary(REQ, cache_dir) is not None


def test_good_summary_is_a_hit(built):
    cache_dir, path, good, doc = built
    assert doc["format"] == SUMMARY_FORMAT
    hit = cached_summary(REQ, cache_dir)
    assert hit is not None and hit.request == REQ and hit.num_rounds == REQ.rounds
    assert np.array_equal(hit.accepted, good.accepted) and hit.accepted.dtype == np.int64
    # a summary written before TraceRequest had its optional `prompt` field still reads
    del doc["request"]["prompt"]
    path.write_text(json.dumps(doc))
    assert cached_summary(REQ, cache_dir) is not None


def test_v2_synthetic_requests_and_unchanged_v1_keys(tmp_path):
    import hashlib
    from dataclasses import asdict, replace

    from hades.errors import ConfigError
    from hades.traces.cache import CACHE_FORMAT, get_trace, trace_path
    from hades.traces.format_v2 import LogitTrace
    from hades.traces.synthetic import TOOL_VERSION
    # a v1 request's key is the hash of the fields it had before trace_format existed
    old_fields = {k: v for k, v in asdict(REQ).items() if k not in ("prompt", "trace_format")}
    payload = {"cache": CACHE_FORMAT, "producer": TOOL_VERSION, **old_fields}
    assert REQ.key() == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    assert replace(REQ, trace_format=1) == REQ and replace(REQ, trace_format=np.int64(1)).key() == REQ.key()

    v2 = replace(REQ, trace_format=2)
    assert v2.key() != REQ.key() and v2.file_stem().startswith("synthetic-v2-stochastic-g3-")
    tr = get_trace(v2, tmp_path)
    assert isinstance(tr, LogitTrace) and tr.num_rounds == 6 and set(tr.gamma.tolist()) == {3}
    assert not tr.greedy.any() and tr.weight_bits == REQ.prob_bits   # mode stochastic: no greedy rounds
    assert trace_path(v2, tmp_path).is_file()
    again = get_trace(v2, tmp_path)                                    # read back from the cache
    assert np.array_equal(again.target_logits, tr.target_logits)
    assert get_trace(replace(v2, mode="greedy"), tmp_path).greedy.all()
    for bad, match in ((dict(trace_format=3), "1 or 2"), (dict(trace_format=True), "1 or 2"),
                       (dict(trace_format=2, nested_from=4), "not nested"),
                       (dict(trace_format=2, source="real", vocab_size=None), "synthetic")):
        with pytest.raises(ConfigError, match=match):
            replace(REQ, **bad).check()
    with pytest.raises(ConfigError, match="v1 traces"):
        get_summary(v2, tmp_path)
