"""Figures of sweep CSVs (hades.studies.sweep) and of the decode table (hades decode).

    paths = plot_sweep(read_csv("sweep.csv"), "plots/", decode_rows=None)

Matplotlib through its object API with the Agg canvas: no pyplot, so no global figure
state and no display needed. Every PNG is written atomically.

A sweep CSV can mix several trace/timing families (other models, clocks, off-chip
bandwidths); each family gets its own set of figures, named with a suffix when there is
more than one. Within a family, lane counts and probability widths are panels. The block
(logit or probability, the sweep CSV's `block` column) is part of the family and of every title.
"""
from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from hades.errors import ConfigError
from hades.fileio import atomic_write

# rows of one family share the traces and the timing parameters; only the grid varies
FAMILY_KEY = ("block", "source", "draft_model", "target_model", "mode", "vocab_size", "rounds", "seed", "uniform_bits",
              "nested_from", "clock_hz", "offchip_bw", "offchip_latency")
PHASES = (("input_cycles_per_round", "input streaming (rows on chip)", "#4c72b0"),
          ("tail_cycles_per_round", "post-input tail ({tail})", "#dd8452"),
          ("offchip_cycles_per_round", "off-chip overflow", "#c44e52"))
# what differs between the blocks in the figures' words: which rows the SRAM holds
BLOCK_TEXT = {
    "logit": dict(title="logit block (bf16 logit rows, trace v2)", synthetic="Gaussian-logit", entry_bits=16,
                  rows="rows", all_fit="all 2γ + 1 rows of a round fit", tail="the engine's last jobs"),
    "probability": dict(title="probability block (W-bit probability rows, trace v1)", synthetic="Zipf",
                        entry_bits=None, rows="draft rows", all_fit="all γ draft rows fit", tail="residual scan"),
}


@dataclass(frozen=True)
class Family:
    key: tuple
    rows: tuple

    def value(self, name):
        return self.key[FAMILY_KEY.index(name)]

    def text(self, name: str):
        return BLOCK_TEXT[self.value("block")][name]

    def models_text(self) -> str:
        draft, target = self.value("draft_model"), self.value("target_model")
        if self.value("source") == "synthetic":
            return f"synthetic {self.text('synthetic')} traces (V={self.value('vocab_size')})"
        return f"target {target}, draft {draft} (V={self.value('vocab_size')})"

    def config_text(self) -> str:
        clock = self.value("clock_hz")
        nested = self.value("nested_from")
        rounds = (f"{self.value('rounds')} rounds/point" if not nested
                  else f"{self.value('rounds')} rounds cut from one γ={nested} trace")
        return (f"{self.value('mode')} verification, {rounds}, "
                f"clock {_si(clock)}Hz, off-chip {self.value('offchip_bw'):g} entries/cycle "
                f"+ {self.value('offchip_latency')} cycles latency")

    def slug(self) -> str:
        text = (f"{self.value('block')}-{self.value('source')}-{self.value('target_model')}-{self.value('mode')}-V{self.value('vocab_size')}"
                f"-r{self.value('rounds')}-s{self.value('seed')}-n{self.value('nested_from')}"
                f"-clk{self.value('clock_hz'):g}"
                f"-bw{self.value('offchip_bw'):g}-lat{self.value('offchip_latency')}")
        return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text)


def _si(x: float) -> str:
    for scale, prefix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{x / scale:g}{prefix}"
    return f"{x:g} "


def families(rows) -> list[Family]:
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in FAMILY_KEY)].append(r)
    return [Family(k, tuple(v)) for k, v in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0])))]


def _values(rows, name):
    return sorted({r[name] for r in rows})


def _select(rows, **conds):
    return [r for r in rows if all(r[k] == v for k, v in conds.items())]


def _series(rows, x, y):
    pts = sorted((r[x], r[y]) for r in rows)
    return np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110), suffix=".png")


