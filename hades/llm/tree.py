"""Real tree traces from a model pair (docs/TREES.md, trace file v3).

Each round the draft expands a tree of a given shape (shape[d] children for every node at
depth d) one depth at a time: all nodes of a depth go through the draft in one forward pass
with a tree attention mask, and their rows give the next depth's children (the top-ranked
tokens of the node's draft weights, or shape[d] i.i.d. draft samples). The target then scores
every node in *one* forward pass: the context's pending tokens and all node tokens, with a
4-D attention mask (a node sees the context and its own ancestors) and per-node position ids
(context length - 1 + depth), so node n's output row is the target's row for n's context. The
rows are recorded as the chain traces record them: torch's bfloat16 of the float logits. The
golden tree verifier decides the round; the emitted tokens extend the context, and both KV
caches are cut back to the context (the accepted path is fed again with the next round).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hades import numerics
from hades.errors import ConfigError
from hades.fl.tree import node_depths, verify_tree_round
from hades.llm.models import encode_prompt
from hades.llm.specdec import _crop, _new_cache, torch_threads
from hades.round import TREE_SCHEMES, TreeRound
from hades.traces.format_tree import TreeTrace, tree_trace_from_rounds
from hades.traces.synthetic_tree import parse_tree_shape

TREE_RECORDER = "hades-tree-recorder/1"


@dataclass(frozen=True)
class TreeDecodeConfig:
    """How to record a real tree trace: the shape, the scheme (sampled, deterministic or
    greedy), the sampling settings of both sides and the numerics' W and U."""
    shape: tuple[int, ...] = (4, 2, 2, 1)
    scheme: str = "sampled"
    rounds: int = 8
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    weight_bits: int = 16
    uniform_bits: int = 32
    seed: int = 0

    def check(self) -> None:
        object.__setattr__(self, "shape", parse_tree_shape(self.shape))
        if self.scheme not in TREE_SCHEMES:
            raise ConfigError(f"tree scheme must be one of {TREE_SCHEMES}, got {self.scheme!r}")
        if self.rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {self.rounds}")
        self.params   # checks the sampling settings

    @property
    def params(self) -> tuple[int, int, int, int]:
        """One (k, top_k, top_p, min_p) for both sides (greedy rounds record the tuple of T = 1)."""
        t = 1.0 if self.scheme == "greedy" else self.temperature
        return tuple(numerics.sampling_params(t, self.top_k, self.top_p, self.min_p))


class TreeStepper:
    """One model with its KV cache whose entries are the context (visible to every new token)
    followed by tree nodes (visible to their descendants only)."""

    def __init__(self, model):
        import torch
        self._torch = torch
        self.model = model
        self.cache = _new_cache(model)
        self.cached_nodes: list[int] = []   # tree node of each cache entry after the context

    @property
    def context_length(self) -> int:
        return self.cache.get_seq_length() - len(self.cached_nodes)

    def forward(self, pending: list[int], node_ids: list[int], tokens, parents, depths,
                context_length: int, bf16: bool = True) -> np.ndarray:
        """Feed the context's pending tokens, then the given nodes; the rows
        [len(node_ids) + (1 if pending else 0), V] of the last pending token (if any) and of
        every node: bf16 bit patterns (uint16, torch's bfloat16 of the float logits), or the
        float32 logits with bf16=False. context_length is the full context's length (cache +
        pending). Masked entries get float32's most negative value, whose exp underflows to
        exactly 0, so a masked key contributes nothing."""
        torch = self._torch
        past = self.cache.get_seq_length()
        kv_nodes = [None] * (past - len(self.cached_nodes)) + self.cached_nodes \
            + [None] * len(pending) + list(node_ids)
        ancestors = {}
        for n in node_ids:
            a, m = set(), n
            while m > 0:
                a.add(m)
                m = int(parents[m])
            ancestors[n] = a
        q_len = len(pending) + len(node_ids)
        allowed = np.zeros((q_len, past + q_len), bool)
        pos = np.empty(q_len, np.int64)
        for j in range(len(pending)):   # causal among the pending context tokens
            allowed[j, : past + j + 1] = True
            pos[j] = context_length - len(pending) + j
        for k, n in enumerate(node_ids):
            j = len(pending) + k
            allowed[j] = [e is None or e in ancestors[n] for e in kv_nodes]
            pos[j] = context_length - 1 + int(depths[n])
        mask = torch.zeros((1, 1, q_len, past + q_len), dtype=torch.float32)
        mask.masked_fill_(torch.from_numpy(~allowed), torch.finfo(torch.float32).min)
        ids = torch.tensor([list(pending) + [int(tokens[n]) for n in node_ids]], dtype=torch.long)
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=torch.from_numpy(pos)[None],
                             past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values if out.past_key_values is not None else self.cache
        self.cached_nodes += list(node_ids)
        rows = out.logits[0, (len(pending) - 1 if pending else 0):].float()
        return bf16_bits(rows) if bf16 else rows.numpy()

    def reset_to_context(self, length: int) -> None:
        """Drop the tree nodes and keep the first `length` context entries."""
        _crop(self.cache, length)
        self.cached_nodes = []


