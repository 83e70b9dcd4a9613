"""`hades decode`: software speculative decoding throughput, the analogue of the paper's Table I.

For each gamma (default 0, 2, 4, 8, 16) it decodes a fixed built-in set of chat prompts with
the pair in use and reports tokens/s, speedup over gamma = 0, acceptance rate, mean tokens
per round and the share of wall time spent in the draft model, the target model and
verification (target softmax + quantisation + verify_round), as a table and optionally CSV.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass

from hades import limits
from hades.cli.common import int_list_arg
from hades.cli.trace import DEFAULT_THREADS, pair_spec_from_args, parse_gammas
from hades.errors import ConfigError
from hades.llm.specdec import AcceptanceStats

# Open-ended chat prompts: answers run well past the default token budget, so every gamma
# decodes the same number of tokens per prompt.
BUILTIN_PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a hash table works and when you would use one.",
    "Give me a packing list and some advice for a week-long hiking trip in the mountains.",
)
DEFAULT_GAMMAS = "0,2,4,8,16"
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


def add_parser(subparsers):
    p = subparsers.add_parser("decode", help="speculative decoding throughput vs gamma (Table I analogue)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--gammas", type=int_list_arg(limits.GAMMA), default=DEFAULT_GAMMAS, metavar="LIST",
                   help=f"gammas to run (default {DEFAULT_GAMMAS})")
    p.add_argument("--new-tokens", type=limits.NEW_TOKENS.arg(), default=DEFAULT_NEW_TOKENS,
                   help=f"tokens per prompt (default {DEFAULT_NEW_TOKENS})")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                   help="a prompt (repeatable); default: the built-in set of 3 chat prompts")
    p.add_argument("--raw-prompt", action="store_true", help="do not wrap prompts in the chat template")
    p.add_argument("--mode", choices=limits.MODES, default="stochastic")
    p.add_argument("--temperature", type=limits.TEMPERATURE.arg(), default=1.0, help="softmax temperature (0 = greedy)")
    p.add_argument("--seed", type=limits.SEED.arg(), default=0)
    p.add_argument("--prob-bits", type=limits.PROB_BITS.arg(), default=16, metavar="W")
    p.add_argument("--uniform-bits", type=limits.TRACE_UNIFORM_BITS.arg(), default=32, metavar="U")
    p.add_argument("--target", default=None, metavar="NAME_OR_PATH",
                   help="hub id, model directory or .gguf file (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--draft", default=None, metavar="NAME_OR_PATH",
                   help="draft model (default: layer-skip draft of the target)")
    p.add_argument("--draft-layers", default=None, metavar="LIST", help="layers the layer-skip draft keeps")
    p.add_argument("--no-download", action="store_true", help="never download weights from the hub")
    p.add_argument("--threads", type=limits.THREADS.arg(), default=DEFAULT_THREADS,
                   help="torch CPU threads (default 1: batch-1 decoding is memory-bound, see docs/MODELS.md)")
    p.add_argument("--csv", default=None, metavar="PATH", help="also write the table as CSV (atomically)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from hades.llm.specdec import torch_threads
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    with torch_threads(args.threads):
        return _run(args)


def _run(args) -> int:
    from tqdm import tqdm

    from hades.llm.models import encode_prompt, load_pair
    from hades.llm.specdec import DecodeConfig, SpeculativeDecoder, Timings

    gammas = parse_gammas(args.gammas)
    if args.new_tokens < 1:
        raise ConfigError(f"--new-tokens must be >= 1, got {args.new_tokens}")
    prompts = tuple(args.prompt) if args.prompt else BUILTIN_PROMPTS
    configs = [DecodeConfig(gammas=(g,), mode=args.mode, temperature=args.temperature, prob_bits=args.prob_bits,
                            uniform_bits=args.uniform_bits, seed=args.seed, max_new_tokens=args.new_tokens,
                            stop_at_eos=False) for g in gammas]
    for c in configs:
        c.check()
    spec = pair_spec_from_args(args)
    if sys.stderr.isatty():   # a status line only for people watching; errors stay one line
        print("hades decode: loading models ...", file=sys.stderr)
    pair = load_pair(spec)
    encoded = [encode_prompt(pair.tokenizer, p, chat=not args.raw_prompt) for p in prompts]

    # one short untimed run first, so one-off costs (allocator, kernels) do not land on gamma[0]
    warm = DecodeConfig(gammas=(min(2, max(gammas)),), mode=args.mode, temperature=args.temperature,
                        prob_bits=args.prob_bits, uniform_bits=args.uniform_bits, seed=args.seed,
                        max_new_tokens=4)
    SpeculativeDecoder(pair, warm).generate(encoded[0])

    rows = []
    with tqdm(total=len(gammas) * len(encoded) * args.new_tokens, desc="decoding", unit="tok",
              file=sys.stderr, disable=True if args.no_progress else None) as bar:
        for config in configs:
            row = GammaRow(gamma=config.gammas[0], timings=Timings())
            for ids in encoded:
                done = bar.n

                def on_round(res, done=done):
                    bar.update(min(done + args.new_tokens, done + len(res.new_tokens)) - bar.n)
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
    table = [_record(r, base) for r in rows]
    print(f"hades decode: {pair.description.get('target')} / draft {pair.description.get('draft')}"
          + (f" (layers {pair.description['draft_layers']})" if "draft_layers" in pair.description else "")
          + f"; mode {configs[0].trace_mode}, T={args.temperature}, {len(encoded)} prompts x "
          f"{args.new_tokens} tokens, {_threads()} threads")
    print(format_table(table))
    if args.csv:
        write_csv(args.csv, table)
        print(f"hades decode: wrote {args.csv}")
    return 0


def _threads() -> int:
    import torch
    return torch.get_num_threads()


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


def format_table(table: list[dict]) -> str:
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
                 "verify = target softmax + quantisation + verify_round")
    return "\n".join(lines)


def write_csv(path, table: list[dict]) -> None:
    from hades.fileio import atomic_write

    def _write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(table)
    atomic_write(path, _write)
