"""Figures and tables of notebook 05, a targeted decomposition of German, in reading order:

1. :func:`two_streams_picture`: what one training step does with the two data streams (the remainder's mask
   differs, nothing else is new);
2. :func:`plot_targeted_history`: the live run's loss curves, capability batches beside rest batches;
3. :func:`quality_table`, :func:`plot_quality`: its held-out quality against the gates fixed before its runs
   (``vpd_lite.method.evaluate.TARGETED_QUALITY_TARGETS``);
4. :func:`plot_heldout_ce`: held-out CE per language before and after the one-scalar edit of its German component;
5. :func:`load_comparison`, :func:`plot_comparison`: the shipped seed table of the targeted decompositions beside
   the full ones (``results/targeted_decompositions.csv``, ``results/across_decompositions.csv``).

Matplotlib figures are ``matplotlib.figure.Figure`` objects (no pyplot), titled with what to look at; CE is in
nats/token, L0 in components per matrix and token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Patch

from vpd_lite.erase.protocol import CLAIM
from vpd_lite.method.evaluate import TARGETED_QUALITY_TARGETS
from vpd_lite.models.corpus import LANGS, lang_name
from vpd_lite.tutorial.plots import FONT, LANG_COLOURS, NOTEBOOK_WIDTH_IN


# ------------------------------------------------------------------------------------------------ 1 the method
def two_streams_picture(capability: str = "de", rest_minimality_ratio: float = 2.0) -> Figure:
    """A diagram of one step of a targeted decomposition: the capability's batch and the rest's batch, the masks
    each pass uses (components g + (1 − g)·u on both; the remainder W − Σ U Vᵀ u on the first, 1 on the second)
    and the losses each contributes (no faithfulness loss)."""
    name = lang_name(capability)
    rest = [lang_name(k) for k in LANGS if k != capability]
    others = ", ".join(rest[:2]) + ",\n" + ", ".join(rest[2:])
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.set(xlim=(0, 10), ylim=(0, 4.4))
    ax.axis("off")

    def box(x: float, y: float, w: float, text: str, colour: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, 1.3, boxstyle="round,pad=0.05", fc=colour, ec="#444444", lw=0.8))
        ax.text(x + w / 2, y + 0.65, text, ha="center", va="center", fontsize=FONT - 1, wrap=True)

    rows = [(2.6, f"{name} batch\n(the capability)", LANG_COLOURS.get(capability, "#dd8452"),
             "remainder mask = u\n(may be switched off)",
             "stochastic + adversarial\nreconstruction, minimality"),
            (0.5, f"rest batch:\n{others}", "#bbbbbb", "remainder mask = 1\n(always on)",
             f"stochastic reconstruction,\nminimality × {rest_minimality_ratio:g}")]
    for y, data, colour, remainder, losses in rows:
        box(0.1, y, 2.4, data, colour)
        box(3.1, y, 3.0, "components: g + (1 − g)·u\n" + remainder, "#f2f2f2")
        box(6.7, y, 3.2, losses, "#e8f0fa")
        for x0, x1 in ((2.55, 3.05), (6.15, 6.65)):
            ax.annotate("", (x1, y + 0.65), (x0, y + 0.65), arrowprops=dict(arrowstyle="->", lw=1))
    ax.text(5.0, 4.25, "no faithfulness loss: the remainder W − Σ U_c V_cᵀ is kept on purpose", ha="center",
            fontsize=FONT - 1, style="italic")
    ax.set_title("One step of a targeted decomposition: only the remainder's mask differs between the streams",
                 fontsize=FONT + 1)
    return fig


# ------------------------------------------------------------------------------------------------ 2 the run
def plot_targeted_history(history: Sequence[Mapping[str, Any]], capability: str = "de") -> Figure:
    """The live run's curves from ``decompose``'s history: reconstruction KL per token (log scale) on the
    capability's batches (stochastic, adversarial) and on the rest's (stochastic, remainder on), and the mean L0
    per matrix on each stream. Raises ``ValueError`` when the history has no logged training row."""
    rows = [r for r in history if "stochastic_recon" in r]
    if not rows:
        raise ValueError("the history has no training rows to plot")
    steps = [r["step"] for r in rows]
    name = lang_name(capability)
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    colour = LANG_COLOURS.get(capability, "#dd8452")
    for key, label, style in (("stochastic_recon", f"{name} batches, stochastic", "-"),
                              ("adversarial_recon", f"{name} batches, adversarial", "--"),
                              ("rest_stochastic_recon", "rest batches, stochastic (remainder on)", "-")):
        pts = [(s, r[key]) for s, r in zip(steps, rows) if r.get(key) is not None and r[key] > 0]
        if pts:
            ax1.plot(*zip(*pts), style, label=label, color="#555555" if key.startswith("rest") else colour)
    ax1.set_yscale("log")
    ax1.set_xlabel("training step", fontsize=FONT)
    ax1.set_ylabel("KL to the target\n(nats/token, log scale)", fontsize=FONT)
    ax1.set_title("Reconstruction:\nboth streams should stay low", fontsize=FONT + 1)
    ax1.legend(fontsize=FONT - 2)
    ax2.plot(steps, [r["l0_mean"] for r in rows], color=colour, label=f"{name} batches")
    ax2.plot(steps, [r.get("rest_l0_mean", float("nan")) for r in rows], color="#555555", label="rest batches")
    ax2.set_xlabel("training step", fontsize=FONT)
    ax2.set_ylabel("mean L0\n(components / token / matrix)", fontsize=FONT)
    ax2.set_title("Sparsity:\ncomponents each stream's tokens use", fontsize=FONT + 1)
    ax2.legend(fontsize=FONT - 2)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=FONT - 1)
    return fig


# ------------------------------------------------------------------------------------------------ 3 its quality
def quality_table(metrics: Mapping[str, Any], capability: str = "de") -> pd.DataFrame:
    """``evaluate_targeted``'s metrics as one row per gate of ``TARGETED_QUALITY_TARGETS`` (what is measured, on
    which held-out text, this run's value, the gate and whether it is met), and the stochastic-mask CE gap, which
    has no gate (reported as the paper reports it: "none", met "–")."""
    t, name = TARGETED_QUALITY_TARGETS, lang_name(capability)
    met = iter(metrics["targets_met"].values())  # in the order of the gated rows below
    rows = [("CE gap, rounded-CI masks (nats/token)", name, metrics["ce_gap"]["ci_rounded"], f"≤ {t['ce_gap_ci_rounded_max']}"),
            ("CE gap, stochastic masks (nats/token)", name, metrics["ce_gap"]["stochastic"], None),
            ("CE gap, PGD masks (nats/token)", name, metrics["ce_gap"]["pgd"], f"≤ {t['ce_gap_pgd_max']}"),
            ("mean L0 (components / token / matrix)", name, metrics["l0_mean"], f"≤ {t['l0_mean_max']:g}"),
            ("dead components (share)", name, metrics["dead_frac"], f"< {t['dead_frac_max']}"),
            ("CE gap, rounded CI + remainder on (nats/token)", "the other languages",
             metrics["rest"]["ce_gap"]["ci_rounded_remainder"], f"≤ {t['rest_ce_gap_max']}")]
    return pd.DataFrame([{"measure": m, "held-out text": txt, "this run": round(float(v), 3), "gate": g or "none",
                          "met": "–" if g is None else ("yes" if next(met) else "no")} for m, txt, v, g in rows])


def plot_quality(metrics: Mapping[str, Any], capability: str = "de") -> Figure:
    """The CE gaps of ``evaluate_targeted`` (nats/token above the target) as bars: the capability's held-out text
    with the components alone (rounded CI, stochastic, PGD masks) and the other languages' with the remainder on,
    each bar's gate as a dashed mark."""
    t, name = TARGETED_QUALITY_TARGETS, lang_name(capability)
    bars = [(f"{name}:\nrounded CI", metrics["ce_gap"]["ci_rounded"], t["ce_gap_ci_rounded_max"]),
            (f"{name}:\nstochastic", metrics["ce_gap"]["stochastic"], None),
            (f"{name}:\nPGD", metrics["ce_gap"]["pgd"], t["ce_gap_pgd_max"]),
            ("others: rounded CI\n+ remainder on", metrics["rest"]["ce_gap"]["ci_rounded_remainder"],
             t["rest_ce_gap_max"])]
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 3.4), layout="constrained")
    ax = fig.subplots()
    colours = [LANG_COLOURS.get(capability, "#dd8452")] * 3 + ["#888888"]
    drawn = ax.bar(range(len(bars)), [b[1] for b in bars], color=colours, width=0.6)
    ax.bar_label(drawn, [f"{b[1]:+.3f}" for b in bars], fontsize=FONT - 1, padding=2)
    for i, (_, _, gate) in enumerate(bars):
        if gate is not None:
            ax.hlines(gate, i - 0.4, i + 0.4, colors="black", linestyles="--", lw=1,
                      label="gate (at most)" if i == 0 else None)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=FONT - 1)
    ax.set_ylim(min(0.0, min(b[1] for b in bars)) * 1.2, 1.25 * max(max(b[1] for b in bars), t["ce_gap_pgd_max"]))
    ax.set_ylabel("CE − target (nats/token)", fontsize=FONT)
    ax.set_title(f"Held-out quality: a bar under its dashed gate passes (the stochastic gap has no gate;\n"
                 f"{name} with the components alone, the other languages with the remainder on)", fontsize=FONT + 1)
    ax.legend(fontsize=FONT - 1, loc="upper left")
    return fig


