"""TreeDpath: the datapath of the tree block, steered by TreeCtrl (hades/rtl/tree_control.py).
Its lane units are the logit block's (hades/rtl/logit_lanes.py, hades/rtl/lanes.py):

  header decode    the fields of the header and of a node beat on the input
  input pass       bf16 decode + temperature (LaneBf16Scale), the row maximum of y (greedy: the
                   argmax of x, LaneMax) over the row's beats; per node the maxima of its rows
  node uniforms    per node R_n and T_n
  buffers          draft rows (N_max - 1) and target rows (N_max), raw bf16 beats
  engine lanes     the buffered words re-decoded (P and Q side), the weights with the row's
                   maximum and min-p (LaneWeights), the top-k / top-p keep mask of each side
                   (LaneRankKeep, its cut from the radix select RadixSelect: the logit block's
                   hades/rtl/logit_filter.py), the residual max(0, Q a_i - P b_i)
                   (LaneWeightedResidual with a_i, b_i as its two factors), one crossing
  engine registers the job's sum, ZP, the factors a_i and b_i, the entries at the tested
                   child's token (P[x], r_i[x]), the crossing's base and threshold
  accept test      R P[x] S_i < r_i[x] ZP 2^U, combinational at the job's finish
  result           node, depth, token, the cycle counters, the output message
"""
from pymtl3 import *

from hades.config import clog2
from hades.logit_protocol import BF16_BITS, K_BITS, MIN_P_BITS, TOP_K_BITS, TOP_P_BITS
from hades.rtl.counters import RoundCounters
from hades.rtl.lanes import LaneCrossing, LaneSplit
from hades.rtl.logit_filter import LaneRankKeep, RadixSelect
from hades.rtl.logit_lanes import X_BITS, Y_BITS, LaneBf16Scale, LaneMax, LaneWeights, LaneWeightedResidual
from hades.rtl.sram import SramR1W1
from hades.rtl.tree_control import (CTRL_TO_DPATH, DPATH_TO_CTRL, GREEDY, J_DZ, J_FP, J_QX, J_RS, J_RX, J_TZ, SAMPLED,
                                    node_slots, port_width)
from hades.tree_protocol import TreeLayout


def engine_widths(lay: TreeLayout) -> tuple[int, int, int, int]:
    """(factor bits: a_i and b_i; residual lane bits; sum bits: S_i and the crossing; product
    bits of the accept test and the threshold)."""
    W, U = lay.tree.hw.prob_bits, lay.tree.hw.uniform_bits
    FB = max(lay.a_bits, lay.b_bits, lay.z_bits)
    RB = W + FB
    SB = max(lay.residual_sum_bits, RB + clog2(lay.tree.hw.lanes)) + 1   # a word's residual sum fits too
    return FB, RB, SB, U + W + SB


