"""Figures of the edit scan, the dose-response, the erase-any-language table: they draw the data they are given,
say what to look for, and PNGs are byte-for-byte reproducible."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from vpd_lite.tutorial import edit_plots as ep

LANGS = ["en", "de", "fr", "es", "it"]


def prescreen_rows():
    rng = np.random.default_rng(0)
    n = 30
    rows = {"component": [f"model.layers.0.mlp.up_proj:{i}" for i in range(n)]}
    for lang in LANGS:
        rows[f"rms_{lang}"] = rng.random(n)
        rows[f"grad_{lang}"] = rng.normal(size=n) * 0.1
    rows["grad_de"][3] = -2.0  # one component far above the diagonal
    return pd.DataFrame(rows)


def best_rows():
    return pd.DataFrame({
        "component": ["m:1", "m:2", "m:3"], "gain": [1.2, 0.4, 0.05], "worst_other": [0.08, 0.02, 0.09],
        "worst_other_lang": ["fr", "en", "es"], "s_best": [-5.0, -2.0, 3.0], "s_lo": [-5.0, -2.0, -1.0],
        "s_hi": [5.0, 4.0, 3.0]})


def curve_rows():
    s = np.arange(-15.0, 6.0)
    out = {"s": s}
    for lang in LANGS:
        out[f"d_{lang}"] = np.where(s < 1, (1 - s) * (0.3 if lang == "de" else 0.01), 0.0)
    return pd.DataFrame(out)


def test_prescreen_scatter_has_every_component_with_its_label_on_hover():
    pre = prescreen_rows()
    labels = {"model.layers.0.mlp.up_proj:3": "German only (de 97%)"}
    fig = ep.prescreen_scatter(pre, "de", labels, highlight={"model.layers.0.mlp.up_proj:3": "picked"})
    points = fig.data[0]
    assert len(points.x) == len(pre)
    assert points.y[3] == pytest.approx(2.0)
    assert "German only (de 97%)" in points.text[3]
    picked = [t for t in fig.data if t.name.startswith("picked")]
    assert picked and picked[0].y[0] == pytest.approx(2.0)
    assert "look for" in fig.layout.title.text
    with pytest.raises(KeyError, match="xx"):
        ep.prescreen_scatter(pre, "xx")


def test_scan_scatter_plots_gain_against_worst_other():
    best = best_rows()
    fig = ep.scan_scatter(best, "de", {"m:1": "a German component"}, highlight={"m:2": "earlier rule"}, goal=3.5)
    assert list(fig.data[0].x) == [0.08, 0.02, 0.09] and list(fig.data[0].y) == [1.2, 0.4, 0.05]
    assert "a German component" in fig.data[0].text[0] and "s = -5" in fig.data[0].text[0]
    assert fig.data[1].name == "earlier rule: m:2" and fig.data[1].y[0] == 0.4
    assert any(sh.y0 == 3.5 for sh in fig.layout.shapes)
    assert "look for the highest point" in fig.layout.title.text
    with pytest.raises(KeyError):
        ep.scan_scatter(best.drop(columns=["gain"]))


def test_dose_response_plot_draws_each_language():
    curve = curve_rows()
    fig = ep.dose_response_plot(curve, "m:1", "de", "German only", s_range=(-4.0, 5.0), mark_s=-4.0, goal=3.5)
    lines = {t.name: list(t.y) for t in fig.data}
    assert lines["German"] == list(curve["d_de"]) and lines["French"] == list(curve["d_fr"])
    assert "look for the German curve rising" in fig.layout.title.text
    shapes = fig.layout.shapes
    assert any(sh.type == "rect" and sh.x0 == -4.0 and sh.x1 == 5.0 for sh in shapes)
    assert any(sh.x0 == sh.x1 == -4.0 for sh in shapes)
    mpl = ep.dose_response_figure(curve, "m:1", "de", (-4.0, 5.0), -4.0, 3.5)
    assert len(mpl.axes[0].lines) >= len(LANGS)
    plt.close(mpl)


def test_erase_any_heatmap_annotates_every_cell_and_frames_damage():
    table = pd.DataFrame(np.eye(5) * 3 + 0.02, index=LANGS, columns=[f"d_{lang}" for lang in LANGS])
    table.loc["de", "d_fr"] = 0.4  # erasing German moves French beyond its tolerance
    fig = ep.erase_any_heatmap(table)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 25 and "+0.40" in texts and "+3.02" in texts
    frames = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(frames) == 1
    assert "look for" in ax.get_title()
    plt.close(fig)


def test_png_bytes_are_reproducible(tmp_path):
    table = pd.DataFrame(np.eye(3), index=["de", "en", "fr"], columns=["de", "en", "fr"])
    a = ep.save_png(ep.erase_any_heatmap(table), tmp_path / "a.png").read_bytes()
    b = ep.png_bytes(ep.erase_any_heatmap(table))
    assert a == b and a[:4] == b"\x89PNG"


def summary_rows():
    """A summary in the shape of ``vpd_lite.erase.protocol.summarise``: (method, objective, budget) rows."""
    rows = []
    methods = ["scalar_edit", "scalar_firing", "scalar_label", "scalar_top16", "lora_r1_all", "lora_r4_all",
               "lora_r1_local"]
    for budget, objectives in ((4, ("target_ce", "uniform_ce")), (64, ("target_ce",))):
        for o in objectives:
            for i, m in enumerate(methods):
                rows.append({"method": m, "objective": o, "budget": budget, "de_before": 4.6,
                             "de_after": 4.6 + 0.1 * i + (1.0 if o == "uniform_ce" else 0.0), "uniform": 8.318,
                             "frac_to_uniform": 0.03 * i, "d_en": 0.01 * i, "d_fr": 0.02, "d_es": 0.01, "d_it": 0.0,
                             "s": -3.0, "lr": float("nan")})
    return pd.DataFrame(rows)


def test_summary_figures_draw_the_primary_objective_and_say_which_corner_is_good(tmp_path):
    summary = summary_rows()
    fig = ep.tradeoff_plot(summary)
    ax = fig.axes[0]
    scalar = [ln for ln in ax.lines if ln.get_label() == ep.METHOD_NAMES["scalar_edit"]][0]
    assert list(scalar.get_ydata()) == pytest.approx([0.0, 0.0])  # target_ce rows only (uniform_ce would add 1)
    assert "Good corner: top-left" in ax.get_title()
    plt.close(fig)
    assert "lower is better" in ep.off_target_plot(summary)._suptitle.get_text()
    assert "higher is better" in ep.top16_plot(summary).axes[0].get_title()
    plt.close("all")
    paths = ep.save_figures(summary, tmp_path)
    assert [p.name for p in paths] == ["erase_german_tradeoff.png", "erase_german_off_target.png",
                                       "erase_german_top16.png"]
    again = ep.save_figures(summary, tmp_path / "again")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]  # same table, same bytes


def _label_boxes(fig):
    from vpd_lite.erase.figures import POINT_LABEL, figure_renderer

    renderer = figure_renderer(fig)
    return [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes for t in ax.texts
            if t.get_gid() == POINT_LABEL]


def test_budget_labels_do_not_overlap_even_where_points_coincide():
    """The shipped erase table (its labeller's line has the 4- and 1,024-token points on each other), and lines
    whose points all lie on one spot or side by side: every budget label clear of the others, in the notebook's
    size and on a slide."""
    from vpd_lite.models import paths
    from vpd_lite.tutorial.slide_figures import to_slide

    rows = summary_rows()
    rows = rows[(rows["objective"] == "target_ce") & rows["method"].isin(["scalar_edit", "lora_r1_all"])]
    rows = rows.assign(de_after=np.where(rows["method"] == "scalar_edit", 7.8, 6.0),
                       d_en=np.where(rows["method"] == "scalar_edit", 0.03, 1.5))  # far apart: a clump each
    stacked = pd.concat([rows, rows[rows["budget"] == 4].assign(budget=1024),  # 4, 64, 1024 on one point
                         rows[rows["budget"] == 4].assign(budget=16, d_en=rows["d_en"] + 1e-3)],  # 16 beside it
                        ignore_index=True)
    for summary in (pd.read_csv(paths.results_dir() / "erase_german.csv"), stacked):
        fig = ep.tradeoff_plot(summary)
        for figure in (fig, to_slide(fig)):
            boxes = _label_boxes(figure)
            assert boxes
            clashes = [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1:]
                       if box.overlaps(other)]
            assert not clashes
        plt.close(fig)


def test_save_scan_figures(tmp_path):
    s = np.arange(-15.0, 6.0)
    curves = pd.concat([pd.DataFrame({"component": key, "s": s, "ce_de": 4.6 + np.abs(s - 1) * k,
                                      **{f"d_{lang}": np.abs(s - 1) * (k if lang == "de" else 0.001)
                                         for lang in LANGS}})
                        for key, k in (("m:1", 0.2), ("m:2", 0.05))])
    best = best_rows().assign(target="de")
    best = pd.concat([best, best.assign(target="fr")])
    table = pd.DataFrame({"erased": LANGS, "component": ["m:1"] * 5,
                          **{f"d_{lang}": [3.0 if lang == e else 0.01 for e in LANGS] for lang in LANGS}})
    paths = ep.save_scan_figures(best, curves, table, tmp_path, uniform=8.318)
    assert [p.name for p in paths] == ["edit_scan_scatter.png", "edit_scan_dose_response.png",
                                       "erase_any_language.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    assert len(ep.save_scan_figures(best, curves, None, tmp_path / "b")) == 2
    with pytest.raises(KeyError):
        ep.save_scan_figures(best, curves, None, tmp_path / "c", target="xx")


def test_heatmap_takes_the_any_language_table_and_puts_the_erased_language_on_the_diagonal():
    table = pd.DataFrame({"erased": ["fr", "de"], "component": ["a", "b"], "s": [1.0, 2.0],
                          "d_de": [0.01, 2.5], "d_fr": [1.5, 0.02]})
    fig = ep.erase_any_heatmap(table)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["+1.50", "+0.01", "+0.02", "+2.50"]  # rows fr, de; columns fr, de
    plt.close(fig)


def test_objective_plot_marks_the_fit():
    fig = ep.objective_plot([-2.0, 0.0, 1.0], {"target_ce": [1.0, 0.5, 2.0], "uniform_ce": [8.0, 7.0, 6.0]},
                            fitted={"target_ce": 0.0, "uniform_ce": 1.0}, s_range=(-2.0, 1.0))
    assert [list(t.y) for t in fig.data] == [[1.0, 0.5, 2.0], [8.0, 7.0, 6.0]]
    assert sorted(sh.x0 for sh in fig.layout.shapes if sh.type == "line") == [0.0, 1.0]
    assert "lowest point" in fig.layout.title.text


def test_dose_response_without_a_target_gives_nothing_away():
    fig = ep.dose_response_plot(curve_rows(), "m:7", target=None, mark_s=-4.0)
    assert not any(name in fig.layout.title.text for name in ep.LANG_NAMES.values())
    assert {t.line.width for t in fig.data} == {1.5}
