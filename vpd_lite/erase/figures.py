"""The erase experiment's figures as matplotlib PNGs: what the headless job (``python -m vpd_lite.reproduce``,
``python -m vpd_lite.across_decompositions``) writes beside its tables, and the notebooks show. The notebooks'
interactive (plotly) figures live in ``vpd_lite.tutorial.edit_plots``, which imports these.

From the fits (held-out text):

* :func:`tradeoff_plot` — German CE increase vs English CE increase per method, one point per budget;
* :func:`off_target_plot` — CE change on en/fr/es/it per method, one panel per budget;
* :func:`top16_plot` — the single German-only component vs the top-16 German-specific components;
* :func:`erase_any_heatmap` — language erased (rows) × ΔCE per language (columns).

From the edit scan (training text): :func:`scan_scatter_figure`, :func:`dose_response_figure` and
:func:`pick_dose_response_figure` (the edit-scan rule's pick). From the study
across decompositions: :func:`curves_figure` and :func:`similarity_figure`.

Every title says what to look for. All CE numbers are in nats/token; ΔCE = after − before (or at s − at s = 1).
PNG files are written by :func:`save_png` without a timestamp or version in the metadata, so the same figure
gives the same bytes.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from vpd_lite.erase.protocol import PRIMARY_OBJECTIVE
from vpd_lite.method.checkpoint import atomic_write_bytes
from vpd_lite.models.corpus import LANG_COLOURS, LANG_NAMES

#: Widest matplotlib figure (inches) the notebooks show: JupyterLab's output area in a 1280 px window is 848 px
#: wide (measured by the browser test), and a figure of this width at the inline backend's 100 dpi, plus the
#: 0.1-inch padding of its tight bounding box, fits it unscaled (about 840 px), so its fonts keep their size.
NOTEBOOK_WIDTH_IN = 8.3

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


#: The gid of a label that names one point of a line (a budget in :func:`tradeoff_plot`): such labels are moved
#: off each other by :func:`place_point_labels`, again whenever the figure is resized (e.g. for a slide).
POINT_LABEL = "point-label"

#: Where a point label may sit, in order of preference: its offset from the point in font sizes (x, y; a label
#: is about one font size high); a negative x ends the label left of the point.
_LABEL_SPOTS = tuple((dx, dy) for dy in (0.3, -1.3, 1.6, -2.6) for dx in (0.3, -0.3))


def figure_renderer(fig: Figure) -> RendererBase:
    """The renderer that measures ``fig``'s texts in pixels (an Agg canvas when the figure has none of its own)."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    return canvas.get_renderer()


def place_point_labels(fig: Figure) -> None:
    """Move every point label (annotation with gid :data:`POINT_LABEL`) of ``fig``, in drawing order, to the spot of
    :data:`_LABEL_SPOTS` that lies inside the figure and overlaps the least area of its panel's markers and of the
    labels placed before it (the earlier spot on a tie, so a free spot is taken in order of preference). Measured
    in pixels at the figure's current size and layout, so call it after laying the figure out."""
    renderer = figure_renderer(fig)

    def overlap(a: Bbox, b: Bbox) -> float:  # in square pixels
        return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))

    def put(label: Text, spot: tuple[float, float]) -> Bbox:  # the label's box there, in pixels
        label.set_position(spot)
        label.set_horizontalalignment("left" if spot[0] >= 0 else "right")
        return label.get_window_extent(renderer)

    for ax in fig.axes:
        placed = [Bbox.from_bounds(x - r, y - r, 2 * r, 2 * r)  # each marker, as a square in pixels
                  for line in ax.lines if line.get_marker() not in (None, "", "None")
                  for r in [line.get_markersize() * fig.dpi / 72 / 2]
                  for x, y in line.get_transform().transform(line.get_xydata())]
        for label in (t for t in ax.texts if t.get_gid() == POINT_LABEL):
            costs = []
            for spot in _LABEL_SPOTS:
                box = put(label, spot)
                outside = not (fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1))
                costs.append((outside, sum(overlap(box, other) for other in placed)))
            placed.append(put(label, _LABEL_SPOTS[costs.index(min(costs))]))