class TreeDpath(Component):

    def construct(s, lay):
        assert isinstance(lay, TreeLayout)
        s.msg = InPort(lay.beat_bits)
        s.msg_upper = []                  # one lane group (wire_ctrl_dpath connects the others)
        s.result = OutPort(lay.result_bits)
        for name, kind in CTRL_TO_DPATH.items():
            setattr(s, name, InPort(port_width(kind, lay)))
        for name, kind in DPATH_TO_CTRL.items():
            setattr(s, name, OutPort(port_width(kind, lay)))
        s.build_header_decode(lay)
        s.build_input_pass(lay)
        s.build_buffers(lay)
        s.build_engine_lanes(lay)
        s.build_filter(lay)
        s.build_engine(lay)
        s.build_result(lay)

    def build_header_decode(s, lay):
        c = lay.tree.hw
        f, nf = lay.fields, lay.node_fields
        LB = port_width("lane", lay)
        TB = c.token_bits
        (SC_LO, SC_W), (N_LO, N_W), (V_LO, V_W) = f["scheme"], f["nodes"], f["vocab"]
        (DK_LO, DK_W), (DM_LO, DM_W) = f["draft_k"], f["draft_min_p"]
        (TK_LO, TK_W), (TM_LO, TM_W) = f["target_k"], f["target_min_p"]
        (P_LO, P_W), (T_LO, T_W) = nf["parent"], nf["token"]
        (RU_LO, RU_W), (TU_LO, TU_W) = nf["accept_uniform"], nf["sample_uniform"]
        SC_HI, N_HI, V_HI = SC_LO + SC_W, N_LO + N_W, V_LO + V_W
        DK_HI, DM_HI, TK_HI, TM_HI = DK_LO + DK_W, DM_LO + DM_W, TK_LO + TK_W, TM_LO + TM_W
        P_HI, T_HI, RU_HI, TU_HI = P_LO + P_W, T_LO + T_W, RU_LO + RU_W, TU_LO + TU_W
        s.hdr_vocab_m1 = Wire(c.vocab_bits)
        s.k_draft = Wire(K_BITS)
        s.k_target = Wire(K_BITS)
        s.min_p_draft = Wire(MIN_P_BITS)
        s.min_p_target = Wire(MIN_P_BITS)
        s.node_r = Wire(RU_W)
        s.node_t = Wire(TU_W)
        s.hdr_scheme //= s.msg[SC_LO:SC_HI]
        s.hdr_nodes //= s.msg[N_LO:N_HI]
        s.node_parent //= s.msg[P_LO:P_HI]
        s.node_token //= s.msg[T_LO:T_HI]
        s.node_r //= s.msg[RU_LO:RU_HI]
        s.node_t //= s.msg[TU_LO:TU_HI]

        @update
        def up_tree_header_decode():
            s.hdr_vocab_m1 @= s.msg[V_LO:V_HI] - 1
            s.hdr_last_beat_index @= s.hdr_vocab_m1[LB:TB]
            s.hdr_last_lane @= s.hdr_vocab_m1[0:LB]

        @update_ff
        def up_tree_header_regs():
            if s.round_start:
                s.k_draft <<= s.msg[DK_LO:DK_HI]
                s.min_p_draft <<= s.msg[DM_LO:DM_HI]
                s.k_target <<= s.msg[TK_LO:TK_HI]
                s.min_p_target <<= s.msg[TM_LO:TM_HI]

    # ---- input pass: decode, temperature, the row maximum (greedy: argmax of x) ---------------
    def build_input_pass(s, lay):
        c = lay.tree.hw
        L, NS, TB = c.lanes, node_slots(lay), c.token_bits
        LaneT = mk_bits(port_width("lane", lay))
        SIGN = mk_bits(Y_BITS)(1 << (Y_BITS - 1))
        X_MSB = X_BITS - 1
        SIGN_FILL = mk_bits(Y_BITS - X_BITS)(-1)
        WORD = L * BF16_BITS
        s.in_lanes = LaneSplit(L, BF16_BITS)
        s.in_lanes.word //= s.msg[0:WORD]
        s.in_scale = LaneBf16Scale(L)
        s.in_max = LaneMax(L, Y_BITS)
        s.in_past = [Wire() for _ in range(L)]
        s.run_live = Wire()
        s.run_max = Wire(Y_BITS)
        s.run_idx = Wire(TB)
        s.next_live = Wire()
        s.next_max = Wire(Y_BITS)
        s.next_idx = Wire(TB)
        s.word_better = Wire()
        s.greedy = Wire()
        s.in_last_beat = Wire()
        s.m_draft = [Wire(Y_BITS) for _ in range(NS)]
        s.m_target = [Wire(Y_BITS) for _ in range(NS)]
        s.r_u = [Wire(c.uniform_bits) for _ in range(NS)]
        s.t_u = [Wire(c.uniform_bits) for _ in range(NS)]
        s.argmax //= s.next_idx
        for i in range(L):
            s.in_scale.bits[i] //= s.in_lanes.lane[i]

        @update
        def up_tree_input_lanes():
            s.greedy @= s.scheme == GREEDY
            s.in_last_beat @= s.in_beat == s.last_beat_index
            if s.in_is_draft:
                s.in_scale.k @= s.k_draft
            else:
                s.in_scale.k @= s.k_target
            for i in range(L):
                s.in_past[i] @= s.in_last_beat & (LaneT(i) > s.last_lane)
                s.in_max.masked[i] @= s.in_scale.masked[i] | s.in_past[i]
                # sign extension by hand: pymtl3 translates sext() of a list element as a
                # replication of the whole element, not of its sign bit
                if s.greedy & s.in_scale.x[i][X_MSB]:
                    s.in_max.val[i] @= concat(SIGN_FILL, s.in_scale.x[i])
                elif s.greedy:
                    s.in_max.val[i] @= zext(s.in_scale.x[i], Y_BITS)
                else:
                    s.in_max.val[i] @= s.in_scale.y[i]

        @update
        def up_tree_row_max_next():
            s.word_better @= s.in_max.any_live & (~s.run_live | (s.in_beat == 0)
                                                  | ((s.in_max.max_val ^ SIGN) > (s.run_max ^ SIGN)))
            s.next_live @= s.in_max.any_live | (s.run_live & (s.in_beat != 0))
            if s.word_better:
                s.next_max @= s.in_max.max_val
                s.next_idx @= concat(s.in_beat, s.in_max.max_idx)
            else:
                s.next_max @= s.run_max
                s.next_idx @= s.run_idx

        @update_ff
        def up_tree_row_max():
            if s.row_beat:
                s.run_live <<= s.next_live
                s.run_max <<= s.next_max
                s.run_idx <<= s.next_idx
            if s.row_last:
                if s.in_is_draft:
                    s.m_draft[s.in_node] <<= s.next_max
                else:
                    s.m_target[s.in_node] <<= s.next_max
            if s.node_beat:
                s.r_u[s.in_node] <<= s.node_r
                s.t_u[s.in_node] <<= s.node_t

    # ---- the two row buffers ---------------------------------------------------------------
    def build_buffers(s, lay):
        STRIDE = lay.row_words
        s.draft_mem = SramR1W1(lay.draft_buffer_words, lay.word_bits)
        s.target_mem = SramR1W1(lay.target_buffer_words, lay.word_bits)
        WORD = lay.word_bits
        s.draft_mem.wdata //= s.msg[0:WORD]
        s.target_mem.wdata //= s.msg[0:WORD]
        DA, TA = s.draft_mem.raddr.get_type().nbits, s.target_mem.raddr.get_type().nbits
        DStride, TStride = mk_bits(DA)(STRIDE), mk_bits(TA)(STRIDE)
        s.eng_word = Wire(port_width("beat", lay))

        @update
        def up_tree_buffer_ports():
            s.draft_mem.wen @= s.row_beat & s.in_is_draft
            s.target_mem.wen @= s.row_beat & ~s.in_is_draft
            s.draft_mem.waddr @= zext(s.in_node, DA) * DStride + zext(s.in_beat, DA)
            s.target_mem.waddr @= zext(s.in_node, TA) * TStride + zext(s.in_beat, TA)
            if s.eng_go:
                s.eng_word @= 0
            else:
                s.eng_word @= s.eng_issue
            s.draft_mem.raddr @= zext(s.walk_node, DA) * DStride + zext(s.eng_word, DA)
            s.target_mem.raddr @= zext(s.walk_node, TA) * TStride + zext(s.eng_word, TA)

    # ---- engine lanes: weights of the buffered words, the residual, the crossing ------------------
    def build_engine_lanes(s, lay):
        c = lay.tree.hw
        L, W, ZB = c.lanes, c.prob_bits, lay.z_bits
        FB, RB, SB, _ = engine_widths(lay)
        LB, TB = port_width("lane", lay), c.token_bits
        LaneT = mk_bits(LB)
        s.e_dlanes = LaneSplit(L, BF16_BITS)
        s.e_tlanes = LaneSplit(L, BF16_BITS)
        s.e_dlanes.word //= s.draft_mem.rdata
        s.e_tlanes.word //= s.target_mem.rdata
        s.e_pscale = LaneBf16Scale(L)
        s.e_qscale = LaneBf16Scale(L)
        s.e_pw = LaneWeights(L, W, ZB)
        s.e_qw = LaneWeights(L, W, ZB)
        s.resid = LaneWeightedResidual(L, W, FB, RB + (L - 1).bit_length())
        s.crossing = LaneCrossing(L, RB, SB)
        s.e_pscale.k //= s.k_draft
        s.e_qscale.k //= s.k_target
        s.e_pw.min_p //= s.min_p_draft
        s.e_qw.min_p //= s.min_p_target
        s.e_pw.m //= lambda: s.m_draft[s.walk_node]
        s.e_qw.m //= lambda: s.m_target[s.walk_node]
        s.e_past = [Wire() for _ in range(L)]
        s.e_last_word = Wire()
        s.x_word = Wire(TB - LB)
        s.x_lane = Wire(LaneT)
        s.x_word_here = Wire()
        for i in range(L):
            s.e_pscale.bits[i] //= s.e_dlanes.lane[i]
            s.e_qscale.bits[i] //= s.e_tlanes.lane[i]
            s.e_pw.y[i] //= s.e_pscale.y[i]
            s.e_qw.y[i] //= s.e_qscale.y[i]

        @update
        def up_tree_engine_lanes():
            s.e_last_word @= s.eng_data_idx == s.last_beat_index
            s.x_word @= s.child_token[LB:TB]
            s.x_lane @= s.child_token[0:LB]
            s.x_word_here @= s.eng_data_idx == s.x_word
            for i in range(L):
                s.e_past[i] @= s.e_last_word & (LaneT(i) > s.last_lane)
                s.e_pw.masked[i] @= s.e_pscale.masked[i] | s.e_past[i]
                s.e_qw.masked[i] @= s.e_qscale.masked[i] | s.e_past[i]

        @update
        def up_tree_crossing_lanes():
            for i in range(L):
                if s.eng_job == J_RX:
                    s.crossing.lane[i] @= s.resid.r[i]
                else:
                    s.crossing.lane[i] @= zext(s.qfilt.kept[i], RB)

    # ---- top-k / top-p: the select and the keep masks (hades/rtl/logit_filter.py) -----------------
    def build_filter(s, lay):
        lg = lay.logit
        c = lay.tree.hw
        L, W, CB, ZB = c.lanes, c.prob_bits, lg.count_bits, lay.z_bits
        f = lay.fields
        (V_LO, V_W) = f["vocab"]
        V_HI = V_LO + V_W
        KEEP_ALL = mk_bits(CB)((1 << CB) - 1)
        ONE = mk_bits(TOP_P_BITS)(1 << (TOP_P_BITS - 1))
        (DKL, DKW), (DPL, DPW) = f["draft_top_k"], f["draft_top_p"]
        (TKL, TKW), (TPL, TPW) = f["target_top_k"], f["target_top_p"]
        DKH, DPH, TKH, TPH = DKL + DKW, DPL + DPW, TKL + TKW, TPL + TPW
        DKC, TKC = DKL + CB, TKL + CB
        s.select = RadixSelect(L, lg)
        s.pfilt = LaneRankKeep(L, W, CB, ZB)       # the walk node's draft row: DZ, RS, RX
        s.qfilt = LaneRankKeep(L, W, CB, ZB)       # its target row: TZ, RS, RX, QX
        s.hdr_vocab_k = Wire(TOP_K_BITS)
        s.top_k_draft = Wire(CB)
        s.top_k_target = Wire(CB)
        s.top_p_draft = Wire(TOP_P_BITS)
        s.top_p_target = Wire(TOP_P_BITS)
        s.draft_filtered = Wire()
        s.target_filtered = Wire()
        s.dk_on = Wire()
        s.dp_on = Wire()
        s.tk_on = Wire()
        s.tp_on = Wire()
        s.tau_p = Wire(W)            # the walk node's draft row cut (RS and RX re-read it)
        s.c_p = Wire(CB)
        s.tau_q = Wire(W)            # ... its target row's
        s.c_q = Wire(CB)
        s.e_live = [Wire() for _ in range(L)]
        for i in range(L):
            s.resid.q[i] //= s.qfilt.kept[i]
            s.resid.p[i] //= s.pfilt.kept[i]
            s.select.live[i] //= s.e_live[i]
            s.pfilt.w[i] //= s.e_pw.w[i]
            s.pfilt.live[i] //= s.e_live[i]
            s.pfilt.minp_keep[i] //= s.e_pw.keep[i]
            s.qfilt.w[i] //= s.e_qw.w[i]
            s.qfilt.live[i] //= s.e_live[i]
            s.qfilt.minp_keep[i] //= s.e_qw.keep[i]
        s.select.clear //= lambda: s.eng_go & s.filter_job
        s.select.add //= lambda: s.eng_data & s.filter_job
        s.select.prep //= lambda: s.eng_fin & s.filter_job
        s.select.selecting //= s.eng_selecting
        s.select.sel //= s.eng_sel
        s.select.level //= s.eng_level
        s.select.by_sum //= lambda: s.eng_job == J_FP
        s.pfilt.tau //= s.tau_p
        s.pfilt.c //= s.c_p
        s.qfilt.tau //= s.tau_q
        s.qfilt.c //= s.c_q
        for u in (s.pfilt, s.qfilt):
            u.clear //= s.eng_go
            u.advance //= s.eng_data

        # top-k acts when 0 < top_k < V, top-p when top_p < 2^16 (tree_protocol.tree_filter_flags;
        # the control drops the draft side outside sampled rounds and both in greedy ones)
        @update
        def up_tree_filter_header():
            s.hdr_vocab_k @= zext(s.msg[V_LO:V_HI], TOP_K_BITS)
            s.hdr_dk_on @= (s.msg[DKL:DKH] != 0) & (s.msg[DKL:DKH] < s.hdr_vocab_k)
            s.hdr_dp_on @= s.msg[DPL:DPH] < ONE
            s.hdr_tk_on @= (s.msg[TKL:TKH] != 0) & (s.msg[TKL:TKH] < s.hdr_vocab_k)
            s.hdr_tp_on @= s.msg[TPL:TPH] < ONE

        @update_ff
        def up_tree_filter_header_regs():
            if s.round_start:
                s.top_k_draft <<= s.msg[DKL:DKC]
                s.top_p_draft <<= s.msg[DPL:DPH]
                s.top_k_target <<= s.msg[TKL:TKC]
                s.top_p_target <<= s.msg[TPL:TPH]
                s.dk_on <<= s.hdr_dk_on & (s.hdr_scheme == SAMPLED)
                s.dp_on <<= s.hdr_dp_on & (s.hdr_scheme == SAMPLED)
                s.tk_on <<= s.hdr_tk_on & (s.hdr_scheme != GREEDY)
                s.tp_on <<= s.hdr_tp_on & (s.hdr_scheme != GREEDY)

        @update
        def up_tree_filter_inputs():
            for i in range(L):
                s.e_live[i] @= ~s.e_past[i]
                if s.filt_draft:
                    s.select.w[i] @= s.e_pw.w[i]
                else:
                    s.select.w[i] @= s.e_qw.w[i]
            if s.filt_draft:
                s.select.top_k @= s.top_k_draft
                s.select.top_k_on @= s.dk_on
                s.select.top_p @= s.top_p_draft
            else:
                s.select.top_k @= s.top_k_target
                s.select.top_k_on @= s.tk_on
                s.select.top_p @= s.top_p_target
            s.draft_filtered @= s.dk_on | s.dp_on
            s.target_filtered @= s.tk_on | s.tp_on

        # a row's cut is taken from the select as its Z job starts (unfiltered: keep all)
        @update_ff
        def up_tree_filter_cuts():
            if s.eng_go & (s.eng_job == J_DZ):
                if s.draft_filtered:
                    s.tau_p <<= s.select.tau
                    s.c_p <<= s.select.c
                else:
                    s.tau_p <<= 0
                    s.c_p <<= KEEP_ALL
            if s.eng_go & (s.eng_job == J_TZ):
                if s.target_filtered:
                    s.tau_q <<= s.select.tau
                    s.c_q <<= s.select.c
                else:
                    s.tau_q <<= 0
                    s.c_q <<= KEEP_ALL

    # ---- engine registers ---------------------------------------------------------------------
    def build_engine(s, lay):
        c = lay.tree.hw
        W, UB, ZB = c.prob_bits, c.uniform_bits, lay.z_bits
        FB, RB, SB, PB = engine_widths(lay)
        UniT = mk_bits(UB)
        TH = UB + SB
        RHS = PB - UB                     # r_i[x] ZP before the shift by U
        s.acc = Wire(SB)                  # ZP, ZQ or S_i of the running job
        s.cum = Wire(SB)                  # the crossing's sum of earlier words
        s.thresh = Wire(SB)
        s.zp = Wire(ZB)                   # ZP of the walk's node
        s.fa = Wire(FB)                   # a_i
        s.fb = Wire(FB)                   # b_i
        s.px = Wire(W)                    # P[x] of the tested child's token x
        s.rx = Wire(RB)                   # r_i[x] (Q[x] in TZ)
        s.final_token = Wire(c.token_bits)
        s.thresh_prod = Wire(PB)
        NW = max(FB + ZB, SB)             # a_i ZP and b_i ZP + S_i before they are cut to FB bits
        s.next_fa = Wire(NW)
        s.next_fb = Wire(NW)
        s.accept_lhs = Wire(PB)
        s.accept_rhs = Wire(PB)
        s.crossing.base //= s.cum
        s.crossing.thresh //= s.thresh
        s.resid.zp //= s.fa
        s.resid.zq //= s.fb
        s.cross_found //= s.crossing.found
        s.emitted //= s.final_token
        s.child_r = Wire(UB)
        s.node_t_u = Wire(UB)
        s.child_r //= lambda: s.r_u[s.cur_child]
        s.node_t_u //= lambda: s.t_u[s.walk_node]

        @update
        def up_tree_products():
            s.thresh_prod @= zext(s.node_t_u, PB) * zext(s.acc, PB)
            s.next_fa @= zext(s.fa, NW) * zext(s.zp, NW)
            s.next_fb @= zext(s.fb, NW) * zext(s.zp, NW) + zext(s.acc, NW)
            # accept test of the child under test: R P[x] S_i < r_i[x] ZP 2^U (S_i = the job's sum)
            s.accept_lhs @= zext(s.child_r, PB) * zext(s.px, PB) * zext(s.acc, PB)
            s.accept_rhs @= concat(zext(s.rx, RHS) * zext(s.zp, RHS), UniT(0))
            s.accept_ok @= s.accept_lhs < s.accept_rhs

        @update_ff
        def up_tree_engine():
            if s.eng_go:
                s.acc <<= 0
                s.cum <<= 0
                if s.eng_job == J_DZ:
                    s.fa <<= 1
                    s.fb <<= 0
            elif s.eng_data:
                if s.eng_job == J_DZ:
                    s.acc <<= s.acc + zext(s.pfilt.total, SB)
                    if s.x_word_here:
                        s.px <<= s.pfilt.kept[s.x_lane]
                elif s.eng_job == J_TZ:
                    s.acc <<= s.acc + zext(s.qfilt.total, SB)
                    if s.x_word_here:
                        s.rx <<= zext(s.qfilt.kept[s.x_lane], RB)
                elif s.eng_job == J_RS:
                    s.acc <<= s.acc + zext(s.resid.total, SB)
                    if s.x_word_here:
                        s.px <<= s.pfilt.kept[s.x_lane]
                        s.rx <<= s.resid.r[s.x_lane]
                elif (s.eng_job == J_RX) | (s.eng_job == J_QX):
                    s.cum <<= s.crossing.next_base
                    if s.crossing.found:
                        s.final_token <<= concat(s.eng_data_idx, s.crossing.index)
            if s.eng_fin:
                if s.eng_job == J_DZ:
                    s.zp <<= s.acc[0:ZB]
                s.thresh <<= s.thresh_prod[UB:TH]
            if s.eng_reject:                 # a_{i+1} = a_i ZP, b_{i+1} = b_i ZP + S_i
                s.fa <<= s.next_fa[0:FB]
                s.fb <<= s.next_fb[0:FB]
            if s.greedy_stop:
                s.final_token <<= s.next_idx

    # ---- result and output message ------------------------------------------------------------
    def build_result(s, lay):
        c, t = lay.tree.hw, lay.tree
        s.result_node = Wire(t.node_bits)
        s.result_depth = Wire(t.count_bits)
        s.result_token = Wire(c.token_bits)
        s.counters = RoundCounters(32)
        s.counters.round_start //= s.round_start
        s.counters.input_done //= s.input_done
        s.counters.result_load //= s.result_load

        @update
        def up_tree_message():
            s.result @= concat(s.counters.latency, s.counters.cycles, s.result_token, s.result_depth, s.result_node)

        @update_ff
        def up_tree_result():
            if s.result_load:
                s.result_node <<= s.walk_node
                s.result_depth <<= s.depth
                s.result_token <<= s.final_token
