"""The VPD losses, minimised jointly (coefficients in ``vpd_lite.method.config.DecomposeConfig``).

Notation: a decomposed matrix m has W_m (d_out, d_in) ~ sum_c U_c V_c^T; g_c is the causal importance of
component c at one position (from ``vpd_lite.method.causal_importance``), N the number of positions in the batch
((B, T) tokens for a language model, (B,) samples for a vector model), m a mask (``vpd_lite.method.masks``,
``vpd_lite.method.pgd``).

* faithfulness    ``faithfulness_loss``: L_faith = sum_m mean_ij (W_m - sum_c U_c V_c^T)_ij^2 (per-matrix means;
                  or one mean over all entries).
* reconstruction  ``reconstruction_kl``: L_recon = mean_{b,t} KL(p_target || p_masked) over next-token
                  distributions (B, T, V) -> scalar, nats; ``head_reconstruction_kl`` is the same from the final
                  hidden states without holding the logits; ``reconstruction_mse``: mean (out - target)^2 for a
                  regression output. Used with stochastic masks m = g + (1 - g) u, adversarial masks
                  m = g + (1 - g) s, and (optionally) m = g.
* minimality      ``importance_minimality_loss``: with q_c = sum_positions (g_c + eps)^p (upper-leaky g),
                  L_min = sum_matrices sum_c [ q_c / N + beta (q_c / N) log2(1 + q_c) ], p annealed by
                  ``annealed_p``.

Sources: the SPD paper (Bushnaq et al. 2025, "Stochastic Parameter Decomposition", arXiv 2506.20790) for the
faithfulness, stochastic-reconstruction and L_p minimality terms; the VPD paper ("Interpreting Language Model
Parameters") for the adversarial reconstruction and the frequency term beta (q_c / N) log2(1 + q_c); the public
reference code (goodfire-ai/spd, param-decomp) for the reductions used here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import Tensor

from vpd_lite.method.components import LinearComponents

FAITHFULNESS_REDUCTIONS = ("matrix_means", "mean")


RECON_LOSSES = ("kl", "mse")


def faithfulness_loss(components: Iterable[LinearComponents], reduction: str = "matrix_means") -> Tensor:
    """Squared residual of the decomposed weights (scalar), Delta_m = W_m - sum_c U_c V_c^T of matrix m:

        "matrix_means" (default):  L_faith = sum_m mean_{i,j} (Delta_m)_{ij}^2
        "mean":                    L_faith = sum_m sum_{i,j} (Delta_m)_{ij}^2 / sum_m (d_out,m * d_in,m)

    "mean" is one mean over every entry of every decomposed matrix, as the method is usually written (SPD
    paper, Bushnaq et al. 2025, eq. for L_faithfulness; the public reference code divides by the total number
    of parameters). The default is the sum of per-matrix means, on purpose: each matrix gets the same weight
    whatever its size, so a small matrix (a 128 x 128 k_proj next to a 512 x 128 up_proj) is held to the same
    relative residual instead of counting for a quarter as much. The shipped language-model decomposition was
    trained with it, so its coefficient (``DecomposeConfig.coeff_faithfulness``) keeps its meaning; with M
    equally sized matrices the two forms differ by exactly the factor M.
    """
    comps = list(components)
    if reduction == "matrix_means":
        return sum((comp.delta().pow(2).mean() for comp in comps), torch.zeros(()))
    if reduction == "mean":
        total = sum((comp.delta().pow(2).sum() for comp in comps), torch.zeros(()))
        return total / max(sum(comp.d_in * comp.d_out for comp in comps), 1)
    raise ValueError(f"unknown faithfulness reduction {reduction!r}; expected one of {FAITHFULNESS_REDUCTIONS}")


def reconstruction_mse(target: Tensor, output: Tensor) -> Tensor:
    """L_recon = mean over every entry of (output - target)^2: (*positions, d_out) twice -> scalar (``target``,
    the unmasked model's output, carries no gradient).

    For models whose output is a regression (the toy models of superposition). One mean over positions and
    output dimensions, as in the public reference code's "mse" output loss. Computed in float32 (float64 for a
    float64 model)."""
    if target.shape != output.shape:
        raise ValueError(f"output shape {tuple(output.shape)} != target shape {tuple(target.shape)}")
    dtype = torch.promote_types(output.dtype, torch.float32)
    return (output.to(dtype) - target.detach().to(dtype)).pow(2).mean()


def recon_target(kind: str, target_output: Tensor) -> object:
    """What ``recon_loss(kind, ...)`` compares against, computed once per batch: ``target_distribution``
    for "kl" (softmax over the last dim of the target's logits), the detached output itself for "mse"."""
    if kind == "kl":
        return target_distribution(target_output)
    if kind == "mse":
        return target_output.detach()
    raise ValueError(f"unknown reconstruction loss {kind!r}; expected one of {RECON_LOSSES}")


def recon_loss(kind: str, output: Tensor, target: object) -> Tensor:
    """The reconstruction loss of a masked pass's ``output`` against ``target = recon_target(kind, ...)``:
    mean KL(target || masked) over positions ("kl", nats) or mean squared error ("mse")."""
    if kind == "kl":
        return reconstruction_kl(None, output, target)  # type: ignore[arg-type]
    if kind == "mse":
        return reconstruction_mse(target, output)  # type: ignore[arg-type]
    raise ValueError(f"unknown reconstruction loss {kind!r}; expected one of {RECON_LOSSES}")


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


class _HeadKLToTarget(torch.autograd.Function):
    """mean_n KL(p_n || softmax(h_n W^T + b)) from the final hidden states h (N, d), through a frozen output
    head, a block of rows at a time. Each block's logits (rows, V) live only while the block is processed; the
    gradient dL/dh = (softmax(z) - p) W / N is formed in the same sweep and is all that is kept for backward."""

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor | None, p: Tensor, plogp: Tensor,  # type: ignore[override]
                block_rows: int) -> Tensor:
        n = h.shape[0]
        with torch.autocast(h.device.type, enabled=False):
            hf, w = h.float(), weight.float()
            b = None if bias is None else bias.float()
            grad_h = torch.empty_like(hf)
            total = torch.zeros((), dtype=torch.float32, device=h.device)
            for start in range(0, n, block_rows):
                rows = slice(start, min(start + block_rows, n))
                z = torch.nn.functional.linear(hf[rows], w, b)  # (rows, V)
                lse = torch.logsumexp(z, dim=-1)
                p_rows = p[rows]
                total += torch.vdot(p_rows.reshape(-1), z.reshape(-1)) - lse.sum()
                grad_h[rows] = z.sub_(lse.unsqueeze(-1)).exp_().sub_(p_rows) @ w  # (softmax(z) - p) W
        ctx.save_for_backward(grad_h)
        ctx.n, ctx.dtype = n, h.dtype
        return plogp - total / n

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (grad_h,) = ctx.saved_tensors
        return (grad_h * (grad / ctx.n)).to(ctx.dtype), None, None, None, None, None


