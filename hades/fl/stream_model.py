"""Base of the FL and CL components: the RTL's stream ports, with the round reassembled
from its beats in Python and handed to a model function. The same src -> dut -> sink
harness then drives FL, CL and RTL unchanged (the ex03_proc habit).

StreamModel holds the ports and the output queue; RoundStreamModel is the v1 block's
(one result per round), LogitStreamModel the logit block's (a draft token per model draft
row as that row ends, then the result)."""
from __future__ import annotations

from collections import deque

from pymtl3 import *
from pymtl3.stdlib.stream.ifcs import RecvIfcRTL, SendIfcRTL

from hades.config import VerifierConfig
from hades.fl.verifier import draft_tokens_from_logits
from hades.logit_protocol import (DraftRow, DraftToken, LogitBeatDecoder, LogitLayout, LogitRoundOutput, pack_draft,
                                  pack_result)
from hades.protocol import BeatDecoder
from hades.rtl.beats import BeatRecvIfc, beat_value
from hades.protocol import pack_result as pack_v1_result
from hades.round import LogitRound, Round, RoundResult

PENDING_ROUNDS = 2   # rounds whose result is queued before the input stalls


class StreamModel(Component):
    """Subclasses implement on_beat(beat) -> [(offset, message, ends_round)]: the messages a
    beat releases, each due `offset` cycles after its round's header beat (0: at once); the
    message that ends a round is its last. Messages leave on `send` in order, each from the
    cycle it is due. Up to PENDING_ROUNDS rounds' results are queued before the input stalls."""

    def on_beat(s, beat: int) -> list[tuple[int, int, bool]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def construct(s, cfg: VerifierConfig, decoder, beat_bits: int, result_bits: int, beat_groups=None):
        """beat_groups: the widths of a beat's lane groups (the logit block: a BeatRecvIfc, as
        its RTL's), or None for one message of beat_bits."""
        s.cfg = cfg
        s.recv = RecvIfcRTL(mk_bits(beat_bits)) if beat_groups is None else BeatRecvIfc(len(beat_groups), beat_groups[0])
        read_beat = (lambda: int(s.recv.msg)) if beat_groups is None else (lambda: beat_value(s.recv))
        s.send = SendIfcRTL(mk_bits(result_bits))
        s.decoder = decoder
        s.queue = deque()        # (due cycle, packed message, ends a round)
        s.pending = 0            # rounds with a result in the queue
        s.now = 0
        s.header_cycle = 0

        @update_ff
        def up_model():
            if s.reset:
                s.decoder.reset()
                s.queue.clear()
                s.pending = 0
                s.now = 0
                s.recv.rdy <<= 0
                s.send.val <<= 0
                return
            if s.send.val & s.send.rdy:
                s.pending -= s.queue.popleft()[2]
            if s.recv.val & s.recv.rdy:
                if s.decoder.empty():
                    s.header_cycle = s.now
                for offset, msg, ends in s.on_beat(read_beat()):
                    s.queue.append((s.header_cycle + offset, msg, ends))
                    s.pending += ends
            s.now += 1
            s.recv.rdy <<= s.pending < PENDING_ROUNDS
            ready = bool(s.queue) and s.queue[0][0] <= s.now   # s.now: the cycle send.val shows in
            s.send.val <<= ready
            if ready:
                s.send.msg <<= s.queue[0][1]

    def line_trace(s):
        return f"{s.recv}|{s.send}"


class RoundStreamModel(StreamModel):
    """The v1 block. Subclasses implement evaluate(round) -> RoundResult; the result leaves at
    the cycle result.cycles - 1 after the round's header beat (at once when untimed)."""

    def evaluate(s, rnd: Round) -> RoundResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def construct(s, cfg: VerifierConfig):
        StreamModel.construct(s, cfg, BeatDecoder(cfg), cfg.beat_bits, cfg.result_bits)

    def on_beat(s, beat):
        rnd = s.decoder.push(beat)
        if rnd is None:
            return []
        res = s.evaluate(rnd)
        return [(res.cycles - 1 if res.cycles else 0, pack_v1_result(s.cfg, res), True)]


class LogitStreamModel(StreamModel):
    """The logit block. Subclasses implement evaluate(round) -> LogitRoundOutput and may time
    the draft tokens (draft_timing). x_t is sampled as draft row t's last beat arrives and
    leaves at its held cycle (DraftToken.cycles after the header; at once when untimed); the
    result leaves at result.cycles - 1. At the round's end the drafts already sent must be the
    ones evaluate returns (one golden function: hades.fl.verifier.logit_block_round)."""

    def evaluate(s, rnd: LogitRound) -> LogitRoundOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def draft_timing(s, row: DraftRow, tokens: list[int]) -> tuple[int | None, int | None]:
        """(cycles, latency) of the draft message of row.slot, given x_0 .. x_slot: untimed here."""
        return None, None

    def construct(s, cfg: VerifierConfig):
        lay = LogitLayout(cfg)
        s.drafts: list[DraftToken] = []
        StreamModel.construct(s, cfg, LogitBeatDecoder(cfg), lay.beat_bits, lay.result_bits, lay.beat_groups)

    def on_beat(s, beat):
        cfg = s.cfg
        if s.decoder.empty():   # a new round (also after a reset)
            s.drafts = []
        rnd = s.decoder.push(beat)
        row = s.decoder.completed_draft_row()
        out = []
        if row is not None:
            x = int(draft_tokens_from_logits(row.logits[None], row.params, [row.uniform], cfg.prob_bits,
                                             cfg.uniform_bits, greedy=row.greedy, where=f"slot {row.slot}")[0])
            cycles, latency = s.draft_timing(row, [d.token for d in s.drafts] + [x])
            s.drafts.append(DraftToken(row.slot, x, cycles, latency))
            out.append((cycles or 0, pack_draft(cfg, s.drafts[-1]), False))
        if rnd is not None:
            res = s.evaluate(rnd)
            if res.drafts != tuple(s.drafts):
                raise RuntimeError(f"draft messages {s.drafts} differ from the round's output {res.drafts}")
            out.append((res.result.cycles - 1 if res.result.cycles else 0, pack_result(cfg, res.result), True))
        return out
