"""Tests of vpd_lite.tutorial.plots: the pictures show what they claim (values read back from the figures)."""

from __future__ import annotations

import pytest
import torch

from vpd_lite.interpret.statistics import StatsAccumulator
from vpd_lite.tutorial.plots import (
    NOTEBOOK_WIDTH_IN,
    component_card,
    contexts_html,
    figure_png,
    heatmap_components,
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


def test_language_heatmap_menu_title_and_rows_agree():
    acc = StatsAccumulator({"m": 2}, LANGS, threshold=0.1, top_k=2)
    for lang, n in zip(LANGS, (5, 20, 0)):
        ci = torch.zeros(1, 40, 2)
        ci[0, :n, 0] = 1.0  # comp 0: 5 English and 20 German tokens of 40
        ci[..., 1] = 1.0  # comp 1: every token
        acc.update(lang, torch.zeros(1, 40, dtype=torch.long), {"m": ci})
    stats = acc.finalize()
    fig = language_heatmap(stats, sort_by="de")
    heat = fig.data[0]
    assert list(heat.x) == LANGS
    # comp 0 (German share 0.8) is the most German-specific; comp 1 fires everywhere (share 1/3 each).
    # The y axis is reversed, so the first row is drawn on top.
    assert list(heat.y) == ["m:0", "m:1"]
    assert [list(r) for r in heat.z] == [pytest.approx([0.2, 0.8, 0.0]), pytest.approx([1 / 3] * 3)]
    assert fig.layout.yaxis.autorange == "reversed"
    menu = fig.layout.updatemenus[0]
    labels = [b.label for b in menu.buttons]
    assert labels == ["most English-specific first", "most German-specific first", "most French-specific first",
                      "most frequent first"]
    # the menu's active entry is the order shown, and the title names it
    assert labels[menu.active] == "most German-specific first"
    assert "most German-specific first" in fig.layout.title.text
    active_args = menu.buttons[menu.active].args
    assert active_args[0]["y"] == [list(heat.y)]
    # every button re-sorts the rows and retitles the figure with its own order
    for b in menu.buttons:
        assert b.method == "update" and b.label in b.args[1]["title.text"]
    english = menu.buttons[0].args[0]["y"][0]
    assert english == ["m:1", "m:0"]  # English share: comp 1 1/3, comp 0 0.2
    assert language_heatmap(stats, sort_by="frequency").layout.updatemenus[0].active == 3
    with pytest.raises(KeyError):
        language_heatmap(stats, sort_by="xx")


def test_language_heatmap_labels_every_row():
    acc = StatsAccumulator({"m": 40}, LANGS, threshold=0.1, top_k=2)
    g = torch.Generator().manual_seed(0)
    for lang in LANGS:
        acc.update(lang, torch.randint(0, 4, (2, 16), generator=g), {"m": torch.rand(2, 16, 40, generator=g)})
    stats = acc.finalize()
    fig = language_heatmap(stats, max_components=40)
    assert len(fig.data[0].y) == 40
    assert fig.layout.yaxis.tickmode == "array" and set(fig.layout.yaxis.tickvals) == set(fig.data[0].y)
    assert list(fig.layout.yaxis.ticktext) == list(fig.layout.yaxis.tickvals)
    assert fig.layout.height >= 18 * 40  # room for a readable label per row


def test_heatmap_default_rows_are_the_most_specific_not_the_most_frequent():
    """A component firing on every token of every language is not what a reader looks for first."""
    acc = StatsAccumulator({"m": 3}, LANGS, threshold=0.1, top_k=2)
    for lang in LANGS:
        ci = torch.zeros(1, 40, 3)
        ci[..., 0] = 1.0  # fires everywhere
        if lang == "de":
            ci[0, :10, 1] = 1.0  # German only, 10 tokens
        if lang == "fr":
            ci[0, :6, 2] = 1.0  # French only, 6 tokens
        acc.update(lang, torch.zeros(1, 40, dtype=torch.long), {"m": ci})
    stats = acc.finalize()
    assert heatmap_components(stats, max_components=2) == [("m", 1), ("m", 2)]
    assert list(language_heatmap(stats, sort_by="de").data[0].y)[0] == "m:1"


def test_contexts_html_shades_and_escapes():
    stats = make_stats()
    text = contexts_html(stats, ("m", 0), FakeTokenizer())
    assert "&lt;b&gt;" in text and "<b>" in text.replace("&lt;b&gt;", "")  # token text escaped, markup kept
    assert "rgba(221,132,82,0.90)" in text  # the German firing token is shaded at CI 0.9
    assert text.count("outline") == 2  # one context per block (en, de), each with its firing token boxed
    assert text.index("<b>German</b>") < text.index("<b>English</b>")  # highest CI first, language shown
    hidden = contexts_html(stats, ("m", 0), FakeTokenizer(), show_lang=False)
    assert "German" not in hidden and "English" not in hidden and hidden.count("outline") == 2
    assert "never fires" in contexts_html(stats, ("m", 2))


def test_summary_figures():
    from types import SimpleNamespace

    from vpd_lite.tutorial.plots import plot_faithfulness, plot_label_categories, plot_target_ce

    rows = [{"lang": "en", "model_ce": 3.0, "unigram_ce": 5.0, "uniform_ce": 8.3},
            {"lang": "de", "model_ce": 3.5, "unigram_ce": 5.5, "uniform_ce": 8.3}]
    ax = plot_target_ce(rows).axes[0]
    assert [p.get_height() for p in ax.patches] == [3.0, 3.5, 5.0, 5.5]
    metrics = {"ce": {"target": 3.0, "ci_rounded": 3.1, "pgd": 3.4}, "ce_gap": {"ci_rounded": 0.1, "pgd": 0.4},
               "l0_frac_of_C": {"model.layers.0.mlp.up_proj": 0.05, "model.layers.1.self_attn.q_proj": 0.02}}
    ax1, ax2 = plot_faithfulness(metrics).axes
    assert [p.get_height() for p in ax1.patches] == [3.1, 3.4]
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["L0 up_proj", "L1 q_proj"]
    cats = ["German", "all languages", "German", "mixed (German, French)", "mixed (English, Italian)"]
    ax = plot_label_categories([SimpleNamespace(category=c) for c in cats]).axes[0]
    assert sorted(p.get_width() for p in ax.patches) == [1, 2, 2]
    assert "mixed (two or more languages)" in [t.get_text() for t in ax.get_yticklabels()]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_component_card_titles_and_labels_do_not_collide():
    """The three panels' titles, tick labels and y-labels must not run into each other (read back after layout)."""
    module = "model.layers.1.self_attn.o_proj"  # a real, long module name
    acc = StatsAccumulator({module: 48}, LANGS, threshold=0.1, top_k=2)
    for lang in LANGS:
        acc.update(lang, torch.zeros(2, 30, dtype=torch.long),
                   {module: torch.rand(2, 30, 48, generator=torch.Generator().manual_seed(1))})
    stats = acc.finalize()
    fig = component_card(stats, (module, 47), {"en": 0.001, "de": 1.25, "fr": -0.02})
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # constrained layout runs at draw time
    renderer = canvas.get_renderer()
    axes = fig.axes
    assert len(axes) == 3
    titles = [ax.title.get_window_extent(renderer) for ax in axes]
    boxes = [ax.get_tightbbox(renderer) for ax in axes]  # axes + ticks + labels + title
    for i in range(3):
        for j in range(i + 1, 3):
            assert not _overlap(titles[i], titles[j]), (axes[i].get_title(), axes[j].get_title())
            assert not _overlap(boxes[i], boxes[j]), (i, j)
    assert f"{module}:47" in fig.get_suptitle() and all(module not in ax.get_title() for ax in axes)
    # JupyterLab's column beside the file browser (~840 px) shows it unscaled, so its fonts keep their size
    assert fig.get_figwidth() <= NOTEBOOK_WIDTH_IN


def test_the_toy_models_figures_fit_the_notebook_column():
    """Notebook 00's figures: no wider than the notebook column, and the training figure's legend is under the
    panels, not on a curve."""
    import matplotlib

    matplotlib.use("Agg")
    from vpd_lite.models.toy_models import plot_training

    history = [{"step": s, "stochastic_recon": 1 / s, "adversarial_recon": 2 / s, "minimality": 0.5, "l0_mean": 3.0}
               for s in range(1, 50)]
    fig = plot_training(history)
    assert fig.get_figwidth() <= NOTEBOOK_WIDTH_IN
    assert fig.legends and all(ax.get_legend() is None for ax in fig.axes)
    fig.canvas.draw()
    legend_box = fig.legends[0].get_window_extent()
    assert all(legend_box.y1 <= ax.get_window_extent().y0 for ax in fig.axes)  # below every panel


@pytest.mark.parametrize("width", [20, 37, 40, 41, 60, 80, 90])
def test_shorten_never_cuts_inside_a_number_or_word(width):
    import re

    from vpd_lite.tutorial.plots import shorten

    text = ("All languages (it 49%, en 15%, de 14%, es 13%, fr 10%); top tokens ' di', ' per', '2'; "
            "fires on 1.45% of tokens")
    out = shorten(text, width)
    assert len(out) <= width or " " not in out
    assert out.endswith("…") and text.startswith(out[:-1])
    words = text.split()
    kept = out[:-1].split()
    assert kept[:-1] == words[: len(kept) - 1] and kept[-1] == words[len(kept) - 1].rstrip(",;:")  # whole words
    numbers = set(re.findall(r"\d+(?:\.\d+)?%?", text))
    assert all(n in numbers for n in re.findall(r"\d+(?:\.\d+)?%?", out))
    assert shorten("fires on 1.5% of tokens", 80) == "fires on 1.5% of tokens"
    assert shorten("fires on 1.5% of tokens", 12) == "fires on…"


# ---- readable figures: fonts, legends outside the data, axes that show the gaps, distinct lines

def _font_sizes(fig) -> list[float]:
    """Every tick label, axis label, title and legend text of a matplotlib figure (visible, non-empty)."""
    texts = list(fig.legends and [t for lg in fig.legends for t in lg.get_texts()] or [])
    for ax in fig.axes:
        texts += ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.yaxis.label, ax.title]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
    return [t.get_fontsize() for t in texts if t.get_visible() and t.get_text()]


