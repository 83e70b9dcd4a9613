"""Argument groups and helpers shared by several subcommands."""
from __future__ import annotations

import argparse
import sys

from hades.config import VerifierConfig


def add_hw_args(p: argparse.ArgumentParser):
    g = p.add_argument_group("hardware configuration")
    g.add_argument("--lanes", type=int, default=16, help="entries per beat / per scan cycle (power of two; default 16)")
    g.add_argument("--vocab-max", type=int, default=65536, help="largest vocabulary (default 65536)")
    g.add_argument("--gamma-max", type=int, default=16, help="most drafts per round (default 16)")
    g.add_argument("--prob-bits", type=int, default=16, help="W, bits per probability (default 16)")
    g.add_argument("--uniform-bits", type=int, default=32, help="U, bits per uniform (default 32)")
    g.add_argument("--sram-words", type=int, default=None,
                   help="on-chip buffer depth in words of L entries (default: gamma_max rows of vocab_max)")


def hw_config(args) -> VerifierConfig:
    return VerifierConfig(lanes=args.lanes, vocab_max=args.vocab_max, gamma_max=args.gamma_max,
                          prob_bits=args.prob_bits, uniform_bits=args.uniform_bits, sram_words=args.sram_words)


def progress_bar(total: int, desc: str, unit: str = "round"):
    """tqdm on stderr when it is a terminal or when asked for; a no-op callable otherwise."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)
