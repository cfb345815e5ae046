"""Notebook plumbing: loading what the tutorial notebooks work on, and what they show about their mode.

* :func:`load_or_decompose`, :func:`load_or_harvest`, :func:`tutorial_blocks`, :func:`demo_decompose_config`,
  :class:`HarvestPlan`, :func:`model_seq_len`: the shipped decomposition and statistics when they exist (quick
  fall-backs otherwise), and how much text each mode uses. (Also importable from ``vpd_lite.analysis``.)
* :func:`mode_banner`: the on-screen note about quick mode.

Quick mode (``VPD_LITE_QUICK=1``, :func:`vpd_lite.quick_mode`) runs every notebook as a smoke test: a few blocks of
text, a toy live decomposition, short fits. Its numbers differ from the full run, and the notebooks say so on
screen with :func:`mode_banner`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .analysis import ComponentStats


def mode_text(quick: bool) -> str:
    """The sentence a notebook shows about its mode (plain text)."""
    if quick:
        return ("Quick mode: this run is a smoke test. It uses a few blocks of text and tiny runs, so every number "
                "and figure below differs from the full run and proves only that the code works. "
                "Set QUICK = False (or run without VPD_LITE_QUICK=1) for the real tutorial.")
    return ("Full mode: the numbers below are measured on this machine over the tutorial's full text budget "
            "(the shipped decomposition and statistics, where they are used).")


class ModeBanner:
    """Displays :func:`mode_text` as a coloured box in a notebook, as plain text elsewhere."""

    def __init__(self, quick: bool) -> None:
        self.quick = bool(quick)

    def __str__(self) -> str:
        return mode_text(self.quick)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, border = ("#fff4e5", "#b26a00") if self.quick else ("#eef6ee", "#2e7d32")
        return (f"<div style='background:{colour};border-left:4px solid {border};padding:6px 10px'>"
                f"<b>{'QUICK MODE — smoke test' if self.quick else 'Full mode'}</b><br>"
                f"{html.escape(mode_text(self.quick))}</div>")


def mode_banner(quick: bool) -> ModeBanner:
    """The banner a notebook's first cell ends with: in quick mode it says the numbers are a smoke test."""
    return ModeBanner(quick)


@dataclass
class HarvestPlan:
    """How much text the tutorial harvests and evaluates on (blocks per language), full vs quick mode."""

    seq_len: int = 128
    harvest_blocks: int = 256  # train-split blocks per language for the statistics
    heldout_blocks: int = 16  # held-out blocks per language for ablation effects
    quick_harvest_blocks: int = 4
    quick_heldout_blocks: int = 2

    def blocks(self, quick: bool) -> tuple[int, int]:
        """(harvest blocks, held-out blocks) per language."""
        return (self.quick_harvest_blocks, self.quick_heldout_blocks) if quick else (self.harvest_blocks, self.heldout_blocks)


def _quick(quick: bool | None) -> bool:
    from . import quick_mode

    return quick_mode() if quick is None else bool(quick)


def model_seq_len(model: torch.nn.Module, seq_len: int = 128) -> int:
    """``seq_len`` capped by the model's context length (``config.max_position_embeddings``)."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return min(seq_len, int(limit)) if limit else seq_len


def tutorial_blocks(
    tokenizer, corpus, model: torch.nn.Module | None = None, quick: bool | None = None, plan: HarvestPlan = HarvestPlan()
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """({lang: train blocks (N, T)} to harvest on, {lang: held-out blocks (M, T)} to measure CE on).

    Statistics come from the train split; ablation effects are measured on held-out text.
    """
    from .corpus import lang_token_blocks

    n_train, n_held = plan.blocks(_quick(quick))
    T = model_seq_len(model, plan.seq_len) if model is not None else plan.seq_len
    return (lang_token_blocks(tokenizer, corpus, "train", T, n_train),
            lang_token_blocks(tokenizer, corpus, "heldout", T, n_held))


def demo_decompose_config(model: torch.nn.Module, quick: bool | None = None):
    """A short :class:`~vpd_lite.decompose.DecomposeConfig` for live demos: in quick mode 20 steps with C = 32 per
    matrix (seconds; the components are not meaningful), else 300 steps of the default config (a few minutes)."""
    from .decompose import DecomposeConfig

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
    from .checkpoint import load_decomposition
    from .paths import decomposition_dir

    folder = Path(path) if path is not None else decomposition_dir()
    if (folder / "decomposition.json").is_file():
        return load_decomposition(folder, model), f"shipped decomposition from {folder}"
    if not _quick(quick):
        raise FileNotFoundError(f"no decomposition in {folder}: run `python -m vpd_lite.decompose` first")
    if fallback is not None:
        return fallback, f"the live demo decomposition ({folder} has none yet)"
    from .corpus import train_batches
    from .decompose import decompose

    config = demo_decompose_config(model, quick=True)
    batches = train_batches(tokenizer, corpus, seq_len=config.seq_len, batch_size=config.batch_size, seed=config.seed)
    cm, _ = decompose(model, batches, config, progress=progress)
    return cm, f"quick live decomposition ({config.steps} steps; {folder} has none yet)"


def load_or_harvest(cm, lang_blocks: Mapping[str, torch.Tensor], path: str | Path | None = None,
                    progress: bool = True, **harvest_kwargs) -> tuple[ComponentStats, str]:
    """(stats, description): shipped stats from ``path`` (default ``data/component_stats.safetensors``) when they
    were harvested from this very decomposition (same :func:`decomposition_fingerprint`), else a fresh
    :func:`harvest` over ``lang_blocks``."""
    from .analysis import ComponentStats, decomposition_fingerprint, harvest
    from .paths import data_dir

    path = Path(path) if path is not None else data_dir() / "component_stats.safetensors"
    fingerprint = decomposition_fingerprint(cm)
    if path.is_file():
        stats = ComponentStats.load(path)
        if stats.meta.get("decomposition_fingerprint") == fingerprint:
            return stats, f"shipped statistics from {path} ({stats.n_tokens} tokens)"
    stats = harvest(cm, lang_blocks, progress=progress, meta={"decomposition_fingerprint": fingerprint},
                    **harvest_kwargs)
    return stats, f"harvested live over {stats.n_tokens} tokens"
