"""`hades decode`: software speculative decoding throughput, the analogue of the paper's Table I
(hades.studies.decode): for each gamma (default 0, 2, 4, 8, 16; `auto` or `auto:START..MAX` is the
run-time controller of hades.llm.adaptive, a row beside them), the built-in prompt sets
(hades.llm.prompts: 3 chat prompts and 6 input-grounded tasks; --prompt-set) decoded with the
pair and draft method in use; tokens/s, speedup, acceptance and the time shares per prompt set,
as a table and optionally CSV.
"""
from __future__ import annotations

import sys

from hades import limits
from hades.cli.trace import (DEFAULT_THREADS, GAMMA_AUTO_HELP, add_draft_arguments, add_filter_arguments,
                             draft_method, filter_settings, gamma_list_arg, gamma_settings, lookup_ngram_from_args,
                             pair_spec_from_args, parse_gamma_entries)
from hades.errors import ConfigError
from hades.llm.lookup import format_ngram
from hades.llm.prompts import PROMPT_SET_CHOICES, prompt_sets
from hades.studies.decode import DEFAULT_NEW_TOKENS, DEFAULT_REPEATS, decode_table, format_table, write_csv

DEFAULT_GAMMAS = "0,2,4,8,16"
DECODE_FORMAT_HELP = (
    "the numerics of trace format 2 (default: the target's bf16 logits -> weight rows, drafts from the draft "
    "sampler, verify_logit_round, as `hades trace` records) or 1 (float softmax rows quantised to M, verify_round; "
    "the numerics of the Table I in docs/PERFORMANCE.md)")


