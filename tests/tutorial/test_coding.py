"""Tests of vpd_lite.tutorial.coding: every coding exercise's check accepts the library's own function and the
solution printed in the notebook, and answers a typical mistake, the unwritten stub and a crash with a message
that says what differs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch

from vpd_lite.method.masks import mask_from_sources
from vpd_lite.method.pgd import signed_ascent_step
from vpd_lite.tutorial import coding

ROOT = Path(__file__).resolve().parents[2]


def solution(notebook: str, name: str):
    """The function ``name`` defined by the ```python block of a Solution cell of ``notebook`` (exec'd with
    ``torch`` in scope, as in the notebook)."""
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "<summary>Solution</summary>" in cell.source:
            for block in re.findall(r"```python\n(.*?)```", cell.source, flags=re.S):
                if f"def {name}(" in block:
                    namespace: dict = {"torch": torch}
                    exec(block, namespace)
                    return namespace[name]
    raise AssertionError(f"no Solution block of {notebook} defines {name}")


def stub(*args):
    ...


def crash(*args):
    raise RuntimeError("boom")


# (check, notebook, solution name, library function or None, [(typical wrong answer, words its message holds)])
EXERCISES = [
    (coding.check_stochastic_mask, "01_decompose.ipynb", "stochastic_mask", mask_from_sources,
     [(lambda g, r: g * r, ["value", "g·r"]),
      (lambda g, r: (g + (1 - g) * r).detach(), ["no gradient flows", ".detach()"])]),
    (coding.check_components_output, "01_decompose.ipynb", "components_output", None,
     [(lambda x, V, U, m: (x @ V) @ U, ["value", "mask is not used"]),
      (lambda x, V, U, m: ((x @ V) * m) @ U[:, :1], ["shape"]),
      (lambda x, V, U, m: ((x @ V).detach() * m) @ U, ["gradient with respect to x"])]),
    (coding.check_leaky_gradient, "01_decompose.ipynb", "leaky_gradient", None,
     [(lambda z, G, a: G * ((z >= 0) & (z <= 1)), ["value", "plain clamp", "leak"]),
      (lambda z, G, a: torch.where(z < 0, a * G, G * (z <= 1)), ["value", "one-sided"]),
      (lambda z, G, a: torch.where(z < 0, a * G * (G > 0), G * (z <= 1)), ["value", "wrong sign"])]),
    (coding.check_importance_minimality, "02_inspect.ipynb", "importance_minimality", None,
     [(lambda g, p, b: ((g + 1e-12) ** p).reshape(-1, g.shape[-1]).mean(0).sum(), ["value", "frequency term"]),
      (lambda g, p, b: (lambda q, n: (q / n + b * (q / n) * torch.log(1 + q)).sum())(
          (g ** p).reshape(-1, g.shape[-1]).sum(0), g[..., 0].numel()), ["value", "log2"]),
      (lambda g, p, b: (lambda q, n: (q / n + b * (q / n) * torch.log2(1 + q)).sum())(
          (g ** p).reshape(-1, g.shape[-1]).sum(0), g.numel()), ["value", "token positions"])]),
    (coding.check_pgd_step, "02_inspect.ipynb", "pgd_step", signed_ascent_step,
     [(lambda s, g, a: (s - a * g.sign()).clamp(0, 1), ["value", "downhill"]),
      (lambda s, g, a: s + a * g.sign(), ["value", "[0, 1]"]),
      (lambda s, g, a: (s + a * g).clamp(0, 1), ["value", "direction"])]),
]
IDS = [e[2] for e in EXERCISES]


@pytest.mark.parametrize("check, notebook, name, library, wrong", EXERCISES, ids=IDS)
def test_the_notebooks_solution_passes(check, notebook, name, library, wrong):
    result = check(solution(notebook, name))
    assert result and str(result).startswith("Correct:"), str(result)


@pytest.mark.parametrize("check, notebook, name, library, wrong", [e for e in EXERCISES if e[3] is not None],
                         ids=[e[2] for e in EXERCISES if e[3] is not None])
def test_the_library_function_itself_passes(check, notebook, name, library, wrong):
    assert check(library), str(check(library))


@pytest.mark.parametrize("check, notebook, name, library, wrong", EXERCISES, ids=IDS)
def test_typical_mistakes_get_a_message_that_names_them(check, notebook, name, library, wrong):
    for fn, words in wrong:
        result = check(fn)
        assert not result and str(result).startswith("Not quite:"), str(result)
        for word in words:
            assert word in str(result), (word, str(result))


@pytest.mark.parametrize("check, notebook, name, library, wrong", EXERCISES, ids=IDS)
def test_the_stub_and_a_crash_are_reported_not_raised(check, notebook, name, library, wrong):
    result = check(stub)
    assert not result and "not written yet" in str(result) and "None" in str(result)
    result = check(crash)
    assert not result and "raised RuntimeError: boom" in str(result)


@pytest.mark.parametrize("notebook, names", [
    ("01_decompose.ipynb", ["components_output", "stochastic_mask", "leaky_gradient"]),
    ("02_inspect.ipynb", ["importance_minimality", "pgd_step"]),
])
def test_each_exercise_cell_is_a_stub_then_its_check(notebook, names):
    """The cell the student edits defines the function with a body of ``...`` and ends with the check, so the
    notebook runs top to bottom with the stub; the Solution follows it."""
    cells = nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells
    for name in names:
        (i,) = [k for k, c in enumerate(cells) if c.cell_type == "code" and f"def {name}(" in c.source]
        src = cells[i].source
        assert re.search(r"\n    \.\.\.  # your code\n", src), src
        assert src.rstrip().splitlines()[-1] == f"coding.check_{name}({name})"
        assert "<summary>Solution</summary>" in cells[i + 1].source and f"def {name}(" in cells[i + 1].source
        later = "".join(c.source for c in cells[i + 2:] if c.cell_type == "code")
        assert f"{name}(" not in later  # later cells use the library's functions, never the student's


def test_references_are_the_librarys_code():
    """The reference of the layer check is LinearComponents' own forward (values and gradients reach V and U)."""
    V = torch.randn(4, 3, requires_grad=True)
    U = torch.randn(3, 2, requires_grad=True)
    y = coding._components_forward(torch.randn(5, 4), V, U, torch.rand(5, 3))
    y.sum().backward()
    assert y.shape == (5, 2) and V.grad is not None and U.grad is not None


def test_values_are_compared_on_every_input_before_any_gradient():
    """An answer right on the first input but wrong on a later one is told about the values, not the gradient:
    the ReLU below agrees with the library on input 1 (no negative activation reaches the output there) and its
    gradient differs there, but its values differ on input 2."""
    check = coding.check_components_output(lambda x, V, U, mask: (torch.relu(x @ V) * mask) @ U)
    assert not check.correct and "value:" in check.message and "test input 2 of 4" in check.message, check.message
    assert "gradient" not in check.message
