"""Base of the FL and CL components: the RTL's stream ports, with the round reassembled
from its beats in Python and handed to a model function. The same src -> dut -> sink
harness then drives FL, CL and RTL unchanged (the ex03_proc habit)."""
from __future__ import annotations

from collections import deque

from pymtl3 import *
from pymtl3.stdlib.stream.ifcs import RecvIfcRTL, SendIfcRTL

from hades.config import VerifierConfig
from hades.protocol import BeatDecoder, pack_result
from hades.round import Round, RoundResult


class RoundStreamModel(Component):
    """Subclasses implement evaluate(round) -> RoundResult. The result leaves on `send`
    at the cycle result.cycles - 1 after the round's header beat (at once when untimed).
    Up to two finished results are buffered before the input stalls."""

    def evaluate(s, rnd: Round) -> RoundResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def construct(s, cfg: VerifierConfig):
        s.cfg = cfg
        s.recv = RecvIfcRTL(mk_bits(cfg.beat_bits))
        s.send = SendIfcRTL(mk_bits(cfg.result_bits))
        s.decoder = BeatDecoder(cfg)
        s.results = deque()      # (due cycle, packed result)
        s.now = 0
        s.header_cycle = 0

        @update_ff
        def up_model():
            if s.reset:
                s.decoder.reset()
                s.results.clear()
                s.now = 0
                s.recv.rdy <<= 0
                s.send.val <<= 0
                return
            if s.send.val & s.send.rdy:
                s.results.popleft()
            if s.recv.val & s.recv.rdy:
                if s.decoder.empty():
                    s.header_cycle = s.now
                rnd = s.decoder.push(int(s.recv.msg))
                if rnd is not None:
                    res = s.evaluate(rnd)
                    due = s.header_cycle + (res.cycles - 1 if res.cycles else 0)
                    s.results.append((due, pack_result(cfg, res)))
            s.now += 1
            s.recv.rdy <<= len(s.results) < 2
            ready = bool(s.results) and s.results[0][0] <= s.now   # s.now: the cycle send.val shows in
            s.send.val <<= ready
            if ready:
                s.send.msg <<= s.results[0][1]

    def line_trace(s):
        return f"{s.recv}|{s.send}"
