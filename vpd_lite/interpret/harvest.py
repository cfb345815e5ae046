"""Harvesting: running a decomposition over text blocks to fill ``ComponentStats`` (``harvest``), the fingerprint
that ties statistics to a decomposition, and how much text the tutorial and the experiment use (``HarvestPlan``,
``tutorial_blocks``, ``model_seq_len``, ``load_or_harvest``: the shipped statistics when they match).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from vpd_lite import quick_mode
from vpd_lite.interpret.statistics import ComponentStats, StatsAccumulator
from vpd_lite.method.components import position_limit
from vpd_lite.models.corpus import lang_token_blocks
from vpd_lite.models.paths import data_dir


# ------------------------------------------------------------------------------------------------ harvesting
def _iter_batches(blocks: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, blocks.shape[0], batch_size):
        yield blocks[start : start + batch_size]


def _component_factors(cm, module: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(V (d_in, C), U (C, d_out)) of a decomposed module of a ComponentModel."""
    comp = cm.components[module]
    return comp.V, comp.U


@torch.no_grad()
def component_ci_and_acts(cm, input_ids: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One pass of the target: ({module: CI (B,T,C)}, {module: activation V_cᵀx (B,T,C)}) for a (B, T) batch."""
    _, inputs = cm.target_logits_and_inputs(input_ids)
    ci_lower, _ = cm.causal_importance(inputs)
    acts = {m: inputs[m] @ _component_factors(cm, m)[0] for m in cm.module_names}
    return dict(ci_lower), acts


def _device_of(cm) -> torch.device:
    try:
        return next(cm.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def harvest(
    cm, lang_blocks: Mapping[str, torch.Tensor], threshold: float = 0.1, top_k: int = 20, batch_size: int = 16,
    context_left: int = 12, context_right: int = 4, n_bins: int = 20, meta: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> ComponentStats:
    """Run the target over each language's token blocks and collect :class:`ComponentStats`.

    cm: a ``vpd_lite.method.components.ComponentModel``; lang_blocks: {lang: LongTensor (N, T)} (e.g. from
    ``vpd_lite.models.corpus.lang_token_blocks``). A component fires on a token when its CI (the lower-leaky value the
    masks use) exceeds ``threshold`` (default 0.1: clearly above the many exact zeros the hard sigmoid gives,
    well below "fully needed"). ``top_k`` contexts of ``context_left`` + 1 + ``context_right`` tokens are kept
    per component.
    """
    if not lang_blocks:
        raise ValueError("lang_blocks is empty: give at least one language's token blocks")
    acc = StatsAccumulator(
        {m: int(cm.components[m].V.shape[1]) for m in cm.module_names},
        list(lang_blocks),
        threshold=threshold,
        top_k=top_k,
        context_left=context_left,
        context_right=context_right,
        n_bins=n_bins,
    )
    device = _device_of(cm)
    total = sum(math.ceil(b.shape[0] / batch_size) for b in lang_blocks.values())
    with tqdm(total=total, desc="harvest", disable=not progress, leave=False) as bar:
        for lang, blocks in lang_blocks.items():
            if blocks.dim() != 2:
                raise ValueError(f"blocks of {lang!r} must be (N, T), got shape {tuple(blocks.shape)}")
            for batch in _iter_batches(blocks, batch_size):
                ci, acts = component_ci_and_acts(cm, batch.to(device))
                acc.update(lang, batch, ci, acts)
                bar.update(1)
    return acc.finalize(meta)


# -------------------------------------------------------------------------------------------- provenance
def decomposition_fingerprint(cm) -> str:
    """sha256 over every decomposed module's name and its V, U and CI-function parameters (identifies a decomposition;
    a global CI function's parameters come once, after every module's factors)."""
    import hashlib

    h = hashlib.sha256()
    for m in cm.module_names:
        h.update(m.encode())
        tensors = [cm.components[m].V, cm.components[m].U]
        if not cm.global_ci_type:
            tensors += [p for _, p in sorted(cm.ci_fns[m].named_parameters())]
        for t in tensors:
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    if cm.global_ci_type:  # one CI function over all matrices: its parameters once, after the factors
        for key, p in sorted(cm.ci_named_parameters()):
            h.update(key.encode())
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class HarvestPlan:
    """How much text the tutorial harvests and evaluates on (blocks per language), full vs quick mode."""

    seq_len: int = 128
    harvest_blocks: int = 256  # train-split blocks per language for the statistics
    heldout_blocks: int = 16  # held-out blocks per language for ablation effects
    quick_harvest_blocks: int = 4
    quick_heldout_blocks: int = 2

    def blocks(self, quick: bool) -> tuple[int, int]:
        """(harvest blocks, held-out blocks) per language."""
        return (self.quick_harvest_blocks, self.quick_heldout_blocks) if quick else (self.harvest_blocks, self.heldout_blocks)


def _quick(quick: bool | None) -> bool:

    return quick_mode() if quick is None else bool(quick)


def model_seq_len(model: torch.nn.Module, seq_len: int = 128) -> int:
    """``seq_len`` capped by the model's context length (``vpd_lite.method.components.position_limit``:
    ``config.max_position_embeddings``, GPT-2's ``n_positions``; 128 for the shipped target); ``seq_len`` itself
    for a model that states none. Every place that caps a block length by the model uses this."""
    limit = position_limit(model)
    return seq_len if limit is None else min(seq_len, limit)


def tutorial_blocks(
    tokenizer, corpus, model: torch.nn.Module | None = None, quick: bool | None = None, plan: HarvestPlan = HarvestPlan()
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """({lang: train blocks (N, T)} to harvest on, {lang: held-out blocks (M, T)} to measure CE on).

    Statistics come from the train split; ablation effects are measured on held-out text.
    """

    n_train, n_held = plan.blocks(_quick(quick))
    T = model_seq_len(model, plan.seq_len) if model is not None else plan.seq_len
    return (lang_token_blocks(tokenizer, corpus, "train", T, n_train),
            lang_token_blocks(tokenizer, corpus, "heldout", T, n_held))


def load_or_harvest(cm, lang_blocks: Mapping[str, torch.Tensor], path: str | Path | None = None,
                    progress: bool = True, **harvest_kwargs) -> tuple[ComponentStats, str]:
    """(stats, description): shipped stats from ``path`` (default ``data/component_stats.safetensors``) when they
    were harvested from this very decomposition (same :func:`decomposition_fingerprint`), else a fresh
    :func:`harvest` over ``lang_blocks``."""

    path = Path(path) if path is not None else data_dir() / "component_stats.safetensors"
    fingerprint = decomposition_fingerprint(cm)
    if path.is_file():
        stats = ComponentStats.load(path)
        if stats.meta.get("decomposition_fingerprint") == fingerprint:
            return stats, f"shipped statistics from {path} ({stats.n_tokens} tokens)"
    stats = harvest(cm, lang_blocks, progress=progress, meta={"decomposition_fingerprint": fingerprint},
                    **harvest_kwargs)
    return stats, f"harvested live over {stats.n_tokens} tokens"