def _legend_outside_axes(fig, legend, ax) -> bool:
    fig.canvas.draw()
    box, area = legend.get_window_extent(), ax.get_window_extent()
    return box.x0 >= area.x1 - 1 or box.y1 <= area.y0 + 1 or box.y0 >= area.y1 - 1


METRICS = {
    "ce": {"target": 4.72, "ci_rounded": 4.86, "ci": 4.86, "stochastic": 4.79, "pgd": 5.09, "all_ones": 4.72},
    "ce_gap": {"ci_rounded": 0.14, "ci": 0.14, "stochastic": 0.07, "pgd": 0.36, "all_ones": 0.0},
    "kl": {"ci_rounded": 0.18, "ci": 0.19, "stochastic": 0.10, "pgd": 0.41, "all_ones": 0.0},
    "l0_frac_of_C": {f"model.layers.{i}.self_attn.q_proj": 0.05 for i in (0, 1)},
    "l0": {f"model.layers.{i}.self_attn.q_proj": 6.1 for i in (0, 1)},
    "C": {f"model.layers.{i}.self_attn.q_proj": 128 for i in (0, 1)},
    "dead": {f"model.layers.{i}.self_attn.q_proj": 54 for i in (0, 1)},
    "faithfulness_residual": {f"model.layers.{i}.self_attn.q_proj": 3e-7 for i in (0, 1)},
}


