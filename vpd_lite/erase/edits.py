"""The single-scalar prefactor edit, its training toward uniform German, and per-language evaluation.

Give chosen rank-1 components c of a decomposed matrix W (shape d_out x d_in) a trainable prefactor s,
initialised to 1, and leave everything else frozen:

    W' = W + (s - 1) * U_c V_c^T        (U_c: write direction, (d_out,); V_c: read direction, (d_in,))

s = 1 is the untouched model, s = 0 removes the component, s = -1 flips its sign. The edit is applied to a plain
Hugging Face model with a forward hook on the edited ``nn.Linear`` (or GPT-2 ``Conv1D``) that adds ``(s - 1) * (V_c . x) * U_c`` to its
output, so the model's own weights are never written and ``remove()`` restores it exactly.

Two training objectives (``OBJECTIVES``), both computed on the budgeted German positions only:

* ``target_ce`` (the primary one): ``(ln V - CE)^2``, where CE is the mean next-token cross-entropy of the true
  next tokens. It asks for exactly what the claim measures — German CE at the uniform level ln V — and no more:
  pushing CE past ln V is penalised as much as falling short, so the fit has no reason to overshoot and damage
  other languages further.
* ``uniform_ce``: the cross-entropy from the uniform distribution to the model's next-token distribution,
  ``-(1/V) sum_v log p_v``, averaged over the positions. It equals ``KL(uniform || model) + ln V``; its
  minimum, ``ln V``, is reached exactly when the prediction is uniform. The true next token is not used.

The single scalar is fitted by :func:`fit_single_scalar`: a global 1-D search (a grid over a search range fixed
beforehand, then finer grids around the best point; where several s reach the optimum equally well, the one
closest to 1, the smallest edit). Several scalars (or LoRA) are fitted with Adam (:func:`fit_objective`).

A German-token *budget* b means exactly b next-token predictions are trained, on contiguous German text: the
edit sees b target tokens plus one context token per snippet (``select_target_tokens``).

Evaluation (``language_ce``): held-out next-token CE (nats/token) per language; ``ln(vocab)`` is the level of a
model that predicts uniformly (``uniform_level``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from vpd_lite.interpret.ids import ComponentId
from vpd_lite.method.components import linear_weight
from vpd_lite.method.cross_entropy import LOGIT_POSITIONS, row_slices


@dataclass(frozen=True)
class Direction:
    """One rank-1 component of one matrix; its weight is ``outer(u, v)`` of shape (d_out, d_in)."""

    module: str
    c: int
    u: Tensor  # (d_out,) write direction U_c
    v: Tensor  # (d_in,)  read direction V_c

    @property
    def component(self) -> ComponentId:
        return (self.module, self.c)


def component_directions(cm: nn.Module, components: Sequence[ComponentId]) -> list[Direction]:
    """Read the (u, v) factors of ``components`` from a ``vpd_lite.method.components.ComponentModel``.

    ``cm.components[name]`` holds ``V`` (d_in, C) and ``U`` (C, d_out); the component's weight is
    ``outer(U[c], V[:, c])`` (d_out, d_in). The factors are detached copies.
    """
    out = []
    for name, c in components:
        if name not in cm.components:
            raise KeyError(f"module {name!r} is not decomposed; decomposed: {list(cm.components)}")
        layer = cm.components[name]
        n_comp = layer.V.shape[1]
        if not 0 <= int(c) < n_comp:
            raise IndexError(f"component {c} out of range for {name!r}, which has C={n_comp}")
        out.append(Direction(name, int(c), layer.U[c].detach().clone(), layer.V[:, c].detach().clone()))
    return out


class ScalarEdit:
    """Trainable prefactors ``s`` (one per direction, init ``init``) applied by forward hooks.

    Use as a context manager or call ``attach()`` / ``remove()``. ``s`` is the only trainable tensor:
    ``edit.s`` has shape (n_directions,). Several directions may share a module.
    """

    def __init__(self, model: nn.Module, directions: Sequence[Direction], init: float = 1.0) -> None:
        if not directions:
            raise ValueError("ScalarEdit needs at least one direction")
        self.model = model
        self.directions = list(directions)
        self.s = nn.Parameter(torch.full((len(self.directions),), float(init)))
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        modules = dict(model.named_modules())
        index: dict[str, list[int]] = {}
        for i, d in enumerate(self.directions):
            lin = modules.get(d.module)
            try:
                d_out, d_in = linear_weight(lin)[0].shape
            except TypeError as err:
                raise KeyError(f"{d.module!r} is not an nn.Linear/Conv1D of the model "
                               f"(found {type(lin).__name__})") from err
            if d.u.shape != (d_out,) or d.v.shape != (d_in,):
                raise ValueError(
                    f"direction {d.component} has u {tuple(d.u.shape)}, v {tuple(d.v.shape)}; "
                    f"{d.module!r} needs u ({d_out},), v ({d_in},)"
                )
            index.setdefault(d.module, []).append(i)
        # per module: direction indices, V (d_in, k) and U (k, d_out)
        self._groups: dict[str, tuple[list[int], Tensor, Tensor]] = {
            name: (idx, torch.stack([self.directions[i].v for i in idx], dim=1),
                   torch.stack([self.directions[i].u for i in idx], dim=0))
            for name, idx in index.items()
        }

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def _hook(self, name: str):
        idx, V, U = self._groups[name]
        index = torch.tensor(idx)

        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
            x = inputs[0]  # (..., d_in)
            a = x @ V.to(x.dtype)  # (..., k): activations V_c . x
            scale = (self.s[index] - 1.0).to(x.dtype)  # (k,)
            return output + (a * scale) @ U.to(x.dtype)  # (..., d_out)

        return hook

    def attach(self) -> "ScalarEdit":
        """Register the hooks; attaching twice raises."""
        if self.attached:
            raise RuntimeError("ScalarEdit is already attached")
        modules = dict(self.model.named_modules())
        for name in self._groups:
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))
        return self

    def remove(self) -> None:
        """Remove the hooks; the model computes exactly what it did before ``attach``."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "ScalarEdit":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.remove()

    def set_scales(self, values: float | Sequence[float]) -> None:
        """Set ``s`` to one value for every direction, or to one value per direction."""
        vals = torch.as_tensor(values, dtype=self.s.dtype)
        if vals.ndim == 0:
            vals = vals.expand_as(self.s)
        if vals.shape != self.s.shape:
            raise ValueError(f"need {self.s.numel()} values, got shape {tuple(vals.shape)}")
        with torch.no_grad():
            self.s.copy_(vals)

    def scales(self) -> dict[ComponentId, float]:
        """Current prefactor per component."""
        return {d.component: float(v) for d, v in zip(self.directions, self.s.detach())}


