"""VerifierRTL: the synthesizable verifier block (docs/ARCHITECTURE.md has the diagram).

Phases of a round, one input beat per cycle when the source keeps up:
  HEADER  1 beat       mode, gamma, V, R_sample; the bonus threshold (R_sample*M)>>U is
                       computed here, before any row arrives
  DRAFT   gamma beats  x_t and R_t into a small register file
  PROW    gamma rows   P_t written into the SRAM; P_t[x_t] captured as it passes
  QROW    gamma+1 rows Q_t streams past P_t read back from the SRAM (prefetched one beat
                       ahead): residual r_t = max(0, Q_t - P_t) written over P_t, its sum
                       S_t accumulated, Q_t[x_t] captured, running argmax; one cycle after
                       a row ends its accept test runs. At the first rejection j the
                       residual scan of r_j starts at once and overlaps the remaining rows.
                       The bonus row Q_gamma is sampled on the fly (threshold known up front).
  WAIT                 until the scan (if any) has found its token
  RESP                 result held until the consumer takes it
"""
from pymtl3 import *
from pymtl3.stdlib.stream.ifcs import RecvIfcRTL, SendIfcRTL

from hades.config import VerifierConfig, clog2
from hades.rtl.lanes import LaneArgMax, LaneCrossing, LaneResidual, LaneSplit
from hades.rtl.sram import SramR1W1

S_IDLE, S_DRAFT, S_PROW, S_QROW, S_WAIT, S_RESP = range(6)


