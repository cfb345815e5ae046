"""``python -m vpd_lite.across_decompositions FOLDER [FOLDER ...]``: the German erasure protocol, unchanged, on
several decompositions (each folder laid out like ``data/``: corpus/, target/, decomposition/, or a decomposition
folder, which runs on the shipped target and corpus), and how alike their German components are. Writes
``across_decompositions.{md,csv}`` and companions to ``--out``, and keeps each run's measurements in
``--out``/across_decompositions_kept/<NAME>/, which a later study (on another machine, say) can take as a run
without the decomposition.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

import vpd_lite
from vpd_lite.commands import cli
from vpd_lite.commands.cli import default_run_dir, out_folder, positive_int
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
    split_runs,
    study_config,
    study_markdown,
    summary_line,
    target_label,
    variant_line,
)
from vpd_lite.erase.figures import curves_figure, save_png, similarity_figure
from vpd_lite.erase.protocol import QUICK_NOTICE, EraseConfig
from vpd_lite.erase.rebuild import Artefacts, build_setup, load_stats_or_harvest, shipped_labels
from vpd_lite.erase.report import csv_bytes
from vpd_lite.method.checkpoint import atomic_write_bytes, load_decomposition, read_metadata
from vpd_lite.method.devices import available_cores, torch_threads
from vpd_lite.models import paths
from vpd_lite.models.corpus import load_corpus
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.models.target import load_target

#: Raised when what a saved run holds changes, so that older saved runs are measured again instead of reused.
SAVED_RUN_VERSION = 1

#: The folder inside ``--out`` where each run's measurements are kept (one sub-folder per run name).
KEPT = "across_decompositions_kept"


def _parser():
    ap = cli.make_parser("across_decompositions",
                         "Run the German erasure protocol (unchanged: rule, search range, objective, snippet seeds, "
                         "thresholds) on several decompositions and compare their German components.")
    ap.add_argument("folders", nargs="+", metavar="[NAME=]FOLDER",
                    help="data folders laid out like data/ (corpus/, target/, decomposition/), decomposition "
                         "folders of the shipped target (as python -m vpd_lite.decompose --out writes), or a run's "
                         "kept "
                         f"measurements from an earlier study (<out>/{KEPT}/<NAME>/, reused as they are when its "
                         "decomposition is not at hand); the first is the reference the others' components are "
                         "compared with. NAME labels the run (default: the folder's name, or its parent's for a "
                         "folder named decomposition; 'shipped' for the shipped data)")
    ap.add_argument("--out", type=out_folder, default=None,
                    help="where the tables and figures go (default: a new folder under ./runs/; name results/ "
                         "explicitly to refresh the shipped study). Each run's protocol results are kept in "
                         f"<out>/{KEPT}/<NAME>/, so calling again with the same --out and one more folder only runs "
                         "the protocol on the new one")
    ap.add_argument("--quick", action="store_true", help="little text, one snippet seed (also VPD_LITE_QUICK=1)")
    ap.add_argument("--threads", type=positive_int, default=1, help="torch threads per process (default 1)")
    ap.add_argument("--workers", type=positive_int, default=None,
                    help="processes for the fits (default: the cores this process may use, at most 8)")
    ap.add_argument("--no-figures", action="store_true", help="write the tables only")
    return ap


def _named(spec: str) -> tuple[str, Path]:
    """(label, folder) of a ``[NAME=]FOLDER`` argument; ``ValueError`` for a label that is not a plain name."""
    name, sep, folder = spec.partition("=")
    if not sep:
        folder, name = spec, ""
    path = Path(folder)
    if not name:
        where = Path(os.path.abspath(path))  # the path as given (links not followed), without "." or ".."
        if where.name == "decomposition" and (where / "decomposition.json").is_file():
            where = where.parent  # <run>/decomposition is named after <run>
        name = "shipped" if where.resolve() == paths.data_dir().resolve() else where.name
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{spec!r}: a run's NAME must be a plain name (no slashes)")
    return name, path


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


def _check_kept_place(name: str, folder: Path, out: Path) -> None:
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
            _check_kept_place(name, folder, out)
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
        arte.check()
        model, tokenizer = load_target(arte.target)
        cm = load_decomposition(arte.decomposition, model)
        meta = read_metadata(arte.decomposition)
        key, recipe = _run_key(arte, meta, config), recipe_of(meta.get("config") or {})
        cached = AcrossRun.load(saved, key)
        if cached is not None:
            run, live = cached
            run.name = name  # the label given now (the kept folder may have been copied or renamed)
            how = f"reused from {saved}"
        else:
            print(f"[{name}] {folder}", flush=True)
            corpus = load_corpus(arte.corpus)
            stats, how = load_stats_or_harvest(cm, tokenizer, corpus, arte.stats, config, progress)
            setup = build_setup(cm, tokenizer, corpus, stats, config, labels=shipped_labels(arte, how),
                                progress=progress)
            run = erase_with(setup, config, name, target_label(arte.target, shipped_target),
                             meta.get("config", {}).get("seed"), decomposition_quality(arte.decomposition),
                             meta["target_fingerprint"], progress=progress)
            live = live_by_module(stats)
            run.seconds, run.recipe = time.perf_counter() - t0, recipe
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


def save(runs: list[AcrossRun], mean_max: pd.DataFrame, out: Path, command: str,
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


def main(argv: list[str] | None = None) -> int:
    """CLI: the protocol on each folder, the similarity study, the tables and figures in ``--out``."""
    ap = _parser()
    args = ap.parse_args(argv)
    try:
        specs = [_named(s) for s in args.folders]
    except ValueError as err:
        ap.error(str(err))
    names = [n for n, _ in specs]
    if len(set(names)) < len(names):
        ap.error(f"two runs share a name ({', '.join(sorted({n for n in names if names.count(n) > 1}))}); "
                 "label them NAME=FOLDER")
    quick = args.quick or vpd_lite.quick_mode()
    config = study_config(EraseConfig.quick() if quick else EraseConfig())
    config = replace(config, threads=args.threads, workers=args.workers or min(8, available_cores()))
    decompositions: dict[Path, str] = {}
    for name, folder in specs:  # before any work: each says what is wrong and how to mend it
        if not folder.is_dir():
            ap.error(f"{folder} is not a folder")
        if is_kept_run(folder):
            if args.out:
                _check_kept_place(name, folder, Path(args.out))
            load_kept(folder, config)
        else:
            arte = Artefacts.in_folder(folder)
            arte.check()
            arte.check_target()
            same = decompositions.setdefault(arte.decomposition.resolve(), name)
            if same != name:
                ap.error(f"{same} and {name} are the same decomposition ({arte.decomposition.resolve()}): give it once")
    if quick:
        print(QUICK_NOTICE)
    out = Path(args.out) if args.out else default_run_dir("across_decompositions")
    command = "python -m vpd_lite.across_decompositions " + " ".join(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    quiet_model_loading()
    with torch_threads(args.threads):
        runs, mean_max, matches = run_study(specs, config, out)
    save(runs, mean_max, out, command.strip(), matches, figures=not args.no_figures)
    same, others, variants = split_runs(runs)
    print(summary_line(same) + f" (target: {runs[0].target}, recipe: {runs[0].recipe})")
    if others:
        print(summary_line(others, "targets"))
    for r in variants:
        print("recipe variant " + variant_line(r))
    if quick:
        print(QUICK_NOTICE)
    print(f"done in {time.time() - t0:.0f} s; results in {out.resolve()}")
    return 0


def run() -> None:
    """``python -m vpd_lite.across_decompositions``: :func:`main` on the command line; errors as one line."""
    sys.exit(cli.run_main(main, "across_decompositions"))
