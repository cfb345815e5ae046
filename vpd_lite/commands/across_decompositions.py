"""``python -m vpd_lite.across_decompositions FOLDER [FOLDER ...]``: the German erasure protocol, unchanged, on
several decompositions (each folder laid out like ``data/``: corpus/, target/, decomposition/, or a decomposition
folder, which runs on the shipped target and corpus), and how alike their German components are. Writes
``across_decompositions.{md,csv}`` and companions to ``--out``, and keeps each run's measurements in
``--out``/across_decompositions_kept/<NAME>/, which a later study (on another machine, say) can take as a run
without the decomposition. It parses and checks the arguments and calls the erase layer's pipeline
(``vpd_lite.erase.pipeline.run_study``, ``save_study``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import vpd_lite
from vpd_lite.commands import cli
from vpd_lite.commands.cli import default_run_dir, out_folder, positive_int
from vpd_lite.erase.across import answer_lines, study_config
from vpd_lite.erase.pipeline import KEPT, check_kept_place, is_kept_run, load_kept, run_study, save_study
from vpd_lite.erase.protocol import QUICK_NOTICE, EraseConfig
from vpd_lite.erase.rebuild import Artefacts
from vpd_lite.method.devices import available_cores, torch_threads
from vpd_lite.models import paths
from vpd_lite.models.hub import quiet_model_loading


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
                check_kept_place(name, folder, Path(args.out))
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
    save_study(runs, mean_max, out, command.strip(), matches, figures=not args.no_figures)
    for line in answer_lines(runs):
        print(line)
    if quick:
        print(QUICK_NOTICE)
    print(f"done in {time.time() - t0:.0f} s; results in {out.resolve()}")
    return 0


def run() -> None:
    """``python -m vpd_lite.across_decompositions``: :func:`main` on the command line; errors as one line."""
    sys.exit(cli.run_main(main, "across_decompositions"))
