"""Lane-parallel units of the logit front end (NUMERICS.md sections 13-17), each a small
translatable component, tested on its own against hades/numerics.py (bit-exact).

Not yet wired into the verifier top: the two passes over a row (maximum, then weights and
their sum), the row buffer between them, the draft sampler and the CL timing are to come.

- LaneBf16Scale: bf16 pattern -> masked / invalid flags, x = clamp(rhe(v * 2^8)) (24 bits,
  signed), y = floor(x * k / 2^16) (32 bits, signed); one 24 x 24 multiplier per lane.
- LaneMax: signed maximum over the unmasked lanes (a log-depth comparator tree), the first
  lane that holds it, and an "any unmasked" flag: the first pass over a row.
- LaneWeights: d = m - y, w = E[d & 255] >> (d >> 8) (0 beyond W octaves), the exp2 table as
  a ROM, the min-p keep test and the adder-tree sum of the kept weights: the second pass.
- LaneWeightedResidual: r_i = max(0, Q_i * ZP - P_i * ZQ) and its adder-tree sum; two
  W x Z_BITS multipliers per lane (the tree block's sampled children feed a_i and b_i there).

Per-lane arithmetic is a per-lane component (the update-block loops over lanes only
extend, flip or select bits), lane-combining work is a log-depth tree, as in hades/rtl/lanes.py.
Signed values travel as two's-complement Bits; comparisons flip the sign bit first.
"""
from pymtl3 import *

from hades.config import clog2
from hades.errors import ConfigError
from hades.numerics import (FRACTION_BITS, INV_TEMP_FRAC_BITS, LOGIT_FRAC_BITS, exp2_table)
from hades.rtl.lanes import AddTree, MaxPair, build_tree, pair_join

# Widths of the logit path (NUMERICS.md section 17)
BF16_BITS = 16
X_BITS = 24                         # x = clamp(..., -2^23, 2^23 - 1), signed
K_BITS = 24                         # 1 <= k <= 2^24 - 1, unsigned
XK_BITS = X_BITS + K_BITS           # |x * k| < 2^23 * 2^24 = 2^47: fits 48 bits signed
Y_BITS = XK_BITS - INV_TEMP_FRAC_BITS   # y = (x * k) >> 16: -2^31..2^31 - 1, 32 bits signed
D_BITS = Y_BITS                     # d = m - y in 0..2^32 - 1 for unmasked lanes
MIN_P_BITS = FRACTION_BITS + 1      # min_p in 0..2^16 (2^16 = keep only the maximum's ties)
HW_WEIGHT_BITS = (2, 24)            # W of the hardware path (the FL module allows 1..31)

assert LOGIT_FRAC_BITS == 8 and INV_TEMP_FRAC_BITS == 16   # the decoder below hard-wires F = 8


def _check_lanes(nlanes):
    if not isinstance(nlanes, int) or nlanes < 2:
        raise ConfigError(f"lane units need an integer lane count >= 2, got {nlanes!r}")
    return nlanes


def _check_weight_bits(weight_bits):
    lo, hi = HW_WEIGHT_BITS
    if not isinstance(weight_bits, int) or not lo <= weight_bits <= hi:
        raise ConfigError(f"weight bits W of the hardware logit path must be in {lo}..{hi}, got {weight_bits!r}")
    return weight_bits


def _check_sum_bits(sum_bits, minimum, what):
    if sum_bits is None:
        return minimum
    if not isinstance(sum_bits, int) or sum_bits < minimum:
        raise ConfigError(f"{what}: sum_bits must be an integer >= {minimum} (the sum of one word), got {sum_bits!r}")
    return sum_bits


# ---------------------------------------------------------------------------------------
# bf16 -> fixed point -> temperature
# ---------------------------------------------------------------------------------------

