"""Adaptive gamma (hades/llm/adaptive.py, issue 16 item 5): the cost-aware controller's choice on
synthetic costs and acceptance, its estimates and its decisions on scripted outcomes; the heuristic's
sequence, clamping and determinism; the `auto` / `heuristic` spellings of --gamma / --gammas and their
refusals (one line, exit 2); the measured costs; the decoder on tiny local models with model and
lookup drafts, the per-round gammas in the trace and their reproduction from the recorded controller,
`hades verify` at FL and `regenerate`; the auto row of `hades decode` and its repeats."""
from __future__ import annotations

import shlex

import numpy as np
import pytest

from hades import cli
from hades.cli.trace import gamma_settings, parse_gamma_entries
from hades.errors import ConfigError
from hades.llm.adaptive import (CostAwareGamma, HeuristicGamma, best_gamma, expected_tokens, parse_auto,
                                round_cost)
from hades.traces.format import read_trace
from hades.traces.format_v2 import V2_ARRAY_KEYS


# ---- the controller -----------------------------------------------------------------------------------

def test_heuristic_sequence_on_a_scripted_pattern():
    """+2 after a round whose drafts were all accepted, -1 after a rejection, clamped to [1, gamma_max]."""
    ctl = HeuristicGamma(start=4, gamma_max=8)
    outcomes = [(4, 4), (6, 6), (8, 8), (8, 3), (7, 0), (6, 6), (8, 8), (8, 0)]
    assert ctl.schedule(outcomes) == [4, 6, 8, 8, 7, 6, 8, 8]
    assert ctl.next_gamma(8, 8, 0) == 7


def test_clamping_at_both_ends_and_rounds_without_drafts():
    ctl = HeuristicGamma(start=2, gamma_max=5)
    assert ctl.schedule([(2, 0), (1, 0), (1, 0), (1, 1), (3, 3), (5, 5), (5, 5)]) == [2, 1, 1, 1, 3, 5, 5]
    assert ctl.next_gamma(5, 5, 5) == 5 and ctl.next_gamma(1, 1, 0) == 1
    # prompt lookup: no proposal says nothing (gamma kept); fewer proposed than the cap, all accepted: +2
    assert ctl.next_gamma(3, 0, 0) == 3 and ctl.next_gamma(3, 1, 1) == 5 and ctl.next_gamma(3, 2, 1) == 2


def test_the_controller_is_a_pure_function_of_the_outcomes():
    rng = np.random.default_rng(7)
    outcomes = []
    g = 4
    ctl = HeuristicGamma()
    for _ in range(200):   # a random but self-consistent history
        acc = int(rng.integers(0, g + 1))
        outcomes.append((g, acc))
        g = ctl.next_gamma(g, g, acc)
    first = ctl.schedule(outcomes)
    assert first == HeuristicGamma().schedule(outcomes) and all(1 <= x <= 16 for x in first)
    assert [p for p, _ in outcomes] == first


def test_parse_auto_and_its_refusals():
    assert parse_auto("auto") == CostAwareGamma(start=4, gamma_max=16)
    assert parse_auto(" AUTO:2..8 ") == CostAwareGamma(start=2, gamma_max=8)
    assert parse_auto("heuristic") == HeuristicGamma(start=4, gamma_max=16)
    assert parse_auto("heuristic:2..8") == HeuristicGamma(start=2, gamma_max=8)
    assert HeuristicGamma(start=3, gamma_max=9).label == "heuristic:3..9"
    assert parse_auto("auto:3..9").label == "auto:3..9" and not parse_auto("auto:3..9").measured
    given = parse_auto("auto:2..8:row0.1804:draft.7")   # costs are kept to 1e-3, so labels round-trip exactly
    assert (given.row_cost, given.draft_cost) == (0.18, 0.7) and given.label == "auto:2..8:row0.180:draft0.700"
    assert parse_auto(given.label) == given
    for bad, match in (("auto:0..4", "start"), ("auto:5..4", "start"), ("auto:1..65", "gamma_max"),
                       ("autox", "auto:START..MAX"), ("auto:3", "auto:START..MAX"), ("auto:2-8", "auto:START..MAX"),
                       ("auto:row0.1:draft0", "auto:START..MAX"), ("auto:1..4:row-1:draft0", "auto:START..MAX"),
                       ("auto:1..4:row2000:draft0", "row_cost"), ("heuristic:1..4:row0:draft0", "auto:START..MAX")):
        with pytest.raises(ConfigError, match=match):
            parse_auto(bad)
    with pytest.raises(ConfigError, match="integer"):
        HeuristicGamma(start=2.0).check()
    with pytest.raises(ConfigError, match="both"):
        CostAwareGamma(row_cost=0.1).check()
    with pytest.raises(ConfigError, match="memory"):
        CostAwareGamma(memory=1.5).check()


