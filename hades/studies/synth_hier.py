"""Hierarchical synthesis: each distinct Verilog module through Yosys once, cached; totals by
instance counts; the longest combinational path of the whole block composed from the
per-module gate netlists (docs/PERFORMANCE.md "Synthesis per lane count").

Why: `synth -flatten` hands Yosys one module of every lane's gates at once, and its optimisation
passes (opt_expr, opt_clean, opt_merge over the whole netlist, repeated) grow faster than the
netlist: the logit block at L = 4 took 268 s flat, at L = 16 it did not finish in 26 min. Kept
hierarchical, the same flow on the same L = 16 design takes ~100 s in one Yosys process, and
each of the L lane units is one module synthesised once. Per module here (children read as
blackboxes with `read_verilog -lib`), so that a module whose text does not change with L (the
per-lane decoders and multipliers, the adders) is synthesised once for every lane count and
every later run (cache under build/synth_cache, keyed by the module text, its children's keys
and the flow).

Depth composition: Yosys `ltp -noff` only sees paths inside one module. The gate netlists of
all modules are therefore instantiated into one flat graph here (child port bits joined to the
parent's nets; a feed-through port bit is a zero-delay edge) and the longest path is taken on
it with ltp's rules: every gate is one level, flip-flops and memories ($mem_v2, read data
registered) end paths and start new ones. That is exactly ltp on the flattened hierarchical
netlist (checked against Yosys' own flatten + ltp in the tests); what it does not see is the
cross-boundary optimisation a flat synthesis adds (constants through ports, unused outputs),
which docs/PERFORMANCE.md measures against a flat run at L = 4.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hades import limits
from hades.paths import BUILD_DIR

# The per-module flow: the flat flow's passes (hades.studies.synth.YOSYS_FLOW) without -flatten;
# `memory -nomap` (in synth's coarse stage) keeps memories as $mem_v2 cells.
MODULE_FLOW = """\
read_verilog -sv {src}
{libs}
hierarchy -top {top}
synth -top {top} -run begin:fine
opt -fast -full
techmap
opt -fast
abc -fast
opt -fast
write_json {json}
"""
FLOW_VERSION = "hier-1"          # part of every cache key: change it when MODULE_FLOW changes meaning

_MODULE_RE = re.compile(r"^module\s+(\w+)\b.*?^endmodule\b", re.S | re.M)
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_INSTANCE_RE = re.compile(r"^\s+(\w+)\s+\w+\s*(?:\(|$)", re.M)
# Sequential cells: ltp -noff's "FF cell types" (internal and gate-level memories and flip-flops)
_SEQ_RE = re.compile(r"^\$(_DFF|_DFFE|_SDFF|_SDFFE|_SDFFCE|_ALDFF|_ALDFFE|_DFFSR|_DFFSRE|_DLATCH|_DLATCHSR|_SR_|"
                     r"_FF_|dff|adff|sdff|aldff|dffsr|dlatch|adlatch|sr|ff|mem|memrd|memwr|meminit)")


def split_modules(verilog: str) -> dict[str, str]:
    """name -> text (module ... endmodule) of every module of a Verilog file."""
    return {m.group(1): m.group(0) for m in _MODULE_RE.finditer(verilog)}


def module_children(text: str, names) -> list[str]:
    """The module types instantiated in a module's text (each once, in order of appearance)."""
    out = []
    for m in _INSTANCE_RE.finditer(text):
        if m.group(1) in names and m.group(1) not in out:
            out.append(m.group(1))
    return out


def _is_sequential(cell_type: str) -> bool:
    return bool(_SEQ_RE.match(cell_type))


# ---- one module's gate netlist, compact -------------------------------------------------------

