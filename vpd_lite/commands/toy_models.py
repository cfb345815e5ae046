"""``python -m vpd_lite.toy_models``: train toy models of superposition, decompose them and write the results.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vpd_lite.commands import cli
from vpd_lite.commands.cli import (
    default_run_dir,
    nonneg_int,
    out_folder,
    positive_int,
)
from vpd_lite.method.checkpoint import atomic_write_json
from vpd_lite.models.toy_models import (
    TMS_5_2,
    TMS_40_10,
    TMS_40_10_OVERRIDES,
    run_experiment,
)


def _summary_line(r: dict[str, Any]) -> str:
    parts = []
    for name, m in r["match"].items():
        parts.append(f"{name}: {m['live']} live / {m['dead']} dead, {m['features_matched']} features matched"
                     f"{' (exact)' if m['exact'] else ''}, min |cos| of live "
                     f"{min(m['best_cos']) if m['best_cos'] else float('nan'):.3f} "
                     f"(rank-1 matrix: {min(m['rank1_cos']) if m['rank1_cos'] else float('nan'):.3f})")
    runs = f", best of {r['restarts']} runs per matrix" if r.get("restarts", 1) > 1 else ""
    return f"{r['model']} seed {r['seed']} (C={r['C']}{runs}): " + "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: train and decompose TMS 5-2 and TMS 40-10 for each seed; print and save the feature-recovery table."""

    ap = cli.make_parser("toy_models", "Train toy models of superposition, decompose them, and check that the "
                                   "components recover the known features.")
    ap.add_argument("--seeds", type=nonneg_int, nargs="+", default=[0, 1, 2],
                    help="seeds of the toy model and its decomposition (default: 0 1 2)")
    ap.add_argument("--models", nargs="+", choices=["5-2", "40-10"], default=["5-2", "40-10"],
                    help="which toy models (default: both)")
    ap.add_argument("--steps", type=positive_int, default=None, help="decomposition steps (default: the config's)")
    ap.add_argument("--restarts", type=positive_int, default=None,
                    help="decompositions per model from different starting seeds; each matrix keeps the one with "
                         "the lowest training loss (default: 5 for TMS 5-2, 1 for TMS 40-10, whose run takes "
                         "about 3 minutes)")
    ap.add_argument("--out", type=out_folder, default=None, help="folder for results.json (default: a new ./runs/toy_models-* folder)")
    ap.add_argument("--threads", type=positive_int, default=1,
                    help="torch threads (default 1: fastest for these tiny matrices; the numbers depend on it)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else default_run_dir("toy_models")
    results = []
    for key in args.models:
        tms = TMS_5_2 if key == "5-2" else TMS_40_10
        C, extra = (None, {}) if key == "5-2" else (80, TMS_40_10_OVERRIDES)
        for seed in args.seeds:
            restarts = args.restarts or (5 if key == "5-2" else 1)
            r = run_experiment(tms, seed, C=C, steps=args.steps, restarts=restarts, **extra)
            results.append(r)
            print(_summary_line(r), flush=True)
    atomic_write_json(out / "results.json", results)
    print(f"results written to {out / 'results.json'}")
    return 0


def run() -> None:
    """``python -m vpd_lite.toy_models``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "toy_models"))