class VerifierRTL(Component):

    def construct(s, cfg):
        # ---- parameters, checked up front -------------------------------------------
        assert isinstance(cfg, VerifierConfig)
        cfg.require_rtl()
        NL, NW, NU, NG = cfg.lanes, cfg.prob_bits, cfg.uniform_bits, cfg.gamma_max
        ROW_SUM = cfg.row_sum
        GB, TB, VB = cfg.gamma_bits, cfg.token_bits, cfg.vocab_bits
        LB = clog2(NL)
        BW = TB - LB                      # beat index within a row
        AB = clog2(cfg.sram_depth) + 1    # SRAM address (one spare bit: see SramR1W1)
        SW = NW + 1                        # running sums: <= ROW_SUM for valid rows, one guard bit
        STRIDE = cfg.row_words
        UW, LW, TBU, LBW = NU + NW, NL * NW, TB + NU, LB + BW
        H_G, H_V, H_U = 1 + GB, 1 + GB + VB, 1 + GB + VB + NU   # header field ends
        LANE_LAST = NL - 1

        StateT, GammaT, TokT, VocT = mk_bits(3), mk_bits(GB), mk_bits(TB), mk_bits(VB)
        BeatIdxT, AddrT, LaneT = mk_bits(BW), mk_bits(AB), mk_bits(LB)
        ProbT, UniT, SumT, ProdT = mk_bits(NW), mk_bits(NU), mk_bits(SW), mk_bits(UW)
        CycT = Bits32

        # ---- interface ------------------------------------------------------------
        s.recv = RecvIfcRTL(mk_bits(cfg.beat_bits))
        s.send = SendIfcRTL(mk_bits(cfg.result_bits))

        # ---- datapath units ---------------------------------------------------------
        s.sram = SramR1W1(cfg.sram_depth, NL * NW)
        s.in_lanes = LaneSplit(NL, NW)
        s.mem_lanes = LaneSplit(NL, NW)
        s.residual = LaneResidual(NL, NW, SW)
        s.bonus = LaneCrossing(NL, NW, SW)     # inverse CDF over the streaming bonus row
        s.scan = LaneCrossing(NL, NW, SW)      # inverse CDF over the buffered residual row
        s.argmax = LaneArgMax(NL, NW)

        s.in_lanes.word //= s.recv.msg[0:LW]
        s.mem_lanes.word //= s.sram.rdata
        for i in range(NL):
            s.residual.q[i] //= s.in_lanes.lane[i]
            s.residual.p[i] //= s.mem_lanes.lane[i]
            s.bonus.lane[i] //= s.in_lanes.lane[i]
            s.scan.lane[i] //= s.mem_lanes.lane[i]
            s.argmax.lane[i] //= s.in_lanes.lane[i]

        # ---- registers ---------------------------------------------------------------
        s.state = Wire(StateT)
        s.greedy = Wire()
        s.gamma = Wire(GammaT)
        s.last_b = Wire(BeatIdxT)           # beats per row - 1
        s.r_sample = Wire(UniT)
        s.bonus_thresh = Wire(SumT)
        s.tok = [Wire(TokT) for _ in range(NG + 1)]   # entry NG is a harmless spare
        s.r_acc = [Wire(UniT) for _ in range(NG + 1)]
        s.p_cap = [Wire(ProbT) for _ in range(NG + 1)]
        s.t = Wire(GammaT)                  # draft slot / row index in the phase
        s.b = Wire(BeatIdxT)                # beat index within the row
        s.addr = Wire(AddrT)                # SRAM address of the current beat
        s.row_base = Wire(AddrT)
        s.q_cap = Wire(ProbT)
        s.s_acc = Wire(SumT)
        s.am_val = Wire(ProbT)
        s.am_idx = Wire(TokT)
        s.test_pending = Wire()
        s.test_t = Wire(GammaT)
        s.rejected = Wire()
        s.n_acc = Wire(GammaT)
        s.res_tok = Wire(TokT)
        s.res_tok_valid = Wire()
        s.b_cum = Wire(SumT)
        s.b_found = Wire()
        s.b_tok = Wire(TokT)
        s.sc_active = Wire()
        s.sc_base = Wire(AddrT)
        s.sc_issue = Wire(BeatIdxT)         # word address offset issued this cycle
        s.sc_dv = Wire()                    # SRAM data of word sc_db is on rdata
        s.sc_db = Wire(BeatIdxT)
        s.sc_cum = Wire(SumT)
        s.sc_thresh = Wire(SumT)
        s.cyc = Wire(CycT)
        s.last_cyc = Wire(CycT)
        s.out_acc = Wire(GammaT)
        s.out_tok = Wire(TokT)
        s.out_cyc = Wire(CycT)
        s.out_lat = Wire(CycT)

        # ---- combinational signals ------------------------------------------------------
        s.fire = Wire()
        s.last_beat = Wire()
        s.cur_tok = Wire(TokT)
        s.cap_hit = Wire()
        s.cap_val = Wire(ProbT)
        s.next_addr = Wire(AddrT)
        s.accept_ok = Wire()
        s.resid_thresh = Wire(SumT)
        s.ready_result = Wire()
        s.final_acc = Wire(GammaT)
        s.final_tok = Wire(TokT)
        s.scan_end = Wire()
        s.hdr_v_m1 = Wire(VocT)
        s.hdr_bonus_prod = Wire(ProdT)
        s.resid_prod = Wire(ProdT)

        s.bonus.base //= s.b_cum
        s.bonus.thresh //= s.bonus_thresh
        s.scan.base //= s.sc_cum
        s.scan.thresh //= s.sc_thresh
        s.send.msg //= lambda: concat(s.out_lat, s.out_cyc, s.out_tok, s.out_acc)

        @update
        def up_handshake():
            s.recv.rdy @= (s.state == S_IDLE) | (s.state == S_DRAFT) | (s.state == S_PROW) | (s.state == S_QROW)
            s.send.val @= s.state == S_RESP
            s.fire @= s.recv.val & s.recv.rdy

        @update
        def up_beat_position():
            s.last_beat @= s.b == s.last_b
            s.cur_tok @= s.tok[s.t]
            s.cap_hit @= s.b == s.cur_tok[LB:TB]
            s.cap_val @= s.in_lanes.lane[s.cur_tok[0:LB]]
            if s.last_beat:
                s.next_addr @= s.row_base + STRIDE
            else:
                s.next_addr @= s.addr + 1

        @update
        def up_sram_ports():
            # write P_t during PROW; overwrite it with the residual r_t during QROW
            s.sram.waddr @= s.addr
            if s.state == S_PROW:
                s.sram.wen @= s.fire
                s.sram.wdata @= s.recv.msg[0:LW]
            else:
                s.sram.wen @= s.fire & (s.state == S_QROW) & (s.t < s.gamma) & ~s.rejected
                s.sram.wdata @= s.residual.word
            # read: the scan owns the port once it runs; otherwise prefetch the P word
            # that the next Q beat will meet
            if s.sc_active:
                s.sram.raddr @= s.sc_base + zext(s.sc_issue, AB)
            elif (s.state == S_QROW) & s.fire:
                s.sram.raddr @= s.next_addr
            elif s.state == S_QROW:
                s.sram.raddr @= s.addr
            else:
                s.sram.raddr @= 0

        @update
        def up_decisions():
            if s.greedy:
                s.accept_ok @= s.tok[s.test_t] == s.am_idx
            else:
                s.accept_ok @= (zext(s.r_acc[s.test_t], UW) * zext(s.p_cap[s.test_t], UW)) < \
                    concat(s.q_cap, UniT(0))
            s.resid_prod @= zext(s.r_sample, UW) * zext(s.s_acc[0:NW], UW)
            s.resid_thresh @= zext(s.resid_prod[NU:UW], SW)
            s.hdr_v_m1 @= s.recv.msg[H_G:H_V] - 1
            s.hdr_bonus_prod @= zext(s.recv.msg[H_V:H_U], UW) * ProdT(ROW_SUM)
            s.scan_end @= s.sc_dv & (s.sc_db == s.last_b)
            s.ready_result @= ~s.rejected | s.greedy | s.res_tok_valid
            if s.rejected:
                s.final_acc @= s.n_acc
                s.final_tok @= s.res_tok
            elif s.greedy:
                s.final_acc @= s.gamma
                s.final_tok @= s.am_idx
            else:
                s.final_acc @= s.gamma
                s.final_tok @= s.b_tok

        @update_ff
        def up_control():
            if s.reset:
                s.state <<= S_IDLE
                s.test_pending <<= 0
                s.sc_active <<= 0
                s.sc_dv <<= 0
                s.cyc <<= 0
            else:
                s.cyc <<= s.cyc + 1
                s.test_pending <<= 0

                if s.state == S_IDLE:
                    if s.fire:
                        s.greedy <<= s.recv.msg[0]
                        s.gamma <<= s.recv.msg[1:H_G]
                        s.last_b <<= s.hdr_v_m1[LB:LBW]
                        s.r_sample <<= s.recv.msg[H_V:H_U]
                        s.bonus_thresh <<= zext(s.hdr_bonus_prod[NU:UW], SW)
                        s.cyc <<= 1
                        s.t <<= 0
                        s.b <<= 0
                        s.addr <<= 0
                        s.row_base <<= 0
                        s.rejected <<= 0
                        s.res_tok_valid <<= 0
                        s.b_cum <<= 0
                        s.b_found <<= 0
                        if s.recv.msg[1:H_G] == 0:
                            s.state <<= S_QROW
                        else:
                            s.state <<= S_DRAFT

                elif s.state == S_DRAFT:
                    if s.fire:
                        s.tok[s.t] <<= s.recv.msg[0:TB]
                        s.r_acc[s.t] <<= s.recv.msg[TB:TBU]
                        if s.t == s.gamma - 1:
                            s.t <<= 0
                            s.state <<= S_PROW
                        else:
                            s.t <<= s.t + 1

                elif s.state == S_PROW:
                    if s.fire:
                        if s.cap_hit:
                            s.p_cap[s.t] <<= s.cap_val
                        if s.last_beat:
                            s.b <<= 0
                            if s.t == s.gamma - 1:
                                s.t <<= 0
                                s.addr <<= 0
                                s.row_base <<= 0
                                s.state <<= S_QROW
                            else:
                                s.t <<= s.t + 1
                                s.addr <<= s.next_addr
                                s.row_base <<= s.next_addr
                        else:
                            s.b <<= s.b + 1
                            s.addr <<= s.next_addr

                elif s.state == S_QROW:
                    if s.fire:
                        if s.cap_hit:
                            s.q_cap <<= s.cap_val
                        # residual sum and argmax of this row, restarted at its first beat
                        if s.b == 0:
                            s.s_acc <<= s.residual.total
                            s.am_val <<= s.argmax.max_val
                            s.am_idx <<= concat(s.b, s.argmax.max_idx)
                        else:
                            s.s_acc <<= s.s_acc + s.residual.total
                            if s.argmax.max_val > s.am_val:
                                s.am_val <<= s.argmax.max_val
                                s.am_idx <<= concat(s.b, s.argmax.max_idx)
                        # the bonus row is sampled as it streams
                        if (s.t == s.gamma) & ~s.b_found:
                            s.b_cum <<= s.bonus.next_base
                            if s.bonus.found:
                                s.b_found <<= 1
                                s.b_tok <<= concat(s.b, s.bonus.index)
                        if s.last_beat:
                            s.b <<= 0
                            if s.t == s.gamma:
                                s.last_cyc <<= s.cyc
                                s.state <<= S_WAIT
                            else:
                                s.test_pending <<= 1
                                s.test_t <<= s.t
                                s.t <<= s.t + 1
                                s.addr <<= s.next_addr
                                s.row_base <<= s.next_addr
                        else:
                            s.b <<= s.b + 1
                            s.addr <<= s.next_addr

                elif s.state == S_WAIT:
                    if s.ready_result:
                        s.out_acc <<= s.final_acc
                        s.out_tok <<= s.final_tok
                        s.out_cyc <<= s.cyc + 2
                        s.out_lat <<= s.cyc + 1 - s.last_cyc
                        s.state <<= S_RESP

                elif s.state == S_RESP:
                    if s.send.rdy:
                        s.state <<= S_IDLE

                # accept test of the row that ended last cycle (registered operands)
                if s.test_pending & ~s.rejected & ~s.accept_ok:
                    s.rejected <<= 1
                    s.n_acc <<= s.test_t
                    if s.greedy:
                        s.res_tok <<= s.am_idx
                        s.res_tok_valid <<= 1
                    else:
                        s.sc_active <<= 1
                        s.sc_base <<= s.row_base - STRIDE
                        s.sc_issue <<= 0
                        s.sc_cum <<= 0
                        s.sc_thresh <<= s.resid_thresh

                # residual scan: issue a word per cycle, test the word read last cycle
                if s.sc_active:
                    s.sc_issue <<= s.sc_issue + 1
                    s.sc_dv <<= 1
                    s.sc_db <<= s.sc_issue
                    if s.sc_dv:
                        s.sc_cum <<= s.scan.next_base
                        if s.scan.found | s.scan_end:
                            s.sc_active <<= 0
                            s.sc_dv <<= 0
                            s.res_tok_valid <<= 1
                            if s.scan.found:
                                s.res_tok <<= concat(s.sc_db, s.scan.index)
                            else:   # unreachable for valid rows (T < S); emit the last entry
                                s.res_tok <<= concat(s.sc_db, LaneT(LANE_LAST))

    def line_trace(s):
        names = "IDLE DRAFT PROW QROW WAIT RESP".split()
        st = int(s.state)
        return (f"{names[st] if st < 6 else '?':5} t{int(s.t)} b{int(s.b)} "
                f"{'R' if s.rejected else ' '}{'S' if s.sc_active else ' '} {s.send}")
