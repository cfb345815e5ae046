"""Benchmark: train the target model (tokenizer + 2-layer Llama) from scratch; print time, peak memory, CE table.

    flock /tmp/vpd-heavy.lock python benchmarks/bench_target.py             # default config, temp output
    flock /tmp/vpd-heavy.lock python benchmarks/bench_target.py --out data/target   # = retrain the shipped model
    flock /tmp/vpd-heavy.lock python benchmarks/bench_target.py --threads 2 --steps 1000   # another recipe

Wall time counts tokenizer training, model training and saving (not the final evaluation). Peak memory is the
process's maximum resident set size. The numbers depend on how busy the machine is: run it alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without `pip install -e .`

from vpd_lite.models.corpus import load_corpus
from vpd_lite.models.target import TargetConfig, evaluate_target, format_table, train_target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the target model from scratch and time it.")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: TargetConfig.steps)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights and batches (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads while training (default: TargetConfig.num_threads, 1, as the shipped model "
                         "was trained; another count changes the float sums, hence the weights)")
    args = ap.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps must be at least 1, got {args.steps}")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")

    config = TargetConfig()
    if args.steps is not None:
        config.steps = args.steps
    if args.threads is not None:
        config.num_threads = args.threads
    corpus = load_corpus(langs=config.langs)
    print(f"config: {config}")
    print(f"torch {torch.__version__}, training on {config.num_threads or torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "target"
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        model, tok, history = train_target(config, corpus, out_dir=out, seed=args.seed)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        weights = (out / "model.safetensors").stat().st_size
        rows = evaluate_target(model, tok, corpus, seq_len=config.seq_len)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB
    print(f"wall time (tokenizer + {config.steps} steps + save): {wall:.1f} s = {wall / 60:.1f} min "
          f"(process CPU time {cpu:.1f} s)")
    print(f"peak RSS: {peak_rss:.0f} MiB")
    print(f"weights: {weights / 2**20:.2f} MiB ({sum(p.numel() for p in model.parameters()):,} parameters)")
    print(f"final training loss: {history[-1]['loss']:.3f}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
