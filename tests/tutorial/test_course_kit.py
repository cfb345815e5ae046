"""The teacher's kit: the student copy (no solutions, no outputs, still runs), the reset of one exercise or a
whole notebook (only that file written, the student's other cells kept), and references that resolve: the
glossary linked from every notebook and every in-page ``#anchor`` link landing on a heading."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vpd_lite.errors import UserError
from vpd_lite.tutorial import course_kit
from vpd_lite.tutorial.course_kit import (
    course_notebooks,
    exercises,
    find_exercise,
    is_solution,
    reset_notebook,
    write_student_copy,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def read(path: Path):
    return nbformat.read(path, as_version=4)


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kit") / "lab"
    write_student_copy(folder)
    return folder


def test_the_course_notebooks_are_the_clones():
    assert course_notebooks() == NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_solution_closes_an_exercise_with_a_title_and_a_stub(path):
    nb = read(path)
    found = exercises(nb)
    assert len(found) == sum(is_solution(c) for c in nb.cells) >= 1
    for ex in found:
        assert ex.stub_ids and "xercise" in ex.title, ex


def test_exercises_are_named_by_number_or_title():
    nb = read(ROOT / "notebooks" / "01_decompose.ipynb")
    assert find_exercise(nb, "5", "01").title == "Coding exercise 2 · the stochastic mask"
    assert find_exercise(nb, "Coding  Exercise 2", "01").number == 5
    assert find_exercise(nb, "exercise 2", "01").title.startswith("Exercise 2 (predict")  # starts-with first
    assert find_exercise(nb, "leaky hard sigmoid", "01").number == 6
    for bad, why in (("9", "names no exercise"), ("exercise", "names more than one exercise")):
        with pytest.raises(UserError, match=why) as err:
            find_exercise(nb, bad, "01_decompose.ipynb")
        assert "5: Coding exercise 2 · the stochastic mask" in str(err.value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_copy_has_no_solutions_nor_outputs_and_every_other_cell(path, copy):
    shipped, student = read(path), read(copy / path.name)
    nbformat.validate(student)
    assert [c.id for c in student.cells] == [c.id for c in shipped.cells if not is_solution(c)]
    text = "\n".join(c.source for c in student.cells)
    assert "<details><summary>Solution" not in text and "Solution" not in text
    assert "](../" not in text  # links to the repository's files point online, since ../ is not there
    assert all(not c.outputs and c.execution_count is None for c in student.cells if c.cell_type == "code")
    stubs = {i for ex in exercises(shipped) for i in ex.stub_ids}
    assert stubs <= {c.id for c in student.cells}
    assert student.metadata["vpd_lite"] == {"copy": "student"}


def test_student_copy_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "mine.txt").write_text("work")
    with pytest.raises(UserError, match=r"already holds 1 file\(s\) \(mine.txt\); name a new or empty folder"):
        write_student_copy(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_the_copy_finds_the_installed_package_from_its_own_folder(copy):
    """The set-up cell of a copy (IPython syntax turned into Python) run in the copy's folder, with vpd_lite
    importable as an install makes it: it imports the package and finds the data without cloning anything."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = [c for c in read(copy / "01_decompose.ipynb").cells if c.cell_type == "code"][0].source
    env = {k: v for k, v in os.environ.items() if k != "VPD_LITE_DATA"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", TransformerManager().transform_cell(code)], cwd=copy, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "git clone" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert not (copy / "vpd-lite").exists() and sorted(p.name for p in copy.iterdir()) == [p.name for p in NOTEBOOKS]


def _answer(nb, cell_id: str, text: str) -> None:
    (cell,) = [c for c in nb.cells if c.id == cell_id]
    cell.source = text
    cell.outputs = [nbformat.v4.new_output("stream", text="ran")]


def test_reset_one_exercise_keeps_every_other_cell_and_touches_no_other_file(tmp_path):
    write_student_copy(tmp_path)
    path = tmp_path / "01_decompose.ipynb"
    nb = read(path)
    _answer(nb, "01-code1", "def components_output(x, V, U, mask):\n    return x\n")
    _answer(nb, "01-code2", "def stochastic_mask(g, r):\n    return g\n")
    nb.cells = [c for c in nb.cells if c.id != "01-code3"]  # the student deleted a stub
    nb.cells.append(nbformat.v4.new_markdown_cell("my notes"))
    nbformat.write(nb, path)
    others = {p: p.read_bytes() for p in tmp_path.iterdir() if p != path}

    said = reset_notebook(path, "stochastic mask")
    assert said.endswith("exercise 5 (Coding exercise 2 · the stochastic mask) reset, 1 cell(s); "
                         "every other cell kept")
    after = {c.id: c for c in read(path).cells}
    shipped = {c.id: c for c in read(NOTEBOOKS[1]).cells}
    assert after["01-code2"].source == shipped["01-code2"].source and after["01-code2"].outputs == []
    assert after["01-code1"].source.endswith("return x\n") and read(path).cells[-1].source == "my notes"
    assert "01-code3" not in after

    assert "1 put back where it was missing" in reset_notebook(path, "6")
    ids = [c.id for c in read(path).cells]
    assert ids.index("01-code3") == ids.index("01-code3-lead") + 1
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p != path} == others