# ---- the cost-aware controller ----------------------------------------------------------------------------

def test_expected_tokens_and_round_cost():
    assert expected_tokens([0.5, 0.5, 0.5], 0) == 1.0
    assert expected_tokens([0.5, 0.5, 0.5], 2) == pytest.approx(1.75)
    assert expected_tokens([1.0, 0.0, 1.0], 3) == pytest.approx(2.0)   # nothing after a certain rejection
    assert round_cost(4, 0.25, 0.5) == pytest.approx(4.0)


@pytest.mark.parametrize("alphas, row, draft, gmax, want", [
    ([0.78] * 16, 0.18, 0.0, 16, 4),   # the greedy lookup figures of docs/PERFORMANCE.md: rate 1.880 at 4, 1.859 at 3, 1.854 at 5
    ([0.5] * 16, 0.18, 0.0, 16, 2),    # 1.287 at 2 against 1.271 at 1 and 1.218 at 3
    ([0.9] * 16, 0.0, 0.0, 16, 16),    # free drafts and rows: as many as allowed
    ([0.9] * 16, 0.0, 0.0, 5, 5),      # ... clamped to gamma_max
    ([0.99] * 16, 5.0, 0.0, 16, 1),    # rows dearer than anything they can bring: the floor
    ([0.6] * 16, 0.0, 0.7, 8, 1),      # a draft at 0.7 of a target step accepted 0.6: the floor
    ([0.5] + [0.95] * 15, 0.18, 0.0, 16, 9),    # a run of copies after the first draft: long rounds pay
])
def test_best_gamma_on_synthetic_costs_and_acceptance(alphas, row, draft, gmax, want):
    assert best_gamma(alphas, row, draft, gmax) == want


# the pass-cost shape measured on this CPU (one thread, docs/MODELS.md "Adaptive gamma"): scoring 2 tokens
# costs ~1.7 one-token passes, each further one little more
JUMP_TABLE = tuple(0.7 + 0.03 * (g - 1) for g in range(1, 17))


def test_a_pass_cost_table_decides_where_the_straight_line_would_not():
    """With the jump of a 2-token pass, a round must carry several drafts to pay for it; the line through
    the same table (pass_slope) spreads the jump over every row and picks fewer."""
    from hades.llm.adaptive import pass_slope
    assert round_cost(1, 9.9, 0.5, JUMP_TABLE) == pytest.approx(1 + 0.7 + 0.5)   # row_cost unused with a table
    assert round_cost(3, 0.0, 0.0, JUMP_TABLE) == pytest.approx(1.76)
    alphas = [0.6] * 16
    line = pass_slope(JUMP_TABLE)
    assert line == pytest.approx(0.0909, abs=1e-4)
    assert best_gamma(alphas, line, 0.0, 16) == 3
    assert best_gamma(alphas, line, 0.0, 16, JUMP_TABLE) == 6   # the expected tokens' tail still beats +0.03 a row
    assert best_gamma(alphas, 0.0, 0.0, 16, tuple(5.0 * g for g in range(1, 17))) == 1   # rows dearer than they bring
    assert best_gamma(alphas, 0.0, 0.0, 16, (5.0,) * 16) == 16   # a flat table: once paid, every draft is free


