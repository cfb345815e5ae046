"""``python -m vpd_lite.reproduce`` (console script ``vpd-lite-reproduce``): the headless reproduction of the erase
experiment. It parses the arguments, finds (or rebuilds) the artefacts and calls the erase layer's pipeline,
``vpd_lite.erase.pipeline.erase_german``, which runs the protocol and writes the tables, CSVs and figures.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import vpd_lite
from vpd_lite.commands import cli
from vpd_lite.commands.cli import default_run_dir, out_folder, positive_int
from vpd_lite.erase.pipeline import erase_german
from vpd_lite.erase.protocol import QUICK_NOTICE, EraseConfig
from vpd_lite.erase.rebuild import Artefacts, rebuild_artefacts
from vpd_lite.method.devices import available_cores, torch_threads
from vpd_lite.method.resumable import TrainingInterrupted
from vpd_lite.models import paths
from vpd_lite.models.hub import quiet_model_loading


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vpd_lite.reproduce [--quick] [--from-scratch] [--data DIR] [--out DIR] [--seeds N] [--threads N]``."""

    ap = cli.make_parser("reproduce", "Erase German with one scalar vs LoRA: scan the components' edits on training "
                                  "text, choose by a fixed rule, fit on a few German tokens, measure held-out CE; "
                                  "print and save the tables.")
    ap.add_argument("--quick", action="store_true", help="fewer budgets, one seed (also VPD_LITE_QUICK=1)")
    ap.add_argument("--from-scratch", action="store_true",
                    help="first rebuild target, decomposition, stats and labels into --work")
    ap.add_argument("--data", default=None,
                    help="folder with target/, decomposition/, corpus/, or a decomposition folder of the shipped "
                         "target, as python -m vpd_lite.decompose --out writes (default: data/)")
    ap.add_argument("--out", type=out_folder, default=None,
                    help="where tables and figures go (default: a new folder under ./runs/; name results/ "
                         "explicitly to refresh the shipped results)")
    ap.add_argument("--work", default=None,
                    help="--from-scratch work folder (default: a new temp folder); run again with the same folder, "
                         "a rebuild continues from its last finished stage and last checkpoint")
    ap.add_argument("--seeds", type=positive_int, default=None, help="number of seeds (default 3; quick 1)")
    ap.add_argument("--no-figures", action="store_true", help="write the tables only, no PNG figures")
    ap.add_argument("--threads", type=positive_int, default=1,
                    help="torch intra-op threads for fits and evaluation (default 1: fastest for this small "
                         "model); the edit scan runs on one thread too")
    ap.add_argument("--workers", type=positive_int, default=None,
                    help="processes that fit and measure side by side, one thread each (default: the cores "
                         "this process may use, at most 8; the numbers do not depend on it)")
    args = ap.parse_args(argv)
    if args.work is not None and not args.from_scratch:
        ap.error("--work applies only with --from-scratch")
    if args.from_scratch and args.data and (Path(args.data) / "decomposition.json").is_file():
        ap.error(f"{args.data} is a decomposition folder; --from-scratch makes its own decomposition and needs a "
                 "data folder with corpus/ (or leave out --data)")

    quick = args.quick or vpd_lite.quick_mode()
    if quick:
        print(QUICK_NOTICE)
    config = EraseConfig.quick() if quick else EraseConfig()
    if args.seeds is not None:
        config = replace(config, seeds=tuple(range(args.seeds)))
    config = replace(config, threads=args.threads, workers=args.workers or min(8, available_cores()))
    data = Path(args.data) if args.data else paths.data_dir()
    given = Artefacts.in_folder(data)
    needs = ("corpus",) if args.from_scratch else ("corpus", "target", "decomposition")
    if args.data is None:
        paths.require_data(needs)  # no shipped data: says where it was looked for and what to set
    else:
        given.check(needs, quick=quick)  # before any work: says how to fill that folder
        if not args.from_scratch:
            given.check_target()  # a decomposition of other weights: refused before any work
    out = Path(args.out) if args.out else default_run_dir("reproduce")
    command = "python -m vpd_lite.reproduce " + " ".join(sys.argv[1:] if argv is None else argv)
    quiet_model_loading()
    t0 = time.time()
    with torch_threads(args.threads):
        if args.from_scratch:
            work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vpd-lite-scratch-"))
            try:
                arte = rebuild_artefacts(work, quick, data / "corpus")
            except TrainingInterrupted as stop:
                stage = " of the target's training" if Path(stop.folder).name == "target" else " of the decomposition"
                print(cli.stopped_line("reproduce", stop, list(sys.argv[1:] if argv is None else argv), work,
                                       flag="--work", resume=None, what=stage), file=sys.stderr)
                return stop.exit_code
        else:
            arte = given
        erase_german(arte, config, out, command.strip(), figures=not args.no_figures)
    if quick:
        print(QUICK_NOTICE)
    print(f"done in {time.time() - t0:.0f} s; results in {out.resolve()}")
    return 0


def run() -> None:
    """``python -m vpd_lite.reproduce``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "reproduce"))
