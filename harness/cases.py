"""The shared test-case tables: every entry runs at every level (FL, CL, RTL); CASES for the
v1 block (probability rows), LOGIT_CASES for the logit block (v2 rounds: bf16 logit rows).

A case names a hardware configuration, a trace recipe and the stream conditions. Cases
with stalls compare results only; stall-free cases also pin CL == RTL cycle counts.
"""
from __future__ import annotations

from dataclasses import dataclass

from hades.config import VerifierConfig
from hades.traces.synthetic import LogitSyntheticSpec, SyntheticSpec


@dataclass(frozen=True)
class Case:
    name: str
    cfg: VerifierConfig
    spec: SyntheticSpec
    src_stall: float = 0.0
    sink_stall: float = 0.0

    @property
    def stall_free(self) -> bool:
        return self.src_stall == 0.0


SMALL = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4)
SMALL_BIG_SRAM = VerifierConfig(lanes=4, vocab_max=64, gamma_max=4, sram_words=SMALL.buffer_words + 37)
EIGHT_LANES = VerifierConfig(lanes=8, vocab_max=128, gamma_max=8, prob_bits=12, uniform_bits=24)
FULL_VOCAB = VerifierConfig(lanes=32, vocab_max=65536, gamma_max=4)

CASES = [
    Case("small_stochastic", SMALL, SyntheticSpec(vocab_size=50, rounds=20, gammas=(0, 1, 2, 3, 4), seed=1)),
    Case("small_greedy", SMALL, SyntheticSpec(vocab_size=50, rounds=12, gammas=(4, 1, 0, 3), mode="greedy", seed=2)),
    Case("small_exact_rows", SMALL, SyntheticSpec(vocab_size=64, rounds=10, gammas=(2, 4), seed=3)),
    Case("small_big_sram", SMALL_BIG_SRAM, SyntheticSpec(vocab_size=61, rounds=10, gammas=(4, 2), seed=4)),
    Case("small_stalls", SMALL, SyntheticSpec(vocab_size=33, rounds=12, gammas=(3, 0, 4), seed=5),
         src_stall=0.3, sink_stall=0.5),
    Case("sink_backpressure_only", SMALL, SyntheticSpec(vocab_size=47, rounds=10, gammas=(4, 0, 2), seed=10),
         sink_stall=0.6),   # the result waits, the round's counters do not: cycles stay pinned
    Case("greedy_stalls", SMALL, SyntheticSpec(vocab_size=40, rounds=8, gammas=(2, 4), mode="greedy", seed=6),
         src_stall=0.2, sink_stall=0.3),
    Case("eight_lanes_w12", EIGHT_LANES, SyntheticSpec(vocab_size=100, rounds=12, gammas=(8, 5, 1), seed=7,
                                                         prob_bits=12, uniform_bits=24)),
    Case("full_vocab_gpt2", FULL_VOCAB, SyntheticSpec(vocab_size=50257, rounds=3, gammas=(4, 1, 3), seed=8)),
    Case("full_vocab_greedy", FULL_VOCAB, SyntheticSpec(vocab_size=50272, rounds=2, gammas=(2, 4), mode="greedy", seed=9)),
]


# ---- the logit block (v2 rounds): every case at every level through run_logit_rounds ----------

@dataclass(frozen=True)
class LogitCase:
    name: str
    cfg: VerifierConfig
    spec: LogitSyntheticSpec
    src_stall: float = 0.0
    sink_stall: float = 0.0

    @property
    def stall_free(self) -> bool:
        return self.src_stall == 0.0


LOGIT_FULL_VOCAB = VerifierConfig(lanes=16, vocab_max=65536, gamma_max=4)
# wide datapaths (issue 15): 2 and 4 lane groups of 32 lanes (hades/rtl/beats.py), built for a
# real vocabulary so that the same build runs small and full-vocabulary rows
LOGIT_WIDE_64 = VerifierConfig(lanes=64, vocab_max=65536, gamma_max=4)
LOGIT_WIDE_128 = VerifierConfig(lanes=128, vocab_max=65536, gamma_max=4)
WIDE_TEMPERATURES = (0.5, 1.5)

