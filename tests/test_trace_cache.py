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
    old_fields = {k: v for k, v in asdict(REQ).items() if k not in ("prompt", "trace_format", "draft", "temperature")}
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
    for bad in (dict(trace_format=3), dict(trace_format=True), dict(trace_format="2")):
        with pytest.raises(ConfigError, match="1 or 2"):
            replace(REQ, **bad).check()
    replace(v2, gamma=2, nested_from=3).check()                        # nested and real v2 requests exist
    replace(v2, source="real", vocab_size=None).check()


# ---- v2 (logit) summaries ---------------------------------------------------------------------

V2_REQ = TraceRequest(source="synthetic", gamma=4, rounds=8, vocab_size=300, seed=2, trace_format=2)
V1_SUMMARY_KEYS = {"format", "trace_id", "request", "mode", "vocab_size", "row_sum", "prob_bits", "uniform_bits",
                   "gamma_max", "gamma", "accepted", "token", "meta"}


def test_v1_summary_json_keeps_its_keys(built):
    _, _, _, doc = built
    assert set(doc) == V1_SUMMARY_KEYS and doc["format"] == "hades-trace-summary/1"
    assert set(doc["request"]) == {"source", "gamma", "rounds", "seed", "mode", "prob_bits", "uniform_bits",
                                   "vocab_size", "nested_from", "prompt", "trace_format"}


@pytest.mark.parametrize("mode", ["stochastic", "greedy"])
def test_v2_summary_is_the_logit_block_fl_and_round_trips(tmp_path, mode):
    from dataclasses import replace

    from hades.fl.verifier import logit_block_output
    from hades.traces.cache import TraceSummary, get_trace
    req = replace(V2_REQ, mode=mode)
    s = get_summary(req, tmp_path)
    tr = get_trace(req, tmp_path)
    assert s.trace_format == 2 and s.row_sum is None and s.weight_bits == tr.weight_bits
    assert s.draft_tokens.shape == (8, 4) and s.draft_tokens.dtype == np.int64
    assert (s.round_greedy == (mode == "greedy")).all() and np.array_equal(s.onehot, tr.onehot_draft.astype(bool))
    assert s.onehot.any() and not s.onehot.all()
    for i in range(tr.num_rounds):
        out = logit_block_output(tr.round(i), tr.weight_bits, tr.uniform_bits)
        assert (s.accepted[i], s.token[i]) == out.result.decision()
        assert [d.token for d in out.drafts] == ([] if s.onehot[i] else s.draft_tokens[i].tolist())
    doc = json.loads(_summary_path(req, tmp_path).read_text())
    assert doc["format"] == "hades-trace-summary/2" and "row_sum" not in doc
    back = TraceSummary.from_json(doc)
    for k in ("gamma", "accepted", "token", "round_greedy", "onehot", "draft_tokens"):
        assert np.array_equal(getattr(back, k), getattr(s, k)) and getattr(back, k).dtype == getattr(s, k).dtype
    assert back.to_json() == doc and cached_summary(req, tmp_path) is not None


V2_EDITS = {
    "row_sum added": ("row_sum", 65535),
    "greedy round in a stochastic request": ("greedy", lambda v: [1] + v[1:]),
    "onehot 2": ("onehot", lambda v: [2] + v[1:]),
    "draft token out of range": ("draft_tokens", lambda v: [[300] + v[0][1:]] + v[1:]),
    "draft tokens one slot short": ("draft_tokens", lambda v: [row[:-1] for row in v]),
    "draft tokens missing": ("draft_tokens", _DROP),
    "v1 format for a v2 request": ("format", "hades-trace-summary/1"),
    "request made v1": ("request.trace_format", None),
}


@pytest.mark.parametrize("edit", list(V2_EDITS), ids=list(V2_EDITS))
def test_edited_v2_summary_is_a_miss(tmp_path, edit):
    get_summary(V2_REQ, tmp_path)
    path = _summary_path(V2_REQ, tmp_path)
    doc = json.loads(path.read_text())
    key, value = V2_EDITS[edit]
    path.write_text(_edit(doc, key, value))
    assert cached_summary(V2_REQ, tmp_path) is None
    get_summary(V2_REQ, tmp_path)
    assert json.loads(path.read_text()) == doc


def test_v2_recorded_drafts_and_decisions_are_checked(tmp_path):
    """A greedy model draft that is not the argmax of its row is a valid file, but not what
    the block samples; a wrong recorded token is caught like v1's."""
    from dataclasses import replace

    from hades.errors import TraceError
    from hades.traces.cache import get_trace, trace_path
    from hades.traces.format import write_trace
    req = replace(V2_REQ, mode="greedy")
    tr = get_trace(req, tmp_path)
    assert not tr.onehot_draft[0]                       # round 0 is always among the checked ones
    tr.draft_tokens[0, 0] = (tr.draft_tokens[0, 0] + 1) % 300
    write_trace(trace_path(req, tmp_path), tr)
    with pytest.raises(TraceError, match="round 0: recorded draft tokens"):
        get_summary(req, tmp_path)
    tr = get_trace(V2_REQ, tmp_path)
    tr.expected_token[-1] = (tr.expected_token[-1] + 1) % 300
    write_trace(trace_path(V2_REQ, tmp_path), tr)
    with pytest.raises(TraceError, match="round 7: recorded decision"):
        get_summary(V2_REQ, tmp_path)