def tradeoff_plot(summary: pd.DataFrame, objective: str | None = None) -> Figure:
    """German ΔCE (y) against English ΔCE (x) per method, one point per budget (held-out text, seed means).

    summary: ``vpd_lite.erase.protocol.summarise`` rows (``method``, ``budget``, ``de_before``, ``de_after``,
    ``d_en``, ``uniform``; ``objective`` optional: the primary one is drawn unless ``objective`` is given)."""
    df, note = _one_objective(summary, objective)
    fig, ax = plt.subplots(figsize=(NOTEBOOK_WIDTH_IN, 6.0))
    for m in _methods(df):
        d = df[df["method"] == m].sort_values("budget")
        ax.plot(d["d_en"], d["de_after"] - d["de_before"], "o-", color=COLORS[m], label=METHOD_NAMES[m])
        for _, r in d.iterrows():
            ax.annotate(str(int(r["budget"])), (r["d_en"], r["de_after"] - r["de_before"]), fontsize=8,
                        xytext=_LABEL_SPOTS[0], textcoords="offset fontsize", color=COLORS[m], gid=POINT_LABEL)
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
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    fig.tight_layout()
    place_point_labels(fig)
    return fig


def off_target_plot(summary: pd.DataFrame, langs: tuple[str, ...] = ("en", "fr", "es", "it"),
                    objective: str | None = None) -> Figure:
    """Grouped bars of held-out ΔCE on the non-German languages per method, one panel per budget."""
    df, note = _one_objective(summary, objective)
    budgets = sorted(df["budget"].unique())
    methods = _methods(df)
    cols = min(2, len(budgets))
    rows = math.ceil(len(budgets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(NOTEBOOK_WIDTH_IN, 2.9 * rows + 1.6), sharey=True, squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for ax in axes.flat[len(budgets):]:
        ax.set_visible(False)
    for ax, b in zip(axes.flat, budgets):
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
    for row in axes:
        row[0].set_ylabel("CE change (nats/token)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(methods), 3), fontsize=8, frameon=False)
    fig.suptitle("Collateral damage on the other languages: lower is better\n(dotted: the 0.1 tolerance; English's "
                 f"is 0.05) {note}", fontsize=9)
    fig.tight_layout(rect=(0, 1.3 / (2.9 * rows + 1.6), 1, 1))
    return fig


def top16_plot(summary: pd.DataFrame, objective: str | None = None) -> Figure:
    """The single-component edits (one per selection rule) vs the top-16 German-specific components, across
    budgets: how far German goes (left) and the worst damage elsewhere (right)."""
    df, note = _one_objective(summary, objective)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(NOTEBOOK_WIDTH_IN, 4.2))
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
    ax1.set_title("German erased: higher is better\n(claim: 80%, dotted)", fontsize=9)
    ax2.axhline(0, color="black", lw=0.5)
    ax2.axhline(0.1, ls=":", color="grey", lw=1)
    ax2.set_ylabel("worst CE change en/fr/es/it (nats/token)")
    ax2.set_title("Worst collateral damage: lower is better\n(tolerance 0.1, dotted)", fontsize=9)
    ax1.legend(fontsize=8)
    fig.suptitle(f"One component (each selection rule) vs the top-16 German-specific components.\n{note}", fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ the edit scan
def curve_langs(curve: pd.DataFrame) -> list[str]:
    """The languages of a dose-response curve's ``d_<lang>`` columns, in column order. Raises ``KeyError`` when
    it has none."""
    langs = [c.removeprefix("d_") for c in curve.columns if c.startswith("d_")]
    if not langs:
        raise KeyError(f"need d_<lang> columns (ΔCE per language); got {list(curve.columns)}")
    return langs

def dose_response_figure(curve: pd.DataFrame, component: str, target: str = "de",
                         s_range: tuple[float, float] | None = None, mark_s: float | None = None,
                         goal: float | None = None) -> Figure:
    """``vpd_lite.tutorial.edit_plots.dose_response_plot`` in matplotlib (for a PNG file); same arguments."""
    langs = curve_langs(curve)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    if s_range is not None:
        ax.axvspan(*s_range, color="#2ca02c", alpha=0.08, lw=0, label="admissible s")
    for lang in langs:
        ax.plot(curve["s"], curve[f"d_{lang}"], "-o", ms=2.5, lw=2.5 if lang == target else 1.2,
                color=LANG_COLOURS.get(lang, "#555555"), label=LANG_NAMES.get(lang, lang))
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
    """``vpd_lite.tutorial.edit_plots.scan_scatter`` in matplotlib (for a PNG file): the highlighted components are
    named in the legend."""
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


def _scan_pick(scan_best: pd.DataFrame, scan_curves: pd.DataFrame, target: str, uniform: float | None
               ) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, float | None]:
    """(best, top, curve, goal): the scan's rows for ``target``, its first row (the edit-scan rule's pick), that
    component's curve sorted by s, and the ΔCE that brings ``target`` to ``uniform`` (None without it)."""
    best = scan_best[scan_best["target"] == target] if "target" in scan_best.columns else scan_best
    if best.empty:
        raise KeyError(f"the scan has no rows for target language {target!r}")
    top = best.iloc[0]
    curve = scan_curves[scan_curves["component"] == top["component"]].sort_values("s")
    goal = None
    if uniform is not None and (curve["s"] == 1.0).any() and f"ce_{target}" in curve.columns:
        goal = round(uniform - float(curve.loc[curve["s"] == 1.0, f"ce_{target}"].iloc[0]), 3)
    return best, top, curve, goal


def pick_dose_response_figure(scan_best: pd.DataFrame, scan_curves: pd.DataFrame, target: str = "de",
                              uniform: float | None = None) -> Figure:
    """:func:`dose_response_figure` of the edit scan's pick for ``target`` (the first row of its best table: the
    edit-scan rule's pick), its admissible range shaded and its best s marked; ``uniform`` (ln(vocab), nats/token)
    adds the ΔCE that brings ``target`` to the uniform level. ``scan_best``/``scan_curves``: ``EditScan.best`` and
    ``EditScan.curves`` (or ``results/edit_scan_best.csv`` and ``results/edit_scan_curves.csv``)."""
    _, top, curve, goal = _scan_pick(scan_best, scan_curves, target, uniform)
    return dose_response_figure(curve.round(3), str(top["component"]), target,
                                (float(top["s_lo"]), float(top["s_hi"])), float(top["s_best"]), goal)


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
    best, top, curve, goal = _scan_pick(scan_best, scan_curves, target, uniform)
    marks = dict(highlight or {str(top["component"]): "edit-scan rule"})
    paths = [save_png(scan_scatter_figure(best, target, marks, goal), out / "edit_scan_scatter.png"),
             save_png(pick_dose_response_figure(scan_best, scan_curves, target, uniform),
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


def save_figures(summary: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Write the three figures as PNG into ``out_dir`` (atomically); returns their paths."""
    out = Path(out_dir)
    return [
        save_png(tradeoff_plot(summary), out / "erase_german_tradeoff.png"),
        save_png(off_target_plot(summary), out / "erase_german_off_target.png"),
        save_png(top16_plot(summary), out / "erase_german_top16.png"),
    ]


# ------------------------------------------------------------------------------------------ across decompositions
def curves_figure(curves: pd.DataFrame, runs: pd.DataFrame, cols: int = 3) -> Figure:
    """Small multiples, one panel per run: its German component's training-text ΔCE per language against s, the
    admissible range shaded, the German curve bold, and (with ``ln_v`` and ``ce_de`` columns) the German ΔCE
    that would reach ln V dashed.

    curves: rows ``run, s, d_<lang>, s_lo, s_hi`` (``across_decompositions_curves.csv``); runs: rows ``run,
    component, way_mean, seeds_meeting, n_seeds`` (``across_decompositions_runs.csv``) for the panel titles.
    Raises ``KeyError`` when a run of ``runs`` has no curve."""
    names = list(runs["run"])
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 2.5 * rows + 1.3))
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    langs = [c.removeprefix("d_") for c in curves.columns if c.startswith("d_")]
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            continue
        name = names[i]
        c = curves[curves["run"] == name].sort_values("s")
        if c.empty:
            raise KeyError(f"no dose-response curve for run {name!r}")
        r = runs[runs["run"] == name].iloc[0]
        ax.axvspan(float(c["s_lo"].iloc[0]), float(c["s_hi"].iloc[0]), color="#2ca02c", alpha=0.12, lw=0)
        for lang in langs:
            ax.plot(c["s"], c[f"d_{lang}"], lw=2.4 if lang == "de" else 1.0, color=LANG_COLOURS.get(lang, "#555555"),
                    label=LANG_NAMES.get(lang, lang))
        if {"ln_v", "ce_de"} <= set(c.columns) and c["ln_v"].notna().all():
            base = float(c.loc[(c["s"] - 1).abs().idxmin(), "ce_de"]) - float(c.loc[(c["s"] - 1).abs().idxmin(), "d_de"])
            ax.axhline(float(c["ln_v"].iloc[0]) - base, ls="--", color="black", lw=0.8,
                       label="German at ln V" if i == 0 else None)
        ax.axhline(0.1, ls=":", color="#888888", lw=0.8, label="tolerance 0.1" if i == 0 else None)
        ax.axhline(0.05, ls=":", color=LANG_COLOURS["en"], lw=0.8,
                   label="English tolerance 0.05" if i == 0 else None)
        short = str(r["component"]).replace("model.layers.", "L").replace("self_attn.", "").replace("mlp.", "")
        ax.set_title(f"{name}: {short}\n{r['way_mean']:.0%} of the way, {int(r['seeds_meeting'])}/"
                     f"{int(r['n_seeds'])} snippets meet", fontsize=8)
        ax.set_xlim(-30, 10)
        ax.tick_params(labelsize=7)
        if i % cols == 0:
            ax.set_ylabel("ΔCE (nats/token)", fontsize=8)
        if i >= len(names) - cols:
            ax.set_xlabel("s", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle("Each run's German component on training text: look for a German curve rising inside the green\n"
                 "admissible range (towards the dashed ln V line) while the other languages stay flat", fontsize=9)
    fig.tight_layout(rect=(0, 0.55 / fig.get_size_inches()[1], 1, 1))  # room for the legend below the panels
    return fig


def similarity_figure(similarity: pd.DataFrame, kind: str = "matrix") -> Figure:
    """Heatmap of the picked components' similarity between runs (``across_decompositions_similarity.csv``:
    rows ``run_a, run_b, matrix, read, write``): the rank-1 matrices' cosine by default (``kind``; -1 is the
    same matrix negated), blank for runs on different targets (no shared basis). Raises ``KeyError`` for an
    unknown ``kind``."""
    if kind not in similarity.columns:
        raise KeyError(f"no column {kind!r}; have {list(similarity.columns)}")
    table = similarity.pivot(index="run_a", columns="run_b", values=kind)
    order = list(dict.fromkeys(similarity["run_a"]))
    table = table.loc[order, order]
    fig = Figure(figsize=(min(NOTEBOOK_WIDTH_IN, 1.1 * len(order) + 2.2), 0.8 * len(order) + 1.6))
    ax = fig.subplots()
    im = ax.imshow(table.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    for i in range(len(order)):
        for j in range(len(order)):
            v = table.iloc[i, j]
            ax.text(j, i, "" if v != v else f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="cosine")
    what = {"matrix": "rank-1 matrices U_c V_cᵀ", "read": "read directions V_c", "write": "write directions U_c"}[kind]
    ax.set_title(f"How alike the German components are ({what})\n1 = the same component, -1 = the same matrix "
                 "negated, 0 = unrelated or in another matrix;\nblank = another target", fontsize=9)
    fig.tight_layout()
    return fig
