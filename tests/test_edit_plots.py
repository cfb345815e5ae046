"""Figures of the edit scan, the dose-response, the erase-any-language table: they draw the data they are given,
say what to look for, and PNGs are byte-for-byte reproducible."""

import numpy as np
import pandas as pd
import pytest

from vpd_lite import edit_plots as ep

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
    ep.plt.close(mpl)


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
    ep.plt.close(fig)


def test_png_bytes_are_reproducible(tmp_path):
    table = pd.DataFrame(np.eye(3), index=["de", "en", "fr"], columns=["de", "en", "fr"])
    a = ep.save_png(ep.erase_any_heatmap(table), tmp_path / "a.png").read_bytes()
    b = ep.png_bytes(ep.erase_any_heatmap(table))
    assert a == b and a[:4] == b"\x89PNG"
