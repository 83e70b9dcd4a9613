"""LogitVerifierRTL: the logit block (docs/ARCHITECTURE.md "The logit block"), a control unit
(hades/rtl/logit_control.py: input FSM, engine job sequence, emission) driving a datapath
(hades/rtl/logit_datapath.py: decode, row maxima, two row buffers, weights, residual, the
inverse-CDF crossing, accept test, result), like VerifierRTL for probability rows."""
from pymtl3 import *
from pymtl3.stdlib.stream.ifcs import SendIfcRTL

from hades.config import VerifierConfig
from hades.logit_protocol import LogitLayout
from hades.rtl.beats import BeatRecvIfc
from hades.rtl.logit_control import (CTRL_TO_DPATH, DPATH_TO_CTRL, ENGINE_NAMES, JOB_NAMES, STATE_NAMES,
                                     LogitCtrl)
from hades.rtl.logit_datapath import LogitDpath
from hades.rtl.verifier import wire_ctrl_dpath
from hades.rtl.widths import RtlWidths


class LogitVerifierRTL(Component):

    def construct(s, cfg):
        assert isinstance(cfg, VerifierConfig)
        lay = LogitLayout(cfg)
        lay.require_rtl()
        w = RtlWidths.from_config(cfg)

        s.recv = BeatRecvIfc(lay.lane_groups, lay.group_bits)     # lane groups of <= 512 bits (hades/rtl/beats.py)
        s.send = SendIfcRTL(mk_bits(lay.result_bits))
        s.ctrl = LogitCtrl(w, lay)
        s.dpath = LogitDpath(w, lay)

        wire_ctrl_dpath(s, CTRL_TO_DPATH, DPATH_TO_CTRL)

    def line_trace(s):
        st, es, job = int(s.ctrl.state), int(s.ctrl.eng_state), int(s.ctrl.eng_job)
        return (f"{STATE_NAMES[st]:5} r{int(s.ctrl.row)} b{int(s.ctrl.in_beat)} | "
                f"{ENGINE_NAMES[es]:4} {JOB_NAMES[job] if job < len(JOB_NAMES) else '?'}{int(s.ctrl.eng_slot)} "
                f"w{int(s.ctrl.eng_data_idx)} {'R' if s.ctrl.rejected else ' '} {s.send}")