def select_target_tokens(blocks: Tensor, budget: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Pick ``budget`` German next-token predictions from contiguous text in ``blocks`` (N, T).

    Returns ``tokens`` (n, L) and ``mask`` (n, L) bool, where ``mask[i, t]`` marks that the prediction at
    position t (of token t+1) is trained. Snippets are contiguous: for budget b <= T-1 one snippet of b+1
    tokens (L = b+1) starting at a random offset of a random block; larger budgets use ceil(b / (T-1))
    distinct random blocks (L = T), the last one partly (the text after its last target is never seen by a
    trained position, since the model is causal). Exactly ``budget`` positions are marked; a seed picks the text.
    """
    if blocks.ndim != 2:
        raise ValueError(f"blocks must be (N, T), got shape {tuple(blocks.shape)}")
    n_blocks, T = blocks.shape
    per_block = T - 1
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    n_need = math.ceil(budget / per_block)
    if n_need > n_blocks:
        raise ValueError(f"budget {budget} needs {n_need} blocks of length {T}, only {n_blocks} given")
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n_blocks, generator=g)[:n_need]
    tokens = blocks[rows].clone()
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    if n_need == 1:
        start = int(torch.randint(0, T - budget, (1,), generator=g))
        tokens = tokens[:, start : start + budget + 1]  # the snippet alone: b targets need b + 1 tokens
        mask = torch.ones_like(tokens, dtype=torch.bool)
        mask[0, budget] = False  # the last token is only a target
    else:
        left = budget
        for i in range(n_need):
            k = min(per_block, left)
            mask[i, :k] = True
            left -= k
    return tokens, mask


def uniform_level(vocab_size: int) -> float:
    """CE (nats/token) of the uniform prediction over ``vocab_size`` tokens: ln(vocab_size)."""
    return math.log(vocab_size)


def masked_next_token_ce(logits: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
    """Mean next-token CE (nats/token) over the masked positions: logits (B, T, V) at position t predict
    tokens[:, t + 1]; mask (B, T) bool marks the trained predictions (never the last position)."""
    if mask[:, -1].any():
        raise ValueError("mask marks the last position, which predicts nothing")
    if not mask.any():
        raise ValueError("mask selects no position")
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return nll[mask[:, :-1]].mean()


def target_ce_loss(logits: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
    """The primary objective: ``(ln V - CE)^2`` with CE = :func:`masked_next_token_ce`; 0 exactly when the
    budgeted tokens' CE equals the uniform level ln V (V = ``logits.shape[-1]``)."""
    return (math.log(logits.shape[-1]) - masked_next_token_ce(logits, tokens, mask)) ** 2


#: Training objectives, primary first: ``name -> f(logits (B, T, V), tokens (B, T), mask (B, T)) -> scalar``.
OBJECTIVES: dict[str, Any] = {}


def objective_value(name: str, logits: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
    """The objective ``name`` (a key of ``OBJECTIVES``) on the masked positions; a scalar tensor."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose from {list(OBJECTIVES)}")
    return OBJECTIVES[name](logits, tokens, mask)


def uniform_ce(logits: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over masked positions of ``-(1/V) sum_v log softmax(logits)_v`` = KL(uniform || p) + ln V.

    logits: (B, T, V); mask: (B, T) bool or None (all positions). Returns a scalar.
    """
    per_pos = -F.log_softmax(logits.float(), dim=-1).mean(dim=-1)  # (B, T)
    if mask is None:
        return per_pos.mean()
    if not mask.any():
        raise ValueError("mask selects no position")
    return per_pos[mask].mean()


OBJECTIVES.update({"target_ce": target_ce_loss, "uniform_ce": lambda logits, tokens, mask: uniform_ce(logits, mask)})


@dataclass
class FitConfig:
    """Optimiser settings for fitting parameters toward uniform predictions (Adam).

    ``batch_rows``: snippets per step, drawn at random (seeded by ``seed``) when the budget spans more rows
    than that; ``None`` = every row every step (full batch).
    """

    steps: int = 100
    lr: float = 0.1
    batch_rows: int | None = 1
    seed: int = 0
    progress: bool = False
    objective: str = "uniform_ce"  # a key of OBJECTIVES


def fit_objective(model: nn.Module, params: Sequence[Tensor], tokens: Tensor, mask: Tensor,
                  config: FitConfig) -> list[float]:
    """Minimise ``config.objective`` on the masked positions of ``tokens`` (n, T) w.r.t. ``params`` only (Adam).

    Every model parameter not in ``params`` is frozen during the fit. Returns the objective per step on that
    step's batch (before the update), length ``config.steps``.
    """
    if config.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {config.objective!r}; choose from {list(OBJECTIVES)}")
    params = list(params)
    keep = {id(p) for p in params}
    history: list[float] = []
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in keep)
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=config.lr)
        was_training = model.training
        model.eval()  # no dropout: the objective is deterministic
        gen = torch.Generator().manual_seed(config.seed)
        n = tokens.shape[0]
        for _ in tqdm(range(config.steps), desc="fit", disable=not config.progress, leave=False):
            x, m = tokens, mask
            if config.batch_rows is not None and n > config.batch_rows:
                rows = torch.randperm(n, generator=gen)[: config.batch_rows]
                x, m = tokens[rows], mask[rows]
            opt.zero_grad(set_to_none=True)
            loss = objective_value(config.objective, model(input_ids=x).logits, x, m)
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
        model.train(was_training)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    return history