@dataclass
class ModuleNetlist:
    """One module after synthesis, its bits numbered locally (Yosys' ids; -1 a constant).

    gate_out[g] is driven by gate g from gate_in[g, :] (-1 padding); seq_cells counts the
    flip-flops and memories, which the path search cuts; instances are (child, {port: bits})."""
    name: str
    ports: dict[str, tuple[str, list[int]]]
    gate_out: np.ndarray
    gate_in: np.ndarray
    cell_counts: dict[str, int]              # own cells by type, child instances excluded
    children: dict[str, int]                 # child module -> instances
    instances: list[tuple[str, str, dict[str, list[int]]]]   # (child module, instance name, port bits)
    memories: list[tuple[int, int]]          # (words, bits per word) of each own $mem_v2 cell
    seconds: float = 0.0

    @property
    def max_bit(self) -> int:
        hi = [int(self.gate_out.max()) if self.gate_out.size else -1,
              int(self.gate_in.max()) if self.gate_in.size else -1]
        hi += [max(b, default=-1) for _, b in self.ports.values()]
        hi += [max(b, default=-1) for _, _, conn in self.instances for b in conn.values()]
        return max(hi)

    def save(self, folder: Path) -> None:
        np.savez_compressed(folder / "gates.npz", gate_out=self.gate_out, gate_in=self.gate_in)
        meta = dict(name=self.name, ports=self.ports, cell_counts=self.cell_counts, children=self.children,
                    instances=self.instances, memories=self.memories, seconds=self.seconds)
        (folder / "module.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> "ModuleNetlist":
        meta = json.loads((folder / "module.json").read_text())
        with np.load(folder / "gates.npz") as z:
            gate_out, gate_in = z["gate_out"], z["gate_in"]
        return cls(meta["name"], {k: (d, b) for k, (d, b) in meta["ports"].items()}, gate_out, gate_in,
                   meta["cell_counts"], meta["children"], [(c, n, conn) for c, n, conn in meta["instances"]],
                   [tuple(m) for m in meta["memories"]], meta["seconds"])


def _bits(seq) -> list[int]:
    return [b if isinstance(b, int) else -1 for b in seq]      # "0", "1", "x", "z": constants


def _param(value) -> int:
    return value if isinstance(value, int) else int(value, 2)


def netlist_from_json(data: dict, name: str, module_names) -> ModuleNetlist:
    """The compact netlist of module `name` from Yosys write_json output."""
    mod = data["modules"][name]
    ports = {p: (v["direction"], _bits(v["bits"])) for p, v in mod["ports"].items()}
    outs, ins, counts, children, instances, memories = [], [], Counter(), Counter(), [], []
    for cell_name, cell in mod["cells"].items():
        typ, conns = cell["type"], cell["connections"]
        if typ in module_names:
            children[typ] += 1
            instances.append((typ, cell_name.lstrip("\\"), {p: _bits(b) for p, b in conns.items()}))
            continue
        counts[typ] += 1
        if _is_sequential(typ):
            if typ.startswith("$mem"):
                memories.append((_param(cell["parameters"]["SIZE"]), _param(cell["parameters"]["WIDTH"])))
            continue
        dirs = cell.get("port_directions", {})
        src = [b for p, bits in conns.items() if dirs.get(p) == "input" for b in _bits(bits)]
        for p, bits in conns.items():
            if dirs.get(p) == "output":
                for b in _bits(bits):
                    if b >= 0:
                        outs.append(b)
                        ins.append(src)
    width = max((len(i) for i in ins), default=1) or 1
    gate_in = np.full((len(ins), width), -1, np.int32)
    for g, i in enumerate(ins):
        gate_in[g, : len(i)] = i
    return ModuleNetlist(name, ports, np.asarray(outs, np.int32), gate_in, dict(counts), dict(children),
                         instances, memories)


_ARRAY_PORT_RE = re.compile(r"^(\w+?)__(\d+)$")


def replicate_ports(base: ModuleNetlist, name: str, copies: int) -> ModuleNetlist:
    """The netlist of a module made of `copies` side-by-side copies of `base`, for a module
    whose array ports (`addr__i`, `data__i`) are independent identical slices: copy c's array
    port i becomes i + c * n (n: base's array length), its other ports (clk, reset) are shared,
    its internal bits are renumbered. Valid only where every output slice depends on its own
    input slice alone (checked by the caller's choice of module, e.g. Exp2Rom: data[i] =
    table[addr[i]]); ABC cannot share logic between such slices, so the copies are what
    synthesis of the wide module gives, cell for cell (checked at 64 = 4 x 16 ports)."""
    arrays = {p: _ARRAY_PORT_RE.match(p) for p in base.ports}
    n = 1 + max(int(m.group(2)) for m in arrays.values() if m)
    shared = {b for p, (_, bits) in base.ports.items() if not arrays[p] for b in bits if b >= 0}
    span = base.max_bit + 1
    ports, outs, ins = {}, [], []
    for c in range(copies):
        off = np.arange(span, dtype=np.int64) + c * span
        for b in shared:
            off[b] = b
        remap = np.append(off, -1).astype(np.int32)           # index -1 (a constant) stays -1
        for p, (d, bits) in base.ports.items():
            m = arrays[p]
            if m:
                ports[f"{m.group(1)}__{int(m.group(2)) + c * n}"] = (d, [int(remap[b]) for b in bits])
            elif c == 0:
                ports[p] = (d, bits)
        outs.append(remap[base.gate_out])
        ins.append(remap[base.gate_in])
    if base.instances:
        raise ValueError(f"replicate_ports: {base.name} has child instances")
    return ModuleNetlist(name, ports, np.concatenate(outs), np.concatenate(ins),
                         {t: k * copies for t, k in base.cell_counts.items()}, {}, [],
                         base.memories * copies, base.seconds)


# ---- per-module synthesis with a cache ---------------------------------------------------------

class ModuleLibrary:
    """The modules of one Verilog file, synthesised one by one on demand (children first),
    each cached under cache_dir by its key."""

    def __init__(self, verilog: str, cache_dir: Path | None = None, timeout: float = 1800, log=None,
                 stand_ins: dict[str, ModuleNetlist] | None = None):
        self.texts = split_modules(verilog)
        self.stand_ins = dict(stand_ins or {})   # module -> netlist used instead of synthesising it
        self.cache_dir = Path(cache_dir or BUILD_DIR / "synth_cache").resolve()
        self.timeout = limits.SYNTH_TIMEOUT.check(timeout)
        self.log = log
        self._kids = {n: module_children(t, self.texts) for n, t in self.texts.items()}
        self._keys: dict[str, str] = {}
        self._nets: dict[str, ModuleNetlist] = {}
        self.synthesised: list[str] = []     # modules Yosys ran on in this process (the rest came from the cache)

    def key(self, name: str) -> str:
        if name not in self._keys:
            h = hashlib.sha256(FLOW_VERSION.encode())
            # without comments (PyMTL's carry source paths and line numbers) and with whitespace runs as one
            h.update(" ".join(_COMMENT_RE.sub(" ", self.texts[name]).split()).encode())
            for kid in self._kids[name]:
                h.update(self.key(kid).encode())
            self._keys[name] = h.hexdigest()[:20]
        return self._keys[name]

    def netlist(self, name: str) -> ModuleNetlist:
        if name in self.stand_ins:
            return self.stand_ins[name]
        if name not in self._nets:
            for kid in self._kids[name]:
                self.netlist(kid)
            folder = self.cache_dir / f"{name[:80]}-{self.key(name)}"
            if not (folder / "module.json").is_file():
                self._synthesise(name, folder)
            self._nets[name] = ModuleNetlist.load(folder)
        return self._nets[name]

    def _synthesise(self, name: str, folder: Path) -> None:
        from hades.studies.synth import run_yosys
        work = folder.with_name(folder.name + ".work")
        work.mkdir(parents=True, exist_ok=True)
        (work / "top.v").write_text(self.texts[name] + "\n")
        libs = []
        for kid in self._kids[name]:
            (work / f"lib_{kid}.v").write_text(self.texts[kid] + "\n")
            libs.append(f"read_verilog -sv -lib lib_{kid}.v")
        t0 = time.perf_counter()
        run_yosys(MODULE_FLOW.format(src="top.v", libs="\n".join(libs), top=name, json="gates.json"), work,
                  self.timeout)
        net = netlist_from_json(json.loads((work / "gates.json").read_text()), name, self.texts)
        net.seconds = time.perf_counter() - t0
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        net.save(tmp)
        tmp.rename(folder)                   # a cache entry appears whole or not at all
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
        self.synthesised.append(name)
        if self.log:
            self.log(f"  yosys {name}: {sum(net.cell_counts.values())} cells, {net.seconds:.1f} s")


# ---- totals by instance counts -----------------------------------------------------------------

@dataclass(frozen=True)
class HierTotals:
    cell_counts: dict[str, int]          # every gate and flip-flop of the block, by type
    memories: int
    memory_bits: int
    module_instances: dict[str, int]     # module -> instances in the whole block
    yosys_seconds: float                 # sum over distinct modules of their (cached) Yosys time


def hier_totals(lib: ModuleLibrary, top: str) -> HierTotals:
    counts, inst = Counter(), Counter()
    mems = bits = 0
    secs = 0.0

    def walk(name, mult):
        nonlocal mems, bits
        net = lib.netlist(name)
        inst[name] += mult
        for t, n in net.cell_counts.items():
            if not t.startswith("$mem"):
                counts[t] += n * mult
        mems += len(net.memories) * mult
        bits += sum(w * b for w, b in net.memories) * mult
        for kid, n in net.children.items():
            walk(kid, mult * n)

    walk(top, 1)
    for name in inst:
        secs += lib.netlist(name).seconds
    return HierTotals(dict(counts), mems, bits, dict(inst), secs)


# ---- the composed longest path -----------------------------------------------------------------

@dataclass
class FlatGraph:
    gate_out: np.ndarray       # global net driven by each gate (or zero-delay edge)
    gate_in: np.ndarray        # [gates, fan-in] global nets, 0 = the constant source
    delay: np.ndarray          # 1 for a gate, 0 for a port feed-through
    gate_inst: np.ndarray      # index into inst_paths of the instance the gate belongs to
    inst_paths: list[str]
    nets: int


def flatten(lib: ModuleLibrary, top: str, own_only: bool = False) -> FlatGraph:
    """Every gate of `top`'s subtree in one graph over global net ids (0: constants). own_only:
    `top`'s own gates alone, its children's outputs taken as path starts (the depth of the
    module's own logic between its children)."""
    outs, ins, dels, owner, paths = [], [], [], [], []
    counter = [1]
    width = [1]

    def fresh(n):
        start = counter[0]
        counter[0] += n
        return np.arange(start, start + n, dtype=np.int64)

    def add(o, i, d, inst_id):
        if o.size:
            outs.append(o)
            ins.append(i)
            dels.append(np.full(o.size, d, np.int8))
            owner.append(np.full(o.size, inst_id, np.int32))
            width[0] = max(width[0], i.shape[1])

    def expand(name, bind_in, bind_out, path):
        """bind_in / bind_out: child local bit -> global net for its input / output port bits."""
        net = lib.netlist(name)
        inst_id = len(paths)
        paths.append(path)
        local = np.full(net.max_bit + 2, -1, np.int64)
        local[-1] = 0                                   # index -1 (a constant) -> net 0
        for b, g in bind_in.items():
            local[b] = g
        feed = []
        for b, g in bind_out.items():
            if g == 0:
                continue                                # an output the parent ties off or ignores
            if local[b] >= 0:
                feed.append((local[b], g))              # feed-through (or an output twice): zero delay
            else:
                local[b] = g
        unset = np.flatnonzero(local[:-1] < 0)
        local[unset] = fresh(unset.size)
        if feed:
            f = np.asarray(feed, np.int64)
            add(f[:, 1], f[:, :1], 0, inst_id)
        add(local[net.gate_out], local[net.gate_in], 1, inst_id)
        for kid, inst_name, conn in ([] if own_only else net.instances):
            child = lib.netlist(kid)
            cin, cout = {}, {}
            for p, (direction, cbits) in child.ports.items():
                pbits = conn.get(p, [])
                for cb, pb in zip(cbits, pbits):
                    if cb < 0:
                        continue
                    g = int(local[pb])
                    (cin if direction == "input" else cout)[cb] = g
            expand(kid, cin, cout, f"{path}.{inst_name}" if path else inst_name)

    top_net = lib.netlist(top)
    expand(top, {b: int(g) for b, g in zip([b for _, bits in top_net.ports.values() for b in bits if b >= 0],
                                           fresh(sum(1 for _, bits in top_net.ports.values() for b in bits
                                                     if b >= 0)))}, {}, "")
    w = width[0]
    gate_in = np.zeros((sum(o.size for o in outs), w), np.int32)
    row = 0
    for i in ins:
        gate_in[row: row + i.shape[0], : i.shape[1]] = i
        row += i.shape[0]
    return FlatGraph(np.concatenate(outs).astype(np.int32) if outs else np.zeros(0, np.int32), gate_in,
                     np.concatenate(dels) if dels else np.zeros(0, np.int8),
                     np.concatenate(owner) if owner else np.zeros(0, np.int32), paths, counter[0])


@dataclass(frozen=True)
class PathSegment:
    instance: str      # the instance path (instance names from the top, "" = the top) of the gates
    levels: int


@dataclass(frozen=True)
class LongestPath:
    levels: int
    segments: list[PathSegment] = field(default_factory=list)   # from the path's start to its end


class CombinationalLoop(Exception):
    pass


def longest_path(g: FlatGraph, max_iterations: int = 100_000) -> LongestPath:
    """ltp's length (gates on the longest path, sequential cells cut) and the path itself,
    as runs of gates per instance. Relaxation to a fixed point: after k sweeps every path of
    up to k gates is counted, so it converges in (longest path + 1) sweeps on a DAG."""
    depth = np.zeros(g.nets, np.int32)
    if not g.gate_out.size:
        return LongestPath(0)
    delay = g.delay.astype(np.int32)
    for _ in range(max_iterations):
        new = delay + depth[g.gate_in].max(axis=1)
        changed = new > depth[g.gate_out]
        if not changed.any():
            break
        depth[g.gate_out[changed]] = new[changed]
    else:
        raise CombinationalLoop(f"no fixed point after {max_iterations} sweeps: a combinational loop")
    driver = np.full(g.nets, -1, np.int64)
    driver[g.gate_out] = np.arange(g.gate_out.size)
    net = int(depth.argmax())
    segs: list[list] = []
    while driver[net] >= 0:
        gate = int(driver[net])
        inst = g.inst_paths[int(g.gate_inst[gate])]
        if segs and segs[-1][0] == inst:
            segs[-1][1] += int(g.delay[gate])
        elif g.delay[gate]:                 # a feed-through (no gate) does not start a segment
            segs.append([inst, int(g.delay[gate])])
        want = depth[net] - int(g.delay[gate])
        cand = g.gate_in[gate]
        net = int(cand[np.flatnonzero(depth[cand] == want)[0]])
    segs.reverse()
    return LongestPath(int(depth.max()), [PathSegment(i, n) for i, n in segs])
