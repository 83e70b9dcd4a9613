"""LogitCtrl: the control unit of the logit block (docs/ARCHITECTURE.md "The logit block").

Three pieces of sequencing state, each with its own update_ff block:
  input FSM     IDLE -> DRAFT (gamma beats) -> ROWS (model draft rows, then target rows)
                -> WAIT (for the engine) -> RESP (result held until taken)
  engine FSM    the job sequence DZ_t DS_t ... TZ_t ... RS RX | BX, one job at a time:
                E_IDLE (waiting for the job's row), E_RUN (issue a word per cycle, data one
                cycle later), E_FIN (the job's finish cycle f: test, next threshold), E_DONE;
                a row with top-k / top-p on is preceded by its select passes (FK levels, then FP
                levels, hades/rtl/logit_filter.py), each followed by E_SEL (the bin scan, the
                commit and, after the last FP level, the divider); FP_0 after FK reads no words
                (it reuses FK_0's bins) and goes from FK's last select straight to E_FIN
  emission      which draft token leaves next (model drafts return x_0 .. x_g-1 first)
Probabilities, sums, tokens and addresses live in the datapath (hades/rtl/logit_datapath.py).
"""
from pymtl3 import *

from hades.config import bits_for
from hades.logit_protocol import LogitLayout
from hades.rtl.logit_filter import radix_widths
from hades.rtl.widths import RtlWidths

S_IDLE, S_DRAFT, S_ROWS, S_WAIT, S_RESP = range(5)
STATE_NAMES = ("IDLE", "DRAFT", "ROWS", "WAIT", "RESP")
E_IDLE, E_RUN, E_FIN, E_DONE, E_SEL = range(5)
ENGINE_NAMES = ("idle", "run", "fin", "done", "sel")
J_DZ, J_DS, J_TZ, J_RS, J_RX, J_BX, J_FK, J_FP = range(8)
JOB_NAMES = ("DZ", "DS", "TZ", "RS", "RX", "BX", "FK", "FP")
JOB_BITS = 3

# control -> datapath, connected by name in LogitVerifierRTL; name -> kind of width
CTRL_REGISTERS = {
    "greedy": "1", "onehot": "1", "model_drafts": "1", "gamma": "gamma", "last_beat_index": "beat",
    "last_lane": "lane", "in_beat": "beat", "eng_job": "job", "eng_slot": "gamma", "eng_issue": "beat",
    "eng_data_idx": "beat", "rejected": "1", "accepted": "gamma", "emit_slot": "gamma",
    "eng_sel": "sel", "eng_level": "level", "filt_draft": "1",
}
CTRL_SIGNALS = {
    "in_draft_row": "1", "in_slot": "gamma", "in_last_beat": "1",
    "round_start": "1", "draft_beat": "1", "row_beat": "1", "row_last": "1", "input_done": "1",
    "eng_go": "1", "eng_read": "1", "eng_data": "1", "eng_fin": "1", "eng_last_job": "1",
    "result_load": "1", "emit_draft": "1", "send_draft_msg": "1", "eng_selecting": "1", "filter_job": "1",
}
CTRL_TO_DPATH = {**CTRL_REGISTERS, **CTRL_SIGNALS}
DPATH_TO_CTRL = {"hdr_greedy": "1", "hdr_onehot": "1", "hdr_gamma": "gamma", "hdr_last_beat_index": "beat",
                 "hdr_last_lane": "lane", "accept_ok": "1", "greedy_match": "1", "cross_found": "1",
                 "emit_held": "1", "hdr_dk_on": "1", "hdr_dp_on": "1", "hdr_tk_on": "1", "hdr_tp_on": "1"}


def port_width(kind: str, w: RtlWidths, lay: LogitLayout) -> int:
    _, _, sel_bits, level_bits = radix_widths(lay)
    return {"1": 1, "gamma": w.gamma_bits, "beat": w.beat_index_bits, "lane": w.lane_bits,
            "job": JOB_BITS, "sel": sel_bits, "level": level_bits}[kind]


