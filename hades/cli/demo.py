"""`hades demo`: the main job end to end, printing each equivalent command as it runs.

1. a synthetic trace, verified at FL (result table);
2. a real v2 trace from the embedded SmolLM2-135M target with prompt-lookup drafts (one-hot
   rows, no draft model) on the grounded summarise prompt at T = 0.7, verified at FL, CL and
   RTL (Verilator, C++ batch driver), results and cycles compared;
3. a CL design-space sweep over gamma and SRAM size on real traces of the same kind, and its plots.
Prompt lookup is the default draft of real traces because it is accepted (the layer-skip
draft's gamma-4 trace accepted 0.19 drafts per round). Outputs go to --out (default out/demo).
Cached traces and builds make a second run quick.
"""
from __future__ import annotations

import shlex
from pathlib import Path


def demo_real_trace():
    """The demo's real trace: a v2 request with the real-trace defaults (prompt lookup on the grounded
    summarise prompt, T = 0.7), gamma 4, 16 rounds, seed 0."""
    from hades.traces.cache import TraceRequest
    return TraceRequest(source="real", gamma=4, rounds=16, seed=0, trace_format=2)


def add_parser(sub):
    p = sub.add_parser("demo", help="run the main job end to end (synthetic + real traces, FL/CL/RTL, sweep, plots)")
    p.add_argument("--out", default="out/demo", help="output directory (default out/demo)")
    p.add_argument("--quick", action="store_true", help="synthetic part only (no LLM, no sweep)")
    p.set_defaults(func=run)


def _step(title: str, argv: list[str]) -> int:
    from hades.cli import main
    print(f"\n=== {title}\n$ hades {shlex.join(argv)}", flush=True)
    rc = main(argv)
    if rc:
        raise SystemExit(rc)
    return rc


def run(args) -> int:
    from hades.fileio import check_output_path
    out = Path(check_output_path(args.out, directory=True))   # before the first step
    out.mkdir(parents=True, exist_ok=True)
    syn = str(out / "synthetic.npz")
    hw = ["--lanes", "16", "--vocab-max", "4096", "--gamma-max", "8"]
    _step("synthetic v2 trace: bf16 logit rows, per-round temperature and min-p, mixed greedy / stochastic "
          "and model / one-hot drafts (V=2048, gamma 2..8)",
          ["trace", "--synthetic", "--vocab", "2048", "--rounds", "12", "--gamma", "2,4,8", "--seed", "1", "-o", syn])
    _step("the logit block at FL (it samples the model drafts itself, then verifies)", ["verify", syn, "--level", "fl"])
    _step("... at CL (cycles per round and of every returned draft token)", ["verify", syn, "--level", "cl", *hw])
    _step("... at RTL through Verilator (same results, same drafts, same cycles)",
          ["verify", syn, "--level", "rtl", *hw])
    if args.quick:
        return 0
    from hades.traces.cache import get_trace, trace_path
    req = demo_real_trace()
    print("\n=== real v2 trace: SmolLM2-135M target, prompt-lookup drafts on a grounded prompt, T = 0.7 "
          "(embedded, offline; cached after the first run)\n"
          "$ hades trace --draft-method lookup --temperature 0.7 --gamma 4 --rounds 16 --seed 0 "
          "--prompt-name summarise -o ...   (via the trace cache)", flush=True)
    trace = get_trace(req)
    real = str(trace_path(req))
    accepted = trace.expected_accepted
    print(f"trace: {real}\n{int(accepted.sum())} of {int(trace.gamma.sum())} drafts accepted "
          f"({accepted.mean():.2f} per round)")
    _step("verify the real trace at FL", ["verify", real, "--level", "fl"])
    _step("... at CL", ["verify", real, "--level", "cl", "--lanes", "16", "--gamma-max", "4"])
    _step("... at RTL: the same Verilog in Verilator with the C++ batch driver (full 49152-entry vocabulary)",
          ["verify", real, "--level", "rtl", "--rtl-backend", "batch", "--lanes", "16", "--gamma-max", "4"])
    csv = str(out / "sweep.csv")
    _step("CL sweep of the logit block over gamma x SRAM size x lanes on real v2 traces",
          ["sweep", "--source", "real", "--nested", "--gammas", "1,2,3,4,6,8,12,16", "--rounds", "32",
           "--out", csv, "--resume"])
    plot_args = ["plot", csv, "--out-dir", str(out / "plots")]
    measured_table1 = Path(__file__).resolve().parents[2] / "docs" / "data" / "table1_lookup_greedy.csv"
    if measured_table1.is_file():   # `hades decode` measured on this pair (docs/PERFORMANCE.md)
        plot_args += ["--decode-csv", str(measured_table1)]
    _step("plots (open the PNGs)", plot_args)
    print(f"\ndemo finished; outputs in {out}/")
    return 0
