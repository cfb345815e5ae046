"""The notebook's view of the study across decompositions: loading the shipped tables, the verdict table, figures."""

import pandas as pd
import pytest

from vpd_lite.tutorial import across_plots
from vpd_lite.tutorial.plots import NOTEBOOK_WIDTH_IN


def _seeds():
    return pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "target": ["shipped"] * 6, "component": ["m:1"] * 3 + ["m:2"] * 3,
                         "seed": [0, 1, 2] * 2, "way": [0.74, 0.834, 0.925, 0.5, 0.9, 0.81],
                         "d_en": [0.01, 0.016, 0.023, 0.0, 0.0, 0.03], "d_worst_other": [0.03, 0.04, 0.05] * 2,
                         "meets_claim": [False, True, True, False, True, True]})


def test_verdict_table_reports_every_snippet_and_the_mean():
    table = across_plots.verdict_table(_seeds())
    a = table.iloc[0]
    assert a["way per snippet"] == "74% / 83% / 92%" and a["way (mean)"] == "83%"
    assert a["snippets meeting the claim"] == "2 of 3" and a["English ΔCE"] == "+0.016"


def test_recipe_notes_name_only_the_runs_of_another_recipe():
    runs = pd.DataFrame({"run": ["a", "b", "fast"], "recipe": ["shipped", "shipped", "ci_hidden=32"]})
    note = across_plots.recipe_notes(runs)
    assert "**fast**: ci_hidden=32" in note and "**b**" not in note
    assert across_plots.recipe_notes(runs.iloc[:2]) == "" and across_plots.recipe_notes(runs[["run"]]) == ""
    # runs of one other recipe are named together, once
    more = pd.DataFrame({"run": ["a", "s1", "s2", "t"], "recipe": ["shipped", "ci_type=shared_mlp",
                                                                    "ci_type=shared_mlp", "ci_hidden=32"]})
    note = across_plots.recipe_notes(more)
    assert "**s1**, **s2**: ci_type=shared_mlp; **t**: ci_hidden=32." in note and note.count("shared_mlp") == 1


def test_load_study_needs_every_table(tmp_path):
    assert across_plots.load_study(tmp_path) is None
    for name in across_plots.STUDY_FILES.values():
        pd.DataFrame({"x": [1]}).to_csv(tmp_path / name, index=False)
    assert set(across_plots.load_study(tmp_path)) == set(across_plots.STUDY_FILES)


def _curves(run):
    s = [-30.0, -10.0, 0.0, 1.0, 10.0]
    return pd.DataFrame({"run": run, "s": s, "ce_de": [9.0, 6.0, 4.7, 4.6, 5.0], "d_de": [4.4, 1.4, 0.1, 0.0, 0.4],
                         "d_en": [0.5, 0.1, 0.0, 0.0, 0.1], "s_lo": -7.5, "s_hi": 7.0, "ln_v": 8.318})


def test_figures_fit_the_notebook_and_refuse_a_run_without_a_curve():
    runs = pd.DataFrame({"run": ["a", "b"], "component": ["model.layers.0.mlp.down_proj:113", "m:2"],
                         "way_mean": [0.83, 0.5], "seeds_meeting": [2, 0], "n_seeds": [3, 3]})
    curves = pd.concat([_curves("a"), _curves("b")])
    fig = across_plots.curves_figure(curves, runs)
    assert fig.get_size_inches()[0] <= NOTEBOOK_WIDTH_IN
    assert "down_proj:113" in fig.axes[0].get_title()
    with pytest.raises(KeyError, match="no dose-response curve for run 'b'"):
        across_plots.curves_figure(_curves("a"), runs)
    sim = pd.DataFrame({"run_a": ["a", "a", "b", "b"], "run_b": ["a", "b", "a", "b"],
                        "matrix": [1.0, 0.2, 0.2, 1.0], "read": [1.0, 0.5, 0.5, 1.0], "write": [1.0, 0.4, 0.4, 1.0]})
    heat = across_plots.similarity_figure(sim)
    assert heat.get_size_inches()[0] <= NOTEBOOK_WIDTH_IN
    with pytest.raises(KeyError, match="no column 'nope'"):
        across_plots.similarity_figure(sim, kind="nope")
