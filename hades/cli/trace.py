"""`hades trace`: record a decode trace (file format v2 by default, v1 with --trace-format 1) from a real model pair or synthetically.

Real pair (default: the embedded SmolLM2 target with prompt-lookup drafts), v2: bf16 logit rows
and the sampling settings of every round (verified by the logit block at every level):
    hades trace -o t.npz --prompt "Write a haiku about the sea." --gamma 4 --rounds 8 --seed 0
    hades trace --temperature 0.8 --min-p 0.05 -o rl.npz
    hades trace --temperature 0.7 --top-p 0.9 --top-k 50 -o chat.npz
Synthetic (no model, LLM-like peaked rows):
    hades trace --synthetic -o l.npz --vocab 512 --rounds 16 --gamma 2,4
Prompt-lookup drafts (n-gram matches in the prompt and the generated text, one-hot rows, no draft model):
    hades trace --draft-method lookup --lookup-ngram 1..3 --mode greedy --prompt-file passage.txt -o lk.npz
    hades trace --draft-method lookup --temperature 0.7 --prompt-name summarise -o lk.npz   # a shipped grounded prompt
The cheaper self-speculative draft (fewer layers, an FR-Spec head over the most frequent tokens):
    hades trace --draft-method fast-skip -o fs.npz;  hades trace --draft-layers 0-4,27-29 --draft-vocab 8192 ...
Adaptive gamma (a run-time controller: the most expected tokens per unit of time, measured costs):
    hades trace --gamma auto -o a.npz --new-tokens 32;  hades trace --gamma auto:2..8 --draft-method layer-skip ...
Trace file v1 (probability rows, verified by the probability-row block):
    hades trace --trace-format 1 -o r.npz --gamma 4 --rounds 16
    hades trace --synthetic --trace-format 1 -o t.npz --vocab 512 --rounds 16 --gamma 2,4,8

The trace's meta records how to regenerate it exactly (the command line, models, prompt,
seed, temperature, library versions).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hades import limits
import argparse

from hades.cli.common import parse_int_list
from hades.errors import ConfigError
from hades.llm.adaptive import GammaPolicy, is_auto, parse_auto   # pure Python, no torch
from hades.llm.lookup import DEFAULT_NGRAM, format_ngram, parse_ngram   # numpy only, no torch
from hades.llm.prompts import GROUNDED   # pure Python

DEFAULT_PROMPT = "Write a haiku about the sea, then explain its imagery in two sentences."
DEFAULT_THREADS = 1
GROUNDED_NAMES = tuple(name for name, _ in GROUNDED)
SYNTHETIC_ONLY = ("vocab", "greedy_share", "onehot_share", "filter_mix")
FILTER_OPTIONS = ("min_p", "top_k", "top_p", "draft_top_k", "draft_top_p")
MODEL_ONLY = ("target", "draft", "draft_layers", "draft_method", "lookup_ngram", "prompt", "prompt_file",
              "prompt_name", "draft_vocab", "draft_weights", "new_tokens", "temperature", "raw_prompt", "no_download") + FILTER_OPTIONS
DRAFT_METHODS = ("layer-skip", "fast-skip", "int8", "model", "lookup")
SELF_DRAFTS = ("layer-skip", "fast-skip", "int8")   # the target's own layers: --draft-layers applies
DRAFT_METHOD_HELP = (
    "lookup (default; --draft implies model, --draft-layers / --draft-vocab imply layer-skip): prompt lookup, the "
    "tokens that followed the most recent earlier match of the context's longest suffix n-gram (--lookup-ngram), "
    "one-hot draft rows, no draft model; gamma is then the most drafts per round, and a round without a match "
    "has none; layer-skip: the target running a subset of its layers (--draft-layers); fast-skip: the cheaper "
    "self-speculative draft, fewer layers chosen by measured tokens/s and an FR-Spec head over the most frequent "
    "tokens (--draft-vocab; defaults in docs/MODELS.md); int8: the target's own layers with int8 weights "
    "(--draft-weights int8, all layers by default: the cheapest self-speculative draft per accepted token); model: a separate "
    "draft model (--draft, which implies it)")
V2_ONLY = ("greedy_share", "onehot_share", "filter_mix") + FILTER_OPTIONS
# --filter-mix: the per-round choices of the synthetic v2 rounds (0 / 1 = off; V-sized and
# one-unit settings included, so every edge of NUMERICS.md section 15 occurs)
FILTER_MIX = dict(top_ks=(0, 1, 5, 50, 1 << 24), top_ps=(1.0, 0.5, 0.9, 0.95, 2.0 ** -16),
                  draft_top_ks=(0, 20), draft_top_ps=(1.0, 0.8))
TRACE_FORMAT_HELP = (
    "2 (default): bf16 logit rows with per-round sampling parameters (docs/TRACE_FORMAT.md), verified by the "
    "logit block at every level, --prob-bits is then W of the weight rows; 1: probability rows, verified by the "
    "probability-row block")


def add_parser(subparsers):
    p = subparsers.add_parser("trace", help="record a decode trace from a model pair or synthetically",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", required=True, metavar="PATH", help="trace file to write (.npz)")
    p.add_argument("--synthetic", action="store_true", help="synthetic rows instead of a model pair")
    g = p.add_argument_group("both")
    g.add_argument("--gamma", type=gamma_list_arg("gamma"), default="4", metavar="G[,G...]|auto[:START..MAX]",
                   help="drafts per round; a list cycles per round, ranges like 1-4 work (default 4); "
                        f"{GAMMA_AUTO_HELP} (model traces only)")
    g.add_argument("--gamma-max", type=limits.GAMMA_MAX.arg(), default=None, metavar="G",
                   help="G of the file (default: largest gamma)")
    g.add_argument("--rounds", type=limits.ROUNDS.arg(), default=None,
                   help="rounds to record (default 16, or until --new-tokens)")
    g.add_argument("--mode", choices=limits.MODES, default="stochastic")
    g.add_argument("--seed", type=limits.SEED.arg(), default=0)
    g.add_argument("--prob-bits", type=limits.PROB_BITS.arg(), default=16, metavar="W",
                   help="bits per probability entry (M = 2^W - 1; 2..24, what the hardware verifies)")
    g.add_argument("--uniform-bits", type=limits.TRACE_UNIFORM_BITS.arg(), default=32, metavar="U",
                   help="bits per uniform (the file format's 1..64; the hardware verifies 1..40)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    g.add_argument("--trace-format", type=int, choices=(1, 2), default=2, help=TRACE_FORMAT_HELP)
    from hades.cli.tree import add_trace_arguments
    add_trace_arguments(g)
    s = p.add_argument_group("synthetic only")
    s.add_argument("--vocab", type=limits.VOCAB_SIZE.arg(), default=None, help="vocabulary size (default 512)")
    s.add_argument("--greedy-share", type=float, default=None, metavar="P",
                   help="--trace-format 2: share of greedy rounds (default 0.25; --mode greedy: all)")
    s.add_argument("--onehot-share", type=float, default=None, metavar="P",
                   help="--trace-format 2: share of rounds with one-hot drafts, no draft model (default 0.25)")
    s.add_argument("--filter-mix", action="store_true", default=None,
                   help="--trace-format 2: draw top-k (0, 1, 5, 50, 2^24) and top-p (1, 0.5, 0.9, 0.95, 2^-16) per "
                        "round, and the draft side's own (top-k 0 / 20, top-p 1 / 0.8); default: no filters")
    m = p.add_argument_group("model pair only")
    m.add_argument("--target", default=None, metavar="NAME_OR_PATH",
                   help="hub id, model directory or .gguf file (default: embedded SmolLM2-135M-Instruct)")
    m.add_argument("--draft", default=None, metavar="NAME_OR_PATH",
                   help="draft model sharing the target's tokenizer (implies --draft-method model; default: "
                        "prompt-lookup drafts)")
    m.add_argument("--draft-layers", default=None, metavar="LIST",
                   help="layers the layer-skip draft keeps, e.g. '0-4,6-11' (default for SmolLM2: see docs/MODELS.md)")
    add_draft_arguments(m)
    m.add_argument("--prompt", default=None, help=f"prompt text (default: {DEFAULT_PROMPT!r})")
    m.add_argument("--prompt-file", default=None, metavar="PATH", help="read the prompt from a file")
    m.add_argument("--prompt-name", default=None, choices=GROUNDED_NAMES,
                   help="a grounded prompt shipped in the package (hades/llm/prompts.py; summarise is the "
                        "prompt of the cached real traces)")
    m.add_argument("--raw-prompt", action="store_true", help="do not wrap the prompt in the chat template")
    m.add_argument("--new-tokens", type=limits.NEW_TOKENS.arg(), default=None,
                   help="stop once this many tokens were emitted")
    m.add_argument("--temperature", type=limits.TEMPERATURE.arg(), default=None,
                   help="softmax temperature (default 1; 0 = greedy)")
    add_filter_arguments(m)
    m.add_argument("--no-download", action="store_true", help="never download weights from the hub")
    m.add_argument("--threads", type=limits.THREADS.arg(), default=DEFAULT_THREADS,
                   help="torch CPU threads (default 1: batch-1 decoding is memory-bound, see docs/MODELS.md)")
    p.set_defaults(func=run)
    return p


def add_draft_arguments(group) -> None:
    """--draft-method and --lookup-ngram (`hades trace` and `hades decode`)."""
    group.add_argument("--draft-method", choices=DRAFT_METHODS, default=None, help=DRAFT_METHOD_HELP)
    group.add_argument("--draft-vocab", type=limits.VOCAB_MAX.arg("draft_vocab"), default=None, metavar="N",
                       help="draft models: an FR-Spec LM head that scores only the N most frequent tokens (the draft "
                            "samples from its own truncated row, so verification stays exact; default: every "
                            "token, fast-skip 8192)")
    group.add_argument("--draft-weights", choices=("float", "int8"), default=None,
                       help="draft models: compute with the float weights (default) or with int8 copies of every "
                            "Linear layer's weights (torch dynamic quantisation; --draft-method int8 implies it); "
                            "the target always computes in float, and verification stays exact")
    group.add_argument("--lookup-ngram", default=None, metavar="MIN..MAX",
                       help=f"--draft-method lookup: suffix n-gram lengths matched, longest first "
                            f"(default {format_ngram(DEFAULT_NGRAM)}; '2' is 2..2)")


def add_filter_arguments(group) -> None:
    """The sampling filters of trace format 2 (NUMERICS.md section 15; `hades trace` and `hades decode`)."""
    group.add_argument("--min-p", type=float, default=None, metavar="P",
                       help="--trace-format 2: min-p filter of both sides, a fraction in [0, 1] (default 0 = off)")
    group.add_argument("--top-k", type=limits.TOP_K.arg(), default=None, metavar="N",
                       help="--trace-format 2: top-k filter, keep the N most likely tokens (default 0 = off)")
    group.add_argument("--top-p", type=limits.TOP_P.arg(), default=None, metavar="P",
                       help="--trace-format 2: top-p (nucleus) filter after top-k, a fraction in (0, 1] "
                            "(default 1 = off)")
    group.add_argument("--draft-top-k", type=limits.TOP_K.arg("draft_top_k"), default=None, metavar="N",
                       help="--trace-format 2: the draft's own top-k (default: --top-k)")
    group.add_argument("--draft-top-p", type=limits.TOP_P.arg("draft_top_p"), default=None, metavar="P",
                       help="--trace-format 2: the draft's own top-p (default: --top-p)")


def filter_settings(args) -> dict:
    """DecodeConfig's filter fields from the command line; the options apply to trace format 2 only."""
    used = [f"--{k.replace('_', '-')}" for k in FILTER_OPTIONS if getattr(args, k) is not None]
    if used and args.trace_format != 2:
        raise ConfigError(f"{used[0]} applies to --trace-format 2 only")
    return dict(min_p=args.min_p if args.min_p is not None else 0.0, top_k=args.top_k if args.top_k is not None else 0,
                top_p=args.top_p if args.top_p is not None else 1.0, draft_top_k=args.draft_top_k,
                draft_top_p=args.draft_top_p)


