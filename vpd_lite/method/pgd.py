"""Adversarial mask sources chosen by projected gradient ascent (PGD) on the reconstruction loss.

The adversarial mask of a component is  m = g + (1 - g) * s  with a *source* s in [0, 1] chosen to MAXIMISE
the reconstruction loss (KL for language models, MSE for regression outputs; a component with CI 1 is still
always kept; one with CI 0 can be set anywhere in [0, 1] by the adversary). Source shapes per matrix
(C = number of components, positions (B, T) for a language model, (B,) for a vector-to-vector model):

* ``"shared"``         (1, 1, C) / (1, C): one source for the whole batch (the evaluation default),
* ``"per_datapoint"``  (B, 1, C) / (B, C): one per sequence (sample),
* ``"per_token"``      (B, T, C) / (B, C): one per position.

Fresh PGD (evaluation, ``fresh_pgd_sources``): initialise s (random U(0, 1) / ones / zeros), then ``n_steps``
times the signed-gradient ascent step (CI held fixed)

    s <- clamp(s + eta * sign(dL_recon/ds), 0, 1)        eta = ``PGDConfig.step_size`` (default 0.1, 20 steps)

and report the loss at the final s.

Persistent PGD (training, ``PersistentPGD``): ``n_sets`` batch-invariant source sets (n_sets, 1, C) (delta
sources (n_sets, 1)) that live across training steps; sequence b of a batch uses set ``b % n_sets``. The
gradient G = dL/ds that the training loss's own backward pass leaves in them (no extra forward/backward) drives
one Adam *ascent* step per training step (torch ``Adam(maximize=True)``, lr = ``pgd_lr`` 0.1, betas
(beta1, beta2) = ``pgd_betas`` (0.9, 0.99), eps = 1e-8), then a clamp:

    m <- beta1 m + (1 - beta1) G,    v <- beta2 v + (1 - beta2) G^2,    (t = step count)
    s <- clamp(s + lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps), 0, 1).

Sources: the adversarial masks and persistent PGD of the VPD paper ("Interpreting Language Model Parameters")
and the public goodfire-ai/spd / param-decomp reference code; the mask form m = g + (1 - g) s is the SPD paper's
stochastic mask (arXiv 2506.20790) with the uniform noise replaced by an adversary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from vpd_lite.method.losses import recon_loss, recon_target
from vpd_lite.method.masks import mask_from_sources

SCOPES = ("shared", "per_datapoint", "per_token")


INITS = ("random", "ones", "zeros")


@dataclass
class PGDConfig:
    """Fresh PGD settings; defaults are the evaluation settings (random init, step 0.1, 20 steps, shared)."""

    n_steps: int = 20
    step_size: float = 0.1
    init: str = "random"
    scope: str = "shared"


def _source_shape(scope: str, batch_shape: tuple[int, ...], C: int | None) -> tuple[int, ...]:
    """Source shape for positions ``batch_shape`` (B, ...) : shared (1, ..., 1), per datapoint (B, 1, ..., 1),
    per token (B, ...); then C."""
    P = tuple(batch_shape)
    if not P:
        raise ValueError("PGD sources need at least one position dimension (the batch)")
    lead = {"shared": (1,) * len(P), "per_datapoint": (P[0],) + (1,) * (len(P) - 1), "per_token": P}
    if scope not in lead:
        raise ValueError(f"unknown PGD scope {scope!r}; expected one of {SCOPES}")
    return lead[scope] + (() if C is None else (C,))


def _init_tensor(init: str, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    if init == "random":
        return torch.rand(shape, generator=generator)
    if init == "ones":
        return torch.ones(shape)
    if init == "zeros":
        return torch.zeros(shape)
    raise ValueError(f"unknown PGD init {init!r}; expected one of {INITS}")


def init_sources(
    C_per_module: Mapping[str, int],
    batch_shape: tuple[int, ...],
    scope: str = "shared",
    init: str = "random",
    with_delta: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """Sources {name: (S..., C)} and, if ``with_delta``, delta sources {name: (S...)}; S from ``scope`` and the
    positions ``batch_shape`` ((B, T) for a language model)."""
    src = {n: _init_tensor(init, _source_shape(scope, batch_shape, C), generator) for n, C in C_per_module.items()}
    dsrc = None
    if with_delta:
        dsrc = {n: _init_tensor(init, _source_shape(scope, batch_shape, None), generator) for n in C_per_module}
    return src, dsrc


def _masks(ci: Mapping[str, Tensor], src: Mapping[str, Tensor], dsrc: Mapping[str, Tensor] | None, detach_ci: bool):
    masks = {n: mask_from_sources(g.detach() if detach_ci else g, src[n]) for n, g in ci.items()}
    dmasks = None if dsrc is None else {n: s for n, s in dsrc.items()}  # delta has CI 0: mask = source
    return masks, dmasks


def _masked_recon(cm, input_ids: Tensor, ci: Mapping[str, Tensor], src: Mapping[str, Tensor],
                  dsrc: Mapping[str, Tensor] | None, routing: Mapping[str, Tensor] | None, kind: str, target: object,
                  detach_ci: bool) -> tuple[Tensor, Tensor]:
    """The masked pass at sources ``src`` (masks g + (1 - g) s) and its reconstruction loss against ``target``
    (``recon_target(kind, ...)``): (loss scalar, output)."""
    masks, dmasks = _masks(ci, src, dsrc, detach_ci)
    out = cm.forward_with_masks(input_ids, masks, routing, dmasks)
    return recon_loss(kind, out, target), out


def _recon_kind(cm, kind: str | None) -> str:
    return cm.adapter.default_recon_loss if kind is None else kind


def signed_ascent_step(sources: Tensor, grad: Tensor, step_size: float) -> Tensor:
    """One fresh-PGD ascent step on the sources: s <- clamp(s + step_size * sign(dL/ds), 0, 1).

    sources s (..., C) in [0, 1]; grad dL_recon/ds, same shape; returns the new sources (..., C). Moving along the
    gradient's *sign* (not the gradient) makes every source move by exactly ``step_size`` (or 0 where the
    gradient is 0); the clamp projects back onto [0, 1]."""
    return (sources + step_size * grad.sign()).clamp(0.0, 1.0)


def fresh_pgd_sources(
    cm, input_ids: Tensor, ci_lower: Mapping[str, Tensor], target_logits: Tensor, config: PGDConfig = PGDConfig(),
    routing: Mapping[str, Tensor] | None = None, with_delta: bool = False, generator: torch.Generator | None = None,
    recon: str | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """Run ``config.n_steps`` signed-gradient ascent steps s <- clamp(s + step_size * sign(dL/ds), 0, 1) on the
    sources (CI held fixed) and return them (detached, in [0, 1]; shapes from ``config.scope``, see the module
    docstring). ``cm`` is a ``ComponentModel``; ``input_ids`` its batch; ci_lower
    {name: (*positions, C)}; target_logits the target's output on the batch (logits (B, T, V) for a language
    model). ``recon``: "kl" or "mse" (None: the adapter's default, KL for causal LMs)."""
    kind = _recon_kind(cm, recon)
    positions = tuple(next(iter(ci_lower.values())).shape[:-1])
    src, dsrc = init_sources(
        {n: g.shape[-1] for n, g in ci_lower.items()}, positions, config.scope, config.init, with_delta, generator
    )
    device = next(iter(ci_lower.values())).device
    src = {n: s.to(device) for n, s in src.items()}
    dsrc = None if dsrc is None else {n: s.to(device) for n, s in dsrc.items()}
    target = recon_target(kind, target_logits)
    for _ in range(config.n_steps):
        leaves = list(src.values()) + ([] if dsrc is None else list(dsrc.values()))
        for s in leaves:
            s.requires_grad_(True)
        loss, _ = _masked_recon(cm, input_ids, ci_lower, src, dsrc, routing, kind, target, detach_ci=True)
        grads = torch.autograd.grad(loss, leaves)
        with torch.no_grad():
            new = [signed_ascent_step(s, g, config.step_size) for s, g in zip(leaves, grads)]
        names = list(src)
        src = dict(zip(names, new[: len(names)]))
        if dsrc is not None:
            dsrc = dict(zip(names, new[len(names):]))
    src = {n: s.detach() for n, s in src.items()}
    dsrc = None if dsrc is None else {n: s.detach() for n, s in dsrc.items()}
    return src, dsrc


def pgd_reconstruction_loss(
    cm, input_ids: Tensor, ci_lower: Mapping[str, Tensor], target_logits: Tensor, config: PGDConfig = PGDConfig(),
    routing: Mapping[str, Tensor] | None = None, with_delta: bool = False, generator: torch.Generator | None = None,
    recon: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Fresh PGD (:func:`fresh_pgd_sources`, same arguments), then the masked pass at the final sources,
    m = g + (1 - g) s: (loss scalar, output (logits (B, T, V) for a language model)). Gradients flow into the CI
    (not into the sources), so this can also serve as a training loss."""
    kind = _recon_kind(cm, recon)
    src, dsrc = fresh_pgd_sources(cm, input_ids, ci_lower, target_logits, config, routing, with_delta, generator,
                                  kind)
    return _masked_recon(cm, input_ids, ci_lower, src, dsrc, routing, kind, recon_target(kind, target_logits),
                         detach_ci=False)


class PersistentPGD:
    """Batch-invariant adversarial sources that persist across training steps.

    ``sources[name]``: (n_sets, 1, C) leaf tensors with ``requires_grad``; ``delta_sources[name]``: (n_sets, 1).
    Use ``masks(ci_lower)`` (m = g + (1 - g) s) in the training step, backpropagate the total loss, then
    ``ascent_step()``: one Adam step that *increases* the loss (``maximize=True``; the update is written out in
    the module docstring), followed by a clamp to [0, 1].
    """

    def __init__(
        self,
        C_per_module: Mapping[str, int],
        n_sets: int = 8,
        with_delta: bool = False,
        lr: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.99),
        init: str = "random",
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if n_sets < 1:
            raise ValueError(f"n_sets must be >= 1, got {n_sets}")
        self.n_sets = n_sets
        self.sources = {n: _init_tensor(init, (n_sets, 1, C), generator).to(device).requires_grad_(True)
                        for n, C in C_per_module.items()}
        self.delta_sources = None
        if with_delta:
            self.delta_sources = {n: _init_tensor(init, (n_sets, 1), generator).to(device).requires_grad_(True)
                                  for n in C_per_module}
        self.optimizer = torch.optim.Adam(self.leaves(), lr=lr, betas=betas, maximize=True)

    def leaves(self) -> list[Tensor]:
        """The source tensors (the PGD's trainable leaves)."""
        return list(self.sources.values()) + ([] if self.delta_sources is None else list(self.delta_sources.values()))

    def masks(
        self, ci_lower: Mapping[str, Tensor], row_offset: int = 0
    ) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
        """Adversarial masks {name: (*positions, C)} (and delta masks {name: (B, 1, ...)}) for a batch of B
        sequences (samples); sequence b uses source set (row_offset + b) % n_sets (``row_offset``: the first row
        of this batch in a data-parallel global batch). Gradients reach both the CI and the sources."""
        g0 = next(iter(ci_lower.values()))
        B, extra = g0.shape[0], g0.dim() - 2  # positions beyond the batch dim (T for a language model)
        idx = (torch.arange(B) + row_offset) % self.n_sets
        idx = idx.to(next(iter(self.sources.values())).device)

        def rows(s: Tensor) -> Tensor:  # (n_sets, 1, ...) -> (B, 1 x extra, ...)
            picked = s[idx]
            return picked if extra == 1 else picked.reshape(B, *([1] * extra), *s.shape[2:])

        masks = {n: mask_from_sources(g, rows(self.sources[n])) for n, g in ci_lower.items()}
        dmasks = None if self.delta_sources is None else {n: rows(s) for n, s in self.delta_sources.items()}
        return masks, dmasks

    def ascent_step(self) -> None:
        """One Adam ascent step on the sources (from their accumulated .grad G):
        s <- clamp(s + lr * m_hat / (sqrt(v_hat) + eps), 0, 1) with Adam's bias-corrected moments of G; clear
        grads."""
        self.optimizer.step()
        with torch.no_grad():
            for s in self.leaves():
                s.clamp_(0.0, 1.0)
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        """Sources and optimiser state (for checkpoints / resume)."""
        return {
            "sources": {n: s.detach().clone() for n, s in self.sources.items()},
            "delta_sources": None if self.delta_sources is None
            else {n: s.detach().clone() for n, s in self.delta_sources.items()},
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for n, s in state["sources"].items():
                self.sources[n].copy_(s)
            if self.delta_sources is not None and state.get("delta_sources") is not None:
                for n, s in state["delta_sources"].items():
                    self.delta_sources[n].copy_(s)
        self.optimizer.load_state_dict(state["optimizer"])
