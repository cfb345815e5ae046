"""Notebooks 03 and 04 say what their figures show, and their figures and reports can be read at JupyterLab's
width (about 900 px): text that matches the tables, titles that fit, axes that hold the data, tables instead of
wrapped text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.tutorial.test_edit_plots import curve_rows
from vpd_lite.interpret.labels import label_components, labels_table, search_labels, show_labels
from vpd_lite.interpret.statistics import StatsAccumulator
from vpd_lite.tutorial import edit_plots as ep
from vpd_lite.tutorial import edit_reports
from vpd_lite.tutorial.edit_widget import explorer_figure
from vpd_lite.tutorial.notebook import mode_banner, mode_text

ROOT = Path(__file__).resolve().parents[2]


def texts(name: str) -> list[tuple[str, str]]:
    cells = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells]


def visible_width(text: str, font_size: float) -> float:
    """Rough rendered width (px) of one line of a plotly title: ~0.55 em per character, tags removed."""
    return 0.55 * font_size * len(re.sub(r"<[^>]+>", "", text))


def title_lines(fig) -> list[tuple[str, float]]:
    """(line, font size) of each line of a plotly figure's title; <sup> lines are drawn at ~70 %."""
    size = fig.layout.title.font.size or 17
    return [(line, size * (0.7 if "<sup>" in line else 1.0)) for line in fig.layout.title.text.split("<br>")]


# ---- 03: the search tables are ranked by what the text says, and the column is shown
def language_stats():
    langs = ["en", "de"]
    acc = StatsAccumulator({"a": 3}, langs, threshold=0.1, top_k=2, context_left=1, context_right=1)
    for lang in langs:
        a = torch.zeros(1, 10, 3)
        if lang == "de":
            a[0, :8, 0] = 0.9  # German only, fires on most German tokens
            a[0, :2, 1] = 0.9  # German only, rarely
            a[0, :9, 2] = 0.9  # fires on German a lot ...
        else:
            a[0, :3, 2] = 0.9  # ... and some English: less German-specific, but highest German rate
        acc.update(lang, torch.arange(10).view(1, 10), {"a": a})
    return acc.finalize()


def test_label_search_shows_the_column_it_ranks_by():
    from vpd_lite.interpret.labels import LabelConfig

    labels = label_components(language_stats(), config=LabelConfig(min_fires=1))
    hits = search_labels(labels, "German")
    table = labels_table(hits, lang="de")
    assert "fires on German" in table.columns
    for _, group in table.groupby("category", sort=False):  # within a tier the shown rate never increases
        rates = list(group["fires on German"])
        assert rates == sorted(rates, reverse=True)
    assert "fires on German" in show_labels(hits, lang="de").to_html()
    assert "fires on German" not in labels_table(hits).columns  # unchanged without a language


def test_notebook03_search_text_names_the_ranking_and_passes_the_language():
    cells = texts("03_label.ipynb")
    md = "\n".join(t for k, t in cells if k == "markdown")
    assert "ranked by the share" not in md
    assert "firing rate on that language" in md and '"fires on German"' in md
    shown = [t for k, t in cells if k == "code" and "show_labels(labelling.search_labels(" in t]
    language_searches = [t for t in shown if re.search(r'search_labels\(labels, "(German|French)"\)', t)]
    assert language_searches and all("lang=" in t for t in language_searches)


# ---- 03: the ending points at what 04 does
def test_notebook03_ending_names_the_component_04_edits_and_why():
    ending = " ".join(texts("03_label.ipynb")[-1][1].split("## Next", 1)[1].split())
    runs = pd.read_csv(ROOT / "results" / "erase_german_runs.csv")
    picked = {m: set(runs.loc[runs["method"] == m, "component"]) for m in ("scalar_edit", "scalar_firing")}
    assert len(picked["scalar_edit"]) == 1 and len(picked["scalar_firing"]) == 1
    assert f"`{picked['scalar_edit'].pop()}`" in ending  # the component 04 edits in the full run
    assert picked["scalar_firing"].pop() in ending  # and the firing-based pick it is contrasted with
    assert "edit scan" in ending and "every* token" in ending and "04_erase_german.ipynb" in ending
    rules = edit_reports.claim_tables(*edit_reports.load_shipped()).rules.set_index(["rule", "objective"])
    for rule in ("earlier rule (firing)", "edit-scan rule"):  # the numbers it quotes are the full run's
        assert f"{rules.loc[(rule, 'target_ce'), 'way to ln V (%)']:.0f} %" in ending


# ---- 03: the banner says what quick mode changes there
def test_notebook03_quick_banner_says_what_quick_mode_changes():
    setup = next(t for k, t in texts("03_label.ipynb") if k == "code" and "mode_banner(" in t)
    assert 'notebook.mode_banner(QUICK, "03_label")' in setup
    banner = mode_banner(True, "03_label")
    sentence = str(banner)
    assert "temporary folder" in sentence and "shipped decomposition and its statistics" in sentence
    assert "Quick mode" in banner._repr_html_() and "smoke test" not in banner._repr_html_()
    assert str(mode_banner(True)) == mode_text(True)  # a notebook without its own text keeps the general one
    assert str(mode_banner(False, "03_label")) == mode_text(False)


# ---- 04: figures that fit and hold their data
def test_fit_figure_title_fits_its_width():
    fig = ep.objective_plot([-2.0, 0.0, 1.0], {"target_ce": [1.0, 0.5, 2.0], "uniform_ce": [8.0, 7.0, 6.0]},
                            {"target_ce": 0.0}, (-2.0, 1.0), "model.layers.0.mlp.down_proj:113")
    usable = fig.layout.width - 80  # plotly's default left and right margins
    for line, size in title_lines(fig):
        assert visible_width(line, size) <= usable, line
    assert fig.layout.margin.t >= 30 * len(title_lines(fig))  # room for every title line above the panels