# ------------------------------------------------------------------------------------------------ 4 the edit
def plot_heldout_ce(heldout: pd.DataFrame, ln_v: float, target: str = "de") -> Figure:
    """Held-out CE per language of the original model and of the edited one, grouped bars, with ln V dashed.

    heldout: ``vpd_lite.erase.edit_scan.edit_curve`` rows for s = 1 (the original) and the fitted s, in that
    order (columns ``s``, ``ce_<lang>``)."""
    langs = [c.removeprefix("ce_") for c in heldout.columns if c.startswith("ce_")]
    before, after = heldout.iloc[0], heldout.iloc[-1]
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 3.4), layout="constrained")
    ax = fig.subplots()
    x = list(range(len(langs)))
    ax.bar([i - 0.2 for i in x], [before[f"ce_{k}"] for k in langs], 0.4, color="#bbbbbb", label="original (s = 1)")
    colours = [LANG_COLOURS.get(k, "#4c72b0") for k in langs]
    ax.bar([i + 0.2 for i in x], [after[f"ce_{k}"] for k in langs], 0.4, color=colours)
    ax.axhline(ln_v, color="black", ls="--", lw=1)
    ax.set_xticks(x, [lang_name(k) for k in langs], fontsize=FONT)
    ax.set_ylim(0, ln_v * 1.12)
    ax.set_ylabel("held-out CE (nats/token)", fontsize=FONT)
    ax.set_title(f"One scalar on one component:\n{lang_name(target)} should rise toward ln V, the others stay",
                 fontsize=FONT + 1)
    handles = [Patch(color="#bbbbbb"), tuple(Patch(color=c) for c in colours),  # one swatch per language's colour
               Line2D([], [], color="black", ls="--", lw=1)]
    fig.legend(handles, ["original (s = 1)", f"edited (s = {float(after['s']):+.2f})",
                         f"ln V = {ln_v:.2f} (a uniform guess)"], handler_map={tuple: HandlerTuple(ndivide=None, pad=0)},
               fontsize=FONT - 1, loc="outside right upper")  # beside the axes, inside the figure's width
    return fig


