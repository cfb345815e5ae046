"""The erase experiment's pipelines, which the commands call: the main job (:func:`erase_german`, behind
``python -m vpd_lite.reproduce``) and the study across decompositions (:func:`run_study` and :func:`save_study`,
behind ``python -m vpd_lite.across_decompositions``). Both open a decomposition with :func:`load_artefacts` and
make the protocol's choices with :func:`prepare`; notebook 04 walks through the same steps one cell at a time.

The study keeps each run's measurements in ``<out>/across_decompositions_kept/<NAME>/`` (:data:`KEPT`), which a
later study (on another machine, say) can take as a run without the decomposition.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

import vpd_lite
from vpd_lite.erase.across import (
    AcrossRun,
    best_match,
    decomposition_quality,
    erase_with,
    live_by_module,
    mean_max_cosine,
    recipe_of,
    run_table,
    seed_table,
    similarity_matrix,
    study_markdown,
    target_label,
)
from vpd_lite.erase.edits import uniform_level
from vpd_lite.erase.figures import curves_figure, save_figures, save_png, save_scan_figures, similarity_figure
from vpd_lite.erase.protocol import (
    RULE_METHODS,
    EraseConfig,
    EraseSetup,
    erase_any_language,
    run_sweep,
    summarise,
)
from vpd_lite.erase.rebuild import Artefacts, build_setup, load_stats_or_harvest, shipped_labels
from vpd_lite.erase.report import (
    any_language_table,
    claim_report,
    csv_bytes,
    format_any_language,
    format_table,
    save_results,
)
from vpd_lite.interpret.statistics import ComponentStats
from vpd_lite.method.checkpoint import atomic_write_bytes, load_decomposition, read_metadata
from vpd_lite.models import paths
from vpd_lite.models.corpus import load_corpus
from vpd_lite.models.target import load_target


# ------------------------------------------------------------------------------------------ shared steps
def load_artefacts(arte: Artefacts) -> tuple[nn.Module, Any]:
    """(decomposed model, tokenizer): the target of ``arte`` with its decomposition. Raises
    ``FileNotFoundError`` (with what to do) when an artefact is missing, ``ValueError`` when the decomposition
    does not belong to the target."""
    arte.check()
    model, tokenizer = load_target(arte.target)
    return load_decomposition(arte.decomposition, model), tokenizer


def prepare(arte: Artefacts, cm: nn.Module, tokenizer: Any, config: EraseConfig, progress: bool = True,
            clock: dict[str, float] | None = None) -> tuple[EraseSetup, ComponentStats, str]:
    """The protocol's choices on training text for the decomposed model ``cm`` of ``arte``: its corpus, the
    component statistics beside the decomposition (or harvested now) and the labeller's labels that belong to
    them, then :func:`~vpd_lite.erase.rebuild.build_setup` (edit scan, selection rules, search ranges).
    ``clock``, when given, gets the time the statistics were ready as ``"load and statistics"``.

    Returns (setup, statistics, how the statistics were obtained)."""
    corpus = load_corpus(arte.corpus)
    stats, how = load_stats_or_harvest(cm, tokenizer, corpus, arte.stats, config, progress)
    labels = shipped_labels(arte, how)  # the shipped labels belong to the shipped stats
    if clock is not None:
        clock["load and statistics"] = time.perf_counter()
    return build_setup(cm, tokenizer, corpus, stats, config, labels=labels, progress=progress), stats, how


# ------------------------------------------------------------------------------------------ the main job
def erase_german(arte: Artefacts, config: EraseConfig, out_dir: Path, command: str,
                 figures: bool = True, progress: bool = True) -> dict[str, Any]:
    """The main job's pipeline: load the artefacts, choose (training text), fit, evaluate (held-out text), print
    the tables and save them into ``out_dir`` with ``figures`` (the PNGs of ``vpd_lite.erase.figures``).
    ``command`` is the command line recorded in the reports.

    Returns {"setup": the ``EraseSetup``, "runs": the fits' rows, "summary": their seed means, "claim": the
    claim check (``claim_report``), "any_language": the erase-any-language rows or None, "written": the paths
    written}. Raises ``FileNotFoundError`` (with what to do) when an artefact is missing."""

    clock = {"start": time.perf_counter()}
    cm, tokenizer = load_artefacts(arte)
    setup, _, how = prepare(arte, cm, tokenizer, config, progress, clock)
    clock["edit scan and choices"] = time.perf_counter()
    print(f"Component statistics: {how}", flush=True)
    for m in RULE_METHODS:
        print(f"{RULE_METHODS[m]}: {setup.why[m]}; search range of s {setup.ranges[m]}", flush=True)
    print(f"Edit scan: {len(setup.scan.prescreen)} live components prescreened, "
          f"{setup.scan.curves['component'].nunique()} scanned in {setup.scan.seconds:.0f} s", flush=True)
    runs = run_sweep(setup, config, progress=progress)
    clock["fits and held-out CE"] = time.perf_counter()
    summary = summarise(runs)
    claim = claim_report(runs, summary)
    any_runs = erase_any_language(setup, config, progress) if config.any_language else None
    clock["any language"] = time.perf_counter()
    print(format_table(summary))
    print(claim["text"])
    if any_runs is not None:
        print("\nErase any language (held-out ΔCE, nats/token):")
        print(format_any_language(any_language_table(any_runs)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = save_results(runs, summary, claim, setup, out_dir, command, config, any_runs)
    if figures:
        written += save_figures(summary, out_dir)
        written += save_scan_figures(setup.scan.best, setup.scan.curves,
                                     any_language_table(any_runs) if any_runs is not None else None, out_dir,
                                     uniform=uniform_level(setup.vocab_size))
    clock["tables and figures"] = time.perf_counter()
    marks = list(clock.items())
    print("Time: " + ", ".join(f"{name} {t - marks[i][1]:.0f} s" for i, (name, t) in enumerate(marks[1:]))
          + f" ({config.workers} worker process{'es' if config.workers > 1 else ''})", flush=True)
    return {"setup": setup, "runs": runs, "summary": summary, "claim": claim, "any_language": any_runs,
            "written": written}


# ------------------------------------------------------------------------------ the study across decompositions
#: Raised when what a saved run holds changes, so that older saved runs are measured again instead of reused.
SAVED_RUN_VERSION = 1

#: The folder inside ``--out`` where each run's measurements are kept (one sub-folder per run name).
KEPT = "across_decompositions_kept"


def is_kept_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run's kept measurements (``run.json`` from an earlier study) rather than a data
    folder (which has a ``decomposition/``)."""
    return (folder / "run.json").is_file() and not (folder / "decomposition").exists()


