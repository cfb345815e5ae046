"""``python -m vpd_lite.edit_scan``: the edit scan of a decomposition in ``data/`` (``scan_shipped``) and its
tables and figures.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vpd_lite
from vpd_lite.commands import cli
from vpd_lite.commands.cli import default_run_dir, out_folder, positive_int
from vpd_lite.erase.edit_scan import EditScan, ScanConfig, run_edit_scan, scan_blocks
from vpd_lite.erase.edits import component_directions
from vpd_lite.erase.rebuild import Artefacts, shipped_labels
from vpd_lite.erase.selection import pick_by_firing, pick_by_label
from vpd_lite.interpret.harvest import HarvestPlan, load_or_harvest, model_seq_len
from vpd_lite.interpret.ids import component_key
from vpd_lite.interpret.statistics import live_components
from vpd_lite.method.checkpoint import load_decomposition
from vpd_lite.method.devices import available_cores
from vpd_lite.models import paths
from vpd_lite.models.corpus import lang_token_blocks, load_corpus
from vpd_lite.models.target import load_target


# ------------------------------------------------------------------------------------------ CLI
def scan_shipped(data: str | Path | None = None, config: ScanConfig | None = None,
                 progress: bool = True, workers: int = 1) -> tuple[EditScan, dict[str, Any]]:
    """The edit scan of a decomposition in ``data`` (default: the shipped ``data/``; a decomposition folder works
    too, see :meth:`~vpd_lite.erase.rebuild.Artefacts.in_folder`): every live component (from the component
    statistics, harvested from training text unless they ship with it) is prescreened; the components the
    earlier and the labeller's rule pick for each target language are always scanned too. ``workers`` > 1
    computes the curves in that many processes (the same numbers). Returns (scan, context) where context holds
    ``model``, ``cm``, ``tokenizer``, ``corpus``, ``stats``, ``labels`` (or None). Raises
    ``FileNotFoundError`` for a missing part and ``ValueError`` for a decomposition of other target weights."""

    config = config or ScanConfig()
    arte = Artefacts.in_folder(data if data is not None else paths.data_dir())
    arte.check()
    model, tokenizer = load_target(arte.target)
    cm = load_decomposition(arte.decomposition, model)
    corpus = load_corpus(arte.corpus)
    seq_len = model_seq_len(model, config.seq_len)

    stats, how = load_or_harvest(cm, lang_token_blocks(tokenizer, corpus, "train", seq_len,
                                                       HarvestPlan.quick_harvest_blocks), path=arte.stats,
                                 progress=progress)
    labels = shipped_labels(arte, how)  # the labels belong to the statistics they were made from
    live = live_components(stats)
    directions = component_directions(cm, live)
    live_keys = {component_key(c) for c in live}
    always = {}
    for t in config.target_langs:
        picks = [component_key(pick_by_firing(stats, lang=t)[0]),
                 component_key(pick_by_label(labels, stats, t)[0])]
        always[t] = [k for k in picks if k in live_keys]
    from dataclasses import replace

    blocks = scan_blocks(tokenizer, corpus, replace(config, seq_len=seq_len))
    scan = run_edit_scan(model, directions, blocks, config, always=always, progress=progress, workers=workers)
    return scan, {"model": model, "cm": cm, "tokenizer": tokenizer, "corpus": corpus, "stats": stats,
                  "labels": labels}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vpd_lite.edit_scan [--quick] [--data DIR] [--out DIR] [--candidates N] [--blocks N] [--threads N]``."""
    from dataclasses import replace

    ap = cli.make_parser("edit_scan", "Scan what the scalar edit of each component does to every language "
                                  "(training text), and list the best components per language to erase.")
    ap.add_argument("--quick", action="store_true", help="coarse grid, few candidates (also VPD_LITE_QUICK=1)")
    ap.add_argument("--data", default=None,
                    help="folder with target/, decomposition/, corpus/, or a decomposition folder of the shipped "
                         "target, as python -m vpd_lite.decompose --out writes (default: data/)")
    ap.add_argument("--out", type=out_folder, default=None, help="output folder (default: a new folder under ./runs/)")
    ap.add_argument("--candidates", type=positive_int, default=None,
                    help="components fully scanned per language to erase (default 12; quick 4)")
    ap.add_argument("--blocks", type=positive_int, default=None,
                    help="training blocks per language the CE is measured on (default 2 of 128 tokens; quick 4 of 64)")
    ap.add_argument("--threads", type=positive_int, default=1,
                    help="torch threads (default 1: never stalls when the cores are busy with other work)")
    ap.add_argument("--workers", type=positive_int, default=None,
                    help="processes that scan side by side, one thread each (default: the cores this process may "
                         "use, at most 8; the numbers do not depend on it)")
    args = ap.parse_args(argv)
    quick = args.quick or vpd_lite.quick_mode()
    config = ScanConfig.quick() if quick else ScanConfig()
    if args.candidates is not None:
        config = replace(config, n_candidates=args.candidates)
    if args.blocks is not None:
        config = replace(config, blocks_per_lang=args.blocks)
    config = replace(config, threads=args.threads)
    out = Path(args.out) if args.out else default_run_dir("edit_scan")
    scan, _ = scan_shipped(args.data, config, workers=args.workers or min(8, available_cores()))
    written = scan.save(out)
    n_live = len(scan.prescreen)
    n_scanned = scan.curves["component"].nunique()
    print(f"Prescreened {n_live} live components, scanned {n_scanned} on {len(config.s_grid)} + edge values of s "
          f"in {scan.seconds:.0f} s ({config.threads} thread{'s' if config.threads != 1 else ''}).")
    for t in config.target_langs:
        print(f"\nBest components to erase {t} (training text; ΔCE nats/token at the best admissible s):")
        b = scan.best_for(t).head(5)
        cols = ["component", "s_best", "gain", "worst_other", "worst_other_lang", "s_lo", "s_hi"]
        print(b[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nWrote {len(written)} files to {out}")
    return 0


def run() -> None:
    """``python -m vpd_lite.edit_scan``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "edit_scan"))
