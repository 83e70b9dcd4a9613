"""Where the tool keeps what it generates (Verilator builds and the trace cache, both ignored
by git), and the one way to change a process-wide setting (the working directory, torch's
thread count) for the length of a block."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = Path(os.environ.get("HADES_BUILD_DIR", REPO_ROOT / "build"))
TRACE_CACHE_DIR = REPO_ROOT / ".cache" / "traces"


@contextlib.contextmanager
def swapped(get, set_, value):
    """Run the body with set_(value) in force, then restore what get() returned before."""
    before = get()
    set_(value)
    try:
        yield
    finally:
        set_(before)


def in_dir(path: Path):
    """Run the body with `path` (created if missing) as the working directory: pymtl3's
    Verilator import and Yosys translation write their products into the working directory."""
    path.mkdir(parents=True, exist_ok=True)
    return swapped(os.getcwd, os.chdir, path)
