"""``vpd_lite.tutorial.notebook``: loading the decomposition the tutorial notebooks work on, and what they show
about their mode.

* :func:`load_or_decompose`, :func:`demo_decompose_config`: the shipped decomposition when it exists (a short
  live decomposition otherwise). The statistics and the amount of text each mode uses come from
  ``vpd_lite.interpret.harvest`` (``load_or_harvest``, ``tutorial_blocks``, ``HarvestPlan``, ``model_seq_len``).
* :func:`mode_banner` (:class:`ModeBanner`, :func:`mode_text`): the on-screen note about quick mode.
* :func:`quiet_model_loading` (from ``vpd_lite.models.hub``): no "Loading weights" progress bar left in a cell's
  output when a notebook loads the model (the library's own progress bars clear themselves when they finish).

Quick mode (``VPD_LITE_QUICK=1``, :func:`vpd_lite.quick_mode`) runs every notebook as a smoke test: a few blocks of
text, a toy live decomposition, short fits. Its numbers differ from the full run, and the notebooks say so on
screen with :func:`mode_banner`.
"""

from __future__ import annotations

import html
from pathlib import Path

import torch

from vpd_lite import quick_mode
from vpd_lite.interpret.harvest import model_seq_len
from vpd_lite.method.checkpoint import load_decomposition
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import decompose
from vpd_lite.models.corpus import train_batches
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.models.paths import decomposition_dir


def mode_text(quick: bool) -> str:
    """The sentence a notebook shows about its mode (plain text)."""
    if quick:
        return ("Quick mode: this run is a smoke test. It uses a few blocks of text and tiny runs, so every number "
                "and figure below differs from the full run and proves only that the code works. "
                "Set QUICK = False (or run without VPD_LITE_QUICK=1) for the real tutorial.")
    return ("Full mode: the numbers below are measured on this machine over the tutorial's full text budget "
            "(the shipped decomposition and statistics, where they are used).")


class ModeBanner:
    """Displays :func:`mode_text` (or a notebook's own ``quick_text``) as a coloured box in a notebook, as plain
    text elsewhere."""

    def __init__(self, quick: bool, quick_text: str | None = None) -> None:
        self.quick = bool(quick)
        self.quick_text = quick_text

    def __str__(self) -> str:
        if self.quick and self.quick_text:
            return self.quick_text
        return mode_text(self.quick)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, border = ("#fff4e5", "#b26a00") if self.quick else ("#eef6ee", "#2e7d32")
        heading = ("QUICK MODE — smoke test" if not self.quick_text else "Quick mode") if self.quick else "Full mode"
        return (f"<div style='background:{colour};border-left:4px solid {border};padding:6px 10px'>"
                f"<b>{heading}</b><br>{html.escape(str(self))}</div>")


def mode_banner(quick: bool, quick_text: str | None = None) -> ModeBanner:
    """The banner a notebook's first cell ends with: in quick mode it says the numbers are a smoke test, or, when
    a notebook passes ``quick_text``, exactly what quick mode changes in that notebook (for a notebook whose numbers
    quick mode does not change)."""
    return ModeBanner(quick, quick_text)




def _quick(quick: bool | None) -> bool:

    return quick_mode() if quick is None else bool(quick)


def demo_decompose_config(model: torch.nn.Module, quick: bool | None = None):
    """A short :class:`~vpd_lite.method.config.DecomposeConfig` for live demos: in quick mode 20 steps with C = 32 per
    matrix (seconds; the components are not meaningful), else 300 steps of the default config (a few minutes)."""

    if _quick(quick):
        targets = {pattern: 32 for pattern in DecomposeConfig().targets}
        config = DecomposeConfig.quick(targets=targets, steps=20, faithfulness_warmup_steps=20, log_every=1)
    else:
        config = DecomposeConfig(steps=300, log_every=5, checkpoint_every=0)
    config.seq_len = model_seq_len(model, config.seq_len)
    return config


def load_or_decompose(model, tokenizer, corpus, path: str | Path | None = None, quick: bool | None = None,
                      fallback=None, progress: bool = True):
    """(ComponentModel, description): the shipped decomposition if ``path`` (default ``data/decomposition``)
    holds one. Otherwise, in quick mode only, ``fallback`` (a ComponentModel you already have) or a quick live
    decomposition (:func:`demo_decompose_config`; not meaningful, it just lets the notebooks run before the
    shipped one exists). Full mode without a decomposition raises FileNotFoundError."""

    folder = Path(path) if path is not None else decomposition_dir()
    if (folder / "decomposition.json").is_file():
        return load_decomposition(folder, model), f"shipped decomposition from {folder}"
    if not _quick(quick):
        raise FileNotFoundError(f"no decomposition in {folder}: run `python -m vpd_lite.decompose` first")
    if fallback is not None:
        return fallback, f"the live demo decomposition ({folder} has none yet)"

    config = demo_decompose_config(model, quick=True)
    batches = train_batches(tokenizer, corpus, seq_len=config.seq_len, batch_size=config.batch_size, seed=config.seed)
    cm, _ = decompose(model, batches, config, progress=progress)
    return cm, f"quick live decomposition ({config.steps} steps; {folder} has none yet)"
