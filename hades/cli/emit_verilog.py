"""`hades emit-verilog --out DIR [hardware options]`: write the Verilog of a configuration."""
from __future__ import annotations

from hades.cli.common import add_hw_args, hw_config


def add_parser(sub):
    p = sub.add_parser("emit-verilog", help="translate the RTL of a configuration to Verilog")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--lint", action="store_true", help="also lint it with verilator --lint-only -Wall")
    p.add_argument("--logits", action="store_true",
                   help="the logit block (bf16 logit rows in) instead of the probability-row block")
    add_hw_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from hades.fileio import check_output_path
    check_output_path(args.out, directory=True)   # before elaborating and translating
    from hades.rtl.emit import emit_verilog, lint_verilog
    cfg = hw_config(args)
    if args.logits:
        from hades.logit_protocol import LogitLayout
        LogitLayout(cfg).require_rtl()
        name = LogitLayout(cfg).module_name()
    else:
        cfg.require_rtl()
        name = cfg.module_name()
    path = emit_verilog(cfg, args.out, logits=args.logits)
    print(f"wrote {path} (top module {name})")
    if args.lint:
        lint_verilog(path, name)
        print("lint clean: verilator --lint-only -Wall")
    return 0
