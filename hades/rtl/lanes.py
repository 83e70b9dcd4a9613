"""Lane-parallel datapath units of the verifier, each a small translatable component.

Everything that combines lanes is a log-depth tree built structurally (one small component
per node): a Kogge-Stone prefix sum, an adder tree, an argmax comparator tree and a
one-hot encoder. The combinational depth grows with log2(L), not with L.
"""
from pymtl3 import *

from hades.config import clog2


def build_tree(nodes, leaves, join):
    """Wire a balanced binary tree of the given nodes (L - 1 for L leaves, used in order) over
    the leaves, level by level: pairs (0, 1), (2, 3), ... meet in one node, an odd last entry
    passes to the next level unchanged. join(node, a, b) connects a node's inputs to the
    entries a and b and returns its output entry. Returns the root entry. The one tree
    builder of the lane units (adder tree, comparator trees)."""
    level = list(leaves)
    nodes = iter(nodes)
    while len(level) > 1:
        nxt = [join(next(nodes), level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Add(Component):

    def construct(s, nbits):
        s.a = InPort(nbits)
        s.b = InPort(nbits)
        s.out = OutPort(nbits)

        @update
        def up_add():
            s.out @= s.a + s.b


class PrefixSum(Component):
    """Inclusive prefix sums out[i] = in_[0] + ... + in_[i], Kogge-Stone: log2(L) adder levels."""

    def construct(s, nlanes, nbits):
        s.in_ = [InPort(nbits) for _ in range(nlanes)]
        s.out = [OutPort(nbits) for _ in range(nlanes)]
        # plan first (children get their ports when assigned to s), then wire
        plan = []                 # (level, lane, partner lane)
        dist, lev = 1, 0
        while dist < nlanes:
            plan += [(lev, i, i - dist) for i in range(dist, nlanes)]
            dist, lev = dist * 2, lev + 1
        s.adders = [Add(nbits) for _ in plan]
        level = list(s.in_)
        for lv in range(lev):
            nxt = list(level)
            for add, (plv, i, j) in zip(s.adders, plan):
                if plv == lv:
                    add.a //= level[i]
                    add.b //= level[j]
                    nxt[i] = add.out
            level = nxt
        for i in range(nlanes):
            s.out[i] //= level[i]


def _join_add(add, a, b):
    add.a //= a
    add.b //= b
    return add.out


class AddTree(Component):
    """Sum of all lanes, a balanced adder tree."""

    def construct(s, nlanes, nbits):
        s.in_ = [InPort(nbits) for _ in range(nlanes)]
        s.out = OutPort(nbits)
        s.adders = [Add(nbits) for _ in range(nlanes - 1)]   # a binary tree has L-1 nodes
        s.out //= build_tree(s.adders, s.in_, _join_add)


class MaxPair(Component):
    """The larger of (va, ia) and (vb, ib); ties keep a, the lower-index side."""

    def construct(s, nbits, ibits):
        s.va = InPort(nbits)
        s.ia = InPort(ibits)
        s.vb = InPort(nbits)
        s.ib = InPort(ibits)
        s.v = OutPort(nbits)
        s.i = OutPort(ibits)
        s.take_b = Wire()
        s.build_select()

        @update
        def up_take_b():
            s.take_b @= s.vb > s.va

    def build_select(s):
        """(v, i) = (vb, ib) if take_b else (va, ia): the select of every comparator node
        (MaxPair here, MaskedMaxPair in logit_lanes.py), which differ only in take_b."""
        @update
        def up_select_pair():
            if s.take_b:
                s.v @= s.vb
                s.i @= s.ib
            else:
                s.v @= s.va
                s.i @= s.ia


def pair_join(a_ports, b_ports, out_ports):
    """A join for build_tree whose entries are tuples of signals: entry a goes to the node's
    ports named a_ports, entry b to b_ports, and the node's out_ports form its entry."""
    def join(node, a, b):
        for name, sig in zip(a_ports + b_ports, tuple(a) + tuple(b), strict=True):
            connect(getattr(node, name), sig)
        return tuple(getattr(node, name) for name in out_ports)
    return join


_join_max = pair_join(("va", "ia"), ("vb", "ib"), ("v", "i"))


class LaneArgMax(Component):
    """Largest entry of one word and its lane, ties to the lowest lane (comparator tree)."""

    def construct(s, nlanes, nbits):
        LB = clog2(nlanes)
        LaneT = mk_bits(LB)
        s.lane = [InPort(nbits) for _ in range(nlanes)]
        s.max_val = OutPort(nbits)
        s.max_idx = OutPort(LaneT)
        s.lane_id = [Wire(LaneT) for _ in range(nlanes)]
        for i in range(nlanes):
            s.lane_id[i] //= LaneT(i)
        s.nodes = [MaxPair(nbits, LB) for _ in range(nlanes - 1)]
        root_v, root_i = build_tree(s.nodes, zip(s.lane, s.lane_id), _join_max)
        s.max_val //= root_v
        s.max_idx //= root_i


class MaskedAny(Component):
    """out = OR of the input bits selected by a constant mask (one bit of an encoder)."""

    def construct(s, nbits, mask):
        MaskT = mk_bits(nbits)
        MASK = MaskT(mask)
        s.in_ = InPort(MaskT)
        s.out = OutPort()
        s.masked = Wire(MaskT)

        # two statements on purpose: pymtl3 translates reduce_or(a & b) to `| a & b`,
        # which Verilog parses as (|a) & b
        @update
        def up_masked_any():
            s.masked @= s.in_ & MASK
            s.out @= reduce_or(s.masked)


class OneHotEncoder(Component):
    """Index of the set bit of a one-hot vector (zero when none is set)."""

    def construct(s, nlanes):
        LB = clog2(nlanes)
        s.in_ = InPort(nlanes)
        s.out = OutPort(LB)
        s.bit = [MaskedAny(nlanes, sum(1 << i for i in range(nlanes) if (i >> b) & 1)) for b in range(LB)]
        for b in range(LB):
            s.bit[b].in_ //= s.in_
            s.out[b] //= s.bit[b].out


class LaneSplit(Component):
    """One word of nlanes * nbits bits -> nlanes entries (lane i in bits [i*nbits, (i+1)*nbits))."""

    def construct(s, nlanes, nbits):
        s.word = InPort(nlanes * nbits)
        s.lane = [OutPort(nbits) for _ in range(nlanes)]
        for i in range(nlanes):
            s.lane[i] //= s.word[i * nbits:(i + 1) * nbits]


class LaneResidual(Component):
    """r_i = max(0, q_i - p_i) per lane, packed back into a word, plus its lane sum."""

    def construct(s, nlanes, nbits, sum_bits):
        s.q = [InPort(nbits) for _ in range(nlanes)]
        s.p = [InPort(nbits) for _ in range(nlanes)]
        s.word = OutPort(nlanes * nbits)
        s.total = OutPort(sum_bits)
        s.r = [Wire(nbits) for _ in range(nlanes)]
        s.r_wide = [Wire(sum_bits) for _ in range(nlanes)]
        s.sum = AddTree(nlanes, sum_bits)
        for i in range(nlanes):
            s.word[i * nbits:(i + 1) * nbits] //= s.r[i]
            s.sum.in_[i] //= s.r_wide[i]
        s.total //= s.sum.out

        @update
        def up_residual():
            for i in range(nlanes):
                if s.q[i] > s.p[i]:
                    s.r[i] @= s.q[i] - s.p[i]
                else:
                    s.r[i] @= 0
                s.r_wide[i] @= zext(s.r[i], sum_bits)


class LaneCrossing(Component):
    """Inverse-CDF step over one word: given the running sum `base` of earlier words and the
    threshold T, find the first lane k with base + lane_0 + ... + lane_k > T, and give
    base + the whole word's sum for the next word.

    Prefix sums never decrease, so the lanes above T form a suffix; its first lane is where
    the 'above' vector turns on, found by a one-hot encoder."""

    def construct(s, nlanes, nbits, sum_bits):
        LAST = nlanes - 1   # named constant: keeps the translated loop bounds lint-clean
        s.lane = [InPort(nbits) for _ in range(nlanes)]
        s.base = InPort(sum_bits)
        s.thresh = InPort(sum_bits)
        s.found = OutPort()
        s.index = OutPort(clog2(nlanes))
        s.next_base = OutPort(sum_bits)

        s.first = Wire(sum_bits)            # base + lane 0 enters the prefix network
        s.wide = [Wire(sum_bits) for _ in range(nlanes)]
        s.prefix = PrefixSum(nlanes, sum_bits)
        s.above = [Wire() for _ in range(nlanes)]
        s.onehot = Wire(nlanes)
        s.encode = OneHotEncoder(nlanes)
        s.prefix.in_[0] //= s.first
        for i in range(1, nlanes):
            s.prefix.in_[i] //= s.wide[i]
        s.next_base //= s.prefix.out[LAST]
        s.found //= s.above[LAST]
        s.encode.in_ //= s.onehot
        s.index //= s.encode.out

        @update
        def up_crossing_inputs():
            for i in range(nlanes):
                s.wide[i] @= zext(s.lane[i], sum_bits)
            s.first @= s.base + s.wide[0]

        @update
        def up_crossing_above():
            for i in range(nlanes):
                s.above[i] @= s.prefix.out[i] > s.thresh
            s.onehot[0] @= s.above[0]
            for i in range(LAST):
                s.onehot[i + 1] @= s.above[i + 1] & ~s.above[i]
