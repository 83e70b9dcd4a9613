"""VerifierCtrl: the control unit of the verifier, the round FSM and the accept decision.

Like pymtl3's ProcCtrlRTL next to ProcDpathRTL, it holds only sequencing state (phase, row
and beat counters, the header fields that steer them, the decision flags) and drives the
datapath (hades/rtl/datapath.py) with strobes and selects; probabilities, sums, tokens
and addresses live in the datapath.

Register strobes (round_start ... result_load) are low in a reset cycle: reset wins over
every update, so only the registers that reset change. The handshake and the SRAM write
enable see the raw transfer (`fire`): the SRAM has no reset.
"""
from pymtl3 import *

from hades.rtl.widths import RtlWidths

S_IDLE, S_DRAFT, S_PROW, S_QROW, S_WAIT, S_RESP = range(6)
STATE_NAMES = ("IDLE", "DRAFT", "PROW", "QROW", "WAIT", "RESP")

# control -> datapath, connected by name in VerifierRTL
CTRL_REGISTERS = (                     # written by up_fsm and up_decision
    "row", "beat_index", "last_beat_index", "greedy", "gamma",
    "test_row", "rejected", "accepted",
)
CTRL_SIGNALS = (                       # combinational, one bit each
    "last_beat",
    # register strobes
    "round_start", "draft_beat", "prow_beat", "qrow_beat", "bonus_beat", "input_done",
    "addr_restart", "addr_next_row", "addr_next_beat", "scan_start", "greedy_reject", "result_load",
    # SRAM port controls
    "sram_wen", "sram_write_draft", "read_stream", "read_ahead",
)
CTRL_TO_DPATH = CTRL_REGISTERS + CTRL_SIGNALS
# datapath -> control
DPATH_TO_CTRL = ("hdr_greedy", "hdr_gamma", "hdr_last_beat_index", "accept_ok", "reject_token_valid")


