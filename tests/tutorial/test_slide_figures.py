"""The teacher's slide figures (``python -m vpd_lite.course figures DIR``): numbered PNGs at slide size with
large text, an index page listing exactly the files written, a folder with files in it refused with one line and
nothing written, and figures whose shipped results are missing skipped with a line saying which and why."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.text import Text
from PIL import Image

from vpd_lite.commands import course
from vpd_lite.models import paths
from vpd_lite.tutorial import slide_figures
from vpd_lite.tutorial.slide_figures import MIN_FONT_PT, SLIDE_PX, SLIDES, to_slide

ROOT = Path(__file__).resolve().parents[2]
PNG_NAME = re.compile(r"\b\d\d_[a-z0-9_]+\.png\b")
PICTURES = [s.name for s in SLIDES if not s.needs]  # drawn without any shipped results


def run(args: list[str]) -> tuple[int, str]:
    """``python -m vpd_lite.course ARGS`` in this process: (exit code, what it printed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = course.main(args)
    return code, out.getvalue()


def shipped_state() -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for folder in (ROOT / "results", ROOT / "data") for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, str]:
    """The command run once into a new folder: (the folder, what it printed); nothing shipped changes."""
    folder = tmp_path_factory.mktemp("slides") / "figures"
    before = shipped_state()
    code, printed = run(["figures", str(folder)])
    assert code == 0
    assert shipped_state() == before, "a file under data/ or results/ changed"
    return folder, printed


def test_every_figure_is_a_numbered_png_at_slide_size(written):
    folder, _ = written
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == [f"{s.name}.png" for s in SLIDES]
    assert [int(p.name[:2]) for p in pngs] == list(range(1, len(SLIDES) + 1))
    assert 6 <= len(pngs) <= 10
    for png in pngs:
        with Image.open(png) as image:
            assert image.size == SLIDE_PX == (2000, 1125), png.name


def test_the_index_lists_exactly_the_files_written(written):
    folder, printed = written
    index = (folder / "index.md").read_text(encoding="utf-8")
    assert set(PNG_NAME.findall(index)) == {p.name for p in folder.glob("*.png")}
    assert sorted(p.name for p in folder.iterdir()) == sorted([*(f"{s.name}.png" for s in SLIDES), "index.md"])
    for slide in SLIDES:
        entry = index.split(f"({slide.name}.png)", 1)[1].split("\n## ", 1)[0]
        assert f"`{slide.notebook}`" in entry and "What to look for:" in entry and "Drawn from:" in entry
        assert (ROOT / "notebooks" / slide.notebook).is_file()
    lines = printed.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (f"{len(SLIDES)} slide figures (2000 x 1125 px) written to {folder}; "
                        f"the list of them: {folder / 'index.md'}")


def test_every_text_on_a_slide_is_at_least_16_pt():
    for slide in (SLIDES[1], *[s for s in SLIDES if s.name.endswith("tradeoff")]):
        fig = to_slide(slide.draw(paths.results_dir()))
        fig.canvas.draw()  # ticks and legends as drawn
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
        assert sizes and min(sizes) >= MIN_FONT_PT, slide.name
        assert tuple(round(x * fig.dpi) for x in fig.get_size_inches()) == SLIDE_PX


def test_a_folder_with_files_is_refused_with_one_line_and_nothing_written(tmp_path):
    (tmp_path / "slides.pptx").write_text("my talk")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "vpd_lite.course", "figures", str(tmp_path)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "already holds 1 file(s) (slides.pptx)" in proc.stderr, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["slides.pptx"]


def test_missing_results_are_skipped_with_a_line_and_the_rest_written(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "results_dir", lambda: tmp_path / "no-results")
    code, printed = run(["figures", str(tmp_path / "out")])
    assert code == 0
    lines = printed.strip().splitlines()
    needing = [s for s in SLIDES if s.needs]
    assert len(lines) == len(needing) + 1
    for slide, line in zip(needing, lines):
        assert line.startswith(f"skipped {slide.name} ") and slide.needs[0] in line, line
        assert "does not have the shipped results" in line
    assert lines[-1].startswith(f"{len(PICTURES)} slide figures")
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.png")) == PICTURES
    index = (tmp_path / "out" / "index.md").read_text(encoding="utf-8")
    assert set(PNG_NAME.findall(index)) == {f"{name}.png" for name in PICTURES}


def test_a_figure_is_drawn_when_its_own_tables_are_there(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(ROOT / "results" / "erase_german.csv", results)
    written, skipped, _ = slide_figures.write_slide_figures(tmp_path / "out", results)
    names = {p.stem for p in written}
    assert {"05_erase_german_tradeoff", "06_off_target", "07_top16"} <= names
    assert "04_dose_response" not in names
    assert any(line.startswith("skipped 04_dose_response") and "edit_scan_best.csv" in line for line in skipped)


def test_the_readme_gives_the_figures_command_to_teachers():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    teachers = text.split("\n## For teachers\n", 1)[1].split("\n## ", 1)[0]
    assert "python -m vpd_lite.course figures" in teachers
