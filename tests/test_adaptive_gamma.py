"""Adaptive gamma (hades/llm/adaptive.py, issue 16 item 5): the controller's decisions on scripted
acceptance patterns, clamping and determinism; the `auto` spelling of --gamma / --gammas and its
refusals (one line, exit 2); the decoder on tiny local models with model and lookup drafts, the
per-round gammas in the trace, `hades verify` at FL and `regenerate`; the auto row of `hades decode`."""
from __future__ import annotations

import shlex

import numpy as np
import pytest

from hades import cli
from hades.cli.trace import gamma_settings, parse_gamma_entries
from hades.errors import ConfigError
from hades.llm.adaptive import AutoGamma, parse_auto
from hades.traces.format import read_trace
from hades.traces.format_v2 import V2_ARRAY_KEYS


# ---- the controller -----------------------------------------------------------------------------------

def test_heuristic_sequence_on_a_scripted_pattern():
    """+2 after a round whose drafts were all accepted, -1 after a rejection, clamped to [1, gamma_max]."""
    ctl = AutoGamma(start=4, gamma_max=8)
    outcomes = [(4, 4), (6, 6), (8, 8), (8, 3), (7, 0), (6, 6), (8, 8), (8, 0)]
    assert ctl.schedule(outcomes) == [4, 6, 8, 8, 7, 6, 8, 8]
    assert ctl.next_gamma(8, 8, 0) == 7


def test_clamping_at_both_ends_and_rounds_without_drafts():
    ctl = AutoGamma(start=2, gamma_max=5)
    assert ctl.schedule([(2, 0), (1, 0), (1, 0), (1, 1), (3, 3), (5, 5), (5, 5)]) == [2, 1, 1, 1, 3, 5, 5]
    assert ctl.next_gamma(5, 5, 5) == 5 and ctl.next_gamma(1, 1, 0) == 1
    # prompt lookup: no proposal says nothing (gamma kept); fewer proposed than the cap, all accepted: +2
    assert ctl.next_gamma(3, 0, 0) == 3 and ctl.next_gamma(3, 1, 1) == 5 and ctl.next_gamma(3, 2, 1) == 2


def test_the_controller_is_a_pure_function_of_the_outcomes():
    rng = np.random.default_rng(7)
    outcomes = []
    g = 4
    ctl = AutoGamma()
    for _ in range(200):   # a random but self-consistent history
        acc = int(rng.integers(0, g + 1))
        outcomes.append((g, acc))
        g = ctl.next_gamma(g, g, acc)
    first = ctl.schedule(outcomes)
    assert first == AutoGamma().schedule(outcomes) and all(1 <= x <= 16 for x in first)
    assert [p for p, _ in outcomes] == first


def test_parse_auto_and_its_refusals():
    assert parse_auto("auto") == AutoGamma(start=4, gamma_max=16)
    assert parse_auto(" AUTO:2..8 ") == AutoGamma(start=2, gamma_max=8)
    assert AutoGamma(start=3, gamma_max=9).label == "auto:3..9" and parse_auto("auto:3..9").label == "auto:3..9"
    for bad, match in (("auto:0..4", "start"), ("auto:5..4", "start"), ("auto:1..65", "gamma_max"),
                       ("autox", "auto:START..MAX"), ("auto:3", "auto:START..MAX"), ("auto:2-8", "auto:START..MAX")):
        with pytest.raises(ConfigError, match=match):
            parse_auto(bad)
    with pytest.raises(ConfigError, match="integer"):
        AutoGamma(start=2.0).check()


def test_gamma_entries_and_settings():
    assert parse_gamma_entries("0,auto,2,4-5") == (0, AutoGamma(), 2, 4, 5)
    assert gamma_settings(parse_gamma_entries("2,4")) == {"gammas": (2, 4)}
    assert gamma_settings(parse_gamma_entries("auto:1..6")) == {"gamma_policy": AutoGamma(1, 6)}
    with pytest.raises(ConfigError, match="give it alone"):
        gamma_settings(parse_gamma_entries("auto,2"))
    with pytest.raises(ConfigError, match="at least one"):
        parse_gamma_entries(" , ")