def test_nested_v2_rounds_are_the_base_rounds_cut_and_re_decided(tmp_path):
    from dataclasses import replace

    from hades.fl.verifier import logit_block_output
    from hades.traces.cache import get_trace
    from hades.traces.format_v2 import LogitTrace
    base = get_trace(V2_REQ, tmp_path)
    for g in (0, 1, 3, 4):
        req = replace(V2_REQ, gamma=g, nested_from=4)
        cut = get_trace(req, tmp_path)
        s = get_summary(req, tmp_path)
        assert isinstance(cut, LogitTrace) and (cut.gamma == g).all() and cut.meta["nested"]["cut_to_gamma"] == g
        assert np.array_equal(cut.target_logits, base.target_logits[:, : g + 1])
        assert np.array_equal(cut.draft_logits, base.draft_logits[:, :g])
        assert np.array_equal(cut.draft_uniforms, base.draft_uniforms[:, :g])
        assert np.array_equal(s.draft_tokens, base.draft_tokens[:, :g])
        for i in range(cut.num_rounds):
            want = logit_block_output(cut.round(i), cut.weight_bits, cut.uniform_bits).result.decision()
            assert (s.accepted[i], s.token[i]) == want
            if base.expected_accepted[i] < g:           # rejected inside the cut: unchanged
                assert want == (base.expected_accepted[i], base.expected_token[i])
    full = get_summary(replace(V2_REQ, nested_from=4), tmp_path)
    assert np.array_equal(full.accepted, base.expected_accepted) and np.array_equal(full.token, base.expected_token)


# ---- real requests: the draft and the temperature are part of the key -------------------------------

def test_real_requests_key_their_draft_and_temperature():
    """A real request names its draft (prompt lookup by default) and temperature (0.7 by default),
    both in the key, so traces recorded under other settings (or before these fields existed)
    are never served for it."""
    import hashlib
    from dataclasses import asdict, replace

    from hades.errors import ConfigError
    from hades.traces.cache import CACHE_FORMAT, DEFAULT_REAL_DRAFT, DEFAULT_REAL_TEMPERATURE
    real = TraceRequest(source="real", gamma=4, rounds=8)
    assert (real.draft, real.temperature) == (DEFAULT_REAL_DRAFT, DEFAULT_REAL_TEMPERATURE) == ("lookup", 0.7)
    assert replace(real, draft="lookup", temperature=0.7).key() == real.key()
    assert TraceRequest(source="real", gamma=4, rounds=8, temperature=1).key() == \
        TraceRequest(source="real", gamma=4, rounds=8, temperature=1.0).key()
    keys = {real.key(), replace(real, draft="layer-skip").key(), replace(real, temperature=1.0).key(),
            replace(real, mode="greedy").key()}
    assert len(keys) == 4
    assert replace(real, mode="greedy").temperature == 1.0   # greedy rows are plain softmax rows
    # the key a request of the same fields had before draft and temperature existed is not reused
    old = {k: v for k, v in asdict(real).items() if k not in ("prompt", "trace_format", "draft", "temperature")}
    payload = {"cache": CACHE_FORMAT, "producer": real.producer_version(), **old}
    assert real.key() != hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    assert "-lookup-" in real.file_stem() and "-layer-skip-" in replace(real, draft="layer-skip").file_stem()
    assert REQ.draft is None and REQ.temperature is None    # synthetic keys are unchanged
    for bad, match in ((replace(REQ, draft="lookup"), "no draft method"),
                       (replace(REQ, temperature=0.7), "no temperature"),
                       (replace(real, draft="beam"), "unknown draft 'beam'"),
                       (replace(real, temperature=0.0), "temperature 0 is greedy"),
                       (replace(real, temperature=-1.0), "temperature")):
        with pytest.raises(ConfigError, match=match):
            bad.check()


def test_nested_lookup_rounds_are_cut_to_what_they_proposed():
    """Prompt-lookup rounds propose 0..gamma drafts: a nested request keeps min(g, proposed) of
    each (what the lookup capped at g proposes in that context), re-decided by FL; rounds the cut
    leaves whole keep their recorded decisions."""
    from dataclasses import replace

    from hades.fl.verifier import logit_block_output
    from hades.traces.cache import cut_trace, summarize
    from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
    base = synthetic_logit_trace(LogitSyntheticSpec(vocab_size=200, rounds=10, gammas=(4, 0, 2, 4, 1), seed=5,
                                                    greedy_share=0.0, onehot_share=1.0))
    assert base.onehot_draft.all() and sorted(set(base.gamma.tolist())) == [0, 1, 2, 4]
    lookup = TraceRequest(source="real", gamma=4, rounds=10, trace_format=2)
    for g in (0, 1, 2, 3):
        req = replace(lookup, gamma=g, nested_from=4)
        cut = cut_trace(base, req)
        assert np.array_equal(cut.gamma, np.minimum(base.gamma, g)) and cut.gamma_max == g
        for i in range(cut.num_rounds):
            want = logit_block_output(cut.round(i), cut.weight_bits, cut.uniform_bits).result.decision()
            assert (int(cut.expected_accepted[i]), int(cut.expected_token[i])) == want
            if base.gamma[i] <= g:   # the cut left the round whole
                assert want == (base.expected_accepted[i], base.expected_token[i])
        s = summarize(cut, req, decided_by_fl=True)
        assert s.request.variable_gamma and np.array_equal(s.gamma, cut.gamma)
    # a model-draft request still refuses bases whose rounds have fewer drafts than it asks
    from hades.errors import TraceError
    with pytest.raises(TraceError, match="cannot cut gamma-2"):
        cut_trace(base, replace(lookup, draft="layer-skip", gamma=2, nested_from=4))
