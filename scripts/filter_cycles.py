"""Cycles the logit block's top-k / top-p select passes add (docs/ARCHITECTURE.md "Filters",
docs/PERFORMANCE.md), from the CL schedule (hades.cl.logit_timing, equal to the RTL's cycles on
every round the tests run).

    PYTHONPATH=. .venv/bin/python scripts/filter_cycles.py [--vocab 49152] [--lanes 16 32]

Per lane count: a gamma-0 round (the bonus row alone, so the difference is one row's passes),
then whole gamma-4 rounds with all drafts accepted (model drafts: 4 draft + 5 target rows
filtered; one-hot drafts: 5 target rows), each without filters, with top-k, with top-p and with
both on every row; last, what LogitLayout.filter_cycles gives one row at other radix widths b
(the RTL and CL are built at the default b = 4). Prints markdown tables.
"""
from __future__ import annotations

import argparse

import numpy as np

from hades.cl.logit_timing import logit_round_timing
from hades.cl.timing import TimingConfig
from hades.config import VerifierConfig
from hades.logit_protocol import LogitLayout

FILTERS = {"none": (False, False), "top-k": (True, False), "top-p": (False, True), "both": (True, True)}


def round_cycles(tc: TimingConfig, gamma: int, V: int, onehot: bool, top_k_on: bool, top_p_on: bool) -> int:
    drafts = [[V - 1] * gamma] if gamma else np.zeros((1, 0), np.int64)
    flags = [[top_k_on and not onehot, top_p_on and not onehot, top_k_on, top_p_on]]
    t = logit_round_timing(tc, [gamma], V, False, onehot, [gamma], [V - 1], drafts, flags)
    return int(t.cycles[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--lanes", type=int, nargs="+", default=[16, 32])
    a = ap.parse_args(argv)
    V = a.vocab
    print(f"V = {V}, W = 16, b = 4 (the CL schedule; cycles at one beat per cycle)\n")
    print("| L | words per row | row input | + top-k | + top-p | + both | both / row input |")
    print("|---|---|---|---|---|---|---|")
    for L in a.lanes:
        lay = LogitLayout(VerifierConfig(lanes=L, vocab_max=65536, gamma_max=4))
        tc = TimingConfig(hw=lay.cfg)
        words = -(-V // L)
        base = round_cycles(tc, 0, V, True, False, False)
        added = {k: round_cycles(tc, 0, V, True, *f) - base for k, f in FILTERS.items() if k != "none"}
        for k, f in FILTERS.items():   # one row's passes are what the layout's formula says
            assert k == "none" or added[k] == lay.filter_cycles(words, *f), (k, added[k])
        print(f"| {L} | {words} | {words} | {added['top-k']:,} | {added['top-p']:,} | {added['both']:,} | "
              f"{added['both'] / words:.2f}x |")
    print("\n| L | round (gamma 4, all accepted) | none | top-k | top-p | both | both / none |")
    print("|---|---|---|---|---|---|---|")
    for L in a.lanes:
        tc = TimingConfig(hw=VerifierConfig(lanes=L, vocab_max=65536, gamma_max=4))
        for onehot in (False, True):
            c = {k: round_cycles(tc, 4, V, onehot, *f) for k, f in FILTERS.items()}
            print(f"| {L} | {'one-hot' if onehot else 'model'} drafts | {c['none']:,} | {c['top-k']:,} | "
                  f"{c['top-p']:,} | {c['both']:,} | {c['both'] / c['none']:.2f}x |")
    print("\n| L | b | bins | passes per filter | one row, both filters (formula) |")
    print("|---|---|---|---|---|")
    for L in a.lanes:
        for b in (2, 4, 8):
            lay = LogitLayout(VerifierConfig(lanes=L, vocab_max=65536, gamma_max=4), radix_bits=b)
            print(f"| {L} | {b} | {1 << b} | {lay.filter_levels} | {lay.filter_cycles(-(-V // L), True, True):,} |")


if __name__ == "__main__":
    main()
