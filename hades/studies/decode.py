"""The paper's Table I on the pair in use: software speculative decoding throughput per gamma.

For each prompt set (hades.llm.prompts: chat, grounded) and each gamma it decodes the set's
prompts with the pair and reports tokens/s, speedup over gamma = 0 on the same prompts,
acceptance, mean tokens per round (= per target step) and the share of wall time spent in the draft
model, the target model and verification (everything between the target's logits and the
emitted tokens: target softmax + quantisation + verify_round with the v1 numerics,
verify_logit_round with the v2 numerics).
Every prompt runs `repeats` times, the configurations interleaved (each repeat runs every
configuration of a prompt back to back); a record sums each prompt's median-time repeat, and
speedup_min / speedup_max are the range of the repeats' whole-set speedups.
`hades decode` prints it; `hades plot --decode-csv` and `hades bench --decode-csv` read its CSV.
"""
from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass

from hades.errors import ConfigError
from hades.fileio import atomic_write
from hades.llm.specdec import AcceptanceStats, DecodeConfig, SpeculativeDecoder, Timings, with_measured_costs

DEFAULT_NEW_TOKENS = 24
DEFAULT_REPEATS = 3
CSV_FIELDS = ("prompt_set", "gamma", "mean_gamma", "prompts", "new_tokens", "rounds", "seconds", "tokens_per_s", "speedup",
              "acceptance", "accepted_share", "tokens_per_round", "draft_share", "target_share", "verification_share",
              "other_share", "draft_forward_s", "draft_rows_s", "target_forward_s", "target_rows_s",
              "verify_s", "other_s", "repeats", "speedup_min", "speedup_max", "row_cost", "draft_cost",
              "pass_costs", "seeds")


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
    repeats: int = 1
    row_cost: float | None = None      # the cost-aware controller's measured costs (target steps); None: fixed
    draft_cost: float | None = None
    pass_costs: tuple | None = None    # the cost-aware controller's measured pass table (None: none)
    seeds: str = ""                     # the seeds decoded ("0", or "0..R-1" with vary_seed)
    repeat_rates: list = dataclasses.field(default_factory=list)   # whole-set tokens/s of every repeat

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
                 progress=None, repeats: int = DEFAULT_REPEATS, vary_seed: bool = False) -> list[dict]:
    """Decode every prompt of every set at every configuration (one gamma each), `repeats` times;
    one record per (set, config), from each prompt's median-time repeat, the speedup relative to the
    set's own gamma 0 record (and its range over the repeats' whole-set speedups).
    vary_seed: repeat r decodes with seed + r (each configuration's own seed), so a sampled setting's
    repeats sample different texts; a record then totals every repeat (tokens, rounds and times),
    averaging over the texts as well as the timings, instead of taking a median-time repeat.
    progress(n): n more tokens decoded (at most max_new_tokens per prompt and repeat are counted)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats must be an integer >= 1, got {repeats!r}")
    if not isinstance(vary_seed, bool):
        raise ConfigError(f"vary_seed must be True or False, got {vary_seed!r}")
    first = next(iter(prompt_sets.values()))[0]
    # one short untimed run first, so one-off costs (allocator, kernels) do not land on gamma[0]
    warm = dataclasses.replace(configs[0], gammas=(min(2, max(c.max_gamma for c in configs)),), gamma_policy=None,
                               max_new_tokens=4)
    SpeculativeDecoder(pair, warm).generate(first)
    # the cost-aware controller's costs: measured once, before any timed run, shared by every prompt
    configs = [with_measured_costs(pair, c, first) for c in configs]
    table = []
    for name, prompts_ids in prompt_sets.items():
        table += _set_records(pair, configs, name, prompts_ids, progress, repeats, vary_seed)
    return table


def _set_records(pair, configs, name: str, prompts_ids, progress, repeats: int, vary_seed: bool) -> list[dict]:
    # Interleaved: in every repeat each prompt runs every configuration back to back, so the load
    # drift of a shared machine (minutes) hits all configurations alike and stays out of the
    # speedup column (measured before: a 2x "speedup" at 1.3 tokens per target step, gamma-major)
    # The order rotates by one configuration per (repeat, prompt): a configuration that always ran
    # first or last after a prompt change would carry that position's bias (a one-repeat pilot without
    # the rotation: the last two of six configurations 20 % faster at about the same tokens per
    # target step; order or drift, the rotation spreads either over every configuration).
    # A controller (auto, heuristic) carries its state from one prompt to the next within a repeat,
    # as in a server and as Hugging Face's persistent "heuristic" schedule does: a prompt gives a
    # dozen rounds, too few to learn the acceptance from the prior each time. Every repeat starts
    # afresh, so the repeats decode the same tokens (unless vary_seed gives each its own seed).
    runs = [[[] for _ in prompts_ids] for _ in configs]   # runs[config][prompt] = one DecodeResult per repeat
    for r in range(repeats):
        seeded = [dataclasses.replace(c, seed=c.seed + r) if vary_seed else c for c in configs]
        carried = [c.gamma_policy.controller() if c.gamma_policy is not None else None for c in configs]
        for p, ids in enumerate(prompts_ids):
            shift = (r * len(prompts_ids) + p) % len(configs)
            for c in list(range(len(configs)))[shift:] + list(range(len(configs)))[:shift]:
                config = seeded[c]
                counted = [0]

                def on_round(res, counted=counted, budget=config.max_new_tokens):
                    now = min(budget, len(res.new_tokens))
                    if progress is not None:
                        progress(now - counted[0])
                    counted[0] = now
                runs[c][p].append(SpeculativeDecoder(pair, config).generate(ids, on_round=on_round,
                                                                            controller=carried[c]))
    rows = []
    for config, per_prompt in zip(configs, runs):
        policy = config.gamma_policy
        row = GammaRow(gamma=policy.short_label if policy is not None else config.gammas[0], prompt_set=name,
                       timings=Timings(), repeats=repeats,
                       row_cost=getattr(policy, "row_cost", None), draft_cost=getattr(policy, "draft_cost", None),
                       pass_costs=getattr(policy, "pass_costs", None),
                       seeds=f"{config.seed}..{config.seed + repeats - 1}" if vary_seed and repeats > 1 else str(config.seed))
        for results in per_prompt:
            row.prompts += 1
            for res in (results if vary_seed else [median_run(results)]):
                row.new_tokens += len(res.new_tokens)
                row.rounds += res.num_rounds
                row.drafted += res.drafted
                row.tested += res.tested
                row.accepted += res.accepted
                row.timings.add(res.timings)
        # whole-set tokens/s of each repeat, for the range of the speedups measured side by side
        row.repeat_rates = [sum(len(results[r].new_tokens) for results in per_prompt)
                            / max(1e-12, sum(results[r].timings.total for results in per_prompt))
                            for r in range(repeats)]
        rows.append(row)
    base = next((r for r in rows if r.gamma == 0), None)
    return [_record(r, base) for r in rows]


def median_run(results):
    """The repeat whose total time is the median (the lower one of an even count). The repeats of a
    prompt decode the same tokens (same seed, and no decision depends on timings), so only the
    times differ; taking one whole run keeps its time shares consistent."""
    ordered = sorted(results, key=lambda r: r.timings.total)
    return ordered[(len(ordered) - 1) // 2]


def _record(row: GammaRow, base: GammaRow | None) -> dict:
    t = row.timings
    shares = t.shares()
    ratios = ([a / b for a, b in zip(row.repeat_rates, base.repeat_rates) if b > 0]
              if base is not None else [])
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
        "repeats": row.repeats,
        "speedup_min": round(min(ratios), 3) if ratios else "", "speedup_max": round(max(ratios), 3) if ratios else "",
        "row_cost": row.row_cost if row.row_cost is not None else "",
        "draft_cost": row.draft_cost if row.draft_cost is not None else "",
        "pass_costs": ",".join(f"{v:g}" for v in row.pass_costs) if row.pass_costs else "",
        "seeds": row.seeds,
    }


VERIFY_NOTE = {1: "verify = target softmax + quantisation + verify_round",
               2: "verify = verify_logit_round (weights of the target's bf16 logit rows, tests, sample)"}


def format_table(table: list[dict], trace_format: int = 1) -> str:
    """One block per prompt set (in table order), then the legend."""
    head = ("gamma", "mean g", "tokens/s", "speedup", "range", "accept", "acc/draft", "tok/round", "draft %",
            "target %", "verify %", "other %")
    lines = []
    for name in dict.fromkeys(r["prompt_set"] for r in table):
        rows = [r for r in table if r["prompt_set"] == name]
        how = (f"{rows[0]['repeats']} repeats in total, seeds {rows[0]['seeds']}" if ".." in rows[0]["seeds"]
               else f"median of {rows[0]['repeats']} repeats")
        lines.append(f"prompt set {name} ({rows[0]['prompts']} prompts, {how})")
        lines.append(" ".join(f"{h:>10}" for h in head))
        lines += [_format_row(r) for r in rows]
    lines.append("accept = accepted / accept tests (per-token alpha); acc/draft = accepted / drafted; "
                 "tok/round = tokens per target step; range = min..max of the repeats' speedups; mean g = drafts "
                 "proposed per round (auto: the controller's choice, the most expected tokens per unit of time; "
                 "heuristic: +2 after full acceptance, -1 after a rejection); " + VERIFY_NOTE[trace_format])
    costs = [r for r in table if r["row_cost"] != ""]
    for r in dict((r["gamma"], r) for r in costs).values():
        table_text = f" (the pass with g further tokens: +{r['pass_costs']} for g = 1, 2, ...)" if r["pass_costs"] else ""
        lines.append(f"{r['gamma']}: measured costs in target steps: {r['row_cost']} per further scored token"
                     f"{table_text}, {r['draft_cost']} per draft")
    return "\n".join(lines)


def _format_row(r: dict) -> str:
    cells = (r["gamma"], f"{r['mean_gamma']:.2f}", f"{r['tokens_per_s']:.1f}",
             f"{r['speedup']:.2f}x" if r["speedup"] != "" else "-",
             f"{r['speedup_min']:.2f}-{r['speedup_max']:.2f}" if r["speedup_min"] != "" else "-",
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
