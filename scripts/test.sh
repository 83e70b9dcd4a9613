#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite at every level (FL, CL, RTL through
# Verilator). Extra arguments go to pytest, e.g. `scripts/test.sh --level rtl`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