class LogitCtrl(Component):

    def construct(s, w, lay):
        assert isinstance(w, RtlWidths) and isinstance(lay, LogitLayout)
        s.build_ports(w, lay)
        s.build_input(w)
        s.build_filter_sequence(w, lay)
        s.build_engine(w)
        s.build_emission(w)

    def build_ports(s, w, lay):
        s.recv_val = InPort()
        s.recv_rdy = OutPort()
        s.send_val = OutPort()
        s.send_rdy = InPort()
        for name, kind in DPATH_TO_CTRL.items():
            setattr(s, name, InPort(port_width(kind, w, lay)))
        for name, kind in CTRL_TO_DPATH.items():
            setattr(s, name, OutPort(port_width(kind, w, lay)))

    # ---- which select passes a row gets (the filter flags of the round's header) ----------
    def build_filter_sequence(s, w, lay):
        JobT = mk_bits(JOB_BITS)
        _, _, SELB, LVB = radix_widths(lay)
        SelT = mk_bits(SELB)
        SEL_COMMIT = SelT(1 << lay.radix_bits)                       # scan 0..2^b - 1, commit
        SEL_DIVIDED = SelT((1 << lay.radix_bits) + lay.divide_cycles)  # the divider's last step
        LAST_LEVEL = mk_bits(LVB)(lay.filter_levels - 1)
        s.dk_on = Wire()
        s.dp_on = Wire()
        s.tk_on = Wire()
        s.tp_on = Wire()
        s.draft_entry = Wire(JobT)        # the first job over a draft row: FK, FP or DZ
        s.target_entry = Wire(JobT)       # ... over a target row: FK, FP or TZ
        s.hdr_draft_entry = Wire(JobT)    # the same from the header, at the round's start
        s.hdr_target_entry = Wire(JobT)
        s.side_tp_on = Wire()
        s.last_level = Wire()
        s.sel_done = Wire()               # the last select cycle of a pass

        @update
        def up_filter_sequence():
            if s.dk_on:
                s.draft_entry @= J_FK
            elif s.dp_on:
                s.draft_entry @= J_FP
            else:
                s.draft_entry @= J_DZ
            if s.tk_on:
                s.target_entry @= J_FK
            elif s.tp_on:
                s.target_entry @= J_FP
            else:
                s.target_entry @= J_TZ
            if s.hdr_dk_on:
                s.hdr_draft_entry @= J_FK
            elif s.hdr_dp_on:
                s.hdr_draft_entry @= J_FP
            else:
                s.hdr_draft_entry @= J_DZ
            if s.hdr_tk_on:
                s.hdr_target_entry @= J_FK
            elif s.hdr_tp_on:
                s.hdr_target_entry @= J_FP
            else:
                s.hdr_target_entry @= J_TZ
            if s.filt_draft:
                s.side_tp_on @= s.dp_on
            else:
                s.side_tp_on @= s.tp_on
            s.filter_job @= (s.eng_job == J_FK) | (s.eng_job == J_FP)
            s.last_level @= s.eng_level == LAST_LEVEL
            s.eng_selecting @= s.eng_state == E_SEL
            if (s.eng_job == J_FP) & s.last_level:
                s.sel_done @= s.eng_selecting & (s.eng_sel == SEL_DIVIDED)
            else:
                s.sel_done @= s.eng_selecting & (s.eng_sel == SEL_COMMIT)

        @update_ff
        def up_filter_flags():
            if s.round_start:
                s.dk_on <<= s.hdr_dk_on
                s.dp_on <<= s.hdr_dp_on
                s.tk_on <<= s.hdr_tk_on
                s.tp_on <<= s.hdr_tp_on

    # ---- input FSM ------------------------------------------------------------------------
    def build_input(s, w):
        ROW_BITS = bits_for(2 * w.gamma_max + 1)
        RowT = mk_bits(ROW_BITS)
        s.state = Wire(3)
        s.row = Wire(RowT)            # row of the stream: model draft rows, then target rows
        s.rows_in = Wire(RowT)        # rows whose last beat has arrived
        s.last_row = Wire(RowT)       # 2 gamma with model drafts, else gamma
        s.fire = Wire()
        s.advance = Wire()
        s.gamma_row = Wire(RowT)

        @update
        def up_input_signals():
            s.recv_rdy @= (s.state == S_IDLE) | (s.state == S_DRAFT) | (s.state == S_ROWS)
            s.fire @= s.recv_val & s.recv_rdy
            s.advance @= s.fire & ~s.reset
            s.gamma_row @= zext(s.gamma, ROW_BITS)
            s.in_draft_row @= s.model_drafts & (s.row < s.gamma_row)
            if s.model_drafts & (s.row >= s.gamma_row):
                s.in_slot @= trunc(s.row - s.gamma_row, w.gamma_bits)
            else:
                s.in_slot @= trunc(s.row, w.gamma_bits)
            s.in_last_beat @= s.in_beat == s.last_beat_index
            s.round_start @= s.advance & (s.state == S_IDLE)
            s.draft_beat @= s.advance & (s.state == S_DRAFT)
            s.row_beat @= s.advance & (s.state == S_ROWS)
            s.row_last @= s.row_beat & s.in_last_beat
            s.input_done @= s.row_last & (s.row == s.last_row)
            s.result_load @= ~s.reset & (s.state == S_WAIT) & (s.eng_state == E_DONE)

        @update_ff
        def up_input_fsm():
            if s.reset:
                s.state <<= S_IDLE
            elif s.state == S_IDLE:
                if s.fire:
                    s.greedy <<= s.hdr_greedy
                    s.onehot <<= s.hdr_onehot
                    s.model_drafts <<= ~s.hdr_onehot & (s.hdr_gamma != 0)
                    s.gamma <<= s.hdr_gamma
                    s.last_beat_index <<= s.hdr_last_beat_index
                    s.last_lane <<= s.hdr_last_lane
                    if ~s.hdr_onehot & (s.hdr_gamma != 0):
                        s.last_row <<= zext(s.hdr_gamma, ROW_BITS) << 1
                    else:
                        s.last_row <<= zext(s.hdr_gamma, ROW_BITS)
                    s.row <<= 0
                    s.rows_in <<= 0
                    s.in_beat <<= 0
                    if s.hdr_gamma == 0:
                        s.state <<= S_ROWS
                    else:
                        s.state <<= S_DRAFT
            elif s.state == S_DRAFT:
                if s.fire:
                    if s.row == s.gamma_row - 1:
                        s.row <<= 0
                        s.state <<= S_ROWS
                    else:
                        s.row <<= s.row + 1
            elif s.state == S_ROWS:
                if s.fire:
                    if s.in_last_beat:
                        s.in_beat <<= 0
                        s.rows_in <<= s.rows_in + 1
                        if s.row == s.last_row:
                            s.state <<= S_WAIT
                        else:
                            s.row <<= s.row + 1
                    else:
                        s.in_beat <<= s.in_beat + 1
            elif s.state == S_WAIT:
                if s.result_load:
                    s.state <<= S_RESP
            elif s.state == S_RESP:
                if s.send_val & s.send_rdy & ~s.send_draft_msg:
                    s.state <<= S_IDLE

    # ---- engine FSM -----------------------------------------------------------------------
    def build_engine(s, w):
        ROW_BITS = bits_for(2 * w.gamma_max + 1)
        RowT = mk_bits(ROW_BITS)
        s.eng_state = Wire(3)
        s.job_row = Wire(RowT)        # the stream row the next job reads (RS/RX: target row j)
        s.job_ready = Wire()
        s.job_words_done = Wire()     # the data on this cycle is the job's last word
        s.sampler_job = Wire()

        @update
        def up_engine_signals():
            if (s.eng_job == J_DZ) | (s.eng_job == J_DS) | (s.filter_job & s.filt_draft) | ~s.model_drafts:
                s.job_row @= zext(s.eng_slot, ROW_BITS)
            else:
                s.job_row @= zext(s.eng_slot, ROW_BITS) + s.gamma_row
            s.job_ready @= s.rows_in > s.job_row
            s.sampler_job @= (s.eng_job == J_DS) | (s.eng_job == J_RX) | (s.eng_job == J_BX)
            s.eng_go @= ~s.reset & (s.eng_state == E_IDLE) & (s.state != S_IDLE) & s.job_ready
            s.eng_read @= s.eng_go | (s.eng_state == E_RUN)
            s.eng_data @= (s.eng_state == E_RUN)
            if s.sampler_job:
                s.job_words_done @= s.eng_data & (s.cross_found | (s.eng_data_idx == s.last_beat_index))
            else:
                s.job_words_done @= s.eng_data & (s.eng_data_idx == s.last_beat_index)
            s.eng_fin @= ~s.reset & (s.eng_state == E_FIN)
            s.eng_last_job @= (s.eng_job == J_RX) | (s.eng_job == J_BX)

        # E_IDLE issues word 0 in the cycle its row is ready (eng_go), E_RUN the rest; the
        # data of the word issued at c is processed at c + 1 (eng_data_idx)
        @update_ff
        def up_engine_fsm():
            if s.reset:
                s.eng_state <<= E_DONE
            elif s.round_start:
                s.rejected <<= 0
                s.accepted <<= 0
                if s.hdr_greedy:
                    s.eng_state <<= E_DONE
                else:
                    s.eng_state <<= E_IDLE
                    s.eng_slot <<= 0
                    s.eng_level <<= 0
                    if ~s.hdr_onehot & (s.hdr_gamma != 0):
                        s.eng_job <<= s.hdr_draft_entry
                        s.filt_draft <<= 1
                    else:
                        s.eng_job <<= s.hdr_target_entry
                        s.filt_draft <<= 0
            elif s.eng_state == E_IDLE:
                if s.eng_go:
                    s.eng_state <<= E_RUN
                    s.eng_issue <<= 1
                    s.eng_data_idx <<= 0
            elif s.eng_state == E_RUN:
                if s.eng_issue != s.last_beat_index:
                    s.eng_issue <<= s.eng_issue + 1
                s.eng_data_idx <<= s.eng_data_idx + 1
                if s.job_words_done:
                    s.eng_state <<= E_FIN
            elif s.eng_state == E_SEL:
                s.eng_sel <<= s.eng_sel + 1
                if s.sel_done:
                    s.eng_state <<= E_IDLE
                    if ~s.last_level:
                        s.eng_level <<= s.eng_level + 1
                    else:
                        s.eng_level <<= 0
                        if (s.eng_job == J_FK) & s.side_tp_on:
                            s.eng_job <<= J_FP
                            s.eng_state <<= E_FIN    # FP_0 reuses FK_0's bins: no pass, its select at once
                        elif s.filt_draft:
                            s.eng_job <<= J_DZ
                        else:
                            s.eng_job <<= J_TZ
            elif (s.eng_state == E_FIN) & s.filter_job:
                s.eng_state <<= E_SEL
                s.eng_sel <<= 0
            elif s.eng_state == E_FIN:
                s.eng_state <<= E_IDLE
                if s.eng_job == J_DZ:
                    s.eng_job <<= J_DS
                elif s.eng_job == J_DS:
                    if s.eng_slot == s.gamma - 1:
                        s.eng_job <<= s.target_entry
                        s.filt_draft <<= 0
                        s.eng_slot <<= 0
                    else:
                        s.eng_job <<= s.draft_entry
                        s.eng_slot <<= s.eng_slot + 1
                elif s.eng_job == J_TZ:
                    if s.eng_slot == s.gamma:
                        s.eng_job <<= J_BX
                    elif s.accept_ok:
                        s.eng_job <<= s.target_entry
                        s.eng_slot <<= s.eng_slot + 1
                    else:
                        s.rejected <<= 1
                        s.accepted <<= s.eng_slot
                        s.eng_job <<= J_RS
                elif s.eng_job == J_RS:
                    s.eng_job <<= J_RX
                else:
                    s.eng_state <<= E_DONE
            # greedy rounds: the input pass decides (the datapath's argmax at a row's end)
            if ~s.reset & ~s.round_start & s.greedy & s.row_last & ~s.in_draft_row & ~s.rejected:
                if (s.in_slot != s.gamma) & ~s.greedy_match:
                    s.rejected <<= 1
                    s.accepted <<= s.in_slot

    # ---- emission -------------------------------------------------------------------------
    def build_emission(s, w):
        s.result_pending = Wire()

        @update
        def up_emission_signals():
            s.emit_draft @= s.model_drafts & (s.emit_slot != s.gamma) & s.emit_held & (s.state != S_IDLE)
            s.result_pending @= (s.state == S_RESP) & (~s.model_drafts | (s.emit_slot == s.gamma))
            s.send_val @= s.emit_draft | s.result_pending
            s.send_draft_msg @= s.emit_draft

        @update_ff
        def up_emission():
            if s.reset | s.round_start:
                s.emit_slot <<= 0
            elif s.emit_draft & s.send_rdy:
                s.emit_slot <<= s.emit_slot + 1
