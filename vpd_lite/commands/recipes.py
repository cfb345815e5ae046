"""``python -m vpd_lite.recipes NAME``: decompose a pretrained hub model by recipe (``vpd_lite.models.recipes``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from vpd_lite.commands import cli
from vpd_lite.commands.cli import (
    default_run_dir,
    out_folder,
    positive_float,
    positive_int,
)
from vpd_lite.method.devices import resolve_device
from vpd_lite.method.evaluate import format_metrics
from vpd_lite.models.recipes import RECIPES, Recipe, run_recipe


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m vpd_lite.recipes NAME [--out DIR] [--model M] [--corpus C] [--steps N] [--minutes M]``;
    writes to a new run folder unless ``--out`` names one. Errors are raised as exceptions
    (``vpd_lite.commands.cli.run_main`` prints them as one line)."""

    ap = cli.make_parser("recipes", "Decompose an online model with a named recipe (needs internet unless --model "
                                "and --corpus name local copies).")
    def default(get: Callable[[Recipe], object]) -> str:
        """'(default: custom: X; pythia-70m: Y)': what each recipe sets."""
        return "(default: " + "; ".join(f"{name}: {get(r)}" for name, r in sorted(RECIPES.items())) + ")"

    ap.add_argument("recipe", choices=sorted(RECIPES), help="pythia-70m, or custom (then --model is required)")
    ap.add_argument("--out", type=out_folder, default=None,
                    help="output folder (default: a new runs/<recipe>-<time> folder)")
    ap.add_argument("--model", default=None, help="from_pretrained hub id or local folder "
                    + default(lambda r: r.model or "none, --model is required"))
    ap.add_argument("--corpus", default=None, help="hub dataset name or local folder "
                    + default(lambda r: r.corpus or "the shipped corpus"))
    ap.add_argument("--lang-column", default=None,
                    help="a hub dataset's language-code column " + default(lambda r: repr(r.lang_column)))
    ap.add_argument("--text-column", default=None,
                    help="a hub dataset's text column " + default(lambda r: repr(r.text_column)))
    ap.add_argument("--steps", type=positive_int, default=None,
                    help="training steps " + default(lambda r: r.decompose.steps))
    ap.add_argument("--minutes", type=positive_float, default=None,
                    help="wall-clock budget for training " + default(lambda r: r.decompose.time_budget_minutes
                                                                   or "none"))
    ap.add_argument("--batch-size", type=positive_int, default=None,
                    help="rows per step " + default(lambda r: r.decompose.batch_size))
    ap.add_argument("--seq-len", type=positive_int, default=None,
                    help="tokens per row " + default(lambda r: r.decompose.seq_len))
    ap.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                    help="auto uses CUDA when present " + default(lambda r: r.decompose.device))
    args = ap.parse_args(argv)
    if not (args.model or RECIPES[args.recipe].model):
        ap.error(f"the {args.recipe!r} recipe names no model: pass --model NAME_OR_PATH")
    if args.device is not None:
        resolve_device(args.device)  # before any work: --device cuda without CUDA is refused here

    recipe = dataclasses.replace(RECIPES[args.recipe], decompose=dataclasses.replace(RECIPES[args.recipe].decompose))
    for attr, value in (("model", args.model), ("corpus", args.corpus), ("lang_column", args.lang_column),
                        ("text_column", args.text_column)):
        if value is not None:
            setattr(recipe, attr, value)
    for attr, value in (("steps", args.steps), ("time_budget_minutes", args.minutes),
                        ("batch_size", args.batch_size), ("seq_len", args.seq_len), ("device", args.device)):
        if value is not None:
            setattr(recipe.decompose, attr, value)
    out = Path(args.out) if args.out else default_run_dir(args.recipe)
    print(format_metrics(run_recipe(recipe, out)))
    print(f"decomposition written to {out}")
    return 0


def run() -> None:
    """``python -m vpd_lite.recipes``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "recipes"))