def tree_round(draft: TreeStepper, target: TreeStepper, context: list[int], cfg: TreeDecodeConfig,
               rng: np.random.Generator, vocab_size: int) -> TreeRound:
    """Expand one tree after `context` with the draft, score it with the target in one pass."""
    params, W, U = cfg.params, cfg.weight_bits, cfg.uniform_bits
    L = len(context)
    parents, tokens, d_u = [-1], [0], [0]
    draft_rows = {}
    level = [0]
    for d, b in enumerate(cfg.shape):
        depths = node_depths(parents)
        if d == 0:
            rows = draft.forward(context[draft.context_length:], [], tokens, parents, depths, L)
            rows = rows[-1:]
        else:
            rows = draft.forward([], level, tokens, parents, depths, L)
        nxt = []
        for n, row in zip(level, rows):
            draft_rows[n] = row
            w, z = numerics.logit_weights(row, params, W, f"draft row of node {n}")
            if cfg.scheme == "sampled":
                kids = []
                for du in rng.integers(0, 1 << U, size=b, dtype=np.uint64):
                    kids.append((numerics.draft_sample(w, z, int(du), U), int(du)))
            else:
                kids = [(int(x), 0) for x in numerics.rank_order(w)[: min(b, vocab_size)]]
            for x, du in kids:
                parents.append(n)
                tokens.append(x)
                d_u.append(du)
                nxt.append(len(parents) - 1)
        level = nxt
    N = len(parents)
    depths = node_depths(parents)
    q = target.forward(context[target.context_length:], list(range(1, N)), tokens, parents, depths, L)
    draft.reset_to_context(L)
    target.reset_to_context(L)
    p = np.zeros((N, vocab_size), np.uint16)
    if cfg.scheme == "sampled":
        for n, row in draft_rows.items():
            p[n] = row
    accept_u = rng.integers(0, 1 << U, size=N, dtype=np.uint64)
    accept_u[0] = 0
    return TreeRound(scheme=cfg.scheme, parents=np.array(parents, np.int64), tokens=np.array(tokens, np.int64),
                     target_logits=q, draft_logits=p, draft_params=params, target_params=params,
                     draft_uniforms=np.array(d_u, np.uint64), accept_uniforms=accept_u,
                     sample_uniforms=rng.integers(0, 1 << U, size=N, dtype=np.uint64))


def record_tree_trace(pair, cfg: TreeDecodeConfig, prompt: str, *, threads: int | None = 1,
                      raw_prompt: bool = False, regenerate: str | None = None) -> TreeTrace:
    """Decode `prompt` with tree rounds and return the recorded v3 trace (meta: the prompt, the
    emitted tokens and text, the models, the settings)."""
    cfg.check()
    if pair.draft is None:
        raise ConfigError("tree traces need a draft model (the pair was loaded for prompt lookup)")
    prompt_ids = encode_prompt(pair.tokenizer, prompt, chat=not raw_prompt)
    rng = np.random.default_rng(cfg.seed)
    W, U = cfg.weight_bits, cfg.uniform_bits
    context = list(prompt_ids)
    rounds, results, emitted = [], [], []
    with torch_threads(threads):
        draft, target = TreeStepper(pair.draft), TreeStepper(pair.target)
        for i in range(cfg.rounds):
            rnd = tree_round(draft, target, context, cfg, rng, pair.vocab_size)
            res = verify_tree_round(rnd, W, U, where=f"round {i}")
            new = [int(rnd.tokens[n]) for n in res.path] + [res.token]
            context += new
            emitted += new
            rounds.append(rnd)
            results.append(res)
    meta = {"source": "model", "tool": TREE_RECORDER, "models": dict(pair.description), "prompt": prompt,
            "chat_template": not raw_prompt and bool(getattr(pair.tokenizer, "chat_template", None)),
            "prompt_tokens": list(prompt_ids), "emitted_tokens": emitted,
            "emitted_text": pair.tokenizer.decode(emitted), "seed": cfg.seed,
            "tree": {"shape": list(cfg.shape), "scheme": cfg.scheme, "temperature": cfg.temperature,
                     "top_k": cfg.top_k, "top_p": cfg.top_p, "min_p": cfg.min_p, "sampling_params": list(cfg.params)},
            "spec": {"shape": list(cfg.shape), "scheme": cfg.scheme}}
    if regenerate is not None:
        meta["regenerate"] = regenerate
    return tree_trace_from_rounds(rounds, results, vocab_size=pair.vocab_size, weight_bits=W, uniform_bits=U, meta=meta)


def bf16_bits(rows) -> np.ndarray:
    """torch's bfloat16 of float logits (round to nearest even) as uint16 bit patterns: how
    every recorder here turns logits into trace rows."""
    import torch
    t = rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(rows, np.float32))
    return t.float().to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def plain_last_logits(model, tokens: list[int]) -> np.ndarray:
    """The float32 logits of the last position of one plain causal forward pass over `tokens`
    (no cache, no custom mask, default positions): the reference for a tree node's row."""
    import torch
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([tokens], dtype=torch.long), use_cache=False, logits_to_keep=1)
    return out.logits[0, -1].float().numpy()


def target_tree_logits(model, context: list[int], rnd: TreeRound) -> np.ndarray:
    """The float32 target logits of every node of `rnd` after `context`, from one tree pass of
    the whole context and all nodes over an empty cache: for a trace's first round, exactly the
    recorder's target pass."""
    return TreeStepper(model).forward(list(context), list(range(1, rnd.num_nodes)), rnd.tokens, rnd.parents,
                                      node_depths(rnd.parents), len(context), bf16=False)
