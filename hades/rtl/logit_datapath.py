"""LogitDpath: the datapath of the logit block, steered by LogitCtrl (hades/rtl/logit_control.py).

  header decode    fields of the beat on the input
  input pass       bf16 decode + temperature (LaneBf16Scale), the row maximum of y (greedy: the
                   argmax of x) over the row's beats (LaneMax + running registers)   up_row_max
  buffers          draft rows and target rows, raw bf16 beats (two SramR1W1)
  slot registers   per draft slot x_t, D_t, R_t, P_t[x_t], ZP_t, when x_t was sampled; per
                   row its maximum                                                  up_slot_regs
  engine lanes     the buffered words re-decoded (P side, Q side), weights with the row's
                   maximum and min-p (LaneWeights), P one-hot for one-hot drafts, the residual
                   max(0, Q ZP - P ZQ) (LaneWeightedResidual), one inverse-CDF crossing unit
  filter           top-k / top-p: the radix select over a row's weights (RadixSelect), the
                   cut (tau, c) per draft slot and of the target row, and per side the keep mask
                   (LaneRankKeep) between the weights and every job    hades/rtl/logit_filter.py
  engine registers the job's sum, the crossing's running base and threshold, Q_t[x_t], ZQ   up_engine
  accept test      R_t P_t[x_t] ZQ_t < Q_t[x_t] ZP_t 2^U, combinational at the job's finish
  result           token, cycle counters, the output message                        up_result
"""
from pymtl3 import *

from hades.logit_protocol import BF16_BITS, K_BITS, MIN_P_BITS, TOP_K_BITS, TOP_P_BITS, LogitLayout
from hades.rtl.beats import LaneGroupSplit
from hades.rtl.counters import RoundCounters
from hades.rtl.lanes import LaneCrossing
from hades.rtl.logit_control import (CTRL_TO_DPATH, DPATH_TO_CTRL, J_DS, J_DZ, J_FP, J_RS, J_RX, J_TZ, port_width)
from hades.rtl.logit_filter import LaneRankKeep, RadixSelect
from hades.rtl.logit_lanes import X_BITS, Y_BITS, LaneBf16Scale, LaneMax, LaneWeights, LaneWeightedResidual
from hades.rtl.sram import SramBanks
from hades.rtl.widths import RtlWidths