class Bf16Fixed(Component):
    """One lane of the decoder: bf16 bits -> masked, invalid, x (24 bits, two's complement).

    v * 2^8 = mant * 2^(exp - 126) with mant = 1.frac as an 8-bit integer (128..255) for
    exp > 0. So:
      exp >= 142 (shift >= 16): |v| * 2^8 >= 128 * 2^16 = 2^23, saturate (2^23 - 1, or
        -2^23 for a negative sign: its magnitude 2^23 is exact at exp = 142, mant = 128);
      126 <= exp <= 141: |x| = mant << (exp - 126) < 2^23, exact;
      exp <= 125: shift right by n = 126 - exp >= 1, round half to even on the shifted-out
        bits. (mant << 8) >> n keeps 8 of them as a round byte; n >= 9 leaves q = 0 and a
        round byte below 0x80, n >= 16 leaves nothing, so the result is 0 there, as it
        must be (|v| * 2^8 < 256 / 512 = 1/2). exp = 0 (+-0, subnormals) lands here too:
        the hidden bit is 0 and the value is below 2^-118, so 0 whatever the exponent
        offset.
    Exponent all ones: -inf (0xFF80) is the mask, anything else (NaN, +inf) is invalid; x is
    0 on both (the masked lane's weight is 0, an invalid lane invalidates the row)."""

    def construct(s):
        s.bits = InPort(BF16_BITS)
        s.masked = OutPort()
        s.invalid = OutPort()
        s.x = OutPort(X_BITS)

        s.sign = Wire()
        s.exp = Wire(8)
        s.exp_ones = Wire()
        s.is_mask = Wire()
        s.mant = Wire(8)            # hidden bit + 7 fraction bits
        s.shl = Wire(8)             # exp - 126 (used for 126 <= exp <= 141: its low 4 bits)
        s.shr = Wire(8)             # 126 - exp (valid for exp <= 125)
        s.rshifted = Wire(16)       # (mant << 8) >> shr: 8 integer bits . 8 round bits
        s.round_up = Wire()
        s.mag = Wire(X_BITS)        # |x|, up to 2^23 (negative saturation)
        s.signed_x = Wire(X_BITS)

        s.masked //= s.is_mask

        @update
        def up_bf16_fields():
            s.sign @= s.bits[15]
            s.exp @= s.bits[7:15]
            s.exp_ones @= s.bits[7:15] == 0xFF
            s.is_mask @= s.bits == 0xFF80
            s.mant @= concat(reduce_or(s.bits[7:15]), s.bits[0:7])
            s.shl @= s.bits[7:15] - 126
            s.shr @= 126 - s.bits[7:15]

        @update
        def up_bf16_round():
            s.rshifted @= (zext(s.mant, 16) << 8) >> zext(s.shr, 16)
            # round half to even: above half, or exactly half and the kept LSB odd
            s.round_up @= (s.rshifted[0:8] > 0x80) | ((s.rshifted[0:8] == 0x80) & s.rshifted[8])

        @update
        def up_bf16_magnitude():
            if s.exp >= 142:
                s.mag @= 0x7FFFFF + zext(s.sign, X_BITS)
            elif s.exp >= 126:
                s.mag @= zext(s.mant, X_BITS) << zext(s.shl[0:4], X_BITS)   # shl is 0..15 here
            else:
                s.mag @= zext(s.rshifted[8:16], X_BITS) + zext(s.round_up, X_BITS)

        @update
        def up_bf16_out():
            if s.sign:
                s.signed_x @= ~s.mag + 1
            else:
                s.signed_x @= s.mag
            s.invalid @= s.exp_ones & ~s.is_mask
            if s.exp_ones:
                s.x @= 0
            else:
                s.x @= s.signed_x


class ScaleMul(Component):
    """One lane of the temperature: y = floor(x * k / 2^16). x is sign-extended and k
    zero-extended to 48 bits; |x * k| < 2^47, so the 48-bit product is the exact two's
    complement product and its top 32 bits are the arithmetic shift, i.e. the floor."""

    def construct(s):
        s.x = InPort(X_BITS)
        s.k = InPort(K_BITS)
        s.y = OutPort(Y_BITS)
        s.prod = Wire(XK_BITS)

        @update
        def up_scale_mul():
            s.prod @= sext(s.x, XK_BITS) * zext(s.k, XK_BITS)
            s.y @= s.prod[INV_TEMP_FRAC_BITS:XK_BITS]


class LaneBf16Scale(Component):
    """Per lane: bf16 bits -> masked, invalid, x (24-bit signed), y = floor(x * k / 2^16)
    (32-bit signed), k the row's inverse temperature (24 bits, 1..2^24 - 1). Purely
    combinational; depth: the decoder's shifter and incrementer, then one 24 x 24 multiply."""

    def construct(s, nlanes):
        _check_lanes(nlanes)
        s.bits = [InPort(BF16_BITS) for _ in range(nlanes)]
        s.k = InPort(K_BITS)
        s.masked = [OutPort() for _ in range(nlanes)]
        s.invalid = [OutPort() for _ in range(nlanes)]
        s.x = [OutPort(X_BITS) for _ in range(nlanes)]
        s.y = [OutPort(Y_BITS) for _ in range(nlanes)]
        s.dec = [Bf16Fixed() for _ in range(nlanes)]
        s.mul = [ScaleMul() for _ in range(nlanes)]
        for i in range(nlanes):
            s.dec[i].bits //= s.bits[i]
            s.masked[i] //= s.dec[i].masked
            s.invalid[i] //= s.dec[i].invalid
            s.x[i] //= s.dec[i].x
            s.mul[i].x //= s.dec[i].x
            s.mul[i].k //= s.k
            s.y[i] //= s.mul[i].y


