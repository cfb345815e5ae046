"""Checks for the notebooks' coding exercises: the student writes a function, the check runs it beside the
library's own on small tensors and says what differs.

Every coding exercise ends with a cell like::

    def stochastic_mask(g, r):
        ...  # your code: return a tensor of the same shape as g
    exercises.check_stochastic_mask(stochastic_mask)

``compare_functions`` does the work of every such check: for each small input it calls both functions and
compares, in this order, what came back (a tensor?), its shape, its values and -- when the inputs are
differentiable -- the gradient of a fixed random projection of the output with respect to each input. The first
difference found is the message; a function that still returns ``...`` or ``None`` (or raises
``NotImplementedError``) gets "not written yet". A check never raises on the student's mistakes: an exception
inside the student's function is reported as a message, so a notebook always runs top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from vpd_lite.method.masks import mask_from_sources
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
            return not_quite(f"value: {diff}{where}.")
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
                             on_success="A component with g = 1 is always kept; one with g = 0 is scaled by r.")