def test_decode_config_and_its_metadata():
    from hades.llm.specdec import DecodeConfig, config_meta
    cfg = DecodeConfig(gamma_policy=AutoGamma(start=2, gamma_max=8))
    cfg.check()
    assert cfg.max_gamma == 8 and cfg.gamma_label == "auto:2..8"
    meta = config_meta(cfg)
    assert "gammas" not in meta
    assert meta["gamma_policy"] == {"policy": "heuristic", "start": 2, "gamma_max": 8, "up": 2, "down": 1}
    plain = config_meta(DecodeConfig(gammas=(2, 4)))
    assert plain["gammas"] == [2, 4] and "gamma_policy" not in plain   # fixed gammas: metadata as before
    with pytest.raises(ConfigError, match="AutoGamma"):
        DecodeConfig(gamma_policy="auto").check()
    with pytest.raises(ConfigError, match="start"):
        DecodeConfig(gamma_policy=AutoGamma(start=9, gamma_max=8)).check()


@pytest.mark.parametrize("argv, match", [
    (["trace", "--synthetic", "--gamma", "auto"], "not --synthetic"),
    (["trace", "--gamma", "auto,2"], "give it alone"),
    (["trace", "--gamma", "auto:9..4"], "start must be"),
    (["trace", "--gamma", "auto:2-8"], "auto:START..MAX"),
    (["trace", "--gamma", "auto", "--gamma-max", "8"], "auto:START..8"),
    (["decode", "--gammas", "auto:1..99"], "gamma_max"),
    (["decode", "--gammas", "0,automatic"], "auto:START..MAX"),
])
def test_cli_refusals_are_one_line_and_exit_2(capsys, tmp_path, argv, match):
    argv = argv[:1] + (["-o", str(tmp_path / "t.npz")] if argv[0] == "trace" else []) + argv[1:]
    try:
        rc = cli.main(argv + ["--no-progress"])
    except SystemExit as e:   # argparse type errors
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and match in err[-1], err
    assert not (tmp_path / "t.npz").exists()


# ---- through the decoder, on tiny local models -----------------------------------------------------------

TINY_PROMPT = "the sea wave the sea wave boat the sea"


@pytest.fixture(scope="module")
def tiny_pair(tiny_models):
    pytest.importorskip("transformers")
    from hades.llm.models import PairSpec, load_pair
    return load_pair(PairSpec(target=tiny_models["target"], draft=tiny_models["draft"]))


def _decode(pair, **kw):
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder
    cfg = DecodeConfig(**{"max_new_tokens": None, "max_rounds": 12, "record": True, "trace_format": 2, **kw})
    return cfg, SpeculativeDecoder(pair, cfg).generate(encode_prompt(pair.tokenizer, TINY_PROMPT))


@pytest.mark.parametrize("lookup_ngram", [None, (1, 3)], ids=["model", "lookup"])
@pytest.mark.parametrize("mode", ["greedy", "stochastic"])
def test_decoder_follows_the_controller(tiny_pair, lookup_ngram, mode):
    from hades.llm.specdec import trace_from_decode
    from hades.fl.verifier import verify_logit_round
    ctl = AutoGamma(start=2, gamma_max=5)
    cfg, res = _decode(tiny_pair, gamma_policy=ctl, lookup_ngram=lookup_ngram, mode=mode, seed=4)
    caps = ctl.schedule([(r.gamma, r.accepted) for r in res.rounds])
    gammas = [r.gamma for r in res.rounds]
    if lookup_ngram is None:
        assert gammas == caps   # model drafts: the controller's gamma is the round's
    else:
        assert all(g <= c for g, c in zip(gammas, caps)) and sum(gammas) > 0   # lookup: at most the cap
    _, again = _decode(tiny_pair, gamma_policy=ctl, lookup_ngram=lookup_ngram, mode=mode, seed=4)
    assert again.new_tokens == res.new_tokens and [r.gamma for r in again.rounds] == gammas
    tr = trace_from_decode(res, cfg, tiny_pair.vocab_size, {})
    assert tr.gamma.tolist() == gammas and tr.gamma_max == max(gammas)
    for i, rnd in enumerate(tr.rounds()):
        assert verify_logit_round(rnd, tr.weight_bits, tr.uniform_bits).decision() == \
            (int(tr.expected_accepted[i]), int(tr.expected_token[i]))


def test_greedy_auto_emits_the_targets_greedy_sequence(tiny_pair):
    _, plain = _decode(tiny_pair, gammas=(0,), mode="greedy", max_rounds=None, max_new_tokens=16)
    _, auto = _decode(tiny_pair, gamma_policy=AutoGamma(start=1, gamma_max=4), mode="greedy", max_rounds=None,
                      max_new_tokens=16)
    assert auto.new_tokens[:16] == plain.new_tokens[:16]


