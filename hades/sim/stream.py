"""Test source and sink for the verifier's streams, with seeded random stalls.

BeatSource withholds valid for a random number of cycles between beats; ResultSink drops
ready at random. Both draw from their own numpy Generator, so a run is reproducible from
its seed. The sink checks that a message does not change while valid is high and ready low.
"""
from __future__ import annotations

import numpy as np
from pymtl3 import *
from pymtl3.stdlib.stream.ifcs import RecvIfcRTL, SendIfcRTL


class StreamProtocolError(AssertionError):
    pass


class BeatSource(Component):

    def construct(s, Type, beats, stall_prob=0.0, max_stall=3, seed=0):
        s.send = SendIfcRTL(Type)
        s.beats = beats
        s.idx = 0
        s.count = 0
        s.rng = np.random.default_rng(seed)
        s.stall_prob = stall_prob

        def draw():
            if stall_prob and s.rng.random() < stall_prob:
                return int(s.rng.integers(1, max_stall + 1))
            return 0

        @update_ff
        def up_src():
            if s.reset:
                s.idx = 0
                s.count = draw()
                s.send.val <<= 0
                return
            if s.send.val & s.send.rdy:
                s.idx += 1
                s.count = draw()
            if s.count > 0:
                s.count -= 1
                s.send.val <<= 0
            elif s.idx < len(s.beats):
                s.send.val <<= 1
                s.send.msg <<= s.beats[s.idx]
            else:
                s.send.val <<= 0

    def line_trace(s):
        return f"{s.send}"


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

    def construct(s, dut, Type_in, Type_out, beats, src_stall=0.0, sink_stall=0.0, seed=0):
        s.src = BeatSource(Type_in, beats, src_stall, 3, seed)
        s.dut = dut
        s.sink = ResultSink(Type_out, sink_stall, seed + 1)
        s.src.send //= s.dut.recv
        s.dut.send //= s.sink.recv

    def line_trace(s):
        return f"{s.src.line_trace()} > {s.dut.line_trace()} > {s.sink.line_trace()}"
