"""The VPD losses (minimised jointly; coefficients live in ``DecomposeConfig``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import Tensor

from vpd_lite.components import LinearComponents

__all__ = ["faithfulness_loss", "target_distribution", "reconstruction_kl", "importance_minimality_loss", "annealed_p"]


def faithfulness_loss(components: Iterable[LinearComponents]) -> Tensor:
    """L_faith = sum over matrices of mean_{i,j} (W - sum_c U_c V_c^T)_{ij}^2   (scalar)."""
    return sum((comp.delta().pow(2).mean() for comp in components), torch.zeros(()))


def target_distribution(target_logits: Tensor) -> tuple[Tensor, Tensor]:
    """The target's next-token distribution, computed once per batch and shared by every KL:
    (p (B, T, V) = softmax(target_logits), mean_{b,t} sum_v p log p (scalar)). No gradient.
    Uses sum_v p log p = sum_v p z - logsumexp(z) (z = logits, since sum_v p = 1)."""
    with torch.no_grad():
        z = target_logits.float()
        lse = torch.logsumexp(z, dim=-1)  # (B, T)
        p = (z - lse.unsqueeze(-1)).exp_()
        return p, ((p * z).sum(-1) - lse).mean()


class _KLToTarget(torch.autograd.Function):
    """mean_n KL(p_n || softmax(z_n)) = plogp - mean_n [sum_v p_nv z_nv - logsumexp(z_n)], with the
    gradient (softmax(z) - p) / N computed in place: no log-softmax tensor is kept for backward."""

    @staticmethod
    def forward(ctx, z: Tensor, p: Tensor, plogp: Tensor) -> Tensor:  # type: ignore[override]
        lse = torch.logsumexp(z, dim=-1)
        ctx.save_for_backward(z, p, lse)
        return plogp - ((p * z).sum(-1) - lse).mean()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        z, p, lse = ctx.saved_tensors
        n = lse.numel()
        g = (z - lse.unsqueeze(-1)).exp_().sub_(p).mul_(grad / n)
        return g, None, None


def reconstruction_kl(target_logits: Tensor | None, logits: Tensor,
                      target: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """L_recon = mean over positions of KL(p_target || p_masked)
    = mean_{b,t} sum_v p_t(v) [log p_t(v) - log p_m(v)],  p = softmax(logits).  Inputs (B, T, V) -> scalar.

    The target side carries no gradient; pass ``target=target_distribution(target_logits)`` to reuse it
    across several KLs of the same batch (then ``target_logits`` may be None)."""
    if target is None:
        if target_logits is None:
            raise ValueError("reconstruction_kl needs target_logits or a precomputed target distribution")
        target = target_distribution(target_logits)
    p_t, plogp = target
    return _KLToTarget.apply(logits.float(), p_t, plogp)


def importance_minimality_loss(
    ci_upper: Mapping[str, Tensor], p: float, beta: float = 0.1, eps: float = 1e-12,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Importance minimality with the frequency term, summed over matrices:

        q_c = sum_{tokens} (g_c + eps)^p,     N = number of token positions,
        L_min = sum_matrices sum_c [ q_c / N  +  beta * (q_c / N) * log2(1 + q_c) ].

    ``ci_upper``: {name: g (..., C)} from the upper-leaky hard sigmoid. The log term penalises components
    that fire on many tokens (it grows with their firing count).
    ``reduce`` (data-parallel runs) sums q_c and N over the processes before the loss is formed, so the
    frequency term sees the global firing counts.
    """
    total = torch.zeros(())
    for g in ci_upper.values():
        n_tokens = g[..., 0].numel()
        q = (g + eps).pow(p).reshape(-1, g.shape[-1]).sum(0)  # (C,)
        if reduce is not None:
            q = reduce(q)
            n_tokens = float(reduce(torch.tensor(float(n_tokens), device=q.device)))
        total = total + (q / n_tokens + beta * (q / n_tokens) * torch.log2(1 + q)).sum()
    return total


def annealed_p(frac: float, p_start: float = 2.0, p_end: float = 0.4,
               start_frac: float = 0.0, end_frac: float = 1.0) -> float:
    """Minimality exponent at training progress ``frac`` in [0, 1]: ``p_start`` until ``start_frac``, then
    linear down to ``p_end`` at ``end_frac``, constant after."""
    if frac <= start_frac:
        return p_start
    if frac >= end_frac:
        return p_end
    t = (frac - start_frac) / (end_frac - start_frac)
    return p_start + t * (p_end - p_start)