def draft_method(args) -> str:
    """The draft method of the command line, its flags checked: --draft implies model, --draft-layers or
    --draft-vocab alone imply layer-skip, --draft-weights int8 alone int8, and without any of them it is prompt lookup (the draft that is
    accepted on this model, docs/MODELS.md)."""
    implied = ("model" if args.draft is not None
               else "layer-skip" if args.draft_layers is not None or getattr(args, "draft_vocab", None) is not None
               else "int8" if getattr(args, "draft_weights", None) == "int8"
               else "lookup")
    method = args.draft_method or implied
    if method == "model" and args.draft is None:
        raise ConfigError("--draft-method model needs --draft NAME_OR_PATH")
    if method != "model" and args.draft is not None:
        raise ConfigError(f"--draft applies to --draft-method model, not {method}")
    if method not in SELF_DRAFTS and args.draft_layers is not None:
        raise ConfigError(f"--draft-layers applies to --draft-method layer-skip, fast-skip or int8, not {method}")
    if method == "lookup" and getattr(args, "draft_vocab", None) is not None:
        raise ConfigError("--draft-vocab applies to draft models, not --draft-method lookup")
    if method == "lookup" and getattr(args, "draft_weights", None) is not None:
        raise ConfigError("--draft-weights applies to draft models, not --draft-method lookup")
    if method == "int8" and getattr(args, "draft_weights", None) == "float":
        raise ConfigError("--draft-method int8 computes with int8 weights; drop --draft-weights float")
    if method != "lookup" and args.lookup_ngram is not None:
        raise ConfigError("--lookup-ngram applies to --draft-method lookup only")
    return method


