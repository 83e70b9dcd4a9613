"""Translate a verifier configuration to one self-contained Verilog file."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from hades.config import VerifierConfig
from hades.errors import HadesError


def emit_verilog(cfg: VerifierConfig, out_dir: str | Path, logits: bool = False, tree=None) -> Path:
    """Write <module_name>.v of the probability-row block (with logits, of the logit block; with
    tree, a hades.config.TreeConfig whose hw is cfg, of the tree block) into out_dir (atomically)
    and return its path."""
    from pymtl3.passes.backends.verilog import VerilogTranslationPass

    from hades.fileio import atomic_write
    from hades.paths import in_dir
    out_dir = Path(out_dir).resolve()
    if tree is not None:
        from hades.rtl.tree_verifier import TreeVerifierRTL
        from hades.tree_protocol import TreeLayout
        if tree.hw != cfg:
            raise HadesError(f"emit_verilog: the tree block's hardware {tree.hw} differs from {cfg}")
        name = TreeLayout(tree).module_name()
        top = TreeVerifierRTL(tree)
    elif logits:
        from hades.logit_protocol import LogitLayout
        from hades.rtl.logit_verifier import LogitVerifierRTL
        name = LogitLayout(cfg).module_name()
        top = LogitVerifierRTL(cfg)
    else:
        from hades.rtl.verifier import VerifierRTL
        name = cfg.module_name()
        top = VerifierRTL(cfg)
    top.elaborate()
    top.set_metadata(VerilogTranslationPass.enable, True)
    top.set_metadata(VerilogTranslationPass.explicit_module_name, name)
    with tempfile.TemporaryDirectory() as tmp, in_dir(Path(tmp)):
        top.apply(VerilogTranslationPass())
        produced = Path(tmp) / top.get_metadata(VerilogTranslationPass.translated_filename)
        return atomic_write(out_dir / f"{name}.v", lambda staging: shutil.copyfile(produced, staging))


# Lint waivers, each justified in docs/ARCHITECTURE.md ("Lint waivers"): whole rules that
# pymtl3's translation trips by construction, and WIDTH only for the two message shapes of
# its for-loop headers (a 32-bit loop variable initialised with 1'd0 and compared with a
# narrow localparam bound). Every other WIDTH warning still fails the lint.
LINT_WAIVED_RULES = ("UNUSEDPARAM", "DECLFILENAME", "UNUSEDSIGNAL")
LINT_WAIVED_WIDTH_MESSAGES = (
    "*expects 32 bits on the Assign RHS, but Assign RHS's CONST '1'h0' generates 1 bits*",
    "*expects 32 bits on the RHS, but RHS's VARREF '__const__*",
)


def lint_verilog(path: Path, top: str) -> str:
    """Run `verilator --lint-only -Wall` with the documented waivers; raise on any warning."""
    if shutil.which("verilator") is None:
        raise HadesError("verilator is not installed (run scripts/setup.sh)")
    waivers = path.with_suffix(".vlt")
    waivers.write_text("`verilator_config\n" + "".join(
        f'lint_off -rule WIDTH -file "*" -match "{m}"\n' for m in LINT_WAIVED_WIDTH_MESSAGES))
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top, str(waivers), str(path)]
    cmd += [f"-Wno-{w}" for w in LINT_WAIVED_RULES]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or "%Warning" in proc.stderr or "%Error" in proc.stderr:
        raise HadesError(f"verilator lint failed for {path.name}:\n{proc.stderr.strip()}")
    return " ".join(cmd)
