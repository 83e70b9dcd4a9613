"""The top-k / top-p filter of the logit block (docs/ARCHITECTURE.md "The logit block",
**Filters**; NUMERICS.md sections 15 and 19): a sort-free radix select over a buffered row's
weights, and the keep mask every engine job applies to the weights it reads.

- LaneRadixBins (combinational, one word): per bin j of 2^b, the count and the sum of the live
  lanes whose weight's bits above the current digit equal the prefix found so far and whose
  current digit (b bits) is j. One comparator and one shifter per lane, 2^b adder trees of
  weights and 2^b of ones.
- RadixSelect (sequential): the bins of a pass accumulated over the row's words, then the scan
  of the bins from the top (2^b cycles) for the first digit d with above + sum_{j >= d} bin_j >=
  target (counts for top-k, sums for top-p), the commit (1 cycle) and, after the last top-p
  pass, a serial divider for c_p (count_bits cycles). numerics.radix_select is the same
  algorithm in Python; the control (hades/rtl/logit_control.py) sequences the passes.
- LaneRankKeep (one per row side): keep = min-p keep and (w > tau or (w == tau and fewer than c
  entries equal to tau at lower ids)); the running tie count over the job's words plus the
  in-word exclusive prefix count (a Kogge-Stone prefix sum); the kept weights and their sum.
"""
from pymtl3 import *

from hades.config import bits_for, clog2
from hades.logit_protocol import TOP_P_BITS, LogitLayout
from hades.numerics import FRACTION_BITS
from hades.rtl.lanes import AddTree, PrefixSum


def radix_widths(lay: LogitLayout) -> tuple[int, int, int, int]:
    """(padded weight bits NL * b, shift bits, select-cycle counter bits, level bits)."""
    pw = lay.filter_levels * lay.radix_bits
    sel_max = (1 << lay.radix_bits) + lay.divide_cycles
    return pw, bits_for(pw), bits_for(sel_max), bits_for(max(lay.filter_levels - 1, 1))


class LaneRadixBins(Component):
    """count[j], total[j]: how many live lanes, and their weight sum, have
    ((w ^ prefix) & hi_mask) == 0 and digit (w >> shift) & (2^b - 1) == j."""

    def construct(s, nlanes, weight_bits, radix_bits, padded_bits, shift_bits):
        L, W, B, PW = nlanes, weight_bits, radix_bits, padded_bits
        NB = 1 << B
        LB = clog2(L)
        CW, SW = LB + 1, W + LB
        BinT = mk_bits(B)
        s.w = [InPort(W) for _ in range(L)]
        s.live = [InPort() for _ in range(L)]
        s.prefix = InPort(PW)
        s.hi_mask = InPort(PW)
        s.shift = InPort(shift_bits)
        s.count = [OutPort(CW) for _ in range(NB)]
        s.total = [OutPort(SW) for _ in range(NB)]

        s.wpad = [Wire(PW) for _ in range(L)]
        s.shifted = [Wire(PW) for _ in range(L)]
        s.diff = [Wire(PW) for _ in range(L)]
        s.digit = [Wire(B) for _ in range(L)]
        s.match = [Wire() for _ in range(L)]
        s.bin_id = [Wire(BinT) for _ in range(NB)]
        s.bin_w = [Wire(SW) for _ in range(NB * L)]      # bin j, lane i at j * L + i
        s.bin_one = [Wire(CW) for _ in range(NB * L)]
        s.sum_trees = [AddTree(L, SW) for _ in range(NB)]
        s.count_trees = [AddTree(L, CW) for _ in range(NB)]
        for j in range(NB):
            s.bin_id[j] //= BinT(j)
            for i in range(L):
                s.sum_trees[j].in_[i] //= s.bin_w[j * L + i]
                s.count_trees[j].in_[i] //= s.bin_one[j * L + i]
            s.total[j] //= s.sum_trees[j].out
            s.count[j] //= s.count_trees[j].out

        @update
        def up_radix_digits():
            for i in range(L):
                s.wpad[i] @= zext(s.w[i], PW)
                s.shifted[i] @= s.wpad[i] >> zext(s.shift, PW)
                s.digit[i] @= s.shifted[i][0:B]
                s.diff[i] @= (s.wpad[i] ^ s.prefix) & s.hi_mask
                s.match[i] @= s.live[i] & (s.diff[i] == 0)

        @update
        def up_radix_bins():
            for j in range(NB):
                for i in range(L):
                    if s.match[i] & (s.digit[i] == s.bin_id[j]):
                        s.bin_w[j * L + i] @= zext(s.w[i], SW)
                        s.bin_one[j * L + i] @= 1
                    else:
                        s.bin_w[j * L + i] @= 0
                        s.bin_one[j * L + i] @= 0