def test_pass_cost_labels_round_trip_and_are_checked():
    from hades.llm.adaptive import policy_from_meta
    policy = CostAwareGamma(start=1, gamma_max=3, row_cost=0.5, draft_cost=0.25, pass_costs=(0.7004, 0.73, 0.76)).check()
    assert policy.pass_costs == (0.7, 0.73, 0.76) and policy.label == "auto:1..3:pass0.700/0.730/0.760:draft0.250"
    assert policy.row_cost == pytest.approx(4.44 / 14, abs=1e-3)   # the line through the table, not the 0.5 given
    assert parse_auto(policy.label) == policy and policy_from_meta(policy.meta()) == policy
    assert "pass_costs" not in CostAwareGamma(row_cost=0.1, draft_cost=0.0).check().meta()   # older traces' meta
    for bad, match in (("auto:1..3:pass0.7/0.7:draft0", "one cost per gamma 1..3"),
                       ("auto:1..2:pass0.7/-1:draft0", "auto:START..MAX"),
                       ("auto:1..2:pass2000/1:draft0", "pass cost"), ("auto:pass0.1:draft0", "auto:START..MAX")):
        with pytest.raises(ConfigError, match=match):
            parse_auto(bad)
    with pytest.raises(ConfigError, match="one cost per gamma"):
        CostAwareGamma(start=1, gamma_max=2, row_cost=0.0, draft_cost=0.0, pass_costs="0.7,0.7").check()


def test_the_cost_aware_controller_on_scripted_outcomes():
    policy = CostAwareGamma(start=4, gamma_max=12, row_cost=0.18, draft_cost=0.0)
    ctl = policy.controller()
    assert ctl.gamma == 4 and ctl.accept_probs() == [0.5] * 12   # the prior before any round
    for _ in range(6):   # full acceptance, round after round: the estimates rise and so does gamma
        ctl.update(ctl.gamma, ctl.gamma)
    high = ctl.gamma
    assert high > 4 and all(a > 0.5 for a in ctl.accept_probs()[:4])
    before = (ctl.gamma, ctl.accept_probs())
    ctl.update(0, 0)   # prompt lookup without a match: no information, nothing changes
    assert (ctl.gamma, ctl.accept_probs()) == before
    falling = []
    for _ in range(12):   # rejections at the first draft: the estimate of a_1 and gamma come down
        ctl.update(ctl.gamma, 0)
        falling.append(ctl.gamma)
    assert falling == sorted(falling, reverse=True) and falling[-1] <= 2 and ctl.accept_probs()[0] < 0.3
    # tests stop at the first rejection: 2 accepted of 5 proposed tests positions 1..3 only
    ctl = policy.controller()
    ctl.update(5, 2)
    assert ctl.tested[:4] == [1.0, 1.0, 1.0, 0.0] and ctl.accepted[:3] == [1.0, 1.0, 0.0]


def test_the_cost_aware_schedule_is_a_pure_function_of_the_outcomes():
    rng = np.random.default_rng(11)
    policy = CostAwareGamma(start=3, gamma_max=10, row_cost=0.2, draft_cost=0.05)
    ctl, outcomes = policy.controller(), []
    for _ in range(150):   # a random but self-consistent history, proposals sometimes short (lookup)
        proposed = int(rng.integers(0, ctl.gamma + 1))
        accepted = int(rng.integers(0, proposed + 1))
        outcomes.append((proposed, accepted))
        ctl.update(proposed, accepted)
    first = policy.schedule(outcomes)
    assert first == CostAwareGamma(start=3, gamma_max=10, row_cost=0.2, draft_cost=0.05).schedule(outcomes)
    assert first[0] == 3 and all(1 <= g <= 10 for g in first) and len(set(first)) > 1
    assert all(p <= g for (p, _), g in zip(outcomes, first))


