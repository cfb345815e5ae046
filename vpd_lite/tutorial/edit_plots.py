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
PNG files are written by :func:`save_png` without a timestamp or version in the metadata, so the same figure
gives the same bytes.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from vpd_lite.erase.protocol import PRIMARY_OBJECTIVE
from vpd_lite.method.checkpoint import atomic_write_bytes
from vpd_lite.models.corpus import LANG_NAMES
from vpd_lite.tutorial.edit_widget import LANG_COLORS

#: Colours of highlighted components (e.g. each selection rule's pick), in order.
HIGHLIGHT_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")


#: Short names of the methods of ``vpd_lite.erase.protocol.summarise`` (legend entries), in drawing order.
METHOD_NAMES = {
    "scalar_edit": "1 scalar, chosen by the edit scan",
    "scalar_firing": "1 scalar, chosen by firing (earlier rule)",
    "scalar_label": "1 scalar, labeller's most German-only",
    "scalar": "1 scalar, German component",
    "scalar_top16": "16 scalars, top-16 German components",
    "lora_r1_all": "LoRA rank 1, all matrices",
    "lora_r4_all": "LoRA rank 4, all matrices",
    "lora_r1_local": "LoRA rank 1, component's matrix",
}
COLORS = {"scalar_edit": "C3", "scalar_firing": "C5", "scalar_label": "C6", "scalar": "C3", "scalar_top16": "C1",
          "lora_r1_all": "C0", "lora_r4_all": "C9", "lora_r1_local": "C2"}


SINGLE_SCALARS = ("scalar_edit", "scalar_firing", "scalar_label", "scalar")


def _methods(summary: pd.DataFrame) -> list[str]:
    return [m for m in METHOD_NAMES if m in set(summary["method"])]


def _one_objective(summary: pd.DataFrame, objective: str | None) -> tuple[pd.DataFrame, str]:
    """The rows of one objective (default: the primary one when the summary has an ``objective`` column),
    values rounded to 3 decimals (the printed precision, so that the PNG is the same for the same table)."""
    df = summary
    note = ""
    if "objective" in df.columns:
        objective = objective or (PRIMARY_OBJECTIVE if PRIMARY_OBJECTIVE in set(df["objective"])
                                  else str(df["objective"].iloc[0]))
        df = df[df["objective"] == objective]
        note = f"(objective: {objective})"
    return df.round(3), note


