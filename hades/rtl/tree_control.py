"""TreeCtrl: the control unit of the tree block (docs/ARCHITECTURE.md "The tree block").

  input FSM    IDLE -> NODES (N descriptor beats) -> ROWS (node by node: a sampled internal
               node's draft row, then its target row) -> WAIT (for the engine) -> RESP
  node table   per node its parent and token (from the descriptors) and whether it has
               children; two searches over it: the next untested child of the walk's node
               (the first node after `sib_after` whose parent is that node) and the child whose
               token is a given y (deterministic and greedy children, distinct tokens)
  walk         the node the walk is at, the last rejected sibling, the depth
  engine FSM   E_IDLE (waiting for the job's rows) -> E_RUN (a word per cycle, data one cycle
               later) -> E_FIN (the job's finish: the accept test, the match) -> ... -> E_DONE,
               a row with top-k / top-p on preceded by its select passes (FK levels, then FP
               levels, each followed by E_SEL: the bin scan, the commit, the divider after the
               last FP level; FP_0 after FK reads no words), as the logit block's control;
               the jobs of hades/cl/tree_timing.py: DZ TZ RS* RX at a sampled internal node,
               TZ QX at a deterministic node or a sampled leaf (QX: the sample of Q_n, the CL
               model's TX and BX); greedy rounds run no job (the walk moves at each target
               row's last beat, on the input pass's argmax)
Rows, sums, uniforms and tokens sampled live in the datapath (hades/rtl/tree_datapath.py).
"""
from pymtl3 import *

from hades.config import clog2
from hades.rtl.lanes import OneHotEncoder
from hades.rtl.logit_filter import radix_widths
from hades.tree_protocol import SCHEME_BITS, SCHEME_CODE, TreeLayout

S_IDLE, S_NODES, S_ROWS, S_WAIT, S_RESP = range(5)
STATE_NAMES = ("IDLE", "NODES", "ROWS", "WAIT", "RESP")
E_IDLE, E_RUN, E_FIN, E_DONE, E_SEL = range(5)
ENGINE_NAMES = ("idle", "run", "fin", "done", "sel")
J_DZ, J_TZ, J_RS, J_RX, J_QX, J_FK, J_FP = range(7)
JOB_NAMES = ("DZ", "TZ", "RS", "RX", "QX", "FK", "FP")
JOB_BITS = 3
GREEDY, DETERMINISTIC, SAMPLED = SCHEME_CODE["greedy"], SCHEME_CODE["deterministic"], SCHEME_CODE["sampled"]

# control <-> datapath ports, connected by name in TreeVerifierRTL; name -> kind of width
CTRL_TO_DPATH = {
    "scheme": "scheme", "round_start": "1", "node_beat": "1", "row_beat": "1", "row_last": "1",
    "in_node": "node", "in_is_draft": "1", "in_beat": "beat", "last_beat_index": "beat", "last_lane": "lane",
    "input_done": "1", "result_load": "1", "eng_go": "1", "eng_data": "1", "eng_fin": "1", "eng_job": "job",
    "eng_issue": "beat", "eng_data_idx": "beat", "eng_reject": "1", "walk_node": "node", "cur_child": "node",
    "child_token": "token", "depth": "count", "greedy_stop": "1",
    "eng_sel": "sel", "eng_level": "level", "filt_draft": "1", "eng_selecting": "1", "filter_job": "1",
}
DPATH_TO_CTRL = {
    "hdr_scheme": "scheme", "hdr_nodes": "count", "hdr_last_beat_index": "beat", "hdr_last_lane": "lane",
    "node_parent": "node", "node_token": "token", "accept_ok": "1", "cross_found": "1", "argmax": "token",
    "emitted": "token", "hdr_dk_on": "1", "hdr_dp_on": "1", "hdr_tk_on": "1", "hdr_tp_on": "1",
}


def port_width(kind: str, lay: TreeLayout) -> int:
    c = lay.tree.hw
    lane_bits = clog2(c.lanes)
    _, _, sel_bits, level_bits = radix_widths(lay.logit)
    return {"sel": sel_bits, "level": level_bits, "1": 1, "scheme": SCHEME_BITS, "node": lay.tree.node_bits, "count": lay.tree.count_bits,
            "beat": c.token_bits - lane_bits, "lane": lane_bits, "token": c.token_bits, "job": JOB_BITS}[kind]


def node_slots(lay: TreeLayout) -> int:
    """Entries of the node table: N_max rounded up to a power of two (the one-hot encoders')."""
    return 1 << clog2(lay.tree.nodes_max)


