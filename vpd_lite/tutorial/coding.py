"""Checks for the notebooks' coding exercises: the student writes a function, the check runs it beside the
library's own on small tensors and says what differs.

Every coding exercise ends with a cell like::

    def stochastic_mask(g, r):
        ...  # your code: return a tensor of the same shape as g
    exercises.check_stochastic_mask(stochastic_mask)

``compare_functions`` does the work of every such check: for each small input it calls both functions and
compares, in this order, what came back (a tensor?), its shape, its values and -- when the inputs are
differentiable -- the gradient of a fixed random projection of the output with respect to each input. A function
whose result is not a tensor is compared the same way: a ``{name: number}`` dict (ΔCE per language, shares per
language) key by key, anything else (a category name) by equality. The first difference found is the message,
with the test input (or its entries at the index that differs) and a hint when the answer behaves exactly like a
typical mistake on every test input. The untouched stub (a body of ``...``) gets "not written yet"; a function that
computes something and returns None gets "returned None: is a `return` missing?". A check never raises on the
student's mistakes: an exception inside the student's function is reported as a message, so a notebook always
runs top to bottom.

Each check's test inputs separate every rule its notebook states from its absence (boundaries such as exactly
70 %, g = 0 with p < 1, non-symmetric matrices, dimensions of size 1, languages in another order, a second
direction and other text); ``tests/tutorial/test_check_rules.py`` lists the rules. A result must also have the
library's kind of dtype (a float tensor where the library's is float).

The reference of every check is the library's own code (``vpd_lite.method``, ``interpret``, ``erase``), called
through at most a thin adapter that fixes the argument order; a check never re-implements what it checks.

Sections, one per notebook: ``# ---- notebook 01`` (the stochastic mask, the rank-1 components' output, the
leaky hard sigmoid's gradient), ``# ---- notebook 02`` (importance minimality, one PGD ascent step),
``# ---- notebook 03`` (language profile, category rule), ``# ---- notebook 04`` (the scalar edit, one edit-scan
column), ``# ---- notebook 05`` (the remainder's mask in a targeted decomposition).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from vpd_lite.erase.edit_scan import scan_curves
from vpd_lite.erase.edits import Direction, row_scaled_edit_hook
from vpd_lite.interpret.labels import categorize
from vpd_lite.interpret.statistics import ComponentStats, language_specificity, live_components
from vpd_lite.method.causal_importance import lower_leaky_hard_sigmoid
from vpd_lite.method.components import LinearComponents
from vpd_lite.method.losses import importance_minimality_loss
from vpd_lite.method.masks import mask_from_sources, remainder_mask
from vpd_lite.method.pgd import signed_ascent_step
from vpd_lite.tutorial.exercises import Check, correct, not_quite


def _describe(x: Any) -> str:
    """What a value is, on one line of at most about 80 characters: "a tensor of shape (3,)", "a dict with keys
    [...]", "a numpy ndarray of shape (10,)", "float 0.5"."""
    if isinstance(x, Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, Mapping):
        return _shortened(f"a dict with keys {list(x)}")
    if hasattr(x, "shape") and hasattr(x, "dtype"):  # numpy and the like
        return f"a {type(x).__module__.split('.')[0]} {type(x).__name__} of shape {tuple(x.shape)}"
    return _shortened(f"{type(x).__name__} {x!r}")


