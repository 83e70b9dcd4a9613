"""Prompt-lookup drafts (hades/llm/lookup.py, docs/MODELS.md "Prompt-lookup drafts"): the n-gram
proposer, its one-hot rounds through the decoder and both trace formats (v1 at every level), the
command line, the prompt sets, and one short recording from the embedded model on a grounded
prompt."""
from __future__ import annotations

import shlex

import numpy as np
import pytest

from hades import cli
from hades.errors import ConfigError
from hades.fl.verifier import verify_logit_round, verify_round
from hades.llm.lookup import DEFAULT_NGRAM, check_ngram, format_ngram, parse_ngram, propose
from hades.llm.prompts import CHAT_PROMPTS, GROUNDED, GROUNDED_PROMPTS, prompt_sets
from hades.traces.format import Trace, read_trace, write_trace
from hades.traces.format_v2 import V2_ARRAY_KEYS, LogitTrace


# ---- the proposer -----------------------------------------------------------------------------------

def test_longest_match_wins_over_a_more_recent_shorter_one():
    #        0  1  2  3  4  5  6  7
    ctx = [1, 2, 7, 9, 2, 8, 1, 2]
    assert propose(ctx, 3) == [7, 9, 2]          # the 2-gram (1, 2) at 0, not the 1-gram (2) at 4
    assert propose(ctx, 3, (1, 1)) == [8, 1, 2]  # with n = 1 only: the most recent 2 is at 4


def test_most_recent_occurrence_wins():
    assert propose([1, 5, 1, 6, 1], 2) == [6, 1]
    assert propose([3, 4, 9, 3, 4, 8, 0, 3, 4], 1) == [8]


def test_no_match_proposes_nothing():
    assert propose([1, 2, 3, 4], 4) == []
    assert propose([7], 4) == [] and propose([], 4) == []
    assert propose([1, 2, 1], 0) == []


def test_gamma_caps_the_proposal_and_the_context_end_shortens_it():
    ctx = [1, 2, 3, 4, 5, 1]
    assert propose(ctx, 2) == [2, 3]
    assert propose(ctx, 10) == [2, 3, 4, 5, 1]   # everything after the match, up to the end
    assert propose([5, 5, 5], 4) == [5]          # the match may overlap the suffix


def test_the_ngram_range_limits_the_match_length():
    ctx = [1, 5, 2, 1]
    assert propose(ctx, 3, (1, 3)) == [5, 2, 1]
    assert propose(ctx, 3, (2, 3)) == []          # only (2, 1) and (5, 2, 1) may match: neither occurs earlier
    ctx = [4, 6, 1, 2, 3, 9, 2, 3, 5, 0, 1, 2, 3]
    assert propose(ctx, 2, (3, 3)) == [9, 2]      # (1, 2, 3) at 2
    assert propose(ctx, 2, (1, 2)) == [5, 0]      # (2, 3) most recently at 6
    assert propose(ctx, 2, (1, 64)) == [9, 2]     # n above the context length is skipped


def test_ngram_parsing_and_checks():
    assert parse_ngram("1..3") == parse_ngram("1-3") == (1, 3) == DEFAULT_NGRAM
    assert parse_ngram("2") == (2, 2) and format_ngram((2, 4)) == "2..4"
    for bad in ("0..2", "3..1", "x", "1..65", "-1"):
        with pytest.raises(ConfigError):
            parse_ngram(bad)
    with pytest.raises(ConfigError, match="1 <= min <= max"):
        check_ngram((2, 1))
    with pytest.raises(ConfigError):
        propose([1, 1], -1)


def test_prompt_sets():
    assert len(GROUNDED_PROMPTS) == 6 and len(CHAT_PROMPTS) == 3
    assert [n for n, _ in GROUNDED] == ["summarise", "rewrite", "extract", "continue-code", "edit-code", "steps"]
    assert list(prompt_sets("both")) == ["chat", "grounded"] and prompt_sets("grounded") == {"grounded": GROUNDED_PROMPTS}
    assert all(len(p) < 2000 for p in GROUNDED_PROMPTS)   # a few hundred tokens at most
    with pytest.raises(ConfigError, match="unknown prompt set"):
        prompt_sets("poems")


# ---- through the decoder, on a tiny local model ---------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_target(tiny_models):
    pytest.importorskip("transformers")
    from hades.llm.models import PairSpec, load_pair
    return load_pair(PairSpec(target=tiny_models["target"], no_draft=True))


TINY_PROMPT = "the sea wave the sea wave boat the sea"