class TreeCtrl(Component):

    def construct(s, lay):
        assert isinstance(lay, TreeLayout)
        s.recv_val = InPort()
        s.recv_rdy = OutPort()
        s.send_val = OutPort()
        s.send_rdy = InPort()
        for name, kind in DPATH_TO_CTRL.items():
            setattr(s, name, InPort(port_width(kind, lay)))
        for name, kind in CTRL_TO_DPATH.items():
            setattr(s, name, OutPort(port_width(kind, lay)))
        s.build_node_table(lay)
        s.build_input(lay)
        s.build_filter_sequence(lay)
        s.build_engine(lay)

    # ---- the node table and its two searches ------------------------------------------------
    def build_node_table(s, lay):
        NS, NB, CB = node_slots(lay), lay.tree.node_bits, lay.tree.count_bits
        NodeT, CountT = mk_bits(NB), mk_bits(CB)
        s.parent = [Wire(NB) for _ in range(NS)]
        s.token = [Wire(lay.tree.hw.token_bits) for _ in range(NS)]
        s.has_kids = [Wire() for _ in range(NS)]
        s.nodes = Wire(CB)                    # N of the round
        s.sib_after = Wire(NB)                # the walk node's last rejected child (or the node itself)
        s.sib_vec = Wire(NS)                  # untested children of the walk's node
        s.sib_first = Wire(NS)
        s.match_vec = Wire(NS)                # children of the walk's node whose token is y
        s.match_first = Wire(NS)
        s.match_y = Wire(lay.tree.hw.token_bits)
        s.cur_valid = Wire()
        s.match_found = Wire()
        s.match_node = Wire(NB)
        s.sib_enc = OneHotEncoder(NS)
        s.match_enc = OneHotEncoder(NS)
        s.sib_enc.in_ //= s.sib_first
        s.match_enc.in_ //= s.match_first
        s.cur_child //= s.sib_enc.out[0:NB]
        s.match_node //= s.match_enc.out[0:NB]
        s.child_token //= lambda: s.token[s.cur_child]

        @update
        def up_node_search():
            if s.scheme == GREEDY:
                s.match_y @= s.argmax
            else:
                s.match_y @= s.emitted
            for m in range(NS):
                s.sib_vec[m] @= ((s.parent[m] == s.walk_node) & (NodeT(m) > s.sib_after)
                                 & (CountT(m) < s.nodes) & (NodeT(m) != 0))
                s.match_vec[m] @= ((s.parent[m] == s.walk_node) & (s.token[m] == s.match_y)
                                   & (CountT(m) < s.nodes) & (NodeT(m) != 0))
            # the lowest set bit: v & -v
            s.sib_first @= s.sib_vec & (~s.sib_vec + 1)
            s.match_first @= s.match_vec & (~s.match_vec + 1)
            s.cur_valid @= s.sib_vec != 0
            s.match_found @= s.match_vec != 0

        @update_ff
        def up_node_table():
            if s.round_start:
                for m in range(NS):
                    s.has_kids[m] <<= 0
            if s.node_beat:
                s.parent[s.in_node] <<= s.node_parent
                s.token[s.in_node] <<= s.node_token
                if s.in_node != 0:
                    s.has_kids[s.node_parent] <<= 1

    # ---- input FSM ------------------------------------------------------------------------
    def build_input(s, lay):
        CB = lay.tree.count_bits
        s.state = Wire(3)
        s.fire = Wire()
        s.advance = Wire()
        s.in_last_beat = Wire()
        s.last_node = Wire()                  # in_node is the round's last node
        s.next_is_draft = Wire()              # the next node's first row is a draft row
        s.nodes_m1 = Wire(CB)
        NB = lay.tree.node_bits

        @update
        def up_input_signals():
            s.recv_rdy @= (s.state == S_IDLE) | (s.state == S_NODES) | (s.state == S_ROWS)
            s.fire @= s.recv_val & s.recv_rdy
            s.advance @= s.fire & ~s.reset
            s.nodes_m1 @= s.nodes - 1
            s.last_node @= s.in_node == s.nodes_m1[0:NB]
            s.next_is_draft @= (s.scheme == SAMPLED) & s.has_kids[s.in_node + 1]
            s.in_last_beat @= s.in_beat == s.last_beat_index
            s.round_start @= s.advance & (s.state == S_IDLE)
            s.node_beat @= s.advance & (s.state == S_NODES)
            s.row_beat @= s.advance & (s.state == S_ROWS)
            s.row_last @= s.row_beat & s.in_last_beat
            s.input_done @= s.row_last & ~s.in_is_draft & s.last_node
            s.result_load @= ~s.reset & (s.state == S_WAIT) & (s.eng_state == E_DONE)
            s.send_val @= s.state == S_RESP

        @update_ff
        def up_input_fsm():
            if s.reset:
                s.state <<= S_IDLE
            elif s.state == S_IDLE:
                if s.fire:
                    s.scheme <<= s.hdr_scheme
                    s.nodes <<= s.hdr_nodes
                    s.last_beat_index <<= s.hdr_last_beat_index
                    s.last_lane <<= s.hdr_last_lane
                    s.in_node <<= 0
                    s.in_beat <<= 0
                    s.state <<= S_NODES
            elif s.state == S_NODES:
                if s.fire:
                    if s.last_node:
                        s.in_node <<= 0
                        # node 0 has children iff N > 1 (node 1's parent is 0)
                        s.in_is_draft <<= (s.scheme == SAMPLED) & (s.nodes != 1)
                        s.state <<= S_ROWS
                    else:
                        s.in_node <<= s.in_node + 1
            elif s.state == S_ROWS:
                if s.fire:
                    if s.in_last_beat:
                        s.in_beat <<= 0
                        if s.in_is_draft:
                            s.in_is_draft <<= 0
                        elif s.last_node:
                            s.state <<= S_WAIT
                        else:
                            s.in_node <<= s.in_node + 1
                            s.in_is_draft <<= s.next_is_draft
                    else:
                        s.in_beat <<= s.in_beat + 1
            elif s.state == S_WAIT:
                if s.result_load:
                    s.state <<= S_RESP
            elif s.state == S_RESP:
                if s.send_val & s.send_rdy:
                    s.state <<= S_IDLE

    # ---- which select passes a row gets (the round's filter flags) -----------------------------
    def build_filter_sequence(s, lay):
        lg = lay.logit
        JobT = mk_bits(JOB_BITS)
        _, _, SELB, LVB = radix_widths(lg)
        SelT = mk_bits(SELB)
        SEL_COMMIT = SelT(1 << lg.radix_bits)                       # scan 0..2^b - 1, commit
        SEL_DIVIDED = SelT((1 << lg.radix_bits) + lg.divide_cycles)  # the divider's last step
        LAST_LEVEL = mk_bits(LVB)(lg.filter_levels - 1)
        s.dk_on = Wire()                  # draft rows (sampled rounds only), target rows (not greedy)
        s.dp_on = Wire()
        s.tk_on = Wire()
        s.tp_on = Wire()
        s.draft_entry = Wire(JobT)        # the first job over a draft row: FK, FP or DZ
        s.target_entry = Wire(JobT)       # ... over a target row: FK, FP or TZ
        s.hdr_draft_entry = Wire(JobT)    # the same from the header, at the round's start
        s.hdr_target_entry = Wire(JobT)
        s.hdr_d_live = Wire()
        s.hdr_t_live = Wire()
        s.side_tp_on = Wire()
        s.last_level = Wire()
        s.sel_done = Wire()

        @update
        def up_tree_filter_sequence():
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
            s.hdr_d_live @= s.hdr_scheme == SAMPLED
            s.hdr_t_live @= s.hdr_scheme != GREEDY
            if s.hdr_d_live & s.hdr_dk_on:
                s.hdr_draft_entry @= J_FK
            elif s.hdr_d_live & s.hdr_dp_on:
                s.hdr_draft_entry @= J_FP
            else:
                s.hdr_draft_entry @= J_DZ
            if s.hdr_t_live & s.hdr_tk_on:
                s.hdr_target_entry @= J_FK
            elif s.hdr_t_live & s.hdr_tp_on:
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
        def up_tree_filter_flags():
            if s.round_start:
                s.dk_on <<= s.hdr_d_live & s.hdr_dk_on
                s.dp_on <<= s.hdr_d_live & s.hdr_dp_on
                s.tk_on <<= s.hdr_t_live & s.hdr_tk_on
                s.tp_on <<= s.hdr_t_live & s.hdr_tp_on

    # ---- the walk and the engine FSM ----------------------------------------------------------
    def build_engine(s, lay):
        s.eng_state = Wire(3)
        s.job_ready = Wire()
        s.rows_on = Wire()                    # the input is in its rows or done with them
        s.target_in = Wire()                  # the walk node's target row has arrived
        s.draft_in = Wire()                   # ... its draft row
        s.sampler_job = Wire()
        s.job_words_done = Wire()
        s.tested = Wire()                     # this finish is an accept test (TZ or RS of a sampled child)
        s.entry_job = Wire(JOB_BITS)          # the first job at the node the walk moves to
        s.entry_draft = Wire()                # ... over its draft row
        s.walk_kids = Wire()
        s.stopped = Wire()                    # greedy: the walk has emitted its token

        @update
        def up_engine_signals():
            s.rows_on @= (s.state == S_ROWS) | (s.state == S_WAIT)
            s.target_in @= (s.state == S_WAIT) | ((s.state == S_ROWS) & (s.in_node > s.walk_node))
            s.draft_in @= s.target_in | ((s.state == S_ROWS) & (s.in_node == s.walk_node) & ~s.in_is_draft)
            if (s.eng_job == J_DZ) | (s.filter_job & s.filt_draft):
                s.job_ready @= s.draft_in
            else:
                s.job_ready @= s.target_in
            s.sampler_job @= (s.eng_job == J_RX) | (s.eng_job == J_QX)
            s.eng_go @= ~s.reset & (s.eng_state == E_IDLE) & s.rows_on & s.job_ready
            s.eng_data @= s.eng_state == E_RUN
            if s.sampler_job:
                s.job_words_done @= s.eng_data & (s.cross_found | (s.eng_data_idx == s.last_beat_index))
            else:
                s.job_words_done @= s.eng_data & (s.eng_data_idx == s.last_beat_index)
            s.eng_fin @= ~s.reset & (s.eng_state == E_FIN)
            s.walk_kids @= s.has_kids[s.walk_node]
            s.tested @= (s.scheme == SAMPLED) & s.walk_kids & s.cur_valid & ((s.eng_job == J_TZ) | (s.eng_job == J_RS))
            s.eng_reject @= s.eng_fin & s.tested & ~s.accept_ok
            # greedy: the walk node's target row ends; follow the child holding the argmax
            s.greedy_stop @= ((s.scheme == GREEDY) & s.row_last & ~s.in_is_draft & (s.in_node == s.walk_node)
                              & ~s.stopped & ~s.match_found)
            # a deterministic move (after QX) starts at the child's target row; a sampled one at
            # its draft row unless the child is a leaf (the row's select passes first)
            s.entry_draft @= (s.eng_job != J_QX) & s.has_kids[s.cur_child]
            if s.entry_draft:
                s.entry_job @= s.draft_entry
            else:
                s.entry_job @= s.target_entry

        @update_ff
        def up_engine_fsm():
            if s.reset:
                s.eng_state <<= E_DONE
            elif s.round_start:
                s.walk_node <<= 0
                s.sib_after <<= 0
                s.depth <<= 0
                s.stopped <<= 0
                s.eng_level <<= 0
                if s.hdr_scheme == GREEDY:
                    s.eng_state <<= E_DONE
                else:
                    s.eng_state <<= E_IDLE
                    if (s.hdr_scheme == SAMPLED) & (s.hdr_nodes != 1):
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
                    s.eng_job <<= s.target_entry
                    s.filt_draft <<= 0
                elif s.tested & s.accept_ok:          # move to the accepted child
                    s.walk_node <<= s.cur_child
                    s.sib_after <<= s.cur_child
                    s.depth <<= s.depth + 1
                    s.eng_job <<= s.entry_job
                    s.filt_draft <<= s.entry_draft
                elif s.tested:                        # rejected: a_i, b_i update; the next sum
                    s.sib_after <<= s.cur_child
                    s.eng_job <<= J_RS
                elif s.eng_job == J_TZ:
                    s.eng_job <<= J_QX                # deterministic, or a sampled leaf's bonus sample
                elif s.eng_job == J_RS:
                    s.eng_job <<= J_RX                # every child rejected: the residual sample
                elif (s.eng_job == J_QX) & s.match_found:
                    s.walk_node <<= s.match_node      # deterministic: the child holding y
                    s.sib_after <<= s.match_node
                    s.depth <<= s.depth + 1
                    s.eng_job <<= s.entry_job
                    s.filt_draft <<= 0
                else:
                    s.eng_state <<= E_DONE
            # greedy rounds: the input pass decides at the walk node's target row's end
            if ~s.reset & ~s.round_start & (s.scheme == GREEDY) & s.row_last & ~s.in_is_draft \
                    & (s.in_node == s.walk_node) & ~s.stopped:
                if s.match_found:
                    s.walk_node <<= s.match_node
                    s.depth <<= s.depth + 1
                else:
                    s.stopped <<= 1
