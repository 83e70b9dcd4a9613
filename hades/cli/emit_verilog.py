"""`hades emit-verilog --out DIR [hardware options]`: write the Verilog of a configuration."""
from __future__ import annotations

from hades import limits
from hades.cli.common import add_hw_args, hw_config
from hades.errors import ConfigError


def add_parser(sub):
    p = sub.add_parser("emit-verilog", help="translate the RTL of a configuration to Verilog")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--lint", action="store_true", help="also lint it with verilator --lint-only -Wall")
    p.add_argument("--logits", action="store_true",
                   help="the logit block (bf16 logit rows in) instead of the probability-row block")
    p.add_argument("--tree", action="store_true",
                   help="the tree block (docs/ARCHITECTURE.md 'The tree block'), built for --nodes-max nodes of "
                        "at most --children-max children")
    p.add_argument("--nodes-max", type=limits.TREE_NODES_MAX.arg(), default=16,
                   help="--tree: N_max (default 16)")
    p.add_argument("--children-max", type=limits.TREE_CHILDREN_MAX.arg(), default=4,
                   help="--tree: k_max (default 4)")
    add_hw_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from hades.fileio import check_output_path
    check_output_path(args.out, directory=True)   # before elaborating and translating
    from hades.rtl.emit import emit_verilog, lint_verilog
    cfg = hw_config(args)
    tree = None
    if args.tree:
        if args.logits:
            raise ConfigError("--tree and --logits name two different blocks; give one")
        from hades.config import TreeConfig
        from hades.rtl.tree_verifier import require_tree_rtl
        tree = TreeConfig(hw=cfg, nodes_max=args.nodes_max, children_max=args.children_max)
        name = require_tree_rtl(tree).module_name()
    elif args.logits:
        from hades.logit_protocol import LogitLayout
        LogitLayout(cfg).require_rtl()
        name = LogitLayout(cfg).module_name()
    else:
        cfg.require_rtl()
        name = cfg.module_name()
    path = emit_verilog(cfg, args.out, logits=args.logits, tree=tree)
    print(f"wrote {path} (top module {name})")
    if args.lint:
        lint_verilog(path, name)
        print("lint clean: verilator --lint-only -Wall")
    return 0