@torch.no_grad()
def objective_on_all(model: nn.Module, tokens: Tensor, mask: Tensor, objective: str, batch_rows: int = 16) -> float:
    """The objective on *all* budgeted positions at once (the training objective a fit is judged by).

    For ``target_ce`` the CE inside is the mean over every masked position of every row."""
    was = model.training
    model.eval()
    try:
        def per_position(logits: Tensor, x: Tensor, m: Tensor) -> Tensor:
            if objective == "target_ce":  # the CE inside the square is the mean over all positions
                return masked_next_token_ce(logits, x, m)
            return objective_value(objective, logits, x, m)

        total, count = 0.0, 0
        for i in range(0, tokens.shape[0], batch_rows):
            x, m = tokens[i : i + batch_rows], mask[i : i + batch_rows]
            if not m.any():
                continue
            k = int(m.sum())
            total += float(per_position(model(input_ids=x).logits, x, m)) * k
            count += k
        if objective == "target_ce":
            return (math.log(int(model.config.vocab_size)) - total / count) ** 2
        return total / count
    finally:
        model.train(was)


def row_scaled_edit_hook(v: Tensor, u: Tensor, scale: Tensor) -> Callable:
    """A forward hook for a linear layer that adds ``scale[row] * (V_c . x) * U_c`` to its output, one scale
    per batch row (``scale`` = s - 1 per row): several prefactors of one component in one forward pass."""

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        x = inputs[0]
        a = x @ v.to(x.dtype)  # (B, T)
        return output + (scale.to(x.dtype).view(-1, *([1] * (a.dim() - 1))) * a).unsqueeze(-1) * u.to(x.dtype)

    return hook


