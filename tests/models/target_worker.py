"""A target training that a test stops on purpose: ``python -m tests.models.target_worker CORPUS OUT FAULT AT``.

The tiny target (``TargetConfig.quick`` shape) trains ``STEPS`` steps on the small corpus in CORPUS (written by
``write_small_corpus``) into OUT, checkpointing every ``EVERY`` steps, on one torch thread. FAULT: ``none``,
``KILL``, ``INT`` or ``TERM``: the signal the process sends itself when the batch stream hands out batch number
AT (0-based; AT steps are done then), or ``KILL-SAVE``: SIGKILL halfway through writing the ``training_state.pt``
of the checkpoint at step AT (the faults of ``tests.method.resume_worker``, reused). A stop by SIGINT or SIGTERM
prints the ``TrainingInterrupted`` line and exits with its code (130, 143).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path


from tests.method.resume_worker import faulty, worker_main

STEPS, EVERY, SEED = 9, 3, 2


def write_small_corpus(root: Path, train_lines: int = 60, heldout_lines: int = 8) -> Path:
    """The first lines of every language of the shipped corpus, written to ``root`` (a corpus folder)."""
    from vpd_lite.models.corpus import LANGS
    from vpd_lite.models.paths import corpus_dir

    for lang in LANGS:
        (root / lang).mkdir(parents=True, exist_ok=True)
        for split, n in (("train", train_lines), ("heldout", heldout_lines)):
            lines = (corpus_dir() / lang / f"{split}.txt").read_text(encoding="utf-8").splitlines()[:n]
            (root / lang / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def config():
    """The tiny recipe: the quick shape, ``STEPS`` steps, a held-out evaluation every 3."""
    from vpd_lite.models.target import TargetConfig

    return replace(TargetConfig.quick(), steps=STEPS, eval_every=3, num_threads=1)


def run(corpus_dir: str | Path, out: str | Path, fault: str = "none", at: int = -1, resume: bool = False, **kw):
    """Train as the module says (continuing the run in ``out`` when ``resume``); ``kw`` overrides
    ``train_target``'s arguments. Returns (model, tokenizer, history)."""
    from vpd_lite.models import target as target_mod
    from vpd_lite.models.corpus import load_corpus

    if fault in ("KILL", "INT", "TERM"):
        real = target_mod.train_batches
        target_mod.train_batches = lambda *a, **k: faulty(real(*a, **k), fault, at)
    try:
        args = dict(config=config(), corpus=load_corpus(corpus_dir), out_dir=out, seed=SEED, progress=False,
                    checkpoint_every=EVERY, resume=resume) | kw
        return target_mod.train_target(**args)
    finally:
        if fault in ("KILL", "INT", "TERM"):
            target_mod.train_batches = real


def main() -> int:
    return worker_main(run, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
