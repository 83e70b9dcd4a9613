"""Lane-parallel datapath units of the verifier, each a small translatable component.

The prefix sum and the argmax are written as chains for clarity; synthesis sees the same
adders and comparators as a tree would use, only the depth differs (docs/ARCHITECTURE.md).
"""
from pymtl3 import *

from hades.config import clog2


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
        LAST = nlanes - 1   # a named constant keeps the translated loop bounds lint-clean
        s.q = [InPort(nbits) for _ in range(nlanes)]
        s.p = [InPort(nbits) for _ in range(nlanes)]
        s.word = OutPort(nlanes * nbits)
        s.total = OutPort(sum_bits)
        s.r = [Wire(nbits) for _ in range(nlanes)]
        s.acc = [Wire(sum_bits) for _ in range(nlanes)]
        for i in range(nlanes):
            s.word[i * nbits:(i + 1) * nbits] //= s.r[i]
        s.total //= s.acc[nlanes - 1]

        @update
        def up_residual():
            for i in range(nlanes):
                if s.q[i] > s.p[i]:
                    s.r[i] @= s.q[i] - s.p[i]
                else:
                    s.r[i] @= 0

        @update
        def up_residual_sum():
            s.acc[0] @= zext(s.r[0], sum_bits)
            for i in range(LAST):
                s.acc[i + 1] @= s.acc[i] + zext(s.r[i + 1], sum_bits)


class LaneCrossing(Component):
    """Inverse-CDF step over one word: given the running sum `base` of earlier words and the
    threshold T, find the first lane k with base + lane_0 + ... + lane_k > T.
    Also gives base + the whole word's sum for the next word."""

    def construct(s, nlanes, nbits, sum_bits):
        LAST = nlanes - 1   # a named constant keeps the translated loop bounds lint-clean
        LaneT = mk_bits(clog2(nlanes))
        s.lane = [InPort(nbits) for _ in range(nlanes)]
        s.base = InPort(sum_bits)
        s.thresh = InPort(sum_bits)
        s.found = OutPort()
        s.index = OutPort(LaneT)
        s.next_base = OutPort(sum_bits)
        s.pre = [Wire(sum_bits) for _ in range(nlanes)]

        @update
        def up_crossing_prefix():
            s.pre[0] @= s.base + zext(s.lane[0], sum_bits)
            for i in range(LAST):
                s.pre[i + 1] @= s.pre[i] + zext(s.lane[i + 1], sum_bits)

        # prefix sums never decrease, so the crossing lanes form a suffix: the first one's
        # index is the count of lanes still at or below the threshold
        CountT = mk_bits(clog2(nlanes) + 1)
        s.below = [Wire(CountT) for _ in range(nlanes)]
        s.next_base //= s.pre[nlanes - 1]
        s.below_all = Wire(CountT)
        s.below_all //= s.below[nlanes - 1]

        @update
        def up_crossing_priority():
            s.below[0] @= zext(s.pre[0] <= s.thresh, CountT.nbits)
            for i in range(LAST):
                s.below[i + 1] @= s.below[i] + zext(s.pre[i + 1] <= s.thresh, CountT.nbits)
            s.found @= s.next_base > s.thresh
            s.index @= s.below_all[0:LaneT.nbits]


class LaneArgMax(Component):
    """Largest entry of one word and its lane, ties to the lowest lane."""

    def construct(s, nlanes, nbits):
        LAST = nlanes - 1
        LaneT = mk_bits(clog2(nlanes))
        s.lane = [InPort(nbits) for _ in range(nlanes)]
        s.max_val = OutPort(nbits)
        s.max_idx = OutPort(LaneT)
        s.val = [Wire(nbits) for _ in range(nlanes)]
        s.idx = [Wire(LaneT) for _ in range(nlanes)]
        s.max_val //= s.val[nlanes - 1]
        s.max_idx //= s.idx[nlanes - 1]

        @update
        def up_argmax():
            s.val[0] @= s.lane[0]
            s.idx[0] @= 0
            for i in range(LAST):
                if s.lane[i + 1] > s.val[i]:
                    s.val[i + 1] @= s.lane[i + 1]
                    s.idx[i + 1] @= LaneT(i + 1)
                else:
                    s.val[i + 1] @= s.val[i]
                    s.idx[i + 1] @= s.idx[i]
