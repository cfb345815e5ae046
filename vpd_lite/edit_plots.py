"""Figures of the German edit, from the summary table of ``vpd_lite.reproduce.summarise``.

* :func:`tradeoff_plot` — German CE increase vs English CE increase per method, one point per budget;
* :func:`off_target_plot` — CE change on en/fr/es/it per method, one panel per budget;
* :func:`top16_plot` — the single German-only component vs the top-16 German-specific components.

All CE numbers are in nats/token; ΔCE = after − before on held-out text.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from vpd_lite.checkpoint import atomic_write_bytes

METHOD_NAMES = {
    "scalar": "scalar, 1 German component",
    "scalar_top16": "scalars, top-16 German components",
    "lora_r1_all": "LoRA rank 1, all matrices",
    "lora_r4_all": "LoRA rank 4, all matrices",
    "lora_r1_local": "LoRA rank 1, component's matrix",
}
COLORS = {"scalar": "C3", "scalar_top16": "C1", "lora_r1_all": "C0", "lora_r4_all": "C9", "lora_r1_local": "C2"}


def _methods(summary: pd.DataFrame) -> list[str]:
    return [m for m in METHOD_NAMES if m in set(summary["method"])]


def tradeoff_plot(summary: pd.DataFrame) -> Figure:
    """German ΔCE (y) against English ΔCE (x) per method; points labelled by German-token budget."""
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for m in _methods(summary):
        d = summary[summary["method"] == m].sort_values("budget")
        ax.plot(d["d_en"], d["de_after"] - d["de_before"], "o-", color=COLORS[m], label=METHOD_NAMES[m])
        for _, r in d.iterrows():
            ax.annotate(str(int(r["budget"])), (r["d_en"], r["de_after"] - r["de_before"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points", color=COLORS[m])
    gap = float((summary["uniform"] - summary["de_before"]).iloc[0])
    ax.axhline(gap, ls="--", color="grey", lw=1)
    ax.annotate("German at ln(vocab) (uniform) ", (1.0, gap), xycoords=("axes fraction", "data"), ha="right",
                va="top", fontsize=8, color="grey")
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("English CE increase (nats/token)")
    ax.set_ylabel("German CE increase (nats/token)")
    ax.set_title("Erasing German: want high German rise at little English rise (top-left)\n"
                 "numbers = German tokens trained on", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def off_target_plot(summary: pd.DataFrame, langs: tuple[str, ...] = ("en", "fr", "es", "it")) -> Figure:
    """Grouped bars of ΔCE on the non-German languages per method, one panel per budget."""
    budgets = sorted(summary["budget"].unique())
    methods = _methods(summary)
    fig, axes = plt.subplots(1, len(budgets), figsize=(3.2 * len(budgets), 3.6), sharey=True, squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for ax, b in zip(axes[0], budgets):
        d = summary[summary["budget"] == b].set_index("method")
        for i, m in enumerate(methods):
            if m not in d.index:
                continue
            vals = [float(d.loc[m, f"d_{lang}"]) for lang in langs]
            ax.bar([j + (i - (len(methods) - 1) / 2) * width for j in range(len(langs))], vals, width,
                   color=COLORS[m], label=METHOD_NAMES[m])
        ax.axhline(0, color="black", lw=0.5)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_title(f"{b} German tokens", fontsize=9)
    axes[0][0].set_ylabel("CE change (nats/token)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(methods), fontsize=8, frameon=False)
    fig.suptitle("Collateral damage: CE change on the other languages (lower is better)", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def top16_plot(summary: pd.DataFrame) -> Figure:
    """The single German-only component vs the top-16 German-specific components, across budgets."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for m in ("scalar", "scalar_top16"):
        d = summary[summary["method"] == m].sort_values("budget")
        if d.empty:
            continue
        ax1.plot(d["budget"], 100 * d["frac_to_uniform"], "o-", color=COLORS[m], label=METHOD_NAMES[m])
        other = d[["d_en", "d_fr", "d_es", "d_it"]]
        ax2.plot(d["budget"], other.max(axis=1), "o-", color=COLORS[m], label=METHOD_NAMES[m])
    budgets = sorted(summary["budget"].unique())
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("German tokens trained on")
    ax1.axhline(100, ls="--", color="grey", lw=1)
    ax1.set_ylabel("German: % of the way to ln(vocab)")
    ax1.set_title("German erased (higher is better)", fontsize=9)
    ax2.axhline(0, color="black", lw=0.5)
    ax2.set_ylabel("worst CE change en/fr/es/it (nats/token)")
    ax2.set_title("Worst collateral damage (lower is better)", fontsize=9)
    ax1.legend(fontsize=8)
    fig.suptitle("One German-only component vs the top-16 German-specific components", fontsize=10)
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_figures(summary: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Write the three figures as PNG into ``out_dir`` (atomically); returns their paths."""
    out = Path(out_dir)
    return [
        _save(tradeoff_plot(summary), out / "erase_german_tradeoff.png"),
        _save(off_target_plot(summary), out / "erase_german_off_target.png"),
        _save(top16_plot(summary), out / "erase_german_top16.png"),
    ]