# ---------------------------------------------------------------------------------------
# Row maximum (first pass)
# ---------------------------------------------------------------------------------------

class MaskedMaxPair(Component):
    """The larger live one of (va, la, ia) and (vb, lb, ib) in offset binary (sign bit
    flipped, so an unsigned compare is the signed one); ties and two dead sides keep a."""

    def construct(s, nbits, ibits):
        s.va = InPort(nbits)
        s.la = InPort()
        s.ia = InPort(ibits)
        s.vb = InPort(nbits)
        s.lb = InPort()
        s.ib = InPort(ibits)
        s.v = OutPort(nbits)
        s.live = OutPort()
        s.i = OutPort(ibits)
        s.take_b = Wire()

        MaxPair.build_select(s)

        @update
        def up_take_b():
            s.take_b @= s.lb & (~s.la | (s.vb > s.va))
            s.live @= s.la | s.lb


_join_masked_max = pair_join(("va", "la", "ia"), ("vb", "lb", "ib"), ("v", "live", "i"))


class LaneMax(Component):
    """Signed maximum of the unmasked lanes, the lowest lane holding it, and any_live.
    max_val and max_idx are 0 when every lane is masked. A balanced tree of L - 1
    comparators, depth ceil(log2 L). On y it is the row maximum m (over the words of a row,
    a running maximum with any_live); on x it is the greedy argmax of a word (logit_argmax:
    ties to the lowest index)."""

    def construct(s, nlanes, nbits):
        _check_lanes(nlanes)
        if not isinstance(nbits, int) or nbits < 2:
            raise ConfigError(f"LaneMax needs nbits >= 2 (a sign and a value bit), got {nbits!r}")
        LB = clog2(nlanes)
        LaneT = mk_bits(LB)
        SIGN = mk_bits(nbits)(1 << (nbits - 1))
        s.val = [InPort(nbits) for _ in range(nlanes)]
        s.masked = [InPort() for _ in range(nlanes)]
        s.max_val = OutPort(nbits)
        s.max_idx = OutPort(LB)
        s.any_live = OutPort()

        s.lane_id = [Wire(LaneT) for _ in range(nlanes)]
        s.biased = [Wire(nbits) for _ in range(nlanes)]
        s.live = [Wire() for _ in range(nlanes)]
        s.root_v = Wire(nbits)
        s.root_i = Wire(LB)
        s.root_live = Wire()
        for i in range(nlanes):
            s.lane_id[i] //= LaneT(i)
        s.nodes = [MaskedMaxPair(nbits, LB) for _ in range(nlanes - 1)]
        root_v, root_live, root_i = build_tree(s.nodes, zip(s.biased, s.live, s.lane_id), _join_masked_max)
        s.root_v //= root_v
        s.root_live //= root_live
        s.root_i //= root_i
        s.any_live //= s.root_live

        @update
        def up_lane_max_leaves():
            for i in range(nlanes):
                s.biased[i] @= s.val[i] ^ SIGN
                s.live[i] @= ~s.masked[i]

        @update
        def up_lane_max_root():
            if s.root_live:
                s.max_val @= s.root_v ^ SIGN
                s.max_idx @= s.root_i
            else:
                s.max_val @= 0
                s.max_idx @= 0


# ---------------------------------------------------------------------------------------
# Weights, min-p and their sum (second pass)
# ---------------------------------------------------------------------------------------

class Exp2Rom(Component):
    """The 256-entry table E[f] = rhe((2^W - 1) 2^(-f/256)) (numerics.exp2_table(W)) as
    constants, with nports read ports (one per lane; synthesis makes a ROM per port)."""

    def construct(s, weight_bits, nports):
        W = _check_weight_bits(weight_bits)
        WT = mk_bits(W)
        table = exp2_table(W)
        s.addr = [InPort(LOGIT_FRAC_BITS) for _ in range(nports)]
        s.data = [OutPort(W) for _ in range(nports)]
        s.entries = [Wire(W) for _ in range(1 << LOGIT_FRAC_BITS)]
        for f in range(1 << LOGIT_FRAC_BITS):
            s.entries[f] //= WT(int(table[f]))

        @update
        def up_exp2_rom():
            for i in range(nports):
                s.data[i] @= s.entries[s.addr[i]]


