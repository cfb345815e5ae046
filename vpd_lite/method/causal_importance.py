"""Causal-importance (CI) functions and the leaky hard sigmoids that turn their outputs into [0, 1].

For every token position and every component c of a decomposed matrix, a small learned function gives a
pre-activation z_c; the causal importance is g_c = sigma(z_c) with a *hard* sigmoid sigma = clamp(., 0, 1).
Two leaky variants keep gradients alive where the clamp would kill them:

* ``lower_leaky_hard_sigmoid`` (used for the masks): forward ``clamp(z, 0, 1)``; backward passes the
  gradient unchanged on (0, 1), zero above 1, and below 0 only a small ``alpha``-scaled gradient that
  pushes z *up* (so a component whose CI collapsed to 0 can come back when the reconstruction needs it):

      sigma_lower(z) = clamp(z, 0, 1),
      dL/dz = G on [0, 1],   0 for z > 1,   alpha * G * 1[G < 0] for z < 0      (G = dL/dsigma_lower)

* ``upper_leaky_hard_sigmoid`` (used inside the minimality loss): ``0`` below 0, ``z`` on [0, 1] and
  ``1 + alpha (z - 1)`` above 1, so the sparsity penalty still pushes down pre-activations above 1:

      sigma_upper(z) = 0 (z < 0),   z (0 <= z <= 1),   1 + alpha (z - 1) (z > 1).

``leaky_hard_sigmoids`` gives both from one z. alpha = ``DecomposeConfig.ci_alpha`` (0.01). All element-wise,
any shape: z, g (*positions, C) per decomposed matrix.

Three CI function families (one module per decomposed matrix; the variants of the public reference code):

* ``SharedMLPCI`` ("shared_mlp", default): one MLP  x (..., d_in) -> hidden -> (..., C)  per matrix.
* ``ComponentMLPCI`` ("mlp"): a separate scalar MLP per component reading only a_c = V_c^T x.
* ``VectorMLPCI`` ("vector_mlp"): a separate MLP per component reading the whole input x (small models only).

Sources: the SPD paper (Bushnaq et al. 2025, "Stochastic Parameter Decomposition", arXiv 2506.20790) for causal
importance and the leaky hard sigmoids; the public goodfire-ai/spd reference code for the one-sided leak below
0 (only gradients that push z up) and the three CI function types.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CI_TYPES = ("shared_mlp", "mlp", "vector_mlp")


class _LowerLeakyHardSigmoid(torch.autograd.Function):
    """clamp(z, 0, 1) forward; leaky (alpha) upward-pushing gradient below 0, zero gradient above 1."""

    @staticmethod
    def forward(ctx, z: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return z.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        # On [0, 1]: pass the gradient. Above 1: nothing. Below 0: a gradient-descent step moves z by -grad,
        # so only gradients with grad < 0 (pushing z back up towards the live region) pass, scaled by alpha.
        scale = torch.where(z < 0, (grad_out < 0).to(grad_out.dtype) * ctx.alpha, (z <= 1).to(grad_out.dtype))
        grad_z = grad_out * scale
        return grad_z, None


def lower_leaky_hard_sigmoid(z: Tensor, alpha: float = 0.01) -> Tensor:
    """Hard sigmoid for masks: forward ``clamp(z, 0, 1)``; below 0 the backward pass lets ``alpha * grad``
    through when it would push z up (grad < 0), above 1 it passes nothing. Any shape."""
    return _LowerLeakyHardSigmoid.apply(z, alpha)


def upper_leaky_hard_sigmoid(z: Tensor, alpha: float = 0.01) -> Tensor:
    """Hard sigmoid for the minimality loss: ``0`` for z < 0, ``z`` on [0, 1], ``1 + alpha (z - 1)`` above 1.
    Plain differentiable torch ops (gradient 0 / 1 / alpha on the three pieces). Any shape."""
    return torch.where(z > 1, 1 + alpha * (z - 1), z.clamp(min=0.0))


class _BothLeakyHardSigmoids(torch.autograd.Function):
    """(lower, upper) from one z with one saved tensor and one fused backward (the training step needs both)."""

    @staticmethod
    def forward(ctx, z: Tensor, alpha: float) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        lower = z.clamp(0.0, 1.0)
        upper = lower + alpha * (z - 1).clamp_(min=0.0)  # = 1 + alpha (z - 1) above 1, clamp(z, 0) below
        return lower, upper

    @staticmethod
    def backward(ctx, g_lower: Tensor | None, g_upper: Tensor | None):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        a = ctx.alpha
        g_lower = torch.zeros_like(z) if g_lower is None else g_lower
        g_upper = torch.zeros_like(z) if g_upper is None else g_upper
        # On [0, 1] both pass: g_lower + g_upper. Above 1: lower passes nothing, upper alpha * g_upper.
        # Below 0: upper passes nothing, lower only alpha * (upward-pushing, i.e. negative) g_lower.
        grad = torch.where(z > 1, g_upper * a, g_lower + g_upper)
        return torch.where(z < 0, g_lower.clamp(max=0.0).mul_(a), grad), None


def leaky_hard_sigmoids(z: Tensor, alpha: float = 0.01) -> tuple[Tensor, Tensor]:
    """``(lower_leaky_hard_sigmoid(z), upper_leaky_hard_sigmoid(z))`` in one fused op (same values and
    gradients, fewer passes over the (..., C) tensor). Any shape."""
    return _BothLeakyHardSigmoids.apply(z, alpha)


class SharedMLPCI(nn.Module):
    """One MLP per matrix: layer input x (..., d_in) -> Linear -> GELU -> Linear -> pre-activations (..., C)."""

    def __init__(self, d_in: int, C: int, hidden: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.d_in, self.C, self.hidden = d_in, C, hidden
        self.w1 = nn.Parameter(torch.empty(d_in, hidden))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.empty(hidden, C))
        self.b2 = nn.Parameter(torch.zeros(C))
        with torch.no_grad():
            self.w1.normal_(0.0, d_in**-0.5, generator=generator)
            self.w2.normal_(0.0, hidden**-0.5, generator=generator)

    def forward(self, x: Tensor, component_acts: Tensor | None = None) -> Tensor:
        """x: (..., d_in) -> CI pre-activations (..., C). ``component_acts`` is ignored."""
        return torch.nn.functional.gelu(x @ self.w1 + self.b1) @ self.w2 + self.b2


class _PerComponentMLPs(nn.Module):
    """C separate one-hidden-layer MLPs, one per component (weights not shared across c); the subclasses
    differ only in what the first layer reads. Given the first layer's product p (..., C, hidden):

        z_c = sum_h GELU(p_ch + b1_ch) w2_ch + b2_c        b1, w2: (C, hidden), b2: (C,)

    ``w1`` (shape ``w1_shape``) starts N(0, w1_std^2), ``w2`` N(0, 1/hidden), in that order; biases start at 0."""

    def __init__(self, w1_shape: tuple[int, ...], w1_std: float, C: int, hidden: int,
                 generator: torch.Generator | None) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(w1_shape))
        self.b1 = nn.Parameter(torch.zeros(C, hidden))
        self.w2 = nn.Parameter(torch.empty(C, hidden))
        self.b2 = nn.Parameter(torch.zeros(C))
        with torch.no_grad():
            self.w1.normal_(0.0, w1_std, generator=generator)
            self.w2.normal_(0.0, hidden**-0.5, generator=generator)

    def _readout(self, first: Tensor) -> Tensor:
        """first-layer product (..., C, hidden) -> CI pre-activations (..., C)."""
        h = torch.nn.functional.gelu(first + self.b1)  # (..., C, hidden)
        return (h * self.w2).sum(-1) + self.b2


class ComponentMLPCI(_PerComponentMLPs):
    """One tiny scalar MLP per component: a_c (..., C) -> hidden -> z_c (..., C), weights not shared across c.
    First layer: p_ch = a_c w1_ch, w1 (C, hidden) ~ N(0, 1)."""

    def __init__(self, C: int, hidden: int, generator: torch.Generator | None = None) -> None:
        super().__init__((C, hidden), 1.0, C, hidden, generator)
        self.C, self.hidden = C, hidden

    def forward(self, x: Tensor, component_acts: Tensor | None = None) -> Tensor:
        """component_acts a = x @ V: (..., C) -> CI pre-activations (..., C). ``x`` itself is not read."""
        if component_acts is None:
            raise ValueError("ComponentMLPCI ('mlp') needs the component activations a = x @ V")
        return self._readout(component_acts.unsqueeze(-1) * self.w1)


class VectorMLPCI(_PerComponentMLPs):
    """One small MLP per component, each reading the layer's whole input vector: x (..., d_in) -> hidden_c ->
    z_c, for every c (weights not shared across components; the reference's "vector_mlp").

    Unlike ``ComponentMLPCI`` it can tell apart two inputs that give a component the same activation V_c^T x
    (e.g. two features that a component reads with the same sign), so the minimality loss can switch the
    component off on one and keep it on the other. Costs C * d_in * hidden weights: meant for small models.
    First layer: p_ch = sum_d x_d w1_cdh, w1 (C, d_in, hidden) ~ N(0, 1/d_in)."""

    def __init__(self, d_in: int, C: int, hidden: int, generator: torch.Generator | None = None) -> None:
        super().__init__((C, d_in, hidden), d_in**-0.5, C, hidden, generator)
        self.d_in, self.C, self.hidden = d_in, C, hidden

    def forward(self, x: Tensor, component_acts: Tensor | None = None) -> Tensor:
        """x: (..., d_in) -> CI pre-activations (..., C). ``component_acts`` is ignored."""
        return self._readout(torch.einsum("...d,cdh->...ch", x, self.w1))


def make_ci_fn(
    ci_type: str, d_in: int, C: int, hidden: int, generator: torch.Generator | None = None
) -> nn.Module:
    """Build the CI function of one matrix: ``"shared_mlp"`` (default), ``"mlp"`` (per component, reading its
    own activation) or ``"vector_mlp"`` (per component, reading the whole input)."""
    if ci_type == "shared_mlp":
        return SharedMLPCI(d_in, C, hidden, generator)
    if ci_type == "vector_mlp":
        return VectorMLPCI(d_in, C, hidden, generator)
    if ci_type == "mlp":
        return ComponentMLPCI(C, hidden, generator)
    raise ValueError(f"unknown ci_type {ci_type!r}; expected one of {CI_TYPES}")
