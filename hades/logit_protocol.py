"""The logit block's stream protocol and widths, the same at FL, CL and RTL (docs/ARCHITECTURE.md
"The logit block").

Input: one stream of beats of `beat_bits` bits. A round is
  1 header beat      greedy [0] | onehot [1] | gamma | V | R_sample | k_d | min_p_d | k_t | min_p_t
                     | top_k_d (25) | top_p_d (17) | top_k_t (25) | top_p_t (17)
  gamma draft beats  x_t | D_t | R_t   (x_t is read for one-hot drafts only: a model draft's
                     token is sampled by the block, so the host sends 0 there)
  gamma draft rows   model drafts only (none for one-hot drafts), then
  gamma + 1 target rows, each ceil(V / L) beats of L bf16 entries (16 bits each), entry i of a
                     beat in bits [16 i, 16 i + 16); lanes past V in a row's last beat are ignored.
Output: a stream of messages of `result_bits` bits:
  kind [0] (0: draft token, 1: round result) | slot or accepted | token | cycles (32) | latency (32)
For a model-drafted round the block first returns x_0 .. x_gamma-1 (kind 0, in slot order; cycles
= the cycle, header = 0, from which x_t is held, latency = cycles after the draft row's last beat),
then the round result (kind 1: accepted, token, cycles inclusive of the header, latency from the
last input beat), as VerifierConfig's v1 block does.

The hardware parameters are VerifierConfig's: lanes, vocab_max, gamma_max, prob_bits (W, the
width of a weight), uniform_bits; sram_words (None: what the round needs, see buffer_words).
The layout adds radix_bits (b, the top-k / top-p select's bits per pass, default 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hades import numerics
from hades.config import VerifierConfig, clog2
from hades.errors import ConfigError, TraceError
from hades.round import LogitRound, RoundResult, uniform_array

BF16_BITS = 16
K_BITS = 24                                   # inverse temperature, 1..2^24 - 1
MIN_P_BITS = numerics.FRACTION_BITS + 1       # 0..2^16
TOP_K_BITS = 25                               # 0..2^24 (0 = off)
TOP_P_BITS = numerics.FRACTION_BITS + 1       # 1..2^16 (2^16 = off)
KIND_DRAFT, KIND_RESULT = 0, 1
GROUP_LANES = 32                              # lanes per beat signal and per SRAM bank: 512 bits
MAX_SIM_LANES = 256                           # the widest RTL built and checked (8 lane groups)

# both sides' sampling parameters, in the order every header carries them (logit and tree blocks)
SIDE_PARAM_FIELDS = (("draft_k", K_BITS), ("draft_min_p", MIN_P_BITS), ("target_k", K_BITS),
                     ("target_min_p", MIN_P_BITS), ("draft_top_k", TOP_K_BITS), ("draft_top_p", TOP_P_BITS),
                     ("target_top_k", TOP_K_BITS), ("target_top_p", TOP_P_BITS))


def field_layout(widths) -> dict[str, tuple[int, int]]:
    """name -> (lsb, width) of fields packed LSB first in the order given."""
    out, pos = {}, 0
    for name, w in widths:
        out[name] = (pos, w)
        pos += w
    return out


@dataclass(frozen=True)
class LogitLayout:
    """Field positions and datapath widths of the logit block, derived once from a VerifierConfig."""
    cfg: VerifierConfig
    radix_bits: int = numerics.FILTER_RADIX_BITS

    # ---- sizes --------------------------------------------------------------------------
    @property
    def lanes(self) -> int:
        return self.cfg.lanes

    @property
    def weight_bits(self) -> int:
        return self.cfg.prob_bits

    @property
    def row_words(self) -> int:
        """SRAM words from one buffered row to the next (ceil(vocab_max / L) beats)."""
        return -(-self.cfg.vocab_max // self.cfg.lanes)

    @property
    def draft_buffer_words(self) -> int:
        return self.cfg.gamma_max * self.row_words

    @property
    def target_buffer_words(self) -> int:
        return (self.cfg.gamma_max + 1) * self.row_words

    @property
    def buffer_words(self) -> int:
        """Every draft row and every target row of a round at gamma_max (the RTL's buffers)."""
        return self.draft_buffer_words + self.target_buffer_words

    @property
    def word_bits(self) -> int:
        return self.cfg.lanes * BF16_BITS

    # ---- widths of sums and products (NUMERICS.md section 17) ----------------------------
    @property
    def z_bits(self) -> int:
        """Z = sum of a row's weights <= V (2^W - 1) < 2^(W + clog2 vocab_max)."""
        return self.weight_bits + clog2(self.cfg.vocab_max)

    @property
    def residual_bits(self) -> int:
        """r_i = max(0, Q_i ZP - P_i ZQ) < 2^(W + z_bits)."""
        return self.weight_bits + self.z_bits

    @property
    def residual_sum_bits(self) -> int:
        """S = sum r_i < V 2^(W + z_bits)."""
        return self.residual_bits + clog2(self.cfg.vocab_max)

    # ---- the top-k / top-p select (NUMERICS.md section 19, ARCHITECTURE.md "Filters") ----------
    @property
    def count_bits(self) -> int:
        """Counts of entries of a row (n_k, C(> tau), c): 0..vocab_max."""
        return self.cfg.vocab_bits

    @property
    def filter_levels(self) -> int:
        """Passes of one select: ceil(W / b) digits of b bits."""
        return -(-self.weight_bits // self.radix_bits)

    @property
    def select_cycles(self) -> int:
        """Cycles after a pass's finish: the bin scan (2^b) and the commit (1)."""
        return (1 << self.radix_bits) + 1

    @property
    def divide_cycles(self) -> int:
        """The serial divider of c_p after the last top-p pass: one quotient bit per cycle."""
        return self.count_bits

    def filter_cycles(self, words: int, top_k_on: bool, top_p_on: bool) -> int:
        """Engine cycles (issue of the first pass .. the cycle before the row's Z job may start)
        that the passes of one filtered row add: each pass costs words + 2 + select_cycles; with
        both filters top-p's first level reuses top-k's first-level bins and reads no words
        (select_cycles + 1)."""
        passes = self.filter_levels * (int(top_k_on) + int(top_p_on))
        shared = words + 1 if top_k_on and top_p_on else 0
        return passes * (words + 2 + self.select_cycles) + (self.divide_cycles if top_p_on else 0) - shared

    # ---- header fields, LSB first ---------------------------------------------------------
    @property
    def fields(self) -> dict[str, tuple[int, int]]:
        """name -> (lsb, width) of every header field."""
        c = self.cfg
        return field_layout((("greedy", 1), ("onehot", 1), ("gamma", c.gamma_bits), ("vocab", c.vocab_bits),
                             ("sample_uniform", c.uniform_bits)) + SIDE_PARAM_FIELDS)

    @property
    def header_bits(self) -> int:
        lsb, w = self.fields["target_top_p"]
        return lsb + w

    @property
    def draft_beat_bits(self) -> int:
        return self.cfg.token_bits + 2 * self.cfg.uniform_bits

    @property
    def beat_bits(self) -> int:
        return max(self.word_bits, self.header_bits, self.draft_beat_bits)

    # ---- lane groups: how a beat (and an SRAM word) is split into signals of <= 512 bits ----
    @property
    def group_lanes(self) -> int:
        """Lanes per group: all of them up to GROUP_LANES, else GROUP_LANES (L is a power of two)."""
        return min(self.cfg.lanes, GROUP_LANES)

    @property
    def lane_groups(self) -> int:
        return self.cfg.lanes // self.group_lanes

    @property
    def group_word_bits(self) -> int:
        """Bits of one lane group's share of an SRAM word (one bank of the row buffers)."""
        return self.group_lanes * BF16_BITS

    @property
    def beat_groups(self) -> tuple[int, ...]:
        """Widths of the beat's signals, group 0 first. Group g carries lanes [g G, g G + G) (G =
        group_lanes) in its low bits; group 0 also carries the header and draft beats' fields,
        so it is widened to them when a beat has a single group (L <= 32)."""
        if self.lane_groups == 1:
            return (self.beat_bits,)
        assert max(self.header_bits, self.draft_beat_bits) <= self.group_word_bits
        return (self.group_word_bits,) * self.lane_groups

    @property
    def group_bits(self) -> int:
        """Every group of a beat is as wide (beat_groups)."""
        return self.beat_groups[0]

    def split_beat(self, beat: int) -> list[int]:
        """A beat as the values of its group signals (group 0 first)."""
        out, pos = [], 0
        for bits in self.beat_groups:
            out.append((int(beat) >> pos) & ((1 << bits) - 1))
            pos += bits
        return out

    @property
    def result_bits(self) -> int:
        return 1 + self.cfg.gamma_bits + self.cfg.token_bits + 64

    def module_name(self, sram_words: int | None = None) -> str:
        """Parameter-encoding Verilog name with no '__' (Verilator 5 escapes it in file names)."""
        c = self.cfg
        b = "" if self.radix_bits == numerics.FILTER_RADIX_BITS else f"_B{self.radix_bits}"
        return (f"LogitVerifier_L{c.lanes}_V{c.vocab_max}_G{c.gamma_max}_W{c.prob_bits}"
                f"_U{c.uniform_bits}{b}")

    def require_simulatable(self) -> None:
        """The PyMTL3 components (FL, CL and RTL) carry a beat as lane groups of at most
        GROUP_LANES lanes (beat_groups), and PyMTL3 signals stop at 1023 bits; the analytic CL
        timing has no such limit."""
        if max(self.beat_groups) >= 1024:
            raise ConfigError(f"{max(self.beat_groups)} bits in a beat's lane group: PyMTL3 signals stop at "
                              "1023 bits")
        if self.cfg.lanes > MAX_SIM_LANES:
            raise ConfigError(f"lanes={self.cfg.lanes}: the logit block's RTL is built and checked up to "
                              f"{MAX_SIM_LANES} lanes (use the CL timing model beyond)")

    def require_rtl(self) -> None:
        """What the RTL of the logit block needs beyond VerifierConfig's own checks."""
        c = self.cfg
        if c.lanes < 2:
            raise ConfigError(f"the logit RTL needs lanes >= 2, got {c.lanes}")
        if c.vocab_max <= c.lanes:
            raise ConfigError(f"the logit RTL needs vocab_max > lanes, got vocab_max={c.vocab_max}, lanes={c.lanes}")
        if c.gamma_max < 1:
            raise ConfigError(f"the logit RTL needs gamma_max >= 1, got {c.gamma_max}")
        self.require_simulatable()
        if self.residual_sum_bits + c.uniform_bits >= 1024:
            raise ConfigError(f"{self.residual_sum_bits + c.uniform_bits} bits in the residual threshold: PyMTL3 "
                              "signals stop at 1023 bits")
        if c.sram_words is not None and c.sram_words < self.buffer_words:
            raise ConfigError(f"sram_words={c.sram_words} cannot hold the logit block's {c.gamma_max} draft and "
                              f"{c.gamma_max + 1} target rows of {self.row_words} words; the RTL needs "
                              f"{self.buffer_words} (use the CL model for off-chip overflow studies)")
        from hades import limits
        limits.RTL_SRAM_WORDS.check(self.buffer_words)


def beats_per_row(cfg: VerifierConfig, vocab_size: int) -> int:
    return -(-int(vocab_size) // cfg.lanes)


def check_logit_round(cfg: VerifierConfig, rnd: LogitRound, where: str = "round") -> None:
    """What the block can carry: V, gamma within the hardware, parameters in their fields
    (TraceError otherwise)."""
    if rnd.vocab_size > cfg.vocab_max:
        raise TraceError(f"{where}: vocabulary {rnd.vocab_size} exceeds vocab_max={cfg.vocab_max}")
    if rnd.gamma > cfg.gamma_max:
        raise TraceError(f"{where}: gamma {rnd.gamma} exceeds gamma_max={cfg.gamma_max}")
    for side in ("draft_params", "target_params"):
        numerics.check_sampling_params(getattr(rnd, side), f"{where}: {side}")


def filter_flags(rnd: LogitRound) -> tuple[bool, bool, bool, bool]:
    """(draft top-k, draft top-p, target top-k, target top-p): which select passes the block runs
    for the round's rows (top-k: 0 < top_k < V; top-p: top_p < 2^16). Greedy rounds run none, the
    draft side only for model drafts (the header decode of LogitDpath computes the same)."""
    return (side_filter_flags(rnd.draft_params, rnd.vocab_size, model_drafts(rnd) and not rnd.greedy)
            + side_filter_flags(rnd.target_params, rnd.vocab_size, not rnd.greedy))


def side_filter_flags(params, vocab_size: int, live: bool = True) -> tuple[bool, bool]:
    """(top-k on, top-p on) of one side's (k, top_k, top_p, min_p) over rows of vocab_size entries."""
    sp = numerics.SamplingParams(*[int(v) for v in params])
    return (bool(live) and 0 < sp.top_k < int(vocab_size), bool(live) and sp.top_p < numerics.FRACTION_ONE)


def model_drafts(rnd: LogitRound) -> bool:
    """Rounds whose draft rows stream in and whose tokens the block samples (and returns)."""
    return not rnd.onehot_draft and rnd.gamma > 0


def header_beat(cfg: VerifierConfig, rnd: LogitRound) -> int:
    lay = LogitLayout(cfg)
    dp = numerics.SamplingParams(*[int(v) for v in rnd.draft_params])
    tp = numerics.SamplingParams(*[int(v) for v in rnd.target_params])
    values = {"greedy": int(rnd.greedy), "onehot": int(rnd.onehot_draft), "gamma": rnd.gamma,
              "vocab": rnd.vocab_size, "sample_uniform": int(rnd.sample_uniform) if not rnd.greedy else 0,
              "draft_k": dp.k, "draft_min_p": dp.min_p, "target_k": tp.k, "target_min_p": tp.min_p,
              "draft_top_k": dp.top_k, "draft_top_p": dp.top_p, "target_top_k": tp.top_k, "target_top_p": tp.top_p}
    beat = 0
    for name, (lsb, width) in lay.fields.items():
        v = int(values[name])
        assert 0 <= v < (1 << width), (name, v)
        beat |= v << lsb
    return beat


def draft_beats(cfg: VerifierConfig, rnd: LogitRound) -> list[int]:
    tb, ub = cfg.token_bits, cfg.uniform_bits
    g = rnd.gamma
    zeros = np.zeros(g, np.uint64)
    acc = uniform_array(rnd.accept_uniforms) if not rnd.greedy else zeros
    drw = uniform_array(rnd.draft_uniforms) if not (rnd.greedy or rnd.onehot_draft) else zeros
    out = []
    for t in range(g):
        x = int(rnd.draft_tokens[t]) if rnd.onehot_draft else 0
        out.append(x | (int(drw[t]) << tb) | (int(acc[t]) << (tb + ub)))
    return out


def logit_rows_beat_array(cfg: VerifierConfig, rows: np.ndarray) -> np.ndarray:
    """bf16 rows [n, V] -> uint64-per-lane beats [n * ceil(V / L), L] (lanes past V are 0)."""
    L = cfg.lanes
    rows = np.asarray(rows, np.uint16)
    n, V = rows.shape
    per = beats_per_row(cfg, V)
    padded = np.zeros((n, per * L), np.uint16)
    padded[:, :V] = rows
    return padded.reshape(n * per, L)


def _lanes_to_int(lanes: np.ndarray) -> int:
    return int.from_bytes(np.ascontiguousarray(lanes, dtype="<u2").tobytes(), "little")


def round_rows(rnd: LogitRound) -> np.ndarray:
    """The rows of a round in stream order: model draft rows, then the target rows."""
    tl = np.asarray(rnd.target_logits, np.uint16)
    if model_drafts(rnd):
        return np.concatenate([np.asarray(rnd.draft_logits, np.uint16), tl])
    return tl


def round_beats(cfg: VerifierConfig, rnd: LogitRound, where: str = "round") -> list[int]:
    """All input beats of a round as Python ints (the PyMTL3 source's messages)."""
    check_logit_round(cfg, rnd, where)
    beats = [header_beat(cfg, rnd)] + draft_beats(cfg, rnd)
    beats += [_lanes_to_int(b) for b in logit_rows_beat_array(cfg, round_rows(rnd))]
    return beats


def input_beats(cfg: VerifierConfig, rnd: LogitRound) -> int:
    rows = (2 * rnd.gamma + 1) if model_drafts(rnd) else rnd.gamma + 1
    return 1 + rnd.gamma + rows * beats_per_row(cfg, rnd.vocab_size)


# ---- output messages ---------------------------------------------------------------------

@dataclass(frozen=True)
class DraftToken:
    """A kind-0 message: the block's draft sample x_t of slot t."""
    slot: int
    token: int
    cycles: int | None = None     # the cycle (header = 0) from which x_t is held
    latency: int | None = None    # ... minus the cycle of the draft row's last beat


def pack_message(cfg: VerifierConfig, kind: int, slot_or_accepted: int, token: int, cycles, latency) -> int:
    gb, tb = cfg.gamma_bits, cfg.token_bits
    return (int(kind) | (int(slot_or_accepted) << 1) | (int(token) << (1 + gb))
            | ((int(cycles or 0) & 0xFFFFFFFF) << (1 + gb + tb)) | ((int(latency or 0) & 0xFFFFFFFF) << (33 + gb + tb)))


def pack_draft(cfg: VerifierConfig, d: DraftToken) -> int:
    return pack_message(cfg, KIND_DRAFT, d.slot, d.token, d.cycles, d.latency)


def pack_result(cfg: VerifierConfig, r: RoundResult) -> int:
    return pack_message(cfg, KIND_RESULT, r.accepted, r.token, r.cycles, r.latency)


def unpack_message(cfg: VerifierConfig, word: int, timed: bool) -> DraftToken | RoundResult:
    gb, tb = cfg.gamma_bits, cfg.token_bits
    word = int(word)
    kind = word & 1
    a = (word >> 1) & ((1 << gb) - 1)
    tok = (word >> (1 + gb)) & ((1 << tb) - 1)
    cyc = (word >> (1 + gb + tb)) & 0xFFFFFFFF if timed else None
    lat = (word >> (33 + gb + tb)) & 0xFFFFFFFF if timed else None
    return RoundResult(a, tok, cyc, lat) if kind == KIND_RESULT else DraftToken(a, tok, cyc, lat)


@dataclass(frozen=True)
class LogitRoundOutput:
    """What the block returns for one round: its draft samples (model drafts only) and the result."""
    drafts: tuple[DraftToken, ...]
    result: RoundResult


def group_messages(messages) -> list[LogitRoundOutput]:
    """Split a message stream (DraftToken / RoundResult items) into rounds."""
    out, drafts = [], []
    for m in messages:
        if isinstance(m, DraftToken):
            drafts.append(m)
        else:
            out.append(LogitRoundOutput(tuple(drafts), m))
            drafts = []
    if drafts:
        raise TraceError(f"{len(drafts)} draft token message(s) after the last round result")
    return out


# ---- reassembling rounds from beats (the FL and CL stream components) ----------------------

@dataclass(frozen=True)
class DraftRow:
    """A model draft row as its last beat arrives: what the block needs to sample x_t then."""
    slot: int
    gamma: int
    greedy: bool
    params: tuple[int, int, int, int]   # the draft side's (k, top_k, top_p, min_p)
    uniform: int                        # D_t
    logits: np.ndarray                  # uint16 [V]


def _lanes_of(cfg: VerifierConfig, words: list[int], vocab: int) -> np.ndarray:
    """Beats of L bf16 lanes -> rows [len(words) / ceil(V / L), V] (uint16)."""
    nbytes, mask = 2 * cfg.lanes, (1 << (BF16_BITS * cfg.lanes)) - 1
    raw = b"".join((w & mask).to_bytes(nbytes, "little") for w in words)
    return np.frombuffer(raw, "<u2").astype(np.uint16).reshape(-1, beats_per_row(cfg, vocab) * cfg.lanes)[:, :vocab]


class LogitBeatDecoder:
    """Reassembles LogitRounds from a beat stream. A model-drafted round comes back with
    draft_tokens all zero (the stream does not carry them: the block samples them). After each
    push, completed_draft_row() tells whether that beat was the last of a model draft row."""

    def __init__(self, cfg: VerifierConfig):
        self.cfg = cfg
        self.lay = LogitLayout(cfg)
        self.reset()

    def reset(self):
        self._beats: list[int] = []
        self._need = None
        self._draft_row: DraftRow | None = None

    def empty(self) -> bool:
        return not self._beats

    def _field(self, beat: int, name: str) -> int:
        lsb, w = self.lay.fields[name]
        return (beat >> lsb) & ((1 << w) - 1)

    def _draft_beat(self, beat: int) -> tuple[int, int, int]:
        """(x_t, D_t, R_t) of a draft beat."""
        tb, ub = self.cfg.token_bits, self.cfg.uniform_bits
        return beat & ((1 << tb) - 1), (beat >> tb) & ((1 << ub) - 1), (beat >> (tb + ub)) & ((1 << ub) - 1)

    def _params(self, side: str) -> tuple[int, int, int, int]:
        h = self._beats[0]
        return (self._field(h, f"{side}_k"), self._field(h, f"{side}_top_k"), self._field(h, f"{side}_top_p"),
                self._field(h, f"{side}_min_p"))

    def completed_draft_row(self) -> DraftRow | None:
        """The model draft row whose last beat the latest push delivered, else None."""
        return self._draft_row

    def push(self, beat: int) -> LogitRound | None:
        cfg, f = self.cfg, self._field
        self._beats.append(int(beat))
        self._draft_row = None
        h = self._beats[0]
        if len(self._beats) == 1:
            gamma, vocab = f(h, "gamma"), f(h, "vocab")
            greedy, onehot = bool(f(h, "greedy")), bool(f(h, "onehot"))
            md = not onehot and gamma > 0
            n = beats_per_row(cfg, vocab)
            self._shape = (gamma, vocab, greedy, onehot, md, n)
            self._need = 1 + gamma + (gamma + 1 + (gamma if md else 0)) * n
        gamma, vocab, greedy, onehot, md, n = self._shape
        row_beats = len(self._beats) - 1 - gamma
        if md and row_beats > 0 and row_beats % n == 0 and row_beats // n <= gamma:
            t = row_beats // n - 1
            self._draft_row = DraftRow(t, gamma, greedy, self._params("draft"),
                                       self._draft_beat(self._beats[1 + t])[1],
                                       _lanes_of(cfg, self._beats[-n:], vocab)[0])
        if len(self._beats) < self._need:
            return None
        beats = self._beats
        dp, tp = self._params("draft"), self._params("target")
        self._beats, self._need = [], None
        fields = [self._draft_beat(b) for b in beats[1:1 + gamma]]
        toks = np.array([x for x, _, _ in fields], np.int64)
        d_u = np.array([d for _, d, _ in fields], np.uint64)
        r_u = np.array([r for _, _, r in fields], np.uint64)
        rows = _lanes_of(cfg, beats[1 + gamma:], vocab)
        draft_rows = rows[:gamma] if md else np.zeros((gamma, vocab), np.uint16)
        target_rows = rows[gamma:] if md else rows
        return LogitRound(greedy=greedy, onehot_draft=onehot, draft_tokens=toks, draft_logits=draft_rows,
                          target_logits=target_rows, draft_params=dp, target_params=tp,
                          draft_uniforms=d_u, accept_uniforms=r_u, sample_uniform=f(h, "sample_uniform"))