LOGIT_CASES = [
    LogitCase("logit_small_mixed", SMALL, LogitSyntheticSpec(vocab_size=50, rounds=24, gammas=(0, 1, 2, 3, 4),
                                                             seed=1)),
    LogitCase("logit_small_stochastic_model_drafts", SMALL,
              LogitSyntheticSpec(vocab_size=64, rounds=16, gammas=(4, 2, 3, 1), seed=2, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, min_ps=(0.0, 0.05, 0.2))),
    LogitCase("logit_small_greedy", SMALL, LogitSyntheticSpec(vocab_size=45, rounds=12, gammas=(4, 1, 0, 3), seed=3,
                                                              greedy_share=1.0, onehot_share=0.5)),
    LogitCase("logit_small_onehot", SMALL, LogitSyntheticSpec(vocab_size=37, rounds=12, gammas=(2, 4, 0), seed=4,
                                                              greedy_share=0.3, onehot_share=1.0)),
    LogitCase("logit_small_ties", SMALL, LogitSyntheticSpec(vocab_size=48, rounds=16, gammas=(3, 4, 1), seed=5,
                                                            logit_step=2.0, min_ps=(0.0, 0.1))),
    LogitCase("logit_small_stalls", SMALL, LogitSyntheticSpec(vocab_size=33, rounds=12, gammas=(3, 0, 4), seed=6),
              src_stall=0.3, sink_stall=0.5),
    LogitCase("logit_sink_backpressure_only", SMALL,
              LogitSyntheticSpec(vocab_size=47, rounds=10, gammas=(4, 0, 2), seed=7, greedy_share=0.2),
              sink_stall=0.6),   # messages wait, the counters do not: cycles stay pinned
    LogitCase("logit_eight_lanes_w12", VerifierConfig(lanes=8, vocab_max=128, gamma_max=8, prob_bits=12,
                                                      uniform_bits=24),
              LogitSyntheticSpec(vocab_size=100, rounds=10, gammas=(8, 5, 1), seed=8, weight_bits=12,
                                 uniform_bits=24, temperature_range=WIDE_TEMPERATURES)),
    LogitCase("logit_full_vocab_smollm", LOGIT_FULL_VOCAB,
              LogitSyntheticSpec(vocab_size=49152, rounds=3, gammas=(4, 0, 2), seed=9, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, min_ps=(0.05,))),
    LogitCase("logit_full_vocab_gpt2_mixed", LOGIT_FULL_VOCAB,
              LogitSyntheticSpec(vocab_size=50257, rounds=3, gammas=(3, 1, 2), seed=19, greedy_share=0.34,
                                 onehot_share=0.34)),
    # top-k / top-p (issue 14): many ties (logit_step), top_k 1 and >= V, top_p of one unit and 1,
    # the draft's own filters, every round its own settings, greedy rounds with filters set
    LogitCase("logit_small_filters_ties", SMALL,
              LogitSyntheticSpec(vocab_size=48, rounds=32, gammas=(3, 4, 1, 0, 2), seed=21, greedy_share=0.2,
                                 onehot_share=0.3, logit_step=2.0, min_ps=(0.0, 0.1),
                                 top_ks=(0, 1, 3, 5, 48, 100), top_ps=(1.0, 0.5, 0.9, 1 / 65536),
                                 draft_top_ks=(0, 2, 7), draft_top_ps=(1.0, 0.8))),
    LogitCase("logit_small_filters_model_drafts", SMALL,
              LogitSyntheticSpec(vocab_size=64, rounds=16, gammas=(4, 2, 3), seed=22, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, logit_step=0.5, temperature_range=WIDE_TEMPERATURES,
                                 top_ks=(1, 4, 64, 0), top_ps=(0.3, 0.95, 1.0), draft_top_ks=(10, 0),
                                 draft_top_ps=(0.7, 1 / 65536))),
    LogitCase("logit_small_filters_greedy_and_stalls", SMALL,
              LogitSyntheticSpec(vocab_size=40, rounds=12, gammas=(2, 4, 0), seed=23, greedy_share=0.5,
                                 onehot_share=0.5, top_ks=(1, 3), top_ps=(0.5, 0.8)),
              src_stall=0.2, sink_stall=0.3),
    LogitCase("logit_eight_lanes_w12_filters", VerifierConfig(lanes=8, vocab_max=128, gamma_max=8, prob_bits=12,
                                                              uniform_bits=24),
              LogitSyntheticSpec(vocab_size=128, rounds=8, gammas=(8, 3, 5), seed=24, weight_bits=12,
                                 uniform_bits=24, logit_step=1.0, top_ks=(2, 20, 0), top_ps=(0.6, 0.99))),
    LogitCase("logit_full_vocab_filters", LOGIT_FULL_VOCAB,
              LogitSyntheticSpec(vocab_size=49152, rounds=2, gammas=(1, 2), seed=25, greedy_share=0.0,
                                 onehot_share=1.0, top_ks=(50,), top_ps=(0.9,), min_ps=(0.0,))),
    # wide datapaths: V well past the lanes (tens of beats per row, a last beat that ends
    # inside a lane group other than the last), one full-vocabulary case per width
    LogitCase("logit_wide64_mixed", LOGIT_WIDE_64,
              LogitSyntheticSpec(vocab_size=3001, rounds=12, gammas=(4, 1, 0, 2, 3), seed=21, mask_share=0.4,
                                 min_ps=(0.0, 0.05))),
    LogitCase("logit_wide64_stalls", LOGIT_WIDE_64,
              LogitSyntheticSpec(vocab_size=1100, rounds=6, gammas=(3, 0, 4), seed=22, logit_step=2.0),
              src_stall=0.2, sink_stall=0.3),
    LogitCase("logit_wide128_model_drafts", LOGIT_WIDE_128,
              LogitSyntheticSpec(vocab_size=5000, rounds=8, gammas=(4, 2, 3, 1), seed=23, greedy_share=0.0,
                                 onehot_share=0.0, mask_share=0.5, min_ps=(0.0, 0.05, 0.2))),
    LogitCase("logit_wide128_full_vocab", LOGIT_WIDE_128,
              LogitSyntheticSpec(vocab_size=49152, rounds=3, gammas=(4, 2, 3), seed=24, greedy_share=0.34,
                                 onehot_share=0.34)),
]