def _panel_grid(fam: Family, width_per=5.6, height_per=4.2):
    """One panel per (W, lanes); returns (fig, [(ax, W, lanes)])."""
    widths, lanes = _values(fam.rows, "prob_bits"), _values(fam.rows, "lanes")
    fig = Figure(figsize=(width_per * len(lanes), height_per * len(widths) + 0.9), layout="constrained")
    axes = fig.subplots(len(widths), len(lanes), squeeze=False)
    return fig, [(axes[i][j], w, l) for i, w in enumerate(widths) for j, l in enumerate(lanes)]


def _title(fig: Figure, what: str, fam: Family):
    fig.suptitle(f"{what}: {fam.text('title')}\n{fam.models_text()}\n{fam.config_text()}", fontsize=10)


def _rows_text(n: float) -> str:
    return f"{n:g} row" + ("" if n == 1 else "s")


def _row_kib(fam: Family, w: int) -> float:
    """KiB of one buffered row: V entries of W bits (logit block: bf16)."""
    return fam.value("vocab_size") * (fam.text("entry_bits") or w) / 8192


# ---- the figures -------------------------------------------------------------------------------

def _rate_unit(rows) -> tuple[float, str]:
    """Divisor and axis label for tokens/s, so that tick labels stay short."""
    top = max(r["tokens_per_s"] for r in rows)
    for scale, name in ((1e9, "billions"), (1e6, "millions"), (1e3, "thousands")):
        if top >= scale:
            return scale, f"verified tokens/s ({name})"
    return 1.0, "verified tokens/s"


