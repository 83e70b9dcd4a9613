"""Measure the total-variation distance between the integer weights w / Z of bf16 logit rows
(docs/NUMERICS.md section 18) and the float64 softmax of v / T, on real rows of the embedded
SmolLM2-135M-Instruct (needs the [llm] extra).

    .venv/bin/python scripts/logit_tv.py [--weight-bits 16 20 24] [--temperatures 0.7 1 1.5]

Rows: the logits at every position of a few chat-templated texts (teacher forcing), cast to
bf16 by torch. Prints, per (W, T, min_p), the median, 90th percentile and maximum TV over rows.
"""
from __future__ import annotations

import argparse

import numpy as np

from hades import numerics
from hades.llm.models import encode_prompt, load_causal_lm, load_tokenizer

TEXTS = [
    "Explain in a few sentences why the sky is blue, and why sunsets are red.",
    "Write a short Python function that returns the n-th Fibonacci number, with a docstring.",
    "The mitochondrion is the powerhouse of the cell. Summarise what that means for a child.",
    "List three differences between a list and a tuple in Python, one line each.",
]


def real_rows() -> np.ndarray:
    import torch
    tok, model = load_tokenizer(None), load_causal_lm(None)
    rows = []
    with torch.no_grad():
        for text in TEXTS:
            ids = torch.tensor([encode_prompt(tok, text)])
            logits = model(ids).logits[0].to(torch.bfloat16)        # [positions, V]
            rows.append(logits.view(torch.int16).numpy().view(np.uint16))
    return np.concatenate(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weight-bits", type=int, nargs="+", default=[16, 20, 24])
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.7, 1.0, 1.5])
    ap.add_argument("--min-p", type=float, nargs="+", default=[0.0, 0.05])
    args = ap.parse_args()
    bits = real_rows()
    print(f"{bits.shape[0]} real rows of V = {bits.shape[1]}")
    for W in args.weight_bits:
        for T in args.temperatures:
            for mp in args.min_p:
                tv = numerics.logit_weights_tv_distance(bits, T, W, numerics.fraction_units(mp))
                print(f"W {W:2d}  T {T:4.2f}  min_p {mp:4.2f}:  TV median {np.median(tv):.2e}  "
                      f"p90 {np.quantile(tv, 0.9):.2e}  max {tv.max():.2e}")


if __name__ == "__main__":
    main()
