"""Stochastic masks and uniform-k-subset routing.

Stochastic ("continuous") mask of a component with causal importance g at one token:

    m = g + (1 - g) * u,      u ~ U(0, 1) drawn independently per token and component.

A component with g = 1 is always kept; one with g = 0 is scaled by a random factor in [0, 1). Shapes: g, u, m
(*positions, C) per decomposed matrix ((B, T, C) for a language model); the delta component (the remainder
W - sum_c U_c V_c^T) has no CI, so its mask is u itself, (*positions), or 1 on the rest batches of a targeted
decomposition (``remainder_mask``). The same form with u replaced by an adversarial source s gives the PGD masks
(``vpd_lite.method.pgd``).

Uniform-k-subset routing: for every token position independently draw k uniformly from 1..n (n = number of
decomposed matrices) and route a uniformly random k-subset of the matrices through their masked components;
the other matrices use their original weight at that position.

Sources: the SPD paper (Bushnaq et al. 2025, arXiv 2506.20790) for the stochastic masks; the public
goodfire-ai/spd reference code (its ``uniform_k_subset`` routing) for the routing. Every random number is
drawn on the CPU from a seeded generator (``vpd_lite.method.devices``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from vpd_lite.method.devices import draw_uniform


def mask_from_sources(ci: Tensor, sources: Tensor) -> Tensor:
    """m = g + (1 - g) * s: the mask of every stochastic and adversarial pass. ci g (..., C); sources s
    broadcastable to it, values in [0, 1]; returns (..., C)."""
    return ci + (1 - ci) * sources


def stochastic_masks(
    ci: Mapping[str, Tensor],
    generator: torch.Generator | None = None,
    global_rows: int | None = None,
    rows: slice | None = None,
) -> dict[str, Tensor]:
    """{name: g (B, T, C)} -> {name: g + (1 - g) u (B, T, C)} with fresh u ~ U(0, 1) per entry.

    Data-parallel runs pass ``global_rows`` (the global batch size) and ``rows`` (this rank's B rows of it):
    u is then drawn for the global batch and sliced, so each row gets the noise a single process would draw.
    """
    out = {}
    for name, g in ci.items():
        shape = g.shape if global_rows is None else (global_rows, *g.shape[1:])
        u = draw_uniform(tuple(shape), generator, g.device, g.dtype)
        out[name] = mask_from_sources(g, u if rows is None else u[rows])
    return out


def remainder_mask(u: Tensor, remainder_on: bool) -> Tensor:
    """The mask of the remainder W - sum_c U_c V_c^T (the delta component) at every position, (*positions).

    The remainder has no CI (g = 0), so its stochastic mask is g + (1 - g) u = u: the uniform draw ``u``
    (*positions) itself. On the rest batches of a targeted decomposition (``remainder_on``) it is pinned to 1:
    ones of u's shape, whatever u holds."""
    return torch.ones_like(u) if remainder_on else u


def delta_stochastic_masks(
    names: Sequence[str], batch_shape: tuple[int, ...], generator: torch.Generator | None = None,
    device: torch.device | None = None, remainder_on: bool = False,
) -> dict[str, Tensor]:
    """{name: remainder_mask (B, T)} of every delta component: a fresh u ~ U(0, 1) each; with ``remainder_on`` (a
    targeted decomposition's rest batches) ones, and nothing is drawn (``generator`` does not move)."""
    if remainder_on:
        return {name: remainder_mask(torch.empty(tuple(batch_shape), device=device), True) for name in names}
    return {name: remainder_mask(draw_uniform(tuple(batch_shape), generator, device), False) for name in names}


def uniform_k_subset_routing(
    names: Sequence[str], batch_shape: tuple[int, ...], generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> dict[str, Tensor]:
    """{name: bool (B, T)}: per position, k ~ U{1..n}, and the k matrices with the smallest random keys
    (a uniformly random k-subset) are routed through their components (True)."""
    n = len(names)
    if n == 0:
        raise ValueError("uniform_k_subset_routing needs at least one module name")
    keys = torch.rand(*batch_shape, n, generator=generator)
    rank = keys.argsort(dim=-1).argsort(dim=-1)  # (B, T, n): position of each matrix in a random order
    k = torch.randint(1, n + 1, batch_shape, generator=generator)  # (B, T)
    routed = rank < k.unsqueeze(-1)
    if device is not None:
        routed = routed.to(device)
    return {name: routed[..., i] for i, name in enumerate(names)}
