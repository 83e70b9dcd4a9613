"""Bit widths and field positions of the RTL, derived once from a VerifierConfig.

The control and datapath components take an RtlWidths rather than the configuration, so
every width they use has one name and one definition here.
"""
from __future__ import annotations

from dataclasses import dataclass

from hades.config import VerifierConfig, clog2


@dataclass(frozen=True)
class RtlWidths:
    lanes: int              # L, probabilities per beat and per scan cycle
    prob_bits: int          # W, bits per probability
    uniform_bits: int       # U, bits per uniform
    gamma_max: int          # G, draft slots in the register file
    row_sum: int            # M = 2^W - 1, the sum of a valid row
    row_stride: int         # SRAM words from one row to the next (ceil(vocab_max / L))
    sram_depth: int         # SRAM words
    beat_bits: int          # input beat
    result_bits: int        # output result
    gamma_bits: int
    token_bits: int
    vocab_bits: int
    lane_bits: int          # low token bits: the lane of a token within its beat
    beat_index_bits: int    # high token bits: the beat of a token within its row
    sram_addr_bits: int     # one spare bit, so a row past gamma reads as out of range (SramR1W1)
    sum_bits: int           # running sums: <= M for valid rows, plus one guard bit
    product_bits: int       # uniform x probability products (U + W)
    word_bits: int          # one beat of L probabilities (L * W)
    cycle_bits: int         # performance counters
    # header beat, LSB first: mode [0], gamma [1, hdr_gamma_end), V [.., hdr_vocab_end),
    # R_sample [.., hdr_uniform_end); a draft beat: x_t [0, token_bits), R_t [.., draft_uniform_end)
    hdr_gamma_end: int
    hdr_vocab_end: int
    hdr_uniform_end: int
    draft_uniform_end: int

    @classmethod
    def from_config(cls, cfg: VerifierConfig) -> "RtlWidths":
        lane_bits = clog2(cfg.lanes)
        hdr_gamma_end = 1 + cfg.gamma_bits
        hdr_vocab_end = hdr_gamma_end + cfg.vocab_bits
        return cls(
            lanes=cfg.lanes, prob_bits=cfg.prob_bits, uniform_bits=cfg.uniform_bits,
            gamma_max=cfg.gamma_max, row_sum=cfg.row_sum, row_stride=cfg.row_words,
            sram_depth=cfg.sram_depth, beat_bits=cfg.beat_bits, result_bits=cfg.result_bits,
            gamma_bits=cfg.gamma_bits, token_bits=cfg.token_bits, vocab_bits=cfg.vocab_bits,
            lane_bits=lane_bits, beat_index_bits=cfg.token_bits - lane_bits,
            sram_addr_bits=clog2(cfg.sram_depth) + 1, sum_bits=cfg.prob_bits + 1,
            product_bits=cfg.uniform_bits + cfg.prob_bits, word_bits=cfg.lanes * cfg.prob_bits,
            cycle_bits=32, hdr_gamma_end=hdr_gamma_end, hdr_vocab_end=hdr_vocab_end,
            hdr_uniform_end=hdr_vocab_end + cfg.uniform_bits,
            draft_uniform_end=cfg.token_bits + cfg.uniform_bits)
