"""Where the shipped, offline artefacts live (all under the repository's ``data/`` folder)."""

from __future__ import annotations

import os
from pathlib import Path

#: Repository root (the folder holding ``data/``, ``notebooks/`` and ``vpd_lite/``).
REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The data folder: ``$VPD_LITE_DATA`` if set, else ``<repo>/data``."""
    return Path(os.environ.get("VPD_LITE_DATA", REPO_ROOT / "data"))


def corpus_dir() -> Path:
    """``data/corpus``: one sub-folder per language with ``train.txt`` and ``heldout.txt``."""
    return data_dir() / "corpus"


def target_dir() -> Path:
    """``data/target``: the trained target model and tokenizer (``from_pretrained`` format)."""
    return data_dir() / "target"


def decomposition_dir() -> Path:
    """``data/decomposition``: the shipped decomposition of the target model."""
    return data_dir() / "decomposition"


def labels_path() -> Path:
    """``data/labels.json``: component labels produced by the offline labeller."""
    return data_dir() / "labels.json"


def results_dir() -> Path:
    """``results/``: tables and figures written by the headless reproduction."""
    return REPO_ROOT / "results"