def test_faithfulness_figure_is_readable_and_shows_the_gap():
    from vpd_lite.tutorial.plots import plot_faithfulness

    fig = plot_faithfulness(METRICS)
    assert min(_font_sizes(fig)) >= 11
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert 4.5 < lo < 4.72 and hi > 5.09  # the axis starts near the data: a 0.36-nat gap is a third of it
    assert (5.09 - 4.72) / (hi - lo) > 0.3
    labels = [t.get_text() for t in ax.texts]
    assert "+0.36" in labels and "+0.07" in labels  # each bar says its gap to the target
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert _legend_outside_axes(fig, fig.legends[0], fig.axes[0])
    assert fig.get_figwidth() * 100 <= 1000  # fits JupyterLab's column without being scaled down


def test_faithfulness_bar_labels_do_not_run_into_each_other():
    """Six masks (the notebook's: all_ones_delta too) with near-equal gaps side by side: each label stays apart."""
    from vpd_lite.tutorial.plots import plot_faithfulness

    metrics = {**METRICS, "ce": {**METRICS["ce"], "all_ones_delta": 4.72},
               "ce_gap": {"ci_rounded": 0.1343, "ci": 0.1356, "stochastic": 0.0692, "pgd": 0.3634,
                          "all_ones": 0.0001, "all_ones_delta": 0.0}}
    fig = plot_faithfulness(metrics)
    fig.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in fig.axes[0].texts), key=lambda b: b.x0)
    assert len(boxes) == 6
    assert all(a.x1 + 2 <= b.x0 for a, b in zip(boxes, boxes[1:])), [(b.x0, b.x1) for b in boxes]


