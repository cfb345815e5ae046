"""Checks for the notebooks' coding exercises: the student writes a function, the check runs it beside the
library's own on small tensors and says what differs.

Every coding exercise ends with a cell like::

    def stochastic_mask(g, r):
        ...  # your code: return a tensor of the same shape as g
    coding.check_stochastic_mask(stochastic_mask)

``compare_functions`` does the work of every such check: for each small input it calls both functions and
compares, in this order, what came back (a tensor?), its shape, its values and -- when the inputs are
differentiable -- the gradient of a fixed random projection of the output with respect to each input. The first
difference found is the message (with a hint when the answer matches a typical mistake); a function that still returns ``...`` or ``None`` (or raises
``NotImplementedError``) gets "not written yet". A check never raises on the student's mistakes: an exception
inside the student's function is reported as a message, so a notebook always runs top to bottom.

The reference of every check is the library's own code (``vpd_lite.method``), called through at most a thin
adapter that fixes the argument order; a check never re-implements what it checks.

Sections, one per notebook: ``# ---- notebook 01`` (the stochastic mask, the rank-1 components' output, the
leaky hard sigmoid's gradient), ``# ---- notebook 02`` (importance minimality, one PGD ascent step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from vpd_lite.method.causal_importance import lower_leaky_hard_sigmoid
from vpd_lite.method.components import LinearComponents
from vpd_lite.method.losses import importance_minimality_loss
from vpd_lite.method.masks import mask_from_sources
from vpd_lite.method.pgd import signed_ascent_step
from vpd_lite.tutorial.exercises import Check, correct, not_quite


def _describe(x: Any) -> str:
    if isinstance(x, Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}"[:80]


def _prepare(args: Sequence[Any], grad_args: Sequence[int]) -> list[Any]:
    """Fresh copies of the inputs (the student's function must not change the library's inputs), with
    ``requires_grad`` on the positions in ``grad_args``."""
    out = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            a = a.detach().clone()
            if i in grad_args:
                a.requires_grad_(True)
        out.append(a)
    return out


def _first_difference(mine: Tensor, ref: Tensor, atol: float, rtol: float) -> str | None:
    """None when ``mine`` matches ``ref``; else "largest difference D at index I: yours a, expected b"."""
    close = torch.isclose(mine, ref, atol=atol, rtol=rtol, equal_nan=True)
    if bool(close.all()):
        return None
    diff = (mine - ref).abs().nan_to_num(float("inf"))
    flat = int(diff.reshape(-1).argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), mine.shape)) if mine.dim() else ()
    return (f"largest difference {float(diff.reshape(-1)[flat]):.3g} at index {index}: yours "
            f"{float(mine.reshape(-1)[flat]):.4g}, expected {float(ref.reshape(-1)[flat]):.4g}")


def _hint(mine: Tensor, case: Sequence[Any], hints: Sequence[tuple[Callable[..., Tensor], str]],
          atol: float, rtol: float) -> str:
    """" <hint>" for the first typical wrong answer whose output on ``case`` equals the student's, else ""."""
    for wrong, hint in hints:
        with torch.no_grad():
            out = wrong(*_prepare(case, ()))
        if out.shape == mine.shape and _first_difference(mine.detach().to(out.dtype), out, atol, rtol) is None:
            return f" {hint}"
    return ""


