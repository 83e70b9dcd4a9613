"""TreeVerifierRTL: the tree block (docs/ARCHITECTURE.md "The tree block"), a control unit
(hades/rtl/tree_control.py: input FSM, node table, the walk, the engine's jobs) driving a
datapath (hades/rtl/tree_datapath.py: decode, row maxima, two row buffers, weights, the
residual with a_i and b_i, the top-k / top-p select and keep masks, the crossing, accept
test, result), as LogitVerifierRTL. One lane group (L <= 32)."""
from pymtl3 import *
from pymtl3.stdlib.stream.ifcs import SendIfcRTL

from hades.config import TreeConfig
from hades.rtl.beats import BeatRecvIfc
from hades.rtl.tree_control import CTRL_TO_DPATH, DPATH_TO_CTRL, ENGINE_NAMES, JOB_NAMES, STATE_NAMES, TreeCtrl
from hades.rtl.tree_datapath import TreeDpath
from hades.rtl.verifier import wire_ctrl_dpath
from hades.tree_protocol import TreeLayout


def require_tree_rtl(tree: TreeConfig) -> TreeLayout:
    """The layout, after the checks the tree RTL needs (ConfigError; a beat of more than 32
    lanes is past PyMTL3's 1023 bits, so the block has one lane group)."""
    lay = TreeLayout(tree)
    lay.require_rtl()
    return lay


class TreeVerifierRTL(Component):

    def construct(s, tree):
        assert isinstance(tree, TreeConfig)
        lay = require_tree_rtl(tree)
        s.recv = BeatRecvIfc(1, lay.beat_bits)
        s.send = SendIfcRTL(mk_bits(lay.result_bits))
        s.ctrl = TreeCtrl(lay)
        s.dpath = TreeDpath(lay)
        wire_ctrl_dpath(s, CTRL_TO_DPATH, DPATH_TO_CTRL)

    def line_trace(s):
        st, es, job = int(s.ctrl.state), int(s.ctrl.eng_state), int(s.ctrl.eng_job)
        return (f"{STATE_NAMES[st]:5} n{int(s.ctrl.in_node)}{'d' if s.ctrl.in_is_draft else 't'} "
                f"b{int(s.ctrl.in_beat)} | {ENGINE_NAMES[es]:4} {JOB_NAMES[job] if job < len(JOB_NAMES) else '?'} "
                f"@{int(s.ctrl.walk_node)} c{int(s.ctrl.cur_child)} w{int(s.ctrl.eng_data_idx)} {s.send}")