def plot_tokens_vs_gamma(fam: Family, path: Path) -> Path:
    fig, panels = _panel_grid(fam)
    cmap = _colormap(len(_values(fam.rows, "sram_kib")))
    unit, ylabel = _rate_unit(fam.rows)
    for ax, w, lanes in panels:
        rows = _select(fam.rows, prob_bits=w, lanes=lanes)
        for c, kib in enumerate(_values(rows, "sram_kib")):
            sel = _select(rows, sram_kib=kib)
            x, y = _series(sel, "gamma", "tokens_per_s")
            ax.plot(x, y / unit, marker="o", ms=3, color=cmap[c], label=f"{kib} KiB ({_rows_text(sel[0]['sram_rows'])})")
        ax.set_title(f"L = {lanes} lanes, W = {w} bit (row = {_row_kib(fam, w):g} KiB)", fontsize=9)
        ax.set_xlabel("γ (draft tokens per round)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(title=f"on-chip SRAM ({fam.text('rows')} that fit)", fontsize=7, title_fontsize=8)
    _title(fig, "Verified tokens/s vs γ, one curve per SRAM size", fam)
    return _save(fig, path)


def plot_tokens_vs_sram(fam: Family, path: Path) -> Path:
    fig, panels = _panel_grid(fam, width_per=6.6)
    gammas = _values(fam.rows, "gamma")
    cmap = _colormap(len(gammas))
    unit, ylabel = _rate_unit(fam.rows)
    for ax, w, lanes in panels:
        rows = _select(fam.rows, prob_bits=w, lanes=lanes)
        for c, g in enumerate(gammas):
            sel = _select(rows, gamma=g)
            if not sel:
                continue
            x, y = _series(sel, "sram_kib", "tokens_per_s")
            line, = ax.plot(x, y / unit, marker="o", ms=3, color=cmap[c], label=f"γ = {g}")
            # the knee: the smallest buffer that holds every row of the rounds (no row off chip)
            fits = [r["sram_kib"] for r in sel if r["offchip_rows_per_round"] == 0]
            if fits and min(fits) > min(x):
                knee = min(fits)
                ax.plot([knee], [_select(sel, sram_kib=knee)[0]["tokens_per_s"] / unit], marker="*", ms=11,
                        color=line.get_color(), markeredgecolor="black", markeredgewidth=0.5, zorder=5)
        ax.set_xscale("log", base=2)
        ax.set_xticks(_values(rows, "sram_kib"))
        ax.set_xticklabels([str(k) for k in _values(rows, "sram_kib")], rotation=45, fontsize=7)
        ax.set_title(f"L = {lanes} lanes, W = {w} bit (row = {_row_kib(fam, w):g} KiB)", fontsize=9)
        ax.set_xlabel(f"on-chip SRAM (KiB, log scale)   ★ = {fam.text('all_fit')}")
        ax.set_ylabel(ylabel + ", log scale")
        # log: the knee is a ratio (on chip vs off chip), and the large-γ curves sit far below
        # the small-γ ones; on a linear axis their knees flatten into the floor
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _pos: f"{v:g}")   # 40, not 4x10^1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_locator(LogLocator(subs=(2, 3, 5)))   # labelled minors, not crowded
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=6)
        ax.grid(alpha=0.3, which="both")
        # outside the axes: inside, it hides the flat on-chip lines it labels
        ax.legend(fontsize=7, ncol=2 if len(gammas) > 8 else 1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _title(fig, f"Verified tokens/s vs SRAM size: the knee where {fam.text('rows')} stop fitting", fam)
    return _save(fig, path)


def plot_cycles_by_phase(fam: Family, path: Path) -> Path:
    """Stacked cycles per round vs γ, for the smallest and the largest SRAM of the sweep."""
    sizes = _values(fam.rows, "sram_kib")
    picks = [sizes[0]] if len(sizes) == 1 else [sizes[0], sizes[-1]]
    widths, lanes = _values(fam.rows, "prob_bits"), _values(fam.rows, "lanes")
    fig = Figure(figsize=(5.6 * len(lanes), 3.8 * len(widths) * len(picks) + 0.9), layout="constrained")
    axes = fig.subplots(len(widths) * len(picks), len(lanes), squeeze=False)
    for i, w in enumerate(widths):
        for k, kib in enumerate(picks):
            for j, L in enumerate(lanes):
                ax = axes[i * len(picks) + k][j]
                rows = sorted(_select(fam.rows, prob_bits=w, lanes=L, sram_kib=kib), key=lambda r: r["gamma"])
                if not rows:
                    ax.set_visible(False)
                    continue
                g = np.array([r["gamma"] for r in rows])
                bottom = np.zeros(len(rows))
                for col, label, color in PHASES:
                    vals = np.array([r[col] for r in rows]) / 1e3
                    ax.bar(g, vals, bottom=bottom, color=color, label=label.format(tail=fam.text("tail")), width=0.8)
                    bottom += vals
                # the tail is a few cycles next to thousands of streaming cycles: print it
                # (the logit block's tail is thousands: "5.8k", narrow enough for a bar)
                for x, top, r in zip(g, bottom, rows):
                    tail = r["tail_cycles_per_round"]
                    ax.annotate(f"{tail:.3g}" if tail < 1e3 else f"{tail / 1e3:.2g}k", (x, top), xytext=(0, 2),
                                textcoords="offset points", ha="center", fontsize=6, color=PHASES[1][2])
                ax.set_ylim(0, 1.12 * float(bottom.max()))   # room for the tail labels
                ax.set_title(f"L = {L}, W = {w} bit, SRAM {kib} KiB ({_rows_text(rows[0]['sram_rows'])}); "
                             "numbers: tail cycles", fontsize=9)
                ax.set_xlabel("γ (draft tokens per round)")
                ax.set_ylabel("cycles per round (thousands)")
                ax.set_xticks(g)
                ax.grid(alpha=0.3, axis="y")
                ax.legend(fontsize=7)
    _title(fig, "Cycles per verification round by phase", fam)
    return _save(fig, path)


def plot_acceptance(fam: Family, path: Path) -> Path:
    """Acceptance and tokens per round depend on the trace only: one point per (γ, W)."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax_rate, ax_tok = fig.subplots(1, 2)
    for w in _values(fam.rows, "prob_bits"):
        per_gamma = {}
        for r in _select(fam.rows, prob_bits=w):
            per_gamma.setdefault(r["gamma"], r)
        g = np.array(sorted(per_gamma))
        rate = np.array([per_gamma[x]["acceptance_rate"] for x in g])
        tok = np.array([per_gamma[x]["tokens_per_round"] for x in g])
        label = f"W = {w} bit"
        ax_rate.plot(g, rate, marker="o", ms=4, label=label)
        ax_tok.plot(g, tok, marker="o", ms=4, label=label)
    gmax = max(_values(fam.rows, "gamma"))
    ax_tok.plot([0, gmax], [1, gmax + 1], ls=":", color="gray", label="every draft accepted (γ + 1)")
    ax_rate.set_ylim(0, 1)
    ax_rate.set_xlabel("γ (draft tokens per round)")
    ax_rate.set_ylabel("acceptance rate (accepted / γ)")
    ax_rate.set_title("Acceptance rate", fontsize=9)
    ax_tok.set_xlabel("γ (draft tokens per round)")
    ax_tok.set_ylabel("tokens per round (accepted + 1)")
    ax_tok.set_title("Tokens emitted per verification round", fontsize=9)
    ax_tok.set_ylim(bottom=0)
    for ax in (ax_rate, ax_tok):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _title(fig, "Acceptance and tokens per round vs γ", fam)
    return _save(fig, path)


# what an HBM-attached block could read: one HBM3e stack's ~4.8 TB/s (about 4.8 KB per cycle at 1 GHz)
HBM_BYTES_PER_S = 4.8e12
MIN_LANE_COUNTS = 3        # the lanes figure needs at least this many lane counts


def plot_tokens_vs_lanes(fam: Family, path: Path) -> Path:
    """Logit block: verified tokens/s vs lanes at the largest SRAM size, one curve per γ, with the
    input-bandwidth limit. The input streams one beat of L bf16 entries (2 L bytes) per cycle,
    so a round's input is input_cycles x 2 L bytes; an HBM read of HBM_BYTES_PER_S caps tokens/s
    at HBM_BYTES_PER_S x tokens_per_round / (input bytes per round) (dashed). Right: the bytes
    per cycle the block needs while rows stream (2 L) and averaged over the round, against
    what HBM delivers per cycle at the clock."""
    clock = fam.value("clock_hz")
    hbm_per_cycle = HBM_BYTES_PER_S / clock
    kib = max(_values(fam.rows, "sram_kib"))
    w = _values(fam.rows, "prob_bits")[0]
    rows = _select(fam.rows, sram_kib=kib, prob_bits=w)
    gammas = _values(rows, "gamma")
    cmap = _colormap(len(gammas))
    fig = Figure(figsize=(13, 5.4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    lanes_all = np.array(_values(rows, "lanes"), float)
    for c, g in enumerate(gammas):
        sel = sorted(_select(rows, gamma=g), key=lambda r: r["lanes"])
        lanes = np.array([r["lanes"] for r in sel], float)
        tps = np.array([r["tokens_per_s"] for r in sel])
        in_bytes = np.array([r["input_cycles_per_round"] * 2 * r["lanes"] for r in sel])
        ceiling = HBM_BYTES_PER_S * np.array([r["tokens_per_round"] for r in sel]) / in_bytes
        ax.plot(lanes, tps, marker="o", ms=4, color=cmap[c], label=f"γ = {g}")
        ax.plot(lanes, ceiling, ls="--", lw=1, color=cmap[c])
        bx.plot(lanes, in_bytes / np.array([r["cycles_per_round"] for r in sel]), marker="o", ms=3, color=cmap[c],
                label=f"γ = {g}, averaged over the round")
    bx.plot(lanes_all, 2 * lanes_all, color="black", marker="s", ms=3, label="while rows stream (2 L bytes)")
    bx.axhline(hbm_per_cycle, color="#c44e52", lw=2, label=f"HBM3e ~{HBM_BYTES_PER_S / 1e12:g} TB/s "
               f"= {hbm_per_cycle:,.0f} B/cycle at {_si(clock)}Hz")
    for a in (ax, bx):
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_xticks(lanes_all, [f"{int(v)}" for v in lanes_all])
        a.set_xlabel("L (lanes: bf16 entries per beat and per engine word)")
        a.grid(alpha=0.3, which="both")
    ax.set_ylabel("verified tokens/s")
    ax.set_title(f"CL model, {kib} KiB on chip; dashed: the limit of an HBM-fed input", fontsize=9)
    ax.legend(fontsize=8)
    bx.set_ylabel("input bytes per cycle")
    bx.set_title("input bandwidth needed vs what HBM delivers", fontsize=9)
    bx.legend(fontsize=7)
    _title(fig, "Verified tokens/s vs lanes", fam)
    return _save(fig, path)


def _colormap(n: int):
    from matplotlib import colormaps
    cm = colormaps["viridis"]
    return [cm(0.9 * i / max(1, n - 1)) for i in range(n)]


# ---- entry point -------------------------------------------------------------------------------

def plot_sweep(rows, out_dir: str | Path, decode_rows=None, decode_label: str = "hades decode") -> list[Path]:
    """Write every figure for rows (typed sweep rows) into out_dir; returns the PNG paths."""
    if not rows:
        raise ConfigError("no sweep rows to plot")
    from hades.studies.sweep import check_row
    for i, row in enumerate(rows):   # NaN, negative or absurd values: one clear line, not a matplotlib error
        try:
            check_row(row)
        except (ConfigError, KeyError, TypeError) as e:
            raise ConfigError(f"sweep row {i + 1} cannot be plotted: {e}") from None
    out_dir = Path(out_dir)
    fams = families(rows)
    decode = parse_decode_rows(decode_rows) if decode_rows is not None else None
    paths = []
    for fam in fams:
        suffix = "" if len(fams) == 1 else f"-{fam.slug()}"
        paths.append(plot_tokens_vs_gamma(fam, out_dir / f"tokens_per_s_vs_gamma{suffix}.png"))
        paths.append(plot_tokens_vs_sram(fam, out_dir / f"tokens_per_s_vs_sram{suffix}.png"))
        paths.append(plot_cycles_by_phase(fam, out_dir / f"cycles_by_phase{suffix}.png"))
        paths.append(plot_acceptance(fam, out_dir / f"acceptance_vs_gamma{suffix}.png"))
        if fam.value("block") == "logit" and len(_values(fam.rows, "lanes")) >= MIN_LANE_COUNTS:
            paths.append(plot_tokens_vs_lanes(fam, out_dir / f"tokens_per_s_vs_lanes{suffix}.png"))
        if decode is not None:
            paths.append(plot_decode_speedup(fam, decode, out_dir / f"decode_speedup_vs_gamma{suffix}.png",
                                             decode_label))
    return paths


# ---- end-to-end decode (Table I of `hades decode`) ---------------------------------------------------

DECODE_REQUIRED = ("gamma", "new_tokens", "rounds", "seconds", "tokens_per_s", "target_rows_s", "verify_s",
                   "draft_share", "target_share", "verification_share", "other_share")


def read_decode_csv(path: str | Path) -> list[dict]:
    """Rows of the CSV `hades decode --csv` writes (columns: hades.studies.decode.CSV_FIELDS).
    A table of several prompt sets (column prompt_set) gives the rows of its first set, each of
    which has its own gamma 0 baseline; older tables have no prompt_set column."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except (csv.Error, ValueError) as e:   # a field over the csv size limit, undecodable bytes
        raise ConfigError(f"{path}: not a `hades decode --csv` table ({e})") from None
    missing = [c for c in DECODE_REQUIRED if rows and c not in rows[0]]
    if not rows or missing:
        raise ConfigError(f"{path}: not a `hades decode --csv` table"
                          + (f" (no column {missing[0]!r})" if missing else " (no rows)"))
    if "prompt_set" in rows[0]:
        rows = [r for r in rows if r["prompt_set"] == rows[0]["prompt_set"]]
    return [r for r in rows if r["gamma"].strip().isdigit()]   # the plots are over fixed gammas (not auto, heuristic)


def parse_decode_rows(raw_rows) -> list[dict]:
    """Typed decode rows sorted by gamma; the gamma 0 row (plain decoding) is the baseline."""
    try:
        rows = sorted(({k: int(r[k]) if k in ("gamma", "new_tokens", "rounds") else float(r[k])
                        for k in DECODE_REQUIRED} for r in raw_rows), key=lambda r: r["gamma"])
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"decode table: malformed row ({e})") from None
    for r in rows:
        bad = next((k for k, v in r.items() if not (math.isfinite(v) and v >= 0)), None)
        if bad is not None or r["tokens_per_s"] <= 0 or r["seconds"] <= 0:
            what = f"{bad} = {r[bad]}" if bad is not None else "tokens_per_s and seconds must be > 0"
            raise ConfigError(f"decode table: gamma {r['gamma']} row: {what} (expected finite values >= 0)")
    if not any(r["gamma"] == 0 for r in rows):
        raise ConfigError("decode table: needs a gamma 0 row (plain decoding), the speedup baseline")
    return rows


