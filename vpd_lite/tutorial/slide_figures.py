"""The course's key figures at slide size, for teachers: ``python -m vpd_lite.course figures DIR``.

Each figure of :data:`SLIDES` is drawn by the library's own figure function (the one its notebook calls, with the
notebook's arguments), then made readable on a projected 16:9 slide by :func:`to_slide`: 13.33 x 7.5 inches at
150 dpi (2000 x 1125 px), every text at least 16 pt, long titles wrapped. :func:`write_slide_figures` writes them as
numbered PNG files with a page listing them (``index.md``). The pictures of the method need no data; the results
figures read only the tables the course ships in ``results/`` (nothing is trained or decomposed), and are skipped,
one line each, where those tables are missing (an installed copy of the package without ``results/``).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.text import Text

from vpd_lite.erase.figures import (
    erase_any_heatmap,
    figure_renderer,
    off_target_plot,
    pick_dose_response_figure,
    place_point_labels,
    save_png,
    top16_plot,
    tradeoff_plot,
)
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.models import paths
from vpd_lite.tutorial import ci_designs, plots, targeted

#: A slide's size in pixels (16:9) and the resolution the PNGs are written at: 13.33 x 7.5 inches.
SLIDE_PX = (2000, 1125)
SLIDE_DPI = 150
#: The smallest text on a slide (points, at the slide's 13.33-inch width): readable from the back of a room.
MIN_FONT_PT = 16.0
#: How much every text grows (then raised to MIN_FONT_PT): the notebooks' figures are drawn for a screen.
FONT_SCALE = 1.6
INDEX = "index.md"


@dataclass(frozen=True)
class SlideFigure:
    """One figure of the set: its file name (without ``.png``), its title on the index page, the notebook that
    shows it, one sentence on what to look for, the data it is drawn from (in words), the files of ``results/`` it
    needs (none for the pictures of the method), and ``draw``: the results folder -> the figure."""

    name: str
    title: str
    notebook: str
    look_for: str
    source: str
    needs: tuple[str, ...]
    draw: Callable[[Path], Figure]


def _masks(_: Path) -> Figure:
    """Notebook 01's masks: g = [1, 0.9, 0.4, 0, 0, 0], random u (seed 0), adversarial s = [0, 0, 0, 1, 0, 1]."""
    u = torch.rand(6, generator=torch.Generator().manual_seed(0))
    return plots.mask_picture([1.0, 0.9, 0.4, 0.0, 0.0, 0.0], u, [0.0, 0.0, 0.0, 1.0, 0.0, 1.0])


def _summary(results: Path) -> pd.DataFrame:
    return pd.read_csv(results / "erase_german.csv")


def _dose_response(results: Path) -> Figure:
    ln_v = float(_summary(results)["uniform"].iloc[0])  # ln(vocab), nats/token, as the full run wrote it
    return pick_dose_response_figure(pd.read_csv(results / "edit_scan_best.csv"),
                                     pd.read_csv(results / "edit_scan_curves.csv"), "de", uniform=ln_v)


def _any_language(results: Path) -> Figure:
    return erase_any_heatmap(pd.read_csv(results / "erase_any_language.csv"),
                             title="Erase any language with one scalar (held-out ΔCE, seed means)")


def _comparison(results: Path) -> Figure:
    seeds, _ = targeted.load_comparison(results)
    return targeted.plot_comparison(seeds)


