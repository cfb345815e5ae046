"""Which matrices to decompose in common ``transformers`` architectures, and how many components each gets.

A decomposition is configured by ``{module-name pattern: C}`` (see ``vpd_lite.method.components.match_modules``).
This module holds those patterns for the families vpd-lite is tested on:

    llama     q_proj k_proj v_proj o_proj | gate_proj up_proj down_proj        (nn.Linear)
    gpt2      attn.c_attn (fused q,k,v) attn.c_proj | mlp.c_fc mlp.c_proj      (transformers Conv1D)
    gpt_neox  attention.query_key_value (fused) attention.dense | mlp.dense_h_to_4h mlp.dense_4h_to_h
              (nn.Linear; EleutherAI's Pythia models)

and ``default_targets(model)``, which sizes C for every pattern from the matched matrix's shape:
C = ``c_per_rank`` x min(d_out, d_in), rounded up to a multiple of 8 — "a few times the matrix rank", as the
method note suggests, so that dead components stay few.
"""

from __future__ import annotations

import math

from torch import nn

from vpd_lite.method.components import linear_weight, match_modules

#: model_type -> module-name patterns of every attention and MLP matrix of every layer.
ATTENTION_AND_MLP: dict[str, tuple[str, ...]] = {
    "llama": (
        "*.self_attn.q_proj", "*.self_attn.k_proj", "*.self_attn.v_proj", "*.self_attn.o_proj",
        "*.mlp.gate_proj", "*.mlp.up_proj", "*.mlp.down_proj",
    ),
    "gpt2": ("*.attn.c_attn", "*.attn.c_proj", "*.mlp.c_fc", "*.mlp.c_proj"),
    "gpt_neox": (
        "*.attention.query_key_value", "*.attention.dense", "*.mlp.dense_h_to_4h", "*.mlp.dense_4h_to_h",
    ),
}


def model_type(model: nn.Module) -> str:
    """The ``config.model_type`` of a transformers model ("llama", "gpt2", "gpt_neox", ...)."""
    config = getattr(model, "config", None)
    mt = getattr(config, "model_type", None)
    if mt is None:
        raise ValueError(f"{type(model).__name__} has no config.model_type; pass module patterns explicitly")
    return str(mt)


def default_targets(model: nn.Module, c_per_rank: float = 2.0, multiple_of: int = 8) -> dict[str, int]:
    """{pattern: C} for every attention and MLP matrix of ``model``'s architecture.

    C = ceil(c_per_rank * min(d_out, d_in) / multiple_of) * multiple_of, from the first module each pattern
    matches (all layers share shapes). Raises ValueError for an architecture without a preset, naming the
    known ones.
    """
    if c_per_rank <= 0:
        raise ValueError(f"c_per_rank must be > 0, got {c_per_rank}")
    mt = model_type(model)
    if mt not in ATTENTION_AND_MLP:
        raise ValueError(
            f"no module patterns for model_type {mt!r}; known: {sorted(ATTENTION_AND_MLP)}. "
            "Pass DecomposeConfig(targets={pattern: C}) yourself."
        )
    modules = dict(model.named_modules())
    targets = {}
    for pattern in ATTENTION_AND_MLP[mt]:
        first = next(iter(match_modules(model, {pattern: 1})))
        d_out, d_in = linear_weight(modules[first])[0].shape
        targets[pattern] = int(math.ceil(c_per_rank * min(d_out, d_in) / multiple_of) * multiple_of)
    return targets