def plot_decode_speedup(fam: Family, decode: list[dict], path: Path, decode_label: str = "hades decode") -> Path:
    """Measured software speedup over plain decoding, and the same decode with its verification
    (target softmax + quantisation + verify_round, what HADES takes over) replaced by the
    HADES cycles of this sweep for the same number of rounds."""
    base = next(r for r in decode if r["gamma"] == 0)["tokens_per_s"]
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax_speed, ax_share = fig.subplots(1, 2)
    g = np.array([r["gamma"] for r in decode])
    ax_speed.plot(g, [r["tokens_per_s"] / base for r in decode], marker="o", color="black",
                  label="software (measured)")
    clock = fam.value("clock_hz")
    w = _values(fam.rows, "prob_bits")[0]
    biggest = max(_values(fam.rows, "sram_kib"))
    styles = (("s", "--"), ("^", ":"), ("D", "-."), ("v", (0, (5, 1))))
    for k, lanes in enumerate(_values(fam.rows, "lanes")):
        marker, ls = styles[k % len(styles)]
        pts = []
        for r in decode:
            sweep = _select(fam.rows, gamma=r["gamma"], lanes=lanes, sram_kib=biggest, prob_bits=w)
            if not sweep:
                continue
            hades_s = r["rounds"] * sweep[0]["cycles_per_round"] / clock
            seconds = r["seconds"] - (r["target_rows_s"] + r["verify_s"]) + hades_s
            pts.append((r["gamma"], r["new_tokens"] / seconds / base))
        if pts:
            x, y = zip(*pts)
            # marker sizes shrink per lane count: when the HADES time is negligible the curves
            # coincide, and every one must stay visible
            ax_speed.plot(x, y, marker=marker, ls=ls, ms=8 - 2 * k, label=f"verification on HADES, L = {lanes}, {biggest} KiB")
    ax_speed.axhline(1.0, color="gray", lw=0.8, ls=":")
    ax_speed.set_xlabel("γ (draft tokens per round)")
    ax_speed.set_ylabel("decode speedup over plain decoding (γ = 0)")
    ax_speed.set_title(f"End-to-end decode tokens/s relative to γ = 0 ({base:.1f} tokens/s)", fontsize=9)
    ax_speed.set_xticks(g)
    ax_speed.grid(alpha=0.3)
    ax_speed.set_ylim(bottom=0)
    ax_speed.legend(fontsize=7)
    bottom = np.zeros(len(decode))
    for key, label, color in (("draft_share", "draft model", "#55a868"), ("target_share", "target model", "#4c72b0"),
                              ("verification_share", "verification (HADES' part)", "#c44e52"),
                              ("other_share", "other", "#8c8c8c")):
        vals = np.array([100 * r[key] for r in decode])
        ax_share.bar(g.astype(str), vals, bottom=bottom, color=color, label=label)
        bottom += vals
    ax_share.set_xlabel("γ (draft tokens per round)")
    ax_share.set_ylabel("share of software decode time (%)")
    ax_share.set_title("Where the software decode spends its time", fontsize=9)
    ax_share.set_ylim(0, 100)
    ax_share.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"End-to-end speculative decoding: software ({decode_label}) vs verification on HADES, "
                 f"{fam.text('title')}\n{fam.models_text()}\n{fam.config_text()}", fontsize=10)
    return _save(fig, path)