def lookup_ngram_from_args(args) -> tuple[int, int] | None:
    """(n_min, n_max) for --draft-method lookup, None for the other methods."""
    if draft_method(args) != "lookup":
        return None
    return parse_ngram(args.lookup_ngram) if args.lookup_ngram is not None else DEFAULT_NGRAM


GAMMA_AUTO_HELP = (
    "auto: a run-time controller picks each round's gamma in [1, MAX], the one with the most expected tokens "
    "per unit of time, from a running per-position acceptance estimate and the costs of a further scored token "
    "and of a draft (measured once before decoding, or given: auto:START..MAX:rowR:draftD; auto = auto:4..16); "
    "heuristic[:START..MAX]: Hugging Face's +2 after full acceptance / -1 after a rejection; with "
    "--draft-method lookup the controller caps how many tokens the lookup proposes")


def parse_gamma_entries(text, name: str = "gamma") -> tuple[int | GammaPolicy, ...]:
    """'auto,2,4-6' -> (CostAwareGamma(), 2, 4, 5, 6): integers and ranges as parse_int_list, 'auto...'
    and 'heuristic...' as hades.llm.adaptive.parse_auto, in order (ConfigError otherwise)."""
    if isinstance(text, (tuple, list)):
        return tuple(text)
    if not any(is_auto(part) for part in str(text).split(",")):   # integers only: parse_int_list's messages
        return parse_int_list(text, limits.GAMMA, name=name)
    entries: list[int | GammaPolicy] = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        entries.extend([parse_auto(part)] if is_auto(part) else parse_int_list(part, limits.GAMMA, name=name))
        if len(entries) > limits.LIST_VALUES_MAX:
            raise ConfigError(f"{name}: more than {limits.LIST_VALUES_MAX} values in {limits.show(str(text))}")
    if not entries:
        raise ConfigError(f"{name}: expected at least one gamma (integers or auto), got {limits.show(str(text))}")
    return tuple(entries)


