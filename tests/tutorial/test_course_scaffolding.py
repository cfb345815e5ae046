"""The course around the notebooks, read without running them: VPD spelled out at first use, the README's
References and Glossary, sources cited by name, a recap and a pointer to the next step at the end of every
notebook, predictions asked before the figure that answers them, and no progress bar left by model loading."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
README = (ROOT / "README.md").read_text(encoding="utf-8")


def cells(path: Path):
    return nbformat.read(path, as_version=4).cells


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    return text[start:].split("\n## ", 2)[1]


def test_there_are_six_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_vpd_is_spelled_out_in_the_first_cell(path):
    first = cells(path)[0]
    assert first.cell_type == "markdown"
    assert "adversarial parameter decomposition (vpd)" in first.source.lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_a_recap_and_a_pointer_onwards(path):
    last = cells(path)[-1]
    assert last.cell_type == "markdown" and "## What you saw" in last.source
    recap = last.source.split("## What you saw", 1)[1].split("\n## ", 1)[0]
    assert 3 <= len(re.findall(r"^\* ", recap, flags=re.M)) <= 5
    n = int(path.name[:2])
    if n < 4:
        following = NOTEBOOKS[n + 1].name
        assert "## Next" in last.source and f"({following})" in last.source
    else:
        assert "## Going further" in last.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sources_are_cited_by_name_with_a_link_to_the_references(path):
    text = "\n".join(c.source for c in cells(path) if c.cell_type == "markdown")
    vague = re.search(r"the post|the published experiment|the reference VPD work", text, flags=re.I)
    assert not re.search(r"the published experiment|the reference VPD work", text, flags=re.I)
    if vague:
        first = text[: vague.end() + 300]  # the first mention names it (here or just before)
        assert "README.md#references" in first and ("LessWrong" in first or "Goodfire" in first)


def test_readme_has_references_with_the_papers_and_the_post():
    refs = section(README, "References")
    for title in ("Interpreting Language Model Parameters", "Stochastic Parameter Decomposition",
                  "Attribution-based Parameter Decomposition", "Toy Models of Superposition",
                  "Exploration: fine-tuning with parameter decomposition"):
        assert title in refs, title
    for url in ("https://arxiv.org/abs/2506.20790", "https://arxiv.org/abs/2501.14926",
                "https://transformer-circuits.pub/2022/toy_model/index.html"):
        assert url in refs, url


def test_readme_glossary_defines_the_course_terms():
    glossary = section(README, "Glossary")
    for term in ("Component", "Causal importance (CI)", "L0", "PGD", "Faithfulness", "Prefactor", "Admissible s",
                 "ln V", "Global CI (shared MLP / transformer)"):
        assert f"**{term}" in glossary, term
    assert "nats/token" in glossary


def index_of(cs, needle: str) -> int:
    hits = [i for i, c in enumerate(cs) if c.cell_type == "code" and needle in c.source]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


@pytest.mark.parametrize("name, check, reveal", [
    ("01_decompose.ipynb", "exercises.check_uniform_ce(my_answer", "plots.plot_target_ce("),
    ("01_decompose.ipynb", "exercises.check_fully_kept(my_answer", "plots.mask_picture("),
    ("02_inspect.ipynb", "exercises.check_largest_ablation_effect(my_answer", "plots.plot_ablation_effect("),
])
def test_predictions_come_before_the_figure_that_answers_them(name, check, reveal):
    cs = cells(ROOT / "notebooks" / name)
    assert index_of(cs, check) < index_of(cs, reveal)
    exercise = max(i for i, c in enumerate(cs[: index_of(cs, check)]) if "predict, then run" in c.source)
    assert "ln(vocab)" not in "".join(c.source for c in cs[exercise: index_of(cs, check)])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_model_loading_shows_no_progress_bar_and_outputs_are_cleared(path):
    cs = cells(path)
    code = [c for c in cs if c.cell_type == "code"]
    loads = [i for i, c in enumerate(cs) if "load_target()" in c.source]
    if loads:
        quiet = [i for i, c in enumerate(cs) if "notebook.quiet_model_loading()" in c.source]
        assert quiet and min(quiet) <= min(loads)
    assert all(not c.outputs and c.execution_count is None for c in code)