# ---- tree shapes (hades sweep --trees) ---------------------------------------------------------------

def plot_tree_shapes(rows, path: str | Path) -> Path:
    """Trees against chains at equal node budgets (rows of hades.studies.tree_sweep, every row
    on chip). Left: tokens emitted per round against the nodes of the round's tree, one marker
    per shape, the chains joined by a line. Right: verified tokens/s of every shape per budget,
    one bar group per budget and one bar per lane count's panel (the widest lane count shown)."""
    rows = [r for r in rows if r["sram_kib"] == "all"]
    if not rows:
        raise ConfigError("the tree sweep has no on-chip points to plot")
    lanes = sorted({r["lanes"] for r in rows})
    fig = Figure(figsize=(6.0 + 4.2 * len(lanes), 5.2), layout="constrained")
    axes = fig.subplots(1, 1 + len(lanes))
    ax = axes[0]
    first = [r for r in rows if r["lanes"] == lanes[0]]
    chains = sorted((r for r in first if r["chain"]), key=lambda r: r["nodes"])
    ax.plot([r["nodes"] for r in chains], [r["tokens_per_round"] for r in chains], marker="s", color="black",
            label="chains (1,1,...,1)")
    trees = [r for r in first if not r["chain"]]
    cmap = _colormap(max(1, len(trees)))
    for c, r in enumerate(sorted(trees, key=lambda r: (r["nodes"], r["shape"]))):
        ax.scatter([r["nodes"]], [r["tokens_per_round"]], color=cmap[c], zorder=3)
        ax.annotate(r["shape"], (r["nodes"], r["tokens_per_round"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("nodes per round (the root included)")
    ax.set_ylabel("tokens emitted per round (accepted + 1)")
    ax.set_title("what a round yields", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    budgets = sorted({r["budget"] for r in rows})
    for bx, L in zip(axes[1:], lanes):
        sel = [r for r in rows if r["lanes"] == L]
        scale, label = _rate_unit(sel)
        x0 = 0
        ticks, names = [], []
        for b in budgets:
            group = sorted((r for r in sel if r["budget"] == b), key=lambda r: (not r["chain"], r["shape"]))
            for i, r in enumerate(group):
                bx.bar(x0 + i, r["tokens_per_s"] / scale, color="black" if r["chain"] else "#4c72b0")
                ticks.append(x0 + i)
                names.append(("chain " if r["chain"] else "") + (f"{r['nodes']}" if r["chain"] else r["shape"]))
            bx.text(x0 + (len(group) - 1) / 2, 0.98, f"≤ {b} nodes", ha="center", va="top", fontsize=8,
                    transform=bx.get_xaxis_transform())
            x0 += len(group) + 1
        bx.set_xticks(ticks, names, rotation=60, fontsize=7)
        bx.set_ylabel(label)
        bx.set_title(f"{L} lanes at 1 GHz (CL schedule = RTL), chains black", fontsize=9)
        bx.grid(alpha=0.3, axis="y")
    r0 = rows[0]
    fig.suptitle(f"Tree shapes vs chains at equal node budgets: real tree traces of the embedded pair "
                 f"({r0['scheme']} children, T = {r0['temperature']:g}, {r0['rounds']} rounds per shape, "
                 f"V = {r0['vocab_size']})", fontsize=10)
    return _save(fig, Path(path))
