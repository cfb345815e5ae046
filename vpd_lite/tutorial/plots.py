"""Figures and HTML views of the tutorial: explanatory pictures, loss curves, component statistics.

Matplotlib figures are built with ``matplotlib.figure.Figure`` (not pyplot), so they never pile up in a global
figure list and display exactly once when a notebook cell returns them. Every figure has a title that says what to
look at and axes with units. The interactive components x languages heatmap is a plotly figure.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from vpd_lite.erase.figures import NOTEBOOK_WIDTH_IN  # noqa: F401  (named here for the tutorial's figures)
from vpd_lite.erase.protocol import format_number
from vpd_lite.interpret.contexts import contexts_html  # noqa: F401  (one definition, shared with the atlas)
from vpd_lite.interpret.ids import ComponentId, component_key, parse_component_id
from vpd_lite.interpret.statistics import (
    ComponentStats,
    language_specificity,
    live_components,
    specificity_scores,
)
from vpd_lite.method.masks import mask_from_sources
from vpd_lite.models.corpus import LANG_COLOURS, lang_name  # noqa: F401  (LANG_COLOURS: named here for the notebooks)

FONT = 11  # smallest font of every figure: readable when JupyterLab scales a figure to its ~900 px column


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib figure (for ipywidgets.Image and headless use)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


# ------------------------------------------------------------------------------------ explanatory pictures
def rank1_picture(d_out: int = 6, d_in: int = 8, n_components: int = 3, seed: int = 0) -> Figure:
    """A small weight matrix drawn as the sum of its rank-1 components ``U_c V_cᵀ`` (one panel each, then W)."""
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(n_components, d_out, generator=g)  # (C, d_out) write directions
    V = torch.randn(d_in, n_components, generator=g)  # (d_in, C) read directions
    parts = [torch.outer(U[c], V[:, c]) for c in range(n_components)]  # each (d_out, d_in)
    W = sum(parts)
    vmax = float(max(p.abs().max() for p in parts + [W]))
    fig = Figure(figsize=(2.2 * (n_components + 1), 2.4))
    axes = fig.subplots(1, n_components + 1)
    for c, (ax, mat) in enumerate(zip(axes, parts + [W])):
        ax.imshow(mat.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"U{c + 1} V{c + 1}ᵀ" + ("  +" if c < n_components - 1 else "  =") if c < n_components else "W")
        ax.set_xlabel(f"input dim ({d_in})" if c == 0 else "")
        if c == 0:
            ax.set_ylabel(f"output dim ({d_out})")
    fig.suptitle("A weight matrix is a sum of rank-1 components (outer product of a write and a read direction)")
    return fig


def mask_picture(ci: Sequence[float], uniform: Sequence[float], adversarial: Sequence[float]) -> Figure:
    """Causal importance g, a stochastic mask ``g + (1-g)u`` and an adversarial mask ``g + (1-g)s`` per component.

    ci, uniform, adversarial: length-C sequences in [0, 1] (u random, s chosen by PGD to hurt the output most).
    """

    g, u, s = (torch.as_tensor(x, dtype=torch.float32) for x in (ci, uniform, adversarial))
    if not g.shape == u.shape == s.shape:
        raise ValueError(f"ci, uniform and adversarial must have the same length, got {g.shape}, {u.shape}, {s.shape}")
    x = torch.arange(g.numel()).double().numpy()
    fig = Figure(figsize=(8, 3.4))
    ax = fig.subplots()
    w = 0.27
    ax.bar(x - w, g.numpy(), w, label="causal importance g", color="#333333")
    ax.bar(x, mask_from_sources(g, u).numpy(), w, label="stochastic mask g+(1-g)u", color="#4c72b0")
    ax.bar(x + w, mask_from_sources(g, s).numpy(), w, label="adversarial mask g+(1-g)s", color="#c44e52")
    ax.set_xticks(x.tolist(), [f"c{i}" for i in range(g.numel())])
    ax.set_xlabel("component")
    ax.set_ylabel("mask value (0 = ablated, 1 = kept)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=3)
    ax.set_title("Components with CI 1 are always kept; the others are ablated at random, or adversarially",
                 fontsize=10)
    return fig


def plot_loss_curves(history: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> Figure:
    """Training curves of a decomposition: each loss term against the step (log scale).

    history: list of dicts with a ``"step"`` entry and numeric terms; ``keys`` defaults to every numeric key
    except ``step``/``lr``/``time``-like bookkeeping. The legend sits outside the axes, right of the curves.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    skip = {"step", "lr", "time", "time_s", "elapsed_s", "p"}
    if keys is None:
        keys = [k for k, v in history[-1].items() if k not in skip and isinstance(v, (int, float))]
    steps = [h.get("step", i) for i, h in enumerate(history)]
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 3.6), layout="constrained")
    ax = fig.subplots()
    for k in keys:
        pts = [(s, float(h[k])) for s, h in zip(steps, history) if k in h and h[k] is not None and float(h[k]) > 0]
        if pts:
            ax.plot(*zip(*pts), label=k)
    ax.set_yscale("log")
    ax.set_xlabel("training step", fontsize=FONT)
    ax.set_ylabel("loss (log scale;\nKL terms in nats/token)", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.set_title("Loss terms of the decomposition per training step (log scale)", fontsize=FONT + 1)
    ax.legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def training_trends(history: Sequence[Mapping[str, Any]], keys: Mapping[str, str]) -> pd.DataFrame:
    """How each logged curve of a training ``history`` moved: one row per ``keys`` entry ({history key: name
    shown}) with its value at the first logged step, at its turning point (the highest or lowest value, when that
    lies between the first and last step) and at the last step, and the trend in words: "fell", "rose", "rose,
    then fell", "fell, then rose" or "flat" (changes within 5 % count as flat). The same numbers the loss-curve
    figures draw, so a sentence built from this table agrees with the figure in every mode."""
    rows = []
    for key, name in keys.items():
        pts = [(h["step"], float(h[key])) for h in history if h.get(key) is not None and "step" in h]
        if not pts:
            continue
        (s0, v0), (s1, v1) = pts[0], pts[-1]
        hi = max(pts, key=lambda p: p[1])
        lo = min(pts, key=lambda p: p[1])

        def moved(a: float, b: float) -> bool:  # b differs from a by more than 5 %
            return abs(b - a) > 0.05 * max(abs(a), abs(b), 1e-30)

        turn = None
        if moved(v0, hi[1]) and moved(v1, hi[1]) and hi[1] > max(v0, v1):
            turn, trend = hi, "rose, then fell"
        elif moved(v0, lo[1]) and moved(v1, lo[1]) and lo[1] < min(v0, v1):
            turn, trend = lo, "fell, then rose"
        else:
            trend = "flat" if not moved(v0, v1) else ("fell" if v1 < v0 else "rose")
        rows.append({"curve": name, "first step": s0, "first value": v0,
                     "turning step": turn[0] if turn else None, "turning value": turn[1] if turn else None,
                     "last step": s1, "last value": v1, "trend": trend})
    return pd.DataFrame(rows).set_index("curve")


def trend_sentence(trends: pd.DataFrame) -> str:
    """One sentence (Markdown) from :func:`training_trends`: "In this run, between step a and step b: *X* fell
    from .. to ..; *Y* rose from .. to .. (step ..), then fell to ..."."""
    if trends.empty:
        return "This run logged no curve to describe."

    def part(name: str, r: Mapping[str, Any]) -> str:
        if r["trend"] == "flat":
            return f"*{name}* stayed at about {r['last value']:.3g}"
        if r["turning step"] is None or pd.isna(r["turning step"]):
            return f"*{name}* {r['trend']} from {r['first value']:.3g} to {r['last value']:.3g}"
        first, then = r["trend"].split(", then ")
        return (f"*{name}* {first} from {r['first value']:.3g} to {r['turning value']:.3g} (step "
                f"{int(r['turning step'])}), then {then} to {r['last value']:.3g}")

    first, last = int(trends["first step"].min()), int(trends["last step"].max())
    return (f"**In this run**, between step {first} and step {last}: "
            + "; ".join(part(n, r) for n, r in trends.iterrows()) + ".")


# ------------------------------------------------------------------------------------ component statistics
MATRIX_COLOURS = {"q_proj": "#4c72b0", "k_proj": "#dd8452", "v_proj": "#55a868", "o_proj": "#c44e52",
                  "gate_proj": "#8172b3", "up_proj": "#937860", "down_proj": "#222222"}
LAYER_STYLES = ("-", "--", ":", "-.")


def short_matrix_name(module: str) -> str:
    """"model.layers.1.self_attn.v_proj" -> "L1 v_proj" (names without a layer number come back unchanged)."""
    parts = module.split(".")
    layer = next((p for p in parts if p.isdigit()), None)
    return module if layer is None else f"L{layer} {parts[-1]}"


def plot_firing_frequency(stats: ComponentStats, modules: Sequence[str] | None = None) -> Figure:
    """Per matrix, every component's firing frequency sorted high -> low (log scale); dead ones are not drawn.

    Colour = the matrix's kind (q, k, v, o, gate, up, down), line style = its layer, so every line has its own
    (colour, style) pair; the legend sits outside the axes, right of the lines, with short names ("L1 v_proj")."""
    modules = list(modules or stats.modules)
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 4.2), layout="constrained")
    ax = fig.subplots()
    fallback = iter(["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#9edae5", "#ff9896"] * 4)
    for m in modules:
        f = stats.firing_frequency(m).sort(descending=True).values
        f = f[f > 0]
        if f.numel():
            layer = next((int(p) for p in m.split(".") if p.isdigit()), 0)
            colour = MATRIX_COLOURS.get(m.split(".")[-1]) or next(fallback)
            ax.plot(range(1, f.numel() + 1), f.numpy(), label=short_matrix_name(m), lw=1.5, color=colour,
                    ls=LAYER_STYLES[layer % len(LAYER_STYLES)])
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.tick_params(labelsize=FONT)
    ax.set_xlabel("component rank within its matrix (log scale)", fontsize=FONT)
    ax.set_ylabel("firing frequency\n(fraction of tokens, log scale)", fontsize=FONT)
    ax.set_title(f"Few components fire often, most fire rarely (CI > {stats.threshold:g})", fontsize=FONT + 1)
    ax.legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
              ncols=2 if len(modules) > 8 else 1, title="matrix (colour: kind,\nline: layer)",
              title_fontsize=FONT)
    return fig


