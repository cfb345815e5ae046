"""The CI-design picture and the comparison table of notebook 01."""

import pandas as pd

from vpd_lite.models.paths import results_dir
from vpd_lite.tutorial import ci_designs


def test_the_picture_draws_one_panel_per_design_with_what_each_reads():
    fig = ci_designs.ci_designs_picture()
    axes = fig.get_axes()
    assert len(axes) == 3
    titles = [ax.get_title() for ax in axes]
    for name, ax in zip(("shared_mlp", "global_mlp", "global_transformer"), axes):
        assert name in ax.get_title(), titles
        assert ax.texts, f"panel {name} drew nothing"
    assert any("whole sequence" in t.get_text() for t in axes[2].texts)


def _run(ci_type, seed, meeting, on_mean, way, edge, loss):
    return {"ci_type": ci_type, "run": f"{ci_type}-s{seed}", "seeds_meeting": meeting, "n_seeds": 3,
            "meets_on_mean": on_mean, "way_mean": way, "edge_d_de": edge, "final_train_loss": loss,
            "ce_gap_ci_rounded": 0.5, "ce_gap_pgd": 1.0}


def test_the_table_counts_every_snippet_and_the_mean_apart_and_keeps_the_design_order():
    runs = pd.DataFrame([
        _run("global_transformer", 0, 3, True, 0.9, 2.5, 0.7),
        _run("global_transformer", 1, 2, True, 0.85, 2.0, 0.8),  # meets on the mean, not on every snippet
        _run("shared_mlp", 0, 0, False, 0.4, 1.0, 1.2),
        _run("shared_mlp", 1, 3, True, 0.8, 3.0, 1.0),
    ])
    table = ci_designs.ci_comparison_table(runs)
    assert list(table.index) == ["per matrix", "global transformer (default)"]
    assert table.loc["global transformer (default)", "every snippet"] == "1 of 2"
    assert table.loc["global transformer (default)", "on the mean"] == "2 of 2"
    assert table.loc["per matrix", "every snippet"] == "1 of 2"
    assert table.loc["per matrix", "way to ln V (median)"] == "60 %"
    assert table.loc["global transformer (default)", "German ΔCE on training text (median)"] == 2.25


def test_the_shipped_comparison_loads_and_a_missing_file_gives_one_line(tmp_path):
    runs, note = ci_designs.load_ci_comparison(results_dir())
    assert note is None and set(runs["ci_type"]) == set(ci_designs.CI_TYPE_NAMES)
    assert len(ci_designs.ci_comparison_table(runs)) == 3
    runs, note = ci_designs.load_ci_comparison(tmp_path)
    assert runs is None and "ci_comparison_runs.csv not found" in note and "\n" not in note