def test_an_unmeasured_controller_refuses_to_run():
    with pytest.raises(ConfigError, match="needs its costs"):
        CostAwareGamma().controller()


def test_gamma_entries_and_settings():
    assert parse_gamma_entries("0,auto,2,4-5") == (0, CostAwareGamma(), 2, 4, 5)
    assert parse_gamma_entries("heuristic,2") == (HeuristicGamma(), 2)
    assert gamma_settings(parse_gamma_entries("2,4")) == {"gammas": (2, 4)}
    assert gamma_settings(parse_gamma_entries("auto:1..6")) == {"gamma_policy": CostAwareGamma(1, 6)}
    assert gamma_settings(parse_gamma_entries("heuristic:1..6")) == {"gamma_policy": HeuristicGamma(1, 6)}
    with pytest.raises(ConfigError, match="give it alone"):
        gamma_settings(parse_gamma_entries("auto,2"))
    with pytest.raises(ConfigError, match="at least one"):
        parse_gamma_entries(" , ")


def test_decode_config_and_its_metadata():
    from hades.llm.specdec import DecodeConfig, config_meta
    cfg = DecodeConfig(gamma_policy=HeuristicGamma(start=2, gamma_max=8))
    cfg.check()
    assert cfg.max_gamma == 8 and cfg.gamma_label == "heuristic:2..8"
    meta = config_meta(cfg)
    assert "gammas" not in meta
    assert meta["gamma_policy"] == {"policy": "heuristic", "start": 2, "gamma_max": 8, "up": 2, "down": 1}
    cost = DecodeConfig(gamma_policy=CostAwareGamma(start=2, gamma_max=8, row_cost=0.2, draft_cost=0.0))
    cost.check()
    assert cost.gamma_label == "auto:2..8:row0.200:draft0.000"
    assert config_meta(cost)["gamma_policy"] == {"policy": "cost", "start": 2, "gamma_max": 8, "row_cost": 0.2,
                                                 "draft_cost": 0.0, "memory": 0.9, "prior": 0.5, "prior_weight": 2.0}
    plain = config_meta(DecodeConfig(gammas=(2, 4)))
    assert plain["gammas"] == [2, 4] and "gamma_policy" not in plain   # fixed gammas: metadata as before
    with pytest.raises(ConfigError, match="CostAwareGamma"):
        DecodeConfig(gamma_policy="auto").check()
    with pytest.raises(ConfigError, match="start"):
        DecodeConfig(gamma_policy=HeuristicGamma(start=9, gamma_max=8)).check()


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


POLICIES = {"heuristic": HeuristicGamma(start=2, gamma_max=5),
            "cost": CostAwareGamma(start=2, gamma_max=5, row_cost=0.1, draft_cost=0.05)}


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("lookup_ngram", [None, (1, 3)], ids=["model", "lookup"])
@pytest.mark.parametrize("mode", ["greedy", "stochastic"])
def test_decoder_follows_the_controller(tiny_pair, lookup_ngram, mode, policy):
    from hades.llm.specdec import trace_from_decode
    from hades.fl.verifier import verify_logit_round
    ctl = POLICIES[policy]
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