def test_reset_a_whole_notebook_gives_back_what_the_student_started_from(tmp_path):
    write_student_copy(tmp_path)
    path = tmp_path / "03_label.ipynb"
    fresh = path.read_text()
    nb = read(path)
    _answer(nb, nb.cells[6].id, "mine")
    nbformat.write(nb, path)
    assert "reset to the course's student copy" in reset_notebook(path)
    assert read(path) == nbformat.reads(fresh, as_version=4)
    path.unlink()  # deleted: written afresh
    reset_notebook(path)
    assert read(path) == nbformat.reads(fresh, as_version=4)
    path.write_text('{"cells": [{"cell_type": "code", "sou')  # broken beyond reading (a cut-off save)
    assert "it was not a readable notebook" in reset_notebook(path)
    assert read(path) == nbformat.reads(fresh, as_version=4)  # the student copy: no solution written into it


def test_reset_refuses_the_courses_own_copy_and_other_names(tmp_path):
    with pytest.raises(UserError, match="is the course's own copy, which reset restores from"):
        reset_notebook(NOTEBOOKS[1], "1")
    with pytest.raises(UserError, match=r"notes.ipynb is not one of the course's notebooks \(00_toy"):
        reset_notebook(tmp_path / "notes.ipynb")
    with pytest.raises(UserError, match="does not exist; leave out --exercise"):
        reset_notebook(tmp_path / "02_inspect.ipynb", "1")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ references that resolve
README = ROOT / "README.md"


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text lower-cased, every character that is not a letter, digit,
    space, hyphen or underscore dropped, spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of every heading of ``markdown`` (outside code blocks), with GitHub's -1, -2 for repeats."""
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} +(.+?) *#* *$", line)):
            base, n = github_anchor(m.group(1)), 0
            while (anchor := base if n == 0 else f"{base}-{n}") in found:
                n += 1
            found.add(anchor)
    return found


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n\n".join(c.source for c in read(path).cells if c.cell_type == "markdown")
    return path.read_text(encoding="utf-8")


def test_github_anchor_rule():
    assert github_anchor("Set-up (fresh machine, Python 3.11)") == "set-up-fresh-machine-python-311"
    assert github_anchor("1 · Decompose a `rank-1` model") == "1--decompose-a-rank-1-model"
    assert anchors("# A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1"}


@pytest.mark.parametrize("path", [README, *NOTEBOOKS], ids=lambda p: p.name)
def test_every_anchor_link_lands_on_a_heading(path):
    text = markdown_of(path)
    links = re.findall(r"\]\(([^)\s]*)#([^)\s]+)\)", text)
    for target, anchor in links:
        if target.startswith("http"):
            continue
        page = path if not target else (path.parent / target).resolve()
        assert page.is_file(), f"{path.name}: link to {target} which does not exist"
        assert anchor in anchors(markdown_of(page)), f"{path.name}: {target}#{anchor} lands on no heading"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_links_the_glossary_at_its_top_or_recap(path):
    cells = read(path).cells
    assert any("](../README.md#glossary)" in c.source for c in (cells[0], cells[-1]))


def test_the_readme_says_how_to_get_the_browser_and_gives_the_teachers_commands():
    text = README.read_text(encoding="utf-8")
    assert "apt-get install chromium" in text and "skipped" in text
    teachers = text.split("\n## For teachers\n", 1)[1].split("\n## ", 1)[0]
    assert "python -m vpd_lite.course student-copy" in teachers and "python -m vpd_lite.course reset" in teachers


def test_packaged_notebooks_folder_is_what_setup_writes():
    assert course_kit.PACKAGED_NOTEBOOKS == ROOT / "vpd_lite" / "_notebooks"
    assert '"_notebooks"' in (ROOT / "setup.py").read_text()
