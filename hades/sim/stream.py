"""Test source and sink for the verifier's streams, with seeded random stalls.

BeatSource withholds valid for a random number of cycles between beats; ResultSink drops
ready at random. Both draw from their own numpy Generator, so a run is reproducible from
its seed. The sink checks that a message does not change while valid is high and ready low.
"""
from __future__ import annotations

import numpy as np
from pymtl3 import *
from pymtl3.stdlib.stream.ifcs import RecvIfcRTL, SendIfcRTL

from hades.rtl.beats import BeatSendIfc


class StreamProtocolError(AssertionError):
    pass


class BeatSource(Component):

    def construct(s, Type, beats, stall_prob=0.0, max_stall=3, seed=0, split=None):
        """split: None, one message of Type per beat; else a function beat -> list of lane-group
        values (LogitLayout.split_beat), sent on a BeatSendIfc of those groups (Type: their widths)."""
        s.send = SendIfcRTL(Type) if split is None else BeatSendIfc(len(Type), Type[0])
        s.beats = beats
        if split is not None:
            # one combinational driver per group, indexed by a registered beat index: an
            # update_ff writing s.send.msg[g] for a variable g loses writes in pymtl3's Python
            # simulation (the net's representative signal is chosen per run)
            groups = [split(b) for b in beats]
            s.index = Wire(32)
            s.group = [GroupMessage(bits, [beat[g] for beat in groups]) for g, bits in enumerate(Type)]
            for g, driver in enumerate(s.group):
                driver.index //= s.index
                s.send.msg[g] //= driver.out
        s.idx = 0
        s.count = 0
        s.rng = np.random.default_rng(seed)
        s.stall_prob = stall_prob

        def draw():
            if stall_prob and s.rng.random() < stall_prob:
                return int(s.rng.integers(1, max_stall + 1))
            return 0

        def step(fired) -> int | None:
            """The beat to present in the next cycle (None: valid low), after this cycle's handshake."""
            if fired:
                s.idx += 1
                s.count = draw()
            if s.count > 0:
                s.count -= 1
                return None
            return s.idx if s.idx < len(s.beats) else None

        # two blocks, not one with a branch: pymtl3 counts every port a block may write
        if split is None:
            @update_ff
            def up_src():
                if s.reset:
                    s.idx = 0
                    s.count = draw()
                    s.send.val <<= 0
                    return
                i = step(s.send.val & s.send.rdy)
                s.send.val <<= i is not None
                if i is not None:
                    s.send.msg <<= s.beats[i]
        else:
            @update_ff
            def up_src_groups():
                if s.reset:
                    s.idx = 0
                    s.count = draw()
                    s.send.val <<= 0
                    return
                i = step(s.send.val & s.send.rdy)
                s.send.val <<= i is not None
                if i is not None:
                    s.index <<= i

    def line_trace(s):
        return f"{s.send}"


class GroupMessage(Component):
    """One lane group of BeatSource's current beat: values[index] (0 past the end)."""

    def construct(s, nbits, values):
        BitsT = mk_bits(nbits)
        table = list(values) + [0]      # plain ints (a Bits per beat would double a long trace's memory)
        last = len(values)
        s.index = InPort(32)
        s.out = OutPort(nbits)

        @update
        def up_group_message():
            s.out @= BitsT(table[min(int(s.index), last)])


class ResultSink(Component):

    def construct(s, Type, stall_prob=0.0, seed=1):
        s.recv = RecvIfcRTL(Type)
        s.received = []          # (cycle, int message)
        s.rng = np.random.default_rng(seed)
        s.cycle = 0
        s.held = None

        @update_ff
        def up_sink():
            if s.reset:
                s.cycle = 0
                s.recv.rdy <<= 0
                return
            if s.recv.val:
                msg = int(s.recv.msg)
                if s.held is not None and s.held != msg:
                    raise StreamProtocolError(f"result changed while valid at cycle {s.cycle}")
                if s.recv.rdy:
                    s.received.append((s.cycle, msg))
                    s.held = None
                else:
                    s.held = msg
            s.cycle += 1
            s.recv.rdy <<= not (stall_prob and s.rng.random() < stall_prob)

    def line_trace(s):
        return f"{s.recv}"


class VerifierHarness(Component):

    def construct(s, dut, Type_in, Type_out, beats, src_stall=0.0, sink_stall=0.0, seed=0, split=None):
        s.src = BeatSource(Type_in, beats, src_stall, 3, seed, split)
        s.dut = dut
        s.sink = ResultSink(Type_out, sink_stall, seed + 1)
        s.src.send //= s.dut.recv
        s.dut.send //= s.sink.recv

    def line_trace(s):
        return f"{s.src.line_trace()} > {s.dut.line_trace()} > {s.sink.line_trace()}"
