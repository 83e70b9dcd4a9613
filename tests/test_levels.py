"""The shared test tables at every level: results bit-exact with the FL golden function on
every round; at CL and RTL the cycle counts equal the CL timing model's on every round
(at --level rtl that is the CL == RTL check). The logit table (v2 rounds) checks the draft
tokens the block returns too, against FL and the trace, with their counters."""
from __future__ import annotations

import dataclasses

import pytest

from hades.config import VerifierConfig
from hades.traces.synthetic import synthetic_logit_trace, synthetic_trace
from hades.traces.format import read_trace
from harness.cases import CASES, LOGIT_CASES, LOGIT_FULL_VOCAB
from harness.checks import check_logit_rounds, check_rounds


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_table(level, sim_options, case):
    trace = synthetic_trace(case.spec)
    case.cfg.check_trace(trace)
    opts = dataclasses.replace(sim_options, src_stall=case.src_stall, sink_stall=case.sink_stall, seed=7)
    check_rounds(level, case.cfg, list(trace.rounds()), opts, case.stall_free)


@pytest.mark.parametrize("case", LOGIT_CASES, ids=[c.name for c in LOGIT_CASES])
def test_logit_case_table(level, sim_options, case):
    trace = synthetic_logit_trace(case.spec)
    case.cfg.check_logit_trace(trace)
    opts = dataclasses.replace(sim_options, src_stall=case.src_stall, sink_stall=case.sink_stall, seed=7)
    outputs = check_logit_rounds(level, case.cfg, list(trace.rounds()), opts, case.stall_free)
    assert [o.result.decision() for o in outputs] == list(zip(trace.expected_accepted.tolist(),
                                                              trace.expected_token.tolist()))


REAL_CFG = VerifierConfig(lanes=32, vocab_max=65536, gamma_max=4)


REAL_FIXTURES = {"stochastic": "real_trace_path", "greedy": "real_greedy_trace_path",
                 "layer_skip": "real_layer_skip_trace_path"}


@pytest.mark.model
@pytest.mark.parametrize("which", list(REAL_FIXTURES))
def test_real_llm_trace(level, sim_options, which, request):
    """Rounds recorded from the embedded SmolLM2 target (V = 49152), prompt-lookup drafts (one-hot
    rows, 0..4 drafts per round) or the layer-skip draft: every round bit-exact with FL and with
    the recorder's own decisions; CL == RTL cycles."""
    path = request.getfixturevalue(REAL_FIXTURES[which])
    trace = read_trace(path)
    REAL_CFG.check_trace(trace)
    results = check_rounds(level, REAL_CFG, list(trace.rounds()), sim_options)
    assert [r.decision() for r in results] == list(zip(trace.expected_accepted.tolist(),
                                                       trace.expected_token.tolist()))


@pytest.mark.model
def test_real_llm_logit_trace(level, sim_options, real_logit_trace_path):
    """The logit block on the real v2 lookup trace (bf16 rows of SmolLM2, one-hot drafts, T = 0.7):
    results as FL and as recorded on every round; CL == RTL counters."""
    trace = read_trace(real_logit_trace_path)
    assert trace.onehot_draft.all() and trace.expected_accepted.sum() > 0
    cfg = LOGIT_FULL_VOCAB
    cfg.check_logit_trace(trace)
    outputs = check_logit_rounds(level, cfg, list(trace.rounds()), sim_options)
    assert [o.result.decision() for o in outputs] == list(zip(trace.expected_accepted.tolist(),
                                                              trace.expected_token.tolist()))