class LogitDpath(Component):

    def construct(s, w, lay):
        assert isinstance(w, RtlWidths) and isinstance(lay, LogitLayout)
        s.build_ports(w, lay)
        s.build_header_decode(w, lay)
        s.build_input_pass(w, lay)
        s.build_buffers(w, lay)
        s.build_filter_units(w, lay)
        s.build_engine_lanes(w, lay)
        s.build_filter(w, lay)
        s.build_slot_regs(w, lay)
        s.build_engine(w, lay)
        s.build_accept_test(w, lay)
        s.build_result(w, lay)

    def build_ports(s, w, lay):
        # the beat's lane groups (hades/rtl/beats.py): group 0, which also carries the header
        # and draft fields, and groups 1 .. G-1 (L >= 64 only)
        s.msg = InPort(lay.beat_groups[0])
        s.msg_upper = [InPort(b) for b in lay.beat_groups[1:]]
        s.result = OutPort(lay.result_bits)
        for name, kind in CTRL_TO_DPATH.items():
            setattr(s, name, InPort(port_width(kind, w, lay)))
        for name, kind in DPATH_TO_CTRL.items():
            setattr(s, name, OutPort(port_width(kind, w, lay)))

    def build_header_decode(s, w, lay):
        f = lay.fields
        LANE_BITS, TOKEN_BITS = w.lane_bits, w.token_bits

        (G_LO, G_W), (V_LO, V_W) = f["gamma"], f["vocab"]
        (RS_LO, RS_W), (DK_LO, DK_W), (DM_LO, DM_W) = f["sample_uniform"], f["draft_k"], f["draft_min_p"]
        (TK_LO, TK_W), (TM_LO, TM_W) = f["target_k"], f["target_min_p"]
        V_HI, RS_HI, DK_HI, DM_HI, TK_HI, TM_HI = (V_LO + V_W, RS_LO + RS_W, DK_LO + DK_W, DM_LO + DM_W,
                                                   TK_LO + TK_W, TM_LO + TM_W)
        s.hdr_vocab_m1 = Wire(w.vocab_bits)
        s.hdr_greedy //= s.msg[0]
        s.hdr_onehot //= s.msg[1]
        s.hdr_gamma //= s.msg[G_LO:G_LO + G_W]
        s.sample_uniform = Wire(w.uniform_bits)
        s.k_draft = Wire(K_BITS)
        s.k_target = Wire(K_BITS)
        s.min_p_draft = Wire(MIN_P_BITS)
        s.min_p_target = Wire(MIN_P_BITS)

        @update
        def up_header_decode():
            s.hdr_vocab_m1 @= s.msg[V_LO:V_HI] - 1
            s.hdr_last_beat_index @= s.hdr_vocab_m1[LANE_BITS:TOKEN_BITS]
            s.hdr_last_lane @= s.hdr_vocab_m1[0:LANE_BITS]

        @update_ff
        def up_header_regs():
            if s.round_start:
                s.sample_uniform <<= s.msg[RS_LO:RS_HI]
                s.k_draft <<= s.msg[DK_LO:DK_HI]
                s.min_p_draft <<= s.msg[DM_LO:DM_HI]
                s.k_target <<= s.msg[TK_LO:TK_HI]
                s.min_p_target <<= s.msg[TM_LO:TM_HI]

    # ---- input pass: decode, temperature, the row maximum (greedy: argmax of x) ---------------
    def build_input_pass(s, w, lay):
        L = w.lanes
        LaneT = mk_bits(w.lane_bits)
        SIGN = mk_bits(Y_BITS)(1 << (Y_BITS - 1))
        X_MSB = X_BITS - 1
        SIGN_FILL = mk_bits(Y_BITS - X_BITS)(-1)
        s.in_lanes = LaneGroupSplit(lay.lane_groups, lay.beat_groups[0], lay.group_lanes, BF16_BITS)
        s.in_scale = LaneBf16Scale(L)
        s.in_max = LaneMax(L, Y_BITS)
        for g, word in enumerate([s.msg] + s.msg_upper):
            s.in_lanes.word[g] //= word
        s.in_past = [Wire() for _ in range(L)]       # lanes past V in a row's last beat
        s.run_live = Wire()
        s.run_max = Wire(Y_BITS)
        s.run_idx = Wire(w.token_bits)
        s.next_live = Wire()
        s.next_max = Wire(Y_BITS)
        s.next_idx = Wire(w.token_bits)
        s.word_better = Wire()
        for i in range(L):
            s.in_scale.bits[i] //= s.in_lanes.lane[i]

        @update
        def up_input_lanes():
            if s.in_draft_row:
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

        # the row so far, this beat included; the first beat of a row restarts it
        @update
        def up_row_max_next():
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
        def up_row_max():
            if s.row_beat:
                s.run_live <<= s.next_live
                s.run_max <<= s.next_max
                s.run_idx <<= s.next_idx

    # ---- the two row buffers ---------------------------------------------------------------
    def build_buffers(s, w, lay):
        STRIDE, GROUPS, BANK_BITS = lay.row_words, lay.lane_groups, lay.group_word_bits
        s.draft_mem = SramBanks(lay.draft_buffer_words, GROUPS, BANK_BITS)
        s.target_mem = SramBanks(lay.target_buffer_words, GROUPS, BANK_BITS)
        for g, word in enumerate([s.msg] + s.msg_upper):     # bank g stores lane group g of the beat
            s.draft_mem.wdata[g] //= word[0:BANK_BITS]
            s.target_mem.wdata[g] //= word[0:BANK_BITS]
        DA, TA = s.draft_mem.raddr.get_type().nbits, s.target_mem.raddr.get_type().nbits
        DStride, TStride = mk_bits(DA)(STRIDE), mk_bits(TA)(STRIDE)
        s.eng_word = Wire(w.beat_index_bits)

        @update
        def up_buffer_ports():
            s.draft_mem.wen @= s.row_beat & s.in_draft_row
            s.target_mem.wen @= s.row_beat & ~s.in_draft_row
            s.draft_mem.waddr @= zext(s.in_slot, DA) * DStride + zext(s.in_beat, DA)
            s.target_mem.waddr @= zext(s.in_slot, TA) * TStride + zext(s.in_beat, TA)
            if s.eng_go:
                s.eng_word @= 0
            else:
                s.eng_word @= s.eng_issue
            s.draft_mem.raddr @= zext(s.eng_slot, DA) * DStride + zext(s.eng_word, DA)
            s.target_mem.raddr @= zext(s.eng_slot, TA) * TStride + zext(s.eng_word, TA)

    # ---- engine lanes: weights of the buffered words ------------------------------------------
    def build_engine_lanes(s, w, lay):
        L, W, ZB, RB = w.lanes, w.prob_bits, lay.z_bits, lay.residual_bits
        LB, TB = w.lane_bits, w.token_bits
        LaneT = mk_bits(LB)
        BANKS, BANK_BITS = lay.lane_groups, lay.group_word_bits
        s.e_dlanes = LaneGroupSplit(BANKS, BANK_BITS, lay.group_lanes, BF16_BITS)
        s.e_tlanes = LaneGroupSplit(BANKS, BANK_BITS, lay.group_lanes, BF16_BITS)
        s.e_pscale = LaneBf16Scale(L)
        s.e_qscale = LaneBf16Scale(L)
        s.e_pw = LaneWeights(L, W, ZB)
        s.e_qw = LaneWeights(L, W, ZB)
        s.resid = LaneWeightedResidual(L, W, ZB, lay.residual_sum_bits)
        s.crossing = LaneCrossing(L, RB, lay.residual_sum_bits)
        for g in range(lay.lane_groups):
            s.e_dlanes.word[g] //= s.draft_mem.rdata[g]
            s.e_tlanes.word[g] //= s.target_mem.rdata[g]
        s.e_pscale.k //= s.k_draft
        s.e_qscale.k //= s.k_target
        s.e_pw.min_p //= s.min_p_draft
        s.e_qw.min_p //= s.min_p_target
        s.e_past = [Wire() for _ in range(L)]
        s.e_last_word = Wire()
        s.p_lane = [Wire(W) for _ in range(L)]      # P: the weights, or one-hot at x_t
        s.cur_x = Wire(w.token_bits)                # x of the engine's slot
        s.cur_x_word = Wire(w.beat_index_bits)
        s.cur_x_lane = Wire(LaneT)
        s.x_word_here = Wire()
        for i in range(L):
            s.e_pscale.bits[i] //= s.e_dlanes.lane[i]
            s.e_qscale.bits[i] //= s.e_tlanes.lane[i]
            s.e_pw.y[i] //= s.e_pscale.y[i]
            s.e_qw.y[i] //= s.e_qscale.y[i]
            s.resid.q[i] //= s.qfilt.kept[i]
            s.resid.p[i] //= s.p_lane[i]

        @update
        def up_engine_lanes():
            s.e_last_word @= s.eng_data_idx == s.last_beat_index
            s.cur_x_word @= s.cur_x[LB:TB]
            s.cur_x_lane @= s.cur_x[0:LB]
            s.x_word_here @= s.eng_data_idx == s.cur_x_word
            for i in range(L):
                s.e_past[i] @= s.e_last_word & (LaneT(i) > s.last_lane)
                s.e_pw.masked[i] @= s.e_pscale.masked[i] | s.e_past[i]
                s.e_qw.masked[i] @= s.e_qscale.masked[i] | s.e_past[i]

        # three blocks, not one: the masks feed LaneWeights, whose outputs feed the other two;
        # in one always block Verilator sees a combinational loop from L = 256 on (UNOPTFLAT)
        @update
        def up_engine_p_lanes():
            for i in range(L):
                if s.onehot:
                    s.p_lane[i] @= zext(s.x_word_here & (s.cur_x_lane == LaneT(i)), W)
                else:
                    s.p_lane[i] @= s.pfilt.kept[i]

        @update
        def up_engine_crossing_lanes():
            for i in range(L):
                if s.eng_job == J_DS:
                    s.crossing.lane[i] @= zext(s.pfilt.kept[i], RB)
                elif s.eng_job == J_RX:
                    s.crossing.lane[i] @= s.resid.r[i]
                else:
                    s.crossing.lane[i] @= zext(s.qfilt.kept[i], RB)

    # ---- top-k / top-p: the select, the cuts, the keep masks (hades/rtl/logit_filter.py) --------
    def build_filter_units(s, w, lay):
        L, W, CB, ZB = w.lanes, w.prob_bits, lay.count_bits, lay.z_bits
        s.select = RadixSelect(L, lay)
        s.pfilt = LaneRankKeep(L, W, CB, ZB)       # draft rows: DZ, DS, RS, RX
        s.qfilt = LaneRankKeep(L, W, CB, ZB)       # target rows: TZ, RS, RX, BX

    def build_filter(s, w, lay):
        L, W, CB = w.lanes, w.prob_bits, lay.count_bits
        f = lay.fields
        (V_LO, V_W) = f["vocab"]
        V_HI = V_LO + V_W
        KEEP_ALL = mk_bits(CB)((1 << CB) - 1)
        ONE = mk_bits(TOP_P_BITS)(1 << (TOP_P_BITS - 1))
        (DKL, DKW), (DPL, DPW) = f["draft_top_k"], f["draft_top_p"]
        (TKL, TKW), (TPL, TPW) = f["target_top_k"], f["target_top_p"]
        DKH, DPH, TKH, TPH = DKL + DKW, DPL + DPW, TKL + TKW, TPL + TPW
        DKC, TKC = DKL + CB, TKL + CB
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
        slots = w.gamma_max + 1
        s.tau_p = [Wire(W) for _ in range(slots)]    # draft row t's cut (RS / RX re-read it)
        s.c_p = [Wire(CB) for _ in range(slots)]
        s.tau_q = Wire(W)                            # the target row's cut (TZ_t, then RS RX / BX)
        s.c_q = Wire(CB)
        s.e_live = [Wire() for _ in range(L)]

        # top-k acts when 0 < top_k < V, top-p when top_p < 2^16 (logit_protocol.filter_flags)
        @update
        def up_filter_header():
            s.hdr_vocab_k @= zext(s.msg[V_LO:V_HI], TOP_K_BITS)
            s.hdr_dk_on @= (s.msg[DKL:DKH] != 0) & (s.msg[DKL:DKH] < s.hdr_vocab_k)
            s.hdr_dp_on @= s.msg[DPL:DPH] < ONE
            s.hdr_tk_on @= (s.msg[TKL:TKH] != 0) & (s.msg[TKL:TKH] < s.hdr_vocab_k)
            s.hdr_tp_on @= s.msg[TPL:TPH] < ONE

        @update_ff
        def up_filter_header_regs():
            if s.round_start:
                s.top_k_draft <<= s.msg[DKL:DKC]
                s.top_p_draft <<= s.msg[DPL:DPH]
                s.top_k_target <<= s.msg[TKL:TKC]
                s.top_p_target <<= s.msg[TPL:TPH]
                s.dk_on <<= s.hdr_dk_on
                s.dp_on <<= s.hdr_dp_on
                s.tk_on <<= s.hdr_tk_on
                s.tp_on <<= s.hdr_tp_on

        for i in range(L):
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
        s.pfilt.tau //= lambda: s.tau_p[s.eng_slot]
        s.pfilt.c //= lambda: s.c_p[s.eng_slot]
        s.qfilt.tau //= s.tau_q
        s.qfilt.c //= s.c_q
        for u in (s.pfilt, s.qfilt):
            u.clear //= s.eng_go
            u.advance //= s.eng_data

        @update
        def up_filter_inputs():
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
        def up_filter_cuts():
            if s.eng_go & (s.eng_job == J_DZ):
                if s.draft_filtered:
                    s.tau_p[s.eng_slot] <<= s.select.tau
                    s.c_p[s.eng_slot] <<= s.select.c
                else:
                    s.tau_p[s.eng_slot] <<= 0
                    s.c_p[s.eng_slot] <<= KEEP_ALL
            if s.eng_go & (s.eng_job == J_TZ):
                if s.target_filtered:
                    s.tau_q <<= s.select.tau
                    s.c_q <<= s.select.c
                else:
                    s.tau_q <<= 0
                    s.c_q <<= KEEP_ALL

    # ---- per-slot registers -----------------------------------------------------------------
    def build_slot_regs(s, w, lay):
        TB, UB, W, ZB = w.token_bits, w.uniform_bits, w.prob_bits, lay.z_bits
        D_END, R_END = TB + UB, TB + 2 * UB
        slots = w.gamma_max + 1            # target slots reach gamma (the bonus row)
        s.x = [Wire(TB) for _ in range(slots)]
        s.d_u = [Wire(UB) for _ in range(slots)]
        s.r_u = [Wire(UB) for _ in range(slots)]
        s.px = [Wire(W) for _ in range(slots)]       # P_t[x_t]
        s.zp = [Wire(ZB) for _ in range(slots)]      # ZP_t
        s.x_held = [Wire() for _ in range(slots)]
        s.x_cycle = [Wire(32) for _ in range(slots)]  # the cycle from which x_t is held
        s.row_end = [Wire(32) for _ in range(slots)]  # the cycle of draft row t's last beat
        s.m_draft = [Wire(Y_BITS) for _ in range(slots)]
        s.m_target = [Wire(Y_BITS) for _ in range(slots)]
        s.cycle = Wire(32)                           # cycles since the header (header = 0)
        s.counters = RoundCounters(32)
        s.cycle //= s.counters.cycle
        s.cur_x //= lambda: s.x[s.eng_slot]
        s.e_pw.m //= lambda: s.m_draft[s.eng_slot]
        s.e_qw.m //= lambda: s.m_target[s.eng_slot]
        s.resid.zp //= lambda: s.zp[s.eng_slot]
        s.emit_held //= lambda: s.x_held[s.emit_slot]
        s.greedy_match //= lambda: s.x[s.in_slot] == s.next_idx

        @update_ff
        def up_slot_regs():
            if s.round_start:
                for t in range(slots):
                    s.x_held[t] <<= 0
            if s.draft_beat:
                if s.onehot:
                    s.x[s.in_slot] <<= s.msg[0:TB]
                    s.px[s.in_slot] <<= 1
                    s.zp[s.in_slot] <<= 1
                s.d_u[s.in_slot] <<= s.msg[TB:D_END]
                s.r_u[s.in_slot] <<= s.msg[D_END:R_END]
            if s.row_last:
                if s.in_draft_row:
                    s.m_draft[s.in_slot] <<= s.next_max
                    s.row_end[s.in_slot] <<= s.cycle
                    if s.greedy:
                        s.x[s.in_slot] <<= s.next_idx
                        s.x_held[s.in_slot] <<= 1
                        s.x_cycle[s.in_slot] <<= s.cycle + 1
                else:
                    s.m_target[s.in_slot] <<= s.next_max
            if s.eng_data & (s.eng_job == J_DS) & s.crossing.found:
                s.x[s.eng_slot] <<= concat(s.eng_data_idx, s.crossing.index)
                s.px[s.eng_slot] <<= s.pfilt.kept[s.crossing.index]
                s.x_held[s.eng_slot] <<= 1
                s.x_cycle[s.eng_slot] <<= s.cycle + 1
            if s.eng_fin & (s.eng_job == J_DZ):
                s.zp[s.eng_slot] <<= s.acc[0:ZB]

    # ---- engine registers: the job's sum, the crossing, the threshold --------------------------
    def build_engine(s, w, lay):
        UB, ZB, SB = w.uniform_bits, lay.z_bits, lay.residual_sum_bits
        TP = UB + SB
        s.acc = Wire(SB)                  # ZP, ZQ or S of the running job
        s.cum = Wire(SB)                  # the crossing's sum of earlier words
        s.thresh = Wire(SB)
        s.zq = Wire(ZB)                   # ZQ of the last TZ job (the residual's)
        s.q_x = Wire(w.prob_bits)         # Q_t[x_t] of the running TZ job
        s.thresh_u = Wire(UB)
        s.thresh_prod = Wire(TP)
        s.final_token = Wire(w.token_bits)
        s.crossing.base //= s.cum
        s.crossing.thresh //= s.thresh
        s.resid.zq //= s.zq
        s.cross_found //= s.crossing.found

        @update
        def up_threshold():
            if s.eng_job == J_DZ:
                s.thresh_u @= s.d_u[s.eng_slot]
            else:
                s.thresh_u @= s.sample_uniform
            s.thresh_prod @= zext(s.thresh_u, TP) * zext(s.acc, TP)

        @update_ff
        def up_engine():
            if s.eng_go:
                s.acc <<= 0
                s.cum <<= 0
            elif s.eng_data:
                if s.eng_job == J_DZ:
                    s.acc <<= s.acc + zext(s.pfilt.total, SB)
                elif s.eng_job == J_TZ:
                    s.acc <<= s.acc + zext(s.qfilt.total, SB)
                    if s.x_word_here:
                        s.q_x <<= s.qfilt.kept[s.cur_x_lane]
                elif s.eng_job == J_RS:
                    s.acc <<= s.acc + s.resid.total
                else:
                    s.cum <<= s.crossing.next_base
                    if s.crossing.found & (s.eng_job != J_DS):
                        s.final_token <<= concat(s.eng_data_idx, s.crossing.index)
            if s.eng_fin:
                if s.eng_job == J_TZ:
                    s.zq <<= s.acc[0:ZB]
                s.thresh <<= s.thresh_prod[UB:TP]
            # greedy rounds: the argmax of a target row, at its last beat
            if s.row_last & s.greedy & ~s.in_draft_row & ~s.rejected:
                if (s.in_slot == s.gamma) | ~s.greedy_match:
                    s.final_token <<= s.next_idx

    # ---- accept test (operands registered; evaluated at the TZ job's finish) --------------------
    def build_accept_test(s, w, lay):
        UB, W, ZB = w.uniform_bits, w.prob_bits, lay.z_bits
        PB = UB + W + ZB
        QZ = W + ZB
        UniT = mk_bits(UB)
        s.accept_lhs = Wire(PB)
        s.accept_rhs = Wire(PB)

        @update
        def up_accept_test():
            s.accept_lhs @= zext(s.r_u[s.eng_slot], PB) * zext(s.px[s.eng_slot], PB) * zext(s.acc[0:ZB], PB)
            s.accept_rhs @= concat(zext(s.q_x, QZ) * zext(s.zp[s.eng_slot], QZ), UniT(0))
            s.accept_ok @= s.accept_lhs < s.accept_rhs

    # ---- result and output message ------------------------------------------------------------
    def build_result(s, w, lay):
        GB, TB = w.gamma_bits, w.token_bits
        s.result_accepted = Wire(GB)
        s.result_token = Wire(TB)
        s.result_cycles = Wire(32)
        s.result_latency = Wire(32)
        s.emit_x = Wire(TB)
        s.emit_cycle = Wire(32)
        s.emit_latency = Wire(32)
        s.counters.round_start //= s.round_start
        s.counters.input_done //= s.input_done
        s.counters.result_load //= s.result_load
        s.result_cycles //= s.counters.cycles
        s.result_latency //= s.counters.latency
        s.emit_x //= lambda: s.x[s.emit_slot]
        s.emit_cycle //= lambda: s.x_cycle[s.emit_slot]
        s.emit_latency //= lambda: s.x_cycle[s.emit_slot] - s.row_end[s.emit_slot]

        @update
        def up_message():
            if s.send_draft_msg:
                s.result @= concat(s.emit_latency, s.emit_cycle, s.emit_x, s.emit_slot, b1(0))
            else:
                s.result @= concat(s.result_latency, s.result_cycles, s.result_token, s.result_accepted, b1(1))

        @update_ff
        def up_result():
            if s.result_load:
                if s.rejected:
                    s.result_accepted <<= s.accepted
                else:
                    s.result_accepted <<= s.gamma
                s.result_token <<= s.final_token
