"""The cheaper self-speculative drafts (issue 16 item 2): the FR-Spec head (hades.llm.models.
truncated_head), which scores only the most frequent tokens, and the fast-skip draft method.

The head returns -inf outside its kept set, so the draft's rows give those tokens zero weight
and its samples come from the truncated distribution; verification uses the recorded rows and
stays exact. Checked on the tiny local GPT-2 models (harness/tiny_models.py), v1 and v2, and
with a chi-square test of the draft's first token over many seeds."""
from __future__ import annotations

import numpy as np
import pytest

from hades import cli, numerics
from hades.errors import ConfigError
from harness.stats import chi2_sf

pytest.importorskip("transformers")

KEEP = 9            # tokens the tiny draft's head keeps (ids 0..8 of 17)
PROMPT = "the sea wave boat the sun"


@pytest.fixture(scope="module")
def pairs(tiny_models):
    """(full-head pair, truncated-head pair) of the tiny target with a 2-layer layer-skip draft."""
    from hades.llm.models import PairSpec, load_pair
    spec = PairSpec(target=tiny_models["target"], draft_layers=(0, 2))
    return load_pair(spec), load_pair(PairSpec(target=tiny_models["target"], draft_layers=(0, 2), draft_vocab=KEEP))


def _logits(model, ids):
    import torch
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0, -1].numpy()


def test_the_head_scores_the_kept_tokens_only_and_leaves_the_target_alone(pairs):
    from hades.llm.models import encode_prompt, frequent_token_ids, truncated_head
    full, cut = pairs
    ids = encode_prompt(full.tokenizer, PROMPT)
    a, b = _logits(full.draft, ids), _logits(cut.draft, ids)
    assert a.shape == b.shape == (full.vocab_size,)
    assert np.isneginf(b[KEEP:]).all() and np.isfinite(b[:KEEP]).all()
    np.testing.assert_allclose(b[:KEEP], a[:KEEP], rtol=1e-5, atol=1e-5)
    before = _logits(cut.target, ids)
    again = truncated_head(cut.target, [3, 1, 3])               # ids are deduplicated and sorted
    assert np.isfinite(_logits(again, ids)).sum() == 2
    assert np.array_equal(_logits(cut.target, ids), before)     # the model it was given is untouched
    assert cut.description["draft_vocab"] == KEEP and "9 most frequent" in cut.description["draft"]
    assert frequent_token_ids(full.tokenizer, 4).tolist() == [0, 1, 2, 3]
    for bad in ([], [-1], [full.vocab_size]):
        with pytest.raises(ConfigError, match="token ids"):
            truncated_head(full.draft, bad)


@pytest.mark.parametrize("trace_format", [1, 2])
def test_recorded_draft_rows_give_zero_weight_outside_the_kept_tokens(pairs, trace_format):
    """Every draft row of a recorded run is zero (v1) or masked (v2) outside the kept set, every
    draft token lies inside it, and FL re-derives every recorded decision."""
    from hades.fl.verifier import verify_logit_round, verify_round
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder, trace_from_decode
    _, cut = pairs
    cfg = DecodeConfig(gammas=(3,), max_new_tokens=None, max_rounds=8, record=True, seed=4, temperature=1.5,
                       trace_format=trace_format)
    res = SpeculativeDecoder(cut, cfg).generate(encode_prompt(cut.tokenizer, PROMPT))
    tr = trace_from_decode(res, cfg, cut.vocab_size, {})
    assert tr.draft_tokens[:, :3].max() < KEEP
    for i in range(tr.num_rounds):
        rnd = tr.round(i)
        if trace_format == 1:
            assert (rnd.draft_probs[:, KEEP:] == 0).all() and (rnd.draft_probs.sum(axis=1) == tr.row_sum).all()
            got = verify_round(rnd, tr.row_sum, tr.uniform_bits)
        else:
            assert (rnd.draft_logits[:, KEEP:] == numerics.BF16_NEG_INF).all()
            for row in rnd.draft_logits:
                w, z = numerics.logit_weights(row, rnd.draft_params, tr.weight_bits, "draft row")
                assert (w[KEEP:] == 0).all() and z == w.sum() > 0
            got = verify_logit_round(rnd, tr.weight_bits, tr.uniform_bits, where=f"round {i}")
        assert got.decision() == (int(tr.expected_accepted[i]), int(tr.expected_token[i])), f"round {i}"