class WeightLane(Component):
    """One lane: d = m - y, f = d & 255 goes to the ROM, w = E[f] >> (d >> 8) if d >> 8 < W
    else 0, masked -> 0; keep = w * 2^16 >= min_rhs (min_rhs = min_p * (2^W - 1), the
    row's side); kept = w if keep else 0. The shift amount is only the low bits of e
    (e < W <= 24 fits 5); the "e >= W" compare looks at all 24 bits of d >> 8."""

    def construct(s, weight_bits):
        W = _check_weight_bits(weight_bits)
        EB = clog2(W)                       # bits of e when e < W
        CMP = W + FRACTION_BITS             # both min-p sides are <= 2^16 (2^W - 1) < 2^CMP
        E_HI = D_BITS - LOGIT_FRAC_BITS     # d >> 8 has 24 bits
        W_E = mk_bits(E_HI)(W)              # W as a constant of e's width
        s.m = InPort(Y_BITS)
        s.y = InPort(Y_BITS)
        s.masked = InPort()
        s.rom_addr = OutPort(LOGIT_FRAC_BITS)
        s.rom_data = InPort(W)
        s.min_rhs = InPort(CMP)
        s.w = OutPort(W)
        s.keep = OutPort()
        s.kept = OutPort(W)

        s.d = Wire(D_BITS)
        s.beyond = Wire()                   # e >= W: the weight underflows to 0
        s.weight = Wire(W)
        s.lhs = Wire(CMP)
        s.keep_w = Wire()
        s.w //= s.weight
        s.keep //= s.keep_w

        @update
        def up_weight_lane_d():
            s.d @= s.m - s.y                # mod 2^32: exact, since 0 <= m - y < 2^32 when live
            s.rom_addr @= s.d[0:LOGIT_FRAC_BITS]
            s.beyond @= s.d[LOGIT_FRAC_BITS:D_BITS] >= W_E

        @update
        def up_weight_lane_w():
            if s.masked | s.beyond:
                s.weight @= 0
            else:
                s.weight @= s.rom_data >> zext(s.d[LOGIT_FRAC_BITS:LOGIT_FRAC_BITS + EB], W)

        @update
        def up_weight_lane_keep():
            s.lhs @= zext(s.weight, CMP) << FRACTION_BITS
            s.keep_w @= s.lhs >= s.min_rhs
            if s.keep_w:
                s.kept @= s.weight
            else:
                s.kept @= 0


class LaneWeights(Component):
    """Per lane, given the row maximum m (32-bit signed) and y: the weight w (W bits), the
    min-p keep flag, the kept weight, and the lane sum of the kept weights (sum_bits, by
    default W + log2 L, one word's sum; a row's Z needs W + lv).

    min-p: keep w_i * 2^16 >= min_p * w_max. The lane with y = m has d = 0, so w_max is
    E[0] = 2^W - 1 for every row, by construction (NUMERICS.md section 13 step 3): the
    right side is a constant multiple of min_p, formed once per row without a multiplier as
    (min_p << W) - min_p, in W + 16 bits (min_p << W wraps at min_p = 2^16, the difference
    does not: it is below 2^(W+16)). min_p = 0 keeps every lane; min_p must be <= 2^16
    (check_sampling_params validates it upstream).

    Preconditions: m >= y on every unmasked lane (m is the maximum of the whole row). Depth:
    a 32-bit subtract, the ROM, a W-bit barrel shift, the compare, then ceil(log2 L) adders."""

    def construct(s, nlanes, weight_bits, sum_bits=None):
        _check_lanes(nlanes)
        W = _check_weight_bits(weight_bits)
        SUM = _check_sum_bits(sum_bits, W + clog2(nlanes), "LaneWeights")
        CMP = W + FRACTION_BITS
        s.m = InPort(Y_BITS)
        s.min_p = InPort(MIN_P_BITS)
        s.y = [InPort(Y_BITS) for _ in range(nlanes)]
        s.masked = [InPort() for _ in range(nlanes)]
        s.w = [OutPort(W) for _ in range(nlanes)]
        s.keep = [OutPort() for _ in range(nlanes)]
        s.kept = [OutPort(W) for _ in range(nlanes)]
        s.total = OutPort(SUM)

        s.min_wide = Wire(CMP)
        s.min_rhs = Wire(CMP)
        s.kept_wide = [Wire(SUM) for _ in range(nlanes)]
        s.rom = Exp2Rom(W, nlanes)
        s.lanes = [WeightLane(W) for _ in range(nlanes)]
        s.sum = AddTree(nlanes, SUM)
        for i in range(nlanes):
            ln = s.lanes[i]
            ln.m //= s.m
            ln.y //= s.y[i]
            ln.masked //= s.masked[i]
            ln.min_rhs //= s.min_rhs
            s.rom.addr[i] //= ln.rom_addr
            ln.rom_data //= s.rom.data[i]
            s.w[i] //= ln.w
            s.keep[i] //= ln.keep
            s.kept[i] //= ln.kept
            s.sum.in_[i] //= s.kept_wide[i]
        s.total //= s.sum.out

        @update
        def up_min_rhs():
            s.min_wide @= zext(s.min_p, CMP)
            s.min_rhs @= (s.min_wide << W) - s.min_wide

        @update
        def up_kept_wide():
            for i in range(nlanes):
                s.kept_wide[i] @= zext(s.kept[i], SUM)


