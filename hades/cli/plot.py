"""`hades plot CSV... --out-dir plots/`: figures of sweep CSVs (and of a `hades decode` table)."""
from __future__ import annotations

from pathlib import Path

from hades.errors import ConfigError


def add_parser(subparsers):
    p = subparsers.add_parser(
        "plot", help="plot sweep CSVs: tokens/s vs gamma and SRAM, cycles by phase, acceptance",
        description="Plot one or more `hades sweep` CSVs (rows are merged; every trace/timing family gets "
                    "its own figures). PNGs are written atomically into --out-dir.")
    p.add_argument("csv", nargs="+", help="sweep CSV(s) from `hades sweep`")
    p.add_argument("--out-dir", default="plots", help="directory for the PNGs (default plots/)")
    p.add_argument("--decode-csv", default=None,
                   help="Table I CSV from `hades decode`: adds the end-to-end decode speedup vs gamma")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from hades.fileio import check_output_path
    check_output_path(args.out_dir, directory=True)   # before reading and plotting
    from hades.studies.plots import plot_sweep, plot_tree_shapes, read_decode_csv
    from hades.studies.sweep import point_key, read_csv
    from hades.studies.tree_sweep import is_tree_csv, read_tree_csv
    tree_csvs = [p for p in args.csv if is_tree_csv(p)]
    if tree_csvs:   # `hades sweep --trees` output: its own figure
        if len(tree_csvs) != len(args.csv) or args.decode_csv:
            raise ConfigError("plot a tree sweep CSV (hades sweep --trees) on its own")
        tree_rows = [r for p in tree_csvs for r in read_tree_csv(p)]
        print(plot_tree_shapes(tree_rows, Path(args.out_dir) / "tree_shapes.png"))
        return 0
    rows = {}
    for path in args.csv:
        got = read_csv(path)
        if not got:
            raise ConfigError(f"{path}: the sweep CSV has no rows")
        rows.update((point_key(r), r) for r in got)   # a point in several files is plotted once
    rows = list(rows.values())
    decode_rows = read_decode_csv(args.decode_csv) if args.decode_csv else None
    label = f"hades decode, {Path(args.decode_csv).name}" if args.decode_csv else "hades decode"
    if decode_rows and decode_rows[0].get("prompt_set"):
        label += f", {decode_rows[0]['prompt_set']} prompts"
    for path in plot_sweep(rows, args.out_dir, decode_rows=decode_rows, decode_label=label):
        print(path)
    return 0