def test_logit_case_table_covers_the_issue_list():
    """What issue 13 asks the shared v2 cases to hold, counted over the table: small and full
    vocabularies, greedy and stochastic rounds, one-hot and model drafts, gamma 0, rejections
    and all-accepted rounds, masked entries, min-p, temperatures 0.5-1.5, tied row maxima
    (greedy rows among them), and stalls on both sides."""
    import numpy as np

    from hades import numerics
    seen = dict.fromkeys(("full_vocab", "greedy", "stochastic", "onehot", "model", "gamma0", "rejected", "all_accepted",
                          "masked", "min_p", "cold", "hot", "tied_max", "tied_greedy", "src_stall", "sink_stall"), 0)
    for case in LOGIT_CASES:
        trace = synthetic_logit_trace(case.spec)
        seen["full_vocab"] += trace.vocab_size > 40000
        seen["src_stall"] += case.src_stall > 0
        seen["sink_stall"] += case.sink_stall > 0
        for i, r in enumerate(trace.rounds()):
            t = numerics.inverse_temperature(1.0) / r.target_params[0]   # T = k(1) / k
            x, masked = numerics.decode_bf16(r.target_logits)
            x = np.where(masked, np.iinfo(np.int64).min, x)
            tied = int(((x == x.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
            seen["greedy"] += r.greedy
            seen["stochastic"] += not r.greedy
            seen["onehot"] += r.onehot_draft and r.gamma > 0
            seen["model"] += not r.onehot_draft and r.gamma > 0
            seen["gamma0"] += r.gamma == 0
            seen["rejected"] += int(trace.expected_accepted[i]) < r.gamma
            seen["all_accepted"] += int(trace.expected_accepted[i]) == r.gamma
            seen["masked"] += bool(masked.any())
            seen["min_p"] += r.target_params[3] > 0 and not r.greedy
            seen["cold"] += t < 0.7
            seen["hot"] += t > 1.3
            seen["tied_max"] += tied
            seen["tied_greedy"] += tied if r.greedy else 0
    assert all(seen.values()), seen


def test_logit_case_table_covers_the_filters():
    """What issue 14 asks the shared v2 cases to hold, counted over the table's stochastic rows
    (numerics.radix_select on each row's weights before its filters): top-k cutting a tie group
    (0 < c < the entries at tau), top-p cutting one, top_k = 1, top_k >= V, top_p of one unit,
    top_p = 1 with top-k on, draft filters that differ from the target's, rounds of one trace
    with different settings, greedy rounds with filters set, filtered full-vocabulary rows."""
    import numpy as np

    from hades import numerics
    seen = dict.fromkeys(("top_k_tie_cut", "top_p_tie_cut", "top_k_1", "top_k_ge_V", "top_p_one_unit",
                          "top_p_1_top_k_on", "draft_differs", "mixed_settings", "greedy_filtered",
                          "full_vocab_filtered"), 0)
    for case in LOGIT_CASES:
        trace = synthetic_logit_trace(case.spec)
        settings = set()
        for r in trace.rounds():
            tk, tp = int(r.target_params[1]), int(r.target_params[2])
            settings.add((tk, tp))
            if r.greedy:
                seen["greedy_filtered"] += tk != 0 or tp != numerics.FRACTION_ONE
                continue
            seen["draft_differs"] += (not r.onehot_draft and r.gamma > 0
                                      and tuple(r.draft_params[1:3]) != tuple(r.target_params[1:3]))
            seen["top_k_1"] += tk == 1
            seen["top_k_ge_V"] += tk >= r.vocab_size
            seen["top_p_one_unit"] += tp == 1
            seen["top_p_1_top_k_on"] += tp == numerics.FRACTION_ONE and 0 < tk < r.vocab_size
            seen["full_vocab_filtered"] += r.vocab_size > 40000 and (0 < tk < r.vocab_size or tp < numerics.FRACTION_ONE)
            raw = (r.target_params[0], 0, numerics.FRACTION_ONE, 0)
            for row in r.target_logits:
                w, _ = numerics.logit_weights(row, raw, trace.weight_bits)
                if 0 < tk < r.vocab_size:
                    cut = numerics.radix_select(w, tk, numerics.FRACTION_ONE, trace.weight_bits)
                    seen["top_k_tie_cut"] += 0 < cut.c < int((w == cut.tau).sum()) and cut.tau > 0
                if tp < numerics.FRACTION_ONE:
                    cut = numerics.radix_select(w, 0, tp, trace.weight_bits)
                    seen["top_p_tie_cut"] += 0 < cut.c < int((w == cut.tau).sum())
        seen["mixed_settings"] += len(settings) > 3
    assert all(seen.values()), seen
