"""Ablation: the change in per-language next-token CE when a component is removed from its matrix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from vpd_lite.interpret.harvest import _component_factors
from vpd_lite.interpret.ids import ComponentId, parse_component_id
from vpd_lite.method.cross_entropy import lm_cross_entropy


# -------------------------------------------------------------------------------------------------- ablation
def _target_model(cm):
    """The wrapped Hugging Face model of a ComponentModel."""
    for attr in ("model", "target", "target_model"):
        model = getattr(cm, attr, None)
        if isinstance(model, torch.nn.Module):
            return model
    raise AttributeError("cannot find the wrapped target model on the ComponentModel (looked for .model / .target)")


def _weight_of(model: torch.nn.Module, module: str) -> torch.Tensor:
    """The (d_out, d_in) weight parameter of ``module`` (nn.Linear layout)."""
    try:
        layer = model.get_submodule(module)
    except AttributeError as err:
        raise KeyError(f"the target model has no module {module!r}") from err
    weight = getattr(layer, "weight", None)
    if weight is None:
        raise TypeError(f"module {module!r} ({type(layer).__name__}) has no weight")
    return weight


@contextmanager
def component_removed(cm, component: ComponentId) -> Iterator[torch.nn.Module]:
    """Context manager: the target model with one component removed, W -> W - U_c V_cᵀ; restored exactly on exit.

    Yields the (temporarily edited) Hugging Face model. The original weight is copied back bit for bit.
    """
    module, c = parse_component_id(component)
    if module not in cm.components:
        raise KeyError(f"{module!r} is not a decomposed module; decomposed: {list(cm.components)}")
    V, U = _component_factors(cm, module)
    if not 0 <= c < V.shape[1]:
        raise IndexError(f"component {c} out of range for {module!r}, which has {V.shape[1]} components")
    model = _target_model(cm)
    weight = _weight_of(model, module)
    rank1 = torch.outer(U[c].detach(), V[:, c].detach())  # (d_out, d_in)
    if type(model.get_submodule(module)).__name__ == "Conv1D":  # GPT-2 stores the weight as (d_in, d_out)
        rank1 = rank1.T
    if rank1.shape != weight.shape:
        raise ValueError(f"component of shape {tuple(rank1.shape)} does not fit weight {tuple(weight.shape)} of {module!r}")
    original = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.sub_(rank1.to(weight.dtype))
        yield model
    finally:
        with torch.no_grad():
            weight.copy_(original)


def ablation_effects(
    cm,
    components: Sequence[ComponentId],
    lang_blocks: Mapping[str, torch.Tensor],
    batch_size: int | None = None,
    progress: bool = False,
    base_ce: Mapping[str, float] | None = None,
) -> dict[ComponentId, dict[str, float]]:
    """:func:`ablation_effect` for several components, computing the target's own CE only once
    (or taking it from ``base_ce`` {lang: CE of the unedited target on the same blocks})."""
    base = dict(base_ce) if base_ce is not None else target_ce(cm, lang_blocks, batch_size)
    out = {}
    for cid in tqdm(components, desc="removing each component", unit="component", disable=not progress, leave=False):
        cid = parse_component_id(cid)
        with component_removed(cm, cid) as edited:
            out[cid] = {lang: lm_cross_entropy(edited, b, batch_size) - base[lang] for lang, b in lang_blocks.items()}
    return out


def target_ce(cm, lang_blocks: Mapping[str, torch.Tensor], batch_size: int | None = None) -> dict[str, float]:
    """{lang: CE (nats/token)} of the unedited target model on each language's (N, T) blocks."""
    model = _target_model(cm)
    return {lang: lm_cross_entropy(model, blocks, batch_size) for lang, blocks in lang_blocks.items()}


def ablation_effect(
    cm, component: ComponentId, lang_blocks: Mapping[str, torch.Tensor], batch_size: int | None = None
) -> dict[str, float]:
    """Change in held-out CE (nats/token) per language when this one component is removed from the target.

    The edited model is the target with W -> W - U_c V_cᵀ in that one matrix, every other weight original;
    lang_blocks: {lang: LongTensor (N, T)}. Returns {lang: CE(ablated) - CE(target)}.
    """
    cid = parse_component_id(component)
    return ablation_effects(cm, [cid], lang_blocks, batch_size)[cid]