class VerifierCtrl(Component):

    def construct(s, w):
        assert isinstance(w, RtlWidths)
        s.build_ports(w)
        s.build_strobes()
        s.build_fsm()
        s.build_decision()

    def build_ports(s, w):
        GammaT, BeatIdxT = mk_bits(w.gamma_bits), mk_bits(w.beat_index_bits)
        s.recv_val = InPort()
        s.recv_rdy = OutPort()
        s.send_val = OutPort()
        s.send_rdy = InPort()
        # status from the datapath: header fields of the beat on the input, the accept test
        s.hdr_greedy = InPort()
        s.hdr_gamma = InPort(GammaT)
        s.hdr_last_beat_index = InPort(BeatIdxT)
        s.accept_ok = InPort()
        s.reject_token_valid = InPort()
        # registers that the datapath reads (written by up_fsm / up_decision)
        s.row = OutPort(GammaT)               # draft slot in DRAFT, row index in PROW / QROW
        s.beat_index = OutPort(BeatIdxT)      # beat within the row
        s.last_beat_index = OutPort(BeatIdxT)  # beats per row - 1
        s.greedy = OutPort()
        s.gamma = OutPort(GammaT)
        s.test_row = OutPort(GammaT)
        s.rejected = OutPort()
        s.accepted = OutPort(GammaT)
        for name in CTRL_SIGNALS:
            setattr(s, name, OutPort())

    def build_strobes(s):
        s.fire = Wire()            # a beat transfers this cycle
        s.advance = Wire()         # ... and the registers take it (not in reset)
        s.last_draft_row = Wire()
        s.bonus_row = Wire()       # Q_{gamma+1}: no accept test, sampled on the fly

        @update
        def up_handshake():
            s.recv_rdy @= (s.state == S_IDLE) | (s.state == S_DRAFT) | (s.state == S_PROW) | (s.state == S_QROW)
            s.send_val @= s.state == S_RESP
            s.fire @= s.recv_val & s.recv_rdy
            s.advance @= s.fire & ~s.reset

        @update
        def up_position():
            s.last_beat @= s.beat_index == s.last_beat_index
            s.last_draft_row @= s.row == s.gamma - 1
            s.bonus_row @= s.row == s.gamma

        @update
        def up_strobes():
            s.round_start @= s.advance & (s.state == S_IDLE)
            s.draft_beat @= s.advance & (s.state == S_DRAFT)
            s.prow_beat @= s.advance & (s.state == S_PROW)
            s.qrow_beat @= s.advance & (s.state == S_QROW)
            s.bonus_beat @= s.qrow_beat & s.bonus_row
            s.input_done @= s.bonus_beat & s.last_beat
            # Q_1 meets P_1 at word 0, so the address restarts after the P rows too; it
            # holds after the bonus row (nothing reads it until the next header)
            s.addr_restart @= s.round_start | (s.prow_beat & s.last_beat & s.last_draft_row)
            s.addr_next_row @= s.last_beat & ((s.prow_beat & ~s.last_draft_row) | (s.qrow_beat & ~s.bonus_row))
            s.addr_next_beat @= (s.prow_beat | s.qrow_beat) & ~s.last_beat
            # write P_t during PROW; overwrite it with the residual r_t during QROW until
            # the first rejection (later residuals are never scanned)
            s.sram_wen @= s.fire & ((s.state == S_PROW) | ((s.state == S_QROW) & (s.row < s.gamma) & ~s.rejected))
            s.sram_write_draft @= s.state == S_PROW
            # QROW reads the P word the next Q beat meets (prefetch); the scan overrides
            s.read_stream @= s.state == S_QROW
            s.read_ahead @= (s.state == S_QROW) & s.fire

    def build_fsm(s):
        s.state = Wire(3)

        # one input beat per cycle when the source keeps up; WAIT holds for the scan
        @update_ff
        def up_fsm():
            if s.reset:
                s.state <<= S_IDLE
            elif s.state == S_IDLE:
                if s.fire:
                    s.greedy <<= s.hdr_greedy
                    s.gamma <<= s.hdr_gamma
                    s.last_beat_index <<= s.hdr_last_beat_index
                    s.row <<= 0
                    s.beat_index <<= 0
                    if s.hdr_gamma == 0:
                        s.state <<= S_QROW
                    else:
                        s.state <<= S_DRAFT
            elif s.state == S_DRAFT:
                if s.fire:
                    if s.last_draft_row:
                        s.row <<= 0
                        s.state <<= S_PROW
                    else:
                        s.row <<= s.row + 1
            elif s.state == S_PROW:
                if s.fire:
                    if s.last_beat:
                        s.beat_index <<= 0
                        if s.last_draft_row:
                            s.row <<= 0
                            s.state <<= S_QROW
                        else:
                            s.row <<= s.row + 1
                    else:
                        s.beat_index <<= s.beat_index + 1
            elif s.state == S_QROW:
                if s.fire:
                    if s.last_beat:
                        s.beat_index <<= 0
                        if s.bonus_row:
                            s.state <<= S_WAIT
                        else:
                            s.row <<= s.row + 1
                    else:
                        s.beat_index <<= s.beat_index + 1
            elif s.state == S_WAIT:
                if s.ready_result:
                    s.state <<= S_RESP
            elif s.state == S_RESP:
                if s.send_rdy:
                    s.state <<= S_IDLE

    def build_decision(s):
        s.test_pending = Wire()    # a draft row ended last cycle: its test runs now
        s.row_test = Wire()
        s.reject = Wire()
        s.ready_result = Wire()    # WAIT -> RESP: the result no longer waits on a scan

        # the test uses registered operands, so it runs one cycle after the row's last
        # beat; rows arrive in order, so the first failing test wins (sticky `rejected`)
        @update
        def up_decision_signals():
            s.row_test @= s.qrow_beat & s.last_beat & ~s.bonus_row
            s.reject @= ~s.reset & s.test_pending & ~s.rejected & ~s.accept_ok
            s.greedy_reject @= s.reject & s.greedy
            s.scan_start @= s.reject & ~s.greedy
            s.ready_result @= ~s.rejected | s.greedy | s.reject_token_valid
            s.result_load @= ~s.reset & (s.state == S_WAIT) & s.ready_result

        @update_ff
        def up_decision():
            if s.reset:
                s.test_pending <<= 0
            else:
                s.test_pending <<= s.row_test
                if s.row_test:
                    s.test_row <<= s.row
                if s.round_start:
                    s.rejected <<= 0
                if s.reject:
                    s.rejected <<= 1
                    s.accepted <<= s.test_row