def tradeoff_plot(summary: pd.DataFrame, objective: str | None = None) -> Figure:
    """German ΔCE (y) against English ΔCE (x) per method, one point per budget (held-out text, seed means).

    summary: ``vpd_lite.erase.protocol.summarise`` rows (``method``, ``budget``, ``de_before``, ``de_after``,
    ``d_en``, ``uniform``; ``objective`` optional: the primary one is drawn unless ``objective`` is given)."""
    df, note = _one_objective(summary, objective)
    fig, ax = plt.subplots(figsize=(9.5, 5.0))
    for m in _methods(df):
        d = df[df["method"] == m].sort_values("budget")
        ax.plot(d["d_en"], d["de_after"] - d["de_before"], "o-", color=COLORS[m], label=METHOD_NAMES[m])
        for _, r in d.iterrows():
            ax.annotate(str(int(r["budget"])), (r["d_en"], r["de_after"] - r["de_before"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points", color=COLORS[m])
    gap = float((df["uniform"] - df["de_before"]).iloc[0])
    ax.axhline(gap, ls="--", color="grey", lw=1)
    ax.annotate(" German at ln(vocab) (uniform)", (0.0, gap), xycoords=("axes fraction", "data"), ha="left",
                va="bottom", fontsize=8, color="grey")
    ax.axvline(0, color="black", lw=0.5)
    ax.axvspan(-10, 0.05, color="#2ca02c", alpha=0.08, lw=0)
    ax.set_xlim(left=min(-0.02, float(df["d_en"].min()) - 0.02))
    wide = float(df["d_en"].max()) > 0.5
    if wide:  # LoRA's damage reaches nats: a symmetric log axis keeps the scalars' 0.01s readable beside it
        ax.set_xscale("symlog", linthresh=0.05, linscale=1.0)
        ticks = [t for t in (0, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10) if t <= 1.5 * float(df["d_en"].max())]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel("English CE increase (nats/token, held-out" + (", linear below 0.05, log above)" if wide else ")"))
    ax.set_ylabel("German CE increase (nats/token, held-out)")
    ax.set_title("Erasing German. Good corner: top-left (German up to the dashed line, English barely moves;\n"
                 f"green: English within 0.05). Numbers = German tokens trained on. {note}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def off_target_plot(summary: pd.DataFrame, langs: tuple[str, ...] = ("en", "fr", "es", "it"),
                    objective: str | None = None) -> Figure:
    """Grouped bars of held-out ΔCE on the non-German languages per method, one panel per budget."""
    df, note = _one_objective(summary, objective)
    budgets = sorted(df["budget"].unique())
    methods = _methods(df)
    width_in = max(9.0, 3.2 * len(budgets) + 0.5)
    fig, axes = plt.subplots(1, len(budgets), figsize=(width_in, 4.2), sharey=True, squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for ax, b in zip(axes[0], budgets):
        d = df[df["budget"] == b].set_index("method")
        for i, m in enumerate(methods):
            if m not in d.index:
                continue
            vals = [float(d.loc[m, f"d_{lang}"]) for lang in langs]
            ax.bar([j + (i - (len(methods) - 1) / 2) * width for j in range(len(langs))], vals, width,
                   color=COLORS[m], label=METHOD_NAMES[m])
        ax.axhline(0, color="black", lw=0.5)
        ax.axhline(0.1, color="grey", lw=0.8, ls=":")
        ax.set_xticks(range(len(langs)), langs)
        ax.set_title(f"{b} German tokens", fontsize=9)
    axes[0][0].set_ylabel("CE change (nats/token, held-out)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(methods), 4 if width_in >= 12 else 3), fontsize=7,
               frameon=False)
    fig.suptitle("Collateral damage on the other languages: lower is better\n(dotted: the 0.1 tolerance; English's "
                 f"is 0.05) {note}", fontsize=9)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


def top16_plot(summary: pd.DataFrame, objective: str | None = None) -> Figure:
    """The single-component edits (one per selection rule) vs the top-16 German-specific components, across
    budgets: how far German goes (left) and the worst damage elsewhere (right)."""
    df, note = _one_objective(summary, objective)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    for m in (*SINGLE_SCALARS, "scalar_top16"):
        d = df[df["method"] == m].sort_values("budget")
        if d.empty:
            continue
        ax1.plot(d["budget"], 100 * d["frac_to_uniform"], "o-", color=COLORS[m], label=METHOD_NAMES[m])
        other = d[[c for c in ("d_en", "d_fr", "d_es", "d_it") if c in d.columns]]
        ax2.plot(d["budget"], other.max(axis=1), "o-", color=COLORS[m], label=METHOD_NAMES[m])
    budgets = sorted(df["budget"].unique())
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("German tokens trained on")
    ax1.axhline(100, ls="--", color="grey", lw=1)
    ax1.axhline(80, ls=":", color="grey", lw=1)
    ax1.set_ylabel("German: % of the way to ln(vocab)")
    ax1.set_title("German erased: higher is better (claim: 80%, dotted)", fontsize=9)
    ax2.axhline(0, color="black", lw=0.5)
    ax2.axhline(0.1, ls=":", color="grey", lw=1)
    ax2.set_ylabel("worst CE change en/fr/es/it (nats/token)")
    ax2.set_title("Worst collateral damage: lower is better (tolerance 0.1, dotted)", fontsize=9)
    ax1.legend(fontsize=7)
    fig.suptitle(f"One component (each selection rule) vs the top-16 German-specific components. {note}", fontsize=9)
    fig.tight_layout()
    return fig


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


def _curve_langs(curve: pd.DataFrame) -> list[str]:
    langs = [c.removeprefix("d_") for c in curve.columns if c.startswith("d_")]
    if not langs:
        raise KeyError(f"need d_<lang> columns (ΔCE per language); got {list(curve.columns)}")
    return langs


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
    langs = _curve_langs(curve)
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
                            line={"color": LANG_COLORS.get(lang, "#555555"), "width": 3 if lang == target else 1.5},
                            marker={"size": 4}, row=row, col=1,
                            hovertemplate=f"{lang}: " + "s = %{x:g}: ΔCE %{y:+.3f}<extra></extra>")
        if s_range is not None:  # after the curves: plotly leaves shapes off a subplot that has no data yet
            fig.add_vrect(x0=s_range[0], x1=s_range[1], fillcolor="#2ca02c", opacity=0.08, line_width=0, row=row,
                          col=1, **({"annotation_text": "admissible s", "annotation_position": "top left"}
                                    if row == 1 else {}))
        fig.add_hline(y=0.1, line_dash="dot", line_color="#888888", annotation_text="tolerance 0.1",
                      annotation_position="bottom right", row=row, col=1)
        if mark_s is not None:
            fig.add_vline(x=mark_s, line_dash="dot", line_color="black", row=row, col=1,
                          **({"annotation_text": f"s = {mark_s:g}", "annotation_position": "bottom left"}
                             if row == rows else {}))
    if goal is not None:
        fig.add_hline(y=goal, line_dash="dash", line_color="black",
                      annotation_text=f"{LANG_NAMES.get(target, target or '')} at ln(vocab)",
                      annotation_position="top right", row=1, col=1)
    if zoom:
        fig.add_hline(y=0.05, line_dash="dot", line_color="#2c7fb8", annotation_text="English tolerance 0.05",
                      annotation_position="top right", row=2, col=1)
        fig.update_yaxes(range=[-ZOOM_BELOW, ZOOM_MAX], title_text="ΔCE (zoomed)", row=2, col=1)
    fig.update_yaxes(title_text="ΔCE (nats/token, training text)", row=1, col=1)
    fig.update_xaxes(title_text="s (prefactor; 1 = the original model)", row=rows, col=1)
    lang = LANG_NAMES.get(target, target) if target else "one language's"
    fig.update_layout(
        title={"text": f"Dose-response of {component}<br>look for {'the ' if target else ''}{lang} curve rising "
                       f"while the others stay near 0<br><sup>{_wrap(label, 100)}</sup>", "font": {"size": 15}},
        margin={"t": 120}, height=720 if zoom else 500, width=780, template="plotly_white")
    return fig


def dose_response_figure(curve: pd.DataFrame, component: str, target: str = "de",
                         s_range: tuple[float, float] | None = None, mark_s: float | None = None,
                         goal: float | None = None) -> Figure:
    """:func:`dose_response_plot` in matplotlib (for a PNG file); same arguments."""
    langs = _curve_langs(curve)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    if s_range is not None:
        ax.axvspan(*s_range, color="#2ca02c", alpha=0.08, lw=0, label="admissible s")
    for lang in langs:
        ax.plot(curve["s"], curve[f"d_{lang}"], "-o", ms=2.5, lw=2.5 if lang == target else 1.2,
                color=LANG_COLORS.get(lang, "#555555"), label=LANG_NAMES.get(lang, lang))
    if goal is not None:
        ax.axhline(goal, ls="--", color="black", lw=1, label=f"{LANG_NAMES.get(target, target)} at ln(vocab)")
    ax.axhline(0.1, ls=":", color="#888888", lw=1, label="tolerance 0.1")
    if mark_s is not None:
        ax.axvline(mark_s, ls=":", color="black", lw=1)
    ax.set_xlabel("s (prefactor; 1 = the original model)")
    ax.set_ylabel("ΔCE (nats/token, training text)")
    ax.set_title(f"Dose-response of {component}\nlook for the {LANG_NAMES.get(target, target)} curve rising "
                 "while the others stay near 0", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ erase any language
def _square(table: pd.DataFrame) -> pd.DataFrame:
    """Language erased (index) × language measured (columns) from either shape :func:`erase_any_heatmap` takes;
    the columns follow the rows' order where they can, so that the erased language is on the diagonal."""
    t = table.set_index("erased") if "erased" in table.columns else table
    t = t[[c for c in t.columns if str(c).startswith("d_")] or list(t.columns)]
    t = t.rename(columns=lambda c: str(c).removeprefix("d_"))
    t.index = [str(i) for i in t.index]
    order = [r for r in t.index if r in t.columns] + [c for c in t.columns if c not in t.index]
    return t[order].astype(float).round(3)


def erase_any_heatmap(table: pd.DataFrame, tol: Mapping[str, float] | None = None,
                      title: str = "") -> Figure:
    """Heatmap of held-out ΔCE (nats/token): language erased (rows) × language measured (columns).

    table: ``vpd_lite.erase.report.any_language_table`` rows (column ``erased`` and ``d_<lang>``), or a frame with
    index = language erased and columns = language measured (a ``d_`` prefix is dropped), values = ΔCE.
    tol: the largest allowed ΔCE per measured language when it is *not* the one erased (default: English
    0.05, the others 0.1); off-diagonal cells over it get a red frame. Colours saturate at twice the largest
    tolerance, so small off-diagonal changes stay visible next to the large diagonal; every cell is annotated.
    """
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    t = _square(table)
    rows, cols = [str(i) for i in t.index], list(t.columns)
    tol = dict(tol) if tol is not None else {c: (0.05 if c == "en" else 0.1) for c in cols}
    vals = t.to_numpy(dtype=float)
    cap = 2 * max(tol.values(), default=0.1)  # colours saturate at twice the largest tolerance
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2.4, 0.75 * len(rows) + 1.8))
    im = ax.imshow(vals, cmap="RdBu_r", norm=Normalize(-cap, cap))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            v = vals[i, j]
            ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=9,
                    color="white" if abs(v) > 0.75 * cap else "black", fontweight="bold" if r == c else "normal")
            if r != c and c in tol and v > tol[c]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_xticks(range(len(cols)), [LANG_NAMES.get(c, c) for c in cols])
    ax.set_yticks(range(len(rows)), [LANG_NAMES.get(r, r) for r in rows])
    ax.set_xlabel("ΔCE measured on (held-out text)")
    ax.set_ylabel("language erased")
    fig.colorbar(im, ax=ax, label=f"ΔCE (nats/token; colour capped at ±{cap:g})", shrink=0.8, extend="both")
    ax.set_title((title + "\n" if title else "") + "look for a dark-red diagonal and pale cells elsewhere\n"
                 "(red frame: another language moved beyond tolerance)", fontsize=9)
    fig.tight_layout()
    return fig


def scan_scatter_figure(best: pd.DataFrame, target: str = "de", highlight: Mapping[str, str] | None = None,
                        goal: float | None = None) -> Figure:
    """:func:`scan_scatter` in matplotlib (for a PNG file): the highlighted components are named in the legend."""
    b = best.round(3)
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    ax.scatter(b["worst_other"], b["gain"], s=18, color="#7f7f7f", alpha=0.75, label="scanned components")
    for i, (key, what) in enumerate((highlight or {}).items()):
        r = b[b["component"] == key]
        if len(r):
            ax.scatter(r["worst_other"], r["gain"], s=110, marker="*D^sP"[i % 5], ec="black",
                       color=HIGHLIGHT_COLORS[i % len(HIGHLIGHT_COLORS)], label=f"{what}: {key}", zorder=3)
    lang = LANG_NAMES.get(target, target)
    if goal is not None:
        ax.axhline(goal, ls="--", color="black", lw=1, label=f"{lang} at ln(vocab)")
    ax.set_xlabel("worst other language: ΔCE at that s (nats/token, training text)")
    ax.set_ylabel(f"{lang}: ΔCE at that s (nats/token, training text)")
    ax.set_title(f"Scanned components at their best admissible s: look for the highest point\n(large {lang} rise "
                 "while every other language stays within tolerance)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def save_scan_figures(scan_best: pd.DataFrame, scan_curves: pd.DataFrame, any_table: pd.DataFrame | None,
                      out_dir: str | os.PathLike, target: str = "de", uniform: float | None = None,
                      highlight: Mapping[str, str] | None = None) -> list[Path]:
    """Write the figures of the edit scan and the erase-any-language table as PNG into ``out_dir``:

    * ``edit_scan_scatter.png`` — :func:`scan_scatter_figure` of ``scan_best`` rows with ``target``
      (``EditScan.best``, all targets stacked, or ``best_for(target)``);
    * ``edit_scan_dose_response.png`` — :func:`dose_response_figure` of the scan's best component for
      ``target`` (the first row of its best table: the edit-scan rule's pick), admissible range shaded;
    * ``erase_any_language.png`` — :func:`erase_any_heatmap` of ``any_table`` (skipped when None).

    ``uniform``: ln(vocab), to draw the ΔCE that brings ``target`` to the uniform level. Returns the paths."""
    out = Path(out_dir)
    best = scan_best[scan_best["target"] == target] if "target" in scan_best.columns else scan_best
    if best.empty:
        raise KeyError(f"the scan has no rows for target language {target!r}")
    top = best.iloc[0]
    curve = scan_curves[scan_curves["component"] == top["component"]].sort_values("s")
    goal = None
    if uniform is not None and (curve["s"] == 1.0).any() and f"ce_{target}" in curve.columns:
        goal = round(uniform - float(curve.loc[curve["s"] == 1.0, f"ce_{target}"].iloc[0]), 3)
    marks = dict(highlight or {str(top["component"]): "edit-scan rule"})
    paths = [save_png(scan_scatter_figure(best, target, marks, goal), out / "edit_scan_scatter.png"),
             save_png(dose_response_figure(curve.round(3), str(top["component"]), target,
                                           (float(top["s_lo"]), float(top["s_hi"])), float(top["s_best"]), goal),
                      out / "edit_scan_dose_response.png")]
    if any_table is not None and len(any_table):
        paths.append(save_png(erase_any_heatmap(any_table, title="Erase any language with one scalar "
                                                "(held-out ΔCE, seed means)"), out / "erase_any_language.png"))
    return paths


def png_bytes(fig: Figure, dpi: int = 120) -> bytes:
    """The figure as PNG bytes (then closed), with no software version or time in the metadata: the same
    figure drawn by the same matplotlib gives the same bytes."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def save_png(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write a matplotlib figure to ``path`` as PNG (atomically; see :func:`png_bytes`). Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(fig, dpi))
    return path


def _save(fig: Figure, path: Path) -> Path:
    return save_png(fig, path)


def save_figures(summary: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Write the three figures as PNG into ``out_dir`` (atomically); returns their paths."""
    out = Path(out_dir)
    return [
        _save(tradeoff_plot(summary), out / "erase_german_tradeoff.png"),
        _save(off_target_plot(summary), out / "erase_german_off_target.png"),
        _save(top16_plot(summary), out / "erase_german_top16.png"),
    ]