def gamma_list_arg(name: str):
    """argparse type= for --gamma / --gammas: parse_gamma_entries with its messages."""
    def convert(text):
        try:
            return parse_gamma_entries(text, name)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = f"{name} list"
    return convert


def gamma_settings(entries) -> dict:
    """DecodeConfig's gammas / gamma_policy for one run: fixed gammas (a cycle), or one auto entry alone."""
    entries = parse_gamma_entries(entries)
    policies = [e for e in entries if isinstance(e, GammaPolicy)]
    if not policies:
        return {"gammas": parse_gammas(entries)}
    if len(entries) > 1:
        raise ConfigError("--gamma auto chooses every round's gamma; give it alone, not in a list")
    return {"gamma_policy": policies[0]}


def parse_gammas(text) -> tuple[int, ...]:
    """A gamma list ('2,4,8', '1-4', in order) or an already parsed tuple, checked (hades.limits.GAMMA)."""
    if isinstance(text, (tuple, list)):
        if any(isinstance(v, GammaPolicy) for v in text):
            raise ConfigError("gamma auto needs a model pair (the controller follows the drafts' real acceptance), "
                              "not --synthetic")
        return limits.check_values(text, limits.GAMMA)
    return parse_int_list(text, limits.GAMMA)


def invoked_command_line() -> str | None:
    """The command line as typed, when this process is the `hades` program (not a test harness
    calling cli.main, whose sys.argv belongs to someone else)."""
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if prog.startswith("hades") or (prog == "cli.py" and Path(sys.argv[0]).parent.name == "hades"):
        return shlex.join(["hades"] + sys.argv[1:])
    return None


