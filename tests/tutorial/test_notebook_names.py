"""Every piece of vpd_lite code a notebook's text names exists: ``vpd_lite.x.y`` dotted names, names qualified by
a module the notebook imports (``statistics.language_specificity``, ``labelling.categorize``), source paths
(``vpd_lite/method/masks.py``), and no name qualified by a module that is neither imported nor in vpd_lite
(``analysis.ablation_effect``). Read from the markdown cells and the comments of the code cells."""

from __future__ import annotations

import ast
import builtins
import importlib
import pkgutil
import re
from pathlib import Path

import nbformat
import pytest

import vpd_lite

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Heads of ``head.name`` that are not vpd_lite code: other libraries and Python objects the text talks about.
OTHER_LIBRARIES = {"torch", "np", "numpy", "plt", "matplotlib", "plotly", "go", "nn", "F", "math", "json", "pd",
                   "pandas", "transformers", "IPython", "os", "sys", "Path", "pathlib", "random", "dataclasses",
                   "ipywidgets", "widgets", "nbformat", "pytest", "python", "pip", "git", "google", "e", "i", "x"}


def _vpd_modules() -> dict[str, str]:
    """{leaf name: dotted module} for every vpd_lite module ("statistics" -> "vpd_lite.interpret.statistics")."""
    out = {}
    for info in pkgutil.walk_packages(vpd_lite.__path__, "vpd_lite."):
        out.setdefault(info.name.rsplit(".", 1)[1], info.name)
    return out


def _code_of(cell) -> str:
    """A code cell's source with IPython magics and shell lines blanked, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())


def _bindings(nb) -> tuple[dict[str, str], set[str]]:
    """({name: dotted module} for every vpd_lite module the notebook's code imports, every other name it binds)."""
    aliases, names = {}, set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_code_of(cell))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if node.module.startswith("vpd_lite"):  # a module or a name in one: both resolve
                        aliases[a.asname or a.name] = full
                    else:
                        names.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("vpd_lite"):
                        aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "vpd_lite"
                    names.add(a.asname or a.name.split(".")[0])
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
                names.update(arg.arg for arg in getattr(node, "args", ast.arguments([], [], None, [], [], None, []))
                             .args)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return aliases, names


def _texts(nb) -> list[tuple[int, str]]:
    """(cell index, text) for every markdown cell and every comment of a code cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            out.append((i, cell.source))
        elif cell.cell_type == "code":
            out += [(i, line.split("#", 1)[1]) for line in cell.source.splitlines() if "#" in line]
    return out


def _resolves(dotted: str) -> bool:
    """True when ``dotted`` ("vpd_lite.interpret.statistics.language_specificity") is a module, or an attribute
    (chain) of the longest importable module prefix."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


QUALIFIED = re.compile(r"(?<![\w./])([A-Za-z_]\w*)\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
PATH = re.compile(r"vpd_lite/[\w/]+\.py")
FULL = re.compile(r"(?<![\w./-])vpd_lite(?:\.[A-Za-z_]\w*)+")


def unresolved_names(nb) -> list[str]:
    """Every name in the notebook's text that refers to vpd_lite code and does not resolve, with its cell."""
    aliases, names = _bindings(nb)
    modules = _vpd_modules()
    problems = []
    for i, text in _texts(nb):
        for path in PATH.findall(text):
            if not (ROOT / path).exists():
                problems.append(f"cell {i}: {path} does not exist")
        spans = re.findall(r"`([^`\n]+)`", text) if nb.cells[i].cell_type == "markdown" else [text]
        if nb.cells[i].cell_type == "markdown":  # dotted vpd_lite names in the prose too
            spans += FULL.findall(re.sub(r"`[^`\n]+`", " ", text))
        for span in spans:
            for head, rest in QUALIFIED.findall(span):
                name = f"{head}.{rest}"
                if head == "vpd_lite":
                    dotted = name
                elif head in aliases:
                    dotted = f"{aliases[head]}.{rest}"
                elif head in names or head in OTHER_LIBRARIES or hasattr(builtins, head):
                    continue  # a variable of the notebook (stats.language_profile) or another library
                elif head in modules:
                    problems.append(f"cell {i}: `{name}`: the notebook does not import {modules[head]}")
                    continue
                elif rest.split(".")[-1] in ("py", "ipynb", "md", "json", "csv", "png", "txt", "svg", "html"):
                    continue  # a file name
                else:
                    problems.append(f"cell {i}: `{name}`: there is no module or variable {head!r}")
                    continue
                if not _resolves(dotted):
                    problems.append(f"cell {i}: `{name}` ({dotted}) does not exist")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_vpd_lite_name_in_the_text_resolves(path):
    assert unresolved_names(nbformat.read(path, as_version=4)) == []


def test_the_scanner_finds_a_name_that_does_not_exist():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from vpd_lite.interpret import statistics\nstats = None"),
        nbformat.v4.new_markdown_cell("`analysis.ablation_effect`, `statistics.no_such_function`, "
                                      "`vpd_lite.method.masks.nothing`, `vpd_lite/nowhere.py`; fine: "
                                      "`statistics.language_specificity`, `stats.language_profile(cid)`, "
                                      "`vpd_lite.method.masks.remainder_mask`, `vpd_lite/method/masks.py`"),
        nbformat.v4.new_code_cell("x = 1  # see ablation.ablation_effect and vpd_lite.erase.edits.ScalarEdit"),
        nbformat.v4.new_markdown_cell("In prose: vpd_lite.erase.edits.NoSuchEdit does it."),
    ])
    problems = unresolved_names(nb)
    assert len(problems) == 6, problems
    for bad in ("analysis.ablation_effect", "statistics.no_such_function", "masks.nothing", "nowhere.py",
                "ablation.ablation_effect", "NoSuchEdit"):
        assert any(bad in p for p in problems), (bad, problems)


def _section_numbers(nb) -> set[int]:
    """The numbers of a notebook's numbered sections (headings "## 3 · ...")."""
    return {int(m.group(1)) for cell in nb.cells if cell.cell_type == "markdown"
            for m in re.finditer(r"^#+ (\d+) ·", cell.source, flags=re.M)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_section_named_in_a_notebooks_text_exists(path):
    """"Section 6" in a notebook's markdown or in what its mode banner says (both modes) is a heading of that
    notebook; a range ("sections 2 to 4") names its two ends."""
    from vpd_lite.tutorial.notebook import mode_text

    nb = nbformat.read(path, as_version=4)
    texts = [cell.source for cell in nb.cells if cell.cell_type == "markdown"]
    texts += [mode_text(True, path.stem), mode_text(False, path.stem)]
    named = {int(n) for text in texts
             for m in re.finditer(r"\bsections? (\d+)(?: to (\d+))?", text, flags=re.I) for n in m.groups() if n}
    assert named <= _section_numbers(nb), (sorted(named - _section_numbers(nb)), sorted(_section_numbers(nb)))
