"""Tiny random-init Llama models and random component directions, shared by the erase-layer tests."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.erase.edits import Direction

VOCAB = 64


def tiny_llama(seed: int = 0, initializer_range: float = 0.02) -> LlamaForCausalLM:
    """A 2-layer Llama (hidden 32, vocab ``VOCAB``) with weights drawn from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                      initializer_range=initializer_range)
    return LlamaForCausalLM(cfg).eval()


def random_direction(model, name: str, c: int = 0, seed: int = 1, scale: float = 1.0) -> Direction:
    """A made-up component ``c`` of matrix ``name``: write and read directions N(0, scale²) from ``seed``."""
    lin = dict(model.named_modules())[name]
    g = torch.Generator().manual_seed(seed)
    return Direction(name, c, scale * torch.randn(lin.out_features, generator=g),
                     scale * torch.randn(lin.in_features, generator=g))
