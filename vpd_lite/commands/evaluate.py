"""``python -m vpd_lite.evaluate``: evaluate a saved decomposition on held-out text and print / save its metrics.
"""

from __future__ import annotations

import sys
from pathlib import Path

import vpd_lite
from vpd_lite.commands import cli
from vpd_lite.commands.cli import (
    default_run_dir,
    out_folder,
    positive_int,
    unit_interval,
)
from vpd_lite.errors import UserError
from vpd_lite.method.checkpoint import atomic_write_json, load_decomposition, read_metadata, recorded_capability
from vpd_lite.method.evaluate import evaluate_decomposition, evaluate_targeted, format_metrics
from vpd_lite.models import paths
from vpd_lite.models.corpus import heldout_batches, heldout_split, load_corpus
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.models.target import load_target


def _evaluate_parser():
    """The argument parser of ``python -m vpd_lite.evaluate``."""

    ap = cli.make_parser("evaluate", "Check a vpd-lite decomposition's files and print its held-out metrics "
                                 "(--recompute evaluates it again on held-out text).")
    ap.add_argument("dir", nargs="?", default=None, help="decomposition folder (default: the shipped one)")
    ap.add_argument("--recompute", action="store_true", help="evaluate on held-out text instead of reading metrics.json")
    ap.add_argument("--threshold", type=unit_interval, default=None,
                    help="with --recompute: CI threshold of the rounded masks and of L0 (default 0)")
    ap.add_argument("--blocks-per-lang", type=positive_int, default=None,
                    help="with --recompute: held-out blocks per language (default 32)")
    ap.add_argument("--write", action="store_true",
                    help="with --recompute: save the new metrics.json to --out (default: a new runs/evaluate-<time> "
                         "folder)")
    ap.add_argument("--out", type=out_folder, default=None,
                    help="with --recompute: folder for the new metrics.json (implies --write; name the "
                         "decomposition folder to replace its metrics.json; default: a new runs/evaluate-<time> "
                         "folder)")
    return ap


def main(argv: list[str] | None = None) -> int:
    """CLI: verify a decomposition folder against the target and print its metrics table (``--recompute``
    evaluates it again; ``--write``/``--out`` save the new metrics). Errors are raised as exceptions with one
    sentence each (``vpd_lite.commands.cli.run_main`` prints them as one line)."""
    import json

    ap = _evaluate_parser()
    args = ap.parse_args(argv)
    quiet_model_loading()
    if not args.recompute:
        given = [flag for flag, value in (("--threshold", args.threshold), ("--blocks-per-lang", args.blocks_per_lang),
                                          ("--out", args.out)) if value is not None] + (["--write"] if args.write else [])
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            ap.error(f"{' and '.join(given)} {verb} only with --recompute (without it the stored metrics are printed)")
    folder = Path(args.dir) if args.dir else paths.decomposition_dir()
    if args.dir is not None and not folder.is_dir():
        ap.error(f"{folder} is not a folder")
    if args.dir is None:
        paths.require_data(("target", "decomposition"))
    else:
        paths.require_data(("target",))
    metrics_path = folder / "metrics.json"

    # Verify the files before trusting anything in them: load_decomposition checks the tensors' sha256, the
    # fingerprint of the target weights and every tensor's shape.
    model, tokenizer = load_target()
    cm = load_decomposition(folder, model)
    if not args.recompute:
        if not metrics_path.is_file():
            raise UserError(f"{folder} has no metrics.json; add --recompute to evaluate the decomposition")
        try:
            metrics = json.loads(metrics_path.read_text())
            text = format_metrics(metrics)
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{metrics_path} is corrupted ({type(err).__name__}: {err}); add --recompute to "
                            "evaluate the decomposition again") from err
        print(text)
        print(f"(stored metrics of {folder}; its files match their checksums and the target model)")
        return 0
    held = dict(blocks_per_lang=args.blocks_per_lang or 32, quick=vpd_lite.quick_mode())
    capability = recorded_capability(read_metadata(folder))
    if capability is not None:  # a targeted decomposition: its capability's text, and the rest
        split = heldout_split(tokenizer, load_corpus(), capability, **held)
        metrics = evaluate_targeted(cm, *split, threshold=args.threshold or 0.0)
    else:
        metrics = evaluate_decomposition(cm, heldout_batches(tokenizer, **held), threshold=args.threshold or 0.0)
    print(format_metrics(metrics))
    if args.write or args.out is not None:
        out = Path(args.out) if args.out is not None else default_run_dir("evaluate")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "metrics.json", metrics)
        print(f"metrics written to {out / 'metrics.json'}")
    return 0


def run() -> None:
    """``python -m vpd_lite.evaluate``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "evaluate"))