def test_target_ce_legend_sits_beside_the_bars():
    from vpd_lite.tutorial.plots import plot_target_ce

    rows = [{"lang": lang, "model_ce": 4.7, "unigram_ce": 6.5, "uniform_ce": 8.3} for lang in
            ("en", "de", "fr", "es", "it")]
    fig = plot_target_ce(rows)
    ax = fig.axes[0]
    assert _legend_outside_axes(fig, ax.get_legend(), ax)  # not over the last language's bars
    assert min(t.get_fontsize() for t in ax.get_legend().get_texts()) >= 10
    assert fig.get_figwidth() * 100 <= 850  # JupyterLab's column beside the file browser: drawn unscaled


def test_loss_curve_legend_sits_outside_the_curves():
    fig = plot_loss_curves([{"step": s, "a": 1.0 / (s + 1), "b": 0.5} for s in range(5)])
    assert _legend_outside_axes(fig, fig.axes[0].get_legend(), fig.axes[0])
    assert min(_font_sizes(fig)) >= 11


def test_firing_frequency_lines_are_distinct_and_the_legend_is_outside():
    from vpd_lite.interpret.statistics import ComponentStats  # noqa: F401  (type of make_stats' result)

    modules = [f"model.layers.{i}.{kind}" for i in (0, 1) for kind in
               ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                "mlp.up_proj", "mlp.down_proj")]
    acc = StatsAccumulator({m: 3 for m in modules}, ["en"], threshold=0.1, top_k=1, context_left=1,
                           context_right=1, n_bins=4)
    acc.update("en", torch.zeros(1, 4, dtype=torch.long), {m: torch.rand(1, 4, 3) for m in modules})
    fig = plot_firing_frequency(acc.finalize())
    ax = fig.axes[0]
    styles = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines()]
    assert len(styles) == 14 and len(set(styles)) == 14
    assert len({c for c, _ in styles}) == 7  # one colour per kind of matrix, the line style gives the layer
    assert _legend_outside_axes(fig, ax.get_legend(), ax)
    assert min(_font_sizes(fig)) >= 11
    assert "L1 v_proj" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_heatmap_menu_sits_below_the_title_and_marks_the_highlighted_row():
    from vpd_lite.tutorial.plots import HEATMAP_TITLE_PX, heatmap_layout

    stats = make_stats()
    fig = language_heatmap(stats, components=[("m", 1)], highlight={"m:0": "edited in notebook 04"})
    lay = fig.layout
    menu = lay.updatemenus[0]
    plot_h = lay.height - lay.margin.t - lay.margin.b
    menu_top_px = lay.margin.t - (menu.y - 1) * plot_h  # pixels from the top of the figure
    assert menu.yanchor == "top" and menu_top_px >= HEATMAP_TITLE_PX  # under the title's two lines
    assert menu_top_px + 35 <= lay.margin.t - 40  # and above the language axis labels
    # near the top, but low enough that the first line's letters are not cut off (the browser test measures it)
    assert lay.title.yref == "container" and 15 <= (1 - lay.title.y) * lay.height <= 25
    assert "m:0" in fig.data[0].y  # the highlighted component is added to the rows ...
    ticktext = dict(zip(lay.yaxis.tickvals, lay.yaxis.ticktext))
    assert "edited in notebook 04" in ticktext["m:0"] and ticktext["m:1"] == "m:1"  # ... and marked
    for n in (1, 40, 200):
        lay_n = heatmap_layout(n)
        assert lay_n["height"] >= 18 * n + lay_n["top"]