def add_parser(subparsers):
    p = subparsers.add_parser("decode", help="speculative decoding throughput vs gamma (Table I analogue)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--gammas", type=gamma_list_arg("gammas"), default=DEFAULT_GAMMAS, metavar="LIST",
                   help=f"gammas to run, each a row of the table (default {DEFAULT_GAMMAS}); {GAMMA_AUTO_HELP}, "
                        "e.g. --gammas 0,auto,2,4,8")
    p.add_argument("--repeats", type=limits.REPEATS.arg(), default=DEFAULT_REPEATS, metavar="R",
                   help=f"decode every prompt R times, the configurations interleaved, and report each prompt's "
                        f"median-time repeat (default {DEFAULT_REPEATS}; the range column: the repeats' speedups)")
    p.add_argument("--vary-seed", action="store_true",
                   help="repeat r decodes with seed + r, and each row totals every repeat: a sampled setting's rows "
                        "then average over R sampled texts per prompt, not only over timings (without it the repeats "
                        "decode the same tokens and a row takes each prompt's median-time repeat)")
    p.add_argument("--new-tokens", type=limits.NEW_TOKENS.arg(), default=DEFAULT_NEW_TOKENS,
                   help=f"tokens per prompt (default {DEFAULT_NEW_TOKENS})")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                   help="a prompt (repeatable; reported as the prompt set 'custom'); default: --prompt-set")
    p.add_argument("--prompt-set", choices=PROMPT_SET_CHOICES, default=None,
                   help="built-in prompts: grounded (6 tasks on a given passage or code snippet), chat (3 open "
                        "chat prompts) or both (default; reported per set)")
    p.add_argument("--raw-prompt", action="store_true", help="do not wrap prompts in the chat template")
    p.add_argument("--mode", choices=limits.MODES, default="stochastic")
    p.add_argument("--temperature", type=limits.TEMPERATURE.arg(), default=1.0, help="softmax temperature (0 = greedy)")
    p.add_argument("--trace-format", type=int, choices=(1, 2), default=2, help=DECODE_FORMAT_HELP)
    add_filter_arguments(p)
    p.add_argument("--seed", type=limits.SEED.arg(), default=0)
    p.add_argument("--prob-bits", type=limits.PROB_BITS.arg(), default=16, metavar="W")
    p.add_argument("--uniform-bits", type=limits.TRACE_UNIFORM_BITS.arg(), default=32, metavar="U")
    p.add_argument("--target", default=None, metavar="NAME_OR_PATH",
                   help="hub id, model directory or .gguf file (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--draft", default=None, metavar="NAME_OR_PATH",
                   help="draft model (implies --draft-method model; default: prompt-lookup drafts)")
    p.add_argument("--draft-layers", default=None, metavar="LIST", help="layers the layer-skip draft keeps")
    add_draft_arguments(p)
    p.add_argument("--no-download", action="store_true", help="never download weights from the hub")
    p.add_argument("--threads", type=limits.THREADS.arg(), default=DEFAULT_THREADS,
                   help="torch CPU threads (default 1: batch-1 decoding is memory-bound, see docs/MODELS.md)")
    p.add_argument("--csv", default=None, metavar="PATH", help="also write the table as CSV (atomically)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from hades.fileio import check_output_path
    check_output_path(args.csv)   # before the models load and decode
    from hades.llm.specdec import torch_threads
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    with torch_threads(args.threads):
        return _run(args)


def _run(args) -> int:
    from tqdm import tqdm

    from hades.llm.models import encode_prompt, load_pair
    from hades.llm.specdec import DecodeConfig

    gammas = parse_gamma_entries(args.gammas, "gammas")
    if args.new_tokens < 1:
        raise ConfigError(f"--new-tokens must be >= 1, got {args.new_tokens}")
    if args.prompt and args.prompt_set is not None:
        raise ConfigError("give --prompt or --prompt-set, not both")
    sets = {"custom": tuple(args.prompt)} if args.prompt else prompt_sets(args.prompt_set or "both")
    filters = filter_settings(args)
    method, ngram = draft_method(args), lookup_ngram_from_args(args)
    configs = [DecodeConfig(**gamma_settings((g,)), mode=args.mode, temperature=args.temperature, prob_bits=args.prob_bits,
                            uniform_bits=args.uniform_bits, seed=args.seed, max_new_tokens=args.new_tokens,
                            stop_at_eos=False, trace_format=args.trace_format, lookup_ngram=ngram, **filters)
               for g in gammas]
    for c in configs:
        c.check()
    spec = pair_spec_from_args(args)
    if sys.stderr.isatty():   # a status line only for people watching; errors stay one line
        print("hades decode: loading models ...", file=sys.stderr)
    pair = load_pair(spec)
    encoded = {name: [encode_prompt(pair.tokenizer, p, chat=not args.raw_prompt) for p in texts]
               for name, texts in sets.items()}
    n_prompts = sum(len(v) for v in encoded.values())

    with tqdm(total=len(configs) * n_prompts * args.new_tokens * args.repeats, desc="decoding", unit="tok",
              file=sys.stderr, disable=True if args.no_progress else None) as bar:
        table = decode_table(pair, configs, encoded, progress=bar.update, repeats=args.repeats,
                             vary_seed=args.vary_seed)

    draft = (f"prompt lookup (n-gram {format_ngram(ngram)}, no draft model)" if method == "lookup"
             else pair.description.get("draft"))
    print(f"hades decode: {pair.description.get('target')} / draft {draft}"
          + (f" (layers {pair.description['draft_layers']})" if "draft_layers" in pair.description else "")
          + f"; mode {configs[0].trace_mode}, T={args.temperature}"
          + "".join(f", {name} {value}" for name, value in (("min-p", args.min_p), ("top-k", args.top_k),
                                                            ("top-p", args.top_p), ("draft top-k", args.draft_top_k),
                                                            ("draft top-p", args.draft_top_p)) if value is not None)
          + f", trace-format {args.trace_format} numerics, {n_prompts} prompts x "
          f"{args.new_tokens} tokens x {args.repeats} repeats"
          + (f" (seeds {args.seed}..{args.seed + args.repeats - 1})" if args.vary_seed else "") + f", {_threads()} threads")
    print(format_table(table, trace_format=args.trace_format))
    if args.csv:
        write_csv(args.csv, table)
        print(f"hades decode: wrote {args.csv}")
    return 0


def _threads() -> int:
    import torch
    return torch.get_num_threads()


