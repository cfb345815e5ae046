"""The three designs of the causal-importance (CI) function, drawn, and their comparison from the shipped results.

Notebook 01 shows what the CI function *sees* in each design (``ci_designs_picture``) and how the designs did on
the same work: five targeted German decompositions each (``load_ci_comparison`` reads
``results/ci_comparison_runs.csv``, written by ``scripts/ci_comparison.py``; ``ci_comparison_table`` sums it up
per design). The functions themselves are in ``vpd_lite/method/causal_importance.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from vpd_lite.erase.figures import NOTEBOOK_WIDTH_IN
from vpd_lite.tutorial.plots import FONT

RUNS_FILE = "ci_comparison_runs.csv"
CI_TYPE_NAMES = {
    "shared_mlp": "per matrix",
    "global_mlp": "global MLP",
    "global_transformer": "global transformer (default)",
}


def _box(ax, x: float, y: float, text: str, colour: str) -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize=FONT,
            bbox=dict(boxstyle="round,pad=0.35", facecolor=colour, edgecolor="0.35"))


def _arrow(ax, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="0.3", lw=1.2))


def ci_designs_picture() -> Figure:
    """Three panels, one per design of the CI function (``DecomposeConfig.ci_type``), each a data-flow sketch from
    what the function reads (top) to the CI it gives (bottom): one MLP per matrix reading that matrix's input at
    one token (``shared_mlp``); one MLP reading every matrix's input at one token (``global_mlp``); one
    transformer reading every matrix's input at every token of the sequence (``global_transformer``, the VPD
    paper's and the default). Two of the 14 matrices (q_proj and up_proj) stand for all of them."""
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 5.2), layout="constrained")
    axes = fig.subplots(1, 3)
    read, net, out = "#deebf7", "#fdd0a2", "#e5f5e0"
    for ax in axes:
        ax.set_xlim(0, 1), ax.set_ylim(0, 1), ax.axis("off")
    two = ((0.25, "q_proj"), (0.75, "up_proj"))

    ax = axes[0]
    ax.set_title("per matrix\n(shared_mlp)", fontsize=FONT)
    for x, name in two:
        _box(ax, x, 0.86, f"{name}\ninput\nat t", read)
        _arrow(ax, x, 0.75, x, 0.63)
        _box(ax, x, 0.55, "its\nMLP", net)
        _arrow(ax, x, 0.47, x, 0.35)
        _box(ax, x, 0.25, f"{name}\nCI at t", out)
    ax.text(0.5, 0.02, "each matrix alone,\none token", ha="center", fontsize=FONT, style="italic")

    ax = axes[1]
    ax.set_title("global MLP\n(global_mlp)", fontsize=FONT)
    for x, name in two:
        _box(ax, x, 0.86, f"{name}\ninput\nat t", read)
        _arrow(ax, x, 0.75, 0.5, 0.63)
        _arrow(ax, 0.5, 0.47, x, 0.35)
        _box(ax, x, 0.25, f"{name}\nCI at t", out)
    _box(ax, 0.5, 0.55, "one MLP", net)
    ax.text(0.5, 0.02, "all matrices,\none token", ha="center", fontsize=FONT, style="italic")

    ax = axes[2]
    ax.set_title("global transformer\n(global_transformer, default)", fontsize=FONT)
    _box(ax, 0.5, 0.86, "all inputs\nat every token\nof the sequence", read)
    _arrow(ax, 0.5, 0.75, 0.5, 0.63)
    _box(ax, 0.5, 0.55, "one transformer", net)
    _arrow(ax, 0.5, 0.47, 0.5, 0.35)
    _box(ax, 0.5, 0.25, "every CI\nat every token", out)
    ax.text(0.5, 0.02, "all matrices,\nthe whole sequence", ha="center", fontsize=FONT, style="italic")
    fig.suptitle("What the causal-importance function reads, in each design", fontsize=FONT + 1)
    return fig


def load_ci_comparison(folder: str | os.PathLike) -> tuple[pd.DataFrame | None, str | None]:
    """(runs, note): one row per comparison run from ``folder/ci_comparison_runs.csv`` (columns ``ci_type``,
    ``run``, ``seeds_meeting`` and ``n_seeds`` (snippet seeds meeting the claim), ``meets_on_mean``, ``way_mean``
    (fraction of the way to ln V), ``edge_d_de`` (nats/token, training text), ``final_train_loss``,
    ``ce_gap_ci_rounded``, ``ce_gap_pgd`` (nats/token, held-out), ...). ``runs`` is None with a one-line ``note``
    when the file is not there (a copy of the package without the repository's ``results/``)."""
    path = Path(folder) / RUNS_FILE
    if not path.is_file():
        return None, f"{RUNS_FILE} not found in {folder}: the comparison of CI functions is not shipped here."
    return pd.read_csv(path), None


def ci_comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per design of the CI function: how many of its runs meet the German claim on every snippet and on
    the mean ("k of n"), and the medians over its runs of the way to ln V (%, held-out), the edit's best
    admissible German ΔCE on training text and the final training loss (what the choosing rule reads), and the
    held-out rounded-CI and PGD gaps (nats/token). Designs in the order per matrix, global MLP, global transformer.
    Raises KeyError when a column of ``load_ci_comparison``'s table is missing."""
    rows = []
    for ci_type in [t for t in CI_TYPE_NAMES if t in set(runs["ci_type"])]:
        g = runs[runs["ci_type"] == ci_type]
        n = len(g)
        every = int((g["seeds_meeting"] == g["n_seeds"]).sum())
        rows.append({
            "CI function": CI_TYPE_NAMES[ci_type],
            "every snippet": f"{every} of {n}",
            "on the mean": f"{int(g['meets_on_mean'].astype(bool).sum())} of {n}",
            "way to ln V (median)": f"{100 * g['way_mean'].median():.0f} %",
            "German ΔCE on training text (median)": round(float(g["edge_d_de"].median()), 2),
            "final training loss (median)": round(float(g["final_train_loss"].median()), 3),
            "rounded-CI gap (median)": round(float(g["ce_gap_ci_rounded"].median()), 3),
            "PGD gap (median)": round(float(g["ce_gap_pgd"].median()), 3),
        })
    return pd.DataFrame(rows).set_index("CI function")