def compare_functions(
    student: Callable[..., Any],
    reference: Callable[..., Tensor],
    cases: Sequence[Sequence[Any]],
    *,
    what: str,
    arg_names: Sequence[str],
    grad_args: Sequence[int] = (),
    atol: float = 1e-5,
    rtol: float = 1e-4,
    on_success: str = "",
    hints: Sequence[tuple[Callable[..., Tensor], str]] = (),
) -> Check:
    """Run ``student(*case)`` and ``reference(*case)`` on every case and report the first difference.

    Args:
        student: the student's function.
        reference: the library's function with the same signature, returning a tensor.
        cases: argument tuples, small tensors (and numbers); each is copied before each call.
        what: what the function computes, for the messages ("the stochastic mask").
        arg_names: the parameter names, for the gradient messages ("g", "r").
        grad_args: positions of the arguments whose gradient is compared (floating tensors only).
        atol, rtol: tolerances of ``torch.isclose`` for values and gradients.
        on_success: a sentence added to the "Correct" message (what to notice next).
        hints: (typical wrong answer, hint) pairs: when the student's values match a wrong answer's on the case
            that differs, its hint is added to the message (a hint names the mistake, not the solution).

    Returns:
        a ``Check``: correct when every case matches in type, shape, value and gradient; otherwise "Not quite"
        naming the case, and the first of: not written yet, an exception, not a tensor, the shape, the value
        (largest difference, its index, both values), the gradient with respect to which argument.
    """
    for k, case in enumerate(cases):
        where = "" if len(cases) == 1 else f" (test input {k + 1} of {len(cases)})"
        mine_args = _prepare(case, grad_args)
        try:
            mine = student(*mine_args)
        except NotImplementedError:
            return not_quite(f"{what} is not written yet: replace the `...` in the cell with your code.")
        except Exception as e:  # the student's bug, shown as a message, never raised
            return not_quite(f"your function raised {type(e).__name__}: {e}{where}.")
        if mine is None or mine is Ellipsis:
            return not_quite(f"{what} is not written yet: your function returned {mine!r}; make it return a "
                             "tensor.")
        ref_args = _prepare(case, grad_args)
        ref = reference(*ref_args)
        if not isinstance(mine, Tensor):
            return not_quite(f"your function returned {_describe(mine)}; {what} should be {_describe(ref)}{where}.")
        if tuple(mine.shape) != tuple(ref.shape):
            return not_quite(f"shape: yours is {tuple(mine.shape)}, {what} has shape {tuple(ref.shape)}{where}.")
        diff = _first_difference(mine.detach().to(ref.dtype), ref.detach(), atol, rtol)
        if diff is not None:
            return not_quite(f"value: {diff}{where}.{_hint(mine, case, hints, atol, rtol)}")
        if grad_args:
            weights = torch.randn(ref.shape, generator=torch.Generator().manual_seed(k), dtype=ref.dtype)
            if not mine.requires_grad:
                return not_quite(f"the values are right but no gradient flows through your function{where}: "
                                 "keep the computation in torch (no .detach(), .item(), .numpy() or torch.no_grad).")
            mine_grads = torch.autograd.grad((mine * weights).sum(), [mine_args[i] for i in grad_args],
                                             allow_unused=True)
            ref_grads = torch.autograd.grad((ref * weights).sum(), [ref_args[i] for i in grad_args],
                                            allow_unused=True)
            for i, gm, gr in zip(grad_args, mine_grads, ref_grads):
                gm = torch.zeros_like(mine_args[i]) if gm is None else gm
                gr = torch.zeros_like(ref_args[i]) if gr is None else gr
                diff = _first_difference(gm, gr, atol, rtol)
                if diff is not None:
                    return not_quite(f"the values are right, but the gradient with respect to {arg_names[i]} "
                                     f"differs{where}: {diff}.")
    checked = "values and gradients" if grad_args else "values"
    return correct(f"{what} matches the library's on {len(cases)} test input{'s' if len(cases) > 1 else ''} "
                   f"(shapes, {checked}). {on_success}".strip())