def test_the_decoder_measures_the_costs_once_and_the_measured_run_reproduces(tiny_pair):
    """auto without costs: the decoder measures them before its timed loop and keeps them in its
    config; a run given those costs makes the same decisions (what a trace's regenerate does)."""
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder, measure_costs
    ids = encode_prompt(tiny_pair.tokenizer, TINY_PROMPT)
    costs = measure_costs(tiny_pair, DecodeConfig(gamma_policy=CostAwareGamma(2, 6), trace_format=2), ids, repeats=2)
    assert costs.target_step_s > 0 and costs.row_cost >= 0 and costs.draft_cost > 0
    assert len(costs.pass_costs) == 6 and all(v >= 0 for v in costs.pass_costs)   # one per gamma 1..6
    lookup_costs = measure_costs(tiny_pair, DecodeConfig(gamma_policy=CostAwareGamma(2, 6), lookup_ngram=(1, 3)),
                                 ids, repeats=2)
    assert 0 <= lookup_costs.draft_cost < costs.draft_cost   # a proposal is a numpy search, no model step
    cfg = DecodeConfig(gamma_policy=CostAwareGamma(2, 6), lookup_ngram=(1, 3), mode="greedy", max_rounds=10,
                       max_new_tokens=None, trace_format=2)
    decoder = SpeculativeDecoder(tiny_pair, cfg)
    first = decoder.generate(ids)
    measured = decoder.config.gamma_policy
    assert measured.measured and measured.label.startswith("auto:2..6:pass")
    assert len(measured.pass_costs) == 6 and all(v >= 0 for v in measured.pass_costs)
    replay = SpeculativeDecoder(tiny_pair, decoder.config).generate(ids)
    assert [(r.gamma, r.accepted) for r in replay.rounds] == [(r.gamma, r.accepted) for r in first.rounds]
    assert replay.new_tokens == first.new_tokens


def test_a_carried_controller_continues_across_prompts(tiny_pair):
    """hades decode carries a controller from one prompt to the next: the second prompt's first round
    uses the gamma the first prompt's rounds left; a controller of another policy is refused."""
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder
    policy = POLICIES["cost"]
    cfg = DecodeConfig(gamma_policy=policy, mode="greedy", max_rounds=6, max_new_tokens=None, trace_format=2)
    ids = encode_prompt(tiny_pair.tokenizer, TINY_PROMPT)
    ctl = policy.controller()
    first = SpeculativeDecoder(tiny_pair, cfg).generate(ids, controller=ctl)
    assert [r.gamma for r in first.rounds] == policy.schedule([(r.gamma, r.accepted) for r in first.rounds])
    left = ctl.gamma
    second = SpeculativeDecoder(tiny_pair, cfg).generate(ids, controller=ctl)
    assert second.rounds[0].gamma == left
    history = [(r.gamma, r.accepted) for r in first.rounds + second.rounds]
    assert [g for g, _ in history] == policy.schedule(history)   # one schedule over both prompts
    with pytest.raises(ConfigError, match="carried controller"):
        SpeculativeDecoder(tiny_pair, cfg).generate(ids, controller=POLICIES["heuristic"].controller())


def test_greedy_auto_emits_the_targets_greedy_sequence(tiny_pair):
    _, plain = _decode(tiny_pair, gammas=(0,), mode="greedy", max_rounds=None, max_new_tokens=16)
    for policy in POLICIES.values():
        _, auto = _decode(tiny_pair, gamma_policy=policy, mode="greedy", max_rounds=None, max_new_tokens=16)
        assert auto.new_tokens[:16] == plain.new_tokens[:16]


@pytest.mark.parametrize("spec", ["auto:2..6", "heuristic:2..6"])
@pytest.mark.parametrize("method", ["model", "lookup"])
def test_cli_auto_trace_verifies_and_regenerates(tiny_models, tmp_path, capsys, method, spec):
    pytest.importorskip("transformers")
    from hades.llm.adaptive import policy_from_meta
    out = tmp_path / "a.npz"
    draft = ["--draft", tiny_models["draft"]] if method == "model" else ["--draft-method", "lookup"]
    assert cli.main(["trace", "-o", str(out), "--target", tiny_models["target"], *draft, "--prompt", TINY_PROMPT,
                     "--gamma", spec, "--rounds", "8", "--seed", "3", "--no-progress"]) == 0
    tr = read_trace(out)
    recorded = policy_from_meta(tr.meta["decode"]["gamma_policy"])
    assert "gammas" not in tr.meta["decode"] and recorded.label.startswith(spec)
    assert recorded.measured   # auto: the measured costs are in the file
    caps = recorded.schedule(zip(tr.gamma.tolist(), tr.expected_accepted.tolist()))
    assert all(g <= c for g, c in zip(tr.gamma.tolist(), caps))
    if method == "model":
        assert tr.gamma.tolist() == caps
    capsys.readouterr()
    assert cli.main(["verify", str(out), "--level", "fl"]) == 0
    assert "mismatches=0" in capsys.readouterr().out
    regen = shlex.split(tr.meta["regenerate"])
    assert regen[regen.index("--gamma") + 1] == recorded.label   # auto: with the costs, so no new measurement
    regen[regen.index("-o") + 1] = str(tmp_path / "again.npz")
    assert cli.main(regen[1:] + ["--no-progress"]) == 0
    again = read_trace(tmp_path / "again.npz")
    assert again.meta["decode"]["gamma_policy"] == tr.meta["decode"]["gamma_policy"]
    for key in V2_ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(tr, key), err_msg=key)


