"""The paper's Table I on the pair in use: software speculative decoding throughput per gamma.

For each gamma it decodes a set of prompts with the pair and reports tokens/s, speedup over
gamma = 0, acceptance, mean tokens per round and the share of wall time spent in the draft
model, the target model and verification (everything between the target's logits and the
emitted tokens: target softmax + quantisation + verify_round with the v1 numerics,
verify_logit_round with the v2 numerics).
`hades decode` prints it; `hades plot --decode-csv` and `hades bench --decode-csv` read its CSV.
"""
from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass

from hades.fileio import atomic_write
from hades.llm.specdec import AcceptanceStats, DecodeConfig, SpeculativeDecoder, Timings

# Open-ended chat prompts: answers run well past the default token budget, so every gamma
# decodes the same number of tokens per prompt.
BUILTIN_PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a hash table works and when you would use one.",
    "Give me a packing list and some advice for a week-long hiking trip in the mountains.",
)
DEFAULT_NEW_TOKENS = 24
CSV_FIELDS = ("gamma", "prompts", "new_tokens", "rounds", "seconds", "tokens_per_s", "speedup",
              "acceptance", "accepted_share", "tokens_per_round", "draft_share", "target_share", "verification_share",
              "other_share", "draft_forward_s", "draft_rows_s", "target_forward_s", "target_rows_s",
              "verify_s", "other_s")


@dataclass
class GammaRow(AcceptanceStats):
    """Totals over the prompt set for one gamma."""
    gamma: int
    prompts: int = 0
    new_tokens: int = 0
    rounds: int = 0
    drafted: int = 0
    tested: int = 0
    accepted: int = 0
    timings: object = None

    @property
    def seconds(self) -> float:
        return self.timings.total

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_round(self) -> float:
        return self.new_tokens / max(1, self.rounds)


def decode_table(pair, configs: list[DecodeConfig], prompts_ids: list[list[int]], progress=None) -> list[dict]:
    """Decode every prompt at every configuration (one gamma each); one record per config.
    progress(n): n more tokens decoded (at most max_new_tokens per prompt are counted)."""
    # one short untimed run first, so one-off costs (allocator, kernels) do not land on gamma[0]
    warm = dataclasses.replace(configs[0], gammas=(min(2, max(c.gammas[0] for c in configs)),), max_new_tokens=4)
    SpeculativeDecoder(pair, warm).generate(prompts_ids[0])
    rows = []
    for config in configs:
        row = GammaRow(gamma=config.gammas[0], timings=Timings())
        for ids in prompts_ids:
            counted = [0]

            def on_round(res, counted=counted, budget=config.max_new_tokens):
                now = min(budget, len(res.new_tokens))
                if progress is not None:
                    progress(now - counted[0])
                counted[0] = now
            res = SpeculativeDecoder(pair, config).generate(ids, on_round=on_round)
            row.prompts += 1
            row.new_tokens += len(res.new_tokens)
            row.rounds += res.num_rounds
            row.drafted += res.drafted
            row.tested += res.tested
            row.accepted += res.accepted
            row.timings.add(res.timings)
        rows.append(row)
    base = next((r for r in rows if r.gamma == 0), None)
    return [_record(r, base) for r in rows]


def _record(row: GammaRow, base: GammaRow | None) -> dict:
    t = row.timings
    shares = t.shares()
    return {
        "gamma": row.gamma, "prompts": row.prompts, "new_tokens": row.new_tokens, "rounds": row.rounds,
        "seconds": round(row.seconds, 3), "tokens_per_s": round(row.tokens_per_s, 2),
        "speedup": round(row.tokens_per_s / base.tokens_per_s, 3) if base and base.tokens_per_s > 0 else "",
        "acceptance": round(row.acceptance_rate, 3) if row.acceptance_rate is not None else "",
        "accepted_share": round(row.accepted_share, 3) if row.accepted_share is not None else "",
        "tokens_per_round": round(row.tokens_per_round, 3),
        "draft_share": round(shares["draft"], 3), "target_share": round(shares["target"], 3),
        "verification_share": round(shares["verification"], 3), "other_share": round(shares["other"], 3),
        "draft_forward_s": round(t.draft_forward, 3), "draft_rows_s": round(t.draft_rows, 3),
        "target_forward_s": round(t.target_forward, 3), "target_rows_s": round(t.target_rows, 3),
        "verify_s": round(t.verify, 3), "other_s": round(t.other, 3),
    }


VERIFY_NOTE = {1: "verify = target softmax + quantisation + verify_round",
               2: "verify = verify_logit_round (weights of the target's bf16 logit rows, tests, sample)"}


def format_table(table: list[dict], trace_format: int = 1) -> str:
    head = ("gamma", "tokens/s", "speedup", "accept", "acc/draft", "tok/round", "draft %", "target %",
            "verify %", "other %")
    lines = [" ".join(f"{h:>9}" for h in head)]
    for r in table:
        cells = (r["gamma"], f"{r['tokens_per_s']:.1f}",
                 f"{r['speedup']:.2f}x" if r["speedup"] != "" else "-",
                 f"{r['acceptance']:.3f}" if r["acceptance"] != "" else "-",
                 f"{r['accepted_share']:.3f}" if r["accepted_share"] != "" else "-",
                 f"{r['tokens_per_round']:.2f}",
                 f"{100 * r['draft_share']:.1f}", f"{100 * r['target_share']:.1f}",
                 f"{100 * r['verification_share']:.1f}", f"{100 * r['other_share']:.1f}")
        lines.append(" ".join(f"{c:>9}" for c in cells))
    lines.append("accept = accepted / accept tests (per-token alpha); acc/draft = accepted / drafted; "
                 + VERIFY_NOTE[trace_format])
    return "\n".join(lines)


def write_csv(path, table: list[dict]) -> None:
    def _write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(table)
    atomic_write(path, _write)