# ---- notebook 01
def check_stochastic_mask(fn: Callable[[Tensor, Tensor], Any]) -> Check:
    """Check ``fn(g, r) -> m`` against ``method.masks.mask_from_sources``: m = g + (1 − g)·r, g and r
    (..., C) in [0, 1]; values and the gradient with respect to g and r on three small inputs."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        (torch.tensor([1.0, 0.9, 0.0, 0.0, 0.5]), torch.tensor([0.3, 0.0, 1.0, 0.2, 0.5])),
        (torch.rand(2, 3, 6, generator=gen), torch.rand(2, 3, 6, generator=gen)),
        (torch.rand(4, 8, generator=gen), torch.rand(4, 8, generator=gen)),
    ]
    return compare_functions(fn, mask_from_sources, cases, what="the stochastic mask", arg_names=("g", "r"),
                             grad_args=(0, 1),
                             on_success="A component with g = 1 is always kept; one with g = 0 is scaled by r.",
                             hints=[(lambda g, r: g * r, "This looks like g·r: then a component with g = 1 would "
                                     "still be scaled by r. What must m be when g = 1, whatever r is?"),
                                    (lambda g, r: r + (1 - r) * g, "g and r have swapped roles: the importance "
                                     "g is the floor the mask never drops below.")])


def _components_forward(x: Tensor, V: Tensor, U: Tensor, mask: Tensor) -> Tensor:
    """The library's ``LinearComponents.forward`` with the given factors V (d_in, C), U (C, d_out), no bias and
    no delta: x (..., d_in), mask (..., C) -> (..., d_out). ``functional_call`` runs the module's own forward
    with V and U swapped in, so gradients reach the tensors passed here."""
    layer = LinearComponents(torch.zeros(U.shape[1], V.shape[0], dtype=V.dtype), None, C=V.shape[1],
                             use_delta=False)
    return torch.func.functional_call(layer, {"V": V, "U": U}, (x, mask))


def check_components_output(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Any]) -> Check:
    """Check ``fn(x, V, U, mask) -> y`` against ``method.components.LinearComponents.forward``:
    y = sum_c mask_c (V_c · x) U_c, i.e. ((x @ V) * mask) @ U. x (..., d_in), V (d_in, C), U (C, d_out),
    mask (..., C); returns (..., d_out). Values and the gradients with respect to all four inputs."""
    gen = torch.Generator().manual_seed(1)
    cases = [
        (torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
         torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), torch.tensor([1.0, 0.0, 0.5])),
        (torch.randn(2, 5, 4, generator=gen), torch.randn(4, 6, generator=gen), torch.randn(6, 3, generator=gen),
         torch.rand(2, 5, 6, generator=gen)),
        (torch.randn(7, 8, generator=gen), torch.randn(8, 5, generator=gen), torch.randn(5, 8, generator=gen),
         torch.rand(7, 5, generator=gen)),
    ]
    return compare_functions(
        fn, _components_forward, cases, what="the components' output", arg_names=("x", "V", "U", "mask"),
        grad_args=(0, 1, 2, 3),
        on_success="With every mask entry 1 this is x (V U), the summed components: the decomposed weight.",
        hints=[(lambda x, V, U, mask: (x @ V) @ U, "The mask is not used: a component with mask 0 must "
                "contribute nothing."),
               (lambda x, V, U, mask: x @ V @ U * mask.sum(-1, keepdim=True) / mask.shape[-1],
                "The mask must weigh each component separately, before the components are summed.")])


def _leaky_gradient(z: Tensor, grad_out: Tensor, alpha: float) -> Tensor:
    """dL/dz of the library's ``lower_leaky_hard_sigmoid`` (its custom backward) for an upstream gradient
    ``grad_out`` = dL/dσ; z and grad_out (...), returns (...)."""
    z = z.detach().requires_grad_(True)
    (grad_z,) = torch.autograd.grad(lower_leaky_hard_sigmoid(z, alpha), z, grad_out)
    return grad_z


def check_leaky_gradient(fn: Callable[[Tensor, Tensor, float], Any]) -> Check:
    """Check ``fn(z, grad_out, alpha) -> grad_z`` against the backward pass of
    ``method.causal_importance.lower_leaky_hard_sigmoid`` (forward clamp(z, 0, 1)):

        grad_z = G on 0 <= z <= 1,   0 for z > 1,   alpha * G where z < 0 and G < 0, else 0   (G = grad_out).

    z, grad_out (...) of one shape; alpha a float; returns (...). Values on three inputs (both signs of G on
    every piece, the edges z = 0 and z = 1, two values of alpha)."""
    gen = torch.Generator().manual_seed(2)
    z0 = torch.tensor([-2.0, -2.0, -0.5, -0.5, 0.0, 0.3, 0.3, 1.0, 1.5, 1.5])
    g0 = torch.tensor([-1.0, 1.0, -3.0, 2.0, 1.0, 1.0, -1.0, -2.0, -1.0, 1.0])
    cases = [
        (z0, g0, 0.1),
        (1.5 * torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen), 0.01),
        (1.5 * torch.randn(3, 2, 5, generator=gen), torch.randn(3, 2, 5, generator=gen), 0.3),
    ]
    return compare_functions(
        fn, _leaky_gradient, cases, what="the gradient of the lower leaky hard sigmoid",
        arg_names=("z", "grad_out", "alpha"),
        on_success="Below 0 only the push upwards gets through, so a component whose CI fell to 0 can come back "
                   "when the reconstruction needs it.",
        hints=[(lambda z, G, a: G * ((z >= 0) & (z <= 1)), "This is the plain clamp's gradient: below 0 a "
                "small leak must get through."),
               (lambda z, G, a: torch.where(z < 0, a * G, G * (z <= 1)), "Below 0 the leak must be one-sided: "
                "look at the sign of the upstream gradient."),
               (lambda z, G, a: torch.where(z < 0, a * G * (G > 0), G * (z <= 1)), "Below 0 you let through the "
                "wrong sign: gradient descent moves z by -G, so which sign of G pushes z up?")])


# ---- notebook 02
def _minimality_one_matrix(g: Tensor, p: float, beta: float) -> Tensor:
    """The library's ``importance_minimality_loss`` for one matrix's CI g (*positions, C); a scalar."""
    return importance_minimality_loss({"matrix": g}, p, beta)


def check_importance_minimality(fn: Callable[[Tensor, float, float], Any]) -> Check:
    """Check ``fn(g, p, beta) -> loss`` against ``method.losses.importance_minimality_loss`` for one matrix:

        q_c = sum_{positions} (g_c + eps)^p  (eps = 1e-12),  N = number of positions,
        loss = sum_c [ q_c / N  +  beta (q_c / N) log2(1 + q_c) ].

    g (*positions, C) in [0, 1]; returns a scalar. Values and the gradient with respect to g."""
    gen = torch.Generator().manual_seed(3)
    cases = [
        (torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 0.5]]), 2.0, 0.1),
        (0.05 + 0.95 * torch.rand(2, 4, 6, generator=gen), 0.4, 0.1),
        (0.05 + 0.95 * torch.rand(10, 3, generator=gen), 1.0, 0.5),
    ]
    return compare_functions(
        fn, _minimality_one_matrix, cases, what="the importance-minimality loss", arg_names=("g", "p", "beta"),
        grad_args=(0,),
        on_success="With p < 1 a small CI costs almost as much as a large one, so the cheapest way down is CI "
                   "exactly 0 on most tokens; the log term makes a frequently firing component cost more per "
                   "token than a rare one.",
        hints=[(lambda g, p, b: ((g + 1e-12) ** p).reshape(-1, g.shape[-1]).mean(0).sum(),
                "This is only the first term: the frequency term beta (q_c / N) log2(1 + q_c) is missing."),
               (lambda g, p, b: (lambda q, n: (q / n + b * (q / n) * torch.log(1 + q)).sum())(
                   ((g + 1e-12) ** p).reshape(-1, g.shape[-1]).sum(0), g[..., 0].numel()),
                "The logarithm is base 2 (torch.log2)."),
               (lambda g, p, b: (lambda q, n: (q / n + b * (q / n) * torch.log2(1 + q)).sum())(
                   ((g + 1e-12) ** p).reshape(-1, g.shape[-1]).sum(0), g.numel()),
                "N counts token positions, not positions times components.")])


def check_pgd_step(fn: Callable[[Tensor, Tensor, float], Any]) -> Check:
    """Check ``fn(s, grad, step_size) -> s_new`` against ``method.pgd.signed_ascent_step``, the step of fresh
    PGD: s_new = clamp(s + step_size * sign(grad), 0, 1). s, grad (..., C); returns (..., C). Values on three
    inputs (gradients of both signs and exactly 0; sources at and near the bounds)."""
    gen = torch.Generator().manual_seed(4)
    cases = [
        (torch.tensor([0.5, 0.5, 0.5, 0.95, 0.02, 0.0, 1.0]),
         torch.tensor([3.0, -0.001, 0.0, 2.0, -5.0, -1.0, 1.0]), 0.1),
        (torch.rand(2, 1, 8, generator=gen), torch.randn(2, 1, 8, generator=gen), 0.1),
        (torch.rand(4, 6, generator=gen), torch.randn(4, 6, generator=gen), 0.25),
    ]
    return compare_functions(
        fn, signed_ascent_step, cases, what="the PGD step", arg_names=("s", "grad", "step_size"),
        on_success="Every source moves by the full step (or not at all): the sign ignores how steep the loss is, "
                   "so 20 such steps can cross [0, 1] twice.",
        hints=[(lambda s, g, a: (s - a * g.sign()).clamp(0, 1), "Your step goes downhill: the adversary wants "
                "the reconstruction loss to grow."),
               (lambda s, g, a: s + a * g.sign(), "Some sources left [0, 1]: a mask source must stay in [0, 1]."),
               (lambda s, g, a: (s + a * g).clamp(0, 1), "The step should not depend on the gradient's size, "
                "only on its direction.")])
