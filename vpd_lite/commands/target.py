"""``python -m vpd_lite.target``: train the tokenizer and the small multilingual target model and write them.

``train`` writes its training state to ``--out`` every ``--checkpoint-every`` steps and, stopped by Ctrl-C or
SIGTERM, after the step in progress, printing the command that continues it (``--resume``, bit-identically).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vpd_lite import quick_mode
from vpd_lite.commands import cli
from vpd_lite.commands.cli import (
    default_run_dir,
    nonneg_int,
    positive_int,
)
from vpd_lite.interpret.harvest import model_seq_len
from vpd_lite.method.resumable import TrainingInterrupted
from vpd_lite.models.corpus import load_corpus
from vpd_lite.models.hub import quiet_model_loading
from vpd_lite.models.paths import require_data
from vpd_lite.models.target import (
    TargetConfig,
    evaluate_target,
    format_table,
    generate_samples,
    load_target,
    resume_target_state,
    train_target,
)


# ------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``train`` a target model into a new run folder (or ``--out``), or ``eval`` one (default: the shipped
    model). Errors are raised as exceptions (``vpd_lite.commands.cli.run_main`` prints them as one line)."""

    ap = cli.make_parser("target", "Train or evaluate the small multilingual target model.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{train,eval}")
    tr = sub.add_parser("train", help="train tokenizer + model from scratch")
    tr.add_argument("--out", type=Path, default=None,
                    help="output folder (default: a new runs/target-<time> folder; name data/target to replace the "
                         "shipped model)")
    tr.add_argument("--corpus", default=None, help="corpus folder or hub name (default: the shipped corpus)")
    tr.add_argument("--steps", type=positive_int, default=None,
                    help=f"training steps (default: {TargetConfig.steps}; {TargetConfig.quick().steps} with "
                         "VPD_LITE_QUICK=1)")
    tr.add_argument("--seed", type=nonneg_int, default=0,
                    help="seed of the weights and batches (default 0, the shipped model's; training runs on "
                         "TargetConfig.num_threads = 1 torch thread so that the result is reproducible)")
    tr.add_argument("--checkpoint-every", type=nonneg_int, default=100, metavar="N",
                    help="write the training state to --out every N steps (default 100; 0: only when stopped by "
                         "Ctrl-C or SIGTERM, which always writes one)")
    tr.add_argument("--resume", action="store_true",
                    help="continue the unfinished (or interrupted) training in --out from its last checkpoint, "
                         "bit-identically on the same CPU: give the settings it was started with (--steps, --seed, "
                         "VPD_LITE_QUICK)")
    ev = sub.add_parser("eval", help="print held-out CE table and sample continuations")
    ev.add_argument("--path", default=None, help="model folder or hub name (default: the shipped model)")
    ev.add_argument("--corpus", default=None, help="corpus folder or hub name (default: the shipped corpus)")
    for sp in (tr, ev):
        sp.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    args = ap.parse_args(argv)
    if args.corpus is None:
        require_data(("corpus",) if args.cmd == "train" or args.path is not None else ("corpus", "target"))
    elif args.cmd == "eval" and args.path is None:
        require_data(("target",))
    quiet_model_loading()

    if args.cmd == "train":
        config = TargetConfig.quick() if quick_mode() else TargetConfig()
        if args.steps is not None:
            config.steps = args.steps
        if args.resume:
            if args.out is None:
                ap.error("--resume needs --out naming the folder of the unfinished training")
            try:
                state = resume_target_state(args.out, config, args.seed)
            except (FileNotFoundError, ValueError) as err:
                ap.error(f"--resume: {err}")
            print(f"resuming the training in {args.out} from its checkpoint at step {state['step']} of "
                  f"{config.steps}", flush=True)
        out = args.out or default_run_dir("target")
        t0 = time.perf_counter()
        try:
            model, tok, _ = train_target(config, load_corpus(args.corpus, config.langs), out, args.seed,
                                         checkpoint_every=args.checkpoint_every, resume=args.resume)
        except TrainingInterrupted as stop:
            print(cli.stopped_line("target", stop, list(sys.argv[1:] if argv is None else argv), out),
                  file=sys.stderr)
            return stop.exit_code
        print(f"trained in {time.perf_counter() - t0:.1f} s")
        rows = evaluate_target(model, tok, load_corpus(args.corpus, config.langs), seq_len=config.seq_len)
        print(format_table(rows))
        print(f"target model written to {out}")
        return 0

    model, tok = load_target(args.path)
    corpus = load_corpus(args.corpus)
    seq_len = model_seq_len(model, 128)
    print(format_table(evaluate_target(model, tok, corpus, seq_len=seq_len)))
    print()
    for s in generate_samples(model, tok):
        print(f"[{s['lang']}] {s['prompt']!r}\n   greedy : {s['greedy']!r}\n   sampled: {s['sampled']!r}")
    return 0


def run() -> None:
    """``python -m vpd_lite.target``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "target"))
