"""``python -m vpd_lite.atlas``: write the component atlas, a static web site of every live component.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vpd_lite.commands import cli
from vpd_lite.commands.cli import default_run_dir, positive_int
from vpd_lite.erase.atlas import (
    DEFAULT_ABLATE,
    DEFAULT_ABLATION_BLOCKS,
    DEFAULT_HARVEST_BLOCKS,
    build_atlas,
    check_components,
    parse_component_list,
    site_size,
)
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.errors import UserError
from vpd_lite.models.paths import decomposition_dir, new_or_empty_folder


def _ablate(text: str) -> int | None:
    """argparse ``type=`` for ``--ablate``: a number >= 0, or ``all`` (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number >= 0 nor 'all'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number >= 0 nor 'all'")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vpd_lite.atlas [DECOMPOSITION] [--out DIR] [--components IDS] [--ablate N|all]``."""
    ap = cli.make_parser("atlas", "Write the component atlas: a static web site (index.html and one page per live "
                                  "component) that opens from file:// or any static host, offline.")
    ap.add_argument("decomposition", nargs="?", type=Path, default=None,
                    help="decomposition folder (default: the shipped data/decomposition; e.g. data/targeted_de)")
    ap.add_argument("--out", type=Path, default=None,
                    help="a new or empty folder for the site (default: a new folder under ./runs/)")
    ap.add_argument("--components", default=None,
                    help="only these components, comma-separated ids like model.layers.0.mlp.down_proj:113 (default: every "
                         "live component)")
    ap.add_argument("--ablate", type=_ablate, default=DEFAULT_ABLATE,
                    help="measure the removal of only the N most frequent components (plus every edit-scanned "
                         "one), for a quicker build; 'all' (the default) measures every component; with "
                         "--components every named component is measured")
    ap.add_argument("--ablation-blocks", type=positive_int, default=DEFAULT_ABLATION_BLOCKS,
                    help=f"held-out blocks of 128 tokens per language the removal is measured on "
                         f"(default {DEFAULT_ABLATION_BLOCKS})")
    ap.add_argument("--harvest-blocks", type=positive_int, default=DEFAULT_HARVEST_BLOCKS,
                    help="training blocks per language harvested when no statistics ship with the decomposition "
                         f"(default {DEFAULT_HARVEST_BLOCKS})")
    args = ap.parse_args(argv)
    folder = args.decomposition
    if folder is not None:
        if not folder.is_dir():
            ap.error(f"{folder} is not a folder")
        if not (folder / "decomposition.json").is_file():
            ap.error(f"{folder} is not a decomposition folder (it has no decomposition.json)")
    components = None
    if args.components is not None:
        try:
            components = parse_component_list(args.components)
            check_components(folder or decomposition_dir(), components)
        except ValueError as err:
            ap.error(f"--components: {err}")
    out = args.out or default_run_dir("atlas")
    try:
        new_or_empty_folder(out)
    except UserError as err:
        ap.error(f"--out: {err}")
    quiet_model_loading()
    t0 = time.perf_counter()
    data, files = build_atlas(out, folder, components, args.ablate, args.ablation_blocks, args.harvest_blocks,
                              progress=sys.stderr.isatty())  # bars that clear themselves, not into logs
    n = len(data.components)
    print(f"Wrote the atlas of {n} component{'s' if n != 1 else ''} ({len(files)} files, "
          f"{site_size(files) / 1e6:.1f} MB) to {out} in {time.perf_counter() - t0:.0f} s.")
    print(f"Open {out / 'index.html'} in a browser, or copy the folder to any static host.")
    return 0


def run() -> None:
    """``python -m vpd_lite.atlas``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "atlas"))
