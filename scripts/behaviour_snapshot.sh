#!/usr/bin/env bash
# Behaviour snapshot: `hades verify --json` on the shared traces at every level and a small
# `hades sweep`, normalised (wall-clock fields and the trace path removed), one file each
# under OUT_DIR, plus SHA256SUMS. Two snapshots of two code versions must be byte-identical
# (`diff -r before after`): that is how a restructuring proves it changed no decision and no
# cycle count. Usage: scripts/behaviour_snapshot.sh OUT_DIR [--no-real]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
REAL=1; [ "${2:-}" = "--no-real" ] && REAL=0
cd "$ROOT"
PY="${HADES_PYTHON:-$ROOT/.venv/bin/python}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's code, whichever venv runs it
HADES=("$PY" -m hades.cli)
TR="$OUT/traces"; mkdir -p "$TR"

normalise() {  # drop what differs between two runs of the same code: timings, paths
  "$PY" -c '
import json, sys
d = json.load(sys.stdin)
d.pop("trace", None)
for k in ("wall_seconds", "sim_cycles_per_second"):
    d["summary"].pop(k, None)
json.dump(d, sys.stdout, sort_keys=True, indent=0)
print()'
}

# the synthetic traces of the shared case table's shapes, plus full-vocabulary rounds; all v1
# (--trace-format 1): they are verified at CL and RTL, which do not read v2 logit traces yet
"${HADES[@]}" trace --synthetic --trace-format 1 --vocab 50 --rounds 20 --gamma 0,1,2,3,4 --seed 1 -o "$TR/small.npz" >/dev/null
"${HADES[@]}" trace --synthetic --trace-format 1 --vocab 50 --rounds 12 --gamma 4,1,0,3 --mode greedy --seed 2 -o "$TR/small_greedy.npz" >/dev/null
"${HADES[@]}" trace --synthetic --trace-format 1 --vocab 100 --rounds 12 --gamma 8,5,1 --seed 7 --prob-bits 12 --uniform-bits 24 -o "$TR/w12.npz" >/dev/null
"${HADES[@]}" trace --synthetic --trace-format 1 --vocab 50257 --rounds 3 --gamma 4,1,3 --seed 8 -o "$TR/gpt2.npz" >/dev/null
# v2 (the logit block): mixed modes, one-hot and model drafts, temperatures, min-p; a full-vocabulary one
"${HADES[@]}" trace --synthetic --vocab 50 --rounds 20 --gamma 0,1,2,3,4 --seed 1 -o "$TR/logit_small.npz" >/dev/null
"${HADES[@]}" trace --synthetic --vocab 49152 --rounds 3 --gamma 4,1,3 --seed 8 -o "$TR/logit_full.npz" >/dev/null
traces=(small:"--lanes 4 --vocab-max 64 --gamma-max 4"
        logit_small:"--lanes 4 --vocab-max 64 --gamma-max 4"
        logit_full:"--lanes 16 --gamma-max 4"
        small_greedy:"--lanes 4 --vocab-max 64 --gamma-max 4"
        w12:"--lanes 8 --vocab-max 128 --gamma-max 8 --prob-bits 12 --uniform-bits 24"
        gpt2:"--lanes 32 --gamma-max 4")
if [ "$REAL" = 1 ]; then
  "${HADES[@]}" trace --trace-format 1 --gamma 4 --rounds 8 --seed 1234 --prompt "Write a haiku about the sea." \
    --no-progress -o "$TR/real.npz" >/dev/null
  traces+=(real:"--lanes 32 --gamma-max 4")
fi
for entry in "${traces[@]}"; do
  name="${entry%%:*}"; hw="${entry#*:}"
  for level in fl cl; do
    # shellcheck disable=SC2086
    "${HADES[@]}" verify "$TR/$name.npz" --level "$level" $hw --json | normalise > "$OUT/verify-$name-$level.json"
  done
  # shellcheck disable=SC2086
  "${HADES[@]}" verify "$TR/$name.npz" --level rtl --rtl-backend batch $hw --json | normalise > "$OUT/verify-$name-rtl.json"
done
"${HADES[@]}" verify "$TR/small.npz" --level rtl $(echo "--lanes 4 --vocab-max 64 --gamma-max 4") --json \
  | normalise > "$OUT/verify-small-rtl-verilator.json"
# the probability-row block's sweep (a snapshot of a commit before `--block` existed has no
# leading "block" column in sweep.csv: compare with `cut -d, -f2-`), then the logit block's
"${HADES[@]}" sweep --block probability --source synthetic --vocab 4096 --rounds 16 --gammas 1-4,8 --sram-kib 16,32,64 \
  --lanes 8,16 --cache-dir "$OUT/cache" --out "$OUT/sweep.csv" >/dev/null 2>&1
"${HADES[@]}" sweep --block logit --source synthetic --vocab 4096 --rounds 16 --gammas 1-4,8 --sram-kib 16,32,64,128 \
  --lanes 8,16 --cache-dir "$OUT/cache" --out "$OUT/sweep-logit.csv" >/dev/null 2>&1
rm -rf "$OUT/cache" "$TR"
(cd "$OUT" && sha256sum ./*.json ./*.csv > SHA256SUMS)
echo "snapshot in $OUT ($(wc -l < "$OUT/SHA256SUMS") files)"