FULL_RUN = "the full run of python -m vpd_lite.reproduce"
#: The figure set, in teaching order (notebooks 01, 04, 05).
SLIDES: tuple[SlideFigure, ...] = (
    SlideFigure("01_rank1_components", "A weight matrix as a sum of rank-1 components", "01_decompose.ipynb",
                "Each small matrix is one component, a write direction times a read direction; added up they "
                "give the weight matrix W on the right.",
                "no data: a random 6 x 8 matrix made of 3 components (seed 0), as in the notebook", (),
                lambda _: plots.rank1_picture(d_out=6, d_in=8, n_components=3)),
    SlideFigure("02_masks", "Causal importance, stochastic and adversarial masks", "01_decompose.ipynb",
                "A mask is never below the causal importance (black bar): where it is 1 the component is always "
                "kept, where it is 0 random (blue) or worst-case (red) sources decide.",
                "no data: the notebook's example, g = [1, 0.9, 0.4, 0, 0, 0], random sources (seed 0) and the "
                "adversary's s = [0, 0, 0, 1, 0, 1]", (), _masks),
    SlideFigure("03_ci_designs", "Three designs of the causal-importance function", "01_decompose.ipynb",
                "What each design reads before it decides how much a token needs a component: one matrix at one "
                "token, every matrix at one token, or every matrix at every token of the sequence.",
                "no data: a diagram", (), lambda _: ci_designs.ci_designs_picture()),
    SlideFigure("04_dose_response", "Turning one component's knob: the dose-response", "04_erase_german.ipynb",
                "As the prefactor s moves away from 1, German's loss (the thick orange line) climbs towards the "
                "dashed ln V line while the other languages stay near 0 inside the green admissible range.",
                f"results/edit_scan_best.csv and results/edit_scan_curves.csv (the edit scan's pick, training "
                f"text), ln V from results/erase_german.csv ({FULL_RUN})",
                ("edit_scan_best.csv", "edit_scan_curves.csv", "erase_german.csv"), _dose_response),
    SlideFigure("05_erase_german_tradeoff", "Erasing German: one scalar against LoRA", "04_erase_german.ipynb",
                "The good corner is top-left: German's loss goes up to the dashed line while English barely moves; "
                "LoRA erases German too, but English's loss rises by tenths of a nat to several nats.",
                f"results/erase_german.csv ({FULL_RUN}; held-out text, seed means)", ("erase_german.csv",),
                lambda results: tradeoff_plot(_summary(results))),
    SlideFigure("06_off_target", "Collateral damage on the other languages", "04_erase_german.ipynb",
                "Bars below the dotted tolerance line mean the edit left English, French, Spanish and Italian "
                "alone; compare the one-scalar bars with LoRA's at every budget.",
                f"results/erase_german.csv ({FULL_RUN}; held-out text, seed means)", ("erase_german.csv",),
                lambda results: off_target_plot(_summary(results))),
    SlideFigure("07_top16", "One component against the top-16 German components", "04_erase_german.ipynb",
                "The component the edit scan picks erases more German (left) with less damage elsewhere (right) "
                "than editing the 16 most German-specific components together.",
                f"results/erase_german.csv ({FULL_RUN}; held-out text, seed means)", ("erase_german.csv",),
                lambda results: top16_plot(_summary(results))),
    SlideFigure("08_erase_any_language", "Erase any language with one scalar", "04_erase_german.ipynb",
                "A dark-red diagonal with pale cells elsewhere means each language could be erased alone; a red "
                "frame marks another language that moved beyond its tolerance.",
                f"results/erase_any_language.csv ({FULL_RUN}; held-out text, seed means)",
                ("erase_any_language.csv",), _any_language),
    SlideFigure("09_two_streams", "One step of a targeted decomposition", "05_targeted_german.ipynb",
                "German batches and the rest's batches go through the same components; only the remainder's mask "
                "differs, and there is no faithfulness loss.",
                "no data: a diagram, with the targeted recipe's minimality ratio for the rest's batches", (),
                lambda _: targeted.two_streams_picture(
                    "de", DecomposeConfig.targeted_recipe("de", seed=0).rest_minimality_ratio)),
    SlideFigure("10_targeted_vs_full", "Targeted against full decompositions, across seeds",
                "05_targeted_german.ipynb",
                "Each row is one decomposition: points right of the dashed line erase German far enough, and points "
                "left of the dotted lines leave the other languages within tolerance.",
                "results/targeted_decompositions.csv and results/across_decompositions.csv (held-out text, one "
                "point per snippet of 4 German tokens)",
                ("targeted_decompositions.csv", "across_decompositions.csv"), _comparison),
)