@pytest.mark.parametrize("method", ["model", "lookup"])
def test_cli_auto_trace_verifies_and_regenerates(tiny_models, tmp_path, capsys, method):
    pytest.importorskip("transformers")
    out = tmp_path / "a.npz"
    draft = ["--draft", tiny_models["draft"]] if method == "model" else ["--draft-method", "lookup"]
    assert cli.main(["trace", "-o", str(out), "--target", tiny_models["target"], *draft, "--prompt", TINY_PROMPT,
                     "--gamma", "auto:2..6", "--rounds", "8", "--seed", "3", "--no-progress"]) == 0
    tr = read_trace(out)
    assert tr.meta["decode"]["gamma_policy"] == AutoGamma(2, 6).meta() and "gammas" not in tr.meta["decode"]
    caps = AutoGamma(2, 6).schedule(zip(tr.gamma.tolist(), tr.expected_accepted.tolist()))
    assert all(g <= c for g, c in zip(tr.gamma.tolist(), caps))
    if method == "model":
        assert tr.gamma.tolist() == caps
    capsys.readouterr()
    assert cli.main(["verify", str(out), "--level", "fl"]) == 0
    assert "mismatches=0" in capsys.readouterr().out
    regen = shlex.split(tr.meta["regenerate"])
    assert regen[regen.index("--gamma") + 1] == "auto:2..6"
    regen[regen.index("-o") + 1] = str(tmp_path / "again.npz")
    assert cli.main(regen[1:] + ["--no-progress"]) == 0
    again = read_trace(tmp_path / "again.npz")
    for key in V2_ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(tr, key), err_msg=key)


def test_cli_decode_prints_the_auto_row_beside_the_fixed_gammas(tiny_models, tmp_path, capsys):
    pytest.importorskip("transformers")
    from hades.studies.plots import read_decode_csv
    csv_path = tmp_path / "d.csv"
    assert cli.main(["decode", "--target", tiny_models["target"], "--draft", tiny_models["draft"],
                     "--gammas", "0,auto:1..4,2", "--new-tokens", "6", "--prompt", TINY_PROMPT, "--mode", "greedy",
                     "--no-progress", "--csv", str(csv_path)]) == 0
    printed = capsys.readouterr().out
    assert "mean g" in printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.split()[:1]
            and line.split()[0] in ("0", "auto:1..4", "2")}
    assert set(rows) == {"0", "auto:1..4", "2"} and rows["2"][1] == "2.00" and rows["0"][1] == "0.00"
    assert 1.0 <= float(rows["auto:1..4"][1]) <= 4.0
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("prompt_set,gamma,mean_gamma,") and lines[2].startswith("custom,auto:1..4,")
    assert [r["gamma"] for r in read_decode_csv(csv_path)] == ["0", "2"]   # the plots use the fixed gammas


# ---- the embedded model --------------------------------------------------------------------------------

@pytest.mark.model
def test_embedded_layer_skip_auto_trace(tmp_path, embedded_pair_loader):
    """The embedded pair's layer-skip draft under the controller: the rounds follow its schedule, the
    v2 file reads back, and FL decides every round as recorded."""
    from hades.fl.verifier import verify_logit_round
    from hades.llm.prompts import GROUNDED
    from hades.llm.record import record_trace
    from hades.llm.specdec import DecodeConfig
    from hades.traces.format import write_trace
    ctl = AutoGamma(start=2, gamma_max=6)
    cfg = DecodeConfig(gamma_policy=ctl, mode="greedy", max_rounds=4, max_new_tokens=None, record=True,
                       trace_format=2)
    back = read_trace(write_trace(tmp_path / "auto.npz", record_trace(embedded_pair_loader.get(), cfg,
                                                                      dict(GROUNDED)["rewrite"])))
    assert back.num_rounds == 4 and back.meta["decode"]["gamma_policy"] == ctl.meta()
    assert back.gamma.tolist() == ctl.schedule(zip(back.gamma.tolist(), back.expected_accepted.tolist()))
    for i, rnd in enumerate(back.rounds()):
        assert verify_logit_round(rnd, back.weight_bits, back.uniform_bits, where=f"round {i}").decision() == \
            (int(back.expected_accepted[i]), int(back.expected_token[i])), f"round {i}"
