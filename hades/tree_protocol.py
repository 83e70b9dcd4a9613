"""The tree block's stream protocol and widths, the same at CL and RTL (docs/ARCHITECTURE.md
"The tree block"; the round itself: docs/TREES.md).

Input: one stream of beats of `beat_bits` bits. A tree round of N nodes is
  1 header beat   scheme (2: 0 greedy, 1 deterministic, 2 sampled) | N | V | k_d | min_p_d | k_t
                  | min_p_t | top_k_d (25) | top_p_d (17) | top_k_t (25) | top_p_t (17)
  N node beats    parent | token | R_n | T_n  (node n's parent, 0 for the root; its token, 0 for
                  the root; the accept uniform of n's test and the sample uniform of the draw at
                  n, 0 for greedy rounds). The draft uniforms D_n are not sent: the host drew the
                  children (it needed them to expand the tree), and the block trusts them.
  the rows        in node order; for node n: its draft row (sampled rounds, internal nodes
                  only), then its target row; each ceil(V / L) beats of L bf16 entries, as the
                  logit block's rows (lanes past V in a row's last beat are ignored).
Every descriptor arrives before any row, so the block knows the whole tree's shape before the
first row; the rows come in node order (parents before children), so the walk at node n can
run as soon as n's rows are in, while the rows of later nodes still stream.
Output: one message per round of `result_bits` bits:
  node | accepted | token | cycles (32) | latency (32)
(the node where the walk stopped, its depth, the emitted token; cycles from the header beat to
the result inclusive, latency from the last input beat). The path is the stopping node's
ancestors (the host holds the parents).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hades import numerics
from hades.config import TreeConfig, clog2
from hades.errors import ConfigError, TraceError
from hades.logit_protocol import (BF16_BITS, SIDE_PARAM_FIELDS, LogitLayout, _lanes_of, field_layout,
                                  _lanes_to_int, logit_rows_beat_array, side_filter_flags)
from hades.round import TREE_SCHEMES, TreeResult, TreeRound, children_lists, path_to, uniform_array

SCHEME_BITS = 2
SCHEME_CODE = {name: code for code, name in enumerate(TREE_SCHEMES)}   # the file's codes
DRAFT_ROW, TARGET_ROW = "draft", "target"


@dataclass(frozen=True)
class TreeLayout:
    """Field positions and datapath widths of the tree block, derived once from a TreeConfig."""
    tree: TreeConfig

    @property
    def logit(self) -> LogitLayout:
        """The lane datapath's layout (row words, z, filter passes): the logit block's."""
        return LogitLayout(self.tree.hw)

    @property
    def row_words(self) -> int:
        return self.logit.row_words

    @property
    def target_buffer_words(self) -> int:
        return self.tree.nodes_max * self.row_words

    @property
    def draft_buffer_words(self) -> int:
        """Draft rows of the internal nodes: at most N_max - 1 of them (a tree has a leaf)."""
        return (self.tree.nodes_max - 1) * self.row_words

    @property
    def buffer_words(self) -> int:
        """Every row of an N_max-node sampled round (the RTL's two buffers)."""
        return self.draft_buffer_words + self.target_buffer_words

    # ---- widths at k_max children (docs/TREES.md section 8) --------------------------------
    @property
    def z_bits(self) -> int:
        return self.logit.z_bits

    @property
    def a_bits(self) -> int:
        """a_i = ZP^i, i <= k_max."""
        return self.tree.children_max * self.z_bits

    @property
    def b_bits(self) -> int:
        """b_i <= i ZQ ZP^(i - 1)."""
        k = self.tree.children_max
        return k * self.z_bits + (clog2(k) if k > 1 else 0)

    @property
    def residual_bits(self) -> int:
        """r_i[x] <= Q[x] a_i < 2^(W + i z)."""
        return self.tree.hw.prob_bits + self.a_bits

    @property
    def residual_sum_bits(self) -> int:
        """S_i <= ZQ ZP^i < 2^((i + 1) z), and its prefix sums."""
        return (self.tree.children_max + 1) * self.z_bits

    @property
    def accept_bits(self) -> int:
        """The last accept test, R P[x] S_(k-1) vs r[x] ZP 2^U: U + W + k z."""
        return self.tree.hw.uniform_bits + self.tree.hw.prob_bits + self.a_bits

    @property
    def threshold_bits(self) -> int:
        """The final sample's R S_k: U + (k + 1) z."""
        return self.tree.hw.uniform_bits + self.residual_sum_bits

    # ---- header and node beats, LSB first ---------------------------------------------------
    @property
    def fields(self) -> dict[str, tuple[int, int]]:
        """name -> (lsb, width) of every header field."""
        c = self.tree.hw
        return field_layout((("scheme", SCHEME_BITS), ("nodes", self.tree.count_bits), ("vocab", c.vocab_bits))
                            + SIDE_PARAM_FIELDS)

    @property
    def header_bits(self) -> int:
        lsb, w = self.fields["target_top_p"]
        return lsb + w

    @property
    def node_fields(self) -> dict[str, tuple[int, int]]:
        c = self.tree.hw
        return field_layout((("parent", self.tree.node_bits), ("token", c.token_bits),
                             ("accept_uniform", c.uniform_bits), ("sample_uniform", c.uniform_bits)))

    @property
    def node_beat_bits(self) -> int:
        lsb, w = self.node_fields["sample_uniform"]
        return lsb + w

    @property
    def word_bits(self) -> int:
        return self.tree.hw.lanes * BF16_BITS

    @property
    def beat_bits(self) -> int:
        return max(self.word_bits, self.header_bits, self.node_beat_bits)

    @property
    def result_fields(self) -> dict[str, tuple[int, int]]:
        c = self.tree.hw
        widths = (("node", self.tree.node_bits), ("accepted", self.tree.count_bits), ("token", c.token_bits),
                  ("cycles", 32), ("latency", 32))
        out, pos = {}, 0
        for name, w in widths:
            out[name] = (pos, w)
            pos += w
        return out

    @property
    def result_bits(self) -> int:
        lsb, w = self.result_fields["latency"]
        return lsb + w

    def module_name(self) -> str:
        """Parameter-encoding Verilog name with no '__' (Verilator 5 escapes it in file names)."""
        c = self.tree.hw
        return (f"TreeVerifier_L{c.lanes}_V{c.vocab_max}_N{self.tree.nodes_max}_K{self.tree.children_max}"
                f"_W{c.prob_bits}_U{c.uniform_bits}")

    def require_rtl(self) -> None:
        """What the tree block's RTL needs: one beat signal (L <= 32 at 16-bit lanes) and every
        width below PyMTL3's 1023 bits (ConfigError otherwise)."""
        c = self.tree.hw
        if c.lanes < 2 or c.vocab_max <= c.lanes:
            raise ConfigError(f"the tree RTL needs 2 <= lanes < vocab_max, got lanes={c.lanes}, "
                              f"vocab_max={c.vocab_max}")
        for what, bits in (("input beat", self.beat_bits), ("accept test", self.accept_bits),
                           ("sample threshold", self.threshold_bits)):
            if bits >= 1024:
                raise ConfigError(f"{bits} bits in the tree block's {what} (children_max={self.tree.children_max}, "
                                  f"lanes={c.lanes}): PyMTL3 signals stop at 1023 bits")
        if c.sram_words is not None and c.sram_words < self.buffer_words:
            raise ConfigError(f"sram_words={c.sram_words} cannot hold the tree block's {self.tree.nodes_max} target "
                              f"and {self.tree.nodes_max - 1} draft rows of {self.row_words} words; the RTL needs "
                              f"{self.buffer_words} (use the CL model for off-chip overflow studies)")
        from hades import limits
        limits.RTL_SRAM_WORDS.check(self.buffer_words)


# ---- what a round sends ---------------------------------------------------------------------

def check_tree_round(tree: TreeConfig, rnd: TreeRound, where: str = "round") -> None:
    """What the tree block can carry (TraceError otherwise): N <= nodes_max, V <= vocab_max, at
    most children_max children per node, a known scheme, parameters in their fields."""
    if rnd.scheme not in SCHEME_CODE:
        raise TraceError(f"{where}: unknown tree scheme {rnd.scheme!r}; expected one of {TREE_SCHEMES}")
    if rnd.num_nodes > tree.nodes_max:
        raise TraceError(f"{where}: {rnd.num_nodes} nodes exceed the tree block's nodes_max={tree.nodes_max}")
    if rnd.vocab_size > tree.hw.vocab_max:
        raise TraceError(f"{where}: vocabulary {rnd.vocab_size} exceeds vocab_max={tree.hw.vocab_max}")
    kids = children_lists(rnd.parents)
    widest = max(range(len(kids)), key=lambda n: len(kids[n]))
    if len(kids[widest]) > tree.children_max:
        raise TraceError(f"{where}, node {widest}: {len(kids[widest])} children exceed the tree block's "
                         f"children_max={tree.children_max}")
    for side in ("draft_params", "target_params"):
        numerics.check_sampling_params(getattr(rnd, side), f"{where}: {side}")


def tree_filter_flags(scheme: str, draft_params, target_params, vocab_size: int) -> tuple[bool, bool, bool, bool]:
    """(draft top-k, draft top-p, target top-k, target top-p): the select passes of a round's
    rows. Greedy rounds run none; deterministic rounds read no draft rows."""
    return (side_filter_flags(draft_params, vocab_size, scheme == "sampled")
            + side_filter_flags(target_params, vocab_size, scheme != "greedy"))


def round_filter_flags(rnd: TreeRound) -> tuple[bool, bool, bool, bool]:
    return tree_filter_flags(rnd.scheme, rnd.draft_params, rnd.target_params, rnd.vocab_size)


def stream_rows(scheme: str, parents) -> list[tuple[str, int]]:
    """The rows of a round in stream order, as (DRAFT_ROW or TARGET_ROW, node): node by node,
    a sampled internal node's draft row before its target row."""
    kids = children_lists(parents)
    out = []
    for n in range(len(parents)):
        if scheme == "sampled" and kids[n]:
            out.append((DRAFT_ROW, n))
        out.append((TARGET_ROW, n))
    return out


def header_beat(tree: TreeConfig, rnd: TreeRound) -> int:
    lay = TreeLayout(tree)
    dp = numerics.SamplingParams(*[int(v) for v in rnd.draft_params])
    tp = numerics.SamplingParams(*[int(v) for v in rnd.target_params])
    values = {"scheme": SCHEME_CODE[rnd.scheme], "nodes": rnd.num_nodes, "vocab": rnd.vocab_size,
              "draft_k": dp.k, "draft_min_p": dp.min_p, "target_k": tp.k, "target_min_p": tp.min_p,
              "draft_top_k": dp.top_k, "draft_top_p": dp.top_p, "target_top_k": tp.top_k, "target_top_p": tp.top_p}
    return _pack(lay.fields, values)


def _pack(fields: dict, values: dict) -> int:
    beat = 0
    for name, (lsb, width) in fields.items():
        v = int(values[name])
        assert 0 <= v < (1 << width), (name, v)
        beat |= v << lsb
    return beat


def node_beats(tree: TreeConfig, rnd: TreeRound) -> list[int]:
    lay = TreeLayout(tree)
    N = rnd.num_nodes
    greedy = rnd.scheme == "greedy"
    zeros = np.zeros(N, np.uint64)
    acc = uniform_array(rnd.accept_uniforms) if not greedy else zeros
    smp = uniform_array(rnd.sample_uniforms) if not greedy else zeros
    out = []
    for n in range(N):
        out.append(_pack(lay.node_fields, {"parent": max(0, int(rnd.parents[n])),
                                           "token": int(rnd.tokens[n]) if n else 0,
                                           "accept_uniform": int(acc[n]) if rnd.scheme == "sampled" else 0,
                                           "sample_uniform": int(smp[n])}))
    return out


def round_rows(rnd: TreeRound) -> np.ndarray:
    """The bf16 rows of a round in stream order (stream_rows)."""
    tl, dl = np.asarray(rnd.target_logits, np.uint16), np.asarray(rnd.draft_logits, np.uint16)
    return np.stack([(dl if kind == DRAFT_ROW else tl)[n] for kind, n in stream_rows(rnd.scheme, rnd.parents)])


def round_beats(tree: TreeConfig, rnd: TreeRound, where: str = "round") -> list[int]:
    """All input beats of a round as Python ints (the PyMTL3 source's messages)."""
    check_tree_round(tree, rnd, where)
    beats = [header_beat(tree, rnd)] + node_beats(tree, rnd)
    beats += [_lanes_to_int(b) for b in logit_rows_beat_array(tree.hw, round_rows(rnd))]
    return beats


def input_beats(tree: TreeConfig, rnd: TreeRound) -> int:
    return 1 + rnd.num_nodes + len(stream_rows(rnd.scheme, rnd.parents)) * -(-rnd.vocab_size // tree.hw.lanes)


def rows_of_beats(tree: TreeConfig, words: list[int], vocab: int) -> np.ndarray:
    """Row beats back to bf16 rows [n, V] (the inverse of round_rows' beats)."""
    return _lanes_of(tree.hw, words, vocab)


# ---- the result message ---------------------------------------------------------------------

def pack_tree_result(tree: TreeConfig, res: TreeResult) -> int:
    lay = TreeLayout(tree)
    return _pack(lay.result_fields, {"node": res.node, "accepted": res.accepted, "token": res.token,
                                     "cycles": int(res.cycles or 0) & 0xFFFFFFFF,
                                     "latency": int(res.latency or 0) & 0xFFFFFFFF})


def unpack_tree_result(tree: TreeConfig, word: int, parents, timed: bool = True) -> TreeResult:
    """A result message as a TreeResult; the path comes from the round's parents."""
    f = {name: (int(word) >> lsb) & ((1 << w) - 1) for name, (lsb, w) in TreeLayout(tree).result_fields.items()}
    path = path_to(parents, f["node"])
    if len(path) != f["accepted"]:
        raise TraceError(f"tree result: node {f['node']} lies at depth {len(path)}, the message says {f['accepted']}")
    return TreeResult(f["node"], path, f["token"], f["cycles"] if timed else None, f["latency"] if timed else None)