# ------------------------------------------------------------------------------------------------ slide size
def _bigger(size: float) -> float:
    return max(MIN_FONT_PT, FONT_SCALE * size)


def _wrap(text: Text, room_px: float, renderer) -> None:
    """Re-flow ``text`` at word boundaries when it is wider than ``room_px`` (measured, in pixels)."""
    words = text.get_text().split()
    width = text.get_window_extent(renderer).width
    if width <= room_px or len(words) < 2:
        return
    longest = max(len(line) for line in text.get_text().split("\n"))
    text.set_text(textwrap.fill(" ".join(words), max(12, int(longest * room_px / width))))


def _reflowed(fig: Figure) -> list[tuple[Text, float]]:
    """The texts that may be re-flowed, each with its room in pixels: the figure's title (the figure's width),
    each panel's title and axis labels (the panel's width; its height for the vertical label). Texts placed inside
    a panel (a diagram's boxes, notes) keep their lines."""
    out = [(fig._suptitle, 0.95 * fig.bbox.width)] if fig._suptitle is not None else []  # no public getter
    for ax in fig.axes:
        box = ax.get_window_extent()
        out += [(ax.title, 0.95 * box.width), (ax.xaxis.label, 0.95 * box.width), (ax.yaxis.label, 0.95 * box.height)]
    return [(text, room) for text, room in out if text.get_text() and text.get_visible()]


def _legend_columns(labels: list[str], size: float, fig: Figure, renderer) -> int:
    """How many columns of ``labels`` (at ``size`` points) fit across the figure."""
    widest = max((Text(0, 0, label, fontsize=size, figure=fig).get_window_extent(renderer).width
                  for label in labels), default=0.0)
    per_entry = widest + 4 * size * fig.dpi / 72  # the handle and the gap beside it
    return max(1, min(len(labels), int(0.95 * fig.bbox.width / max(per_entry, 1.0))))


def _rebuild_legend(fig: Figure, ax, leg, renderer) -> None:
    """Draw ``leg`` again with its (already enlarged) font size, so that its markers and spacing grow with the
    text: a panel's legend in the same place, a figure's legend below the panels in as many columns as fit."""
    labels = [t.get_text() for t in leg.get_texts()]
    size = leg.get_texts()[0].get_fontsize() if labels else MIN_FONT_PT
    title = leg.get_title().get_text() or None
    kwargs = dict(fontsize=size, frameon=leg.get_frame_on(), title=title, title_fontsize=size)
    handles = leg.legend_handles
    leg.remove()
    if ax is None:
        fig.legend(handles, labels, loc="outside lower center", ncols=_legend_columns(labels, size, fig, renderer),
                   **kwargs)
        return
    anchor = leg.get_bbox_to_anchor()  # the panel itself unless the legend was placed by a point or box of its own
    if anchor is not ax.bbox:
        box = anchor.transformed(ax.transAxes.inverted())  # in the panel's coordinates, which the new layout keeps
        anchor = (box.x0, box.y0, box.width, box.height)
    ax.legend(handles, labels, loc=leg._loc, bbox_to_anchor=None if anchor is ax.bbox else anchor,  # _loc: no getter
              **kwargs)


