"""Behavioural 1R1W synchronous SRAM: read data one cycle after the address, write-first
on a same-cycle read/write of one address (the forward comes before the range check, so
this holds for an out-of-range address too). Otherwise out-of-range addresses read zero
and ignore writes (the verifier presents the address of a row past gamma while it streams
the bonus row; the data is unused)."""
from pymtl3 import *

from hades.config import clog2


class SramR1W1(Component):

    def construct(s, nwords, nbits):
        IDX = clog2(nwords)
        AddrT = mk_bits(IDX + 1)
        DataT = mk_bits(nbits)

        s.raddr = InPort(AddrT)
        s.rdata = OutPort(DataT)
        s.wen = InPort()
        s.waddr = InPort(AddrT)
        s.wdata = InPort(DataT)

        s.mem = [Wire(DataT) for _ in range(nwords)]

        @update_ff
        def up_sram_write():
            if s.wen & (s.waddr < nwords):
                s.mem[s.waddr[0:IDX]] <<= s.wdata

        @update_ff
        def up_sram_read():
            if s.wen & (s.waddr == s.raddr):
                s.rdata <<= s.wdata
            elif s.raddr < nwords:
                s.rdata <<= s.mem[s.raddr[0:IDX]]
            else:
                s.rdata <<= 0

    def line_trace(s):
        return f"r{int(s.raddr)}w{int(s.waddr) if s.wen else '-'}"


class SramBanks(Component):
    """A row buffer banked per lane group: `banks` SramR1W1 of nwords x bank_bits, one address
    pair and one write enable for all of them (bank g holds lane group g of every word). A word
    of L bf16 lanes is 16 L bits, past what one PyMTL3 signal carries from L = 64 on; banking
    keeps every signal at <= 512 bits and is what a physical SRAM macro of that width needs
    anyway. One bank behaves as one SramR1W1."""

    def construct(s, nwords, banks, bank_bits):
        s.bank = [SramR1W1(nwords, bank_bits) for _ in range(banks)]
        AddrT = s.bank[0].raddr.get_type()
        s.raddr = InPort(AddrT)
        s.wen = InPort()
        s.waddr = InPort(AddrT)
        s.wdata = [InPort(bank_bits) for _ in range(banks)]
        s.rdata = [OutPort(bank_bits) for _ in range(banks)]
        for g in range(banks):
            s.bank[g].raddr //= s.raddr
            s.bank[g].wen //= s.wen
            s.bank[g].waddr //= s.waddr
            s.bank[g].wdata //= s.wdata[g]
            s.rdata[g] //= s.bank[g].rdata

    def line_trace(s):
        return s.bank[0].line_trace()
