"""pytest plugin: `--level fl|cl|rtl` (repeatable; default every level) parametrizes every
test that takes the `level` fixture, so one test function runs at each level.

    pytest --level rtl                      # Verilator co-simulation
    pytest --level rtl --rtl-backend python # pure-Python RTL simulation (debugging)
"""
from __future__ import annotations

import shutil

import pytest

from hades.sim.run import LEVELS, SimOptions

# the real-trace fixtures (they load the embedded LLM on first use only)
from harness.real_traces import (embedded_pair_loader, real_greedy_trace_path, real_layer_skip_trace_path,  # noqa: F401
                                 real_logit_trace_path, real_trace_path)
# tiny local GPT-2 pairs (built on first use)
from harness.tiny_models import tiny_models  # noqa: F401


def pytest_addoption(parser):
    group = parser.getgroup("hades")
    group.addoption("--level", action="append", choices=LEVELS, default=None,
                    help="model level(s) to run the shared tests at (repeatable; default: all)")
    group.addoption("--rtl-backend", choices=("verilator", "batch", "python"), default="verilator",
                    help="rtl level: Verilator co-simulation through pymtl3's import (default), the same "
                         "Verilog in Verilator with a C++ batch driver, or the pure-Python simulation")
    group.addoption("--vcd-dir", default=None, metavar="DIR",
                    help="rtl + python backend: write a VCD waveform per test into DIR "
                         "(refused with any other backend, or with --level that excludes rtl)")


def pytest_configure(config):
    """--vcd-dir that no test could honour is a usage error, not silently ignored."""
    vcd_dir = config.getoption("vcd_dir", None)
    if vcd_dir is None:
        return
    backend = config.getoption("rtl_backend")
    if backend != "python":
        raise pytest.UsageError(f"--vcd-dir: VCD waveforms come from the pure-Python RTL simulation only; "
                                f"the {backend} backend cannot dump them (add --rtl-backend python)")
    levels = config.getoption("level")
    if levels and "rtl" not in levels:
        raise pytest.UsageError("--vcd-dir: VCD waveforms come from the rtl level only; --level "
                                f"{' '.join(levels)} dumps none (add --level rtl)")
    from hades.errors import OutputError
    from hades.fileio import check_output_path
    try:
        check_output_path(vcd_dir, directory=True)
    except OutputError as e:
        raise pytest.UsageError(f"--vcd-dir: {e}") from None


def level_unavailable(level: str, backend: str) -> str | None:
    """Why a level cannot run here, or None."""
    if level == "rtl" and backend in ("verilator", "batch") and shutil.which("verilator") is None:
        return "verilator is not installed (run scripts/setup.sh, or use --rtl-backend python)"
    return None


def pytest_generate_tests(metafunc):
    if "level" in metafunc.fixturenames:
        levels = metafunc.config.getoption("level") or list(LEVELS)
        metafunc.parametrize("level", levels)


@pytest.fixture
def sim_options(request, level):
    backend = request.config.getoption("rtl_backend")
    why = level_unavailable(level, backend)
    if why:
        pytest.skip(why)
    vcd_dir = request.config.getoption("vcd_dir")
    vcd = None
    if vcd_dir and level == "rtl" and backend == "python":
        vcd = f"{vcd_dir}/{request.node.name}.vcd"
    return SimOptions(backend=backend, vcd=vcd)
