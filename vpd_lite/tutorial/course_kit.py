"""The teacher's kit: a student copy of the notebooks and a reset of one exercise or one notebook, without git.

The notebooks mark an exercise by the cells around it: the student writes in a code cell whose stub carries a
``# your code`` / ``# your prediction`` / ``# your answer`` / ``# your guess`` comment, and a markdown cell that
opens with ``<details><summary>Solution</summary>`` closes the exercise. Exercise ``n`` of a notebook is the
``n``-th solution cell and the stub cells between it and the previous one; its title is the last exercise heading
(``### Exercise 1 · ...`` or ``**Coding exercise 2 · ...**``) in that stretch.

- :func:`student_notebook` drops the solution cells, clears every output and marks the copy as a student copy;
  :func:`write_student_copy` writes all notebooks that way into an empty folder.
- :func:`reset_notebook` restores a student's notebook from the course's own copy (:func:`course_notebooks_dir`):
  the whole notebook, or only the stub cells of one exercise (matched by cell id, every other cell kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from vpd_lite.errors import UserError
from vpd_lite.models.paths import REPO_ROOT, REPO_URL, new_or_empty_folder

#: Where ``pip install .`` puts the copy of ``notebooks/`` (see ``setup.py``).
PACKAGED_NOTEBOOKS = Path(__file__).resolve().parents[1] / "_notebooks"

SOLUTION_MARK = "<details><summary>Solution</summary>"
STUB_MARK = re.compile(r"#\s*your (code|prediction|answer|guess)\b")
TITLE = re.compile(r"(?:^#+[ \t]*|\*\*)((?:Coding e|E)xercise\b[^*\n]*)", re.M)
#: The top cell's sentence about the folded solutions, which a student copy does not have.
SOLUTIONS_SENTENCE = re.compile(r'Solutions are folded\s+under\s+"Solution"\.')
#: Set in a student copy's notebook metadata, so that a whole-notebook reset gives the student form back.
STUDENT_KEY = "vpd_lite"


def course_notebooks_dir() -> Path:
    """The course's own notebooks: the clone's ``notebooks/`` (``pip install -e .``) or the copy in the installed
    package (``pip install .``)."""
    clone = REPO_ROOT / "notebooks"
    if (REPO_ROOT / "pyproject.toml").is_file() and clone.is_dir():
        return clone
    if PACKAGED_NOTEBOOKS.is_dir():
        return PACKAGED_NOTEBOOKS
    raise UserError(f"cannot find the course's notebooks (neither {clone} nor {PACKAGED_NOTEBOOKS} exists); "
                    f"reinstall the package with `pip install .` from a clone of {REPO_URL}")


def course_notebooks() -> list[Path]:
    """The course's notebooks (``00_...ipynb`` to ``05_...ipynb``), in order."""
    return sorted(course_notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def is_solution(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(SOLUTION_MARK)


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook: its number there (1, 2, ...), title, the ids of the cells the student writes
    in and the id of its solution cell."""

    number: int
    title: str
    stub_ids: tuple[str, ...]
    solution_id: str


def exercises(nb) -> list[Exercise]:
    """The exercises of a shipped notebook, in order (see the module docstring for how they are found)."""
    found, start = [], 0
    for i, cell in enumerate(nb.cells):
        if not is_solution(cell):
            continue
        span = nb.cells[start:i]
        stubs = tuple(c.id for c in span if c.cell_type == "code" and STUB_MARK.search(c.source))
        titles = [m.group(1).strip().rstrip(".").strip() for c in span if c.cell_type == "markdown"
                  for m in TITLE.finditer(c.source)]
        n = len(found) + 1
        found.append(Exercise(n, titles[-1] if titles else f"Exercise {n}", stubs, cell.id))
        start = i + 1
    return found


def find_exercise(nb, name: str, notebook: str) -> Exercise:
    """The exercise ``name`` names: its number in the notebook (``3``), or words its title starts with
    (``"coding exercise 2"``) or, failing that, contains (``"stochastic mask"``), in any case."""
    listed = exercises(nb)
    key = " ".join(name.lower().split())
    if key.isdigit():
        hits = [e for e in listed if e.number == int(key)]
    else:
        hits = [e for e in listed if e.title.lower().startswith(key)] or [e for e in listed if key in e.title.lower()]
    if len(hits) != 1:
        menu = "; ".join(f"{e.number}: {e.title}" for e in listed)
        why = "names no exercise" if not hits else "names more than one exercise"
        raise UserError(f"--exercise {name!r} {why} of {notebook}, which has {menu}")
    return hits[0]


def student_notebook(nb):
    """A student copy of a shipped notebook: no solution cells, no outputs or execution counts, the top cell's
    sentence about folded solutions replaced, links to the repository's files (``../README.md#glossary``)
    pointed at the repository online, and ``metadata.vpd_lite.copy = "student"``."""
    nb = nbformat.from_dict(nb)  # a deep copy
    nb.cells = [c for c in nb.cells if not is_solution(c)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        else:
            cell.source = SOLUTIONS_SENTENCE.sub("This copy has no solutions: ask your teacher.", cell.source)
            cell.source = cell.source.replace("](../", f"]({REPO_URL}/blob/main/")
    nb.metadata[STUDENT_KEY] = {"copy": "student"}
    return nb


def write_student_copy(folder: str | Path) -> list[Path]:
    """Write every notebook's student copy into ``folder`` (created if missing; refused unless empty)."""
    folder = new_or_empty_folder(folder)
    sources = course_notebooks()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        copy = student_notebook(nbformat.read(source, as_version=4))
        nbformat.validate(copy)
        nbformat.write(copy, folder / source.name)
        written.append(folder / source.name)
    return written


def _shipped(path: Path) -> Path:
    names = [p.name for p in course_notebooks()]
    if path.name not in names:
        raise UserError(f"{path.name} is not one of the course's notebooks ({', '.join(names)})")
    return course_notebooks_dir() / path.name


def notebook_exercises(path: str | Path) -> list[Exercise]:
    """The exercises of the course notebook named like ``path`` (``lab/01_decompose.ipynb``: notebook 01)."""
    return exercises(nbformat.read(_shipped(Path(path)), as_version=4))


def reset_notebook(path: str | Path, exercise: str | None = None) -> str:
    """Restore ``path`` (a student's copy of a course notebook, found by its file name) from the course's own
    copy: the whole notebook, or with ``exercise`` only that exercise's stub cells, keeping every other cell.
    A whole reset writes the student copy (no solutions) unless ``path`` holds the full course notebook; a file
    that is not a readable notebook gets the student copy. Writes nothing but ``path``; returns one line saying
    what it did. Raises ``UserError`` for the course's own copy, a folder, or an exercise reset of a file that is
    missing or unreadable."""
    path = Path(path)
    source = _shipped(path)
    if path.exists() and path.resolve() == source.resolve():
        raise UserError(f"{path} is the course's own copy, which reset restores from; reset a student copy "
                        "(python -m vpd_lite.course student-copy DIR) or, in a clone, use git to restore this file")
    shipped = nbformat.read(source, as_version=4)
    if exercise is None:
        if path.exists() and not path.is_file():
            raise UserError(f"{path} is not a notebook file")
        if not path.parent.is_dir():
            raise UserError(f"{path.parent} is not a folder")
        try:
            student, was = not path.exists() or _is_student_copy(path), ""
        except UserError:  # broken beyond reading: what it was cannot be told, so no solution is written into it
            student, was = True, " (it was not a readable notebook)"
        nbformat.write(student_notebook(shipped) if student else shipped, path)
        return (f"{path}: reset to the course's {'student copy' if student else 'notebook'}{was}; every cell as "
                "shipped")
    chosen = find_exercise(shipped, exercise, path.name)
    if not path.is_file():
        raise UserError(f"{path} does not exist; leave out --exercise to write the whole notebook afresh")
    mine = _read(path)
    restored, inserted = _restore_cells(mine, shipped, chosen.stub_ids)
    nbformat.write(mine, path)
    added = f" ({inserted} put back where it was missing)" if inserted else ""
    return f"{path}: exercise {chosen.number} ({chosen.title}) reset, {restored} cell(s){added}; every other cell kept"


def _read(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path} is not a readable notebook ({type(err).__name__})") from None


def _is_student_copy(path: Path) -> bool:
    return _read(path).metadata.get(STUDENT_KEY, {}).get("copy") == "student"


def _restore_cells(mine, shipped, ids: tuple[str, ...]) -> tuple[int, int]:
    """Put the shipped cells ``ids`` into ``mine`` in place of the cells with the same id (outputs cleared);
    a missing one goes after the nearest earlier shipped cell ``mine`` still has. Returns (restored, inserted)."""
    order = [c.id for c in shipped.cells]
    inserted = 0
    for cell_id in ids:
        fresh = nbformat.from_dict(shipped.cells[order.index(cell_id)])
        if fresh.cell_type == "code":
            fresh.outputs, fresh.execution_count = [], None
        at = [i for i, c in enumerate(mine.cells) if c.get("id") == cell_id]
        if at:
            mine.cells[at[0]] = fresh
            continue
        earlier = order[: order.index(cell_id)]
        anchors = [i for i, c in enumerate(mine.cells) if c.get("id") in earlier]
        mine.cells.insert(max(anchors) + 1 if anchors else 0, fresh)
        inserted += 1
    return len(ids), inserted