def test_cli_decode_prints_the_auto_row_beside_the_fixed_gammas(tiny_models, tmp_path, capsys):
    pytest.importorskip("transformers")
    from hades.studies.plots import read_decode_csv
    csv_path = tmp_path / "d.csv"
    assert cli.main(["decode", "--target", tiny_models["target"], "--draft", tiny_models["draft"],
                     "--gammas", "0,auto:1..4,2", "--new-tokens", "6", "--prompt", TINY_PROMPT, "--mode", "greedy",
                     "--repeats", "3", "--no-progress", "--csv", str(csv_path)]) == 0
    printed = capsys.readouterr().out
    assert "mean g" in printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.split()[:1]
            and line.split()[0] in ("0", "auto:1..4", "2")}
    assert set(rows) == {"0", "auto:1..4", "2"} and rows["2"][1] == "2.00" and rows["0"][1] == "0.00"
    assert 1.0 <= float(rows["auto:1..4"][1]) <= 4.0
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("prompt_set,gamma,mean_gamma,") and lines[2].startswith("custom,auto:1..4,")
    assert [r["gamma"] for r in read_decode_csv(csv_path)] == ["0", "2"]   # the plots use the fixed gammas
    import csv
    table = {r["gamma"]: r for r in csv.DictReader(csv_path.open())}
    assert all(r["repeats"] == "3" for r in table.values())
    assert table["0"]["speedup_min"] == table["0"]["speedup_max"] == "1.0"   # gamma 0 against itself, every repeat
    assert float(table["2"]["speedup_min"]) <= float(table["2"]["speedup_max"])
    assert table["2"]["row_cost"] == "" and float(table["auto:1..4"]["row_cost"]) >= 0   # measured, in the CSV
    assert "measured costs in target steps" in printed