def head_reconstruction_kl(hidden: Tensor, head: torch.nn.Linear, target: tuple[Tensor, Tensor],
                           block_elements: int = 2**20) -> Tensor:
    """``reconstruction_kl`` of the logits ``head(hidden)`` without ever holding those logits: hidden (B, T, d)
    (the model's final hidden states), ``head`` its frozen output ``nn.Linear`` (V, d), ``target`` from
    ``target_distribution`` ((B, T, V), scalar). Same value and gradient (w.r.t. ``hidden``) as
    ``reconstruction_kl(None, head(hidden), target)``; rows are processed ``block_elements // V`` at a time,
    so the working set stays in cache and memory does not grow with B * T * V."""
    if head.weight.requires_grad or (head.bias is not None and head.bias.requires_grad):
        raise ValueError("head_reconstruction_kl needs a frozen head (it returns no gradient for its weights)")
    p_t, plogp = target
    V, d = head.weight.shape
    if p_t.shape[-1] != V or hidden.shape[-1] != d or p_t.shape[:-1] != hidden.shape[:-1]:
        raise ValueError(f"shape mismatch: hidden {tuple(hidden.shape)}, head ({V}, {d}), target {tuple(p_t.shape)}")
    block_rows = max(1, block_elements // V)
    return _HeadKLToTarget.apply(hidden.reshape(-1, d), head.weight, head.bias, p_t.reshape(-1, V), plogp,
                                 block_rows)


def importance_minimality_loss(
    ci_upper: Mapping[str, Tensor], p: float, beta: float = 0.1, eps: float = 1e-12,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Importance minimality with the frequency term, summed over matrices (scalar):

        q_c = sum_{tokens} (g_c + eps)^p,     N = number of token positions,
        L_min = sum_matrices sum_c [ q_c / N  +  beta * (q_c / N) * log2(1 + q_c) ].

    ``ci_upper``: {name: g (*positions, C)} from the upper-leaky hard sigmoid (N counts positions); q: (C,) per
    matrix. The first term is the SPD paper's L_p sparsity of the CI (arXiv 2506.20790); the log term (the VPD
    paper's frequency term, as in the goodfire-ai/spd reference code) penalises components that fire on many
    tokens (it grows with their firing count).
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
    linear down to ``p_end`` at ``end_frac``, constant after:

        p(frac) = p_start + clamp((frac - start_frac) / (end_frac - start_frac), 0, 1) * (p_end - p_start)

    (the reference code's linear p annealing)."""
    if frac <= start_frac:
        return p_start
    if frac >= end_frac:
        return p_end
    t = (frac - start_frac) / (end_frac - start_frac)
    return p_start + t * (p_end - p_start)
