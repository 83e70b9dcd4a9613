"""VerifierRTL: the synthesizable verifier block (docs/ARCHITECTURE.md has the diagram).

It is a control unit (hades/rtl/control.py: the round FSM and the accept decision) driving a
datapath (hades/rtl/datapath.py: register file, SRAM, lane units, row statistics, bonus
sampler, residual scan, result), the way pymtl3's ProcCtrlRTL drives ProcDpathRTL.

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

from hades.config import VerifierConfig
from hades.rtl.control import CTRL_TO_DPATH, DPATH_TO_CTRL, STATE_NAMES, VerifierCtrl
from hades.rtl.datapath import VerifierDpath
from hades.rtl.widths import RtlWidths


def wire_ctrl_dpath(top, ctrl_to_dpath, dpath_to_ctrl) -> None:
    """The wiring both verifier tops share: the input stream's valid/ready to the control and
    its message to the datapath, the output's valid/ready to the control and its message from
    the datapath, and every control <-> datapath port by name."""
    top.ctrl.recv_val //= top.recv.val
    top.recv.rdy //= top.ctrl.recv_rdy
    if isinstance(top.recv.msg, list):      # the logit block's lane groups (hades/rtl/beats.py)
        top.dpath.msg //= top.recv.msg[0]
        for port, group in zip(top.dpath.msg_upper, top.recv.msg[1:], strict=True):
            connect(port, group)
    else:
        top.dpath.msg //= top.recv.msg
    top.send.val //= top.ctrl.send_val
    top.ctrl.send_rdy //= top.send.rdy
    top.send.msg //= top.dpath.result
    for name in ctrl_to_dpath:
        connect(getattr(top.ctrl, name), getattr(top.dpath, name))
    for name in dpath_to_ctrl:
        connect(getattr(top.dpath, name), getattr(top.ctrl, name))


class VerifierRTL(Component):

    def construct(s, cfg):
        assert isinstance(cfg, VerifierConfig)
        cfg.require_rtl()
        w = RtlWidths.from_config(cfg)

        s.recv = RecvIfcRTL(mk_bits(w.beat_bits))
        s.send = SendIfcRTL(mk_bits(w.result_bits))
        s.ctrl = VerifierCtrl(w)
        s.dpath = VerifierDpath(w)

        wire_ctrl_dpath(s, CTRL_TO_DPATH, DPATH_TO_CTRL)

    def line_trace(s):
        st = int(s.ctrl.state)
        return (f"{STATE_NAMES[st] if st < len(STATE_NAMES) else '?':5} t{int(s.ctrl.row)} b{int(s.ctrl.beat_index)} "
                f"{'R' if s.ctrl.rejected else ' '}{'S' if s.dpath.scan_active else ' '} {s.send}")