# ------------------------------------------------------------------------------------------------ 5 the seed table
#: The shipped tables the comparison reads (``results/``): the targeted decompositions' seed table (one row per
#: run x snippet seed) and the study across full decompositions, in the same columns.
TARGETED_FILE, ACROSS_FILE = "targeted_decompositions.csv", "across_decompositions.csv"
KIND_COLOURS = {"targeted decomposition": "#dd8452", "targeted, retrained target": "#f2b98f",
                "full decomposition": "#4c72b0", "retrained target": "#8c8c8c"}


def load_comparison(folder: str | os.PathLike) -> tuple[pd.DataFrame | None, str | None]:
    """(seeds, note): the rows of ``folder/targeted_decompositions.csv`` and ``folder/across_decompositions.csv``
    together, with a ``kind`` column ("targeted decomposition", "targeted, retrained target", "full decomposition"
    or "retrained target": a decomposition of a target retrained with another seed), targeted runs first; run names of the targeted file
    that also name a full run get a "targeted " prefix. ``note``: one line saying which file is missing (None when
    both are there). ``seeds`` is None when neither file exists."""
    folder = Path(folder)
    parts, missing = [], []
    for name, kind in ((TARGETED_FILE, "targeted decomposition"), (ACROSS_FILE, None)):
        path = folder / name
        if not path.is_file():
            missing.append(name)
            continue
        frame = pd.read_csv(path)
        if kind is None:
            frame["kind"] = ["full decomposition" if t == "shipped" else "retrained target" for t in frame["target"]]
        else:
            frame["kind"] = [kind if t == "shipped" else "targeted, retrained target" for t in frame["target"]]
        parts.append(frame)
    if len(parts) == 2:
        full = set(parts[1]["run"])
        parts[0]["run"] = [f"targeted {r}" if r in full else r for r in parts[0]["run"]]
    note = None
    if missing:
        note = (f"{' and '.join(missing)} not found in {folder}: "
                + ("the targeted decompositions' seed table is not shipped yet, so only the full decompositions "
                   "are shown." if missing == [TARGETED_FILE] else "nothing to compare here."))
    seeds = pd.concat(parts, ignore_index=True) if parts else None
    return seeds, note