def test_decode_table_repeats_decode_the_same_tokens_and_report_the_median(tiny_pair):
    """The repeats of a prompt decode identical tokens (same seed; the controller's costs are measured
    once, before the timed runs), so only the times differ; the record is the median-time repeat."""
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig, Timings
    from hades.studies import decode as study
    ids = encode_prompt(tiny_pair.tokenizer, TINY_PROMPT)
    configs = [DecodeConfig(gammas=(0,), mode="greedy", max_new_tokens=6, trace_format=2),
               DecodeConfig(gamma_policy=CostAwareGamma(1, 4), mode="greedy", max_new_tokens=6, trace_format=2)]
    seen = []
    real = study.SpeculativeDecoder.generate

    def spy(self, prompt, on_round=None, controller=None):
        res = real(self, prompt, on_round=on_round, controller=controller)
        seen.append((self.config.gamma_label, tuple(res.new_tokens), tuple((r.gamma, r.accepted) for r in res.rounds)))
        return res
    study.SpeculativeDecoder.generate = spy
    try:
        table = study.decode_table(tiny_pair, configs, {"s": [ids]}, repeats=3)
    finally:
        study.SpeculativeDecoder.generate = real
    timed = seen[1:]   # after the warm-up run
    labels = [g for g, _, _ in timed]
    auto = next(g for g in labels if g != "0")
    assert labels == ["0", auto, auto, "0", "0", auto]   # interleaved, each repeat's order rotated by one
    for label in ("0", auto):
        assert len({(t, r) for g, t, r in timed if g == label}) == 1
    assert auto.startswith("auto:1..4:pass") and [r["repeats"] for r in table] == [3, 3]
    runs = [type("R", (), {"timings": Timings(total=t)})() for t in (3.0, 1.0, 2.0, 5.0)]
    assert study.median_run(runs[:3]).timings.total == 2.0 and study.median_run(runs).timings.total == 2.0
    with pytest.raises(ConfigError, match="repeats"):
        study.decode_table(tiny_pair, configs, {"s": [ids]}, repeats=0)


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
    ctl = CostAwareGamma(start=2, gamma_max=6, row_cost=0.2, draft_cost=0.7)
    cfg = DecodeConfig(gamma_policy=ctl, mode="greedy", max_rounds=4, max_new_tokens=None, record=True,
                       trace_format=2)
    back = read_trace(write_trace(tmp_path / "auto.npz", record_trace(embedded_pair_loader.get(), cfg,
                                                                      dict(GROUNDED)["rewrite"])))
    assert back.num_rounds == 4 and back.meta["decode"]["gamma_policy"] == ctl.meta()
    assert back.gamma.tolist() == ctl.schedule(zip(back.gamma.tolist(), back.expected_accepted.tolist()))
    for i, rnd in enumerate(back.rounds()):
        assert verify_logit_round(rnd, back.weight_bits, back.uniform_bits, where=f"round {i}").decision() == \
            (int(back.expected_accepted[i]), int(back.expected_token[i])), f"round {i}"


def test_decode_table_vary_seed_samples_other_texts_and_totals_every_repeat(tiny_pair, monkeypatch):
    """--vary-seed: repeat r decodes with seed + r, so a sampled setting's repeats sample other texts,
    and a record totals all of them (not a median-time repeat)."""
    from hades.llm.models import encode_prompt
    from hades.llm.specdec import DecodeConfig
    from hades.studies import decode as study
    ids = encode_prompt(tiny_pair.tokenizer, TINY_PROMPT)
    configs = [DecodeConfig(gammas=(g,), temperature=1.0, max_new_tokens=8, trace_format=2, seed=5) for g in (0, 2)]
    seen = []
    real = study.SpeculativeDecoder.generate

    def spy(self, prompt, on_round=None, controller=None):
        res = real(self, prompt, on_round=on_round, controller=controller)
        seen.append((self.config.gammas[0], self.config.seed, tuple(res.new_tokens), res.num_rounds))
        return res
    monkeypatch.setattr(study.SpeculativeDecoder, "generate", spy)
    table = study.decode_table(tiny_pair, configs, {"s": [ids]}, repeats=3, vary_seed=True)
    timed = seen[1:]   # after the warm-up run
    assert sorted((g, s) for g, s, _, _ in timed) == [(0, 5), (0, 6), (0, 7), (2, 5), (2, 6), (2, 7)]
    texts = {s: t for g, s, t, _ in timed if g == 0}
    assert len(set(texts.values())) > 1   # other seeds, other samples (a random 8-token text repeating is ~impossible)
    for rec, g in zip(table, (0, 2)):
        runs = [x for x in timed if x[0] == g]
        assert rec["new_tokens"] == sum(len(t) for _, _, t, _ in runs) and rec["rounds"] == sum(n for *_, n in runs)
        assert rec["seeds"] == "5..7" and rec["repeats"] == 3
    same = study.decode_table(tiny_pair, configs[:1], {"s": [ids]}, repeats=2)
    assert same[0]["seeds"] == "5" and same[0]["new_tokens"] == 8   # without it: the median repeat, seed 5
    with pytest.raises(ConfigError, match="vary_seed"):
        study.decode_table(tiny_pair, configs, {"s": [ids]}, repeats=1, vary_seed="yes")