def _chi_square_p(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    keep = expected > 0
    if (counts[~keep] > 0).any():
        return 0.0                                   # a sample the row gives no weight
    stat = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    return chi2_sf(stat, int(keep.sum()) - 1)


def test_the_drafts_samples_follow_the_truncated_rows(pairs):
    """The first draft token of 1500 one-round decodes (seeds 0..1499, same context): its counts
    fit the recorded truncated row (chi-square), and do not fit the full-head row they came from
    before truncation, so the test can tell a draft that ignored its head."""
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder
    full, cut = pairs
    ids = encode_prompt(cut.tokenizer, PROMPT)
    counts = np.zeros(cut.vocab_size, np.int64)
    row = None
    for seed in range(1500):
        cfg = DecodeConfig(gammas=(1,), max_new_tokens=None, max_rounds=1, record=True, seed=seed, temperature=2.0)
        rnd = SpeculativeDecoder(cut, cfg).generate(ids).rounds[0]
        counts[int(rnd.draft_tokens[0])] += 1
        row = rnd.draft_probs[0] if row is None else row
        assert np.array_equal(rnd.draft_probs[0], row)   # one context: one row
    truncated = row / row.sum()
    p_row = _chi_square_p(counts, truncated)
    full_row = numerics.quantize_rows(_softmax(_logits(full.draft, ids) / 2.0), numerics.default_row_sum(16))[0]
    assert full_row[KEEP:].sum() > 0.05 * full_row.sum()   # the truncation removes real weight
    assert p_row > 1e-4, p_row
    assert _chi_square_p(counts, full_row / full_row.sum()) < 1e-9


def _softmax(z):
    z = np.asarray(z, np.float64)[None]
    e = np.exp(z - z.max())
    return e / e.sum()


def test_fast_skip_and_draft_vocab_on_the_command_line(tiny_models, tmp_path, capsys):
    argv = ["decode", "--target", tiny_models["target"], "--draft-layers", "0,2", "--draft-vocab", str(KEEP),
            "--gammas", "0,2", "--new-tokens", "6", "--prompt", PROMPT, "--no-progress"]
    assert cli.main(argv) == 0
    assert f"head of the {KEEP} most frequent tokens" in capsys.readouterr().out
    out = tmp_path / "t.npz"
    assert cli.main(["trace", "--target", tiny_models["target"], "--draft-layers", "0,2", "--draft-vocab", str(KEEP),
                     "--gamma", "2", "--rounds", "3", "--prompt", PROMPT, "-o", str(out)]) == 0
    from hades.traces.format import read_trace
    tr = read_trace(out)
    assert "--draft-vocab 9" in tr.meta["regenerate"] and tr.meta["models"]["draft_vocab"] == KEEP
    capsys.readouterr()
    plain = argv[:3] + argv[5:]   # without --draft-layers
    for bad, match in ((plain + ["--draft-method", "lookup"], "--draft-vocab applies to draft models"),
                       (argv[:5] + ["--draft-vocab", "99"] + argv[7:], "exceeds the model's 17")):
        assert cli.main(bad) == 2
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1, err
    assert cli.main(["decode", "--target", tiny_models["target"], "--draft-method", "fast-skip", "--gammas", "0",
                     "--new-tokens", "2", "--prompt", PROMPT, "--no-progress"]) == 2
    assert "needs --draft-layers" in capsys.readouterr().err


# ---- the int8 draft (--draft-method int8, --draft-weights int8) ----------------------------------------------

def test_int8_draft_quantises_its_linear_layers_and_leaves_the_target_alone(tiny_models):
    import torch
    from hades.llm.models import PairSpec, encode_prompt, int8_draft, load_pair
    float_pair = load_pair(PairSpec(target=tiny_models["target"], draft_layers=(0, 1, 2)))
    pair = load_pair(PairSpec(target=tiny_models["target"], draft_layers=(0, 1, 2), draft_weights="int8"))
    ids = encode_prompt(pair.tokenizer, PROMPT)
    target_before = _logits(pair.target, ids)
    quantised = [m for m in pair.draft.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")]
    assert quantised and not any(isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear
                                 for m in pair.draft.modules())
    assert not any(type(m).__module__.startswith("torch.ao") for m in pair.target.modules())
    a, b = _logits(float_pair.draft, ids), _logits(pair.draft, ids)   # all layers: int8 vs float of one model
    assert not np.array_equal(a, b) and np.abs(a - b).max() < 0.05 * np.abs(a).max() + 0.1
    assert np.array_equal(_logits(pair.target, ids), target_before)   # the target computes in float
    assert pair.description["draft_weights"] == "int8" and "int8 weights" in pair.description["draft"]
    cut = int8_draft(load_pair(PairSpec(target=tiny_models["target"], draft_layers=(0, 2), draft_vocab=KEEP)).draft)
    assert np.isneginf(_logits(cut, ids)[KEEP:]).all()   # the FR-Spec head stays as it was, in float
    for bad in (PairSpec(draft_weights="int4"), PairSpec(no_draft=True, draft_weights="int8")):
        with pytest.raises(ConfigError, match="draft weights"):
            bad.check()


@pytest.mark.parametrize("mode", ["greedy", "stochastic"])
def test_int8_draft_decoding_is_verified_exactly_from_its_recorded_rows(tiny_models, mode):
    """The draft samples from its own int8 rows and the recorded trace carries them: FL re-derives
    every decision, and the greedy run emits the target's own greedy text."""
    from hades.fl.verifier import verify_logit_round
    from hades.llm.models import PairSpec, encode_prompt, load_pair
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder, trace_from_decode
    pair = load_pair(PairSpec(target=tiny_models["target"], draft_layers=(0, 1, 2), draft_weights="int8"))
    ids = encode_prompt(pair.tokenizer, PROMPT)
    cfg = DecodeConfig(gammas=(3,), mode=mode, max_new_tokens=12, trace_format=2, record=True, seed=3)
    res = SpeculativeDecoder(pair, cfg).generate(ids)
    tr = trace_from_decode(res, cfg, pair.vocab_size, {})
    for i, rnd in enumerate(tr.rounds()):
        assert verify_logit_round(rnd, tr.weight_bits, tr.uniform_bits).decision() == \
            (int(tr.expected_accepted[i]), int(tr.expected_token[i]))
    if mode == "greedy":
        plain = SpeculativeDecoder(pair, DecodeConfig(gammas=(0,), mode="greedy", max_new_tokens=12,
                                                      trace_format=2)).generate(ids)
        assert res.new_tokens[:12] == plain.new_tokens[:12]


def test_int8_draft_on_the_command_line(tiny_models, tmp_path, capsys):
    out = tmp_path / "q.npz"
    assert cli.main(["trace", "--target", tiny_models["target"], "--draft-method", "int8", "--draft-layers", "0-2",
                     "--gamma", "2", "--rounds", "3", "--prompt", PROMPT, "-o", str(out), "--no-progress"]) == 0
    from hades.traces.format import read_trace
    tr = read_trace(out)
    assert "--draft-weights int8" in tr.meta["regenerate"] and tr.meta["models"]["draft_weights"] == "int8"
    capsys.readouterr()
    base = ["decode", "--target", tiny_models["target"], "--gammas", "0", "--new-tokens", "2", "--prompt", PROMPT,
            "--no-progress"]
    for bad, match in ((base + ["--draft-method", "int8"], "needs --draft-layers"),
                       (base + ["--draft-method", "lookup", "--draft-weights", "int8"], "--draft-weights applies"),
                       (base + ["--draft-method", "int8", "--draft-layers", "0", "--draft-weights", "float"],
                        "drop --draft-weights float")):
        assert cli.main(bad) == 2
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1, err
