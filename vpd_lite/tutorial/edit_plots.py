"""Figures of the one-component edit: the edit scan, one component's dose-response, the erase-any-language
table, and the trade-off of the fitted edits against LoRA.

From the edit scan (``vpd_lite.erase.edit_scan.EditScan``; training text):

* :func:`prescreen_scatter` — every live component as a point: first-order effect of its edit on the target
  language against the worst other language (plotly, hover = label);
* :func:`scan_scatter` — every scanned component as a point: target ΔCE against worst off-target ΔCE at its
  best admissible s (plotly, hover = label);
* :func:`dose_response_plot` — ΔCE per language against s for one component (plotly), and
  :func:`dose_response_figure`, the same in matplotlib for a PNG.

From the fits (held-out text):

* :func:`erase_any_heatmap` — language erased (rows) × ΔCE per language (columns);
* :func:`tradeoff_plot` — German CE increase vs English CE increase per method, one point per budget;
* :func:`off_target_plot` — CE change on en/fr/es/it per method, one panel per budget;
* :func:`top16_plot` — the single German-only component vs the top-16 German-specific components.

A ``target`` argument here is the language being erased (``"de"`` by default; notebooks and tests pass it by
that name).

Every title says what to look for. All CE numbers are in nats/token; ΔCE = after − before (or at s − at s = 1).
The matplotlib figures (:func:`dose_response_figure`, :func:`erase_any_heatmap`, :func:`tradeoff_plot`,
:func:`off_target_plot`, :func:`top16_plot`, :func:`scan_scatter_figure`) and the PNG writers (:func:`save_png`,
:func:`save_figures`, :func:`save_scan_figures`) are drawn in ``vpd_lite.erase.figures``, which the headless job
uses too, and are named here for the notebooks. PNG files are written without a timestamp or version in the
metadata, so the same figure gives the same bytes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vpd_lite.erase.figures import (  # noqa: F401  (the PNG figures: drawn in the erase layer, named here too)
    HIGHLIGHT_COLORS,
    LANG_COLOURS,
    METHOD_NAMES,
    curve_langs,
    dose_response_figure,
    erase_any_heatmap,
    off_target_plot,
    png_bytes,
    save_figures,
    save_png,
    save_scan_figures,
    scan_scatter_figure,
    top16_plot,
    tradeoff_plot,
)
from vpd_lite.models.corpus import LANG_NAMES


# ------------------------------------------------------------------------------------------ the edit scan
def _label_map(labels: Any) -> dict[str, str]:
    """{"module:index": label text} from ``None``, a mapping, or ``vpd_lite.interpret.labels.ComponentLabel``
    objects."""
    if labels is None:
        return {}
    if isinstance(labels, Mapping):
        return {str(k): str(v) for k, v in labels.items()}
    return {lab.component: lab.label for lab in labels}


def _wrap(text: str, width: int = 70) -> str:
    return "<br>".join(textwrap.wrap(text, width)) if text else ""


def _others(frame: pd.DataFrame, prefix: str, target: str) -> list[str]:
    langs = [c.removeprefix(prefix) for c in frame.columns if c.startswith(prefix)]
    if target not in langs:
        raise KeyError(f"no {prefix}<lang> column for {target!r}; the table has languages {langs}")
    return [lang for lang in langs if lang != target]


def prescreen_scatter(prescreen: pd.DataFrame, target: str = "de", labels: Any = None,
                      highlight: Mapping[str, str] | None = None) -> go.Figure:
    """Every live component as a point: how strongly its edit moves ``target`` against the most-moved other
    language, to first order (``|dCE/ds|`` at s = 1, nats/token per unit of s, from the prescreen).

    prescreen: ``vpd_lite.erase.edit_scan.prescreen`` rows (columns ``component``, ``grad_<lang>``); labels: see
    :func:`_label_map`; highlight: {component key: name} drawn as large marked points (e.g. each rule's pick).
    """
    others = _others(prescreen, "grad_", target)
    floor = 1e-5  # |dCE/ds| below this (or exactly 0) is drawn at the floor: log axes
    y = prescreen[f"grad_{target}"].abs().clip(lower=floor)
    x = prescreen[[f"grad_{o}" for o in others]].abs().max(axis=1).clip(lower=floor)
    names = _label_map(labels)
    text = [f"<b>{k}</b><br>{_wrap(names.get(k, ''))}" for k in prescreen["component"]]
    fig = go.Figure(go.Scattergl(
        x=x, y=y, mode="markers", text=text, name="live components",
        marker={"size": 5, "color": "#7f7f7f", "opacity": 0.6},
        hovertemplate="%{text}<br>|dCE/ds| " + target + " %{y:.3g}, worst other %{x:.3g}<extra></extra>"))
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dash", "color": "black", "width": 1},
                    name="as much on every language", hoverinfo="skip")
    _highlight(fig, prescreen, highlight, x, y, names)
    lang = LANG_NAMES.get(target, target)
    fig.update_layout(
        title=f"Every live component's edit, to first order: look for points far above the dashed line<br>"
              f"<sup>(the edit moves {lang} much more than any other language; hover for the label)</sup>",
        xaxis={"type": "log", "title": "worst other language: |dCE/ds| at s = 1 (nats/token per unit s)"},
        yaxis={"type": "log", "title": f"{lang}: |dCE/ds| at s = 1 (nats/token per unit s)"},
        height=520, width=760, template="plotly_white", legend={"orientation": "h", "y": -0.18})
    return fig


def _highlight(fig: go.Figure, frame: pd.DataFrame, highlight: Mapping[str, str] | None, x, y,
               names: Mapping[str, str]) -> None:
    symbols = ["star", "diamond", "square", "triangle-up", "cross"]  # one per highlighted component
    for i, (key, what) in enumerate((highlight or {}).items()):
        rows = (frame["component"] == key).to_numpy().nonzero()[0]
        if not rows.size:
            continue
        r = int(rows[0])
        fig.add_scatter(x=[float(x.iloc[r])], y=[float(y.iloc[r])], mode="markers", name=f"{what}: {key}",
                        marker={"size": 14, "symbol": symbols[i % len(symbols)],
                                "color": HIGHLIGHT_COLORS[i % len(HIGHLIGHT_COLORS)],
                                "line": {"color": "black", "width": 1}},
                        text=[f"<b>{key}</b> ({what})<br>{_wrap(names.get(key, ''))}"],
                        hovertemplate="%{text}<br>x %{x:.3g}, y %{y:.3g}<extra></extra>")


def scan_scatter(best: pd.DataFrame, target: str = "de", labels: Any = None,
                 highlight: Mapping[str, str] | None = None, goal: float | None = None) -> go.Figure:
    """Every scanned component as a point: ΔCE of ``target`` (y) against the worst other language's ΔCE (x),
    both at the component's best admissible s (training text, nats/token).

    best: ``EditScan.best_for(target)`` rows (columns ``component``, ``gain``, ``worst_other``,
    ``worst_other_lang``, ``s_best``, ``s_lo``, ``s_hi``); goal: the ΔCE that brings ``target`` to ln(vocab)
    (drawn as a dashed line); highlight: {component key: name} (e.g. each selection rule's pick).
    """
    if not {"component", "gain", "worst_other", "s_best"} <= set(best.columns):
        raise KeyError(f"need EditScan.best_for rows (component, gain, worst_other, s_best); got {list(best.columns)}")
    names = _label_map(labels)
    text = [f"<b>{r.component}</b> at s = {r.s_best:g} (admissible {r.s_lo:g} … {r.s_hi:g})<br>"
            f"worst other: {r.worst_other_lang}<br>{_wrap(names.get(r.component, ''))}"
            for r in best.itertuples()]
    fig = go.Figure(go.Scatter(
        x=best["worst_other"], y=best["gain"], mode="markers", text=text, name="scanned components",
        marker={"size": 8, "color": "#7f7f7f", "opacity": 0.75},
        hovertemplate="%{text}<br>ΔCE " + target + " %{y:+.3f}, worst other %{x:+.3f}<extra></extra>"))
    _highlight(fig, best, highlight, best["worst_other"], best["gain"], names)
    lang = LANG_NAMES.get(target, target)
    if goal is not None:
        fig.add_hline(y=goal, line_dash="dash", line_color="black",
                      annotation_text=f"{lang} at ln(vocab)", annotation_position="bottom right")
    fig.update_layout(
        title=f"Scanned components at their best admissible s: look for the highest point<br>"
              f"<sup>(large {lang} rise while every other language stays within tolerance; hover for the label)</sup>",
        xaxis_title="worst other language: ΔCE at that s (nats/token, training text)",
        yaxis_title=f"{lang}: ΔCE at that s (nats/token, training text)",
        height=520, width=760, template="plotly_white", legend={"orientation": "h", "y": -0.18})
    return fig


def objective_plot(s_values: Any, objectives: Mapping[str, Any], fitted: Mapping[str, float] | None = None,
                   s_range: tuple[float, float] | None = None, component: str = "") -> go.Figure:
    """The fit's 1-D landscape: each objective (nats² or nats/token, on the budgeted tokens) against s, with the
    search range shaded and the fitted s of each objective marked (plotly).

    s_values: (k,) grid; objectives: {name: (k,) values}, e.g. from ``vpd_lite.erase.edits.scalar_objective_curve``;
    fitted: {name: fitted s}."""
    xs = [float(v) for v in s_values]
    names = list(objectives)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.12)
    for j, name in enumerate(names, start=1):
        ys = [float(v) for v in objectives[name]]
        fig.add_scatter(x=xs, y=ys, mode="lines", name=name, showlegend=False, row=1, col=j,
                        line={"color": HIGHLIGHT_COLORS[(j - 1) % len(HIGHLIGHT_COLORS)]},
                        hovertemplate="s = %{x:.2f}: %{y:.4f}<extra>" + name + "</extra>")
        if s_range is not None:
            fig.add_vrect(x0=s_range[0], x1=s_range[1], fillcolor="#2ca02c", opacity=0.08, line_width=0, row=1, col=j)
        if fitted and name in fitted:
            fig.add_vline(x=float(fitted[name]), line_dash="dot", line_color="black", row=1, col=j,
                          annotation_text=f"fitted s = {float(fitted[name]):.2f}")
        fig.update_xaxes(title_text="s", row=1, col=j)
    fig.update_yaxes(title_text="objective on the budgeted tokens", row=1, col=1)
    fig.update_layout(title={"text": f"The fit of one scalar{' on ' + component if component else ''}<br>look for the "
                                     "lowest point inside the shaded search range<br><sup>(a global 1-D search finds "
                                     "it wherever it is; ties go to the s closest to 1)</sup>", "font": {"size": 15}},
                      height=430, width=820, template="plotly_white", margin={"t": 120})
    return fig



#: The zoomed lower panel of :func:`dose_response_plot` shows ΔCE from -ZOOM_BELOW to this (nats/token): the
#: claim's tolerances (0.05, 0.1) sit in its lower half, so where a curve crosses them can be read.
ZOOM_MAX = 0.3
ZOOM_BELOW = 0.05


def dose_response_plot(curve: pd.DataFrame, component: str, target: str | None = "de", label: str = "",
                       s_range: tuple[float, float] | None = None, mark_s: float | None = None,
                       goal: float | None = None, zoom: bool | None = None) -> go.Figure:
    """One component's dose-response: ΔCE per language (nats/token) against s (plotly).

    curve: rows of one component sorted by s with columns ``s`` and ``d_<lang>`` (``EditScan.curve(key)``);
    s_range: its admissible range (shaded); mark_s: an s to mark (e.g. the best admissible or the fitted one);
    goal: the ΔCE that brings ``target`` to ln(vocab) (dashed). ``target=None`` names no language (for a
    "which language is this about?" exercise): no curve is drawn bold and the title gives nothing away.
    zoom: add a lower panel with the same curves on a ΔCE axis from -``ZOOM_BELOW`` to ``ZOOM_MAX`` nats/token
    (the other languages, flat near 0 on the upper panel's scale, and the 0.1 tolerance they must stay under);
    default: when ``target`` is given.
    """
    langs = curve_langs(curve)
    zoom = (target is not None) if zoom is None else bool(zoom)
    rows = 2 if zoom else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        row_heights=[0.55, 0.45] if zoom else None,
                        subplot_titles=["every language, full scale",
                                        f"zoomed on ΔCE from {-ZOOM_BELOW:g} to {ZOOM_MAX:g}: read the tolerance "
                                        "crossings here"] if zoom else None)
    for row in range(1, rows + 1):
        for lang in langs:
            fig.add_scatter(x=curve["s"], y=curve[f"d_{lang}"], mode="lines+markers",
                            name=LANG_NAMES.get(lang, lang), legendgroup=lang, showlegend=row == 1,
                            line={"color": LANG_COLOURS.get(lang, "#555555"), "width": 3 if lang == target else 1.5},
                            marker={"size": 4}, row=row, col=1,
                            hovertemplate=f"{LANG_NAMES.get(lang, lang)}: " + "s = %{x:.2f}: ΔCE %{y:+.3f}<extra></extra>")
        if s_range is not None:  # after the curves: plotly leaves shapes off a subplot that has no data yet
            fig.add_vrect(x0=s_range[0], x1=s_range[1], fillcolor="#2ca02c", opacity=0.08, line_width=0, row=row,
                          col=1, **({"annotation_text": "admissible s", "annotation_position": "top left"}
                                    if row == 1 else {}))
        fig.add_hline(y=0.1, line_dash="dot", line_color="#888888", row=row, col=1)  # named in the legend
        if mark_s is not None:
            fig.add_vline(x=mark_s, line_dash="dot", line_color="black", row=row, col=1,
                          **({"annotation_text": f"s = {mark_s:g}", "annotation_position": "bottom left"}
                             if row == rows else {}))
    if goal is not None:
        fig.add_hline(y=goal, line_dash="dash", line_color="black",
                      annotation_text=f"{LANG_NAMES.get(target, target or '')} at ln(vocab)",
                      annotation_position="top right", row=1, col=1)
    # the tolerance lines are named in the legend, not by labels on the plot, where the curves run through them
    tolerances = [("tolerance 0.1 (other languages)", "#888888")]
    if zoom:
        fig.add_hline(y=0.05, line_dash="dot", line_color=LANG_COLOURS["en"], row=2, col=1)
        tolerances.append(("English tolerance 0.05", LANG_COLOURS["en"]))
        fig.update_yaxes(range=[-ZOOM_BELOW, ZOOM_MAX], title_text="ΔCE (zoomed)", row=2, col=1)
    for name, colour in tolerances:
        fig.add_scatter(x=[None], y=[None], mode="lines", name=name, hoverinfo="skip",
                        line={"color": colour, "dash": "dot", "width": 1.5}, row=1, col=1)
    fig.update_yaxes(title_text="ΔCE (nats/token, training text)", row=1, col=1)
    fig.update_xaxes(title_text="s (prefactor; 1 = the original model)", row=rows, col=1)
    lang = LANG_NAMES.get(target, target) if target else "one language's"
    fig.update_layout(
        title={"text": f"Dose-response of {component}<br>look for {'the ' if target else ''}{lang} curve rising "
                       f"while the others stay near 0<br><sup>{_wrap(label, 100)}</sup>", "font": {"size": 15}},
        margin={"t": 120}, height=720 if zoom else 500, width=780, template="plotly_white")
    return fig