def run(args) -> int:
    from hades.fileio import check_output_path
    out = Path(check_output_path(args.out))   # an unusable -o is refused before any model loads
    if args.tree is not None or args.children is not None:   # trees: hades/cli/tree.py
        return _tree(args, out)
    if args.trace_format != 2:
        used = [f"--{k.replace('_', '-')}" for k in V2_ONLY if getattr(args, k) is not None]
        if used:
            raise ConfigError(f"{used[0]} applies to --trace-format 2 only")
    if args.synthetic:
        used = [f"--{k.replace('_', '-')}" for k in MODEL_ONLY if getattr(args, k) not in (None, False)]
        if used:
            raise ConfigError(f"{used[0]} applies to model traces, not --synthetic")
        trace = _synthetic(args)
    else:
        used = [f"--{k.replace('_', '-')}" for k in SYNTHETIC_ONLY if getattr(args, k) is not None]
        if used:
            raise ConfigError(f"{used[0]} applies to --synthetic traces only (a model's V is its logits width)")
        trace = _from_models(args, out)
    typed = invoked_command_line()
    if typed is not None:
        trace.meta["command_line"] = typed
    from hades.traces.format import write_trace
    write_trace(out, trace)
    acc = trace.expected_accepted
    drafted = int(trace.gamma.sum())
    rate = f", acceptance {acc.sum() / drafted:.3f}" if drafted else ""
    print(f"hades trace: {trace.num_rounds} rounds, mean accepted {acc.mean():.2f} per round{rate}, "
          f"V={trace.vocab_size}, mode {trace.mode} -> {out}")
    return 0


def _tree(args, out: Path) -> int:
    from hades.cli.tree import tree_trace, tree_trace_summary
    if args.tree is None:
        raise ConfigError("--children applies to --tree")
    trace = tree_trace(args, out)
    typed = invoked_command_line()
    if typed is not None:
        trace.meta["command_line"] = typed
    from hades.traces.format import write_trace
    write_trace(out, trace)
    print(tree_trace_summary(trace, out))
    return 0


def _synthetic(args):
    if args.trace_format == 2:
        return _synthetic_v2(args)
    from hades.traces.synthetic import SyntheticSpec, synthetic_trace
    spec = SyntheticSpec(vocab_size=args.vocab if args.vocab is not None else 512,
                         rounds=args.rounds if args.rounds is not None else 16,
                         gammas=parse_gammas(args.gamma), gamma_max=args.gamma_max, mode=args.mode,
                         seed=args.seed, prob_bits=args.prob_bits, uniform_bits=args.uniform_bits)
    return synthetic_trace(spec)   # fast: no progress bar


