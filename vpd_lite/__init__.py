"""vpd-lite: adversarial parameter decomposition (VPD) of small language models, for teaching and reproduction.

The folder tree is the architecture. Subpackages, lowest layer first; each imports only from the layers below it
(``tests/test_layers.py`` runs the import-linter contract in pyproject.toml):

    errors     ``UserError``, the one-line error every layer may raise
    method     the method itself: components, causal importance, masks, losses, PGD, config, the loop,
               checkpoints, evaluation (read ``vpd_lite.method``'s docstring first)
    models     what gets decomposed: data paths, hub, corpus, the target LM, toy models, other architectures
    interpret  what components do: ids, statistics, harvesting, ablation, labels
    erase      the erase experiment: edits, edit scan, selection rules, baselines, protocol, report, rebuild
    tutorial   the notebook-facing layer: quick-mode banner, figures, widgets, exercises
    commands   every command's argument parser and ``main``, and the shared CLI plumbing

The top-level modules ``reproduce``, ``decompose``, ``distributed``, ``edit_scan``, ``evaluate``, ``labelling``,
``recipes``, ``target`` and ``toy_models`` only keep the names of the commands (``python -m vpd_lite.<name>``).
This file holds the version and ``quick_mode``, which every layer may read.
"""

__version__ = "0.1.0"


def quick_mode() -> bool:
    """True when ``VPD_LITE_QUICK`` is set to a truthy value ("1", "true", "yes").

    Tests and ``pytest --nbmake`` run in quick mode (see the repository's ``conftest.py``);
    a user running a notebook by hand gets full mode unless they set the variable.
    """
    import os

    return os.environ.get("VPD_LITE_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}