def _decode(pair, **kw):
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder
    cfg = DecodeConfig(**{"gammas": (4,), "max_new_tokens": None, "max_rounds": 8, "record": True, **kw})
    return cfg, SpeculativeDecoder(pair, cfg).generate(encode_prompt(pair.tokenizer, TINY_PROMPT))


@pytest.mark.parametrize("trace_format", [1, 2])
@pytest.mark.parametrize("mode", ["greedy", "stochastic"])
def test_lookup_rounds_are_one_hot_and_reverify_at_fl(tiny_target, trace_format, mode):
    from hades.llm.specdec import trace_from_decode
    cfg, res = _decode(tiny_target, lookup_ngram=(1, 3), trace_format=trace_format, mode=mode, seed=5)
    tr = trace_from_decode(res, cfg, tiny_target.vocab_size, {})
    gammas = [r.gamma for r in res.rounds]
    assert all(0 <= g <= 4 for g in gammas) and sum(gammas) > 0
    assert tr.gamma.tolist() == gammas and tr.gamma_max == max(gammas)
    for i in range(tr.num_rounds):
        rnd, g = tr.round(i), int(tr.gamma[i])
        want = (int(tr.expected_accepted[i]), int(tr.expected_token[i]))
        if trace_format == 2:
            assert isinstance(tr, LogitTrace) and tr.onehot_draft[i] == 1
            assert not tr.draft_logits[i].any() and not tr.draft_uniforms[i].any()
            assert verify_logit_round(rnd, tr.weight_bits, tr.uniform_bits).decision() == want
        else:   # v1: the one-hot row at the row sum M, decided as with ZP = 1
            assert isinstance(tr, Trace)
            expect = np.zeros((g, tr.vocab_size), np.int64)
            expect[np.arange(g), rnd.draft_tokens] = tr.row_sum
            assert np.array_equal(rnd.draft_probs, expect)
            assert verify_round(rnd, tr.row_sum, tr.uniform_bits).decision() == want
    assert res.timings.draft_forward == 0.0


@pytest.mark.parametrize("mode", ["greedy", "stochastic"])
def test_v1_lookup_rounds_verify_at_every_level(level, sim_options, tiny_target, mode):
    """v1 carries one-hot drafts as probability rows (M at x_t): FL, CL and RTL decide them as the
    recorder did, with CL == RTL cycles."""
    from hades.config import VerifierConfig
    from hades.llm.specdec import trace_from_decode
    from harness.checks import check_rounds
    cfg, res = _decode(tiny_target, lookup_ngram=(1, 3), trace_format=1, mode=mode, temperature=0.5, seed=3)
    tr = trace_from_decode(res, cfg, tiny_target.vocab_size, {})
    hw = VerifierConfig(lanes=4, vocab_max=32, gamma_max=4)
    hw.check_trace(tr)
    results = check_rounds(level, hw, list(tr.rounds()), sim_options)
    assert [r.decision() for r in results] == list(zip(tr.expected_accepted.tolist(), tr.expected_token.tolist()))


def test_greedy_lookup_emits_the_targets_greedy_sequence(tiny_target):
    _, plain = _decode(tiny_target, gammas=(0,), mode="greedy", trace_format=2, max_rounds=None, max_new_tokens=20)
    _, spec = _decode(tiny_target, lookup_ngram=(1, 3), mode="greedy", trace_format=2, max_rounds=None,
                      max_new_tokens=20)
    assert spec.new_tokens[:20] == plain.new_tokens[:20]
    assert spec.num_rounds < 20 and spec.accepted > 0   # some drafts were accepted


def test_a_pair_without_a_draft_model_refuses_model_drafts(tiny_target):
    with pytest.raises(ConfigError, match="no draft model"):
        _decode(tiny_target)


