#!/usr/bin/env bash
# Set up (idempotent) and run the main job end to end: `hades demo` (see README).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec .venv/bin/hades demo "$@"
