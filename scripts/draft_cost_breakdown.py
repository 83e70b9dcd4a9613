"""Where a self-speculative draft step's cost goes (issue 16 item 5, docs/PERFORMANCE.md): the
per-token step time of the embedded SmolLM2-135M-Instruct run with k of its 30 layers (the
layer-skip mechanism of hades.llm.models), one torch thread, bf16 rows as the decoder reads them.
A least-squares line over k gives the cost per layer and the fixed part of a step (embedding,
final norm, LM head, and the Python / framework overhead of one forward call); the FR-Spec head
(8192 tokens) points show what the head costs.

    PYTHONPATH=. .venv/bin/python scripts/draft_cost_breakdown.py

Each point: the prompt prefilled, then 15 one-token steps (the KV cache cropped back after each),
the median of the last 12.
"""
from __future__ import annotations

import time

import numpy as np

from hades.llm.models import PairSpec, encode_prompt, load_pair
from hades.llm.prompts import prompt_sets
from hades.llm.specdec import _Stepper, torch_threads

POINTS = ((30, None), (22, None), (11, None), (1, None), (1, 8192), (21, 8192))


def step_time(layers: int, vocab: int | None, prompt: str) -> float:
    pair = load_pair(PairSpec(draft_layers=tuple(range(layers)), draft_vocab=vocab))
    ids = encode_prompt(pair.tokenizer, prompt)
    st = _Stepper(pair.draft)
    st.feed(ids, 1, bf16=True)
    base = st.length
    times = []
    for r in range(15):
        a = time.perf_counter()
        st.feed([ids[r]], 1, bf16=True)
        times.append(time.perf_counter() - a)
        st.crop(base)
    return float(np.median(times[3:]))


def main() -> None:
    prompt = prompt_sets("grounded")["grounded"][0]
    res = {}
    with torch_threads(1):
        for layers, vocab in POINTS:
            res[(layers, vocab)] = step_time(layers, vocab, prompt)
            print(f"{layers} layers, head {vocab or 'full'}: {res[(layers, vocab)] * 1000:.2f} ms", flush=True)
    ks = [k for k, v in POINTS if v is None]
    slope, icpt = np.polyfit(np.array(ks, float), np.array([res[(k, None)] for k in ks]), 1)
    print(f"per layer {slope * 1000:.2f} ms, fixed part {icpt * 1000:.2f} ms "
          f"({icpt / res[(30, None)]:.2f} of a 30-layer step)")


if __name__ == "__main__":
    main()
