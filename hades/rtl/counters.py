"""RoundCounters: the performance counters both verifier blocks report with each result.

cycle counts from the round's header (0) on; the cycle of the round's last input beat is
kept; when the result is loaded (it becomes valid one cycle later) the counters freeze as
cycles = cycle + 2 (header to result valid, inclusive) and latency = cycle + 1 - last beat.
"""
from pymtl3 import *


class RoundCounters(Component):

    def construct(s, nbits=32):
        CycT = mk_bits(nbits)
        s.round_start = InPort()     # the header beat transfers
        s.input_done = InPort()      # the round's last input beat transfers
        s.result_load = InPort()     # the result registers load
        s.cycle = OutPort(CycT)      # cycles since the header beat
        s.cycles = OutPort(CycT)     # frozen at the result
        s.latency = OutPort(CycT)
        s.input_end_cycle = Wire(CycT)

        @update_ff
        def up_round_counters():
            if s.reset:
                s.cycle <<= 0
            else:
                if s.round_start:
                    s.cycle <<= 1
                else:
                    s.cycle <<= s.cycle + 1
                if s.input_done:
                    s.input_end_cycle <<= s.cycle
                if s.result_load:
                    s.cycles <<= s.cycle + 2
                    s.latency <<= s.cycle + 1 - s.input_end_cycle