def test_cli_lookup_trace_regenerates_exactly(tiny_models, tmp_path, capsys):
    pytest.importorskip("transformers")
    out = tmp_path / "lk.npz"
    argv = ["trace", "-o", str(out), "--target", tiny_models["target"], "--draft-method", "lookup",
            "--lookup-ngram", "1..2", "--prompt", TINY_PROMPT, "--gamma", "3", "--rounds", "5", "--seed", "2",
            "--no-progress"]
    assert cli.main(argv) == 0
    tr = read_trace(out)
    assert isinstance(tr, LogitTrace) and tr.onehot_draft.all() and tr.meta["decode"]["lookup_ngram"] == [1, 2]
    assert tr.meta["models"]["draft"].startswith("prompt lookup")
    regen = shlex.split(tr.meta["regenerate"])
    assert regen[regen.index("--draft-method") + 1] == "lookup" and regen[regen.index("--lookup-ngram") + 1] == "1..2"
    regen[regen.index("-o") + 1] = str(tmp_path / "again.npz")
    assert cli.main(regen[1:] + ["--no-progress"]) == 0
    again = read_trace(tmp_path / "again.npz")
    for key in V2_ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(tr, key), err_msg=key)
    capsys.readouterr()
    # hades decode with lookup drafts: one table per prompt set
    assert cli.main(["decode", "--target", tiny_models["target"], "--draft-method", "lookup", "--gammas", "0,3",
                     "--new-tokens", "6", "--prompt", TINY_PROMPT, "--mode", "greedy", "--no-progress",
                     "--csv", str(tmp_path / "d.csv")]) == 0
    printed = capsys.readouterr().out
    assert "prompt lookup (n-gram 1..3" in printed and "prompt set custom (1 prompts, median of 3 repeats)" in printed
    assert (tmp_path / "d.csv").read_text().splitlines()[1].startswith("custom,0,")


def test_the_default_draft_method_is_lookup():
    """No --draft-method: prompt lookup, unless --draft (model) or --draft-layers / --draft-vocab
    (layer-skip) imply another; an explicit method wins."""
    import argparse

    from hades.cli.trace import draft_method
    def method(**given):
        fields = dict(draft_method=None, draft=None, draft_layers=None, draft_vocab=None, lookup_ngram=None)
        return draft_method(argparse.Namespace(**{**fields, **given}))
    assert method() == "lookup" and method(lookup_ngram="1..2") == "lookup"
    assert method(draft="gpt2") == "model"
    assert method(draft_layers="0-4") == "layer-skip" and method(draft_vocab=8192) == "layer-skip"
    assert method(draft_method="fast-skip") == "fast-skip" and method(draft_method="layer-skip") == "layer-skip"
    with pytest.raises(ConfigError, match="--lookup-ngram applies"):
        method(draft_layers="0-4", lookup_ngram="1..2")


def test_cli_trace_without_a_draft_method_records_lookup_drafts(tiny_models, tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "d.npz"
    assert cli.main(["trace", "-o", str(out), "--target", tiny_models["target"], "--prompt", TINY_PROMPT,
                     "--gamma", "3", "--rounds", "4", "--no-progress"]) == 0
    tr = read_trace(out)
    assert tr.onehot_draft.all() and tr.meta["models"]["draft"].startswith("prompt lookup")
    assert tr.meta["decode"]["lookup_ngram"] == [1, 3]


# ---- the embedded model on a grounded prompt ----------------------------------------------------------

@pytest.mark.model
def test_embedded_lookup_trace_on_a_grounded_prompt(tmp_path, embedded_pair_loader):
    """Greedy lookup drafts on the 'rewrite' task: the v2 file read back, FL decisions equal to
    the recorded ones round by round, drafts accepted, and the emitted text that of plain greedy
    decoding with the same numerics."""
    from hades.llm.models import encode_prompt
    from hades.llm.record import record_trace
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder, torch_threads
    pair = embedded_pair_loader.get()   # its layer-skip draft stays unused: lookup runs no draft model
    prompt = dict(GROUNDED)["rewrite"]
    cfg = DecodeConfig(gammas=(4,), mode="greedy", max_rounds=6, max_new_tokens=None, record=True,
                       trace_format=2, lookup_ngram=(1, 3))
    back = read_trace(write_trace(tmp_path / "lk.npz", record_trace(pair, cfg, prompt)))
    assert isinstance(back, LogitTrace) and back.num_rounds == 6 and back.mode == "greedy"
    assert back.onehot_draft.all() and back.meta["decode"]["lookup_ngram"] == [1, 3]
    for i, rnd in enumerate(back.rounds()):
        assert verify_logit_round(rnd, back.weight_bits, back.uniform_bits, where=f"round {i}").decision() == \
            (int(back.expected_accepted[i]), int(back.expected_token[i])), f"round {i}"
    assert back.expected_accepted.sum() > 0
    emitted = back.meta["emitted_tokens"]
    assert len(emitted) == int(back.expected_accepted.sum()) + back.num_rounds
    plain = DecodeConfig(gammas=(0,), mode="greedy", max_new_tokens=len(emitted), trace_format=2)
    with torch_threads(1):
        ref = SpeculativeDecoder(pair, plain).generate(encode_prompt(pair.tokenizer, prompt)).new_tokens
    assert ref[: len(emitted)] == emitted
