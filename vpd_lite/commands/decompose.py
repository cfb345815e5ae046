"""``python -m vpd_lite.decompose [--quick] [--out DIR] [--minutes N] [--capability LANG]``: decompose the shipped
target and write the decomposition, its held-out metrics and loss curves to a run folder. ``--capability de`` makes a
targeted decomposition of German alone (``DecomposeConfig.targeted_recipe``), judged on German held-out text and,
with its remainder on, on the other languages' held-out text.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import vpd_lite
from vpd_lite.commands import cli
from vpd_lite.commands.cli import (
    default_run_dir,
    nonneg_int,
    out_folder,
    positive_float,
    positive_int,
)
from vpd_lite.method.checkpoint import (
    META_FILE,
    METRICS_FILE,
    STATE_FILE,
    load_training_state,
    read_metadata,
    recorded_capability,
    save_decomposition,
)
from vpd_lite.method.config import DecomposeConfig, override_config
from vpd_lite.method.decompose import TrainingInterrupted, decompose, keep_freed_memory, resume_state
from vpd_lite.method.evaluate import (
    evaluate_decomposition,
    evaluate_targeted,
    format_metrics,
    plot_history,
)
from vpd_lite.models import corpus
from vpd_lite.models.corpus import heldout_batches
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.models.paths import decomposition_dir, require_data
from vpd_lite.models.target import load_target


def _decompose_parser():
    """The argument parser of ``python -m vpd_lite.decompose``."""

    ap = cli.make_parser("decompose", "Decompose the shipped target model with VPD and write the decomposition, its "
                                  "held-out metrics and loss curves to a run folder; the metrics are printed beside "
                                  "the shipped decomposition's.")
    ap.add_argument("--quick", action="store_true", help="a few dozen steps (also when VPD_LITE_QUICK=1)")
    ap.add_argument("--out", type=out_folder, default=None,
                    help="output folder (default: a new runs/decompose-<time> folder; name data/decomposition to "
                         "replace the shipped decomposition)")
    ap.add_argument("--minutes", type=positive_float, default=None, help="wall-clock budget for training")
    ap.add_argument("--steps", type=positive_int, default=None, help="training steps (default: the config's)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the unfinished (or interrupted) run in --out from its last checkpoint, "
                         "bit-identically: give the settings it was started with (--quick, --steps, --seed, --minutes, "
                         "--set, --capability); --threads defaults to the run's")
    ap.add_argument("--seed", type=nonneg_int, default=0)
    ap.add_argument("--threads", type=positive_int, default=None,
                    help="torch intra-op threads (1 is faster on a busy machine; the shipped decomposition was "
                         "made with 2, and another count gives slightly different numbers)")
    ap.add_argument("--capability", metavar="LANG", default=None,
                    help="a targeted decomposition of one language (e.g. de): only what that language's text uses is "
                         "decomposed, against a remainder the other languages keep; a few minutes instead of half "
                         "an hour")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a DecomposeConfig number/string/bool field, e.g. --set coeff_minimality=4e-3")
    return ap


def _checked(config: DecomposeConfig, **given: object) -> DecomposeConfig:
    """``config`` with the ``given`` fields that are not None set; ``ValueError`` for a count or size that
    cannot train (steps, batch size, sequence length, learning rate, time budget)."""
    import dataclasses

    config = dataclasses.replace(config, **{k: v for k, v in given.items() if v is not None})
    for name, low in (("steps", 1), ("batch_size", 1), ("seq_len", 2), ("log_every", 1), ("pgd_n_sets", 1)):
        if getattr(config, name) < low:
            raise ValueError(f"{name} must be at least {low}, got {getattr(config, name)}")
    for name in ("lr", "time_budget_minutes"):
        value = getattr(config, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    return config


def beside_shipped(metrics: Mapping[str, Any], out: Path, shipped: Path | None = None) -> str | None:
    """A small table of this run's held-out quality (rounded-CI and PGD CE gaps in nats/token, mean L0 in
    components per matrix and token) beside the shipped decomposition's (``shipped``, default the shipped
    ``decomposition/``). When that comparison would not be fair, one line saying why: the run was made from other
    target weights, or evaluated on another number of held-out tokens (a quick run). None when there is no
    shipped decomposition to compare with, or ``out`` is that decomposition."""
    shipped = decomposition_dir() if shipped is None else Path(shipped)
    try:
        if shipped.resolve() == Path(out).resolve():
            return None
        ref = json.loads((shipped / METRICS_FILE).read_text())
        if read_metadata(shipped)["target_fingerprint"] != read_metadata(out)["target_fingerprint"]:
            return "not set beside the shipped decomposition: this one was made from other target weights"
        if ref["n_tokens"] != metrics["n_tokens"]:
            return (f"not set beside the shipped decomposition: this evaluation used {metrics['n_tokens']} held-out "
                    f"tokens, the shipped one {ref['n_tokens']} (a quick run evaluates fewer)")
        rows = [("rounded-CI gap (nats/token)", metrics["ce_gap"]["ci_rounded"], ref["ce_gap"]["ci_rounded"]),
                ("PGD gap (nats/token)", metrics["ce_gap"]["pgd"], ref["ce_gap"]["pgd"]),
                ("mean L0 (per matrix)", metrics["l0_mean"], ref["l0_mean"])]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    lines = [f"beside the shipped decomposition, on the same held-out text ({shipped}):",
             f"{'':<30}{'this run':>10}{'shipped':>10}"]
    lines += [f"{name:<30}{mine:>10.3f}{theirs:>10.3f}" for name, mine, theirs in rows]
    return "\n".join(lines)


def _recorded_capability(folder: Path) -> str | None:
    """The capability of the unfinished run in ``folder``: from its training state's configuration, or when that
    cannot be read, from its ``decomposition.json`` (errors of that file propagate)."""
    try:
        state = load_training_state(folder) or {}
    except ValueError:  # reported by resume_state, after the capability
        state = {}
    if state.get("config") is not None:
        return state["config"].get("capability")
    return recorded_capability(read_metadata(folder))


def check_resume(ap, out: str | None, config: DecomposeConfig, capability: str | None, threads: int | None,
                 threads_hint: str = "leave out --threads (or give --threads {n})") -> int | None:
    """Before a ``--resume`` does any work: refuse, as one ``ap.error`` line, an ``out`` that is missing, holds no
    unfinished run, holds a finished one, a decomposition of another capability (``capability``: the command's
    own, None for a full decomposition), another configuration (``resume_state``), or a run computed on another
    torch thread count than ``threads`` (None: any; ``threads_hint`` says how to fix it, ``{n}`` the recorded
    count). Returns the thread count to continue with (the run's when ``threads`` is None)."""
    if out is None:
        ap.error("--resume needs --out naming the folder of the unfinished run")
    folder = Path(out)
    if not (folder / STATE_FILE).is_file():
        if (folder / META_FILE).is_file():
            ap.error(f"--resume: {out} holds a finished decomposition (and no training state): nothing to "
                     "resume; start a new run with another --out")
        ap.error(f"--resume: {out} holds no unfinished run (no training_state.pt)")
    recorded = _recorded_capability(folder)
    if recorded != capability:
        ap.error(f"--resume: {out} holds " + (f"a targeted decomposition of {recorded!r}: add --capability "
                 f"{recorded}" if recorded else "a full decomposition: leave out --capability")
                 + " to continue it")
    try:
        state = resume_state(folder, config)
    except ValueError as err:
        ap.error(f"--resume: {err}")
    recorded_threads = state.get("threads")
    if recorded_threads is not None and threads not in (None, recorded_threads):
        ap.error(f"--resume: the run in {out} computed on {recorded_threads} torch threads, and another count adds "
                 f"floats in another order: {threads_hint.format(n=recorded_threads)} to continue it")
    return threads or recorded_threads


def main(argv: list[str] | None = None) -> int:
    """CLI: decompose the shipped target and write the checkpoint + held-out metrics to ``--out`` (default: a
    new run folder). Returns 0; errors are raised (``vpd_lite.commands.cli.run_main`` prints them as one line)."""

    ap = _decompose_parser()
    args = ap.parse_args(argv)
    quick = args.quick or vpd_lite.quick_mode()
    if args.capability is not None:
        try:
            corpus.check_language(args.capability)
        except ValueError as e:
            ap.error(f"--capability: {e}")
        recipe = DecomposeConfig.targeted_quick if quick else DecomposeConfig.targeted_recipe
        config = recipe(args.capability, seed=args.seed)
    else:
        config = DecomposeConfig.quick(seed=args.seed) if quick else DecomposeConfig(seed=args.seed)
    try:
        config = _checked(override_config(config, args.set), steps=args.steps, time_budget_minutes=args.minutes)
    except ValueError as err:
        ap.error(str(err))
    if args.resume:
        args.threads = check_resume(ap, args.out, config, args.capability, args.threads)
    out = Path(args.out) if args.out else default_run_dir("decompose")
    config.checkpoint_dir = str(out)
    require_data(("corpus", "target"))
    quiet_model_loading()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_target()
    corp = corpus.load_corpus()
    rest_batches = None
    if config.targeted:
        batches, rest_batches = corpus.capability_streams(tokenizer, corp, config.capability, config.seq_len,
                                                          config.batch_size, config.seed)
    else:
        batches = corpus.train_batches(tokenizer, corp, seq_len=config.seq_len, batch_size=config.batch_size,
                                       seed=config.seed)
    t0 = time.perf_counter()
    try:
        cm, history = decompose(model, batches, config, resume_from=out if args.resume else None,
                                rest_batches=rest_batches)
    except TrainingInterrupted as stop:
        print(cli.stopped_line("decompose", stop, list(sys.argv[1:] if argv is None else argv), out),
              file=sys.stderr)
        return stop.exit_code
    config.checkpoint_dir = None  # where this run wrote to is not part of the decomposition's record
    train_minutes = (time.perf_counter() - t0) / 60
    if config.targeted:  # judged on the capability's held-out text, and on the rest with the remainder on
        metrics = evaluate_targeted(cm, *corpus.heldout_split(tokenizer, corp, config.capability, quick=quick),
                                    seed=config.seed)
    else:
        metrics = evaluate_decomposition(cm, heldout_batches(tokenizer, corpus=corp, quick=quick), seed=config.seed)
    steps_done = max((r["step"] for r in history if "stochastic_recon" in r), default=0)
    metrics["training"] = {"steps": steps_done, "minutes": train_minutes, "threads": torch.get_num_threads()}
    save_decomposition(cm, out, config, metrics=metrics, history=history)
    (out / "training_state.pt").unlink(missing_ok=True)  # only needed to resume an unfinished run
    try:

        plot_history(history, out / "loss_curves.png")
    except ImportError:  # matplotlib missing: the numbers are still saved
        pass
    print(format_metrics(metrics))
    comparison = None if config.targeted else beside_shipped(metrics, out)
    if comparison:
        print("\n" + comparison)
    print(f"decomposition written to {out}")
    return 0


def run() -> None:
    """``python -m vpd_lite.decompose``: :func:`main` on the command line's arguments; errors as one line."""
    keep_freed_memory()  # here, not in main(): it changes the allocator for the rest of the calling process
    sys.exit(cli.run_main(main, "decompose"))
