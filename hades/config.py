"""Hardware configuration shared by the FL, CL and RTL models, checked up front."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from hades import limits
from hades.errors import ConfigError, TraceError


def clog2(n: int) -> int:
    """Bits needed to index n distinct values (at least 1)."""
    return max(1, (n - 1).bit_length())


def bits_for(value: int) -> int:
    """Bits needed to represent the value itself (at least 1)."""
    return max(1, value.bit_length())


@dataclass(frozen=True)
class VerifierConfig:
    """Parameters of the verifier block.

    lanes         L, vocabulary entries per input beat and per scan cycle (power of two)
    vocab_max     V_max, the largest vocabulary the block accepts
    gamma_max     G, the most draft tokens per round
    prob_bits     W, bits per probability entry; rows sum to M = 2^W - 1
    uniform_bits  U, bits per uniform
    sram_words    on-chip buffer depth in words of L entries; None = exactly what
                  gamma_max draft rows of vocab_max entries need
    """
    lanes: int = 16
    vocab_max: int = 65536
    gamma_max: int = 16
    prob_bits: int = 16
    uniform_bits: int = 32
    sram_words: int | None = None

    def __post_init__(self):
        # ranges: hades/limits.py (one declaration for the API and the command line)
        limits.check_fields(self, {"lanes": limits.LANES, "vocab_max": limits.VOCAB_MAX,
                                   "gamma_max": limits.GAMMA_MAX, "prob_bits": limits.PROB_BITS,
                                   "uniform_bits": limits.UNIFORM_BITS, "sram_words": limits.SRAM_WORDS},
                            optional=("sram_words",))
        if self.sram_words is not None and self.sram_words < self.row_words:
            raise ConfigError(f"sram_words={self.sram_words} is smaller than one row "
                              f"({self.row_words} words of {self.lanes} entries for vocab_max={self.vocab_max})")

    # ---- derived widths -------------------------------------------------------------
    @property
    def row_sum(self) -> int:
        return (1 << self.prob_bits) - 1

    @property
    def row_words(self) -> int:
        """Words (beats) per row of vocab_max entries: the stride of rows in the buffer."""
        return -(-self.vocab_max // self.lanes)

    @property
    def buffer_words(self) -> int:
        """Words needed to hold gamma_max draft rows (the RTL's buffer requirement)."""
        return max(1, self.gamma_max * self.row_words)

    @property
    def sram_depth(self) -> int:
        return self.buffer_words if self.sram_words is None else self.sram_words

    @property
    def token_bits(self) -> int:
        return clog2(self.vocab_max)

    @property
    def vocab_bits(self) -> int:
        return bits_for(self.vocab_max)

    @property
    def gamma_bits(self) -> int:
        return bits_for(self.gamma_max)

    @property
    def header_bits(self) -> int:
        return 1 + self.gamma_bits + self.vocab_bits + self.uniform_bits

    @property
    def draft_bits(self) -> int:
        return self.token_bits + self.uniform_bits

    @property
    def beat_bits(self) -> int:
        return max(self.lanes * self.prob_bits, self.header_bits, self.draft_bits)

    @property
    def result_bits(self) -> int:
        return self.gamma_bits + self.token_bits + 64

    def module_name(self) -> str:
        """Parameter-encoding Verilog name with no '__' (Verilator 5 escapes '__' in file names, which breaks pymtl3's import)."""
        return (f"Verifier_L{self.lanes}_V{self.vocab_max}_G{self.gamma_max}"
                f"_W{self.prob_bits}_U{self.uniform_bits}_D{self.sram_depth}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["sram_words"] = self.sram_depth
        return d

    def require_simulatable(self):
        """The PyMTL3 models (FL/CL components, RTL) carry a beat in one signal, and PyMTL3
        signals stop at 1023 bits; the analytic CL timing has no such limit."""
        if self.beat_bits >= 1024:
            raise ConfigError(f"lanes * prob_bits = {self.lanes * self.prob_bits} bits per beat; PyMTL3 signals are "
                              "limited to 1023 bits (use lanes <= 32 at prob_bits = 16 for simulation)")

    def require_rtl(self):
        """Everything the RTL needs beyond the shared checks (raises ConfigError)."""
        if self.lanes < 2:
            raise ConfigError(f"the RTL needs lanes >= 2, got {self.lanes}")
        if self.vocab_max <= self.lanes:
            raise ConfigError(f"the RTL needs vocab_max > lanes, got vocab_max={self.vocab_max}, lanes={self.lanes}")
        if self.gamma_max < 1:
            raise ConfigError(f"the RTL needs gamma_max >= 1, got {self.gamma_max}")
        self.require_simulatable()
        self.require_rtl_buffer()

    def require_rtl_buffer(self):
        """The RTL keeps every draft row on chip; a smaller buffer is refused (the CL model
        handles it with an off-chip overflow path instead)."""
        if self.sram_depth < self.buffer_words:
            raise ConfigError(
                f"sram_words={self.sram_depth} cannot hold gamma_max={self.gamma_max} draft rows of "
                f"{self.row_words} words; the RTL needs {self.buffer_words} (use the CL model for "
                "off-chip overflow studies)")
        limits.RTL_SRAM_WORDS.check(self.sram_depth)

    def _check_trace_shape(self, trace) -> None:
        """What v1 and v2 traces share: V within vocab_max, gamma within gamma_max, the same U."""
        if trace.vocab_size > self.vocab_max:
            raise TraceError(f"trace vocabulary {trace.vocab_size} exceeds the hardware's vocab_max={self.vocab_max}")
        g = int(trace.gamma.max())
        if g > self.gamma_max:
            raise TraceError(f"trace gamma {g} exceeds the hardware's gamma_max={self.gamma_max}")
        if trace.uniform_bits != self.uniform_bits:
            raise TraceError(f"trace uniform_bits={trace.uniform_bits} differs from the hardware's "
                             f"uniform_bits={self.uniform_bits}")

    def check_trace(self, trace) -> None:
        """Refuse a trace this hardware cannot verify, naming the parameter."""
        self._check_trace_shape(trace)
        if trace.prob_bits != self.prob_bits or trace.row_sum != self.row_sum:
            raise TraceError(f"trace prob_bits={trace.prob_bits}/row_sum={trace.row_sum} differs from the "
                             f"hardware's prob_bits={self.prob_bits}/row_sum={self.row_sum}")

    def check_logit_trace(self, trace) -> None:
        """check_trace for a v2 (logit) trace: V and gamma as for v1, the same U, and the
        trace's weight_bits equal to prob_bits. Naming: prob_bits is the hardware's W, the
        width of the entries its lanes carry; v1 entries are probabilities, v2's weight rows
        (NUMERICS.md section 13) are W-bit weights, so the trace calls it weight_bits. There
        is no row_sum in v2 (each row carries its own sum Z)."""
        self._check_trace_shape(trace)
        if trace.weight_bits != self.prob_bits:
            raise TraceError(f"trace weight_bits={trace.weight_bits} differs from the hardware's "
                             f"prob_bits={self.prob_bits} (W: the width of a row entry)")


@dataclass(frozen=True)
class TreeConfig:
    """Parameters of the tree block (docs/ARCHITECTURE.md "The tree block"): the lane datapath's
    VerifierConfig (lanes, vocab_max, prob_bits W, uniform_bits U, sram_words; gamma_max is the
    chain block's and unused here), and

    nodes_max     N_max, the most nodes of one tree round (the root included)
    children_max  k_max, the most children of one node, every scheme: the accept test and the
                  residual of sampled children need (k_max + 1) z-bit sums (docs/TREES.md
                  section 8), and the walk matches a deterministic or greedy node's token
                  against its k_max children at once
    """
    hw: VerifierConfig = VerifierConfig()
    nodes_max: int = 32
    children_max: int = 4

    def __post_init__(self):
        if not isinstance(self.hw, VerifierConfig):
            raise ConfigError(f"TreeConfig.hw must be a VerifierConfig, got {type(self.hw).__name__}")
        limits.check_fields(self, {"nodes_max": limits.TREE_NODES_MAX, "children_max": limits.TREE_CHILDREN_MAX})
        if self.children_max >= self.nodes_max:
            raise ConfigError(f"children_max={self.children_max} needs nodes_max >= {self.children_max + 1} "
                              f"(the root and its children), got nodes_max={self.nodes_max}")

    @property
    def node_bits(self) -> int:
        """Bits of a node id 0..N_max - 1."""
        return clog2(self.nodes_max)

    @property
    def count_bits(self) -> int:
        """Bits of a node count 1..N_max (the header's N) and of a depth 0..N_max - 1."""
        return bits_for(self.nodes_max)