def to_slide(fig: Figure) -> Figure:
    """``fig`` made ready for a 16:9 slide, in place: 13.33 x 7.5 inches at 150 dpi (2000 x 1125 px), every text
    FONT_SCALE times larger and at least MIN_FONT_PT points, titles and axis labels wider than their room
    re-flowed, legends drawn again at the new size (a figure's legend below the panels) and the whole laid out
    again (constrained layout), the labels of a line's points moved off each other at that size. Returns ``fig``."""
    fig.set_dpi(SLIDE_DPI)
    fig.set_size_inches(SLIDE_PX[0] / SLIDE_DPI, SLIDE_PX[1] / SLIDE_DPI)
    renderer = figure_renderer(fig)
    ticks = {}
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            major = axis.get_major_ticks()
            ticks[ax, name] = _bigger(major[0].label1.get_fontsize() if major else rcParams["font.size"])
    legends = [(ax, leg) for ax in fig.axes if (leg := ax.get_legend()) is not None]
    legends += [(None, leg) for leg in fig.legends]
    seen: set[int] = set()
    for text in fig.findobj(Text):
        if id(text) not in seen:  # a text reached twice grows once
            seen.add(id(text))
            text.set_fontsize(_bigger(text.get_fontsize()))
    for (ax, name), size in ticks.items():
        ax.tick_params(axis=name, which="both", labelsize=size)  # ticks made later get the new size too
    for ax, leg in legends:
        _rebuild_legend(fig, ax, leg, renderer)
    for text, room in _reflowed(fig):
        _wrap(text, room, renderer)
    try:
        fig.set_layout_engine("constrained")
        fig.get_layout_engine().execute(fig)
    except RuntimeError:  # a colorbar drawn for the figure's own layout (tight): lay it out that way, at slide size
        fig.tight_layout()
    place_point_labels(fig)  # the labels of a line's points, moved off each other again at the new size
    return fig


# ------------------------------------------------------------------------------------------------ the set
def write_slide_figures(folder: str | os.PathLike, results: str | os.PathLike | None = None
                        ) -> tuple[list[Path], list[str], Path]:
    """Write every figure of :data:`SLIDES` into ``folder`` (new or empty, else a ``UserError`` and nothing
    written) as ``NN_name.png`` (2000 x 1125 px), and ``index.md`` listing them. ``results``: the folder of shipped
    tables (default ``results/`` of the clone); a figure whose tables are not there is skipped.

    Returns (the PNGs written, one line per figure skipped saying which and why, the index page's path)."""
    folder = paths.new_or_empty_folder(folder)
    results = Path(results) if results is not None else paths.results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    written, skipped, entries = [], [], []
    for slide in SLIDES:
        missing = [name for name in slide.needs if not (results / name).is_file()]
        if missing:
            skipped.append(f"skipped {slide.name} ({slide.title}): {', '.join(missing)} not found in {results}; "
                           "this copy of the course does not have the shipped results")
            continue
        written.append(save_png(to_slide(slide.draw(results)), folder / f"{slide.name}.png", dpi=SLIDE_DPI))
        entries.append(slide)
    index = folder / INDEX
    index.write_text(index_page(entries, skipped), encoding="utf-8")
    return written, skipped, index


def index_page(slides: list[SlideFigure], skipped: list[str]) -> str:
    """The Markdown page listing ``slides`` (the figures written): per figure its title, file, notebook, what to
    look for and the data it was drawn from; then the lines of the figures skipped, if any."""
    w, h = SLIDE_PX
    lines = ["# Slide figures of the course", "",
             f"{len(slides)} figures at slide size: 16:9, {w} x {h} px ({w / SLIDE_DPI:.2f} x {h / SLIDE_DPI:.2f} "
             f"inches at {SLIDE_DPI} dpi), text at least {MIN_FONT_PT:g} pt. Each is the figure its notebook shows, "
             "drawn from what the course ships: nothing was trained or decomposed to make them.", ""]
    for slide in slides:
        lines += [f"## {slide.name[:2]} · {slide.title}", "", f"![{slide.title}]({slide.name}.png)", "",
                  f"- File: `{slide.name}.png`", f"- Notebook: `{slide.notebook}`",
                  f"- What to look for: {slide.look_for}", f"- Drawn from: {slide.source}", ""]
    if skipped:
        lines += ["## Not written", "", *(f"- {line}" for line in skipped), ""]
    return "\n".join(lines)