def test_dose_response_title_fits_its_width():
    fig = ep.dose_response_plot(curve_rows(), "model.layers.0.mlp.down_proj:113", "de",
                                "German text: 84% of firings on German; top tokens ',', ' (', 'en'; fires on 15.5% "
                                "of tokens")
    for line, size in title_lines(fig):
        assert visible_width(line, size) <= fig.layout.width - 80, line


def test_explorer_bar_axis_includes_a_ce_above_ln_v():
    uniform = 8.3
    ce, base = {"de": 9.4, "en": 4.3}, {"de": 4.4, "en": 4.25}
    for curve in (None, {"de": [9.1, 4.4], "en": [4.4, 4.25]}):
        fig = explorer_figure("m:0", -15.0, ce, base, uniform, grid=[-15.0, 1.0], curve=curve)
        lo, hi = fig.layout.yaxis.range
        assert lo <= 0 and hi > max(ce.values()) and hi > uniform
        if curve is not None:
            assert tuple(fig.layout.yaxis2.range) == (lo, hi)  # the curve panel shares the scale


def test_dose_response_has_a_zoomed_panel_where_the_tolerance_is_read():
    curve = curve_rows()
    fig = ep.dose_response_plot(curve, "m:1", "de", mark_s=-4.0, goal=3.5)
    lo, hi = fig.layout.yaxis2.range
    assert lo < 0 < 0.05 < 0.1 < hi <= 0.5  # the tolerances sit inside a small ΔCE range
    assert float(curve["d_de"].max()) > hi  # ... which the full-scale panel cannot show
    zoomed = [t for t in fig.data if t.yaxis == "y2"]
    assert {t.name for t in zoomed} == {ep.LANG_NAMES[c.removeprefix("d_")] for c in curve if c.startswith("d_")}
    assert any(sh.y0 == sh.y1 == 0.1 and sh.yref.startswith("y2") for sh in fig.layout.shapes)
    mystery = ep.dose_response_plot(curve, "m:1", target=None, mark_s=-4.0)  # "which language?": one panel
    assert "yaxis2" not in mystery.layout.to_plotly_json()


def test_notebook04_reads_the_crossing_in_the_zoomed_panel():
    cells = texts("04_erase_german.ipynb")
    exercise = next(t for k, t in cells if k == "markdown" and "**French** start to move" in t)
    assert "zoomed" in exercise


# ---- 04: reports as tables with a one-line verdict
def test_claim_tables_are_tables_with_a_one_line_verdict():
    shipped = edit_reports.load_shipped()
    assert shipped is not None
    tables = edit_reports.claim_tables(*shipped, title="The full run")
    assert "\n" not in tables.verdict and tables.verdict.startswith("Claim reproduced")
    for table in (tables.rules, tables.lora, tables.seeds):
        assert isinstance(table, pd.DataFrame) and len(table)
    assert len(tables.rules) == 6 and set(tables.rules["claim"]) == {"reproduced", "not reproduced"}
    assert len(tables.seeds) == 18 and len(tables.lora) == 6
    html = tables._repr_html_()
    assert html.count("<table") == 3
    # no filled text: every text cell is a short value, never a sentence broken over lines
    for table in (tables.rules, tables.lora, tables.seeds):
        for value in table.astype(str).to_numpy().ravel():
            assert "\n" not in value and len(value) <= 60, value


def test_claim_tables_match_the_shipped_report():
    """The verdicts in the tables are the ones results/erase_german.md states in text."""
    text = (ROOT / "results" / "erase_german.md").read_text(encoding="utf-8")
    said = re.findall(r"^(\w+) \((\w+)\) on 4 German tokens: .*: (REPRODUCED|NOT reproduced)$", text, flags=re.M)
    tables = edit_reports.claim_tables(*edit_reports.load_shipped())
    names = {v: k for k, v in edit_reports.METHOD_NAMES.items()}
    shown = [(names[r["rule"]], r["objective"], r["claim"]) for _, r in tables.rules.iterrows()]
    assert [(m, o, "reproduced" if v == "REPRODUCED" else "not reproduced") for m, o, v in said] == shown


def test_notebook04_shows_reports_as_tables_not_filled_text():
    code = "\n".join(t for k, t in texts("04_erase_german.ipynb") if k == "code")
    assert "textwrap" not in code and 'claim["text"]' not in code and "print(claim" not in code
    assert code.count("edit_reports.claim_tables(") == 2  # this run and the shipped full run
    assert "edit_reports.picks_table(" in code


# ---- 04: the explorer's continuation
def test_notebook04_explains_why_the_continuation_moves_before_the_ce():
    cells = texts("04_erase_german.ipynb")
    at = next(i for i, (k, t) in enumerate(cells) if k == "code" and "explorer.widget" in t)
    note = cells[at + 1][1]
    assert cells[at + 1][0] == "markdown" and "continuation" in note
    assert "greedy" in note.lower() and "tied" in note and "nats/token" in note


@pytest.mark.parametrize("name", ["03_label.ipynb", "04_erase_german.ipynb"])
def test_no_internal_jargon_in_student_text(name):
    md = "\n".join(t for k, t in texts(name) if k == "markdown")
    assert not re.search(r"\b(issue|TODO|FIXME|#\d+)\b", md)
