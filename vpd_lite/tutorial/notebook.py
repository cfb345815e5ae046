"""``vpd_lite.tutorial.notebook``: loading the decomposition the tutorial notebooks work on, and what they show
about their mode.

* :func:`load_or_decompose`, :func:`demo_decompose_config`: the shipped decomposition when it exists (a short
  live decomposition otherwise). The statistics and the amount of text each mode uses come from
  ``vpd_lite.interpret.harvest`` (``load_or_harvest``, ``tutorial_blocks``, ``HarvestPlan``, ``model_seq_len``).
* :func:`mode_banner` (:class:`ModeBanner`, :func:`mode_text`, :func:`quick_mode_changes`): the on-screen note
  about quick mode, saying what quick mode changes in the notebook that shows it.
* :func:`shipped_edit_pick`: the component notebook 04 edits (its edit-scan rule, from the shipped scan table),
  so that earlier notebooks can point at it.
* :func:`quiet_model_loading` (from ``vpd_lite.models.hub``): no "Loading weights" progress bar left in a cell's
  output when a notebook loads the model (the library's own progress bars clear themselves when they finish).

Quick mode (``VPD_LITE_QUICK=1``, :func:`vpd_lite.quick_mode`) runs every notebook as a smoke test: a few blocks of
text, a toy live decomposition, short fits. What that changes differs per notebook, and each notebook says so on
screen with :func:`mode_banner`.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import torch

from vpd_lite import quick_mode
from vpd_lite.erase.edit_scan import EditScan, ScanConfig
from vpd_lite.erase.selection import pick_by_edit
from vpd_lite.interpret.harvest import HarvestPlan, model_seq_len
from vpd_lite.interpret.ids import ComponentId
from vpd_lite.method.checkpoint import load_decomposition
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import decompose
from vpd_lite.models.corpus import train_batches
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.models.paths import data_dir, decomposition_dir, results_dir


DEMO_QUICK_STEPS, DEMO_QUICK_C = 20, 32  # the quick-mode live decomposition: steps, components per matrix
DEMO_FULL_STEPS = 300  # the full-mode live decomposition (default configuration otherwise)


def quick_mode_changes(notebook: str | None) -> str | None:
    """What quick mode changes in ``notebook`` ("01_decompose", "02_inspect", "03_label"; a sentence), or None for a
    notebook without its own description. Numbers come from the same settings the notebooks use
    (:class:`~vpd_lite.interpret.harvest.HarvestPlan`, :func:`demo_decompose_config`)."""
    plan = HarvestPlan()
    stats_file = data_dir() / "component_stats.safetensors"
    shipped = (decomposition_dir() / "decomposition.json").is_file()
    if notebook == "01_decompose":
        return ("Quick mode changes two things in this notebook: the target's cross-entropy and the "
                "evaluation of the decomposition use 2 held-out blocks per language instead of the full run's "
                f"larger sample; the live decomposition runs {DEMO_QUICK_STEPS} steps with {DEMO_QUICK_C} "
                f"components per matrix instead of {DEMO_FULL_STEPS} steps of the full configuration, too short "
                "to learn anything"
                + ("" if shipped else "; and, as the shipped decomposition is missing, that toy run is also the "
                   "one evaluated")
                + ". So every number below is rougher than the full run's. Set QUICK = False for the real "
                "tutorial.")
    if notebook == "02_inspect":
        if shipped and stats_file.is_file():
            return ("Quick mode changes one thing in this notebook: the ablation effects (what removing a "
                    f"component does to each language) are measured on {plan.quick_heldout_blocks} held-out "
                    f"blocks per language instead of {plan.heldout_blocks}, so those ΔCE numbers are rougher. "
                    "The decomposition and the component statistics are the shipped ones in both modes, so the "
                    "firing frequencies, the heatmap, the histograms and the contexts are the full run's. "
                    "Set QUICK = False for the real tutorial.")
        return ("Quick mode: the shipped decomposition or its statistics are missing, so this notebook builds them "
                f"live from {plan.quick_harvest_blocks} text blocks per language (instead of "
                f"{plan.harvest_blocks}) and measures ablation effects on {plan.quick_heldout_blocks} held-out "
                f"blocks (instead of {plan.heldout_blocks}); every number below differs from the full run.")
    if notebook == "05_targeted_german":
        from vpd_lite.erase.protocol import EraseConfig

        full, quick = DecomposeConfig.targeted_recipe("de"), DecomposeConfig.targeted_quick("de")
        erase = EraseConfig.quick()
        return (f"Quick mode: the live targeted decomposition runs {quick.steps} steps of {quick.batch_size} x "
                f"{quick.seq_len} tokens per stream instead of {full.steps} steps of {full.batch_size} x "
                f"{full.seq_len}, far too short to learn anything; its quality is measured on 2 held-out blocks per "
                f"language and its German component is picked on {erase.train_blocks} training blocks and measured "
                f"on {erase.eval_blocks_per_lang} held-out blocks per language. So "
                "every number of sections 2 to 4 only shows that the code runs; the shipped tables of section 5 "
                "are the full runs' in both modes. Set QUICK = False for the real tutorial.")
    if notebook == "03_label":
        if shipped and stats_file.is_file():
            return ("Quick mode changes one thing in this notebook: the labels are saved to a temporary folder "
                    "instead of runs/. Everything else reads the shipped decomposition and its statistics, so the "
                    "numbers and figures are the same as in full mode.")
        return ("Quick mode: the shipped decomposition or its statistics are missing, so this notebook labels a "
                "short live decomposition instead; every number below differs from the full run.")
    return None


def mode_text(quick: bool, notebook: str | None = None) -> str:
    """The sentence a notebook shows about its mode (plain text): in quick mode what quick mode changes in
    ``notebook`` (:func:`quick_mode_changes`), or the general smoke-test warning for a notebook without its own."""
    if quick:
        return quick_mode_changes(notebook) or (
            "Quick mode: this run is a smoke test. It uses a few blocks of text and tiny runs, so every number "
            "and figure below differs from the full run and proves only that the code works. "
            "Set QUICK = False (or run without VPD_LITE_QUICK=1) for the real tutorial.")
    return ("Full mode: the numbers below are measured on this machine over the tutorial's full text budget "
            "(the shipped decomposition and statistics, where they are used).")


class ModeBanner:
    """Displays :func:`mode_text` as a coloured box in a notebook, as plain text elsewhere."""

    def __init__(self, quick: bool, notebook: str | None = None) -> None:
        self.quick = bool(quick)
        self.notebook = notebook

    def __str__(self) -> str:
        return mode_text(self.quick, self.notebook)

    __repr__ = __str__

    def heading(self) -> str:
        """"QUICK MODE — smoke test" where quick mode changes every number, "Quick mode" where this notebook
        says exactly what it changes, or "Full mode"."""
        if not self.quick:
            return "Full mode"
        return "Quick mode" if quick_mode_changes(self.notebook) else "QUICK MODE — smoke test"

    def _repr_html_(self) -> str:
        colour, border = ("#fff4e5", "#b26a00") if self.quick else ("#eef6ee", "#2e7d32")
        return (f"<div style='background:{colour};border-left:4px solid {border};padding:6px 10px'>"
                f"<b>{self.heading()}</b><br>"
                f"{html.escape(mode_text(self.quick, self.notebook))}</div>")


def mode_banner(quick: bool, notebook: str | None = None) -> ModeBanner:
    """The banner a notebook's first cell ends with: in quick mode it says what quick mode changes in
    ``notebook`` (e.g. "02_inspect"; :func:`quick_mode_changes`), or that the numbers are a smoke test."""
    return ModeBanner(quick, notebook)


def shipped_edit_pick(lang: str = "de", folder: str | Path | None = None) -> tuple[ComponentId, str] | None:
    """(component, why) chosen by notebook 04's edit-scan rule (:func:`vpd_lite.erase.selection.pick_by_edit`)
    from the shipped scan table ``results/edit_scan_best.csv``; None when the table is not there (an install
    without ``results/``). Reads only; the scan itself is run by ``python -m vpd_lite.edit_scan``."""
    path = Path(folder if folder is not None else results_dir()) / "edit_scan_best.csv"
    if not path.is_file():
        return None
    scan = EditScan(prescreen=pd.DataFrame(), candidates={}, curves=pd.DataFrame(), best=pd.read_csv(path),
                    base_ce={}, config=ScanConfig())
    return pick_by_edit(scan, lang)



def _quick(quick: bool | None) -> bool:
    return quick_mode() if quick is None else bool(quick)


def demo_decompose_config(model: torch.nn.Module, quick: bool | None = None):
    """A short :class:`~vpd_lite.method.config.DecomposeConfig` for live demos: in quick mode 20 steps with C = 32 per
    matrix (seconds; the components are not meaningful), else 300 steps of the default config (a few minutes)."""

    if _quick(quick):
        targets = {pattern: DEMO_QUICK_C for pattern in DecomposeConfig().targets}
        config = DecomposeConfig.quick(targets=targets, steps=DEMO_QUICK_STEPS,
                                       faithfulness_warmup_steps=DEMO_QUICK_STEPS, log_every=1)
    else:
        config = DecomposeConfig(steps=DEMO_FULL_STEPS, log_every=5, checkpoint_every=0)
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
