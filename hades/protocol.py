"""The verifier's stream protocol, the same at FL, CL and RTL.

Input: one stream of beats of cfg.beat_bits bits. A round is
  1 header beat        mode (bit 0, 1 = greedy) | gamma | V | R_sample   (LSB first)
  gamma draft beats    token x_t | R_t
  gamma P rows, then gamma + 1 Q rows, each ceil(V / L) beats of L entries of W bits,
  entry i of a beat in bits [i*W, (i+1)*W); lanes past V in a row's last beat are zero.
The draft rows come first because the draft model produces them before the target runs;
the verifier buffers them and processes the target rows as they stream past.
Output: one result per round: accepted | token | cycles (32) | latency (32).
"""
from __future__ import annotations

import numpy as np

from hades.config import VerifierConfig
from hades.errors import TraceError
from hades.round import Round, RoundResult


def beats_per_row(cfg: VerifierConfig, vocab_size: int) -> int:
    return -(-vocab_size // cfg.lanes)


def check_round(cfg: VerifierConfig, rnd: Round) -> None:
    if rnd.vocab_size > cfg.vocab_max:
        raise TraceError(f"round vocabulary {rnd.vocab_size} exceeds vocab_max={cfg.vocab_max}")
    if rnd.gamma > cfg.gamma_max:
        raise TraceError(f"round gamma {rnd.gamma} exceeds gamma_max={cfg.gamma_max}")


def header_beat(cfg: VerifierConfig, rnd: Round) -> int:
    v = int(rnd.greedy)
    v |= rnd.gamma << 1
    v |= rnd.vocab_size << (1 + cfg.gamma_bits)
    v |= int(rnd.sample_uniform) << (1 + cfg.gamma_bits + cfg.vocab_bits)
    return v


def draft_beat(cfg: VerifierConfig, token: int, uniform: int) -> int:
    return int(token) | (int(uniform) << cfg.token_bits)


def beat_bytes(cfg: VerifierConfig) -> int:
    """Bytes per beat when beats are stored as little-endian 32-bit words."""
    return 4 * -(-cfg.beat_bits // 32)


def _int_beat(cfg: VerifierConfig, value: int) -> np.ndarray:
    return np.frombuffer(int(value).to_bytes(beat_bytes(cfg), "little"), dtype=np.uint8)


def rows_beat_array(cfg: VerifierConfig, rows: np.ndarray) -> np.ndarray:
    """Pack rows [n, V] into beats of L entries of W bits (little-endian lanes, zero padded):
    uint8 [n * ceil(V/L), beat_bytes], vectorised."""
    L, W = cfg.lanes, cfg.prob_bits
    rows = np.asarray(rows, dtype=np.uint64)
    n, V = rows.shape
    per_row = beats_per_row(cfg, V)
    padded = np.zeros((n, per_row * L), dtype=np.uint64)
    padded[:, :V] = rows
    bits = ((padded[..., None] >> np.arange(W, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(n * per_row, L * W)
    width = 8 * beat_bytes(cfg)
    if width > L * W:
        bits = np.concatenate([bits, np.zeros((bits.shape[0], width - L * W), np.uint8)], axis=1)
    return np.packbits(bits, axis=1, bitorder="little")


def round_beat_array(cfg: VerifierConfig, rnd: Round) -> np.ndarray:
    """All beats of a round as uint8 [n_beats, beat_bytes] (the batch simulator's input)."""
    check_round(cfg, rnd)
    head = [_int_beat(cfg, header_beat(cfg, rnd))]
    head += [_int_beat(cfg, draft_beat(cfg, x, u)) for x, u in zip(rnd.draft_tokens, rnd.accept_uniforms)]
    rows = np.concatenate([rnd.draft_probs, rnd.target_probs]) if rnd.gamma else rnd.target_probs
    return np.concatenate([np.stack(head), rows_beat_array(cfg, rows)])


def round_beats(cfg: VerifierConfig, rnd: Round) -> list[int]:
    """All beats of a round as Python ints (the PyMTL3 source's messages)."""
    return [int.from_bytes(b.tobytes(), "little") for b in round_beat_array(cfg, rnd)]


def pack_result(cfg: VerifierConfig, res: RoundResult) -> int:
    gb, tb = cfg.gamma_bits, cfg.token_bits
    return (res.accepted | (res.token << gb) | ((res.cycles or 0) << (gb + tb))
            | ((res.latency or 0) << (gb + tb + 32)))


def unpack_result(cfg: VerifierConfig, word: int, timed: bool) -> RoundResult:
    gb, tb = cfg.gamma_bits, cfg.token_bits
    word = int(word)
    acc = word & ((1 << gb) - 1)
    tok = (word >> gb) & ((1 << tb) - 1)
    if not timed:
        return RoundResult(acc, tok)
    cyc = (word >> (gb + tb)) & 0xFFFFFFFF
    lat = (word >> (gb + tb + 32)) & 0xFFFFFFFF
    return RoundResult(acc, tok, cyc, lat)


class BeatDecoder:
    """Reassembles rounds from a beat stream (used by the FL and CL components)."""

    def __init__(self, cfg: VerifierConfig):
        self.cfg = cfg
        self.reset()

    def reset(self):
        self._beats: list[int] = []
        self._need = None

    def empty(self) -> bool:
        return not self._beats

    def push(self, beat: int) -> Round | None:
        """Feed one beat; returns the Round when its last beat arrives."""
        cfg = self.cfg
        self._beats.append(int(beat))
        if len(self._beats) == 1:
            h = self._beats[0]
            gamma = (h >> 1) & ((1 << cfg.gamma_bits) - 1)
            vocab = (h >> (1 + cfg.gamma_bits)) & ((1 << cfg.vocab_bits) - 1)
            self._hdr = (bool(h & 1), gamma, vocab, h >> (1 + cfg.gamma_bits + cfg.vocab_bits))
            self._need = 1 + gamma + (2 * gamma + 1) * beats_per_row(cfg, vocab)
        if len(self._beats) < self._need:
            return None
        greedy, gamma, vocab, r_sample = self._hdr
        beats = self._beats
        self.reset()
        L, W = cfg.lanes, cfg.prob_bits
        tmask = (1 << cfg.token_bits) - 1
        toks = [b & tmask for b in beats[1: 1 + gamma]]
        us = [b >> cfg.token_bits for b in beats[1: 1 + gamma]]
        n = beats_per_row(cfg, vocab)
        rows = np.array([[(b >> (i * W)) & ((1 << W) - 1) for b in beats[1 + gamma + k * n: 1 + gamma + (k + 1) * n]
                          for i in range(L)] for k in range(2 * gamma + 1)], dtype=np.int64).reshape(2 * gamma + 1, n * L)[:, :vocab]
        return Round(greedy=greedy, draft_tokens=np.array(toks, np.int64), draft_probs=rows[:gamma],
                     target_probs=rows[gamma:], accept_uniforms=np.array(us, np.uint64),
                     sample_uniform=int(r_sample))
