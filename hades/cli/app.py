"""`hades` command line. Each subcommand lives in hades/cli/<name>.py and provides
add_parser(subparsers) and run(args) -> int. Bad input (any HadesError) exits with status 2
and one line on stderr."""
from __future__ import annotations

import argparse
import importlib
import sys

from hades.errors import HadesError

COMMANDS = ("verify", "trace", "decode", "sweep", "plot", "bench", "emit_verilog", "synth", "demo", "fuzz")
# module emit_verilog provides the subcommand "emit-verilog"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, status 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hades", description="HADES speculative-decoding verifier: FL / CL / RTL models")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"hades.cli.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:   # argparse refused an option (one line printed, status 2) or printed --help
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        return int(args.func(args) or 0)
    except HadesError as e:
        print(f"hades {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:   # an unwritable output path, a directory where a file was expected, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"hades {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hades {args.command}: interrupted", file=sys.stderr)
        return 130

