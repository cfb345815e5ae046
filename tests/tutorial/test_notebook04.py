"""Notebook 04 as a course step, read without running it: objectives and time on top, a smoke-test notice in quick
mode, the selection rule before any held-out number, exercises with collapsed solutions and check functions, and
outputs only to a run folder (never to data/ or results/)."""

import re
from pathlib import Path

import nbformat

from vpd_lite.tutorial import coding, exercises

NB = Path(__file__).resolve().parents[2] / "notebooks" / "04_erase_german.ipynb"


def cells():
    return nbformat.read(NB, as_version=4).cells


def test_opens_with_objectives_and_time():
    top = cells()[0].source
    assert "**Learning objectives.**" in top
    assert 3 <= len(re.findall(r"^\d\. ", top, flags=re.M)) <= 5
    assert "Quick mode" in top and "Full mode" in top and "minute" in top


def test_quick_mode_says_it_is_a_smoke_test():
    code = "\n".join(c.source for c in cells() if c.cell_type == "code")
    assert "if QUICK:" in code and "smoke test" in code and "differ from the full run" in code


def test_rule_is_stated_before_any_held_out_number():
    cs = cells()
    rule = next(i for i, c in enumerate(cs) if c.cell_type == "markdown" and "selection rule, fixed before" in c.source)
    first_heldout = next(i for i, c in enumerate(cs) if c.cell_type == "code" and "heldout" in c.source)
    assert rule < first_heldout
    assert "training text only" in cs[rule].source


def test_exercises_have_collapsed_solutions_and_existing_checks():
    cs = cells()
    solutions = [c for c in cs if c.cell_type == "markdown" and "<details><summary>Solution</summary>" in c.source]
    code = "\n".join(c.source for c in cs if c.cell_type == "code")
    checks = re.findall(r"exercises\.(check_\w+)\(my_answer", code)
    coding_checks = re.findall(r"coding\.(check_\w+)\(", code)
    assert 2 <= len(checks) <= 3 and 2 <= len(coding_checks) <= 3
    assert len(checks) + len(coding_checks) == len(solutions)
    assert all(callable(getattr(exercises, name)) for name in checks)
    assert all(callable(getattr(coding, name)) for name in coding_checks)
    assert all("my_answer = None" in c.source for c in cs if c.cell_type == "code" and "my_answer" in c.source)


def test_writes_only_to_a_run_folder():
    code = "\n".join(c.source for c in cells() if c.cell_type == "code")
    assert "default_run_dir(" in code
    for line in code.splitlines():
        if "results_dir()" in line or "data_dir()" in line:
            assert not re.search(r"save|write|mkdir|out=", line), line
    saves = [line for line in code.splitlines() if "save_" in line and "(" in line]
    assert saves and all("run_dir" in line for line in saves if "save_results" in line or "save_figures" in line)
