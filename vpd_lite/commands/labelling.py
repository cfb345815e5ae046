"""``python -m vpd_lite.labelling``: label the components of the shipped decomposition and write labels.json.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from vpd_lite import quick_mode
from vpd_lite.commands import cli
from vpd_lite.commands.cli import default_run_dir
from vpd_lite.interpret.harvest import (
    decomposition_fingerprint,
    harvest,
    tutorial_blocks,
)
from vpd_lite.interpret.labels import (
    label_components,
    make_provenance,
    save_labels,
    search_labels,
)
from vpd_lite.interpret.statistics import ComponentStats
from vpd_lite.method.checkpoint import load_decomposition
from vpd_lite.models.corpus import load_corpus
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.models.paths import data_dir, decomposition_dir, require_data
from vpd_lite.models.target import load_target


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: harvest statistics of a decomposition (default: the shipped one) and label its components; writes
    ``labels.json`` and ``component_stats.safetensors`` to a new run folder unless ``--out``/``--stats`` name
    files. ``python -m vpd_lite.labelling [--decomposition DIR] [--stats PATH] [--out PATH] [--reuse-stats]``."""

    ap = cli.make_parser("labelling", "Harvest per-component statistics of a decomposition and give every live "
                                  "component an offline label.")
    ap.add_argument("--decomposition", type=Path, default=None,
                    help="decomposition folder (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=None,
                    help="labels file to write (default: labels.json in a new runs/labelling-<time> folder; name "
                         "data/labels.json to replace the shipped labels)")
    ap.add_argument("--stats", type=Path, default=None,
                    help="statistics file: written when harvested (default: component_stats.safetensors next to "
                         "--out), read with --reuse-stats (default: the shipped one)")
    ap.add_argument("--reuse-stats", action="store_true",
                    help="reuse the statistics file if it belongs to the decomposition instead of harvesting")
    args = ap.parse_args(argv)
    if args.decomposition is not None and not args.decomposition.is_dir():
        ap.error(f"--decomposition: {args.decomposition} is not a folder")
    if args.out is not None and args.out.is_dir():
        ap.error(f"--out names a labels file, and {args.out} is a folder (try {args.out / 'labels.json'})")
    if args.reuse_stats and args.stats is not None and not args.stats.is_file():
        ap.error(f"--reuse-stats: {args.stats} is not a file")
    require_data(("corpus", "target") if args.decomposition else ("corpus", "target", "decomposition"))
    quiet_model_loading()
    folder = args.decomposition or decomposition_dir()
    out = args.out or default_run_dir("labelling") / "labels.json"
    stats_in = args.stats or data_dir() / "component_stats.safetensors"
    stats_path = args.stats or out.parent / "component_stats.safetensors"

    model, tokenizer = load_target()
    corpus = load_corpus()
    cm = load_decomposition(folder, model)
    fingerprint = decomposition_fingerprint(cm)
    stats = ComponentStats.load(stats_in) if args.reuse_stats and stats_in.is_file() else None
    if stats is not None and stats.meta.get("decomposition_fingerprint") == fingerprint:
        print(f"reusing the statistics in {stats_in}")
    else:
        train_blocks, _ = tutorial_blocks(tokenizer, corpus, model, quick=quick_mode())
        stats = harvest(cm, train_blocks, meta={"decomposition_fingerprint": fingerprint,
                                                "decomposition": str(folder), "split": "train"})
        stats.save(stats_path)
        print(f"harvested {stats.n_tokens} tokens -> {stats_path}")
    labels = label_components(stats, tokenizer)
    command = "python -m vpd_lite.labelling" + ("" if argv is None else " " + " ".join(argv))
    save_labels(labels, out, make_provenance(cm, stats, command))
    counts: dict[str, int] = {}
    for lab in labels:
        key = "mixed (two or more languages)" if lab.category.startswith("mixed") else lab.category
        counts[key] = counts.get(key, 0) + 1
    print(f"{len(labels)} live components labelled -> {out}")
    print("categories: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    for query in ("German", "foreign languages"):
        for lab in search_labels(labels, query)[:3]:
            print(f"  [{query}] {lab.component}: {lab.label}")
    return 0


def run() -> None:
    """``python -m vpd_lite.labelling``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "labelling"))