def _synthetic_v2(args):
    from hades.traces.synthetic import LogitSyntheticSpec, synthetic_logit_trace
    if args.mode == "greedy" and args.greedy_share is not None:
        raise ConfigError("--greedy-share mixes greedy rounds into stochastic files; --mode greedy makes all greedy")
    greedy_share = 1.0 if args.mode == "greedy" else args.greedy_share if args.greedy_share is not None else 0.25
    spec = LogitSyntheticSpec(vocab_size=args.vocab if args.vocab is not None else 512,
                              rounds=args.rounds if args.rounds is not None else 16,
                              gammas=parse_gammas(args.gamma), gamma_max=args.gamma_max, seed=args.seed,
                              weight_bits=args.prob_bits, uniform_bits=args.uniform_bits, greedy_share=greedy_share,
                              onehot_share=args.onehot_share if args.onehot_share is not None else 0.25,
                              **(FILTER_MIX if args.filter_mix else {}))
    return synthetic_logit_trace(spec)


def read_prompt(args) -> str:
    given = [flag for flag, v in (("--prompt", args.prompt), ("--prompt-file", args.prompt_file),
                                  ("--prompt-name", getattr(args, "prompt_name", None))) if v is not None]
    if len(given) > 1:
        raise ConfigError(f"give one of --prompt, --prompt-file and --prompt-name, not {' and '.join(given)}")
    if getattr(args, "prompt_name", None) is not None:
        return dict(GROUNDED)[args.prompt_name]
    if args.prompt_file is not None:
        try:
            return Path(args.prompt_file).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"--prompt-file: cannot read {args.prompt_file} ({e.strerror})") from None
    return args.prompt if args.prompt is not None else DEFAULT_PROMPT


def pair_spec_from_args(args):
    from hades.llm.models import PairSpec
    method = draft_method(args)
    layers = None
    if args.draft_layers is not None:
        # the layer count is only known after loading; check the syntax now, the range later
        from hades.llm.models import parse_layer_list
        layers = parse_layer_list(args.draft_layers, 1 << 16)
    vocab = args.draft_vocab
    if method == "fast-skip":
        from hades.llm.models import FAST_DRAFT_LAYERS, FAST_DRAFT_VOCAB
        if args.target is not None and layers is None:
            raise ConfigError("--draft-method fast-skip with a --target of your own needs --draft-layers "
                              "(its default layers are the embedded SmolLM2's)")
        layers = layers if layers is not None else FAST_DRAFT_LAYERS
        vocab = vocab if vocab is not None else FAST_DRAFT_VOCAB
    weights = getattr(args, "draft_weights", None) or "float"
    if method == "int8":
        from hades.llm.models import INT8_DRAFT_LAYERS
        if args.target is not None and layers is None:
            raise ConfigError("--draft-method int8 with a --target of your own needs --draft-layers "
                              "(its default layers are the embedded SmolLM2's)")
        layers = layers if layers is not None else INT8_DRAFT_LAYERS
        weights = "int8"
    spec = PairSpec(target=args.target, draft=args.draft, draft_layers=layers,
                    allow_download=not args.no_download, no_draft=method == "lookup", draft_vocab=vocab,
                    draft_weights=weights)
    spec.check()
    return spec


