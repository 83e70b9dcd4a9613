#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite at every level (FL, CL, RTL through
# Verilator). Extra arguments go to pytest, e.g. `scripts/test.sh --level rtl`.
# The tests run in HADES_TEST_WORKERS pytest-xdist worker processes (default: one per CPU core;
# 0 runs them in this process); workers share the Verilator builds and the trace cache through
# file locks (hades.fileio.build_lock), and --dist worksteal keeps both cores busy to the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
set +e
workers="${HADES_TEST_WORKERS:-auto}"
if [ "$workers" != 0 ] && ! .venv/bin/python -c "import xdist" 2>/dev/null; then
  echo "scripts/test.sh: pytest-xdist is not installed; running the tests in one process" >&2
  workers=0
fi
if [ "$workers" = 0 ]; then
  .venv/bin/python -m pytest -p no:cacheprovider "$@"
else
  .venv/bin/python -m pytest -p no:cacheprovider -n "$workers" --dist worksteal "$@"
fi
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