def plot_comparison(seeds: pd.DataFrame) -> Figure:
    """Two panels, one row per run (``load_comparison``'s table), each snippet seed a point and the run's mean a
    bar: how far the fitted edit takes German CE towards ln V (the claim asks at least 80 %), and the worst damage
    to another language (English ΔCE and the worst of French / Spanish / Italian, nats/token) against their
    tolerances. Colour: the kind of decomposition."""
    runs = list(dict.fromkeys(seeds["run"]))
    fig = Figure(figsize=(NOTEBOOK_WIDTH_IN, 0.42 * len(runs) + 1.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    for i, run in enumerate(runs):
        g = seeds[seeds["run"] == run]
        colour = KIND_COLOURS.get(g["kind"].iloc[0], "#555555")
        ax1.barh(i, g["way"].mean(), color=colour, alpha=0.35, height=0.7)
        ax1.plot(g["way"], [i] * len(g), "o", color=colour, ms=5)
        ax2.plot(g["d_en"], [i - 0.12] * len(g), "o", color=colour, ms=5)
        ax2.plot(g["d_worst_other"], [i + 0.12] * len(g), "^", color=colour, ms=5)
    ax1.axvline(CLAIM["min_fraction"], color="black", ls="--", lw=1)
    ax1.set_yticks(range(len(runs)), runs, fontsize=FONT - 1)
    ax1.invert_yaxis()
    ax1.set_xlim(0, 1.05)
    ax1.set_xlabel("share of the way from German CE to ln V\n(held-out; dashed: the claim's "
                   f"{CLAIM['min_fraction']:.0%})", fontsize=FONT - 1)
    ax1.set_title("German erased:\nright of the dashed line", fontsize=FONT + 1)
    ax2.axvline(CLAIM["max_d_en"], color=LANG_COLOURS["en"], ls=":", lw=1)
    ax2.axvline(CLAIM["max_d_other"], color="#888888", ls=":", lw=1)
    ax2.set_xlabel(f"held-out ΔCE (nats/token)\n● English (dotted: {CLAIM['max_d_en']}), "
                   f"▲ worst of fr/es/it ({CLAIM['max_d_other']})", fontsize=FONT - 1)
    ax2.set_title("Others untouched:\nleft of the dotted lines", fontsize=FONT + 1)
    handles = [ax1.bar(0, 0, color=c, label=k) for k, c in KIND_COLOURS.items() if k in set(seeds["kind"])]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=FONT - 1)
    fig.suptitle("One point per snippet of 4 German tokens, bars the run's mean", fontsize=FONT)
    return fig