def _from_models(args, out: Path):
    from tqdm import tqdm

    from hades.llm.models import encode_prompt, load_pair
    from hades.llm.record import record_trace
    from hades.llm.specdec import DecodeConfig, torch_threads, with_measured_costs
    prompt = read_prompt(args)
    rounds = args.rounds if args.rounds is not None else (None if args.new_tokens is not None else 16)
    temperature = args.temperature if args.temperature is not None else 1.0
    config = DecodeConfig(**gamma_settings(args.gamma), mode=args.mode, temperature=temperature,
                          prob_bits=args.prob_bits, uniform_bits=args.uniform_bits, seed=args.seed,
                          max_new_tokens=args.new_tokens, max_rounds=rounds, stop_at_eos=False, record=True,
                          trace_format=args.trace_format, lookup_ngram=lookup_ngram_from_args(args),
                          **filter_settings(args))
    config.check()
    if args.gamma_max is not None and args.gamma_max < config.max_gamma:
        what = (f"the controller's largest gamma {config.max_gamma} (give --gamma auto:START..{args.gamma_max})"
                if config.gamma_policy is not None else f"the largest gamma {config.max_gamma}")
        raise ConfigError(f"--gamma-max {args.gamma_max} below {what}")
    spec = pair_spec_from_args(args)
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if sys.stderr.isatty():   # a status line only for people watching; errors stay one line
        print("hades trace: loading models ...", file=sys.stderr)
    with torch_threads(args.threads):
        pair = load_pair(spec)
        # the cost-aware controller's costs, measured before the regenerate command spells them out
        config = with_measured_costs(pair, config, encode_prompt(pair.tokenizer, prompt, chat=not args.raw_prompt))
    total, unit = (rounds, "round") if rounds is not None else (args.new_tokens, "tok")
    with tqdm(total=total, desc="decoding", unit=unit, file=sys.stderr, disable=True if args.no_progress else None) as bar:   # None: off when not a terminal
        def on_round(res):
            bar.update(1 if unit == "round" else min(total, len(res.new_tokens)) - bar.n)
        regenerate = regenerate_command(args, prompt, config, rounds, out, pair.description.get("draft_layers"),
                                        pair.description.get("draft_vocab"), pair.description.get("draft_weights"))
        return record_trace(pair, config, prompt, threads=args.threads, raw_prompt=args.raw_prompt,
                            on_round=on_round, regenerate=regenerate, gamma_max=args.gamma_max)


def regenerate_command(args, prompt: str, config, rounds, out: Path, draft_layers: str | None = None,
                       draft_vocab: int | None = None, draft_weights: str | None = None) -> str:
    """A canonical command line that rebuilds this trace bit for bit (on the same library versions).
    The layer-skip draft's layers and head size are spelled out (a fast-skip draft is written as the
    layer-skip draft it is), so a later change of the defaults cannot alter it."""
    parts = ["hades", "trace", "-o", str(out)]
    for flag, value in (("--target", args.target), ("--draft", args.draft), ("--draft-layers", draft_layers),
                        ("--draft-vocab", None if draft_vocab is None else str(draft_vocab)),
                        ("--draft-weights", draft_weights)):
        if value is not None:
            parts += [flag, value]
    if config.lookup:
        parts += ["--draft-method", "lookup", "--lookup-ngram", format_ngram(config.lookup_ngram)]
    # --prompt=TEXT: a prompt that starts with '-' must not read as an option
    parts += [f"--prompt={prompt}", "--gamma", config.gamma_label]
    if args.gamma_max is not None:
        parts += ["--gamma-max", str(args.gamma_max)]
    if rounds is not None:
        parts += ["--rounds", str(rounds)]
    if args.new_tokens is not None:
        parts += ["--new-tokens", str(args.new_tokens)]
    parts += ["--mode", config.mode, "--temperature", repr(config.temperature), "--seed", str(config.seed),
              "--prob-bits", str(config.prob_bits), "--uniform-bits", str(config.uniform_bits)]
    parts += ["--trace-format", str(config.trace_format)]   # explicit: the default format has changed before
    if config.trace_format == 2:
        parts += ["--min-p", repr(config.min_p), "--top-k", str(config.top_k), "--top-p", repr(config.top_p)]
        for flag, value in (("--draft-top-k", config.draft_top_k), ("--draft-top-p", config.draft_top_p)):
            if value is not None:
                parts += [flag, repr(value)]
    if args.raw_prompt:
        parts.append("--raw-prompt")
    parts += ["--threads", str(args.threads)]   # float reductions may depend on the thread count
    return shlex.join(parts)
