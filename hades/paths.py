"""Where the tool keeps what it generates: Verilator builds and the trace cache (both ignored
by git), and the one helper that runs a tool inside a build directory."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = Path(os.environ.get("HADES_BUILD_DIR", REPO_ROOT / "build"))
TRACE_CACHE_DIR = REPO_ROOT / ".cache" / "traces"


@contextlib.contextmanager
def in_dir(path: Path):
    """Run the body with `path` (created if missing) as the working directory: pymtl3's
    Verilator import and Yosys translation write their products into the working directory."""
    path.mkdir(parents=True, exist_ok=True)
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
