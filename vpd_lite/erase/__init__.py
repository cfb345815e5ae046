"""The erase experiment: erasing a language with one scalar on one component, against LoRA baselines. Imports
the layers below (``vpd_lite.interpret``, ``vpd_lite.models``, ``vpd_lite.method``).

Reading order:
    edits      scalar edits along component directions, the budgeted German tokens, objectives and fits
    edit_scan  the edit scan: residual caching, prescreen, dose-response curves, admissible range
    selection  the selection rules (edit scan, firing, label) that choose a component
    baselines  LoRA baselines
    protocol   the protocol's vocabulary and config, component choice, fitting, sweeps, claim checks
    report     tables and reports of the results (CSV / Markdown)
    rebuild    the artefacts the experiment runs on: loaded from data/ or rebuilt from scratch
    across     the same protocol across decompositions, and how alike their components are
    figures    the experiment's figures as PNGs (the headless job's; the notebooks show them too)
    pipeline   the pipelines the commands call: the main job (erase_german) and the study across decompositions
    atlas      the component atlas: every component's facts (with the edit scan's and the other decompositions'
               results) written as a static web site; its HTML is in atlas_pages
"""
