"""VerifierDpath: the datapath of the verifier, steered by VerifierCtrl (hades/rtl/control.py).

Each unit is one builder method: its registers, its combinational logic and the single
update_ff block that writes those registers (header decode and accept test are
combinational only).

  header decode      fields of the beat on the input (the control latches mode, gamma, row length)
  draft registers    x_t, R_t and the captured P_t[x_t]              up_draft_regs
  address generator  SRAM address of the beat and of its row         up_address
  row statistics     Q_t[x_t], residual sum S_t, running argmax      up_row_stats
  bonus sampler      inverse CDF over the streaming bonus row        up_bonus
  accept test        R_t*P_t[x_t] < Q_t[x_t]*2^U (greedy: x_t == argmax), combinational
  residual scan      inverse CDF over r_j read back from the SRAM    up_scan
  result             rejection token, cycle counters, result regs    up_result
"""
from pymtl3 import *

from hades.rtl.control import CTRL_REGISTERS, CTRL_SIGNALS
from hades.rtl.counters import RoundCounters
from hades.rtl.lanes import LaneArgMax, LaneCrossing, LaneResidual, LaneSplit
from hades.rtl.sram import SramR1W1
from hades.rtl.widths import RtlWidths


class VerifierDpath(Component):

    def construct(s, w):
        assert isinstance(w, RtlWidths)
        s.build_ports(w)
        s.build_units(w)
        s.build_header_decode(w)
        s.build_draft_regs(w)
        s.build_address(w)
        s.build_row_stats(w)
        s.build_bonus(w)
        s.build_accept_test(w)
        s.build_scan(w)
        s.build_result(w)

    def build_ports(s, w):
        GammaT, BeatIdxT = mk_bits(w.gamma_bits), mk_bits(w.beat_index_bits)
        s.msg = InPort(w.beat_bits)
        s.result = OutPort(w.result_bits)
        # to the control
        s.hdr_greedy = OutPort()
        s.hdr_gamma = OutPort(GammaT)
        s.hdr_last_beat_index = OutPort(BeatIdxT)
        s.accept_ok = OutPort()
        s.reject_token_valid = OutPort()
        # from the control: its registers, then its single-bit signals
        widths = {"row": GammaT, "beat_index": BeatIdxT, "last_beat_index": BeatIdxT, "greedy": Bits1,
                  "gamma": GammaT, "test_row": GammaT, "rejected": Bits1, "accepted": GammaT}
        assert set(widths) == set(CTRL_REGISTERS)
        for name in CTRL_REGISTERS:
            setattr(s, name, InPort(widths[name]))
        for name in CTRL_SIGNALS:
            setattr(s, name, InPort())

    def build_units(s, w):
        L, W = w.lanes, w.prob_bits
        s.sram = SramR1W1(w.sram_depth, w.word_bits)
        s.in_lanes = LaneSplit(L, W)                  # the beat on the input
        s.mem_lanes = LaneSplit(L, W)                 # the SRAM word read last cycle
        s.residual = LaneResidual(L, W, w.sum_bits)
        s.argmax = LaneArgMax(L, W)
        s.bonus = LaneCrossing(L, W, w.sum_bits)      # over the streaming bonus row
        s.scan = LaneCrossing(L, W, w.sum_bits)       # over the buffered residual row
        s.in_lanes.word //= s.msg[0:w.word_bits]
        s.mem_lanes.word //= s.sram.rdata
        for i in range(L):
            s.residual.q[i] //= s.in_lanes.lane[i]
            s.residual.p[i] //= s.mem_lanes.lane[i]
            s.argmax.lane[i] //= s.in_lanes.lane[i]
            s.bonus.lane[i] //= s.in_lanes.lane[i]
            s.scan.lane[i] //= s.mem_lanes.lane[i]

    def build_header_decode(s, w):
        LANE_BITS, TOKEN_BITS = w.lane_bits, w.token_bits
        GAMMA_END, VOCAB_END, UNIFORM_END = w.hdr_gamma_end, w.hdr_vocab_end, w.hdr_uniform_end
        PROD_BITS, ROW_SUM = w.product_bits, w.row_sum
        ProdT = mk_bits(PROD_BITS)
        s.hdr_vocab_m1 = Wire(w.vocab_bits)
        s.hdr_sample_uniform = Wire(w.uniform_bits)
        s.hdr_bonus_prod = Wire(ProdT)
        s.hdr_greedy //= s.msg[0]
        s.hdr_gamma //= s.msg[1:GAMMA_END]

        # the bonus threshold (R_sample*M)>>U is formed from the header itself, so the
        # bonus row can be sampled as it streams
        @update
        def up_header_decode():
            s.hdr_vocab_m1 @= s.msg[GAMMA_END:VOCAB_END] - 1
            s.hdr_last_beat_index @= s.hdr_vocab_m1[LANE_BITS:TOKEN_BITS]
            s.hdr_sample_uniform @= s.msg[VOCAB_END:UNIFORM_END]
            s.hdr_bonus_prod @= zext(s.hdr_sample_uniform, PROD_BITS) * ProdT(ROW_SUM)

    def build_draft_regs(s, w):
        LANE_BITS, TOKEN_BITS, DRAFT_UNIFORM_END = w.lane_bits, w.token_bits, w.draft_uniform_end
        slots = w.gamma_max + 1        # the row index reaches gamma in the bonus row: a spare slot
        s.draft_token = [Wire(w.token_bits) for _ in range(slots)]
        s.draft_uniform = [Wire(w.uniform_bits) for _ in range(slots)]
        s.draft_p_x = [Wire(w.prob_bits) for _ in range(slots)]     # P_t[x_t]
        s.cur_token = Wire(w.token_bits)
        s.cap_hit = Wire()             # the beat on the input holds entry x_t of its row
        s.cap_val = Wire(w.prob_bits)

        @update
        def up_capture():
            s.cur_token @= s.draft_token[s.row]
            s.cap_hit @= s.beat_index == s.cur_token[LANE_BITS:TOKEN_BITS]
            s.cap_val @= s.in_lanes.lane[s.cur_token[0:LANE_BITS]]

        @update_ff
        def up_draft_regs():
            if s.draft_beat:
                s.draft_token[s.row] <<= s.msg[0:TOKEN_BITS]
                s.draft_uniform[s.row] <<= s.msg[TOKEN_BITS:DRAFT_UNIFORM_END]
            if s.prow_beat & s.cap_hit:
                s.draft_p_x[s.row] <<= s.cap_val

    def build_address(s, w):
        ADDR_BITS, ROW_STRIDE, WORD_BITS = w.sram_addr_bits, w.row_stride, w.word_bits
        s.beat_addr = Wire(ADDR_BITS)  # SRAM word of the beat on the input
        s.row_addr = Wire(ADDR_BITS)   # ... and of its row's first beat
        s.next_addr = Wire(ADDR_BITS)
        s.sram.wen //= s.sram_wen
        s.sram.waddr //= s.beat_addr

        @update
        def up_next_addr():
            if s.last_beat:
                s.next_addr @= s.row_addr + ROW_STRIDE
            else:
                s.next_addr @= s.beat_addr + 1

        # the scan owns the read port while it runs; otherwise QROW prefetches the P word
        # that the next Q beat meets
        @update
        def up_sram_ports():
            if s.sram_write_draft:
                s.sram.wdata @= s.msg[0:WORD_BITS]
            else:
                s.sram.wdata @= s.residual.word
            if s.scan_active:
                s.sram.raddr @= s.scan_row_addr + zext(s.scan_issue, ADDR_BITS)
            elif s.read_ahead:
                s.sram.raddr @= s.next_addr
            elif s.read_stream:
                s.sram.raddr @= s.beat_addr
            else:
                s.sram.raddr @= 0

        @update_ff
        def up_address():
            if s.addr_restart:
                s.beat_addr <<= 0
                s.row_addr <<= 0
            elif s.addr_next_row:
                s.beat_addr <<= s.next_addr
                s.row_addr <<= s.next_addr
            elif s.addr_next_beat:
                s.beat_addr <<= s.next_addr

    def build_row_stats(s, w):
        s.row_q_x = Wire(w.prob_bits)          # Q_t[x_t]
        s.row_resid_sum = Wire(w.sum_bits)     # S_t = sum of max(0, Q_t - P_t)
        s.row_max_val = Wire(w.prob_bits)      # argmax of Q_t (greedy), ties to the lowest index
        s.row_max_idx = Wire(w.token_bits)

        # restarted at each row's first beat, so they need no reset
        @update_ff
        def up_row_stats():
            if s.qrow_beat:
                if s.cap_hit:
                    s.row_q_x <<= s.cap_val
                if s.beat_index == 0:
                    s.row_resid_sum <<= s.residual.total
                    s.row_max_val <<= s.argmax.max_val
                    s.row_max_idx <<= concat(s.beat_index, s.argmax.max_idx)
                else:
                    s.row_resid_sum <<= s.row_resid_sum + s.residual.total
                    if s.argmax.max_val > s.row_max_val:
                        s.row_max_val <<= s.argmax.max_val
                        s.row_max_idx <<= concat(s.beat_index, s.argmax.max_idx)

    def build_bonus(s, w):
        UNIFORM_BITS, PROD_BITS, SUM_BITS = w.uniform_bits, w.product_bits, w.sum_bits
        s.bonus_thresh = Wire(SUM_BITS)
        s.bonus_cum = Wire(SUM_BITS)           # the bonus row's sum over the beats so far
        s.bonus_found = Wire()
        s.bonus_tok = Wire(w.token_bits)
        s.bonus.base //= s.bonus_cum
        s.bonus.thresh //= s.bonus_thresh

        @update_ff
        def up_bonus():
            if s.round_start:
                s.bonus_thresh <<= zext(s.hdr_bonus_prod[UNIFORM_BITS:PROD_BITS], SUM_BITS)
                s.bonus_cum <<= 0
                s.bonus_found <<= 0
            if s.bonus_beat & ~s.bonus_found:
                s.bonus_cum <<= s.bonus.next_base
                if s.bonus.found:
                    s.bonus_found <<= 1
                    s.bonus_tok <<= concat(s.beat_index, s.bonus.index)

    def build_accept_test(s, w):
        PROD_BITS = w.product_bits
        UniT = mk_bits(w.uniform_bits)

        # operands are registers: the row ended last cycle (VerifierCtrl's test_row)
        @update
        def up_accept_test():
            if s.greedy:
                s.accept_ok @= s.draft_token[s.test_row] == s.row_max_idx
            else:
                s.accept_ok @= (zext(s.draft_uniform[s.test_row], PROD_BITS) *
                                zext(s.draft_p_x[s.test_row], PROD_BITS)) < concat(s.row_q_x, UniT(0))

    def build_scan(s, w):
        PROB_BITS, UNIFORM_BITS, PROD_BITS = w.prob_bits, w.uniform_bits, w.product_bits
        SUM_BITS, ROW_STRIDE, LANE_LAST = w.sum_bits, w.row_stride, w.lanes - 1
        LaneT = mk_bits(w.lane_bits)
        s.scan_uniform = Wire(w.uniform_bits)   # R_sample, latched from the header
        s.scan_active = Wire()
        s.scan_row_addr = Wire(w.sram_addr_bits)
        s.scan_issue = Wire(w.beat_index_bits)  # word offset read this cycle
        s.scan_data_valid = Wire()              # SRAM data of word scan_data_beat is on rdata
        s.scan_data_beat = Wire(w.beat_index_bits)
        s.scan_cum = Wire(SUM_BITS)
        s.scan_thresh = Wire(SUM_BITS)
        s.scan_prod = Wire(PROD_BITS)
        s.scan_first_thresh = Wire(SUM_BITS)    # (R_sample * S_j) >> U
        s.scan_end = Wire()
        s.scan_done = Wire()
        s.scan_token = Wire(w.token_bits)
        s.scan.base //= s.scan_cum
        s.scan.thresh //= s.scan_thresh

        @update
        def up_scan_thresh():
            s.scan_prod @= zext(s.scan_uniform, PROD_BITS) * zext(s.row_resid_sum[0:PROB_BITS], PROD_BITS)
            s.scan_first_thresh @= zext(s.scan_prod[UNIFORM_BITS:PROD_BITS], SUM_BITS)

        @update
        def up_scan_status():
            s.scan_end @= s.scan_data_valid & (s.scan_data_beat == s.last_beat_index)
            s.scan_done @= s.scan_active & s.scan_data_valid & (s.scan.found | s.scan_end)
            if s.scan.found:
                s.scan_token @= concat(s.scan_data_beat, s.scan.index)
            else:   # unreachable for valid rows (T < S); emit the last entry
                s.scan_token @= concat(s.scan_data_beat, LaneT(LANE_LAST))

        # starts at the first rejection (stochastic mode) and overlaps the remaining rows:
        # issue one word per cycle, test the word read last cycle
        @update_ff
        def up_scan():
            if s.reset:
                s.scan_active <<= 0
                s.scan_data_valid <<= 0
            else:
                if s.round_start:
                    s.scan_uniform <<= s.hdr_sample_uniform
                if s.scan_start:
                    s.scan_active <<= 1
                    s.scan_row_addr <<= s.row_addr - ROW_STRIDE
                    s.scan_issue <<= 0
                    s.scan_cum <<= 0
                    s.scan_thresh <<= s.scan_first_thresh
                if s.scan_active:
                    s.scan_issue <<= s.scan_issue + 1
                    s.scan_data_valid <<= 1
                    s.scan_data_beat <<= s.scan_issue
                    if s.scan_data_valid:
                        s.scan_cum <<= s.scan.next_base
                        if s.scan.found | s.scan_end:
                            s.scan_active <<= 0
                            s.scan_data_valid <<= 0

    def build_result(s, w):
        CycT = mk_bits(w.cycle_bits)
        s.reject_token = Wire(w.token_bits)
        s.counters = RoundCounters(w.cycle_bits)   # cycles since the header, frozen at the result
        s.final_acc = Wire(w.gamma_bits)
        s.final_tok = Wire(w.token_bits)
        s.result_accepted = Wire(w.gamma_bits)
        s.result_token = Wire(w.token_bits)
        s.result_cycles = Wire(CycT)
        s.result_latency = Wire(CycT)
        s.counters.round_start //= s.round_start
        s.counters.input_done //= s.input_done
        s.counters.result_load //= s.result_load
        s.result_cycles //= s.counters.cycles
        s.result_latency //= s.counters.latency
        s.result //= lambda: concat(s.result_latency, s.result_cycles, s.result_token, s.result_accepted)

        @update
        def up_result_select():
            if s.rejected:
                s.final_acc @= s.accepted
                s.final_tok @= s.reject_token
            elif s.greedy:
                s.final_acc @= s.gamma
                s.final_tok @= s.row_max_idx
            else:
                s.final_acc @= s.gamma
                s.final_tok @= s.bonus_tok

        @update_ff
        def up_result():
            if ~s.reset:
                # the token after a rejection: the argmax (greedy) or the scan's sample
                if s.round_start:
                    s.reject_token_valid <<= 0
                if s.greedy_reject:
                    s.reject_token <<= s.row_max_idx
                    s.reject_token_valid <<= 1
                if s.scan_done:
                    s.reject_token <<= s.scan_token
                    s.reject_token_valid <<= 1
                # the counters stop when the result first becomes valid (RESP, next cycle)
                if s.result_load:
                    s.result_accepted <<= s.final_acc
                    s.result_token <<= s.final_tok
