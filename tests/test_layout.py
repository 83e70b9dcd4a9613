"""The layout's import rules (docs/ARCHITECTURE.md): imports run one way, from the block's
contract up to the CLI; the library never imports the test harness, the CLI or pytest."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HADES = Path(__file__).resolve().parents[1] / "hades"
# layer of each top-level part of the package; a module may import only from its own layer
# or a lower one
LAYERS = {
    **dict.fromkeys(("errors", "limits", "config", "numerics", "round", "protocol", "logit_protocol", "tree_protocol", "paths",
                    "fileio"), 0),
    **dict.fromkeys(("fl", "cl", "rtl"), 1),
    "sim": 2,
    **dict.fromkeys(("traces", "llm"), 3),
    "studies": 4,
    "cli": 5,
}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _hades_imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "hades":   # from hades import numerics
                for alias in node.names:
                    yield node.lineno, f"hades.{alias.name}"
            else:
                yield node.lineno, node.module


MODULES = sorted(p for p in HADES.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(HADES.parent)))
def test_imports_run_one_way(path):
    rel = path.relative_to(HADES.parent).with_suffix("")
    own = rel.parts[1] if len(rel.parts) > 1 else ""
    own = own if own != "__init__" else ""
    if own not in LAYERS:
        assert own in ("", "__main__"), f"{rel}: a new top-level part of hades/ needs a layer in this test"
        return
    for line, name in _hades_imports(path):
        top = name.split(".")[0]
        assert top not in ("harness", "tests", "pytest"), f"{rel}:{line} imports {name}"
        if top != "hades" or name == "hades":
            continue
        part = _part(name)
        assert part in LAYERS, f"{rel}:{line} imports unknown {name}"
        assert LAYERS[part] <= LAYERS[own], \
            f"{rel}:{line}: {own} (layer {LAYERS[own]}) imports {name} (layer {LAYERS[part]})"


def test_import_hades_does_not_import_pytest():
    code = ("import sys, hades, hades.cli, hades.sim.run, hades.traces.cache, hades.studies.sweep; "
            "print('pytest' in sys.modules, 'harness' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_layer_table_covers_the_package():
    parts = {p.stem if p.is_file() else p.name for p in HADES.iterdir()
             if not p.name.startswith("__") and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert parts == set(LAYERS)