@dataclass
class SearchConfig:
    """Global 1-D search: ``n_grid`` evenly spaced values over the search range (plus s = 1 when inside it),
    then ``n_rounds`` rounds of ``n_refine`` values spanning one previous step either side of the best.
    Values within ``tie_tol`` (absolute) of the best count as equally good; of those the one closest to 1 wins."""

    n_grid: int = 161
    n_refine: int = 21
    n_rounds: int = 3
    tie_tol: float = 1e-6


def grid_search_1d(f: Callable[[Tensor], Tensor], lo: float, hi: float,
                   config: SearchConfig | None = None) -> tuple[float, float]:
    """Minimise a scalar function of one variable on [lo, hi] by a global grid search plus refinement.

    ``f`` takes a 1-D tensor of candidate values (k,) and returns their objective values (k,). Deterministic.
    Among values whose objective is within ``config.tie_tol`` of the smallest, the one closest to 1 is taken
    (for the prefactor s: the smallest edit). Returns (argmin, min). Raises ``ValueError`` if lo > hi.
    """
    config = config or SearchConfig()
    if not lo <= hi:
        raise ValueError(f"search range is empty: lo={lo} > hi={hi}")

    xs_all: list[Tensor] = []
    ys_all: list[Tensor] = []

    def evaluate(xs: Tensor) -> tuple[float, float]:
        """Evaluate ``xs``; return the pick among *every* value seen so far: within ``tie_tol`` of the lowest
        objective, the closest to 1."""
        ys = f(xs).double()
        if ys.shape != xs.shape:
            raise ValueError(f"f returned shape {tuple(ys.shape)} for {tuple(xs.shape)} inputs")
        xs_all.append(xs.double())
        ys_all.append(torch.where(torch.isnan(ys), torch.full_like(ys, math.inf), ys))
        X, Y = torch.cat(xs_all), torch.cat(ys_all)
        idx = torch.nonzero(Y <= Y.min() + config.tie_tol).squeeze(1)
        j = idx[torch.argmin((X[idx] - 1.0).abs())]
        return float(X[j]), float(Y[j])

    grid = torch.linspace(lo, hi, max(config.n_grid, 2), dtype=torch.float64)
    if lo <= 1.0 <= hi:
        grid = torch.unique(torch.cat([grid, torch.tensor([1.0], dtype=torch.float64)]))
    x, y = evaluate(grid)
    step = (hi - lo) / max(config.n_grid - 1, 1)
    for _ in range(config.n_rounds):
        if step == 0:
            break
        x, y = evaluate(torch.linspace(max(lo, x - step), min(hi, x + step), config.n_refine, dtype=torch.float64))
        step = 2 * step / max(config.n_refine - 1, 1)
    return x, y


