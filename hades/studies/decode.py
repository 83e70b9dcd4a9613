"""The paper's Table I on the pair in use: software speculative decoding throughput per gamma.

For each prompt set (hades.llm.prompts: chat, grounded) and each gamma it decodes the set's
prompts with the pair and reports tokens/s, speedup over gamma = 0 on the same prompts,
acceptance, mean tokens per round (= per target step) and the share of wall time spent in the draft
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

DEFAULT_NEW_TOKENS = 24
CSV_FIELDS = ("prompt_set", "gamma", "mean_gamma", "prompts", "new_tokens", "rounds", "seconds", "tokens_per_s", "speedup",
              "acceptance", "accepted_share", "tokens_per_round", "draft_share", "target_share", "verification_share",
              "other_share", "draft_forward_s", "draft_rows_s", "target_forward_s", "target_rows_s",
              "verify_s", "other_s")


@dataclass
class GammaRow(AcceptanceStats):
    """Totals over one prompt set for one gamma (an int, or the controller's label 'auto:START..MAX')."""
    gamma: int | str
    prompt_set: str = ""
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

    @property
    def mean_gamma(self) -> float:
        """Drafts proposed per round (fixed model drafts: the gamma; auto and lookup: what the rounds used)."""
        return self.drafted / max(1, self.rounds)


def decode_table(pair, configs: list[DecodeConfig], prompt_sets: dict[str, list[list[int]]],
                 progress=None) -> list[dict]:
    """Decode every prompt of every set at every configuration (one gamma each); one record per
    (set, config), the speedup relative to the set's own gamma 0 record.
    progress(n): n more tokens decoded (at most max_new_tokens per prompt are counted)."""
    # one short untimed run first, so one-off costs (allocator, kernels) do not land on gamma[0]
    warm = dataclasses.replace(configs[0], gammas=(min(2, max(c.max_gamma for c in configs)),), gamma_policy=None,
                               max_new_tokens=4)
    SpeculativeDecoder(pair, warm).generate(next(iter(prompt_sets.values()))[0])
    table = []
    for name, prompts_ids in prompt_sets.items():
        table += _set_records(pair, configs, name, prompts_ids, progress)
    return table


def _set_records(pair, configs, name: str, prompts_ids, progress) -> list[dict]:
    # prompt-major, every configuration of a prompt back to back: on a shared machine the load
    # drifts over minutes, and decoding all prompts of one gamma before the next would hand that
    # drift to the speedup column (measured: a 2x "speedup" at 1.3 tokens per target step)
    rows = [GammaRow(gamma=config.gamma_label if config.gamma_policy is not None else config.gammas[0],
                     prompt_set=name, timings=Timings()) for config in configs]
    for ids in prompts_ids:
        for config, row in zip(configs, rows):
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
    base = next((r for r in rows if r.gamma == 0), None)
    return [_record(r, base) for r in rows]


def _record(row: GammaRow, base: GammaRow | None) -> dict:
    t = row.timings
    shares = t.shares()
    return {
        "prompt_set": row.prompt_set, "gamma": row.gamma, "mean_gamma": round(row.mean_gamma, 3), "prompts": row.prompts, "new_tokens": row.new_tokens,
        "rounds": row.rounds,
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
    """One block per prompt set (in table order), then the legend."""
    head = ("gamma", "mean g", "tokens/s", "speedup", "accept", "acc/draft", "tok/round", "draft %", "target %",
            "verify %", "other %")
    lines = []
    for name in dict.fromkeys(r["prompt_set"] for r in table):
        rows = [r for r in table if r["prompt_set"] == name]
        lines.append(f"prompt set {name} ({rows[0]['prompts']} prompts)")
        lines.append(" ".join(f"{h:>10}" for h in head))
        lines += [_format_row(r) for r in rows]
    lines.append("accept = accepted / accept tests (per-token alpha); acc/draft = accepted / drafted; "
                 "tok/round = tokens per target step; mean g = drafts proposed per round (auto: the controller's "
                 "choice, +2 after full acceptance, -1 after a rejection); " + VERIFY_NOTE[trace_format])
    return "\n".join(lines)


def _format_row(r: dict) -> str:
    cells = (r["gamma"], f"{r['mean_gamma']:.2f}", f"{r['tokens_per_s']:.1f}",
             f"{r['speedup']:.2f}x" if r["speedup"] != "" else "-",
             f"{r['acceptance']:.3f}" if r["acceptance"] != "" else "-",
             f"{r['accepted_share']:.3f}" if r["accepted_share"] != "" else "-",
             f"{r['tokens_per_round']:.2f}",
             f"{100 * r['draft_share']:.1f}", f"{100 * r['target_share']:.1f}",
             f"{100 * r['verification_share']:.1f}", f"{100 * r['other_share']:.1f}")
    return " ".join(f"{c:>10}" for c in cells)


def write_csv(path, table: list[dict]) -> None:
    def _write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(table)
    atomic_write(path, _write)
