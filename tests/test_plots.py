"""Tests of vpd_lite.plots: the pictures show what they claim (values read back from the figures)."""

from __future__ import annotations

import pytest
import torch

from vpd_lite.analysis import StatsAccumulator
from vpd_lite.plots import (
    component_card,
    contexts_html,
    figure_png,
    language_heatmap,
    mask_picture,
    plot_ablation_effect,
    plot_ci_histogram,
    plot_firing_frequency,
    plot_loss_curves,
    rank1_picture,
)

LANGS = ["en", "de", "fr"]


class FakeTokenizer:
    def decode(self, ids):
        return "".join({0: " the", 1: " der", 2: " <b>", 3: " le"}[i] for i in ids)


def make_stats():
    """Module "m", 3 components: 0 German-heavy, 1 everywhere, 2 dead. Token 2 decodes to HTML-like text."""
    acc = StatsAccumulator({"m": 3}, LANGS, threshold=0.1, top_k=3, context_left=2, context_right=1, n_bins=4)
    for li, lang in enumerate(LANGS):
        ids = torch.tensor([[li + 1 if lang != "en" else 0, 2, li + 1 if lang != "en" else 0, 2]])
        ci = torch.zeros(1, 4, 3)
        ci[0, 1, 0] = {"en": 0.2, "de": 0.9, "fr": 0.0}[lang]
        ci[0, 2, 0] = 0.6 if lang == "de" else 0.0
        ci[0, :, 1] = 0.5
        acc.update(lang, ids, {"m": ci})
    return acc.finalize()


def test_figure_png_is_png():
    assert figure_png(rank1_picture()).startswith(b"\x89PNG")


def test_rank1_picture_last_panel_is_the_sum():
    fig = rank1_picture(d_out=4, d_in=5, n_components=3, seed=1)
    arrays = [torch.as_tensor(ax.images[0].get_array()) for ax in fig.axes]
    assert arrays[-1].shape == (4, 5)
    assert torch.allclose(arrays[-1].double(), sum(a.double() for a in arrays[:-1]), atol=1e-5)


def test_mask_picture_bars_follow_the_formulas():
    g, u, s = [1.0, 0.0, 0.5], [0.3, 0.3, 0.2], [0.0, 1.0, 0.0]
    ax = mask_picture(g, u, s).axes[0]
    heights = [[p.get_height() for p in cont] for cont in ax.containers]
    assert heights[0] == pytest.approx(g)
    assert heights[1] == pytest.approx([1.0, 0.3, 0.6])
    assert heights[2] == pytest.approx([1.0, 1.0, 0.5])
    with pytest.raises(ValueError):
        mask_picture([0.1], [0.2, 0.3], [0.1])


def test_plot_loss_curves():
    hist = [{"step": i, "loss": 1.0 / (i + 1), "faith": 0.1, "lr": 1e-3} for i in range(5)]
    ax = plot_loss_curves(hist).axes[0]
    assert sorted(line.get_label() for line in ax.lines) == ["faith", "loss"]
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        plot_loss_curves([])


def test_ci_histogram_and_ablation_bars():
    stats = make_stats()
    ax = plot_ci_histogram(stats, ("m", 0)).axes[0]
    # CI of comp 0 over 12 tokens: 0.2 (bin 0 of 4), 0.9 (bin 3), 0.6 (bin 2), nine zeros
    assert [p.get_height() for p in ax.patches] == [10, 0, 1, 1]
    ax = plot_ablation_effect({"en": 0.01, "de": 0.5}).axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.01, 0.5])
    assert "nats/token" in ax.get_ylabel()
    assert len(component_card(stats, ("m", 0), {"en": 0.0, "de": 1.0, "fr": 0.0}).axes) == 3
    assert len(plot_firing_frequency(stats).axes[0].lines) == 1


def test_language_heatmap_sorting_buttons():
    stats = make_stats()
    fig = language_heatmap(stats, sort_by="de")
    heat = fig.data[0]
    assert list(heat.x) == LANGS
    # live components: 0 (rates en 1/4, de 2/4, fr 0) and 1 (4/4 everywhere); top row = highest German rate
    assert list(heat.y) == ["m:0", "m:1"]
    assert [list(r) for r in heat.z] == [[0.25, 0.5, 0.0], [1.0, 1.0, 1.0]]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["sort by en", "sort by de", "sort by fr", "sort by frequency"]
    assert buttons[0].args[0]["y"] == [["m:0", "m:1"]]
    only_one = language_heatmap(stats, sort_by="de", max_components=1)
    assert list(only_one.data[0].y) == ["m:1"]  # the component firing most on German
    with pytest.raises(KeyError):
        language_heatmap(stats, sort_by="xx")


def test_contexts_html_shades_and_escapes():
    stats = make_stats()
    text = contexts_html(stats, ("m", 0), FakeTokenizer())
    assert "&lt;b&gt;" in text and "<b>" in text.replace("&lt;b&gt;", "")  # token text escaped, markup kept
    assert "rgba(221,132,82,0.90)" in text  # the German firing token is shaded at CI 0.9
    assert text.count("outline") == 3  # one boxed firing token per context
    assert text.index("<b>de</b>") < text.index("<b>en</b>")  # highest CI first
    assert "never fires" in contexts_html(stats, ("m", 2))


def test_summary_figures():
    from types import SimpleNamespace

    from vpd_lite.plots import plot_faithfulness, plot_label_categories, plot_target_ce

    rows = [{"lang": "en", "model_ce": 3.0, "unigram_ce": 5.0, "uniform_ce": 8.3},
            {"lang": "de", "model_ce": 3.5, "unigram_ce": 5.5, "uniform_ce": 8.3}]
    ax = plot_target_ce(rows).axes[0]
    assert [p.get_height() for p in ax.patches] == [3.0, 3.5, 5.0, 5.5]
    metrics = {"ce": {"target": 3.0, "ci_rounded": 3.1, "pgd": 3.4}, "ce_gap": {"ci_rounded": 0.1, "pgd": 0.4},
               "l0_frac_of_C": {"model.layers.0.mlp.up_proj": 0.05, "model.layers.1.self_attn.q_proj": 0.02}}
    ax1, ax2 = plot_faithfulness(metrics).axes
    assert [p.get_height() for p in ax1.patches] == [3.1, 3.4]
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["L0.up_proj", "L1.q_proj"]
    cats = ["German", "all languages", "German", "mixed (German, French)", "mixed (English, Italian)"]
    ax = plot_label_categories([SimpleNamespace(category=c) for c in cats]).axes[0]
    assert sorted(p.get_width() for p in ax.patches) == [1, 2, 2]
    assert "mixed (two or more languages)" in [t.get_text() for t in ax.get_yticklabels()]
