"""Time the logit block's batch driver (Verilator, C++) on a v2 trace, split into beat packing
and the C++ run (median of 3), at the given lane counts:

    .venv/bin/python scripts/logit_batch_speed.py TRACE.npz 64 128

The build is hades.rtl.batch's cached one (built on first use, not timed)."""
from __future__ import annotations

import statistics
import sys
import time

from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's hades, not an installed one
from hades.config import VerifierConfig  # noqa: E402 (after the path insert)
from hades.logit_protocol import LogitLayout, model_drafts, round_beats  # noqa: E402
from hades.rtl import batch  # noqa: E402
from hades.traces.format import read_trace  # noqa: E402


def main(path: str, lanes: list[int]) -> None:
    rounds = list(read_trace(path).rounds())
    for L in lanes:
        cfg = VerifierConfig(lanes=L, vocab_max=65536, gamma_max=max(4, max(r.gamma for r in rounds)))
        binary = batch.build_batch_sim(cfg, logits=True)
        lay = LogitLayout(cfg)
        t0 = time.perf_counter()
        nbytes = 4 * -(-lay.beat_bits // 32)
        ints = [b for r in rounds for b in round_beats(cfg, r)]
        beats = np.frombuffer(b"".join(b.to_bytes(nbytes, "little") for b in ints), np.uint8).reshape(-1, nbytes)
        pack = time.perf_counter() - t0
        n = len(rounds) + sum(r.gamma for r in rounds if model_drafts(r))
        runs = []
        for _ in range(3):
            t1 = time.perf_counter()
            batch._run_messages(binary, beats, lay.beat_bits, lay.result_bits, n, len(rounds), 0.0, 0.0, 0, 10**8)
            runs.append(time.perf_counter() - t1)
        print(f"L={L}: {len(ints)} beats, packing {pack:.1f} s, C++ run median {statistics.median(runs):.2f} s "
              f"of {[round(r, 2) for r in runs]}")


if __name__ == "__main__":
    main(sys.argv[1], [int(a) for a in sys.argv[2:]])