def plot_ci_histogram(stats: ComponentStats, cid: ComponentId, ax=None, title: str | None = None) -> Figure:
    """Histogram of one component's CI over all harvested tokens (log count scale)."""
    module, c = parse_component_id(cid)
    hist = stats.ci_hist[module][c]
    n = hist.numel()
    fig = ax.figure if ax is not None else Figure(figsize=(4, 3))
    ax = ax if ax is not None else fig.subplots()
    edges = torch.linspace(0, 1, n + 1)
    ax.bar(edges[:-1].numpy(), hist.numpy(), width=1 / n, align="edge", color="#555555", log=True)
    ax.axvline(stats.threshold, color="#c44e52", ls="--", lw=1, label=f"firing threshold {stats.threshold:g}")
    ax.set_xlabel("causal importance")
    ax.set_ylabel("tokens (log scale)")
    ax.set_title(title or f"CI of {component_key((module, c))}: mostly 0, a tail where it is needed", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_language_rates(stats: ComponentStats, cid: ComponentId, ax=None, title: str | None = None) -> Figure:
    """Firing rate of one component on each language (fraction of that language's tokens)."""
    module, c = parse_component_id(cid)
    rate = stats.firing_rate(module)[:, c]
    fig = ax.figure if ax is not None else Figure(figsize=(4, 3))
    ax = ax if ax is not None else fig.subplots()
    ax.bar(stats.langs, rate.numpy(), color=[LANG_COLOURS.get(lang, "#777777") for lang in stats.langs])
    ax.set_xlabel("language")
    ax.set_ylabel("firing rate (fraction of tokens)")
    ax.set_title(title or f"Which languages does {component_key((module, c))} fire on?", fontsize=9)
    return fig


def plot_ablation_effect(effects: Mapping[str, float], title: str | None = None, ax=None) -> Figure:
    """Bar chart of the held-out CE change per language when a component is removed (nats/token)."""
    langs = list(effects)
    fig = ax.figure if ax is not None else Figure(figsize=(4, 3))
    ax = ax if ax is not None else fig.subplots()
    ax.bar(langs, [effects[lang] for lang in langs], color=[LANG_COLOURS.get(lang, "#777777") for lang in langs])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("language (held-out text)")
    ax.set_ylabel("ΔCE when removed (nats/token)")
    ax.set_title(title or "Change in held-out CE per language when the component is removed", fontsize=9)
    return fig


def heatmap_components(stats: ComponentStats, max_components: int = 60) -> list[ComponentId]:
    """The rows the language heatmap shows by default: the most language-specific live components, taken in turn
    from each language's ranking (:func:`~vpd_lite.interpret.statistics.language_specificity`, which ignores components too
    rare to judge; only components with more than a fair 1/L share on that language), then, if rows are left, the most frequent remaining ones."""

    live = set(live_components(stats))
    fair = 1.0 / len(stats.langs)  # a component enters a language's ranking only if it prefers that language
    rankings = [[cid for cid, score in language_specificity(stats, lang) if score > fair and cid in live]
                for lang in stats.langs]
    chosen: list[ComponentId] = []
    for rank in range(max(map(len, rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking) and ranking[rank] not in chosen and len(chosen) < max_components:
                chosen.append(ranking[rank])
    rest = sorted(live - set(chosen), key=lambda cid: (-float(stats.firing_frequency(cid[0])[cid[1]]), cid))
    return chosen + rest[: max(0, max_components - len(chosen))]


def sort_label(key: str) -> str:
    """Text of a heatmap sort order: a language code -> "most German-specific first"; "frequency" -> "most frequent first"."""

    return "most frequent first" if key == "frequency" else f"most {lang_name(key)}-specific first"


def heatmap_title(key: str) -> str:
    """The heatmap's title for a sort order (it changes with the menu)."""
    return f"Share of each component's firing per language: look for rows lit in one column only<br>" \
           f"<sup>rows sorted: {sort_label(key)}</sup>"


HEATMAP_TITLE_PX = 60  # the title's two lines, from the top of the figure
HEATMAP_TITLE_TOP_PX = 18  # the title's anchor below the figure's top edge: plotly draws a two-line title's
# first line ~10 px above its anchor, so an anchor at 8 px cut the tops of its letters off
HEATMAP_MENU_PX = 70  # the sort menu's top edge, from the top of the figure (below the title)


def heatmap_layout(n_rows: int) -> dict[str, float]:
    """Pixel layout of the language heatmap with ``n_rows`` rows: ``height``, ``top`` and ``bottom`` margins (px),
    ``title_y`` (container fraction of the title's top edge) and ``menu_y`` (paper fraction of the menu's top
    edge, i.e. measured from the bottom of the rows in units of their height), so that the menu sits
    ``HEATMAP_MENU_PX`` below the figure's top, under the title and above the language axis."""
    top, bottom = 170, 30
    height = max(380, 18 * n_rows + top + bottom)
    plot_h = height - top - bottom
    return {"height": height, "top": top, "bottom": bottom, "title_y": 1 - HEATMAP_TITLE_TOP_PX / height,
            "menu_y": 1 + (top - HEATMAP_MENU_PX) / plot_h}


def language_heatmap(
    stats: ComponentStats,
    components: Sequence[ComponentId] | None = None,
    sort_by: str = "de",
    max_components: int = 60,
    highlight: Mapping[ComponentId | str, str] | None = None,
):
    """Interactive plotly heatmap: components (rows) x languages (columns), colour = the language's share of the
    component's firing rate (each row sums to 1; the rate itself is in the hover text).

    The menu re-sorts the rows by specificity to any language (:func:`~vpd_lite.interpret.statistics.specificity_scores`,
    ties by that language's firing rate) or by overall frequency; the menu's active entry and the title always
    name the order shown. ``components`` defaults to :func:`heatmap_components`. Every row is labelled.
    ``highlight`` ({component: note}) adds those components to the rows if missing and marks their row labels
    in bold with the note ("◀ edited in notebook 04").

    Layout, top to bottom: the title, the sort menu (top left, below the title), the language axis, the rows;
    the menu's position is computed in pixels, so it never covers the title whatever the number of rows.
    """
    import plotly.graph_objects as go

    if sort_by not in stats.langs and sort_by != "frequency":
        raise KeyError(f"sort_by {sort_by!r} is not a harvested language {stats.langs} or 'frequency'")
    cids = [parse_component_id(c) for c in (components if components is not None
                                            else heatmap_components(stats, max_components))]
    marks = {parse_component_id(c): note for c, note in (highlight or {}).items()}
    cids += [c for c in marks if c not in cids]
    L = len(stats.langs)
    rates = torch.stack([stats.firing_rate(m)[:, c] for m, c in cids]) if cids else torch.zeros(0, L)  # (N, L)
    spec = torch.stack([specificity_scores(stats, m)[:, c] for m, c in cids]) if cids else torch.zeros(0, L)
    total = rates.sum(1, keepdim=True)
    share = torch.where(total > 0, rates / total.clamp(min=1e-30), torch.zeros_like(rates))  # (N, L)
    freq = [float(stats.firing_frequency(m)[c]) for m, c in cids]
    names = [component_key(c) for c in cids]

    def order(key: str) -> list[int]:
        if key == "frequency":
            return sorted(range(len(cids)), key=lambda i: (-freq[i], names[i]))
        li = stats.langs.index(key)
        return sorted(range(len(cids)), key=lambda i: (-float(spec[i, li]), -float(rates[i, li]), names[i]))

    def columns(idx: list[int]) -> dict[str, list]:
        return {"z": [share[idx].tolist()], "y": [[names[i] for i in idx]],
                "customdata": [rates[idx].unsqueeze(-1).tolist()]}

    keys = list(stats.langs) + ["frequency"]
    start = columns(order(sort_by))
    fig = go.Figure(go.Heatmap(
        z=start["z"][0], x=list(stats.langs), y=start["y"][0], customdata=start["customdata"][0],
        colorscale="Viridis", zmin=0, zmax=1,
        colorbar={"title": "share of its<br>firing rate"},
        hovertemplate="%{y}<br>%{x}: %{z:.0%} of its firing; fires on %{customdata[0]:.2%} of %{x} tokens"
                      "<extra></extra>",
    ))
    buttons = [{"label": sort_label(k), "method": "update",
                "args": [columns(order(k)), {"title.text": heatmap_title(k)}]} for k in keys]
    ticktext = [f"<b>{n} ◀ {marks[c]}</b>" if c in marks else n for c, n in zip(cids, names)]
    layout = heatmap_layout(len(names))
    fig.update_layout(
        title={"text": heatmap_title(sort_by), "x": 0.0, "xanchor": "left", "xref": "container",
               "y": layout["title_y"], "yanchor": "top", "yref": "container", "pad": {"l": 10}},
        xaxis={"title": "language", "side": "top", "tickfont": {"size": 12}},
        yaxis={"title": "component (matrix:index)", "autorange": "reversed", "tickmode": "array",
               "tickvals": names, "ticktext": ticktext, "tickfont": {"size": 11}, "automargin": True},
        font={"size": 12}, height=layout["height"], margin={"t": layout["top"], "b": layout["bottom"]},
        updatemenus=[{"buttons": buttons, "active": keys.index(sort_by), "direction": "down",
                      "x": 0.0, "xanchor": "left", "y": layout["menu_y"], "yanchor": "top", "pad": {"t": 0}}],
    )
    return fig


def component_card(stats: ComponentStats, cid: ComponentId, effects: Mapping[str, float] | None = None) -> Figure:
    """Three panels for one component: firing rate per language, CI histogram, ablation ΔCE per language.

    The component is named once, in the figure's title; the panels get short titles so they never run into
    each other, and constrained layout keeps each y-label clear of the panel to its left."""
    module, c = parse_component_id(cid)
    n = 3 if effects is not None else 2
    # at most NOTEBOOK_WIDTH_IN wide: JupyterLab's column (about 840 px beside the file browser) shows it unscaled
    fig = Figure(figsize=(min(NOTEBOOK_WIDTH_IN, 4.0 * n), 3.4), layout="constrained")
    axes = fig.subplots(1, n)
    plot_language_rates(stats, cid, ax=axes[0], title="Firing rate per language")
    plot_ci_histogram(stats, cid, ax=axes[1], title="CI over all tokens")
    if effects is not None:
        plot_ablation_effect(effects, ax=axes[2], title="ΔCE when removed")
    fig.suptitle(f"Component {component_key((module, c))}", fontsize=12)
    return fig


def shorten(text: str, width: int = 80) -> str:
    """``text`` cut to at most ``width`` characters at a word boundary, with "…" when anything was cut.

    Never cuts inside a word or a number ("fires on 1.5%" never becomes "fires on 1."); trailing punctuation
    before the cut is dropped. A first word longer than ``width`` is kept whole (a number is never cut)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    head = text[: width - 1]
    if text[width - 1] != " " and " " in head:  # the cut falls inside a word: back up to the last space
        head = head[: head.rindex(" ")]
    elif " " not in head:
        head = text.split(" ", 1)[0]
    return head.rstrip(" ,;:") + "…"


# ------------------------------------------------------------------------------------ tables and summaries
def plot_target_ce(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Held-out CE of the target per language beside its unigram baseline and the uniform level ln(V).

    rows: ``vpd_lite.models.target.evaluate_target`` output (``lang``, ``model_ce``, ``unigram_ce``, ``uniform_ce``)."""
    langs = [r["lang"] for r in rows]
    x = torch.arange(len(langs)).double().numpy()
    fig = Figure(figsize=(7.6, 3), layout="constrained")
    ax = fig.subplots()
    ax.bar(x - 0.2, [r["model_ce"] for r in rows], 0.4, label="target model", color="#4c72b0")
    ax.bar(x + 0.2, [r["unigram_ce"] for r in rows], 0.4, label="unigram baseline", color="#bbbbbb")
    ax.axhline(rows[0]["uniform_ce"], color="#c44e52", ls="--", label="uniform ln(V)")
    ax.set_xticks(x.tolist(), langs)
    ax.set_xlabel("language (held-out text)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("The target beats a unigram model in every language")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the bars, never over the last language's
    return fig


def plot_faithfulness(metrics: Mapping[str, Any]) -> Figure:
    """Two panels from ``vpd_lite.method.evaluate.evaluate_decomposition``: CE under each kind of mask vs the target,
    and L0 / C per matrix.

    The CE axis starts just below the smallest value (not at 0, where a gap of a few tenths of a nat would be
    invisible) and every bar is labelled with its gap to the target; one shared legend sits under the panels."""
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 4.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.75, 1.25])  # the left panel's bar labels side by side, apart
    kinds = list(metrics["ce_gap"])
    ce = [metrics["ce"][k] for k in kinds]
    target = metrics["ce"]["target"]
    bars = ax1.bar(kinds, ce, color="#4c72b0")
    line = ax1.axhline(target, color="black", ls="--", lw=1, label=f"target CE {target:.3f} nats/token")
    ax1.bar_label(bars, [format_number(metrics['ce_gap'][k], "+.2f") for k in kinds], fontsize=FONT, padding=2)
    lo, hi = min(ce + [target]), max(ce + [target])
    span = max(hi - lo, 0.05)
    ax1.set_ylim(lo - 0.25 * span, hi + 0.3 * span)
    ax1.set_ylabel("held-out CE (nats/token)\n(axis does not start at 0)", fontsize=FONT)
    ax1.set_xlabel("mask (bar label: CE − target)", fontsize=FONT)
    ax1.tick_params(labelsize=FONT)
    for label in ax1.get_xticklabels():
        label.set(rotation=40, ha="right", rotation_mode="anchor")
    ax1.set_title("CE under masks:\nclose to the target = faithful", fontsize=FONT + 1)
    names = list(metrics["l0_frac_of_C"])
    short = [short_matrix_name(n) for n in names]
    ax2.bar(short, [metrics["l0_frac_of_C"][n] for n in names], color="#55a868")
    ten = ax2.axhline(0.1, color="#c44e52", ls="--", lw=1, label="10% of C")
    ax2.set_ylabel("L0 / C (share of components\nactive per token; lower = sparser)", fontsize=FONT)
    ax2.set_xlabel("matrix", fontsize=FONT)
    ax2.tick_params(labelsize=FONT)
    ax2.tick_params(axis="x", labelrotation=90)  # 14 matrices in a narrow panel: upright names would overlap
    ax2.set_title("Sparsity: share of components\nactive per token", fontsize=FONT + 1)
    fig.legend(handles=[line, ten], loc="outside lower center", ncols=2, fontsize=FONT)
    return fig


def faithfulness_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """``evaluate_decomposition``'s CE and KL per kind of mask as a table: one row per mask kind (target first),
    columns CE (nats/token), CE − target and KL to the target (nats/token; MSE for non-LM models)."""
    rec = metrics.get("recon_loss", "kl")
    kinds = ["target"] + [k for k in metrics["ce_gap"] if k != "target"]
    rows = {k: {"CE (nats/token)": metrics["ce"][k], "CE − target": metrics["ce"][k] - metrics["ce"]["target"],
                f"{rec.upper()} to target": (metrics[rec].get(k, 0.0) if k != "target" else 0.0)} for k in kinds}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("masks")


def sparsity_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """``evaluate_decomposition``'s per-matrix numbers as a table: C, L0 (components with CI above the threshold
    per token), L0 / C, dead components and the faithfulness residual, one row per matrix (short names)."""
    rows = {short_matrix_name(n): {"C": metrics["C"][n], "L0": metrics["l0"][n], "L0 / C": metrics["l0_frac_of_C"][n],
                                   "dead": metrics["dead"][n], "residual": metrics["faithfulness_residual"][n]}
            for n in metrics["l0"]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("matrix")


def feature_match_table(report: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """``vpd_lite.models.toy_models.feature_match`` output as a table: one row per live component (matrix,
    component index) with its best-matching true feature and the |cos| of its hidden-space direction with it;
    the count of live and dead components per matrix is in the columns "live in matrix" / "dead in matrix"."""
    rows = []
    for name, r in report.items():
        for c, feat, cos in zip(r["live_components"], r["best_feature"], r["best_cos"]):
            rows.append({"matrix": name, "component": f"c{c}", "best-matching feature": int(feat),
                         "|cos|": float(cos), "live in matrix": r["live"], "dead in matrix": r["dead"]})
    return pd.DataFrame(rows).set_index(["matrix", "component"])


def fires_vs_removal_table(stats: ComponentStats, effects: Mapping[ComponentId | str, Mapping[str, float]],
                           lang: str = "de") -> pd.DataFrame:
    """Where components fire beside what removing them does, one row per component of ``effects``
    ({component: {lang: ΔCE when removed}}, from ``vpd_lite.interpret.ablation.ablation_effect``):
    the share of its firing rate that falls on ``lang`` (as in the heatmap), the fraction of ``lang`` tokens it
    fires on, the ΔCE of ``lang`` when it is removed (nats/token) and the largest ΔCE of another language."""
    rows = {}
    for cid, eff in effects.items():
        module, c = parse_component_id(cid)
        rate = stats.firing_rate(module)[:, c]  # (L,) fraction of each language's tokens it fires on
        li = stats.langs.index(lang)
        total = float(rate.sum())
        others = [v for k, v in eff.items() if k != lang]
        rows[component_key((module, c))] = {
            f"share of its firing on {lang_name(lang)}": float(rate[li]) / total if total > 0 else 0.0,
            f"fires on (fraction of {lang_name(lang)} tokens)": float(rate[li]),
            f"ΔCE {lang_name(lang)} when removed": float(eff[lang]),
            "largest ΔCE elsewhere": max(others) if others else float("nan")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("component")


def fires_vs_removal_sentence(table: pd.DataFrame, lang: str = "de") -> str:
    """One Markdown sentence per row of :func:`fires_vs_removal_table`, with its numbers: "**X** puts 98 % of
    its firing on German and fires on 31 % of German tokens; removing it changes German CE by +0.036
    nats/token (at most +0.004 elsewhere)."""
    name = lang_name(lang)
    out = []
    for key, r in table.iterrows():
        out.append(f"**{key}** puts {format_number(r[f'share of its firing on {name}'], '.0%')} of its firing on "
                   f"{name} and fires on {format_number(r[f'fires on (fraction of {name} tokens)'], '.0%')} of "
                   f"{name} tokens; removing it changes {name} CE by "
                   f"{format_number(r[f'ΔCE {name} when removed'], '+.3f')} nats/token (at most "
                   f"{format_number(r['largest ΔCE elsewhere'], '+.3f')} in another language).")
    return " ".join(out)


def plot_label_categories(labels: Sequence[Any]) -> Figure:
    """How many live components fall in each label category (``vpd_lite.interpret.labels.ComponentLabel`` list);
    all "mixed (...)" categories share one bar."""
    counts: dict[str, int] = {}
    for lab in labels:
        key = "mixed (two or more languages)" if lab.category.startswith("mixed") else lab.category
        counts[key] = counts.get(key, 0) + 1
    cats = sorted(counts, key=lambda k: -counts[k])
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    ax.barh(cats[::-1], [counts[k] for k in cats[::-1]], color="#8172b3")
    ax.set_xlabel("live components (count)")
    ax.set_ylabel("category")
    ax.set_title("What do the components fire on? Single-language components are the interesting ones", fontsize=9)
    return fig