def _shortened(text: str, limit: int = 80) -> str:
    """``text`` on one line (runs of white space made one space), cut to ``limit`` characters with "…"."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _unchanged(a: Tensor, b: Tensor) -> bool:
    """True when ``a`` holds exactly what ``b`` holds (same shape, dtype and entries; NaN equal to NaN)."""
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.isclose(a, b, rtol=0, atol=0, equal_nan=True).all())


def _same(a: Any, b: Any) -> bool:
    """True when the input ``a`` still holds what ``b`` holds: tensors entry by entry (:func:`_unchanged`),
    mappings key by key (in order), dataclasses field by field, lists and tuples item by item, anything else by
    ``==``. A model (``nn.Module``) counts as unchanged here (the scan-column check restores and reports it)."""
    if isinstance(b, Tensor):
        return isinstance(a, Tensor) and _unchanged(a.detach(), b.detach())
    if isinstance(b, torch.nn.Module):
        return True
    if isinstance(b, Mapping):
        return isinstance(a, Mapping) and list(a) == list(b) and all(_same(a[k], b[k]) for k in b)
    if dataclasses.is_dataclass(b) and not isinstance(b, type):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(b))
    if isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a value that cannot be compared counts as changed
        return False


def _prepare(args: Sequence[Any], grad_args: Sequence[int]) -> list[Any]:
    """Fresh copies of the inputs, so that a function that changes its inputs in place changes neither the
    library's inputs nor the notebook's objects (statistics, a component's direction, a profile dict): tensors
    cloned (with ``requires_grad`` on the positions in ``grad_args``), containers and dataclasses deep-copied;
    a model is passed as it is (the scan-column check restores it), numbers and strings cannot change."""
    out = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            a = a.detach().clone()
            if i in grad_args:
                a.requires_grad_(True)
        elif not isinstance(a, (torch.nn.Module, int, float, str, bool, type(None))):
            a = copy.deepcopy(a)
        out.append(a)
    return out


def _first_difference(mine: Tensor, ref: Tensor, atol: float, rtol: float,
                      names: Sequence[str] | None = None) -> str | None:
    """None when ``mine`` matches ``ref``; else "largest difference D at index I: yours a, expected b" (with
    ``names``, one per entry of a 1-D ``ref``: "at 'de'" instead of the index)."""
    found = _difference_at(mine, ref, atol, rtol)
    if found is None:
        return None
    index, flat, size = found
    where = f"{names[flat]!r}" if names is not None else f"index {index}"
    return (f"largest difference {size:.3g} at {where}: yours "
            f"{float(mine.reshape(-1)[flat]):.4g}, expected {float(ref.reshape(-1)[flat]):.4g}")


def _difference_at(mine: Tensor, ref: Tensor, atol: float, rtol: float) -> tuple[tuple[int, ...], int, float] | None:
    """None when ``mine`` matches ``ref``; else (index, flat index, size) of the largest difference."""
    close = torch.isclose(mine, ref, atol=atol, rtol=rtol, equal_nan=True)
    if bool(close.all()):
        return None
    diff = (mine - ref).abs().nan_to_num(float("inf"))
    diff = torch.where(close, torch.zeros_like(diff), diff)
    flat = int(diff.reshape(-1).argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), mine.shape)) if mine.dim() else ()
    return index, flat, float(diff.reshape(-1)[flat])


def _number(x: float) -> str:
    return f"{x + 0.0:.4g}"  # + 0.0: -0 shows as 0


def _entries(t: Tensor) -> str:
    """A small tensor as nested lists of 4-digit numbers: [[1, 0.5], [0, 2]]."""
    if t.dim() == 0:
        return _number(float(t))
    return "[" + ", ".join(_entries(row) for row in t) + "]"


def _inputs_at(case: Sequence[Any], arg_names: Sequence[str], shape: tuple[int, ...],
               index: tuple[int, ...], elementwise: bool = True) -> str:
    """The test input's entries that produced entry ``index`` of a result of ``shape``: "z = 1, grad_out = -2,
    alpha = 0.1" for arguments of that shape when the function works entry by entry (``elementwise``), and
    numbers ("W[1, 2] = 0.84" with its index when other tensor arguments have other shapes); the row
    ``x[1, 3] = [...]`` for arguments whose leading dimensions are the result's; small other tensors in full;
    large ones by their shape."""
    parts = []
    indexed = any(isinstance(a, Tensor) and tuple(a.shape) != shape for a in case)
    for name, a in zip(arg_names, case):
        if isinstance(a, Tensor):
            a = a.detach()
            if elementwise and tuple(a.shape) == shape and index:
                at = f"[{', '.join(str(i) for i in index)}]" if indexed else ""
                parts.append(f"{name}{at} = {_number(float(a[index]))}")
            elif (a.dim() >= 1 and len(shape) >= 1 and tuple(a.shape[:-1]) == shape[:-1] and a.dim() > 1
                  and a.shape[-1] <= 8):
                parts.append(f"{name}{list(index[:-1])} = {_entries(a[index[:-1]])}")
            elif a.dim() == 1 and a.shape[0] <= 8 and tuple(a.shape[:-1]) == shape[:-1]:
                parts.append(f"{name} = {_entries(a)}")
            elif a.numel() <= 9:
                parts.append(f"{name} = {_entries(a)}")
            else:
                parts.append(f"{name} of shape {tuple(a.shape)}")
        elif isinstance(a, (int, float, str)) and not isinstance(a, bool):
            parts.append(f"{name} = {a!r}" if isinstance(a, str) else f"{name} = {_number(float(a))}")
    return ", ".join(parts)


def _plain_difference(mine: Any, ref: Any, what: str, atol: float, rtol: float) -> str | None:
    """None when a non-tensor result ``mine`` matches ``ref``; else what differs. ``ref`` a ``{name: number}``
    mapping: the same keys, then the values (as :func:`_first_difference`, named by key); otherwise equality."""
    if isinstance(ref, Mapping):
        if not isinstance(mine, Mapping):
            return f"your function returned {_describe(mine)}; {what} should be a dict with keys {list(ref)}"
        if set(mine) != set(ref):
            missing, extra = [k for k in ref if k not in mine], [k for k in mine if k not in ref]
            return (f"keys: yours are {list(mine)}, {what} has {list(ref)}"
                    + (f" (missing {missing})" if missing else "") + (f" (not expected {extra})" if extra else ""))
        keys = list(ref)
        try:
            values = torch.tensor([float(mine[k]) for k in keys], dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return f"the values of your dict should be numbers; yours are {[_describe(mine[k]) for k in keys]}"
        expected = torch.tensor([float(ref[k]) for k in keys], dtype=torch.float64)
        diff = _first_difference(values, expected, atol, rtol, names=keys)
        if diff is None:
            return None
        total, ref_total = float(values.sum()), float(expected.sum())
        if abs(ref_total - 1.0) < 1e-6 and abs(total - 1.0) > max(atol, 1e-6):
            return f"your values sum to {total:.4g}, not 1 ({diff})"
        return f"value: {diff}"
    if isinstance(mine, Tensor) or type(mine) is not type(ref):
        return f"your function returned {_describe(mine)}; {what} should be {_describe(ref)}"
    return None if mine == ref else f"yours is {mine!r}, expected {ref!r}"


def _does_nothing(fn: Callable[..., Any]) -> bool:
    """True for the untouched stub: a function whose body (after its docstring) is only ``...`` (``pass`` or a
    bare ``return`` too), possibly after lines that only unpack its arguments (``module, c = cid``, as a stub
    may give them); and for anything whose code cannot be read (a builtin). False for a function that computes
    something, or only names an argument anew (``mask = u``), and then returns None (a forgotten ``return``).
    Reads the source when it can (``ast``), else the bytecode."""
    import ast
    import inspect
    import textwrap

    fn = getattr(fn, "__wrapped__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return True
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        tree = None
    node = tree.body[0] if tree is not None and tree.body else None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn.__name__:
        def idle(st: ast.stmt) -> bool:
            if isinstance(st, ast.Pass) or (isinstance(st, ast.Return) and (
                    st.value is None or isinstance(st.value, ast.Constant) and st.value.value in (None, Ellipsis))):
                return True
            if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
                return True  # the docstring, `...`
            names = (ast.Name, ast.Tuple, ast.List)
            return (isinstance(st, ast.Assign) and isinstance(st.value, names)
                    and all(isinstance(t, (ast.Tuple, ast.List)) for t in st.targets)  # unpacking only
                    and all(isinstance(e, ast.Name) for e in ast.walk(st.value) if not isinstance(e, (
                        ast.Tuple, ast.List, ast.Load, ast.Store))))
        return all(idle(st) for st in node.body)
    import dis

    idle_ops = {"RESUME", "NOP", "CACHE", "RETURN_VALUE", "RETURN_CONST", "POP_TOP", "UNPACK_SEQUENCE",
                "STORE_FAST", "LOAD_FAST"}
    instructions = list(dis.get_instructions(code))
    ops = {ins.opname for ins in instructions}
    if "STORE_FAST" in ops and "UNPACK_SEQUENCE" not in ops:
        return False  # an argument named anew (``mask = u``), not unpacked
    for ins in instructions:
        if ins.opname in ("LOAD_CONST", "RETURN_CONST"):
            if ins.argval not in (None, Ellipsis) and not isinstance(ins.argval, str):
                return False
        elif ins.opname not in idle_ops:
            return False
    return True


def _hint(student: Callable[..., Any], cases: Sequence[Sequence[Any]],
          hints: Sequence[tuple[Callable[..., Tensor], str]], atol: float, rtol: float) -> str:
    """" <hint>" for the first typical wrong answer whose output equals the student's on *every* test input (so
    a hint names the mistake only when the answer behaves exactly like it), else ""."""
    def run(fn: Callable[..., Any], case: Sequence[Any]) -> Any:
        try:
            with torch.no_grad():
                return fn(*_prepare(case, ()))
        except Exception as e:  # the same error on an input counts as the same behaviour
            return type(e)

    for wrong, hint in hints:
        for case in cases:
            mine, out = run(student, case), run(wrong, case)
            if isinstance(mine, Tensor) and isinstance(out, Tensor):
                if out.shape != mine.shape or _difference_at(mine.detach().to(out.dtype), out, atol, rtol):
                    break
            elif not (isinstance(mine, type) and mine is out):
                break
        else:
            return f" {hint}"
    return ""


#: What to do about an input changed in place (the end of that message).
IN_PLACE = ("Leave the inputs as they are and return a new value: an operation ending in `_` (`mul_`, `pop`), or an "
            "assignment into the input (`x[i] = ...`, `x /= ...`, `d[key] = ...`), changes the caller's object; work "
            "on a copy (`x.clone()`, `dict(d)`) or build the result anew.")


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
    case_names: Sequence[str] | None = None,
    hints: Sequence[tuple[Callable[..., Tensor], str]] = (),
    elementwise: bool = True,
) -> Check:
    """Run ``student(*case)`` and ``reference(*case)`` on every case and report the first difference.

    Args:
        student: the student's function.
        reference: the library's function with the same signature, returning a tensor, a ``{name: number}``
            dict or another value compared by equality (a str).
        cases: argument tuples, small tensors (and numbers); each is copied before each call.
        what: what the function computes, for the messages ("the stochastic mask").
        arg_names: the parameter names, for the gradient messages ("g", "r").
        grad_args: positions of the arguments whose gradient is compared (floating tensors only).
        atol, rtol: tolerances of ``torch.isclose`` for values and gradients.
        on_success: a sentence added to the "Correct" message (what to notice next).
        case_names: one short description per case for the messages ("the German component"); default
            "test input k of n".
        hints: (typical wrong answer, hint) pairs: when the student's function gives the same values as a wrong
            answer on every case (or fails where it fails), its hint is added to the message (a hint names the
            mistake, not the solution).
        elementwise: True when entry i of the result depends on entry i of the inputs of its shape, so a message
            can name the input entries at the index that differs ("where z = 1"); False shows whole inputs.

    Returns:
        a ``Check``: correct when every case matches in type, shape, value and gradient; otherwise "Not quite"
        naming the case, and the first of: not written yet, an exception, not a tensor, the shape, the value
        (largest difference, its index, both values, the input entries there), over every case, then the gradient
        with respect to which argument.
    """
    pending = []  # (k, case, where, yours, reference's, your args, its args): gradients still to compare
    for k, case in enumerate(cases):
        if case_names is not None:
            where = f" (on {case_names[k]})"
        else:
            where = "" if len(cases) == 1 else f" (test input {k + 1} of {len(cases)})"
        mine_args = _prepare(case, grad_args)
        try:
            mine = student(*mine_args)
        except NotImplementedError:
            return not_quite(f"{what} is not written yet: replace the `...` in the cell with your code.")
        except Exception as e:  # the student's bug, shown as a message, never raised
            shown = _inputs_at(case, arg_names, (), ())
            shown = f" with {shown}." if shown else "."
            if isinstance(e, RuntimeError) and "in-place operation" in str(e):
                return not_quite(f"your function changed one of its inputs in place{where}{shown} {IN_PLACE} (Here "
                                 f"torch refused it: {_shortened(str(e), 120)})")
            return not_quite(f"your function raised {type(e).__name__}: {_shortened(str(e), 300)}{where}{shown}")
        changed = [name for name, a, b in zip(arg_names, mine_args, case) if not _same(a, b)]
        if changed:
            return not_quite(f"your function changed its input `{changed[0]}` in place{where}: whoever called it "
                             f"would find it altered. {IN_PLACE}")
        ref_args = _prepare(case, grad_args)
        ref = reference(*ref_args)
        if mine is None or mine is Ellipsis:
            kind = ("a tensor" if isinstance(ref, Tensor) else "a dict {name: number}" if isinstance(ref, Mapping)
                    else f"a {type(ref).__name__}")
            if mine is None and not _does_nothing(student):
                return not_quite(f"your function ran but returned None{where}: is a `return` missing? Make it "
                                 f"return {kind}.")
            return not_quite(f"{what} is not written yet: your function returned {mine!r}; make it return "
                             f"{kind}.")
        if not isinstance(ref, Tensor):
            diff = _plain_difference(mine, ref, what, atol, rtol)
            if diff is not None:
                return not_quite(f"{diff}{where}.")
            continue
        if not isinstance(mine, Tensor):
            return not_quite(f"your function returned {_describe(mine)}; {what} should be {_describe(ref)}{where}.")
        if tuple(mine.shape) != tuple(ref.shape):
            shown = _inputs_at(case, arg_names, (), ())
            return not_quite(f"shape: yours is {tuple(mine.shape)}, {what} has shape {tuple(ref.shape)}{where}"
                             + (f" for {shown}." if shown and case_names is None else "."))
        if ref.is_floating_point() and not mine.is_floating_point():
            first = next((n for n, a in zip(arg_names, case) if isinstance(a, Tensor)), "x")
            return not_quite(f"type: yours is a {str(mine.dtype).removeprefix('torch.')} tensor, {what} is a "
                             f"{str(ref.dtype).removeprefix('torch.')} tensor{where}. Make it a float tensor "
                             f"(`torch.ones_like({first})` keeps {first}'s dtype; `.float()` converts): the result "
                             "takes part in float arithmetic such as `1 - m` and in gradients.")
        found = _difference_at(mine.detach().to(ref.dtype), ref.detach(), atol, rtol)
        if found is not None:
            index, flat, size = found
            yours = _number(float(mine.detach().reshape(-1)[flat]))
            expected = _number(float(ref.detach().reshape(-1)[flat]))
            if yours == expected:  # a difference below 4 digits: show enough digits to see it
                yours, expected = (f"{float(t.detach().reshape(-1)[flat]) + 0.0:.8g}" for t in (mine, ref))
            shown = _inputs_at(case, arg_names, tuple(ref.shape), index, elementwise)
            at = f"yours {yours}, expected {expected}" if ref.dim() == 0 else (
                f"largest difference {size:.3g} at index {index}: yours {yours}, expected {expected}")
            kind = (f" Yours is a {str(mine.dtype).removeprefix('torch.')} tensor, the library's "
                    f"{str(ref.dtype).removeprefix('torch.')}: a lower precision rounds the values."
                    if mine.dtype != ref.dtype else "")
            return not_quite(f"value: {at}{where}" + (f", for {shown}." if shown else ".") + kind
                             + _hint(student, cases, hints, atol, rtol))
        if grad_args:
            pending.append((k, case, where, mine, ref, mine_args, ref_args))
    # the gradients only once every case's values match, so that "the values are right" holds for all of them
    for k, case, where, mine, ref, mine_args, ref_args in pending:
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
            found = _difference_at(gm, gr, atol, rtol)
            if found is None:
                continue
            index, flat, size = found
            at = (f"at index {index} of {arg_names[i]} (where "
                  f"{_inputs_at(case, arg_names, tuple(gr.shape), index, elementwise)})")
            yours, expected = float(gm.reshape(-1)[flat]), float(gr.reshape(-1)[flat])
            if not torch.isfinite(torch.tensor(yours)) and torch.isfinite(torch.tensor(expected)):
                return not_quite(f"the values are right, but your gradient with respect to {arg_names[i]} is "
                                 f"{yours} {at}{where}, where the library's is finite ({expected:.4g}).")
            return not_quite(f"the values are right, but the gradient with respect to {arg_names[i]} "
                             f"differs{where}: largest difference {size:.3g} {at}: yours {_number(yours)}, "
                             f"expected {_number(expected)}.")
    inputs = f"{len(cases)} test input{'s' if len(cases) > 1 else ''}"
    if isinstance(ref, Tensor):
        checked = "shapes, values and gradients" if grad_args else "shapes, values"
    else:
        checked = "keys, values" if isinstance(ref, Mapping) else "values"
    return correct(f"{what} matches the library's on {inputs} ({checked}). {on_success}".strip())


# ---- notebook 01
def check_stochastic_mask(fn: Callable[[Tensor, Tensor], Any]) -> Check:
    """Check ``fn(g, r) -> m`` against ``method.masks.mask_from_sources``: m = g + (1 − g)·r, g and r
    (..., C) in [0, 1]; values and the gradient with respect to g and r on four small inputs (one with a
    dimension of size 1)."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        (torch.tensor([1.0, 0.9, 0.0, 0.0, 0.5]), torch.tensor([0.3, 0.0, 1.0, 0.2, 0.5])),
        (torch.rand(2, 3, 6, generator=gen), torch.rand(2, 3, 6, generator=gen)),
        (torch.rand(4, 8, generator=gen), torch.rand(4, 8, generator=gen)),
        (torch.rand(1, 5, generator=gen), torch.rand(1, 5, generator=gen)),  # a batch of one keeps its dimension
    ]
    return compare_functions(fn, mask_from_sources, cases, what="the stochastic mask", arg_names=("g", "r"),
                             grad_args=(0, 1),
                             on_success="A component with g = 1 is always kept; one with g = 0 is scaled by r.",
                             hints=[(lambda g, r: g * r, "This looks like g·r: then a component with g = 1 would "
                                     "still be scaled by r. What must m be when g = 1, whatever r is?"),
                                    (lambda g, r: torch.maximum(g, r), "This looks like the larger of g and r: "
                                     "the mask is g plus the share (1 − g)·r of what is left above g.")])


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
    mask (..., C); returns (..., d_out). Values and the gradients with respect to all four inputs, on four inputs
    (square non-symmetric factors; a batch of one with d_out = 1)."""
    gen = torch.Generator().manual_seed(1)
    cases = [
        # square but not symmetric V and U: V.T or U.T keep the shapes and change the values
        (torch.tensor([1.0, 2.0, -1.0]), torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]),
         torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [3.0, 0.0, 1.0]]), torch.tensor([1.0, 0.0, 0.5])),
        (torch.randn(2, 5, 4, generator=gen), torch.randn(4, 6, generator=gen), torch.randn(6, 3, generator=gen),
         torch.rand(2, 5, 6, generator=gen)),
        (torch.randn(7, 8, generator=gen), torch.randn(8, 5, generator=gen), torch.randn(5, 8, generator=gen),
         torch.rand(7, 5, generator=gen)),
        # a batch of one and one output: dimensions of size 1 stay
        (torch.randn(1, 4, generator=gen), torch.randn(4, 3, generator=gen), torch.randn(3, 1, generator=gen),
         torch.rand(1, 3, generator=gen)),
    ]
    return compare_functions(
        fn, _components_forward, cases, what="the components' output", arg_names=("x", "V", "U", "mask"),
        grad_args=(0, 1, 2, 3), elementwise=False,
        on_success="With every mask entry 1 this is x (V U), the summed components: the decomposed weight.",
        hints=[(lambda x, V, U, mask: (x @ V) @ U, "The mask is not used: a component with mask 0 must "
                "contribute nothing."),
               (lambda x, V, U, mask: x @ V @ U * mask.sum(-1, keepdim=True) / mask.shape[-1],
                "The mask must weigh each component separately, before the components are summed."),
               (lambda x, V, U, mask: ((x @ V) * mask) @ U.T, "This uses U transposed: U is (C, d_out), so "
                "row c of U is U_c and the components are summed by multiplying with U itself."),
               (lambda x, V, U, mask: ((x @ V.T) * mask) @ U, "This uses V transposed: V is (d_in, C), so "
                "column c of V is V_c and x @ V holds every component's activation V_c·x.")])


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

    z, grad_out (...) of one shape; alpha a float; returns (...). Values on four inputs (both signs of G on
    every piece and at the edges z = 0 and z = 1, three values of alpha, a dimension of size 1)."""
    gen = torch.Generator().manual_seed(2)
    z0 = torch.tensor([-2.0, -2.0, -0.5, -0.5, 0.0, 0.0, 0.3, 0.3, 1.0, 1.0, 1.5, 1.5])
    g0 = torch.tensor([-1.0, 1.0, -3.0, 2.0, 1.0, -1.0, 1.0, -1.0, -2.0, 2.0, -1.0, 1.0])
    cases = [
        (z0, g0, 0.1),
        (1.5 * torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen), 0.01),
        (1.5 * torch.randn(3, 2, 5, generator=gen), torch.randn(3, 2, 5, generator=gen), 0.3),
        (1.5 * torch.randn(1, 5, generator=gen), torch.randn(1, 5, generator=gen), 0.1),  # a dimension of size 1
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

    g (*positions, C) in [0, 1]; returns a scalar. Values and the gradient with respect to g, on four inputs
    (p above, below and at 1; the last has g = 0 with p < 1, where only the eps guard keeps the gradient
    finite)."""
    gen = torch.Generator().manual_seed(3)
    cases = [
        (torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 0.5]]), 2.0, 0.1),
        (0.05 + 0.95 * torch.rand(2, 4, 6, generator=gen), 0.4, 0.1),
        (0.05 + 0.95 * torch.rand(10, 3, generator=gen), 1.0, 0.5),
        # g = 0 with p < 1: without the eps guard the gradient of g^p is infinite there
        (torch.tensor([[0.0, 0.3, 1.0], [0.6, 0.0, 0.2]]), 0.5, 0.1),
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
                "Your loss is the right one divided by the number of components C: N counts token positions "
                "only (not positions times components), and the components are summed, not averaged.")])


def check_pgd_step(fn: Callable[[Tensor, Tensor, float], Any]) -> Check:
    """Check ``fn(s, grad, step_size) -> s_new`` against ``method.pgd.signed_ascent_step``, the step of fresh
    PGD: s_new = clamp(s + step_size * sign(grad), 0, 1). s, grad (..., C); returns (..., C). Values on three
    inputs (gradients of both signs, exactly 0 and as small as 1e-9; sources at and near the bounds, pushed out
    of [0, 1] and back into it; a dimension of size 1)."""
    gen = torch.Generator().manual_seed(4)
    cases = [
        # gradients of both signs, 0, tiny (1e-9: a full step all the same) and large; sources at the bounds
        # pushed outwards (they stay) and inwards (they step back inside)
        (torch.tensor([0.5, 0.5, 0.5, 0.95, 0.02, 0.0, 1.0, 0.5, 0.5, 0.5, 0.0, 1.0]),
         torch.tensor([3.0, -0.001, 0.0, 2.0, -5.0, -1.0, 1.0, 1e-9, -1e-9, 1e4, 1.0, -1.0]), 0.1),
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


# ---- notebook 03
def _uneven_text(stats: ComponentStats) -> ComponentStats:
    """``stats`` as if language k (k = 1, 2, ...) had been harvested with k times as many tokens (the firing
    counts unchanged): a test input on which firing *counts* and firing *rates* give different shares. Its
    ``tokens_per_lang`` lists the languages in reverse order, so that only an answer that looks each language's
    count up by its code (not by the dict's order) pairs it with the right row of the firing counts."""
    uneven = {lang: (k + 1) * max(int(stats.tokens_per_lang[lang]), 1) for k, lang in enumerate(stats.langs)}
    return dataclasses.replace(stats, tokens_per_lang=dict(reversed(uneven.items())))


def _languages_reordered(stats: ComponentStats) -> ComponentStats:
    """``stats`` with its languages in another order (``langs`` rotated by one; the firing counts' rows, the
    token counts and the contexts' language indices moved with them): the same statistics, so the same profile,
    but only for an answer that pairs rows with ``stats.langs`` instead of a language list of its own."""
    order = list(range(1, len(stats.langs))) + [0]
    langs = [stats.langs[i] for i in order]
    new_index = torch.tensor([langs.index(lang) for lang in stats.langs])  # old language index -> new one
    ctx_lang = {m: torch.where(t >= 0, new_index[t.clamp(min=0).long()].to(t.dtype), t)
                for m, t in stats.ctx_lang.items()}
    return dataclasses.replace(stats, langs=langs,
                               tokens_per_lang={lang: stats.tokens_per_lang[lang] for lang in langs},
                               fire_counts={m: t[order] for m, t in stats.fire_counts.items()}, ctx_lang=ctx_lang)


def check_language_profile(fn: Callable[[ComponentStats, tuple[str, int]], Any], stats: ComponentStats) -> Check:
    """Check ``fn(stats, cid) -> {lang: share}`` against the library's ``ComponentStats.language_profile``: the
    share of the component's firing *rate* per language, r_l / Σ_l' r_l' with r_l = fires on l / tokens of l
    (sums to 1; every share 0 for a component that never fires).

    Test inputs from ``stats`` (the notebook's statistics): the most German-specific component, the most
    frequent one, one that never fires (when every component fires, the most frequent one with its firing counts
    set to 0), the most frequent one again with uneven amounts of text per language (:func:`_uneven_text`),
    where shares of firing counts are not shares of rates, and the German one with the languages in another order
    (:func:`_languages_reordered`)."""
    live = live_components(stats)
    if not live:
        raise ValueError("the statistics have no live component to test on")
    german = language_specificity(stats, "de")[0][0] if "de" in stats.langs else live[0]
    frequent = max(live, key=lambda cid: (stats.n_fires(cid), cid))
    cases, names = [(stats, german), (stats, frequent)], [f"{german[0]}:{german[1]}", f"{frequent[0]}:{frequent[1]}"]
    dead = next((cid for cid in stats.component_ids() if stats.n_fires(cid) == 0), None)
    if dead is not None:
        cases.append((stats, dead))
        names.append(f"{dead[0]}:{dead[1]}, which never fires")
    else:  # every component fires: the same statistics with the frequent one's firings removed
        counts = {m: t.clone() for m, t in stats.fire_counts.items()}
        counts[frequent[0]][:, frequent[1]] = 0
        cases.append((dataclasses.replace(stats, fire_counts=counts), frequent))
        names.append(f"{frequent[0]}:{frequent[1]} with its firings removed, so it never fires")
    cases.append((_uneven_text(stats), frequent))
    names.append(f"{frequent[0]}:{frequent[1]} with 1, 2, 3 ... times as much text per language "
                 f"({', '.join(stats.langs)}; `tokens_per_lang` lists them in reverse order)")
    if len(stats.langs) > 1:
        reordered = _languages_reordered(stats)
        cases.append((reordered, german))
        names.append(f"{german[0]}:{german[1]} with the languages in another order (stats.langs = {reordered.langs})")
    return compare_functions(fn, ComponentStats.language_profile, cases, what="the language profile",
                             arg_names=("stats", "cid"), case_names=names,
                             on_success="Rates, not counts: a language with more harvested text does not look "
                                        "more important.")


#: Language profiles that reach every rule of ``vpd_lite.interpret.labels.categorize`` (no ties), each threshold at
#: its boundary (the text says >= and <=) and just inside it (so that a neighbouring threshold, 2/3 for 70 % or 15 %
#: for 10 %, gives another category), the order of the rules, mixed languages listed out of order, profiles whose
#: largest share is not their first key, a single share of 0, and seven languages none of which reaches 20 %.
CATEGORY_PROFILES: tuple[dict[str, float], ...] = (
    {"de": 0.80, "fr": 0.08, "en": 0.06, "es": 0.04, "it": 0.02},  # one language >= 70 %
    {"fr": 0.70, "de": 0.12, "en": 0.10, "es": 0.05, "it": 0.03},  # exactly 70 %: still one language
    {"en": 0.05, "de": 0.30, "fr": 0.25, "es": 0.22, "it": 0.18},  # English <= 10 %, three others >= 15 %
    {"en": 0.10, "de": 0.45, "fr": 0.25, "es": 0.15, "it": 0.05},  # English exactly 10 %, exactly three at 15 %+
    {"en": 0.10, "de": 0.27, "fr": 0.24, "es": 0.21, "it": 0.18},  # foreign and all languages: the earlier wins
    {"en": 0.24, "de": 0.22, "fr": 0.20, "es": 0.18, "it": 0.16},  # everyone >= half a fair share
    {"en": 0.30, "de": 0.25, "fr": 0.20, "es": 0.15, "it": 0.10},  # the smallest exactly half a fair share
    {"de": 0.62, "fr": 0.14, "en": 0.12, "es": 0.07, "it": 0.05},  # one leads, no second at 20 %
    {"de": 0.55, "fr": 0.25, "en": 0.10, "es": 0.06, "it": 0.04},  # two at >= 20 %: mixed, by share
    {"de": 0.60, "fr": 0.20, "en": 0.12, "es": 0.05, "it": 0.03},  # the second exactly 20 %: mixed
    {"en": 0.45, "it": 0.30, "es": 0.21, "de": 0.03, "fr": 0.01},  # three named, largest first
    {"en": 0.25, "de": 0.21, "fr": 0.40, "es": 0.10, "it": 0.04},  # named out of order: French first
    {"en": 0.32, "de": 0.30, "fr": 0.26, "es": 0.12},  # four languages: half a fair share is 12.5 %
    {"en": 0.0, "de": 0.0, "fr": 0.0, "es": 0.0, "it": 0.0},  # never fires
    {"de": 0.69, "fr": 0.14, "en": 0.10, "es": 0.04, "it": 0.03},  # just under 70 %: not one language
    {"en": 0.11, "de": 0.40, "fr": 0.18, "es": 0.16, "it": 0.15},  # English just over 10 %: not foreign languages
    {"en": 0.05, "de": 0.45, "fr": 0.25, "es": 0.14, "it": 0.11},  # the third other just under 15 %: not foreign
    {"de": 0.58, "fr": 0.19, "en": 0.12, "es": 0.07, "it": 0.04},  # the second just under 20 %: not mixed
    {"en": 0.31, "de": 0.25, "fr": 0.20, "es": 0.15, "it": 0.09},  # the smallest just under half a fair share
    # in the statistics' order (English first), as real profiles come: the largest share is not the first key
    {"en": 0.10, "de": 0.75, "fr": 0.08, "es": 0.05, "it": 0.02},  # German
    {"en": 0.12, "de": 0.62, "fr": 0.14, "es": 0.07, "it": 0.05},  # mostly German
    {"en": 0.27, "de": 0.26, "fr": 0.24, "es": 0.23, "it": 0.0},  # one share 0: not all languages, mixed
    # seven languages: none at 20 %, so "at most one" second language holds with none at all (mostly German)
    {"de": 0.195, "fr": 0.19, "en": 0.185, "es": 0.18, "it": 0.175, "nl": 0.065, "pl": 0.01},
)


def check_categorize(fn: Callable[[dict[str, float]], Any]) -> Check:
    """Check ``fn(profile) -> category`` against the library's ``vpd_lite.interpret.labels.categorize`` (default
    thresholds, ``LabelConfig``) on :data:`CATEGORY_PROFILES`, one or more per rule; the categories must match
    exactly ("German", "foreign languages", "all languages", "mostly German", "mixed (German, French)",
    "never fires")."""
    names = [", ".join(f"{lang} {share:.0%}" for lang, share in p.items()) for p in CATEGORY_PROFILES]
    return compare_functions(fn, categorize, [(dict(p),) for p in CATEGORY_PROFILES], what="the category",
                             arg_names=("profile",), case_names=[f"the profile {n}" for n in names],
                             on_success="The order of the rules matters: the first one that applies wins.")


# ---- notebook 04
def edited_weight(W: Tensor, u: Tensor, v: Tensor, s: float) -> Tensor:
    """The weight (d_out, d_in) of the matrix ``W`` (d_out, d_in) under the library's scalar edit of the component
    ``u`` (d_out,) ``v`` (d_in,) at prefactor ``s``, read off the edit itself: the library never forms the
    matrix, it adds ``(s − 1)(V_c·x) U_c`` to the layer's output with ``vpd_lite.erase.edits.row_scaled_edit_hook``;
    fed the d_in unit vectors, the edited layer outputs the columns of W' = W + (s − 1) U_c V_cᵀ."""
    x = torch.eye(W.shape[1], dtype=W.dtype)  # (d_in, d_in): row j is the unit vector e_j
    hook = row_scaled_edit_hook(v, u, torch.tensor([float(s) - 1.0], dtype=W.dtype))
    return hook(None, (x,), x @ W.T).T  # (d_in, d_out) outputs -> (d_out, d_in)


def check_scalar_edit(fn: Callable[[Tensor, Tensor, Tensor, float], Any]) -> Check:
    """Check ``fn(W, u, v, s) -> W'`` (W (d_out, d_in), u (d_out,), v (d_in,), s a number) against the library's
    edit (:func:`edited_weight`): W' = W + (s − 1) u vᵀ; values and the gradient with respect to W, u and v on
    four inputs (s = −2: a flipped, amplified component; s = 0: removed; s = 1: the original model; s = 0.5 on a
    matrix of one row, whose dimension of size 1 stays)."""
    gen = torch.Generator().manual_seed(0)

    def case(d_out: int, d_in: int, s: float) -> tuple[Tensor, Tensor, Tensor, float]:
        return (torch.randn(d_out, d_in, generator=gen), torch.randn(d_out, generator=gen),
                torch.randn(d_in, generator=gen), s)

    cases = [case(3, 4, -2.0), case(5, 2, 0.0), case(4, 6, 1.0), case(1, 3, 0.5)]
    return compare_functions(fn, edited_weight, cases, what="the edited weight", arg_names=("W", "u", "v", "s"),
                             grad_args=(0, 1, 2),
                             case_names=["s = −2", "s = 0", "s = 1", "s = 0.5 and a matrix of one row, W (1, 3)"],
                             on_success="s = 1 leaves W alone, s = 0 removes the component, s < 0 flips it. The "
                                        "library never forms W': it adds (s − 1)(V_c·x)U_c to the layer's output.")


def scan_column(model: torch.nn.Module, direction: Direction, s: float, blocks: Mapping[str, Tensor]) -> dict[str, float]:
    """One column of the edit scan: {lang: ΔCE} (nats/token), the next-token CE of each language's ``blocks``
    ({lang: (N, T) token ids}) under the scalar edit of ``direction`` at ``s`` minus the unedited model's (s = 1),
    as ``vpd_lite.erase.edit_scan.scan_curves`` computes it."""
    curves = scan_curves(model, [direction], blocks, [float(s)])
    row = curves[curves["s"] == float(s)].iloc[0]
    return {lang: float(row[f"d_{lang}"]) for lang in blocks}


def _restoring(fn: Callable[..., Any], module: torch.nn.Module) -> Callable[..., Any]:
    """``fn`` wrapped so that whatever it does to ``module`` is undone afterwards, even when it raises: hooks it
    left attached are removed and its weight is restored (later cells must see the unedited model)."""

    def wrapped(*args: Any) -> Any:
        hooks = set(module._forward_hooks)
        weight = {name: p.detach().clone() for name, p in module.named_parameters()}
        try:
            return fn(*args)
        finally:
            left = set(module._forward_hooks) - hooks
            for key in left:
                del module._forward_hooks[key]
            # an edit added and subtracted again leaves float rounding (about 1e-6 of the weight's largest
            # entry); an edit left on changes it by about the component's size, orders of magnitude more
            changed = [name for name, p in module.named_parameters()
                       if not torch.allclose(p.detach(), weight[name], rtol=0.0,
                                             atol=1e-4 * float(weight[name].abs().max()))]
            with torch.no_grad():
                for name, p in module.named_parameters():
                    p.copy_(weight[name])
            if left or changed:
                wrapped.leaked.append("a hook" if left else "a changed weight")

    wrapped.__wrapped__ = fn  # the stub is still recognised as not written yet
    wrapped.leaked = []  # what a call left on the module (removed again), for the check's message
    return wrapped


def check_scan_column(fn: Callable[..., Any], model: torch.nn.Module, direction: Direction,
                      blocks: Mapping[str, Tensor], s_values: Sequence[float] = (-4.0, 0.0)) -> Check:
    """Check ``fn(model, direction, s, blocks) -> {lang: ΔCE}`` against the library's edit scan
    (:func:`scan_column`, i.e. ``scan_curves``): ΔCE = CE at s − CE at s = 1 per language, nats/token, on the
    notebook's own ``model``, ``direction`` and ``blocks`` at every s of ``s_values``, and at the first s with
    another direction of the same matrix (``direction`` with its write vector u negated) and on other text (two
    languages' blocks, in the other order, read backwards), so that an answer must edit the direction and
    measure the blocks it is given. Whatever the student's function leaves attached to the edited matrix, or
    changed in its weight beyond float rounding, is removed afterwards (:func:`_restoring`)."""
    module = dict(model.named_modules())[direction.module]
    student = _restoring(fn, module)
    other = dataclasses.replace(direction, u=-direction.u)
    two = dict(reversed([(lang, b.flip(-1)) for lang, b in blocks.items()][:2]))  # other text, other languages
    cases = [(model, direction, float(s), blocks) for s in s_values] + [(model, other, float(s_values[0]), blocks),
                                                                        (model, direction, float(s_values[0]), two)]
    check = compare_functions(student, scan_column, cases, what="the edit-scan column",
                              arg_names=("model", "direction", "s", "blocks"), atol=1e-4, rtol=1e-4,
                              case_names=[f"s = {float(s):g}" for s in s_values]
                              + [f"s = {float(s_values[0]):g} with another direction of {direction.module} (this "
                                 "component's u negated)",
                                 f"s = {float(s_values[0]):g} on other text: the blocks of {list(two)} only, each "
                                 "read backwards"],
                              on_success="Each point of a dose-response curve is one such column: the same edit "
                                         "measured on every language's text.")
    if student.leaked and check:
        return not_quite(f"the values are right, but your function left the edit on the model ({student.leaked[0]} "
                         f"on {direction.module}; removed again here). Measure the edited model inside "
                         "`with ScalarEdit(model, [direction], init=s):`, which removes the edit when the block ends, "
                         "so that later cells see the model as trained.")
    return check


# ---- notebook 05
def _remainder_mask(u: Tensor, stream: str) -> Tensor:
    """The library's ``method.masks.remainder_mask`` with the stream named: u (*positions) on a ``"capability"``
    batch, ones on a ``"rest"`` batch."""
    return remainder_mask(u, remainder_on=stream == "rest")


def check_remainder_mask(fn: Callable[[Tensor, str], Any]) -> Check:
    """Check ``fn(u, stream) -> m`` against ``method.masks.remainder_mask``, the mask of the remainder
    W − Σ_c U_c V_cᵀ (the delta component) in a targeted decomposition: u itself on the capability's batches
    (``stream == "capability"``: masked like a component with no causal importance), ones on the rest's
    (``stream == "rest"``: pinned on). u (*positions) in [0, 1); returns (*positions). Shapes and values on four
    inputs (both streams, two shapes each; no gradient: u is a random draw, not a trained tensor)."""
    gen = torch.Generator().manual_seed(5)
    u1, u2 = torch.tensor([0.0, 0.25, 0.5, 0.9]), torch.rand(2, 6, generator=gen)
    # the stream names built at run time, as a caller's variable may hold them: `stream is "rest"` is not `==`
    capability, rest = "".join(["capa", "bility"]), "".join(["re", "st"])
    cases = [(u1, capability), (u1, rest), (u2, capability), (torch.rand(3, 1, 5, generator=gen), rest)]
    names = [f"{stream} batch, u of shape {tuple(u.shape)}: u = {[round(x, 2) for x in u.reshape(-1)[:4].tolist()]}"
             f"{' ...' if u.numel() > 4 else ''}" for u, stream in cases]
    return compare_functions(
        fn, _remainder_mask, cases, what="the remainder's mask", arg_names=("u", "stream"),
        case_names=names,
        on_success="On the capability's batches (German here) the remainder may be switched off, so the components alone "
                   "must carry it; on the rest it is always there, so whatever only the other data uses can stay in it.",
        hints=[(lambda u, stream: torch.ones_like(u), "On the capability's batches your mask is 1: there the "
                "remainder must be masked like a component, so that the components alone have to carry the capability."),
               (lambda u, stream: u, "On the rest's batches your mask is u: there the remainder is pinned on."),
               (lambda u, stream: u if stream == "capability" else torch.zeros_like(u), "On the rest's batches the "
                "remainder is switched off here; it must be switched on (mask 1)."),
               (lambda u, stream: 1 - u if stream == "capability" else torch.ones_like(u), "On the capability's "
                "batches the mask is g + (1 − g)·u with g = 0 (the remainder has no causal importance).")])
