"""The logit block's input beat as lane groups (docs/ARCHITECTURE.md "Lane groups").

PyMTL3 signals stop at 1023 bits, and a beat of L bf16 lanes is 16 L bits, so from L = 64 on a
beat travels as LogitLayout.beat_groups: one signal per group of GROUP_LANES = 32 lanes (512
bits), group 0 also carrying the header and draft beats' fields. Up to L = 32 there is one
group, the whole beat. The same split is the row buffers' banking (hades/rtl/sram.py,
SramBanks): bank g stores group g's lanes, every bank at the same address.

BeatRecvIfc / BeatSendIfc(groups, bits) are the stream's val/rdy pair with that message list
(every group is as wide: 512 bits, or the whole beat when there is one; integer arguments
only, as pymtl3's Verilator import needs); the FL, CL and
RTL components of the logit block all receive on a BeatRecvIfc, the test source sends on a
BeatSendIfc (pymtl3 connects the two by name, list to list).
"""
from pymtl3 import *


class BeatRecvIfc(Interface):

    def construct(s, groups, bits):
        s.group_bits = (bits,) * groups
        s.msg = [InPort(bits) for _ in range(groups)]
        s.val = InPort()
        s.rdy = OutPort()

    def __str__(s):
        return f"{'v' if s.val else ' '}{'r' if s.rdy else ' '}"


class BeatSendIfc(Interface):

    def construct(s, groups, bits):
        s.group_bits = (bits,) * groups
        s.msg = [OutPort(bits) for _ in range(groups)]
        s.val = OutPort()
        s.rdy = InPort()

    def __str__(s):
        return f"{'v' if s.val else ' '}{'r' if s.rdy else ' '}"


def beat_value(ifc) -> int:
    """The beat on a BeatRecvIfc as one Python int (group 0 in the low bits)."""
    value, pos = 0, 0
    for port, bits in zip(ifc.msg, ifc.group_bits):
        value |= int(port) << pos
        pos += bits
    return value


class LaneGroupSplit(Component):
    """`groups` words of word_bits bits, each holding group_lanes entries of nbits in its low bits
    -> groups * group_lanes entries; entry g * group_lanes + j is lane j of group g. With one
    group this is hades.rtl.lanes.LaneSplit over the word's low bits. (Integer parameters only:
    pymtl3 spells them into the Verilog module's name.)"""

    def construct(s, groups, word_bits, group_lanes, nbits):
        s.word = [InPort(word_bits) for _ in range(groups)]
        s.lane = [OutPort(nbits) for _ in range(groups * group_lanes)]
        for g in range(groups):
            for j in range(group_lanes):
                s.lane[g * group_lanes + j] //= s.word[g][j * nbits:(j + 1) * nbits]
