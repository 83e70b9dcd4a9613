"""Tiny local GPT-2 models for the tests (no network, built in a temporary folder in a second):
two share a tokenizer ("target", "draft"), one does not ("other"). They exercise the generic
Hugging Face path of hades.llm without the embedded model.

Fixture (session scope): tiny_models, {name: directory}.
"""
from __future__ import annotations

import pytest

TINY_WORDS = "the a sea wave boat sun moon star wind sail blue green red tide shore".split()


def make_tiny_model(path, words, seed) -> str:
    """A 3-layer GPT-2 with a word-level tokenizer over words (plus [UNK], [EOS]), saved to path."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    vocab = {w: i for i, w in enumerate(["[UNK]", "[EOS]"] + list(words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]").save_pretrained(path)
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=3, n_head=2,
                     bos_token_id=1, eos_token_id=1, initializer_range=0.5)  # wide init: peaked rows
    GPT2LMHeadModel(cfg).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {"target": make_tiny_model(root / "target", TINY_WORDS, 0),
            "draft": make_tiny_model(root / "draft", TINY_WORDS, 1),
            "other": make_tiny_model(root / "other", TINY_WORDS[::-1], 2)}