class RadixSelect(Component):
    """One select at a time over the passes of a row (the control runs them: clear at a pass's
    first issue, add on each data word, prep at its finish (prefix and above restart at level 0's),
    then `selecting` for select_cycles
    (+ divide_cycles after the last top-p pass) with sel = 0, 1, ...).

    by_sum = 0 (top-k): target n_k = top_k; after the last level tau = the largest v with
    C(>= v) >= n_k, c = n_k - C(> tau), zk = S(> tau) + c tau (Z' for top-p).
    by_sum = 1 (top-p): at level 0's prep the target t = ceil(top_p Z' / 2^16), Z' = zk when
    top_k_on, else the row's total (the sum of level 0's bins). Level 0 bins every entry, for
    counts and sums alike, so when top-k ran first its level-0 sums are kept (bin0_s) and top-p's
    level 0 runs no pass of its own: the control goes straight to its prep and select cycles,
    whose scan reads bin0_s. After the last level tau = the
    largest v with S(>= v) >= t and c = ceil((t - S(> tau)) / tau), by restoring division:
    q < C(== tau) <= V < 2^count_bits, so count_bits steps of rem >= tau << i."""

    def construct(s, nlanes, lay):
        assert isinstance(lay, LogitLayout)
        L, W, B, ZB, CB = nlanes, lay.weight_bits, lay.radix_bits, lay.z_bits, lay.count_bits
        NB, NL = 1 << B, lay.filter_levels
        PW, SHB, SELB, LVB = radix_widths(lay)
        DB = W + CB                                   # divisor tau << (CB - 1), remainder
        TPB = TOP_P_BITS + ZB                          # top_p * Z'
        LB = clog2(L)
        SelT, LevT = mk_bits(SELB), mk_bits(LVB)
        SEL_COMMIT = SelT(NB)
        LAST_LEVEL = LevT(NL - 1)
        DMAX = mk_bits(B)(NB - 1)
        ROUND_UP = mk_bits(TPB)((1 << FRACTION_BITS) - 1)
        CB_M1 = mk_bits(DB)(CB - 1)
        MB = max(DB, ZB)                               # c_k tau <= Z' < 2^ZB

        s.w = [InPort(W) for _ in range(L)]
        s.live = [InPort() for _ in range(L)]
        s.clear = InPort()
        s.add = InPort()
        s.prep = InPort()
        s.selecting = InPort()
        s.sel = InPort(SELB)
        s.level = InPort(LVB)
        s.by_sum = InPort()
        s.top_k = InPort(CB)
        s.top_k_on = InPort()
        s.top_p = InPort(TOP_P_BITS)
        s.tau = OutPort(W)
        s.c = OutPort(CB)

        s.binner = LaneRadixBins(L, W, B, PW, SHB)
        s.shift_of = [Wire(SHB) for _ in range(NL)]
        s.mask_of = [Wire(PW) for _ in range(NL)]
        for lv in range(NL):
            shift = (NL - 1 - lv) * B
            s.shift_of[lv] //= mk_bits(SHB)(shift)
            s.mask_of[lv] //= mk_bits(PW)(((1 << PW) - 1) ^ ((1 << (shift + B)) - 1))
        s.prefix = Wire(PW)
        s.bin_c = [Wire(CB) for _ in range(NB)]
        s.bin_s = [Wire(ZB) for _ in range(NB)]
        s.bin0_s = [Wire(ZB) for _ in range(NB)]        # top-k's level-0 sums, for top-p's level 0
        s.use_bin0 = Wire()
        s.bin_total = AddTree(NB, ZB)
        for j in range(NB):
            s.bin_total.in_[j] //= s.bin_s[j]
        for i in range(L):
            s.binner.w[i] //= s.w[i]
            s.binner.live[i] //= s.live[i]
        s.binner.prefix //= s.prefix
        s.binner.hi_mask //= lambda: s.mask_of[s.level]
        s.binner.shift //= lambda: s.shift_of[s.level]

        s.above_c = Wire(CB)
        s.above_s = Wire(ZB)
        s.target = Wire(ZB)
        s.zk = Wire(ZB)
        s.run_c = Wire(CB)
        s.run_s = Wire(ZB)
        s.found = Wire()
        s.sel_digit = Wire(B)
        s.sel_c = Wire(CB)
        s.sel_s = Wire(ZB)
        s.rem = Wire(DB)
        s.dvs = Wire(DB)
        s.q = Wire(CB)
        s.tau_r = Wire(W)
        s.c_r = Wire(CB)
        s.tau //= s.tau_r
        s.c //= s.c_r

        s.scan_digit = Wire(B)
        s.next_c = Wire(CB)
        s.next_s = Wire(ZB)
        s.reach = Wire(ZB)
        s.hit = Wire()
        s.new_prefix = Wire(PW)
        s.new_tau = Wire(W)
        s.c_k = Wire(CB)
        s.zk_next = Wire(ZB)
        s.zprime = Wire(ZB)
        s.t_prod = Wire(TPB)
        s.t_next = Wire(TPB)
        s.div_ge = Wire()
        s.q_next = Wire(CB)

        @update
        def up_radix_scan():
            s.scan_digit @= DMAX - s.sel[0:B]
            s.next_c @= s.run_c + s.bin_c[s.scan_digit]
            s.use_bin0 @= s.by_sum & s.top_k_on & (s.level == 0)
            if s.use_bin0:
                s.next_s @= s.run_s + s.bin0_s[s.scan_digit]
            else:
                s.next_s @= s.run_s + s.bin_s[s.scan_digit]
            if s.by_sum:
                s.reach @= s.above_s + s.next_s
            else:
                s.reach @= zext(s.above_c + s.next_c, ZB)
            s.hit @= s.reach >= s.target
            s.new_prefix @= s.prefix | (zext(s.sel_digit, PW) << zext(s.shift_of[s.level], PW))
            s.new_tau @= s.new_prefix[0:W]
            s.c_k @= s.top_k - s.sel_c
            s.zk_next @= s.sel_s + trunc(zext(s.c_k, MB) * zext(s.new_tau, MB), ZB)
            if s.top_k_on:
                s.zprime @= s.zk
            else:
                s.zprime @= s.bin_total.out
            s.t_prod @= zext(s.top_p, TPB) * zext(s.zprime, TPB)
            s.t_next @= (s.t_prod + ROUND_UP) >> FRACTION_BITS
            s.div_ge @= s.rem >= s.dvs
            s.q_next @= concat(s.q[0:CB - 1], s.div_ge)

        @update_ff
        def up_radix_select():
            if s.clear:
                for j in range(NB):
                    s.bin_c[j] <<= 0
                    s.bin_s[j] <<= 0
            elif s.add:
                for j in range(NB):
                    s.bin_c[j] <<= s.bin_c[j] + zext(s.binner.count[j], CB)
                    s.bin_s[j] <<= s.bin_s[j] + zext(s.binner.total[j], ZB)
            if s.prep:
                if s.level == 0:
                    s.prefix <<= 0
                    s.above_c <<= 0
                    s.above_s <<= 0
                s.run_c <<= 0
                s.run_s <<= 0
                s.found <<= 0
                if ~s.by_sum:
                    s.target <<= zext(s.top_k, ZB)
                elif s.level == 0:
                    s.target <<= s.t_next[0:ZB]
            if s.selecting:
                if s.sel < SEL_COMMIT:
                    s.run_c <<= s.next_c
                    s.run_s <<= s.next_s
                    if ~s.found & s.hit:
                        s.found <<= 1
                        s.sel_digit <<= s.scan_digit
                        s.sel_c <<= s.above_c + s.run_c
                        s.sel_s <<= s.above_s + s.run_s
                elif s.sel == SEL_COMMIT:
                    if ~s.by_sum & (s.level == 0):
                        for j in range(NB):
                            s.bin0_s[j] <<= s.bin_s[j]
                    s.prefix <<= s.new_prefix
                    s.above_c <<= s.sel_c
                    s.above_s <<= s.sel_s
                    if s.level == LAST_LEVEL:
                        s.tau_r <<= s.new_tau
                        if ~s.by_sum:
                            s.c_r <<= s.c_k
                            s.zk <<= s.zk_next
                        else:
                            s.rem <<= zext(s.target - s.sel_s - 1, DB)
                            s.dvs <<= zext(s.new_tau, DB) << CB_M1
                            s.q <<= 0
                else:
                    if s.div_ge:
                        s.rem <<= s.rem - s.dvs
                    s.dvs <<= s.dvs >> 1
                    s.q <<= s.q_next
                    s.c_r <<= s.q_next + 1