@torch.no_grad()
def scalar_objective_curve(model: nn.Module, direction: Direction, tokens: Tensor, mask: Tensor,
                           s_values: Tensor, objective: str, rows_per_batch: int = 256,
                           max_positions: int = LOGIT_POSITIONS) -> Tensor:
    """The objective of the single-scalar edit of ``direction`` at each s of ``s_values`` (k,), on the masked
    positions of ``tokens`` (n, T). Returns (k,).

    The rows of several s values (``rows_per_batch // n`` of them, stacked along the batch) form one group
    whose per-position numbers are reduced together; the model runs on a group's rows in forward passes of at
    most ``max_positions`` positions (:func:`row_slices`), so at most that many positions of logits and of
    log-softmax are held at once. For ``target_ce`` the CE is pooled over every masked position (rows
    weighted by their targets)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose from {list(OBJECTIVES)}")
    module = dict(model.named_modules())[direction.module]
    n, T = tokens.shape
    per = max(1, rows_per_batch // n)
    out = []
    log_v = math.log(int(model.config.vocab_size))
    for i in range(0, len(s_values), per):
        chunk = s_values[i : i + per].float()
        k = len(chunk)
        scale = (chunk - 1.0).repeat_interleave(n)  # (k n,): s - 1 of each row
        x = tokens.repeat(k, 1)
        m = mask.repeat(k, 1)
        per_pos = torch.zeros(m.shape, dtype=torch.float32)  # (k n, T): the objective's term at each position
        for rows in row_slices(k * n, T, max_positions):
            handle = module.register_forward_hook(row_scaled_edit_hook(direction.v, direction.u, scale[rows]))
            try:
                logits = model(input_ids=x[rows], use_cache=False).logits
            finally:
                handle.remove()
            logp = F.log_softmax(logits.float(), dim=-1)  # (rows, T, V)
            del logits
            if objective == "uniform_ce":
                per_pos[rows] = -logp.mean(-1)
            else:
                per_pos[rows, :-1] = -logp[:, :-1].gather(-1, x[rows, 1:].unsqueeze(-1)).squeeze(-1)
            del logp
        val = (per_pos * m).view(k, n, -1).sum((1, 2)) / m.view(k, n, -1).sum((1, 2))
        out.append((log_v - val) ** 2 if objective == "target_ce" else val)
    return torch.cat(out)


def fit_single_scalar(model: nn.Module, direction: Direction, tokens: Tensor, mask: Tensor, objective: str,
                      lo: float, hi: float, config: SearchConfig | None = None) -> tuple[float, float]:
    """Fit the prefactor s of one component on the budgeted positions by :func:`grid_search_1d` over the search
    range [lo, hi] (fixed beforehand, e.g. ``vpd_lite.erase.selection.search_range``). Returns (s, objective)."""
    was = model.training
    model.eval()
    try:
        return grid_search_1d(lambda xs: scalar_objective_curve(model, direction, tokens, mask, xs, objective),
                              lo, hi, config)
    finally:
        model.train(was)


def train_scalar_edit_restarts(model: nn.Module, directions: Sequence[Direction], tokens: Tensor, mask: Tensor,
                               config: FitConfig, restarts: int = 4, init_spread: float = 2.0
                               ) -> tuple[ScalarEdit, list[float], float]:
    """Fit several prefactors with Adam from ``restarts`` starting points: all ones, then ``1 + init_spread * N(0, 1)``
    per scalar (seeded by ``config.seed``). Keeps the start whose final objective on *all* budgeted positions
    (:func:`objective_on_all`) is lowest. Returns (detached edit, its history, that objective)."""
    g = torch.Generator().manual_seed(1000 + config.seed)
    best: tuple[ScalarEdit, list[float], float] | None = None
    for r in range(max(restarts, 1)):
        init = torch.ones(len(directions)) if r == 0 else 1.0 + init_spread * torch.randn(len(directions), generator=g)
        edit = ScalarEdit(model, directions)
        edit.set_scales(init.tolist())
        with edit:
            history = fit_objective(model, [edit.s], tokens, mask, config)
            final = objective_on_all(model, tokens, mask, config.objective)
        if best is None or final < best[2]:
            best = (edit, history, final)
    assert best is not None
    return best