# ---------------------------------------------------------------------------------------
# Weighted residual
# ---------------------------------------------------------------------------------------

class WeightedResidualLane(Component):
    """One lane: r = max(0, q * zp - p * zq), two W x Z multipliers (zero-extended to W + Z
    bits: q, p < 2^W and zp, zq < 2^Z, so each product is exact)."""

    def construct(s, weight_bits, z_bits):
        PROD = weight_bits + z_bits
        s.q = InPort(weight_bits)
        s.p = InPort(weight_bits)
        s.zq = InPort(z_bits)
        s.zp = InPort(z_bits)
        s.r = OutPort(PROD)
        s.qz = Wire(PROD)
        s.pz = Wire(PROD)

        @update
        def up_residual_products():
            s.qz @= zext(s.q, PROD) * zext(s.zp, PROD)
            s.pz @= zext(s.p, PROD) * zext(s.zq, PROD)

        @update
        def up_residual_max():
            if s.qz > s.pz:
                s.r @= s.qz - s.pz
            else:
                s.r @= 0


class LaneWeightedResidual(Component):
    """r_i = max(0, Q_i * ZP - P_i * ZQ) per lane (W + z_bits bits each: 48 at W = 16 and
    z_bits = 32, enough for V <= 65536 since Z <= V (2^W - 1) < 2^(W + lv)) and their lane
    sum (sum_bits, by default one word's, W + z_bits + log2 L; the row sum S needs
    2W + 2 lv, NUMERICS.md section 17). Depth: one multiply, a subtract, ceil(log2 L) adders."""

    def construct(s, nlanes, weight_bits=16, z_bits=32, sum_bits=None):
        _check_lanes(nlanes)
        W = _check_weight_bits(weight_bits)
        # z_bits is the width of the two factors: ZP and ZQ in the chain, a_i and b_i of the
        # tree's sampled children (k z bits and more, docs/TREES.md section 8); PyMTL3 signals
        # stop at 1023 bits
        z_hi = 1023 - W - clog2(nlanes)
        if not isinstance(z_bits, int) or not W <= z_bits <= z_hi:
            raise ConfigError(f"LaneWeightedResidual: z_bits must be in {W}..{z_hi} (Z >= every weight), got {z_bits!r}")
        PROD = W + z_bits
        SUM = _check_sum_bits(sum_bits, PROD + clog2(nlanes), "LaneWeightedResidual")
        s.q = [InPort(W) for _ in range(nlanes)]
        s.p = [InPort(W) for _ in range(nlanes)]
        s.zq = InPort(z_bits)
        s.zp = InPort(z_bits)
        s.r = [OutPort(PROD) for _ in range(nlanes)]
        s.total = OutPort(SUM)
        s.r_wide = [Wire(SUM) for _ in range(nlanes)]
        s.lanes = [WeightedResidualLane(W, z_bits) for _ in range(nlanes)]
        s.sum = AddTree(nlanes, SUM)
        for i in range(nlanes):
            ln = s.lanes[i]
            ln.q //= s.q[i]
            ln.p //= s.p[i]
            ln.zq //= s.zq
            ln.zp //= s.zp
            s.r[i] //= ln.r
            s.sum.in_[i] //= s.r_wide[i]
        s.total //= s.sum.out

        @update
        def up_residual_wide():
            for i in range(nlanes):
                s.r_wide[i] @= zext(s.r[i], SUM)
