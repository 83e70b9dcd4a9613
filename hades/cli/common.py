"""Argument groups and helpers shared by several subcommands."""
from __future__ import annotations

import argparse
import re
import sys

from hades import limits
from hades.config import VerifierConfig
from hades.errors import ConfigError

_LIST_ITEM = re.compile(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?")


def parse_int_list(text: str, limit, *, sort_unique: bool = False, name: str | None = None) -> tuple[int, ...]:
    """'1,2,4', '1-16' or '1-4,8' -> a tuple of ints, each checked against limit (a
    hades.limits.IntLimit). Ranges are checked at their bounds before they are expanded, and
    the expansion is capped at limits.LIST_VALUES_MAX values, so '1-1000000000' is refused at
    once. In order with repeats kept (trace --gamma cycles through the list), or sorted
    without repeats (grids: sort_unique). Raises ConfigError."""
    name = name or limit.name
    syntax = f"{name}: expected integers like 1,2,4 or 1-16 or 1-4,8, got {limits.show(str(text))}"
    values: list[int] = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        m = _LIST_ITEM.fullmatch(part)
        if m is None:
            raise ConfigError(syntax)
        try:
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
        except ValueError:      # more digits than int() converts
            raise ConfigError(syntax) from None
        limit.check(lo, name)
        if hi != lo:
            if hi < lo:
                raise ConfigError(f"{name}: range {part.strip()} runs backwards")
            if not limit.lo <= hi <= limit.hi:
                limit.check(hi, name)
        if len(values) + (hi - lo + 1) > limits.LIST_VALUES_MAX:
            raise ConfigError(f"{name}: more than {limits.LIST_VALUES_MAX} values in {limits.show(str(text))}")
        values.extend(limit.check(v, name) for v in range(lo, hi + 1))
    if not values:
        raise ConfigError(f"{name}: expected at least one integer, got {limits.show(str(text))}")
    return tuple(sorted(set(values))) if sort_unique else tuple(values)


def int_list_arg(limit, *, sort_unique: bool = False, name: str | None = None):
    """argparse type= for a list option: the same checks and messages as parse_int_list."""
    def convert(text):
        try:
            return parse_int_list(text, limit, sort_unique=sort_unique, name=name)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = f"{name or limit.name} list"
    return convert


def add_hw_args(p: argparse.ArgumentParser):
    g = p.add_argument_group("hardware configuration")
    g.add_argument("--lanes", type=limits.LANES.arg(), default=16,
                   help="entries per beat / per scan cycle (power of two; default 16)")
    g.add_argument("--vocab-max", type=limits.VOCAB_MAX.arg(), default=65536, help="largest vocabulary (default 65536)")
    g.add_argument("--gamma-max", type=limits.GAMMA_MAX.arg(), default=16, help="most drafts per round (default 16)")
    g.add_argument("--prob-bits", type=limits.PROB_BITS.arg(), default=16, help="W, bits per probability (default 16)")
    g.add_argument("--uniform-bits", type=limits.UNIFORM_BITS.arg(), default=32,
                   help="U, bits per uniform (default 32)")
    g.add_argument("--sram-words", type=limits.SRAM_WORDS.arg(), default=None,
                   help="on-chip buffer depth in words of L entries (default: gamma_max rows of vocab_max)")


def hw_config(args) -> VerifierConfig:
    return VerifierConfig(lanes=args.lanes, vocab_max=args.vocab_max, gamma_max=args.gamma_max,
                          prob_bits=args.prob_bits, uniform_bits=args.uniform_bits, sram_words=args.sram_words)


def progress_bar(total: int, desc: str, unit: str = "round"):
    """tqdm on stderr when it is a terminal or when asked for; a no-op callable otherwise."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)
