"""Figures of the study across decompositions (``results/across_decompositions_*``): each run's German component's
dose-response side by side, and how alike the picked components are.

Inputs are the study's CSV tables (``vpd_lite.commands.across_decompositions`` writes them), so the notebook draws the shipped
answer without recomputing any decomposition. ΔCE is in nats/token on training text; cosines are unitless.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from vpd_lite.models.corpus import LANG_NAMES
from vpd_lite.tutorial.edit_widget import LANG_COLORS
from vpd_lite.tutorial.plots import NOTEBOOK_WIDTH_IN


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
            ax.plot(c["s"], c[f"d_{lang}"], lw=2.4 if lang == "de" else 1.0, color=LANG_COLORS.get(lang, "#555555"),
                    label=LANG_NAMES.get(lang, lang))
        if {"ln_v", "ce_de"} <= set(c.columns) and c["ln_v"].notna().all():
            base = float(c.loc[(c["s"] - 1).abs().idxmin(), "ce_de"]) - float(c.loc[(c["s"] - 1).abs().idxmin(), "d_de"])
            ax.axhline(float(c["ln_v"].iloc[0]) - base, ls="--", color="black", lw=0.8,
                       label="German at ln V" if i == 0 else None)
        ax.axhline(0.1, ls=":", color="#888888", lw=0.8, label="tolerance 0.1" if i == 0 else None)
        ax.axhline(0.05, ls=":", color=LANG_COLORS.get("en", "#2c7fb8"), lw=0.8,
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


#: The study's tables in ``results/`` (written by ``python -m vpd_lite.across_decompositions --out results``).
STUDY_FILES = {"seeds": "across_decompositions.csv", "runs": "across_decompositions_runs.csv",
               "curves": "across_decompositions_curves.csv", "similarity": "across_decompositions_similarity.csv",
               "mean_max": "across_decompositions_mean_max.csv"}


def load_study(folder: str | os.PathLike) -> dict[str, pd.DataFrame] | None:
    """The study's tables in ``folder`` as ``{"seeds", "runs", "curves", "similarity", "mean_max": DataFrame}``,
    or None when one of them is missing (e.g. a plain install without ``results/``)."""
    folder = Path(folder)
    if not all((folder / name).is_file() for name in STUDY_FILES.values()):
        return None
    return {key: pd.read_csv(folder / name) for key, name in STUDY_FILES.items()}


def _worst_of_means(g: pd.DataFrame) -> float:
    """The claim's worst other language: the largest of the French, Spanish and Italian seed means (the mean of
    each seed's worst when the per-language columns are missing)."""
    cols = [c for c in ("d_fr", "d_es", "d_it") if c in g]
    return float(g[cols].mean().max()) if cols else float(g["d_worst_other"].mean())


def verdict_table(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per run (``across_decompositions.csv`` rows grouped): its component, the way to ln V per snippet
    seed as whole percent, English ΔCE and the worst of French, Spanish and Italian (seed means, nats/token, as
    the claim reads them), and how many snippets meet the claim: the table the notebook shows."""
    rows = []
    for run, g in seeds.groupby("run", sort=False):
        g = g.sort_values("seed")
        rows.append({"run": run, "target": g["target"].iloc[0], "component": g["component"].iloc[0],
                     "way per snippet": " / ".join(f"{w:.0%}" for w in g["way"]),
                     "way (mean)": f"{g['way'].mean():.0%}", "English ΔCE": f"{g['d_en'].mean():+.3f}",
                     "worst fr/es/it ΔCE": f"{_worst_of_means(g):+.3f}",
                     "snippets meeting the claim": f"{int(g['meets_claim'].sum())} of {len(g)}"})
    return pd.DataFrame(rows)


def recipe_notes(runs: pd.DataFrame) -> str:
    """Markdown naming the runs made with another recipe than the first run's, and what each changes (the
    ``recipe`` column of ``across_decompositions_runs.csv``); empty when every run used one recipe or the
    table has no such column."""
    if "recipe" not in runs or runs.empty:
        return ""
    ref = runs["recipe"].iloc[0]
    other = runs[runs["recipe"] != ref]
    if other.empty:
        return ""
    items = "; ".join(f"**{r['run']}**: {r['recipe']}" for _, r in other.iterrows())
    return (f"Made with another recipe than the first row's ({ref}): {items}. Their rows are shown above but "
            "not counted in the study's answer (the k-of-n lines), which compares decompositions of one recipe.")
