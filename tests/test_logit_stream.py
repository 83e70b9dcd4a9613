"""The logit block's stream components (LogitVerifierFL / CL, and the RTL at --level rtl) in
the shared src -> dut -> sink harness: messages leave at their cycles, a reset mid-round leaves
no trace, the CL component prices a small buffer like logit_timed_results, and the level
comparison (hades.sim.compare.compare_logit_levels) finds every kind of difference."""
from __future__ import annotations

import dataclasses

import pytest

from hades.cl.logit_model import logit_timed_results
from hades.cl.timing import TimingConfig
from hades.config import VerifierConfig
from hades.fl.verifier import logit_block_output
from hades.logit_protocol import KIND_RESULT, group_messages, round_beats, unpack_message
from hades.sim.compare import compare_logit_levels
from hades.sim.run import SimOptions, build_harness, run_logit_rounds
from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace

SMALL = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)
MIXED = LogitSyntheticSpec(vocab_size=50, rounds=20, gammas=(0, 1, 2, 3, 4), seed=1)


@pytest.mark.parametrize("greedy", [False, True])
def test_messages_leave_at_their_cycles(level, sim_options, greedy):
    """One model-drafted round alone, the sink always ready: the messages arrive as many cycles
    apart as their counters say (x_t from its held cycle, the result from cycles - 1), at CL
    as the schedule presents them and at RTL as the hardware does."""
    if level == "fl" or sim_options.backend == "batch":
        pytest.skip("untimed at fl; the batch backend has no tick-level harness")
    spec = LogitSyntheticSpec(vocab_size=50, rounds=8, gammas=(4,), seed=2, onehot_share=0.0,
                              greedy_share=1.0 if greedy else 0.0)
    rnd = next(r for r in synthetic_logit_trace(spec).rounds())
    th = build_harness(level, SMALL, round_beats(SMALL, rnd), sim_options, logits=True)
    th.sim_reset()
    for _ in range(1000):
        th.sim_tick()
    got = [(cycle, unpack_message(SMALL, msg, True)) for cycle, msg in th.sink.received]
    assert len(got) == 5
    due = [m.cycles for _, m in got[:4]] + [got[4][1].cycles - 1]
    assert [c - got[0][0] for c, _ in got] == [d - due[0] for d in due]


def test_reset_mid_round_then_clean_rounds(level, sim_options):
    """A reset in the middle of a round (after a draft token left) leaves no trace: the rounds
    streamed after it (the source restarts from the first beat) come out exactly as FL says."""
    if level == "rtl" and sim_options.backend == "batch":
        pytest.skip("reset injection needs a tick-level harness (--rtl-backend verilator or python)")
    rounds = list(synthetic_logit_trace(LogitSyntheticSpec(vocab_size=45, rounds=4, gammas=(3, 4), seed=11,
                                                           greedy_share=0.0, onehot_share=0.0)).rounds())
    beats = [b for r in rounds for b in round_beats(SMALL, r)]
    th = build_harness(level, SMALL, beats, sim_options, logits=True)
    th.sim_reset()
    for _ in range(10 * len(beats)):   # until round 0's result and a draft token of round 1 left
        th.sim_tick()
        if [msg & 1 for _, msg in th.sink.received][3:5] == [KIND_RESULT, 0]:
            break
    assert [msg & 1 for _, msg in th.sink.received] == [0, 0, 0, KIND_RESULT, 0]
    th.sim_reset()
    th.sink.received.clear()
    for _ in range(20 * len(beats)):
        th.sim_tick()
        if sum(msg & 1 for _, msg in th.sink.received) == len(rounds):
            break
    got = group_messages(unpack_message(SMALL, m, level != "fl") for _, m in th.sink.received)
    want = [logit_block_output(r, 16, 32) for r in rounds]
    assert [(o.result.decision(), [d.token for d in o.drafts]) for o in got] == \
        [(o.result.decision(), [d.token for d in o.drafts]) for o in want]


def test_cl_component_prices_a_small_buffer_like_the_timing():
    tr = synthetic_logit_trace(MIXED)
    tc = TimingConfig(hw=SMALL, sram_words=40, offchip_bw=2.0, offchip_latency=30)
    got = run_logit_rounds("cl", SMALL, list(tr.rounds()), SimOptions(timing=tc))
    assert got == logit_timed_results(tc, tr.rounds())
    assert compare_logit_levels("cl", SMALL, list(tr.rounds()), got, timing=tc) == []


# ---- the comparison (hades.sim.compare.compare_logit_levels) finds every kind of difference --------

def test_compare_logit_levels_reports_each_kind():
    tr = synthetic_logit_trace(MIXED)
    rounds = list(tr.rounds())
    good = logit_timed_results(TimingConfig(hw=SMALL), rounds)
    assert compare_logit_levels("cl", SMALL, rounds, good) == []
    i = next(k for k, o in enumerate(good) if len(o.drafts) >= 2)
    o = good[i]

    def with_round(out):
        return good[:i] + [out] + good[i + 1:]

    def drafts(*ds):
        return dataclasses.replace(o, drafts=tuple(ds))

    d0, d1 = o.drafts[0], o.drafts[1]
    cases = {
        "decision": dataclasses.replace(o, result=dataclasses.replace(o.result, token=(o.result.token + 1) % 50)),
        "cycles": dataclasses.replace(o, result=dataclasses.replace(o.result, latency=o.result.latency + 1)),
        "draft token": drafts(dataclasses.replace(d0, token=(d0.token + 1) % 50), *o.drafts[1:]),
        "draft cycles": drafts(dataclasses.replace(d0, cycles=d0.cycles - 1), *o.drafts[1:]),
        "draft messages": drafts(d1, d0, *o.drafts[2:]),
    }
    for kind, out in cases.items():
        found = compare_logit_levels("cl", SMALL, rounds, with_round(out))
        assert [(x.round, x.kind) for x in found] == [(i, kind)], kind
        assert str(found[0]).startswith(f"round {i} (gamma {rounds[i].gamma})") and found[0].as_dict()["kind"] == kind
    missing = compare_logit_levels("fl", SMALL, rounds, with_round(drafts(*o.drafts[:-1])))
    assert [x.kind for x in missing] == ["draft messages"] and missing[0].got is None
    # at FL the counters are not compared; under stalls they may only grow
    assert compare_logit_levels("fl", SMALL, rounds, with_round(cases["cycles"])) == []
    slower = dataclasses.replace(o, result=dataclasses.replace(o.result, cycles=o.result.cycles + 5))
    assert compare_logit_levels("rtl", SMALL, rounds, with_round(slower), stall_free=False) == []
    faster = dataclasses.replace(o, result=dataclasses.replace(o.result, cycles=o.result.cycles - 1))
    assert [x.kind for x in compare_logit_levels("rtl", SMALL, rounds, with_round(faster), stall_free=False)] == \
        ["cycles under stalls"]
    # a trace whose model draft is not what the block samples (greedy drafts are not checked by the reader)
    j = next(k for k, r in enumerate(rounds) if r.greedy and not r.onehot_draft and r.gamma)
    bad = dataclasses.replace(rounds[j], draft_tokens=(rounds[j].draft_tokens + 1) % 50)
    found = compare_logit_levels("cl", SMALL, rounds[:j] + [bad] + rounds[j + 1:], good)
    assert found and found[0].kind == "trace draft token" and "the trace's draft token is" in str(found[0])
