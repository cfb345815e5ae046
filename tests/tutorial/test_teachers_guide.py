"""The teacher's guide (docs/teachers_guide.md) and the notebooks' Time paragraphs, read without running anything:
every notebook states its reading-and-exercises time and its run time in quick and full mode; every table row of
the guide gives the times its notebook states; the two-hour path adds up to its stated total, about two hours;
every relative link of the guide resolves, #anchors into the README to one of its headings."""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest

from tests.tutorial.test_course_kit import anchors, markdown_of

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
GUIDE = ROOT / "docs" / "teachers_guide.md"
README = ROOT / "README.md"

CPU = "running all cells on a 2-core CPU"
COLUMNS = ["notebook", "sections", "mode", "reading and exercises (min)", "running all cells", "minutes"]


def time_paragraph(path: Path) -> str:
    """The **Time.** paragraph of a notebook's first cell (with its list)."""
    top = nbformat.read(path, as_version=4).cells[0].source
    found = [p for p in top.split("\n\n") if p.startswith("**Time.**")]
    assert len(found) == 1, f"{path.name}: one **Time.** paragraph in the first cell"
    return found[0]


def stated_times(path: Path) -> dict[str, str | int]:
    """{"reading": minutes, "quick": run time, "full": run time} as the notebook's Time paragraph states them; a
    run time is the phrase after "running all cells on a 2-core CPU:" up to any bracket ("about 3-4 minutes")."""
    text = " ".join(time_paragraph(path).split())
    reading = re.search(r"\* Reading and exercises: about (\d+) minutes\.", text)
    assert reading, f"{path.name}: no reading-and-exercises time in {text!r}"
    times: dict[str, str | int] = {"reading": int(reading.group(1))}
    for mode, label in (("quick", "Quick mode"), ("full", "Full mode")):
        m = re.search(rf"\* {label}\b[^*]*?, {CPU}: ([^(*]+?)(?: \([^*]*\))?\.(?: \*|$)", text)
        assert m, f"{path.name}: no {mode}-mode run time in {text!r}"
        times[mode] = m.group(1).strip()
    return times


def run_minutes(phrase: str) -> int:
    """A stated run time counted at its upper end, in whole minutes rounded up: "about 15 seconds" and "under a
    minute" are 1, "about 3-4 minutes" is 4."""
    if re.fullmatch(r"under (a|1) minute", phrase):
        return 1
    m = re.fullmatch(r"about (\d+)(?:-(\d+))? (second|minute)s?", phrase)
    assert m, f"a run time the guide cannot count: {phrase!r}"
    most = int(m.group(2) or m.group(1))
    return math.ceil(most / 60) if m.group(3) == "second" else most


def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under ``## heading``, up to the next ``## `` heading."""
    start = text.index(f"\n## {heading}\n")
    return text[start:].split("\n## ", 2)[1]


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of every table in ``text`` whose header is :data:`COLUMNS`, as {column: cell}."""
    rows, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif set("".join(cells)) <= set("-: "):
            continue
        elif header == COLUMNS:
            rows.append(dict(zip(COLUMNS, cells)))
    return rows


def notebook_of(row: dict[str, str]) -> Path:
    m = re.fullmatch(r"\[(\d\d_\w+\.ipynb)\]\(\.\./notebooks/\1\)", row["notebook"])
    assert m, f"the notebook column links the notebook: {row['notebook']!r}"
    return ROOT / "notebooks" / m.group(1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_states_reading_and_both_run_times(path):
    times = stated_times(path)
    assert 10 <= times["reading"] <= 90
    for mode in ("quick", "full"):
        assert 1 <= run_minutes(times[mode]) <= 15


def test_run_minutes_counts_the_upper_end_rounded_up():
    assert [run_minutes(p) for p in ("about 15 seconds", "under a minute", "under 1 minute", "about 1 minute",
                                     "about 3-4 minutes", "about 7 minutes")] == [1, 1, 1, 1, 4, 7]


def test_every_guide_row_gives_its_notebooks_stated_times():
    rows = table_rows(guide_text())
    assert len(rows) >= 3
    for row in rows:
        times = stated_times(notebook_of(row))
        assert row["mode"] in ("quick", "full"), row
        assert int(row["reading and exercises (min)"]) == times["reading"], row
        assert row["running all cells"] == times[row["mode"]], row
        assert int(row["minutes"]) == times["reading"] + run_minutes(times[row["mode"]]), row


def test_the_two_hour_path_adds_up_to_its_total():
    path = section(guide_text(), "The two-hour path")
    rows = table_rows(path)
    assert rows and len({r["notebook"] for r in rows}) == len(rows)
    minutes = [int(r["minutes"]) for r in rows]
    total = re.findall(r"\*\*Total: ([\d +]+) = (\d+) minutes\*\*", path)
    assert len(total) == 1, "one line **Total: a + b + ... = N minutes**"
    terms, stated = total[0]
    assert [int(t) for t in terms.split("+")] == minutes
    assert int(stated) == sum(minutes)
    assert 100 <= int(stated) <= 130


def relative_links(text: str) -> list[str]:
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]


def test_every_relative_link_of_the_guide_resolves():
    links = relative_links(guide_text())
    assert any(link.startswith("../README.md#") for link in links)
    for link in links:
        target, _, anchor = link.partition("#")
        page = GUIDE if not target else (GUIDE.parent / target).resolve()
        assert page.is_file(), f"the guide links {target}, which does not exist"
        if anchor and page.suffix in (".md", ".ipynb"):
            assert anchor in anchors(markdown_of(page)), f"the guide's link {link} lands on no heading"


def test_the_guide_names_the_commands_a_teacher_needs():
    text = guide_text()
    for command in ("pip install -e .", "python -m vpd_lite.course student-copy lab", "python -m vpd_lite.course reset",
                    "python -m vpd_lite.atlas --out atlas", "VPD_LITE_QUICK=1"):
        assert command in text, command


def test_the_guide_speaks_plainly():
    assert not re.search(r"\b(issue|TODO|FIXME|nbmake|stub)\b|#\d+", guide_text(), flags=re.I)


def test_the_readmes_section_for_teachers_links_the_guide():
    teachers = README.read_text(encoding="utf-8").split("\n## For teachers\n", 1)[1].split("\n## ", 1)[0]
    first = teachers.strip().split("\n\n", 1)[0]
    assert "](docs/teachers_guide.md)" in first