# ---- reports as tables, sentences from the same numbers as the figures

def test_metrics_tables():
    from vpd_lite.tutorial.plots import faithfulness_table, sparsity_table

    t = faithfulness_table(METRICS)
    assert list(t.index)[:2] == ["target", "ci_rounded"]
    assert t.loc["pgd", "CE − target"] == pytest.approx(0.37) and t.loc["pgd", "KL to target"] == 0.41
    s = sparsity_table(METRICS)
    assert list(s.index) == ["L0 q_proj", "L1 q_proj"] and s.loc["L0 q_proj", "dead"] == 54


def test_training_trends_agree_with_the_curve_in_both_directions():
    from vpd_lite.tutorial.plots import training_trends, trend_sentence

    rising = [{"step": 1, "m": 0.22, "r": 7e-3}, {"step": 300, "m": 0.87, "r": 5e-4}, {"step": 400, "m": 0.83, "r": 4e-4}]
    t = training_trends(rising, {"m": "importance minimality", "r": "reconstruction"})
    assert t.loc["reconstruction", "trend"] == "fell"
    assert t.loc["importance minimality", "trend"] == "rose"  # 0.87 -> 0.83 is within 5 %
    text = trend_sentence(t)
    assert "*importance minimality* rose from 0.22 to 0.83" in text and "*reconstruction* fell" in text
    peaked = rising + [{"step": 4000, "m": 0.36, "r": 1e-4}]
    t = training_trends(peaked, {"m": "importance minimality"})
    assert t.loc["importance minimality", "trend"] == "rose, then fell"
    assert "rose from 0.22 to 0.87 (step 300), then fell to 0.36" in trend_sentence(t)
    assert training_trends([{"step": 1, "m": 1.0}, {"step": 2, "m": 1.01}], {"m": "x"}).loc["x", "trend"] == "flat"


def test_feature_match_table_has_one_row_per_live_component():
    from vpd_lite.tutorial.plots import feature_match_table

    report = {"linear1": {"live": 2, "dead": 8, "live_components": [3, 7], "best_feature": [0, 4],
                          "best_cos": [0.98, 0.99]}}
    t = feature_match_table(report)
    assert list(t.index) == [("linear1", "c3"), ("linear1", "c7")]
    assert t.loc[("linear1", "c7"), "best-matching feature"] == 4 and t["dead in matrix"].iloc[0] == 8


def test_fires_vs_removal_table_and_sentence_use_the_measured_numbers():
    from vpd_lite.tutorial.plots import fires_vs_removal_sentence, fires_vs_removal_table

    stats = make_stats()
    effects = {("m", 0): {"en": 0.001, "de": 0.036, "fr": -0.002}}
    t = fires_vs_removal_table(stats, effects, "de")
    rate = stats.firing_rate("m")[:, 0]
    assert t.loc["m:0", "share of its firing on German"] == pytest.approx(float(rate[1] / rate.sum()))
    assert t.loc["m:0", "ΔCE German when removed"] == 0.036 and t.loc["m:0", "largest ΔCE elsewhere"] == 0.001
    text = fires_vs_removal_sentence(t, "de")
    assert "+0.036 nats/token" in text and f"{float(rate[1] / rate.sum()):.0%} of its firing on German" in text
    # a removal that changes next to nothing prints as zero, never as a negative zero
    quiet = fires_vs_removal_table(stats, {("m", 0): {"en": -0.0001, "de": -0.0002, "fr": -0.0003}}, "de")
    said = fires_vs_removal_sentence(quiet, "de")
    assert "changes German CE by +0.000 nats/token" in said and "-0.000" not in said, said