class LaneRankKeep(Component):
    """One row side's keep mask: kept[i] = w[i] if min-p keeps it and (w > tau, or w == tau and
    the entries equal to tau at lower ids number fewer than c), else 0; total = their sum. The
    tie count runs over the job's words (clear at the first issue, advance on each data word)."""

    def construct(s, nlanes, weight_bits, count_bits, sum_bits):
        L, W, CB = nlanes, weight_bits, count_bits
        LB = clog2(L)
        CW = LB + 1
        LANES = mk_bits(CB)(L)
        LANES_CW = mk_bits(CW)(L)
        s.w = [InPort(W) for _ in range(L)]
        s.live = [InPort() for _ in range(L)]
        s.minp_keep = [InPort() for _ in range(L)]
        s.tau = InPort(W)
        s.c = InPort(CB)
        s.clear = InPort()
        s.advance = InPort()
        s.kept = [OutPort(W) for _ in range(L)]
        s.total = OutPort(sum_bits)

        s.eq = [Wire() for _ in range(L)]
        s.eq_c = [Wire(CW) for _ in range(L)]
        s.ties_below = [Wire(CW) for _ in range(L)]
        s.keep = [Wire() for _ in range(L)]
        s.kept_wide = [Wire(sum_bits) for _ in range(L)]
        s.ties = Wire(CB)
        s.left = Wire(CB)
        s.remaining = Wire(CW)
        s.prefix = PrefixSum(L, CW)
        s.sum = AddTree(L, sum_bits)
        for i in range(L):
            s.prefix.in_[i] //= s.eq_c[i]
            s.sum.in_[i] //= s.kept_wide[i]
        s.total //= s.sum.out

        LAST = L - 1

        @update
        def up_rank_ties():            # its own block: the prefix network sits between eq and keep
            for i in range(L):
                s.eq[i] @= s.live[i] & (s.w[i] == s.tau)
                s.eq_c[i] @= zext(s.eq[i], CW)

        @update
        def up_rank_keep():
            if s.c > s.ties:
                s.left @= s.c - s.ties
            else:
                s.left @= 0
            if s.left >= LANES:
                s.remaining @= LANES_CW
            else:
                s.remaining @= s.left[0:CW]
            for i in range(L):
                s.ties_below[i] @= s.prefix.out[i] - s.eq_c[i]
                s.keep[i] @= s.minp_keep[i] & ((s.w[i] > s.tau) | (s.eq[i] & (s.ties_below[i] < s.remaining)))
                if s.keep[i]:
                    s.kept[i] @= s.w[i]
                else:
                    s.kept[i] @= 0
                s.kept_wide[i] @= zext(s.kept[i], sum_bits)

        @update_ff
        def up_tie_count():
            if s.clear:
                s.ties <<= 0
            elif s.advance:
                s.ties <<= s.ties + zext(s.prefix.out[LAST], CB)