def settings_string(config: EraseConfig) -> str:
    """The protocol settings as recorded with each kept run (the worker count left out: it does not change the
    numbers)."""
    return repr(replace(config, workers=1))


def load_kept(folder: Path, config: EraseConfig) -> AcrossRun:
    """The run kept in ``folder`` (:func:`is_kept_run`), marked ``without_decomposition``. ``ValueError`` when it
    cannot be read or was measured with other protocol settings than ``config`` (quick mode against the full
    protocol, say), which would make its verdict another test than the others'."""
    cached = AcrossRun.load(folder, None)
    if cached is None:
        raise ValueError(f"{folder}: its kept measurements cannot be read (run.json, per_seed.csv, curve.csv, "
                         "tensors.safetensors); run the study on its data folder instead")
    if AcrossRun.settings_of(folder) != settings_string(config):
        raise ValueError(f"{folder}: measured with other protocol settings than this study (quick mode against "
                         "the full protocol, or another version of it); run the study on its data folder instead")
    run = cached[0]
    run.without_decomposition = True
    return run


def check_kept_place(name: str, folder: Path, out: Path) -> None:
    """``ValueError`` for a kept folder the study would overwrite or nest into: ``--out`` inside it, or a folder
    of ``out``'s own kept runs given under another name."""
    src, dest = folder.resolve(), (out / KEPT).resolve()
    if out.resolve().is_relative_to(src):
        raise ValueError(f"{folder}: --out must not lie inside a kept run's folder")
    if src.parent == dest and src.name != name:
        raise ValueError(f"{folder} is kept under {dest} as {src.name!r}: give it that name ({src.name}={folder})")


def _copy_kept(folder: Path, dest: Path) -> None:
    """Copy kept measurements into ``dest``, run.json last (its presence says the folder is complete)."""
    (dest / "run.json").unlink(missing_ok=True)
    shutil.copytree(folder, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("run.json"))
    shutil.copy2(folder / "run.json", dest / "run.json")


def _run_key(arte: Artefacts, meta: dict[str, Any], config: EraseConfig) -> str:
    """What a saved run must match to be reused: this code's version, the decomposition's tensors and target
    (``meta``: its ``read_metadata``), the corpus, the statistics and labels files beside it (when there) and
    the settings."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(arte.corpus).rglob("*") if p.is_file())
    for path in files + [p for p in (arte.stats, arte.stats.parent / "labels.json") if p.is_file()]:
        digest.update(path.name.encode() + path.read_bytes())
    return (f"v{SAVED_RUN_VERSION}|{vpd_lite.__version__}|{meta['tensors_sha256']}|{meta['target_fingerprint']}|"
            f"{digest.hexdigest()}|{settings_string(config)}")


def run_study(specs: list[tuple[str, Path]], config: EraseConfig, out: Path, progress: bool = True
              ) -> tuple[list[AcrossRun], pd.DataFrame, dict[str, dict[str, Any]]]:
    """The protocol on every folder, then the similarity of the decompositions of one target. Each run is kept
    under ``out/<KEPT>/<name>/`` and reused by a later call with the same decomposition and settings, so adding a
    folder to the study only runs the protocol on that one. A folder of kept measurements
    (:func:`is_kept_run`) is reused as it is and copied there; having no decomposition at hand, it is left out
    of the whole-decomposition comparison and the search for the reference's closest component. Returns the
    runs, the per-matrix mean-max table (one row per pair of runs on one target × matrix, both decompositions at
    hand) and, per run on the reference's target with its decomposition at hand, its component most alike the
    reference's (:func:`~vpd_lite.erase.across.best_match`). ``ValueError`` for kept measurements that cannot
    be read, were measured with other settings or lie where the study would overwrite them."""
    shipped_target = paths.data_dir() / "target"
    runs: list[AcrossRun] = []
    loaded: dict[str, Any] = {}
    for name, folder in specs:
        saved = out / KEPT / name
        if is_kept_run(folder):
            check_kept_place(name, folder, out)
            run = load_kept(folder, config)
            run.name = name
            if saved.resolve() != folder.resolve():
                _copy_kept(folder, saved)
            runs.append(run)
            loaded[name] = (None, None, run.target_fingerprint)
            print(f"[{name}] {run.component}: {run.claim['fraction']:.0%} of the way on the mean (kept "
                  f"measurements from {folder}; its decomposition is not at hand)", flush=True)
            continue
        t0 = time.perf_counter()
        arte = Artefacts.in_folder(folder)
        cm, tokenizer = load_artefacts(arte)
        meta = read_metadata(arte.decomposition)
        key, recipe = _run_key(arte, meta, config), recipe_of(meta.get("config") or {})
        cached = AcrossRun.load(saved, key)
        if cached is not None:
            run, live = cached
            run.name = name  # the label given now (the kept folder may have been copied or renamed)
            how = f"reused from {saved}"
        else:
            print(f"[{name}] {folder}", flush=True)
            setup, stats, how = prepare(arte, cm, tokenizer, config, progress)
            run = erase_with(setup, config, name, target_label(arte.target, shipped_target),
                             meta.get("config", {}).get("seed"), decomposition_quality(arte.decomposition),
                             meta["target_fingerprint"], progress=progress)
            live = live_by_module(stats)
            run.seconds, run.recipe, run.decomposition_config = time.perf_counter() - t0, recipe, meta.get("config")
            run.save(saved, key, live, settings_string(config))
            how = f"statistics: {how}"
        run.recipe = recipe
        runs.append(run)
        loaded[name] = (cm, live, run.target_fingerprint)
        met = int(run.per_seed["meets_goal"].sum())
        print(f"[{name}] {run.component}: {run.claim['fraction']:.0%} of the way on the mean, {met} of "
              f"{len(run.per_seed)} snippets meet the claim ({run.seconds:.0f} s; {how})", flush=True)
    pairs = []
    names = list(loaded)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if loaded[a][2] != loaded[b][2] or loaded[a][0] is None or loaded[b][0] is None:
                continue  # different target weights (no shared basis), or a decomposition not at hand
            mm = mean_max_cosine(loaded[a][0], loaded[b][0], loaded[a][1], loaded[b][1])
            pairs.append(mm.assign(run_a=a, run_b=b))
    mean_max = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(
        columns=["module", "live_a", "live_b", "read", "write", "matrix", "read_random", "write_random",
                 "matrix_random", "run_a", "run_b"])
    ref = runs[0]
    matches = {r.name: best_match(ref.direction, loaded[r.name][0], loaded[r.name][1]) for r in runs
               if r.target_fingerprint == ref.target_fingerprint and loaded[r.name][0] is not None}
    return runs, mean_max, matches


def save_study(runs: list[AcrossRun], mean_max: pd.DataFrame, out: Path, command: str,
               matches: dict[str, dict[str, Any]] | None = None, figures: bool = True) -> list[Path]:
    """Write the report, the CSVs and (``figures``) the two PNGs into ``out`` (atomically). Returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    sim = pd.concat([similarity_matrix(runs, k).stack(future_stack=True).rename(k) for k in ("matrix", "read", "write")],
                    axis=1).rename_axis(["run_a", "run_b"]).reset_index()
    curves = pd.concat([r.curve.assign(run=r.name, target=r.target, s_lo=r.edge["s_lo"], s_hi=r.edge["s_hi"],
                                       ln_v=r.edge.get("ln_v", float("nan"))) for r in runs], ignore_index=True)
    files = {
        "across_decompositions.md": study_markdown(runs, mean_max, command, matches).encode("utf-8"),
        "across_decompositions.csv": csv_bytes(seed_table(runs)),
        "across_decompositions_runs.csv": csv_bytes(run_table(runs, reference=runs[0], matches=matches)),
        "across_decompositions_similarity.csv": csv_bytes(sim),
        "across_decompositions_mean_max.csv": csv_bytes(mean_max),
        "across_decompositions_curves.csv": csv_bytes(curves),
    }
    written = []
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
        written.append(out / name)
    if figures:
        written.append(save_png(curves_figure(curves, run_table(runs)), out / "across_decompositions_curves.png"))
        written.append(save_png(similarity_figure(sim), out / "across_decompositions_similarity.png"))
    return written
